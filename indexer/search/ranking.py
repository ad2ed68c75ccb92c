"""Query → ranked files: one result per file, with its best passage.

Documents (see docs/SEARCH.md for the figures behind every constant):

1. Candidates come from three places: the nearest chunks by meaning (exact
   in-memory ranking while the table is small, the ANN index past
   `indexer.store.ann.ANN_MIN_ROWS`), a keyword (BM25) search over chunk text, and
   file names/titles (`NameIndex`, in memory).
2. Every candidate chunk is then scored on the same absolute scale:
   cosine similarity to the query, plus a keyword bonus for the share of the
   query's words it contains. The bonus weighs more for identifier-like words
   (ERR_QUUX_4711, parseConfig) that a sentence model does not understand.
3. A file's score is its best chunk minus a small prior for length (a long
   file has many chances of one lucky chunk). Names find files whose name or
   title has the query words but no passage matched, and name-only files.
4. A cutoff (an absolute floor and a gap to the top score) hides the junk tail;
   when nothing clears it the message is "No good match.".

Images are ranked by CLIP cosine; text→image, image→image and image+words.
Rows only count when their file is indexed, available and still has the same
content hash (a crash or a concurrent write never shows stale passages).

One query's independent parts run side by side (`Searcher._side`): the CLIP text
tower and image search, and the keyword search, overlap the text model's query
embedding and the vector search. Both models and LanceDB release the GIL, so on a
2-core laptop this takes roughly a third off a query (docs/SEARCH.md, Performance).
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import logging
import math
import operator
import os
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from indexer.store.ann import EXACT_MAX_ROWS, HNSW_EF, has_vector_index, nprobes_for, vector_index_problem
from indexer.store.fts import fts_problem, has_fts_index
from indexer.search.query import (
    RESULTS_MAX,
    STOP_WORDS,
    ParsedQuery,
    contains_phrase,
    looks_like_identifier,
    parse_query,
    too_long_message,
    word_spans,
)
from indexer.store.tables import FileRecord, Store, file_id, sane_rows
from indexer.types import SearchResponse, SearchResult

log = logging.getLogger(__name__)

NO_MATCH = "No good match."
_FTS_MAX_TOKEN = 40
"""LanceDB's keyword tokenizer drops tokens this long or longer."""
NAME_QUERY_MAX_WORDS = 3
"""Queries with more content words than this are sentences: names count only for name-only files."""


@dataclasses.dataclass
class Ranking:
    """Every ranking constant in one place (calibrated on the real MiniLM model)."""

    vector_k: int = 150  # nearest chunks fetched per query
    keyword_k: int = 60  # BM25 chunks fetched per query
    keyword_weight: float = 0.15  # bonus for containing all query words (sentences)
    identifier_weight: float = 0.40  # ... when the query has identifier-like words
    short_query_weight: float = 0.15  # ... one or two words: people type names and terms
    length_prior: float = 0.06  # per ln(chunks) of the file
    name_only_score: float = 0.55  # a name-only file whose name has all the query words
    floor: float = 0.25  # absolute cosine floor for documents
    gap: float = 0.30  # results further than this below the top are junk
    image_floor: float = 0.15  # CLIP text→image cosine floor (ViT-B/32 scale)
    image_gap: float = 0.10
    similar_floor: float = 0.25  # "Find similar" / a query image: image→image and document→document cosine
    compose_weight: float = 1.0  # image + words: weight of the words' direction
    compose_neutral: str = "a photo"  # the words' direction is text(words) - text(neutral)


@dataclasses.dataclass
class _Candidate:
    """One chunk that might represent its file."""

    fid: str
    text: str
    start: int
    end: int
    sim: float
    keyword: float = 0.0
    score: float = 0.0


# ------------------------------------------------------------------ caches
class _VectorCache:
    """A table's vectors in memory for exact ranking, reloaded when its version changes."""

    def __init__(self) -> None:
        self.key: tuple[Any, ...] | None = None
        self.vectors: np.ndarray = np.zeros((0, 1), np.float32)
        self.codes: np.ndarray = np.zeros(0, np.int32)  # row -> index into fids
        self.fids: list[str] = []
        self.valid: np.ndarray = np.zeros(0, bool)
        self.sane: np.ndarray = np.zeros(0, bool)  # row's vector finite and unit length (issue 11.6)
        self.meta: Any = None  # arrow table of the non-vector columns
        self.valid_key: Any = None
        self.filter_key: Any = None  # the last filter's per-file mask, reused while unchanged
        self.filter_ok: np.ndarray = np.zeros(0, bool)


class NameIndex:
    """Words of file names and titles → files, for name matching in microseconds.

    Built once per version of the files table (store.files() is cached the same
    way), so a query does no work proportional to the number of files.
    """

    _SPLIT = re.compile(r"[A-Za-z][a-z]+|[A-Z]+(?![a-z])|\d+|[^\W\d_]+", re.UNICODE)

    def __init__(self, files: dict[str, FileRecord]) -> None:
        postings: dict[str, set[str]] = {}
        self.words: dict[str, int] = {}
        for fid, rec in files.items():
            words = self.tokens(rec.name + " " + rec.title)
            self.words[fid] = len(words) or 1
            for w in words:
                postings.setdefault(w, set()).add(fid)
        self.postings = postings
        self.sorted_tokens = sorted(postings)

    @classmethod
    def tokens(cls, text: str) -> set[str]:
        return {m.group(0).lower() for m in cls._SPLIT.finditer(text)}

    def lookup(self, term: str, *, max_tokens: int = 200) -> set[str]:
        """Files with a name word that starts with ``term`` (search as you type)."""
        out: set[str] = set()
        i = bisect.bisect_left(self.sorted_tokens, term)
        for tok in self.sorted_tokens[i : i + max_tokens]:
            if not tok.startswith(term):
                break
            out |= self.postings[tok]
        return out

    def match(self, terms: list[str]) -> dict[str, float]:
        """fid → share of the query words found in its name/title."""
        parts: list[list[str]] = []
        for term in terms:
            pieces = sorted(self.tokens(term))
            if pieces:
                parts.append(pieces)
        if not parts:
            return {}
        hits: dict[str, float] = {}
        for pieces in parts:
            found: set[str] | None = None
            for piece in pieces:  # ERR_QUUX_4711 must match all its pieces
                got = self.lookup(piece)
                found = got if found is None else found & got
                if not found:
                    break
            for fid in found or ():
                hits[fid] = hits.get(fid, 0.0) + 1.0 / len(parts)
        return hits


