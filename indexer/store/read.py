"""Reads of the store by intent: the only place search's LanceDB queries are written.

Search asks `StoreReader` for what it wants (the nearest chunks or images to a
vector, keyword hits, the chunks that mention a word, the vectors of some files,
every vector of a kind in batches) and never builds a query itself. The reader
also owns the one rule of which rows are live (`is_live`): a row counts only
while its file is ``indexed``, available, and still has the content hash the row
was written for, so a crash or a concurrent write never shows stale passages.

Nearest neighbours are ranked exactly in memory while a table is small and has no
ANN index (`indexer.store.ann.EXACT_MAX_ROWS`); past that LanceDB's ANN index is
queried and what it finds re-ranked exactly, or the table is scanned flat while an
index is missing or unusable. Every vector read is checked (`sane_rows`): a damaged
one is never ranked, and its file is noted for the writer to re-embed (issue 11.6).

Filters arrive as a `FileScope`, a plain description (accepts a record, narrows to
few files or not); the reader turns a narrow one into an ``fid IN (...)`` prefilter.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Hashable, Iterator
from typing import Any, Literal, Protocol

import numpy as np

from indexer.store.ann import (
    EXACT_MAX_ROWS,
    HNSW_EF,
    has_vector_index,
    nprobes_for,
    vector_index_problem,
)
from indexer.store.fts import FTS_COLUMN, FTS_FLAT_MAX_ROWS, describe_indices, fts_problem, has_fts_index, is_fts
from indexer.store.tables import FileRecord, Store, _checked_hex, sane_rows

log = logging.getLogger(__name__)

VectorKind = Literal["chunks", "images", "ocr"]
"""``ocr``: passages of text recognised in pictures and scans (`indexer.store.recognised`)."""
CHUNK_COLUMNS = ["fid", "file_hash", "ord", "text", "start", "end"]
IMAGE_COLUMNS = ["fid", "file_hash", "thumb", "width", "height"]
OCR_COLUMNS = [*CHUNK_COLUMNS, "page", "lines"]
_COLUMNS: dict[str, list[str]] = {"chunks": CHUNK_COLUMNS, "images": IMAGE_COLUMNS, "ocr": OCR_COLUMNS}
PREFILTER_MAX = 2000
"""Allowed sets up to this many files go to LanceDB as an `fid IN (...)` prefilter."""
_PREFILTERS_KEPT = 16
FTS_MAX_TOKEN = 40
"""LanceDB's keyword tokenizer drops tokens this long or longer."""


def live_hash(rec: FileRecord | None) -> str | None:
    """The content hash a live row of this file carries, or None when none is live."""
    if rec is None or rec.state != "indexed" or not rec.available:
        return None
    return rec.content_hash


def is_live(rec: FileRecord | None, file_hash: str) -> bool:
    """Whether a vector row written for ``file_hash`` may be shown for this file."""
    live = live_hash(rec)
    return live is not None and live == file_hash


class FileScope(Protocol):
    """Which files' rows a read may return (search's filter is one)."""

    @property
    def active(self) -> bool:
        """False when every file is accepted (no per-row check needed)."""

    @property
    def narrows(self) -> bool:
        """True when few files may be accepted: worth a prefilter."""

    def key(self) -> Hashable:
        """Equal keys accept the same files (reads cache per key)."""

    def accepts(self, rec: FileRecord) -> bool: ...


class EveryFile:
    """The scope that accepts every live file."""

    active = False
    narrows = False

    def key(self) -> Hashable:
        return ()

    def accepts(self, rec: FileRecord) -> bool:
        return True


@dataclasses.dataclass
class VectorBatch:
    """Live, sane vectors of one kind: row i belongs to ``fids[i]``."""

    fids: list[str]
    file_hashes: list[str]
    vectors: np.ndarray  # float32 [n, dim], unit length


