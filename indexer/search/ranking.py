"""Query → ranked files: one result per file, with its best passage.

Documents (see docs/SEARCH.md for the figures behind every constant):

1. Candidates come from three places: the nearest chunks by meaning and a
   keyword (BM25) search over chunk text, both asked of the store's read layer
   (`indexer.store.read.StoreReader`: exact in memory while a table is small, the
   ANN index past it), and file names/titles (`indexer.search.names.NameIndex`).
2. Every candidate chunk is then scored on the same absolute scale:
   cosine similarity to the query, plus a keyword bonus for the share of the
   query's words it contains. The bonus weighs more for identifier-like words
   (ERR_QUUX_4711, parseConfig) that a sentence model does not understand.
3. A file's score is its best chunk minus a small prior for length (a long
   file has many chances of one lucky chunk). Names find files whose name or
   title has the query words but no passage matched, and name-only files.
4. A cutoff (an absolute floor and a gap to the top score) hides the junk tail;
   a passage within the gap of the top passage's cosine is kept all the same (a
   paraphrase is not hidden for lacking the words the top one has). When nothing
   clears it the message is "No good match.".

Images are ranked by CLIP cosine; text→image, image→image and image+words.
Only live rows are ever returned by the reader (`indexer.store.read.is_live`):
a crash or a concurrent write never shows stale passages.

One query's independent parts run side by side (`Searcher._side`): the CLIP text
tower and image search, and the keyword search, overlap the text model's query
embedding and the vector search. Both models and LanceDB release the GIL, so on a
2-core laptop this takes roughly a third off a query (docs/SEARCH.md, Performance).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import operator
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from indexer.search.filters import FileFilter
from indexer.search.names import NameIndex
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
from indexer.search.query_image import decode_query_image
from indexer.store.read import FTS_MAX_TOKEN, StoreReader, is_live
from indexer.store.recognised import decode_lines, ocr_live
from indexer.store.tables import FileRecord, Store
from indexer.types import RecognisedLine, SearchResponse, SearchResult
from models.base import ImageEmbedder, TextEmbedder

log = logging.getLogger(__name__)

NO_MATCH = "No good match."
NAME_QUERY_MAX_WORDS = 3
"""Queries with more content words than this are sentences: names count only for name-only files."""


@dataclasses.dataclass
class Ranking:
    """Every ranking constant in one place (calibrated on the real MiniLM model)."""

    vector_k: int = 150  # nearest chunks fetched per query
    recognised_k: int = 60  # nearest passages of recognised text (pictures, scans) per query
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
    source: str = "text"  # "ocr": text recognised in a picture or a scanned page
    page: int = -1
    lines: str = ""  # recognised passages: their lines' spans and boxes (store.recognised)


@dataclasses.dataclass(frozen=True)
class Cutoff:
    """Which results a list shows (docs/SEARCH.md, "Ranking" step 4).

    A result is kept when its evidence (cosine + keyword bonus) is within the gap of the top
    evidence, or its passage's cosine alone within the gap of the top passage's cosine: the
    keyword bonus lifts the top's evidence, and must not push out a paraphrase as close in
    meaning ("The cutoff's second test"). Both bounds respect the floor.
    """

    evidence: float
    similarity: float

    @classmethod
    def of(cls, results: Iterable[tuple[float, float | None]], floor: float, gap: float) -> Cutoff:
        """The bounds for a list of (evidence, passage cosine or None) pairs; at least one."""
        pairs = list(results)
        top_sim = max((s for _e, s in pairs if s is not None), default=math.inf)
        return cls(max(floor, max(e for e, _s in pairs) - gap), max(floor, top_sim - gap))

    def keeps(self, evidence: float, similarity: float | None) -> bool:
        return evidence >= self.evidence or (similarity is not None and similarity >= self.similarity)


# ---------------------------------------------------------------- searcher
class Searcher:
    def __init__(
        self,
        store: Store,
        text_embedder: TextEmbedder,
        image_embedder: ImageEmbedder | None,
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
        self.reader = StoreReader(store, text_model=text_embedder.model_id)
        self._names_lock = threading.Lock()
        self._names: tuple[int, NameIndex] | None = None
        self._ocr_view: tuple[dict[str, FileRecord], dict[str, FileRecord]] | None = None
        self._neutral: np.ndarray | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

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
        allowed = FileFilter.build(parsed, filters, kind)
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
            if kind in ("all", "text", "other", "image"):
                docs = self._search_documents(parsed, files, allowed, limit, kind)
                if not docs and parsed.phrases:
                    # No passage or name holds the exact phrase. Its words are still worth
                    # searching by meaning, as web search does, and the answer says so: an
                    # empty page teaches nothing about what the library does hold.
                    docs = self._search_documents(dataclasses.replace(parsed, phrases=[]), files, allowed, limit, kind)
                    if docs:
                        quoted = ", ".join(f'"{p}"' for p in parsed.phrases)
                        resp.message = f"Nothing contains {quoted} exactly; showing matches for the words."
            if pending_images is not None:
                images = pending_images.result()
            if kind in ("all", "image"):
                images = self._with_image_names(images, parsed, files, allowed, limit)
            docs, images = self._fuse(docs, images, limit)
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
            "image": len(images) + sum(1 for r in docs if r.kind == "image"),
            "other": sum(1 for r in docs if r.kind not in ("text", "image")),
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
        self, images: list[SearchResult], parsed: ParsedQuery, files: dict[str, FileRecord], allowed: FileFilter, limit: int
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

    def _images_for_text(self, text: str, files: dict[str, FileRecord], allowed: FileFilter, limit: int) -> list[SearchResult]:
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
        img = decode_query_image(image)
        vec = np.asarray(self.image_embedder.embed_documents([img])[0], np.float32)
        if text and text.strip():
            vec = self.compose(vec, text)
        resp.results = self._search_images(vec, self.store.files(), FileFilter(), limit,
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
        rec = files.get(self.store.fid_resolver()(os.path.abspath(path)))
        resp = SearchResponse(query=path)
        if rec is None:
            resp.message = "That file is not in the index."
            return resp
        exclude = FileFilter(exclude_fids={rec.fid})
        if rec.kind == "image":
            row = self.store.image_row(rec.fid, rec.content_hash)
            if row is None:
                resp.message = _no_vectors(self.store, rec.fid, "That image has no vector yet.")
                return resp
            resp.results = self._search_images(row.vector, files, exclude, limit, floor=self.ranking.similar_floor, gap=2.0)
        else:
            rows = self.store.chunk_rows(rec.fid, rec.content_hash, model_id=self.text_embedder.model_id)
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
        self, parsed: ParsedQuery, files: dict[str, FileRecord], allowed: FileFilter, limit: int, kind: str
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
        if kind in ("all", "text", "image"):
            # Words inside pictures and scans: the same text model, so the same scale (issue 16).
            cands.extend(self._recognised_candidates(qvec, terms, files, allowed, kind))
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
        allowed: FileFilter | None = None,
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
                named = files.get(fid)
                if named is None or not named.available or named.state not in ("indexed", "name_only"):
                    continue
                rec = named
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
        cut = Cutoff.of([(t[1], t[3].sim if t[3] is not None else None) for t in scored], floor, gap)
        out: list[SearchResult] = []
        for _score, evidence, rec, best in scored:  # results are built only for what is shown
            if not cut.keeps(evidence, best.sim if best is not None else None):
                continue
            # Ranked by `score`; shown with the evidence the floor judged, so no listed
            # result reads as "0.00" or below (the length prior only orders).
            if best is None:
                out.append(_result(rec, evidence))
            else:
                res = _result(rec, evidence, passage=best.text, start=best.start, end=best.end)
                res.similarity = float(best.sim)
                res.highlights = word_spans(best.text, terms, phrases)
                if best.source == "ocr":
                    _recognised_passage(res, best)
                out.append(res)
            if len(out) >= limit:
                break
        return out

    # ------------------------------------------------------- candidates
    def _vector_candidates(self, qvec: np.ndarray, files: dict[str, FileRecord], allowed: FileFilter, k: int) -> list[_Candidate]:
        rows = self.reader.nearest_chunks(qvec, files, allowed, k)
        return [_Candidate(fid=r["fid"], text=r["text"], start=r["start"], end=r["end"], sim=r["sim"]) for r in rows]

    def _keyword_rows(self, terms: list[str], files: dict[str, FileRecord], allowed: FileFilter, k: int) -> Any | None:
        """The BM25 search itself (arrow rows, or None): no query vector needed."""
        # Plain words only: LanceDB's query parser never sees the person's punctuation.
        text = " ".join(w for t in terms for w in re.findall(r"\w+", t))
        return self.reader.keyword_hits(text, files, allowed, k)

    def _keyword_candidates(
        self, arrow: Any | None, qvec: np.ndarray, files: dict[str, FileRecord], allowed: FileFilter, k: int
    ) -> list[_Candidate]:
        """Keyword hits (live, in scope, sane: see `StoreReader.keyword_hits`) scored by cosine."""
        if arrow is None or arrow.num_rows == 0:
            return []
        vecs = np.asarray(arrow.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False), np.float32)
        sims = vecs.reshape(arrow.num_rows, -1) @ qvec
        rows = zip(
            arrow.column("fid").to_pylist(),
            arrow.column("text").to_pylist(),
            arrow.column("start").to_pylist(),
            arrow.column("end").to_pylist(),
            sims,
        )
        return [_Candidate(fid=fid, text=txt, start=s, end=e, sim=float(sim)) for fid, txt, s, e, sim in rows][:k]

    def _recognised_candidates(
        self, qvec: np.ndarray, terms: list[str], files: dict[str, FileRecord], allowed: FileFilter, kind: str
    ) -> list[_Candidate]:
        """Passages of text recognised in pictures and scanned pages: nearest by meaning
        plus keyword hits, as documents' passages are found. ``kind`` "image": pictures only."""
        view = self._recognised_files(files)
        if not view:
            return []
        k = self.ranking.recognised_k
        text = " ".join(w for t in terms for w in re.findall(r"\w+", t))
        try:
            rows = self.reader.nearest_recognised(qvec, view, allowed, k)
            hits = self.reader.keyword_hits(text, view, allowed, k, kind="ocr") if text else None
        except Exception as exc:  # noqa: BLE001 - an unreadable words table never breaks a search
            log.warning("the words recognised in pictures cannot be searched now: %s", str(exc)[:300])
            return []
        if hits is not None and hits.num_rows:
            vecs = np.asarray(hits.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False), np.float32)
            sims = vecs.reshape(hits.num_rows, -1) @ qvec
            seen = {(r["fid"], r["start"]) for r in rows}
            for row, sim in zip(hits.drop_columns(["vector", "_score"]).to_pylist(), sims):
                if (row["fid"], row["start"]) not in seen:
                    row["sim"] = float(sim)
                    rows.append(row)
        out = []
        for r in rows:
            is_image = files[r["fid"]].kind == "image"
            if (kind == "image" and not is_image) or (kind == "text" and is_image):
                continue
            out.append(_Candidate(fid=r["fid"], text=r["text"], start=r["start"], end=r["end"], sim=r["sim"],
                                  source="ocr", page=r.get("page", -1), lines=r.get("lines") or ""))
        return out

    def _recognised_files(self, files: dict[str, FileRecord]) -> dict[str, FileRecord]:
        """``files`` as the live rule of recognised text sees them (`recognised.ocr_live`):
        a picture waiting for the image model, a PDF without a text layer count as indexed."""
        with self._names_lock:
            cached = self._ocr_view
        if cached is not None and cached[0] is files:
            return cached[1]
        view = {fid: (rec if rec.state == "indexed" else dataclasses.replace(rec, state="indexed"))
                for fid, rec in files.items() if ocr_live(rec, rec.content_hash) and rec.kind in ("image", "text")}
        with self._names_lock:
            self._ocr_view = (files, view)
        return view

    def _fuse(self, docs: list[SearchResult], images: list[SearchResult], limit: int) -> tuple[list[SearchResult], list[SearchResult]]:
        """One result per file: a picture found by its words (ranked with the documents, on
        the text model's scale) and by its look (CLIP) is listed once, with its words."""
        by_words = {r.path: r for r in docs if r.kind == "image"}
        kept: list[SearchResult] = []
        for r in images:
            words = by_words.get(r.path)
            if words is None:
                kept.append(r)
                continue
            words.matched_by = "look+words"
            if r.thumbnail and not words.thumbnail:
                words.thumbnail, words.width, words.height = r.thumbnail, r.width, r.height
        missing = [r for r in by_words.values() if not r.thumbnail]
        if missing:
            files = self.store.files()
            resolve = self.store.fid_resolver()
            fids = [resolve(r.path) for r in missing]
            found = [(r, files[f]) for r, f in zip(missing, fids) if f in files]
            self._add_thumbnails([r for r, _rec in found], [rec for _r, rec in found])
        return docs, kept[:limit]

    def _files_containing(self, phrases: list[str], files: dict[str, FileRecord]) -> set[str]:
        """Files with a live passage that contains any of ``phrases`` (whole words, any case).

        Exact: rows are narrowed (keyword index, or a substring scan of the passage text)
        and each is then confirmed with `contains_phrase`. Names and titles are checked
        by `FileFilter.accepts`.
        """
        out: set[str] = set()
        for phrase in phrases:
            words = re.findall(r"\w+", phrase.lower())
            # Every row with the phrase has each of its words; the keyword index finds a word
            # unless it drops it (a stop word, or a token of 40+ characters).
            indexed = [w for w in words if w not in STOP_WORDS and len(w) < FTS_MAX_TOKEN]
            word = max(indexed, key=len) if indexed else None
            sub = max(words, key=len) if words else ""
            rows = self.reader.chunks_mentioning(word, sub)
            if rows is None:
                return set()
            for fid, fh, text in zip(
                rows.column("fid").to_pylist(), rows.column("file_hash").to_pylist(), rows.column("text").to_pylist()
            ):
                if fid not in out and is_live(files.get(fid), fh) and contains_phrase(text, phrase):
                    out.add(fid)
            # ... and words recognised in a picture or a scan count as the file's words too.
            ocr_rows = self.reader.chunks_mentioning(word, sub, kind="ocr")
            if ocr_rows is not None and ocr_rows.num_rows:
                for fid, fh, text in zip(ocr_rows.column("fid").to_pylist(), ocr_rows.column("file_hash").to_pylist(),
                                         ocr_rows.column("text").to_pylist()):
                    if fid not in out and ocr_live(files.get(fid), fh) and contains_phrase(text, phrase):
                        out.add(fid)
        return out

    def _name_index(self, files: dict[str, FileRecord]) -> NameIndex:
        key = id(files)  # store.files() returns the same dict until the table changes
        with self._names_lock:
            if self._names is None or self._names[0] != key:
                self._names = (key, NameIndex(files))
            return self._names[1]

    # ----------------------------------------------------------- images
    def _search_images(
        self, qvec: np.ndarray, files: dict[str, FileRecord], allowed: FileFilter, limit: int, *, floor: float, gap: float
    ) -> list[SearchResult]:
        rows = self.reader.nearest_images(_unit(qvec), files, allowed, max(limit * 2, 20))
        out: dict[str, SearchResult] = {}
        for r in rows:
            if r["fid"] in out:
                continue
            res = _result(files[r["fid"]], r["sim"])
            res.matched_by = "look"
            res.width, res.height = r["width"], r["height"]
            if self.paths is not None and r["thumb"]:
                res.thumbnail = str(self.paths.thumbnails / r["thumb"])
            out[r["fid"]] = res
        ranked = sorted(out.values(), key=lambda r: -r.score)
        if not ranked:
            return []
        cut = max(floor, ranked[0].score - gap)
        return [r for r in ranked if r.score >= cut][:limit]

    def _browse(self, files: dict[str, FileRecord], allowed: FileFilter, limit: int, kind: str) -> tuple[list[SearchResult], list[SearchResult]]:
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
        if not recs or self.paths is None:
            return
        details = self.reader.image_details([r.fid for r in recs], {r.fid: r for r in recs})
        for res, rec in zip(images, recs):
            row = details.get(rec.fid)
            if row is None:
                continue
            res.width, res.height = row["width"], row["height"]
            if row["thumb"]:
                res.thumbnail = str(self.paths.thumbnails / row["thumb"])



def _checked_limit(limit: Any) -> int:
    """How many results a caller may ask for: a whole number from 1 to `RESULTS_MAX`."""
    try:
        n = operator.index(limit)  # ints and numpy integers; not 2.5 or "3"
    except TypeError:
        n = 0
    if isinstance(limit, bool) or not 1 <= n <= RESULTS_MAX:
        raise ValueError(f"limit must be a whole number from 1 to {RESULTS_MAX}, not {limit!r}")
    return n


def _no_vectors(store: Any, fid: str, otherwise: str) -> str:
    if fid in store.damaged_noted():
        return "That file's stored vectors are damaged; it is being re-indexed. Try again in a moment."
    return otherwise


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


def _recognised_passage(res: SearchResult, best: _Candidate) -> None:
    """A result whose passage is recognised text: its source, page and lines (boxes)."""
    res.passage_source = "ocr"
    res.passage_page = best.page
    if res.kind == "image":
        res.matched_by = "words"
    lines = []
    for start, end, _page, box in decode_lines(best.lines):
        matched = any(s < end and e > start for s, e in res.highlights)
        lines.append(RecognisedLine(start=start, end=end, box=box, matched=matched))
    res.lines = lines


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