# ---------------------------------------------------------------- searcher
class Searcher:
    def __init__(
        self,
        store: Store,
        text_embedder: Any,
        image_embedder: Any | None,
        *,
        paths: Any = None,
        settings: Any = None,
        image_problem: str = "",
        ranking: Ranking | None = None,
    ) -> None:
        self.store = store
        self.text_embedder = text_embedder
        self.image_embedder = image_embedder
        self.paths = paths
        self.settings = settings
        self.image_problem = image_problem
        self.ranking = ranking or Ranking()
        self._lock = threading.Lock()
        self._chunk_cache = _VectorCache()
        self._image_cache = _VectorCache()
        self._fts_state: tuple[Any, str | None] = (None, None)  # (table version, why the keyword index is unusable)
        self._names: tuple[int, NameIndex] | None = None
        self._neutral: np.ndarray | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()  # not self._lock: that one is held while vectors load

    def _side(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Run one independent part of a query beside the calling thread."""
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lodestar-query")
            return self._pool.submit(fn, *args)

    def close(self) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    # ----------------------------------------------------------------- text
    def search(self, query: str, *, kind: str = "all", limit: int = 20, filters: dict[str, Any] | None = None) -> SearchResponse:
        started = time.perf_counter()
        limit = _checked_limit(limit)
        resp = SearchResponse(query=(query or "").strip())
        too_long = too_long_message(query or "")
        if too_long:
            resp.message = too_long  # refused before any work: nothing in a search grows with it
            return resp
        parsed = parse_query(query or "")
        kind = parsed.kind or kind
        if not parsed.text and not parsed.has_filters() and not any(k != "sort" for k in (filters or {})):
            return resp  # nothing asked; filters alone (operators or the CLI's flags) list files
        files = self.store.files()
        allowed = _FileFilter.build(parsed, filters, kind)
        if parsed.excludes:
            # -word drops a file wherever the word is, so every lane (passages, keywords,
            # names, images, a listing) skips these files through the same filter.
            allowed.exclude_fids |= self._files_containing(parsed.excludes, files)
        docs: list[SearchResult] = []
        images: list[SearchResult] = []
        if parsed.text:
            pending_images: Future[list[SearchResult]] | None = None
            if kind in ("all", "image"):
                if self.image_embedder is not None:
                    pending_images = self._side(self._images_for_text, parsed.text, files, allowed, limit)
                elif self.image_problem:
                    # A side note: the image model's state is not the answer to a text query.
                    resp.note = f"Images were not searched: {self.image_problem}"
            if kind in ("all", "text", "other"):
                docs = self._search_documents(parsed, files, allowed, limit, kind)
            if pending_images is not None:
                images = pending_images.result()
            if kind in ("all", "image"):
                images = self._with_image_names(images, parsed, files, allowed, limit)
        else:
            # Only operators (e.g. "type:pdf after:2025"): list the matching files, newest first.
            docs, images = self._browse(files, allowed, limit, kind)
            resp.ranked = False  # a listing: there is no relevance to show
        sort = (filters or {}).get("sort") or parsed.sort
        if sort == "date":
            docs.sort(key=lambda r: -r.mtime)
            images.sort(key=lambda r: -r.mtime)
        resp.results = docs + images
        resp.counts = {
            "text": sum(1 for r in docs if r.kind == "text"),
            "image": len(images),
            "other": sum(1 for r in docs if r.kind != "text"),
        }
        if not resp.results and not resp.message:
            resp.message = NO_MATCH
        if parsed.problems:
            # What the query asked for but did not get is always said, beside "No good
            # match." and never displaced by the image model's note (resp.note).
            ignored = "Ignored: " + "; ".join(parsed.problems)
            resp.message = f"{resp.message} {ignored}" if resp.message else ignored
        resp.elapsed_ms = (time.perf_counter() - started) * 1000
        return resp

    def _with_image_names(
        self, images: list[SearchResult], parsed: ParsedQuery, files: dict[str, FileRecord], allowed: _FileFilter, limit: int
    ) -> list[SearchResult]:
        """Images whose file name has the query's words, beside what CLIP found.

        Every image is findable by its name from the moment it is scanned: one still
        waiting for the image model ("red circle" → red-circle.jpg) and one CLIP ranks
        low alike. A sentence is not a file name, so long queries skip this lane.
        """
        terms = parsed.terms
        if not terms or len(terms) > NAME_QUERY_MAX_WORDS:
            return images
        shown = {r.path: r for r in images}
        named: list[FileRecord] = []
        for fid, share in self._name_index(files).match(terms).items():
            rec = files.get(fid)
            if rec is None or rec.kind != "image" or not rec.available or share < 0.5:
                continue
            if rec.state not in ("indexed", "pending") or not allowed.accepts(rec):
                continue
            name_text = rec.name + " " + rec.title
            if parsed.phrases and not all(contains_phrase(name_text, p) for p in parsed.phrases):
                continue
            score = self.ranking.name_only_score * share
            if rec.path in shown:
                shown[rec.path].score = max(shown[rec.path].score, score)
                continue
            shown[rec.path] = _result(rec, score)
            named.append(rec)
        self._add_thumbnails([shown[r.path] for r in named], named)
        return sorted(shown.values(), key=lambda r: -r.score)[:limit]

    def _images_for_text(self, text: str, files: dict[str, FileRecord], allowed: _FileFilter, limit: int) -> list[SearchResult]:
        assert self.image_embedder is not None
        qvec = np.asarray(self.image_embedder.embed_query(text), np.float32)
        return self._search_images(qvec, files, allowed, limit, floor=self.ranking.image_floor, gap=self.ranking.image_gap)

    def similar_image(self, image: Any, *, text: str | None = None, limit: int = 20) -> SearchResponse:
        """Images like ``image`` (path, bytes or PIL), optionally steered by words."""
        started = time.perf_counter()
        limit = _checked_limit(limit)
        resp = SearchResponse(query=text or "")
        too_long = too_long_message(text or "")
        if too_long:
            resp.message = too_long
            return resp
        if self.image_embedder is None:
            resp.message = f"Image search is unavailable: {self.image_problem or 'no image model'}"
            return resp
        img = _as_pil(image)
        vec = np.asarray(self.image_embedder.embed_documents([img])[0], np.float32)
        if text and text.strip():
            vec = self.compose(vec, text)
        resp.results = self._search_images(vec, self.store.files(), _FileFilter(), limit,
                                           floor=self.ranking.similar_floor, gap=2.0)
        resp.counts = {"image": len(resp.results)}
        if not resp.results:
            resp.message = NO_MATCH
        resp.elapsed_ms = (time.perf_counter() - started) * 1000
        return resp

    def compose(self, image_vec: np.ndarray, text: str, weight: float | None = None) -> np.ndarray:
        """normalise(image + w · (text(words) − text(neutral))): see docs/SEARCH.md.

        Subtracting a neutral caption's vector removes what every caption has in
        common (CLIP's text/image "modality gap"), leaving only the direction the
        words add; ``w = 1`` moves the query by as much as the words differ from
        saying nothing at all.
        """
        assert self.image_embedder is not None
        w = self.ranking.compose_weight if weight is None else weight
        t = _unit(np.asarray(self.image_embedder.embed_query(text), np.float32))
        if self._neutral is None:
            self._neutral = _unit(np.asarray(self.image_embedder.embed_query(self.ranking.compose_neutral), np.float32))
        return _unit(_unit(image_vec) + w * (t - self._neutral))

    def similar_to(self, path: str, *, limit: int = 20) -> SearchResponse:
        """Files like an indexed one: images by their vector, documents by their chunks."""
        started = time.perf_counter()
        limit = _checked_limit(limit)
        files = self.store.files()
        rec = files.get(file_id(os.path.abspath(path)))
        resp = SearchResponse(query=path)
        if rec is None:
            resp.message = "That file is not in the index."
            return resp
        exclude = _FileFilter(exclude_fids={rec.fid})
        if rec.kind == "image":
            row = self.store.image_row(rec.fid, rec.content_hash)
            if row is None:
                resp.message = _no_vectors(self.store, rec.fid, "That image has no vector yet.")
                return resp
            resp.results = self._search_images(row.vector, files, exclude, limit, floor=self.ranking.similar_floor, gap=2.0)
        else:
            rows = self.store.chunk_rows(rec.fid, rec.content_hash)
            if not rows:
                resp.message = _no_vectors(self.store, rec.fid, "That file has no text vectors.")
                return resp
            # The mean of its passages is the document's centre of meaning.
            vec = _unit(np.mean([r.vector for r in rows], axis=0))
            cands = self._vector_candidates(vec, files, exclude, self.ranking.vector_k)
            for c in cands:
                c.score = c.sim
            resp.results = self._group(cands, files, limit, parsed=None, floor=self.ranking.similar_floor, gap=2.0)
        resp.counts = {rec.kind: len(resp.results)}
        if not resp.results:
            resp.message = NO_MATCH
        resp.elapsed_ms = (time.perf_counter() - started) * 1000
        return resp

    # -------------------------------------------------------- documents
    def _search_documents(
        self, parsed: ParsedQuery, files: dict[str, FileRecord], allowed: _FileFilter, limit: int, kind: str
    ) -> list[SearchResult]:
        rk = self.ranking
        terms = parsed.terms
        keyword: Future[Any] | None = None
        if kind in ("all", "text"):  # BM25 needs no query vector: start it first
            keyword = self._side(self._keyword_rows, terms, files, allowed, rk.keyword_k)
        qvec = _unit(np.asarray(self.text_embedder.embed_query(parsed.text), np.float32))
        cands: list[_Candidate] = []
        if keyword is not None:
            cands = self._vector_candidates(qvec, files, allowed, rk.vector_k)
            seen = {(c.fid, c.start) for c in cands}
            for c in self._keyword_candidates(keyword.result(), qvec, files, allowed, rk.keyword_k):
                if (c.fid, c.start) not in seen:
                    cands.append(c)
        kw_weight = self._keyword_weight(parsed)
        for c in cands:
            c.keyword = _coverage(c.text, terms) if terms else 0.0
            c.score = c.sim + kw_weight * c.keyword
        names = self._name_index(files).match(terms) if terms else {}
        if len(terms) > NAME_QUERY_MAX_WORDS:
            # A sentence is not a file name: partial name matches of question words
            # (json, list, file) measured as noise; only name-only files keep them.
            names = {f: v for f, v in names.items() if files[f].state == "name_only" and v >= 0.5}
        return self._group(cands, files, limit, parsed=parsed, floor=rk.floor, gap=rk.gap, names=names, allowed=allowed, kind=kind)

    def _keyword_weight(self, parsed: ParsedQuery) -> float:
        rk = self.ranking
        words = parsed.text.split()
        if parsed.phrases or any(looks_like_identifier(w) for w in words):
            return rk.identifier_weight
        if len(parsed.terms) <= 2:
            return rk.short_query_weight
        return rk.keyword_weight

    def _group(
        self,
        cands: list[_Candidate],
        files: dict[str, FileRecord],
        limit: int,
        *,
        parsed: ParsedQuery | None,
        floor: float,
        gap: float,
        names: dict[str, float] | None = None,
        allowed: _FileFilter | None = None,
        kind: str = "all",
    ) -> list[SearchResult]:
        """One result per file: its best passage, ranked with a length prior; names find name-only files."""
        rk = self.ranking
        by_file: dict[str, list[_Candidate]] = {}
        for c in cands:
            by_file.setdefault(c.fid, []).append(c)
        names = names or {}
        terms = parsed.terms if parsed is not None else []
        phrases = parsed.phrases if parsed is not None else []
        excludes = parsed.excludes if parsed is not None else []
        scored: list[tuple[float, float, FileRecord, _Candidate | None]] = []  # (rank score, evidence, file, passage)
        for fid, group in by_file.items():
            rec = files[fid]
            group.sort(key=lambda c: -c.score)
            best = next((c for c in group if all(contains_phrase(c.text, p) for p in phrases)), None)
            name_text = rec.name + " " + rec.title
            if best is None:
                if not (phrases and all(contains_phrase(name_text, p) for p in phrases)):
                    continue  # an exact phrase was asked for and this file lacks it
                best = group[0]
            if excludes and any(contains_phrase(best.text, x) or contains_phrase(name_text, x) for x in excludes):
                continue
            score = best.score - rk.length_prior * math.log(max(1, rec.n_chunks))
            # The cutoff judges the evidence (cosine + keyword), not the length prior,
            # so a right answer inside a long file is never hidden for being long.
            scored.append((score, best.score, rec, best))
        # Files found by name only (name-only records, or documents with no passage found).
        if kind in ("all", "text", "other"):
            for fid, share in names.items():
                if fid in by_file:
                    continue
                rec = files.get(fid)
                if rec is None or not rec.available or rec.state not in ("indexed", "name_only"):
                    continue
                if rec.kind == "image" or (kind == "text" and rec.kind != "text") or (kind == "other" and rec.kind == "text"):
                    continue
                if allowed is not None and not allowed.accepts(rec):
                    continue
                name_text = rec.name + " " + rec.title
                if phrases and not all(contains_phrase(name_text, p) for p in phrases):
                    continue
                if excludes and any(contains_phrase(name_text, x) for x in excludes):
                    continue
                value = rk.name_only_score * share
                scored.append((value, value, rec, None))
        scored.sort(key=lambda t: -t[0])
        if not scored:
            return []
        top = max(t[1] for t in scored)
        cut = max(floor, top - gap)
        out: list[SearchResult] = []
        for score, evidence, rec, best in scored:  # results are built only for what is shown
            if evidence < cut:
                continue
            # Ranked by `score`; shown with the evidence the floor judged, so no listed
            # result reads as "0.00" or below (the length prior only orders).
            if best is None:
                out.append(_result(rec, evidence))
            else:
                res = _result(rec, evidence, passage=best.text, start=best.start, end=best.end)
                res.highlights = word_spans(best.text, terms, phrases)
                out.append(res)
            if len(out) >= limit:
                break
        return out

    # ------------------------------------------------------- candidates
    def _vector_candidates(self, qvec: np.ndarray, files: dict[str, FileRecord], allowed: _FileFilter, k: int) -> list[_Candidate]:
        table = self.store.chunks_table()
        if table is None:
            return []
        rows = _nearest(self, table, self._chunk_cache, qvec, files, allowed, k, ["fid", "file_hash", "ord", "text", "start", "end"])
        return [_Candidate(fid=r["fid"], text=r["text"], start=r["start"], end=r["end"], sim=r["sim"]) for r in rows]

    def _keyword_rows(self, terms: list[str], files: dict[str, FileRecord], allowed: _FileFilter, k: int) -> Any | None:
        """The BM25 search itself (arrow rows, or None): no query vector needed."""
        table = self.store.chunks_table()
        if table is None or not terms or not self._keyword_lane(table):
            return None
        # Plain words only: LanceDB's query parser never sees the person's punctuation.
        text = " ".join(w for t in terms for w in re.findall(r"\w+", t))
        if not text:
            return None
        try:
            q = table.search(text, query_type="fts").select(["fid", "file_hash", "text", "start", "end", "vector", "_score"])
            where = allowed.where(files)
            if where:
                q = q.where(where, prefilter=True)
            return q.limit(k * (1 if where or not allowed.active else 3)).to_arrow()
        except Exception as exc:  # noqa: BLE001 - no keyword index/rows yet: meaning alone still works
            if self._fts_state[1] is None and fts_problem(table) is None and has_fts_index(table):
                # Listed and present, yet it fails: off for this version (said once, not per query).
                self._fts_state = (table.version, f"it cannot be opened ({str(exc).strip()[:200]})")
                log.warning("keyword index of %s is unusable (%s); keyword matches are off until it is rebuilt",
                            table.name, self._fts_state[1])
            else:
                log.debug("keyword search unavailable: %s", exc)
            return None

    def _keyword_lane(self, table: Any) -> bool:
        """Whether the keyword index can be queried (checked once per table version, issue 11.13)."""
        version = table.version
        with self._lock:
            state = self._fts_state
        if state[0] != version:
            why = fts_problem(table)
            if why and why != state[1]:
                log.warning("keyword index of %s is unusable (%s); keyword matches are off until it is rebuilt",
                            table.name, why)
            state = (version, why)
            with self._lock:
                self._fts_state = state
        return state[1] is None

    def _keyword_candidates(
        self, arrow: Any | None, qvec: np.ndarray, files: dict[str, FileRecord], allowed: _FileFilter, k: int
    ) -> list[_Candidate]:
        out: list[_Candidate] = []
        if arrow is None or arrow.num_rows == 0:
            return out
        vecs = np.asarray(arrow.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False), np.float32)
        vecs = vecs.reshape(arrow.num_rows, -1)
        sane = sane_rows(vecs)
        sims = np.where(sane[:, None], vecs, 0.0) @ qvec
        for i, (fid, fh, txt, s, e) in enumerate(
            zip(
                arrow.column("fid").to_pylist(),
                arrow.column("file_hash").to_pylist(),
                arrow.column("text").to_pylist(),
                arrow.column("start").to_pylist(),
                arrow.column("end").to_pylist(),
            )
        ):
            rec = files.get(fid)
            if not _live(rec, fh) or not allowed.accepts(rec):
                continue
            if not sane[i]:
                _note_damaged(self.store, self.store.chunks_table(), [fid])
                continue
            out.append(_Candidate(fid=fid, text=txt, start=s, end=e, sim=float(sims[i])))
        return out[:k]

    def _files_containing(self, phrases: list[str], files: dict[str, FileRecord]) -> set[str]:
        """Files with a live passage that contains any of ``phrases`` (whole words, any case).

        Exact: rows are narrowed (keyword index, or a substring scan of the passage text)
        and each is then confirmed with `contains_phrase`. Names and titles are checked
        by `_FileFilter.accepts`.
        """
        table = self.store.chunks_table()
        if table is None:
            return set()
        out: set[str] = set()
        for phrase in phrases:
            rows = self._rows_mentioning(table, phrase)
            for fid, fh, text in zip(
                rows.column("fid").to_pylist(), rows.column("file_hash").to_pylist(), rows.column("text").to_pylist()
            ):
                if fid not in out and _live(files.get(fid), fh) and contains_phrase(text, phrase):
                    out.add(fid)
        return out

    def _rows_mentioning(self, table: Any, phrase: str) -> Any:
        """Chunk rows (fid, file_hash, text) that may contain ``phrase``: never fewer than do."""
        import pyarrow.compute as pc

        words = re.findall(r"\w+", phrase.lower())
        # Every row with the phrase has each of its words; the keyword index finds a word
        # unless it drops it (a stop word, or a token of 40+ characters).
        indexed = [w for w in words if w not in STOP_WORDS and len(w) < _FTS_MAX_TOKEN]
        if indexed:
            try:
                q = table.search(max(indexed, key=len), query_type="fts")
                return q.select(["fid", "file_hash", "text", "_score"]).limit(None).to_arrow()
            except Exception as exc:  # noqa: BLE001 - no keyword index yet: read the passages instead
                log.debug("keyword index unavailable for an exclusion: %s", exc)
        cache = self._chunk_cache
        with self._lock:
            current = cache.meta is not None and cache.key is not None and cache.key[0] == table.version
            rows = cache.meta if current else None
        if rows is None:
            rows = table.search().select(["fid", "file_hash", "text"]).limit(None).to_arrow()
        if words and rows.num_rows:
            rows = rows.filter(pc.match_substring(rows.column("text"), pattern=max(words, key=len), ignore_case=True))
        return rows

    def _name_index(self, files: dict[str, FileRecord]) -> NameIndex:
        key = id(files)  # store.files() returns the same dict until the table changes
        with self._lock:
            if self._names is None or self._names[0] != key:
                self._names = (key, NameIndex(files))
            return self._names[1]

    # ----------------------------------------------------------- images
    def _search_images(
        self, qvec: np.ndarray, files: dict[str, FileRecord], allowed: _FileFilter, limit: int, *, floor: float, gap: float
    ) -> list[SearchResult]:
        table = self.store.images_table()
        if table is None:
            return []
        rows = _nearest(self, table, self._image_cache, _unit(qvec), files, allowed, max(limit * 2, 20), ["fid", "file_hash", "thumb", "width", "height"])
        out: dict[str, SearchResult] = {}
        for r in rows:
            if r["fid"] in out:
                continue
            res = _result(files[r["fid"]], r["sim"])
            res.width, res.height = r["width"], r["height"]
            if self.paths is not None and r["thumb"]:
                res.thumbnail = str(self.paths.thumbnails / r["thumb"])
            out[r["fid"]] = res
        ranked = sorted(out.values(), key=lambda r: -r.score)
        if not ranked:
            return []
        cut = max(floor, ranked[0].score - gap)
        return [r for r in ranked if r.score >= cut][:limit]

    def _browse(self, files: dict[str, FileRecord], allowed: _FileFilter, limit: int, kind: str) -> tuple[list[SearchResult], list[SearchResult]]:
        docs: list[SearchResult] = []
        images: list[SearchResult] = []
        # Images waiting for the image model are listed too: they exist, by name and date.
        listed = ("indexed", "name_only", "pending")
        recs = [r for r in files.values() if r.available and r.state in listed and allowed.accepts(r)]
        recs = [r for r in recs if r.state != "pending" or r.kind == "image"]
        recs.sort(key=lambda r: -r.mtime_ns)
        image_recs: list[FileRecord] = []
        for rec in recs:
            if rec.kind == "image" and kind in ("all", "image") and len(images) < limit:
                images.append(_result(rec, 0.0))
                image_recs.append(rec)
            elif rec.kind != "image" and kind in ("all", "text", "other") and len(docs) < limit:
                if kind == "text" and rec.kind != "text":
                    continue
                docs.append(_result(rec, 0.0))
        self._add_thumbnails(images, image_recs)
        return docs, images

    def _add_thumbnails(self, images: list[SearchResult], recs: list[FileRecord]) -> None:
        """Thumbnails and sizes for listed images, as ranked image results carry them (one query)."""
        table = self.store.images_table() if recs and self.paths is not None else None
        if table is None:
            return
        fids = ", ".join(f"'{_hexcheck(r.fid)}'" for r in recs)
        arrow = (table.search().where(f"fid IN ({fids})").select(["fid", "file_hash", "thumb", "width", "height"])
                 .limit(len(recs) * 2 + 10).to_arrow())
        meta = {row["fid"]: row for row in arrow.to_pylist()}
        for res, rec in zip(images, recs):
            row = meta.get(rec.fid)
            if row is None or row["file_hash"] != rec.content_hash:
                continue  # not embedded yet, or of older content: no thumbnail to vouch for
            res.width, res.height = row["width"], row["height"]
            if row["thumb"]:
                res.thumbnail = str(self.paths.thumbnails / row["thumb"])


# ------------------------------------------------------------------ filters
@dataclasses.dataclass
class _FileFilter:
    """Which files may appear: filters from the window/CLI merged with query operators."""

    folder: str = ""  # absolute folder prefix (window / --in)
    fragments: list[str] = dataclasses.field(default_factory=list)  # in:Name or in:a/b
    exts: list[str] = dataclasses.field(default_factory=list)
    after: float | None = None  # unix time, inclusive
    before: float | None = None  # unix time, exclusive
    kind: str = "all"
    exclude_fids: set[str] = dataclasses.field(default_factory=set)
    excludes: list[str] = dataclasses.field(default_factory=list)  # -word / -"phrase": never in the name or title

    PREFILTER_MAX = 2000  # small allowed sets go to LanceDB as an `fid IN (...)` prefilter

    @classmethod
    def build(cls, parsed: ParsedQuery, filters: dict[str, Any] | None, kind: str) -> _FileFilter:
        f = filters or {}
        out = cls(kind=kind)
        if f.get("folder"):
            out.folder = os.path.abspath(os.path.expanduser(str(f["folder"])))
        out.fragments = [x for x in parsed.folders if x]
        exts = f.get("ext") or []
        if isinstance(exts, str):
            exts = [exts]
        out.exts = sorted({e.lower().lstrip(".") for e in [*exts, *parsed.exts] if e})
        after = [d for d in (f.get("after"), parsed.after) if d]
        before = [d for d in (f.get("before"), parsed.before) if d]
        if after:
            out.after = _day_start(max(after))
        if before:
            out.before = _day_start(min(before))
        out.excludes = list(parsed.excludes)
        return out

    @property
    def narrows(self) -> bool:
        """Folder, type or date: what a small `fid IN (...)` prefilter can express."""
        return bool(self.folder or self.fragments or self.exts or self.after is not None or self.before is not None)

    @property
    def active(self) -> bool:
        return self.narrows or bool(self.exclude_fids or self.excludes)

    def key(self) -> tuple[Any, ...]:
        return (self.folder, tuple(self.fragments), tuple(self.exts), self.after, self.before,
                tuple(sorted(self.exclude_fids)), tuple(self.excludes))

    def accepts(self, rec: FileRecord) -> bool:
        if rec.fid in self.exclude_fids:
            return False
        if self.excludes:
            # As name matching reads names: quarterly_forecast_model.bin and
            # QuarterlyForecast.xlsx both have the word "forecast".
            name_text = rec.name + " " + rec.title
            name_words = " ".join(NameIndex._SPLIT.findall(name_text))
            if any(contains_phrase(name_text, x) or contains_phrase(name_words, x) for x in self.excludes):
                return False
        if self.folder:
            prefix = self.folder.rstrip(os.sep) + os.sep
            if not (rec.path.startswith(prefix) or rec.path == self.folder):
                return False
        if self.fragments and not all(_in_folder(rec.path, frag) for frag in self.fragments):
            return False
        if self.exts and rec.ext not in self.exts:
            return False
        mtime = rec.mtime_ns / 1e9
        if self.after is not None and mtime < self.after:
            return False
        if self.before is not None and mtime >= self.before:
            return False
        return True

    def where(self, files: dict[str, FileRecord]) -> str:
        """An `fid IN (...)` prefilter when the allowed set is small; '' otherwise."""
        if not self.narrows:
            return ""  # exclusions alone leave most files: checked on each row instead
        key = (self.key(), id(files), len(files))
        cached = _WHERE_CACHE.get(key)
        if cached is None:
            cached = self._where(files)
            if len(_WHERE_CACHE) > 16:
                _WHERE_CACHE.clear()
            _WHERE_CACHE[key] = cached
        return cached

    def _where(self, files: dict[str, FileRecord]) -> str:
        fids = [fid for fid, rec in files.items() if self.accepts(rec)]
        if len(fids) > self.PREFILTER_MAX:
            return ""
        if not fids:
            return "fid IN ('0')"  # matches nothing; fids are 32 hex digits
        return "fid IN (" + ", ".join(f"'{_hexcheck(f)}'" for f in fids) + ")"


_WHERE_CACHE: dict[tuple[Any, ...], str] = {}
"""Prefilters by (filter, files-table snapshot): a filter is evaluated once per table change."""


def _in_folder(path: str, fragment: str) -> bool:
    """``in:Projects`` matches a folder named so; ``in:work/2025`` a run of folder names."""
    folder = os.path.dirname(path).lower()
    frag = fragment.strip().strip("/\\").lower().replace("\\", "/")
    if not frag:
        return True
    parts = folder.replace("\\", "/").split("/")
    want = frag.split("/")
    n = len(want)
    return any(parts[i : i + n] == want for i in range(len(parts) - n + 1))


def _day_start(day: dt.date) -> float:
    """Local midnight of ``day`` as unix time, for any date Python has (0001-01-01 included)."""
    try:
        return dt.datetime.combine(day, dt.time.min).timestamp()
    except (OverflowError, OSError, ValueError):
        # Past what the platform's local-time functions handle (year 1, 9999-12-31 east
        # of UTC, before 1970 on Windows): ignoring the time zone there moves the bound
        # by hours, centuries from any file's modification time.
        return (day - dt.date(1970, 1, 1)).days * 86400.0


def _checked_limit(limit: Any) -> int:
    """How many results a caller may ask for: a whole number from 1 to `RESULTS_MAX`."""
    try:
        n = operator.index(limit)  # ints and numpy integers; not 2.5 or "3"
    except TypeError:
        n = 0
    if isinstance(limit, bool) or not 1 <= n <= RESULTS_MAX:
        raise ValueError(f"limit must be a whole number from 1 to {RESULTS_MAX}, not {limit!r}")
    return n


def _hexcheck(value: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{1,64}", value):
        raise ValueError(f"not a hex id: {value!r}")
    return value


# -------------------------------------------------------- nearest neighbours
def _nearest(
    searcher: Searcher,
    table: Any,
    cache: _VectorCache,
    qvec: np.ndarray,
    files: dict[str, FileRecord],
    allowed: _FileFilter,
    k: int,
    columns: list[str],
) -> list[dict[str, Any]]:
    """The k live rows nearest to ``qvec``: exact in memory while small, else LanceDB (ANN)."""
    version = table.version
    with searcher._lock:
        if cache.key is None or cache.key[0] != version:
            indexed = has_vector_index(table)
            broken = vector_index_problem(table) if indexed else None
            if broken:
                # Until the writer rebuilds it, rank exactly (issue 11.13); said once per version.
                log.warning("vector index of %s is unusable (%s); ranking without it", getattr(table, "name", "?"), broken)
                indexed = False
            rows = table.count_rows()
            cache.key = (version, indexed, rows, nprobes_for(table) if indexed else 0, bool(broken))
            cache.meta = None
            cache.valid_key = None
        _version, indexed, rows, nprobes, bypass = cache.key
        use_memory = not indexed and rows <= EXACT_MAX_ROWS
        if use_memory and cache.meta is None:
            _load(cache, table, columns)
        if use_memory and cache.valid_key != id(files):
            live = np.array([_live_hash(files.get(f)) for f in cache.fids], dtype=object)
            hashes = cache.meta.column("file_hash").to_numpy(zero_copy_only=False)
            cache.valid = (live[cache.codes] == hashes) if len(hashes) else np.zeros(0, bool)
            cache.valid_key = id(files)
            if len(cache.valid) and not cache.sane.all():
                # Damaged on disk: never ranked; live ones are noted for the writer to re-embed.
                _note_damaged(searcher.store, table, [cache.fids[c] for c in cache.codes[cache.valid & ~cache.sane]])
                cache.valid = cache.valid & cache.sane
        if use_memory and allowed.active and cache.filter_key != (allowed.key(), id(files), version):
            cache.filter_ok = np.array([f in files and allowed.accepts(files[f]) for f in cache.fids], bool)
            cache.filter_key = (allowed.key(), id(files), version)
        if use_memory:
            vectors, codes, valid, meta, ok = cache.vectors, cache.codes, cache.valid, cache.meta, cache.filter_ok
    if use_memory:
        if not len(valid):
            return []
        mask = valid
        if allowed.active:
            mask = mask & ok[codes]
        sims = vectors @ qvec
        sims = np.where(mask, sims, -np.inf)
        kk = min(k, int(mask.sum()))
        if kk <= 0:
            return []
        idx = np.argpartition(-sims, kk - 1)[:kk]
        idx = idx[np.argsort(-sims[idx])]
        picked = meta.take(idx).to_pylist()
        for row, i in zip(picked, idx):
            row["sim"] = float(sims[i])
        return picked
    # LanceDB: the ANN index when present (or a flat scan while it is being built).
    where = allowed.where(files)
    q = table.search(np.asarray(qvec, np.float32), vector_column_name="vector").distance_type("cosine")
    fetch = k * (3 if allowed.active and not where else 1) + 20
    if indexed:
        # HNSW's search breadth (ef) must exceed what we fetch, or recall collapses
        # (measured: 0.33 recall@10 with the default ef at 100k rows).
        q = q.nprobes(nprobes).ef(max(HNSW_EF, fetch))
    elif bypass:
        q = q.bypass_vector_index()
    if where:
        q = q.where(where, prefilter=True)
    arrow = q.select([*columns, "vector"] if indexed else [*columns, "vector", "_distance"]).limit(fetch).to_arrow()
    sane = np.ones(arrow.num_rows, bool)
    if arrow.num_rows:
        # Every fetched vector is checked: a damaged row is never ranked (issue 11.6).
        mat = _row_vectors(arrow)
        sane = sane_rows(mat)
        if not sane.all():
            _note_damaged(searcher.store, table, [f for f, h, ok in zip(arrow.column("fid").to_pylist(), arrow.column("file_hash").to_pylist(), sane)
                                                   if not ok and _live(files.get(f), h)])
    if indexed and arrow.num_rows:
        # Exact re-rank of what the index found: its distances are 8-bit quantised. Same
        # recall as LanceDB's refine_factor=1, one fewer pass over the rows (-1 ms at 100k).
        sims = np.where(sane, np.where(sane[:, None], mat, 0.0) @ np.asarray(qvec, np.float32), -np.inf)
        order = np.argsort(-sims, kind="stable")
        arrow = arrow.drop_columns(["vector"]).take(order)
        sims, sane = sims[order], sane[order]
    else:
        with np.errstate(invalid="ignore"):  # a damaged row's distance; dropped below
            sims = 1.0 - np.asarray(arrow.column("_distance").to_numpy(zero_copy_only=False), np.float64)
        arrow = arrow.drop_columns(["_distance", "vector"])
    out: list[dict[str, Any]] = []
    for row, sim, ok in zip(arrow.to_pylist(), sims, sane):
        rec = files.get(row["fid"])
        if not ok or not _live(rec, row["file_hash"]) or not allowed.accepts(rec):
            continue
        row["sim"] = float(sim)
        out.append(row)
        if len(out) >= k:
            break
    return out


def _load(cache: _VectorCache, table: Any, columns: list[str]) -> None:
    arrow = table.to_arrow()
    n = arrow.num_rows
    if n:
        flat = arrow.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        cache.vectors = np.ascontiguousarray(np.asarray(flat, np.float32).reshape(n, -1))
        cache.sane = sane_rows(cache.vectors)
        if not cache.sane.all():
            # Zeroed, so the matrix product stays finite and quiet; masked out of every ranking.
            cache.vectors = cache.vectors.copy()
            cache.vectors[~cache.sane] = 0.0
    else:
        cache.vectors = np.zeros((0, 1), np.float32)
        cache.sane = np.zeros(0, bool)
    fids = arrow.column("fid").to_pylist()
    index: dict[str, int] = {}
    cache.codes = np.fromiter((index.setdefault(f, len(index)) for f in fids), np.int32, count=n)
    cache.fids = list(index)
    cache.meta = arrow.select(columns).combine_chunks()


def _row_vectors(arrow: Any) -> np.ndarray:
    flat = arrow.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return np.asarray(flat, np.float32).reshape(arrow.num_rows, -1)


def _note_damaged(store: Any, table: Any, fids: list[str]) -> None:
    """Tell the store (and so the writer) about files whose stored vectors are damaged."""
    if fids:
        store.note_damaged(fids, f"damaged vectors in {getattr(table, 'name', 'the index')}")


def _no_vectors(store: Any, fid: str, otherwise: str) -> str:
    if fid in store.damaged_noted():
        return "That file's stored vectors are damaged; it is being re-indexed. Try again in a moment."
    return otherwise


def _live_hash(rec: FileRecord | None) -> str | None:
    if rec is None or rec.state != "indexed" or not rec.available:
        return None
    return rec.content_hash


def _live(rec: FileRecord | None, file_hash: str) -> bool:
    return rec is not None and rec.state == "indexed" and rec.available and rec.content_hash == file_hash


# ------------------------------------------------------------------ helpers
def _coverage(text: str, terms: list[str]) -> float:
    """Share of the query words that occur in ``text`` (whole words, prefix allowed)."""
    if not terms:
        return 0.0
    low = text.lower()
    found = 0
    for t in terms:
        i = low.find(t)
        while i >= 0:
            if (i == 0 or not low[i - 1].isalnum()) :
                found += 1
                break
            i = low.find(t, i + 1)
    return found / len(terms)


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float32)
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def _result(rec: FileRecord, score: float, passage: str = "", start: int = -1, end: int = -1) -> SearchResult:
    return SearchResult(
        path=rec.path,
        kind=rec.kind,  # type: ignore[arg-type]
        score=float(score),
        name=rec.name,
        folder=rec.folder,
        ext=rec.ext,
        size=rec.size,
        mtime=rec.mtime_ns / 1e9,
        passage=passage,
        passage_start=start,
        passage_end=end,
        state=rec.state,
    )


def _as_pil(image: Any) -> Any:
    """A path, raw bytes or a PIL image → an RGB PIL image (through the safe extractor)."""
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.convert("RGB")
    from indexer.library.settings import Settings
    from indexer.ingest.extract import extract_image

    if isinstance(image, (bytes, bytearray, memoryview)):
        # Raw bytes (drag-and-drop, clipboard) go through the same guarded decoder.
        import tempfile

        data = bytes(image)
        with tempfile.TemporaryDirectory(prefix="lodestar-query-") as tmp:
            path = os.path.join(tmp, "query" + _sniff_ext(data))
            with open(path, "wb") as fh:
                fh.write(data)
            return extract_image(path, Settings()).image
    return extract_image(os.fspath(image), Settings()).image


def _sniff_ext(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return ".png"
    if data.startswith(b"\xff\xd8"):
        return ".jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    if data[:3] == b"GIF":
        return ".gif"
    if data[:2] == b"BM":
        return ".bmp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return ".tiff"
    return ".png"