class _VectorCache:
    """A table's vectors in memory for exact ranking, reloaded when its version changes."""

    def __init__(self) -> None:
        self.key: tuple[Any, ...] | None = None  # (version, indexed, rows, nprobes, index bypassed)
        self.vectors: np.ndarray = np.zeros((0, 1), np.float32)
        self.codes: np.ndarray = np.zeros(0, np.int32)  # row -> index into fids
        self.fids: list[str] = []
        self.valid: np.ndarray = np.zeros(0, bool)
        self.sane: np.ndarray = np.zeros(0, bool)  # row's vector finite and unit length (issue 11.6)
        self.meta: Any = None  # arrow table of the non-vector columns
        self.valid_key: Any = None
        self.filter_key: Any = None  # the last scope's per-file mask, reused while unchanged
        self.filter_ok: np.ndarray = np.zeros(0, bool)

    def current(self, version: Any) -> bool:
        return self.meta is not None and self.key is not None and self.key[0] == version


class StoreReader:
    """Search's reads of one `Store`; safe to call from several threads at once."""

    def __init__(self, store: Store, text_model: str | None = None) -> None:
        self.store = store
        self.text_model = text_model  # whose passages are read (None: the store's default text model)
        self._lock = threading.Lock()  # guards the caches below, held while vectors load
        self._caches: dict[VectorKind, _VectorCache] = {"chunks": _VectorCache(), "images": _VectorCache(), "ocr": _VectorCache()}
        # Per table: (table version, why the keyword index is unusable).
        self._fts_states: dict[str, tuple[Any, str | None]] = {}
        # Per table: (table version, whether too many rows wait outside the keyword index).
        self._fts_behind: dict[str, tuple[Any, bool]] = {}
        self._prefilters: dict[tuple[Any, ...], str] = {}

    def _table(self, kind: VectorKind) -> Any | None:
        if kind == "ocr":
            from indexer.store import recognised

            return recognised.rows_table(self.store, model_id=self.text_model)
        return self.store.chunks_table(model_id=self.text_model) if kind == "chunks" else self.store.images_table()

    # ------------------------------------------------------------ nearest
    def nearest_chunks(
        self, qvec: np.ndarray, files: dict[str, FileRecord], scope: FileScope, k: int, columns: list[str] = CHUNK_COLUMNS
    ) -> list[dict[str, Any]]:
        """The k live passages nearest to a unit ``qvec``, best first, each with its ``sim``."""
        return self._nearest("chunks", qvec, files, scope, k, columns)

    def nearest_recognised(self, qvec: np.ndarray, files: dict[str, FileRecord], scope: FileScope, k: int) -> list[dict[str, Any]]:
        """The k live passages of recognised text (pictures, scans) nearest to ``qvec``.

        ``files``: as the live rule should see them (`recognised.ocr_live`: the search hands
        a view where pictures waiting for the image model and scanned PDFs count as indexed)."""
        return self._nearest("ocr", qvec, files, scope, k, OCR_COLUMNS)

    def nearest_images(self, qvec: np.ndarray, files: dict[str, FileRecord], scope: FileScope, k: int) -> list[dict[str, Any]]:
        """The k live images nearest to a unit ``qvec``, best first, each with its ``sim``."""
        return self._nearest("images", qvec, files, scope, k, IMAGE_COLUMNS)

    def _nearest(
        self, kind: VectorKind, qvec: np.ndarray, files: dict[str, FileRecord], scope: FileScope, k: int, columns: list[str]
    ) -> list[dict[str, Any]]:
        table = self._table(kind)
        if table is None:
            return []
        cache = self._caches[kind]
        version = table.version
        with self._lock:
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
                _load(cache, table, _COLUMNS[kind])
            if use_memory and cache.valid_key != id(files):
                live = np.array([live_hash(files.get(f)) for f in cache.fids], dtype=object)
                hashes = cache.meta.column("file_hash").to_numpy(zero_copy_only=False)
                cache.valid = (live[cache.codes] == hashes) if len(hashes) else np.zeros(0, bool)
                cache.valid_key = id(files)
                if len(cache.valid) and not cache.sane.all():
                    # Damaged on disk: never ranked; live ones are noted for the writer to re-embed.
                    self._note_damaged(table, [cache.fids[c] for c in cache.codes[cache.valid & ~cache.sane]])
                    cache.valid = cache.valid & cache.sane
            if use_memory and scope.active and cache.filter_key != (scope.key(), id(files), version):
                cache.filter_ok = np.array([f in files and scope.accepts(files[f]) for f in cache.fids], bool)
                cache.filter_key = (scope.key(), id(files), version)
            if use_memory:
                vectors, codes, valid, meta, ok = cache.vectors, cache.codes, cache.valid, cache.meta, cache.filter_ok
        if use_memory:
            if not len(valid):
                return []
            mask = valid
            if scope.active:
                mask = mask & ok[codes]
            sims = vectors @ qvec
            sims = np.where(mask, sims, -np.inf)
            kk = min(k, int(mask.sum()))
            if kk <= 0:
                return []
            idx = np.argpartition(-sims, kk - 1)[:kk]
            idx = idx[np.argsort(-sims[idx])]
            picked = meta.select(columns).take(idx).to_pylist()
            for row, i in zip(picked, idx):
                row["sim"] = float(sims[i])
            return picked
        # LanceDB: the ANN index when present (or a flat scan while it is being built).
        where = self.prefilter(scope, files)
        q = table.search(np.asarray(qvec, np.float32), vector_column_name="vector").distance_type("cosine")
        fetch = k * (3 if scope.active and not where else 1) + 20
        if indexed:
            # HNSW's search breadth (ef) must exceed what we fetch, or recall collapses
            # (measured: 0.33 recall@10 with the default ef at 100k rows).
            q = q.nprobes(nprobes).ef(max(HNSW_EF, fetch))
        elif bypass:
            q = q.bypass_vector_index()
        if where:
            q = q.where(where, prefilter=True)
        # "_distance" is always asked for: LanceDB logs a deprecation warning on stderr for
        # every vector query that leaves it out (the CLI's output at 50k+ passages).
        arrow = q.select([*columns, "vector", "_distance"]).limit(fetch).to_arrow()
        sane = np.ones(arrow.num_rows, bool)
        if arrow.num_rows:
            # Every fetched vector is checked: a damaged row is never ranked (issue 11.6).
            mat = _row_vectors(arrow)
            sane = sane_rows(mat)
            if not sane.all():
                self._note_damaged(table, [f for f, h, good in zip(arrow.column("fid").to_pylist(), arrow.column("file_hash").to_pylist(), sane)
                                           if not good and is_live(files.get(f), h)])
        if indexed and arrow.num_rows:
            # Exact re-rank of what the index found: its distances are 8-bit quantised. Same
            # recall as LanceDB's refine_factor=1, one fewer pass over the rows (-1 ms at 100k).
            sims = np.where(sane, np.where(sane[:, None], mat, 0.0) @ np.asarray(qvec, np.float32), -np.inf)
            order = np.argsort(-sims, kind="stable")
            arrow = arrow.drop_columns(["_distance", "vector"]).take(order)
            sims, sane = sims[order], sane[order]
        else:
            with np.errstate(invalid="ignore"):  # a damaged row's distance; dropped below
                sims = 1.0 - np.asarray(arrow.column("_distance").to_numpy(zero_copy_only=False), np.float64)
            arrow = arrow.drop_columns(["_distance", "vector"])
        out: list[dict[str, Any]] = []
        for row, sim, good in zip(arrow.to_pylist(), sims, sane):
            rec = files.get(row["fid"])
            if not good or rec is None or not is_live(rec, row["file_hash"]) or not scope.accepts(rec):
                continue
            row["sim"] = float(sim)
            out.append(row)
            if len(out) >= k:
                break
        return out

    # ------------------------------------------------------------ vectors
    def vectors_of(self, fids: set[str] | list[str], files: dict[str, FileRecord], kind: VectorKind = "chunks") -> dict[str, np.ndarray]:
        """The live, sane vectors of these files: fid → float32 [n, dim] (chunks in passage order).

        A file with any damaged vector is left out (and noted), as `Store.chunk_rows` does.
        """
        table = self._table(kind)
        wanted = sorted(f for f in set(fids) if live_hash(files.get(f)) is not None)
        if table is None or not wanted:
            return {}
        order_col = ["ord"] if kind == "chunks" else []
        cache = self._caches[kind]
        with self._lock:
            in_memory = cache.current(table.version)
            if in_memory:
                code_of = {f: i for i, f in enumerate(cache.fids)}
                codes = [code_of[f] for f in wanted if f in code_of]
                rows = np.flatnonzero(np.isin(cache.codes, codes))
                row_fids = [cache.fids[c] for c in cache.codes[rows]]
                hashes = cache.meta.column("file_hash").take(rows).to_pylist()
                order = cache.meta.column("ord").take(rows).to_pylist() if order_col else [0] * len(rows)
                vectors, sane = cache.vectors[rows], cache.sane[rows]
        if not in_memory:
            where = "fid IN (" + ", ".join(f"'{_checked_hex(f)}'" for f in wanted) + ")"
            arrow = table.search().where(where).select(["fid", "file_hash", *order_col, "vector"]).limit(None).to_arrow()
            row_fids = arrow.column("fid").to_pylist()
            hashes = arrow.column("file_hash").to_pylist()
            order = arrow.column("ord").to_pylist() if order_col else [0] * arrow.num_rows
            vectors = _row_vectors(arrow) if arrow.num_rows else np.zeros((0, 1), np.float32)
            sane = sane_rows(vectors) if arrow.num_rows else np.zeros(0, bool)
        picked: dict[str, dict[int, int]] = {}  # fid -> ord -> row (one row per ord: a crash can leave twins)
        damaged: set[str] = set()
        for i, (fid, fh, o) in enumerate(zip(row_fids, hashes, order)):
            if not is_live(files.get(fid), fh):
                continue
            if not sane[i]:
                damaged.add(fid)
            picked.setdefault(fid, {}).setdefault(o, i)
        if damaged:
            self._note_damaged(table, sorted(damaged))
        return {
            fid: np.asarray(vectors[[rows_by_ord[o] for o in sorted(rows_by_ord)]], np.float32)
            for fid, rows_by_ord in picked.items()
            if fid not in damaged
        }

    def iter_vectors(self, kind: VectorKind, batch_rows: int = 8192) -> Iterator[VectorBatch]:
        """Every live, sane vector of a kind, a batch at a time (a map, a duplicate scan).

        Reads one version of the table and of the files as they are when it starts;
        memory stays at one batch whatever the size of the store.
        """
        table = self._table(kind)
        if table is None:
            return
        files = self.store.files()
        for batch in table.to_lance().to_batches(columns=["fid", "file_hash", "vector"], batch_size=batch_rows):
            if not batch.num_rows:
                continue
            fids = batch.column("fid").to_pylist()
            hashes = batch.column("file_hash").to_pylist()
            vectors = _row_vectors(batch)
            sane = sane_rows(vectors)
            keep = np.fromiter((is_live(files.get(f), h) for f, h in zip(fids, hashes)), bool, count=len(fids))
            if (keep & ~sane).any():
                self._note_damaged(table, [f for f, k, s in zip(fids, keep, sane) if k and not s])
            keep &= sane
            if keep.any():
                idx = np.flatnonzero(keep)
                yield VectorBatch([fids[i] for i in idx], [hashes[i] for i in idx], np.ascontiguousarray(vectors[idx]))

    def iter_passages(self, fids: set[str] | None = None, batch_rows: int = 8192) -> Iterator[tuple[list[str], list[str]]]:
        """The text of every live passage, a batch at a time: (fids, texts), in no set order.

        ``fids``: only these files' passages. Memory stays at one batch whatever the
        size of the store (the duplicate scan signs documents from it).
        """
        table = self._table("chunks")
        if table is None:
            return
        files = self.store.files()
        for batch in table.to_lance().to_batches(columns=["fid", "file_hash", "text"], batch_size=batch_rows):
            row_fids = batch.column("fid").to_pylist()
            hashes = batch.column("file_hash").to_pylist()
            texts = batch.column("text").to_pylist()
            keep = [i for i, (f, h) in enumerate(zip(row_fids, hashes))
                    if (fids is None or f in fids) and is_live(files.get(f), h)]
            if keep:
                yield [row_fids[i] for i in keep], [texts[i] or "" for i in keep]

    # ----------------------------------------------------------- keywords
    def keyword_hits(self, text: str, files: dict[str, FileRecord], scope: FileScope, k: int,
                     kind: VectorKind = "chunks") -> Any | None:
        """BM25 passages for plain words, best first: live rows in scope with sane vectors (arrow,
        with ``vector`` and ``_score``), or None while there is no usable keyword index.
        ``kind`` "ocr": passages of recognised text (with their ``page`` and ``lines``)."""
        table = self._table(kind)
        if table is None or not text or not self._keyword_lane(table):
            return None
        extra = ["page", "lines"] if kind == "ocr" else []
        try:
            q = table.search(text, query_type="fts").select(["fid", "file_hash", "text", "start", "end", *extra, "vector", "_score"])
            if self._keyword_index_behind(table):
                q = q.fast_search()
            where = self.prefilter(scope, files)
            if where:
                q = q.where(where, prefilter=True)
            arrow = q.limit(k * (1 if where or not scope.active else 3)).to_arrow()
        except Exception as exc:  # noqa: BLE001 - no keyword index/rows yet: meaning alone still works
            with self._lock:
                state = self._fts_states.get(table.name, (None, None))
            if state[1] is None and fts_problem(table) is None and has_fts_index(table):
                # Listed and present, yet it fails: off for this version (said once, not per query).
                why = f"it cannot be opened ({str(exc).strip()[:200]})"
                with self._lock:
                    self._fts_states[table.name] = (table.version, why)
                log.warning("keyword index of %s is unusable (%s); keyword matches are off until it is rebuilt", table.name, why)
            else:
                log.debug("keyword search unavailable: %s", exc)
            return None
        if not arrow.num_rows:
            return arrow
        # Only live rows the scope accepts, and never a damaged vector (noted for the writer).
        fids, hashes = arrow.column("fid").to_pylist(), arrow.column("file_hash").to_pylist()
        live = np.fromiter((is_live(files.get(f), h) and scope.accepts(files[f]) for f, h in zip(fids, hashes)), bool, count=len(fids))
        sane = sane_rows(_row_vectors(arrow))
        if (live & ~sane).any():
            self._note_damaged(table, [f for f, good, ok in zip(fids, live, sane) if good and not ok])
        return arrow.take(np.flatnonzero(live & sane))

    def _keyword_lane(self, table: Any) -> bool:
        """Whether the keyword index can be queried (checked once per table version, issue 11.13)."""
        version = table.version
        with self._lock:
            state = self._fts_states.get(table.name, (None, None))
        if state[0] != version:
            why = fts_problem(table)
            if why and why != state[1]:
                log.warning("keyword index of %s is unusable (%s); keyword matches are off until it is rebuilt",
                            table.name, why)
            state = (version, why)
            with self._lock:
                self._fts_states[table.name] = state
        return state[1] is None

    def _keyword_index_behind(self, table: Any) -> bool:
        """Whether more rows than `FTS_FLAT_MAX_ROWS` wait outside the keyword index (checked
        once per table version). Then the keyword lane reads the index alone: LanceDB would
        otherwise tokenise every waiting passage for each query (2.5 s at 117k, after a
        watched folder was followed); those passages are still found by meaning, and by
        their words once the writer's index upkeep folds them in."""
        version = table.version
        with self._lock:
            known = self._fts_behind.get(table.name)
        if known is not None and known[0] == version:
            return known[1]
        waiting = 0
        for ix in describe_indices(table):
            if is_fts(ix) and FTS_COLUMN in ix.field_names:
                try:
                    stats = table.index_stats(ix.name)
                except Exception as exc:  # noqa: BLE001 - a table being rewritten: ask again next version
                    log.debug("keyword index statistics unavailable: %s", exc)
                    return False
                waiting = (getattr(stats, "num_unindexed_rows", 0) or 0) if stats is not None else 0
        behind = waiting > FTS_FLAT_MAX_ROWS
        if behind:
            log.info("%s: %d passages wait for the keyword index; keyword matches read the index alone until "
                     "the index upkeep", table.name, waiting)
        with self._lock:
            self._fts_behind[table.name] = (version, behind)
        return behind

    def chunks_mentioning(self, indexed_word: str | None, substring: str, kind: VectorKind = "chunks") -> Any | None:
        """Chunk rows (fid, file_hash, text) that may hold a word: never fewer than do.

        ``indexed_word`` is looked up in the keyword index when it has one; otherwise (or
        without ``indexed_word``) the passages are scanned for ``substring``, any case.
        Rows of any file are returned: the caller applies `is_live`. None: no chunks table.
        """
        import pyarrow.compute as pc

        table = self._table(kind)
        if table is None:
            return None
        if indexed_word:
            try:
                q = table.search(indexed_word, query_type="fts")
                return q.select(["fid", "file_hash", "text", "_score"]).limit(None).to_arrow()
            except Exception as exc:  # noqa: BLE001 - no keyword index yet: read the passages instead
                log.debug("keyword index unavailable for an exclusion: %s", exc)
        cache = self._caches[kind]
        with self._lock:
            rows = cache.meta if cache.current(table.version) else None
        if rows is None:
            rows = table.search().select(["fid", "file_hash", "text"]).limit(None).to_arrow()
        if substring and rows.num_rows:
            rows = rows.filter(pc.match_substring(rows.column("text"), pattern=substring, ignore_case=True))
        return rows

    # ------------------------------------------------------------- images
    def image_details(self, fids: list[str], files: dict[str, FileRecord]) -> dict[str, dict[str, Any]]:
        """Thumbnail name and size of these images' live rows: fid → {thumb, width, height}."""
        table = self._table("images")
        if table is None or not fids:
            return {}
        where = "fid IN (" + ", ".join(f"'{_checked_hex(f)}'" for f in fids) + ")"
        arrow = (table.search().where(where).select(["fid", "file_hash", "thumb", "width", "height"])
                 .limit(len(fids) * 2 + 10).to_arrow())
        out: dict[str, dict[str, Any]] = {}
        for row in arrow.to_pylist():
            rec = files.get(row["fid"])
            if rec is not None and row["file_hash"] == rec.content_hash:
                out[row["fid"]] = row  # else not embedded yet, or of older content: nothing to vouch for
        return out

    # ---------------------------------------------------------- prefilter
    def prefilter(self, scope: FileScope, files: dict[str, FileRecord]) -> str:
        """An `fid IN (...)` prefilter when the scope allows few files; '' otherwise.

        Evaluated once per (scope, files snapshot): a typed query re-runs it for free.
        """
        if not scope.narrows:
            return ""  # exclusions alone leave most files: checked on each row instead
        key = (scope.key(), id(files), len(files))
        with self._lock:
            cached = self._prefilters.get(key)
        if cached is None:
            fids = [fid for fid, rec in files.items() if scope.accepts(rec)]
            if len(fids) > PREFILTER_MAX:
                cached = ""
            elif not fids:
                cached = "fid IN ('0')"  # matches nothing; fids are 32 hex digits
            else:
                cached = "fid IN (" + ", ".join(f"'{_checked_hex(f)}'" for f in fids) + ")"
            with self._lock:
                if len(self._prefilters) >= _PREFILTERS_KEPT:
                    self._prefilters.clear()
                self._prefilters[key] = cached
        return cached

    def _note_damaged(self, table: Any, fids: list[str]) -> None:
        """Tell the store (and so the writer) about files whose stored vectors are damaged."""
        if fids:
            self.store.note_damaged(fids, f"damaged vectors in {getattr(table, 'name', 'the index')}")


def _load(cache: _VectorCache, table: Any, columns: list[str]) -> None:
    arrow = table.to_arrow()
    n = arrow.num_rows
    if n:
        cache.vectors = np.ascontiguousarray(_row_vectors(arrow))
        cache.sane = sane_rows(cache.vectors)
        if not cache.sane.all():
            # Zeroed, so the matrix product stays finite and quiet; masked out of every ranking.
            cache.vectors = cache.vectors.copy()
            cache.vectors[~cache.sane] = 0.0
    else:
        cache.vectors = np.zeros((0, 1), np.float32)
        cache.sane = np.zeros(0, bool)
    index: dict[str, int] = {}
    cache.codes = np.fromiter((index.setdefault(f, len(index)) for f in arrow.column("fid").to_pylist()), np.int32, count=n)
    cache.fids = list(index)
    cache.meta = arrow.select(columns).combine_chunks()


def _row_vectors(arrow: Any) -> np.ndarray:
    """The vector column of an arrow table or record batch as float32 [n, dim]."""
    column = arrow.column("vector")
    if hasattr(column, "combine_chunks"):  # a table's column is chunked; a batch's is one array
        column = column.combine_chunks()
    flat = column.flatten().to_numpy(zero_copy_only=False)
    return np.asarray(flat, np.float32).reshape(arrow.num_rows, -1)
