"""The LanceDB store: files, text chunks and images, written by one writer.

Tables
- ``files``: one row per file (key ``fid``), its state and why.
- ``chunks__<model>``: passages with vectors of one text model.
- ``images__<model>``: one vector per image of one CLIP model.

Vectors of different models live in different tables, so a ranking never mixes
them. Rows of a file become visible to search only once its ``files`` row says
``indexed`` with the same ``content_hash`` (chunk rows carry ``file_hash``), so
a crash between two commits never shows a half-indexed file. A file gone from
disk whose vectors another path may reuse (the other end of a move) is *retired*:
its row stays, in state ``removed``, hidden from `Store.files` (so from search and
every count) and kept only as a twin source until `Store.purge_removed`. Predicates only
ever contain hex ids and fixed literals, never user strings (apostrophes in
paths cannot break or widen a delete).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np

from indexer.errors import DiskFull, StoreError, StoreTooNew, is_disk_full
from indexer.paths import display_path
from indexer.types import FileState, RecordKind

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
"""The layout of the tables this Lodestar writes; stored in each table's metadata."""
SCHEMA_KEY = "lodestar_schema"
MIGRATIONS: dict[int, Callable[[Store], None]] = {}
"""Cheap in-place steps: ``MIGRATIONS[n](store)`` brings a store of schema n to n + 1.
An older store with no step for its version is rebuilt instead (`Store.upgrade_schema`)."""
FILES = "files"
REMOVED: Final = "removed"
"""State of a retired file: gone from disk, its vectors kept for the other end of a move."""
CLEANUP_OLDER_THAN = timedelta(minutes=2)
"""Old versions are pruned once older than this; far above any query's duration (L5)."""


def file_id(path: str) -> str:
    """Stable hex key of a path (its OS bytes), safe inside predicates."""
    return hashlib.blake2b(os.fsencode(path), digest_size=16).hexdigest()


def table_slug(model_id: str, dim: int) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", model_id).strip("_").lower() + f"_{dim}"


def _hex_list(ids: Iterable[str]) -> str:
    checked = []
    for i in ids:
        if not re.fullmatch(r"[0-9a-f]{1,64}", i):
            raise ValueError(f"not a hex id: {i!r}")
        checked.append(f"'{i}'")
    return ", ".join(checked)


UNIT_TOLERANCE = 0.02
"""How far a stored vector's squared length may be from 1. Every embedder writes
L2-normalised float32 vectors (fp16 models are off by ~1e-3); a row outside this,
or with a NaN/inf, was damaged on disk and must never be ranked (issue 11.6)."""
DAMAGED_NOTES = "damaged-vectors"
"""Folder in the data dir where any process notes files whose vectors it found damaged;
the writer takes the notes and re-embeds those files (`Store.take_damaged`)."""


def sane_rows(vectors: Any) -> np.ndarray:
    """Per row of a [n, dim] array: finite and of unit length, as written. Never warns."""
    v = np.asarray(vectors)
    if v.ndim == 1:
        v = v.reshape(1, -1)
    if v.size == 0:
        return np.ones(v.shape[0], bool)
    with np.errstate(all="ignore"):  # garbage bytes overflow when squared: judged, not warned about
        # A NaN or inf anywhere makes the squared length NaN or inf, which fails the test too.
        norm2 = np.einsum("ij,ij->i", v, v)
        return np.abs(norm2 - 1.0) <= UNIT_TOLERANCE


@dataclasses.dataclass
class FileRecord:
    fid: str
    path: str  # OS path (os.fsdecode of path_bytes)
    root: str
    kind: RecordKind
    size: int
    mtime_ns: int
    content_hash: str = ""
    state: FileState = "pending"
    reason: str = ""
    text_model: str = ""  # model id of the text model whose chunks table holds its passages
    image_model: str = ""
    truncated: bool = False
    indexed_at: float = 0.0
    title: str = ""
    n_chunks: int = 0
    available: bool = True

    @property
    def name(self) -> str:
        return display_path(os.path.basename(self.path))

    @property
    def folder(self) -> str:
        return display_path(os.path.dirname(self.path))

    @property
    def ext(self) -> str:
        return os.path.splitext(self.path)[1].lower().lstrip(".")


def is_problem(rec: FileRecord) -> bool:
    """What counts as a problem everywhere (the window's count, its dialog, per-folder figures)."""
    return rec.state in ("failed", "pending") or (rec.state == "name_only" and bool(rec.reason))


@dataclasses.dataclass
class ChunkRow:
    ord: int
    text: str
    start: int
    end: int
    chunk_hash: str
    vector: np.ndarray


@dataclasses.dataclass
class ImageRow:
    width: int
    height: int
    thumb: str  # file name under the thumbnails folder
    vector: np.ndarray


@dataclasses.dataclass
class WriteBatch:
    """Everything one commit changes. Data rows are committed before file rows."""

    files: list[FileRecord] = dataclasses.field(default_factory=list)
    chunks: dict[str, list[ChunkRow]] = dataclasses.field(default_factory=dict)  # fid -> rows
    images: dict[str, ImageRow] = dataclasses.field(default_factory=dict)  # fid -> row
    delete: list[str] = dataclasses.field(default_factory=list)  # fids to remove entirely
    # Fids gone from disk: indexed ones are retired (hidden, vectors kept), others deleted.
    retire: list[str] = dataclasses.field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.files or self.chunks or self.images or self.delete or self.retire)


def _files_schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("fid", pa.string(), nullable=False),
            pa.field("path", pa.string()),
            pa.field("path_bytes", pa.binary()),
            pa.field("root", pa.string()),
            pa.field("root_bytes", pa.binary()),
            pa.field("name", pa.string()),
            pa.field("ext", pa.string()),
            pa.field("kind", pa.string()),
            pa.field("size", pa.int64()),
            pa.field("mtime_ns", pa.int64()),
            pa.field("content_hash", pa.string()),
            pa.field("state", pa.string()),
            pa.field("reason", pa.string()),
            pa.field("text_model", pa.string()),
            pa.field("image_model", pa.string()),
            pa.field("truncated", pa.bool_()),
            pa.field("indexed_at", pa.float64()),
            pa.field("title", pa.string()),
            pa.field("n_chunks", pa.int32()),
            pa.field("available", pa.bool_()),
        ],
        metadata={SCHEMA_KEY: str(SCHEMA_VERSION)},
    )


def _chunks_schema(dim: int, model_id: str) -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("fid", pa.string(), nullable=False),
            pa.field("file_hash", pa.string()),
            pa.field("batch", pa.int64()),
            pa.field("ord", pa.int32()),
            pa.field("text", pa.string()),
            pa.field("start", pa.int32()),
            pa.field("end", pa.int32()),
            pa.field("chunk_hash", pa.string()),
            pa.field("vector", pa.list_(pa.float32(), dim)),
        ],
        metadata={"model_id": model_id, "dim": str(dim), SCHEMA_KEY: str(SCHEMA_VERSION)},
    )


def _images_schema(dim: int, model_id: str) -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("fid", pa.string(), nullable=False),
            pa.field("file_hash", pa.string()),
            pa.field("batch", pa.int64()),
            pa.field("width", pa.int32()),
            pa.field("height", pa.int32()),
            pa.field("thumb", pa.string()),
            pa.field("vector", pa.list_(pa.float32(), dim)),
        ],
        metadata={"model_id": model_id, "dim": str(dim), SCHEMA_KEY: str(SCHEMA_VERSION)},
    )


class Store:
    """One LanceDB database under the data directory.

    Any number of processes may read; only the holder of the writer lock writes
    (the pipeline makes sure of that). Within a process, writes are serialised
    by a lock and reads run concurrently.
    """

    def __init__(
        self,
        path: Path,
        *,
        text_model: tuple[str, int] | None = None,
        image_model: tuple[str, int] | None = None,
        more_text_models: Sequence[tuple[str, int]] = (),
        read_consistency: timedelta = timedelta(seconds=0),
    ) -> None:
        import lancedb

        self.path = Path(path)
        # (model id, dim) of the default text model: what a chunk read without a model id uses.
        self.text_model = text_model
        # Every text model whose passages this store keeps, model id -> dim: one chunks
        # table each; a file's record names the one that embedded it (`FileRecord.text_model`).
        self.text_models: dict[str, int] = dict([*([text_model] if text_model else []), *more_text_models])
        self.image_model = image_model
        self._write_lock = threading.RLock()
        self._cache_lock = threading.Lock()
        self._files_cache: dict[str, FileRecord] | None = None
        self._removed_cache: dict[str, FileRecord] = {}  # retired records, same version as _files_cache
        self._files_cache_version: int | None = None
        self._hash_index: dict[str, list[str]] | None = None
        self._hash_index_of: dict[str, FileRecord] | None = None
        self._path_index: dict[str, str] | None = None  # path -> fid, built when a path misses its hash
        self._path_index_of: dict[str, FileRecord] | None = None
        self._tables: dict[str, Any] = {}
        # Tables found missing by a reader, with the files table's version it had then: a
        # search asks for the words table of a library that has none on every query, and
        # listing the tables costs ~1-2 ms and the write lock. While the files snapshot is
        # that version no file can need the table (a writer creates a table and fills it
        # before it commits the files that own the rows), so it is not listed again.
        self._absent: dict[str, int] = {}
        self._damaged: dict[str, str] = {}  # fid -> why, noted by this process (see note_damaged)
        try:
            self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._db = lancedb.connect(str(self.path), read_consistency_interval=read_consistency)
            self._files = self._open_or_create(FILES, _files_schema())
            self._files.count_rows()  # touch the latest manifest: detects damage early
        except OSError as exc:
            if is_disk_full(exc):
                raise DiskFull("the disk holding the index is full; free some space") from exc
            raise StoreError(f"cannot open the index at {self.path}: {exc}") from exc
        except Exception as exc:  # lance raises plain RuntimeError/ValueError for damage
            raise StoreError(f"the index at {self.path} cannot be read ({_short(exc)})") from exc
        self.schema_found = schema_version_of(self._files)  # an older one is upgraded by the writer
        if self.schema_found > SCHEMA_VERSION:
            raise StoreTooNew(too_new_message(self.path, self.schema_found))

    # ----------------------------------------------------------------- schema
    @property
    def schema_outdated(self) -> bool:
        """Written by an older Lodestar: `upgrade_schema` (the writer's) is due."""
        return self.schema_found < SCHEMA_VERSION

    def upgrade_schema(self) -> str:
        """Writer only: bring a store of an older schema to `SCHEMA_VERSION`; says what was done.

        Cheap steps (`MIGRATIONS`) run in place. Without a step for every version between,
        every file is marked for a rebuild instead: its record stays ``indexed``, so search
        keeps showing its rows meanwhile, but a zero mtime and no model make the next
        reconcile re-read and re-embed it (nothing of the old layout is reused), and its new
        rows replace the old ones as any re-index does.
        """
        found = self.schema_found
        if found >= SCHEMA_VERSION:
            return ""
        with self._write_lock:
            steps = range(found, SCHEMA_VERSION)
            if all(v in MIGRATIONS for v in steps):
                for v in steps:
                    MIGRATIONS[v](self)
                done = f"index format {found} migrated to {SCHEMA_VERSION}"
            else:
                recs = [dataclasses.replace(r, mtime_ns=0, text_model="", image_model="") for r in self.files().values()]
                if recs:
                    self._upsert_files(recs)
                done = f"index format {found} is rebuilt in the background: {len(recs)} files to re-read"
            self._write_schema_version()
            self.schema_found = SCHEMA_VERSION
        log.warning("%s", done)
        return done

    def _write_schema_version(self) -> None:
        """Stamp every table with `SCHEMA_VERSION` (its schema metadata, a new table version)."""
        import lance

        for name in self.table_names():
            ds = lance.dataset(str(self.path / f"{name}.lance"))
            meta = {k.decode(): v.decode() for k, v in (ds.schema.metadata or {}).items()}
            ds.update_schema_metadata({**meta, SCHEMA_KEY: str(SCHEMA_VERSION)}, replace=True)
        self.refresh()

    # ----------------------------------------------------------------- tables
    def _open_or_create(self, name: str, schema: Any) -> Any:
        try:
            return self._db.open_table(name)
        except ValueError:
            pass  # does not exist yet
        except FileNotFoundError:
            pass
        return self._db.create_table(name, schema=schema, exist_ok=True)

    def table_names(self) -> list[str]:
        result = self._db.list_tables()
        names = getattr(result, "tables", result)
        return list(names)

    def _text_model(self, model_id: str | None) -> tuple[str, int] | None:
        """(id, dim) of ``model_id``, by default the store's text model (None: it has none)."""
        if model_id is None:
            return self.text_model
        if model_id not in self.text_models:
            raise KeyError(f"text model {model_id!r} is not one of this store's ({', '.join(self.text_models) or 'none'})")
        return model_id, self.text_models[model_id]

    def chunks_table_name(self, model_id: str | None = None) -> str | None:
        model = self._text_model(model_id)
        return "chunks__" + table_slug(*model) if model else None

    def images_table_name(self) -> str | None:
        if not self.image_model:
            return None
        return "images__" + table_slug(*self.image_model)

    def chunks_table(self, create: bool = False, *, model_id: str | None = None) -> Any | None:
        """The passages of one text model (default: the store's text model)."""
        model = self._text_model(model_id)
        if model is None:
            return None
        return self._table("chunks__" + table_slug(*model), _chunks_schema(model[1], model[0]), create)

    def chunk_tables(self) -> list[Any]:
        """The chunks tables of every text model, those that exist."""
        return [t for t in (self.chunks_table(model_id=m) for m in self.text_models) if t is not None]

    def images_table(self, create: bool = False) -> Any | None:
        name = self.images_table_name()
        if name is None or self.image_model is None:
            return None
        return self._table(name, _images_schema(self.image_model[1], self.image_model[0]), create)

    def _table(self, name: str, schema: Any, create: bool) -> Any | None:
        table = self._tables.get(name)
        if table is not None:
            return table
        if not create:
            seen_at = self._absent.get(name)
            if seen_at is not None and seen_at == self._files_cache_version:
                return None
        with self._write_lock:
            if name in self.table_names():
                try:
                    table = self._db.open_table(name)
                except (ValueError, FileNotFoundError):
                    # Listed but not openable: another connection is creating it right
                    # now (its folder exists before its first manifest). For a reader
                    # that is "no rows yet"; a writer creates it (exist_ok).
                    if not create:
                        return None
                    table = self._db.create_table(name, schema=schema, exist_ok=True)
            elif create:
                table = self._db.create_table(name, schema=schema, exist_ok=True)
            else:
                if self._files_cache_version is not None:
                    self._absent[name] = self._files_cache_version
                return None
            self._absent.pop(name, None)
            self._tables[name] = table
            return table

    # ------------------------------------------------------------------ reads
    def files(self) -> dict[str, FileRecord]:
        """All file records by fid, retired ones left out; cached until the files table changes."""
        return self._snapshot()[0]

    def removed(self) -> dict[str, FileRecord]:
        """Retired records by fid (state ``removed``): twin sources only, never shown."""
        return self._snapshot()[1]

    def _snapshot(self) -> tuple[dict[str, FileRecord], dict[str, FileRecord]]:
        version = self._files.version
        with self._cache_lock:
            if self._files_cache is not None and self._files_cache_version == version:
                return self._files_cache, self._removed_cache
        records = self._load_files()
        removed = {fid: rec for fid, rec in records.items() if rec.state == REMOVED}
        for fid in removed:
            del records[fid]
        with self._cache_lock:
            self._files_cache, self._removed_cache = records, removed
            self._files_cache_version = version
        return records, removed

    def _load_files(self) -> dict[str, FileRecord]:
        arrow = self._files.to_arrow()
        cols = {name: arrow.column(name).to_pylist() for name in arrow.column_names}
        out: dict[str, FileRecord] = {}
        for i in range(arrow.num_rows):
            rec = FileRecord(
                fid=cols["fid"][i],
                path=os.fsdecode(cols["path_bytes"][i]),
                root=os.fsdecode(cols["root_bytes"][i] or b""),
                kind=cols["kind"][i],
                size=cols["size"][i],
                mtime_ns=cols["mtime_ns"][i],
                content_hash=cols["content_hash"][i] or "",
                state=cols["state"][i],
                reason=cols["reason"][i] or "",
                text_model=cols["text_model"][i] or "",
                image_model=cols["image_model"][i] or "",
                truncated=bool(cols["truncated"][i]),
                indexed_at=cols["indexed_at"][i] or 0.0,
                title=cols["title"][i] or "",
                n_chunks=cols["n_chunks"][i] or 0,
                available=cols["available"][i] is not False,
            )
            out[rec.fid] = rec
        return out

    def get_file(self, path: str) -> FileRecord | None:
        return self.files().get(self.fid_resolver()(path))

    def fid_resolver(self) -> Callable[[str], str]:
        """A function giving the id of the record of a path, on one snapshot of the records.

        A record's id is the hash of the path it was first indexed at (`file_id`) and stays
        with it when its whole watched folder is followed to a new place (`relocate_root`:
        its vectors, pictures, words and map point keep their rows). So a path is looked up
        by its hash first (every file never followed), then among the records' paths. A
        path the index does not know gets its hash, or, when a followed record holds that
        id (a new file where a followed one used to be), the first free derived one.
        """
        files, removed = self._snapshot()

        def resolve(path: str) -> str:
            fid = file_id(path)
            rec = files.get(fid) or removed.get(fid)
            if rec is not None and rec.path == path:
                return fid
            known = self._paths(files, removed).get(path)
            if known is not None:
                return known
            n = 0
            while fid in files or fid in removed:
                n += 1
                fid = file_id(f"{path}\x00{n}")  # NUL never occurs in a path
            return fid

        return resolve

    def _paths(self, files: dict[str, FileRecord], removed: dict[str, FileRecord]) -> dict[str, str]:
        with self._cache_lock:
            if self._path_index is None or self._path_index_of is not files:
                index = {rec.path: fid for fid, rec in removed.items()}
                index.update((rec.path, fid) for fid, rec in files.items())  # a live record wins
                self._path_index, self._path_index_of = index, files
            return self._path_index

    def by_hash(self, content_hash: str) -> list[FileRecord]:
        """Files with these bytes whose vectors can be copied (rename/move/copy reuse):
        indexed ones first, then retired ones; O(1) per call."""
        files, removed = self._snapshot()
        with self._cache_lock:
            if self._hash_index is None or self._hash_index_of is not files:
                index: dict[str, list[str]] = {}
                for rec in [*files.values(), *removed.values()]:
                    if rec.content_hash:
                        index.setdefault(rec.content_hash, []).append(rec.fid)
                self._hash_index, self._hash_index_of = index, files
            fids = list(self._hash_index.get(content_hash, ()))
        live = [files[f] for f in fids if f in files and files[f].state == "indexed"]
        retired = [removed[f] for f in fids if f in removed]
        return [r for r in [*live, *retired] if r.content_hash == content_hash]

    def _apply_to_cache(self, batch: WriteBatch, version_before: int, retired: Sequence[FileRecord] = ()) -> None:
        """The writer knows what it wrote: update the cached snapshot instead of
        re-reading the whole files table after every commit (O(batch), not O(store))."""
        with self._cache_lock:
            if self._files_cache is None or self._files_cache_version != version_before:
                self._files_cache = None
                return
            cache, removed = dict(self._files_cache), dict(self._removed_cache)
            for fid in [*batch.delete, *batch.retire]:
                cache.pop(fid, None)
                removed.pop(fid, None)
            for rec in retired:
                removed[rec.fid] = rec
            for rec in batch.files:
                cache[rec.fid] = rec
                removed.pop(rec.fid, None)
            self._files_cache, self._removed_cache = cache, removed
            self._files_cache_version = self._files.version
            self._hash_index = None

    def chunk_rows(self, fid: str, file_hash: str | None = None, *, model_id: str | None = None) -> list[ChunkRow]:
        table = self.chunks_table(model_id=model_id)
        if table is None:
            return []
        where = f"fid = '{_checked_hex(fid)}'"
        if file_hash:
            where += f" AND file_hash = '{_checked_hex(file_hash)}'"
        arrow = table.search().where(where).limit(None).to_arrow()
        rows = [
            ChunkRow(
                ord=o, text=t, start=s, end=e, chunk_hash=h, vector=np.asarray(v, dtype=np.float32)
            )
            for o, t, s, e, h, v in zip(
                arrow.column("ord").to_pylist(),
                arrow.column("text").to_pylist(),
                arrow.column("start").to_pylist(),
                arrow.column("end").to_pylist(),
                arrow.column("chunk_hash").to_pylist(),
                arrow.column("vector").to_pylist(),
            )
        ]
        return self._whole_rows(fid, rows, table.name)

    def _whole_rows(self, fid: str, rows: list[ChunkRow], table_name: str) -> list[ChunkRow]:
        """One file's rows in order, one per ord; none when any vector is damaged."""
        # Duplicates can exist briefly after a crash between commits; keep one per ord.
        by_ord: dict[int, ChunkRow] = {}
        for row in sorted(rows, key=lambda r: r.ord):
            by_ord.setdefault(row.ord, row)
        rows = list(by_ord.values())
        if rows and not sane_rows(np.stack([r.vector for r in rows])).all():
            # Damaged on disk: never copied to a twin, reused or used as a query (issue 11.6).
            self.note_damaged([fid], f"damaged vectors in {table_name}")
            return []
        return rows

    def chunk_rows_of(self, hashes: dict[str, str], *, model_id: str | None = None) -> dict[str, list[ChunkRow]]:
        """`chunk_rows` of many files (fid -> file_hash) in one read per 500 files, not one
        each (each read scans the table: per file, copying a renamed folder grew quadratic).
        Files without rows of that hash, or with a damaged vector, are left out."""
        table = self.chunks_table(model_id=model_id)
        out: dict[str, list[ChunkRow]] = {}
        if table is None:
            return out
        for part in _batches(list(hashes), 500):
            arrow = table.search().where(f"fid IN ({_hex_list(part)})").limit(None).to_arrow()
            vectors = _vectors(arrow)
            cols = (arrow.column(c).to_pylist() for c in ("fid", "file_hash", "ord", "text", "start", "end", "chunk_hash"))
            found: dict[str, list[ChunkRow]] = {}
            for i, (fid, fh, o, t, s, e, h) in enumerate(zip(*cols)):
                if fh == hashes[fid]:
                    found.setdefault(fid, []).append(ChunkRow(ord=o, text=t, start=s, end=e, chunk_hash=h, vector=vectors[i]))
            for fid, rows in found.items():
                rows = self._whole_rows(fid, rows, table.name)
                if rows:
                    out[fid] = rows
        return out

    def image_rows_of(self, hashes: dict[str, str]) -> dict[str, ImageRow]:
        """`image_row` of many files (fid -> file_hash) in one read per 500 files; files
        without a row of that hash, or with a damaged vector, are left out."""
        table = self.images_table()
        out: dict[str, ImageRow] = {}
        if table is None:
            return out
        for part in _batches(list(hashes), 500):
            arrow = table.search().where(f"fid IN ({_hex_list(part)})").limit(None).to_arrow()
            vectors = _vectors(arrow)
            sane = sane_rows(vectors)
            cols = (arrow.column(c).to_pylist() for c in ("fid", "file_hash", "width", "height", "thumb"))
            for i, (fid, fh, w, h, thumb) in enumerate(zip(*cols)):
                if fh != hashes[fid] or fid in out:
                    continue
                if not sane[i]:
                    self.note_damaged([fid], f"damaged vector in {table.name}")
                    continue
                out[fid] = ImageRow(width=w, height=h, thumb=thumb, vector=vectors[i])
        return out

    def image_row(self, fid: str, file_hash: str | None = None) -> ImageRow | None:
        table = self.images_table()
        if table is None:
            return None
        where = f"fid = '{_checked_hex(fid)}'"
        if file_hash:
            where += f" AND file_hash = '{_checked_hex(file_hash)}'"
        arrow = table.search().where(where).limit(1).to_arrow()
        if arrow.num_rows == 0:
            return None
        vector = np.asarray(arrow.column("vector")[0].as_py(), dtype=np.float32)
        if not sane_rows(vector).all():
            self.note_damaged([fid], f"damaged vector in {table.name}")
            return None
        return ImageRow(
            width=arrow.column("width")[0].as_py(),
            height=arrow.column("height")[0].as_py(),
            thumb=arrow.column("thumb")[0].as_py(),
            vector=vector,
        )

    # -------------------------------------------------------- damaged vectors
    def note_damaged(self, fids: Iterable[str], why: str) -> int:
        """Remember files whose stored vectors are damaged; the writer re-embeds them.

        Any process may call this (a search that met a NaN row, the deep check): the
        note is a small file in the data dir, so a reader tells the writer without
        writing to the store. Returns how many files were new to this process.
        """
        fresh = []
        with self._cache_lock:
            for fid in dict.fromkeys(fids):
                if re.fullmatch(r"[0-9a-f]{1,64}", fid or "") and fid not in self._damaged:
                    self._damaged[fid] = why
                    fresh.append(fid)
        if not fresh:
            return 0
        log.warning("%d file%s with %s will be re-indexed", len(fresh), "s" if len(fresh) != 1 else "", why)
        folder = self.path.parent / DAMAGED_NOTES
        try:
            folder.mkdir(mode=0o700, exist_ok=True)
            name = f"{os.getpid()}-{time.time_ns()}-{threading.get_ident()}.json"
            tmp = folder / f".{name}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"fids": fresh, "why": why}, fh)
            os.replace(tmp, folder / name)
        except OSError as exc:  # this process still knows; its own writer repairs them
            log.warning("cannot note damaged vectors in %s: %s", folder, exc)
        return len(fresh)

    def damaged_noted(self) -> dict[str, str]:
        """Files noted as damaged and not repaired yet (this process and the others' notes)."""
        out = dict(self._damaged)
        for _path, data in self._read_notes():
            for fid in data.get("fids", []):
                out.setdefault(fid, str(data.get("why", "damaged vectors")))
        return out

    def take_damaged(self) -> dict[str, str]:
        """The writer takes every note (fid -> why) and removes them."""
        notes = self._read_notes()
        with self._cache_lock:
            out, self._damaged = self._damaged, {}
        for _path, data in notes:
            for fid in data.get("fids", []):
                out.setdefault(fid, str(data.get("why", "damaged vectors")))
        for path, _data in notes:
            try:
                path.unlink()
            except OSError:
                pass
        return out

    def _read_notes(self) -> list[tuple[Path, dict[str, Any]]]:
        return read_damaged_notes(self.path.parent)

    def mark_for_reindex(self, fids: Iterable[str], reason: str) -> int:
        """Writer only: these files' rows are damaged or lost; the next sync re-embeds them.

        ``pending`` hides their rows from search at once, and a zero mtime makes the
        next reconcile (or sync of the path) read them again instead of "unchanged".
        """
        files = self.files()
        recs = [
            dataclasses.replace(files[f], state="pending", reason=reason, mtime_ns=0)
            for f in dict.fromkeys(fids)
            if f in files and files[f].state == "indexed"
        ]
        if recs:
            with self._write_lock:
                self._upsert_files(recs)
        return len(recs)

    def drop_fragments(self, table_name: str, fragment_ids: Sequence[int]) -> None:
        """Writer only: remove unreadable fragments from a vector table's latest version.

        Their data files cannot be read, so they cannot be deleted row by row; older
        versions still list them (kept for readers until cleanup).
        """
        import lance

        uri = str(self.path / f"{table_name}.lance")
        with self._write_lock:
            ds = lance.dataset(uri)
            op = lance.LanceOperation.Delete([], sorted(set(int(i) for i in fragment_ids)), "lodestar: unreadable fragment")
            lance.LanceDataset.commit(uri, op, read_version=ds.version)
            table = self._tables.get(table_name)
            if table is not None:
                try:
                    table.checkout_latest()
                except Exception:  # noqa: BLE001 - the handle is latest already
                    pass

    def counts(self) -> dict[str, Any]:
        by_kind: dict[str, int] = {}
        by_state: dict[str, int] = {}
        for rec in self.files().values():
            by_kind[rec.kind] = by_kind.get(rec.kind, 0) + 1
            by_state[rec.state] = by_state.get(rec.state, 0) + 1
        images = self.images_table()
        return {
            "files": sum(by_kind.values()),
            "by_kind": by_kind,
            "by_state": by_state,
            "chunks": sum(t.count_rows() for t in self.chunk_tables()),
            "images": images.count_rows() if images is not None else 0,
        }

    def problems(self) -> list[FileRecord]:
        """Files that failed, are pending, or are findable by name only, with reasons."""
        return sorted((r for r in self.files().values() if is_problem(r)), key=lambda r: (r.state, r.path))

    def size_bytes(self) -> int:
        total = 0
        for dirpath, _dirs, files in os.walk(self.path):
            for name in files:
                try:
                    total += os.lstat(os.path.join(dirpath, name)).st_size
                except OSError:
                    pass
        return total

    # ----------------------------------------------------------------- writes
    def write(self, batch: WriteBatch) -> None:
        """Commit one batch: data rows first, then file rows, then stale rows go.

        The order is what makes a crash harmless: a file is marked ``indexed``
        only after its vectors are committed; rows of the old content are
        removed last and are invisible meanwhile (their ``file_hash`` differs).
        """
        if not batch:
            return
        import pyarrow as pa

        batch_id = time.time_ns()
        try:
            with self._write_lock:
                touched_text = list(batch.chunks)
                touched_images = list(batch.images)
                hashes = {r.fid: r.content_hash for r in batch.files}
                for (model_id, dim), chunks in self._chunks_by_model(batch).items():
                    table = self.chunks_table(create=True, model_id=model_id)
                    assert table is not None
                    fids, fhash, ords, texts, starts, ends, chashes, vecs = [], [], [], [], [], [], [], []
                    for fid, rows in chunks.items():
                        for row in rows:
                            fids.append(fid)
                            fhash.append(hashes.get(fid, ""))
                            ords.append(row.ord)
                            texts.append(row.text)
                            starts.append(row.start)
                            ends.append(row.end)
                            chashes.append(row.chunk_hash)
                            vecs.append(row.vector)
                    if fids:
                        flat = np.ascontiguousarray(np.stack(vecs).astype(np.float32)).reshape(-1)
                        data = pa.table(
                            {
                                "fid": fids,
                                "file_hash": fhash,
                                "batch": pa.array([batch_id] * len(fids), pa.int64()),
                                "ord": pa.array(ords, pa.int32()),
                                "text": texts,
                                "start": pa.array(starts, pa.int32()),
                                "end": pa.array(ends, pa.int32()),
                                "chunk_hash": chashes,
                                "vector": pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), dim),
                            },
                            schema=table.schema,
                        )
                        table.add(data)
                if batch.images:
                    table = self.images_table(create=True)
                    assert table is not None and self.image_model is not None
                    hashes = {r.fid: r.content_hash for r in batch.files}
                    items = list(batch.images.items())
                    dim = self.image_model[1]
                    flat = np.ascontiguousarray(np.stack([r.vector for _f, r in items]).astype(np.float32)).reshape(-1)
                    data = pa.table(
                        {
                            "fid": [f for f, _r in items],
                            "file_hash": [hashes.get(f, "") for f, _r in items],
                            "batch": pa.array([batch_id] * len(items), pa.int64()),
                            "width": pa.array([r.width for _f, r in items], pa.int32()),
                            "height": pa.array([r.height for _f, r in items], pa.int32()),
                            "thumb": [r.thumb for _f, r in items],
                            "vector": pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), dim),
                        },
                        schema=table.schema,
                    )
                    table.add(data)
                version_before = self._files.version
                retired, dropped = self._split_retired(batch)
                if batch.files or retired:
                    self._upsert_files([*batch.files, *retired])
                if batch.delete or dropped:
                    self._delete_files([*batch.delete, *dropped])
                self._apply_to_cache(batch, version_before, retired)
                # Rows of the old content (earlier batches, any text model) go last; until
                # now they were invisible because their file_hash no longer matches.
                for text_table in self.chunk_tables():
                    self._delete_rows(text_table, touched_text, batch_id)
                self._delete_rows(self.images_table(), touched_images, batch_id)
                # Files that no longer have vectors (now failed, name-only, or another kind).
                no_text = [
                    r.fid for r in batch.files
                    if r.fid not in batch.chunks and (r.state != "indexed" or r.kind != "text")
                ]
                no_image = [
                    r.fid for r in batch.files
                    if r.fid not in batch.images and (r.state != "indexed" or r.kind != "image")
                ]
                for text_table in self.chunk_tables():
                    self._delete_rows(text_table, no_text, None)
                self._delete_rows(self.images_table(), no_image, None)
        except OSError as exc:
            if is_disk_full(exc):
                raise DiskFull("the disk holding the index is full; indexing is paused until space is freed") from exc
            raise
        except RuntimeError as exc:
            if is_disk_full(exc):
                raise DiskFull("the disk holding the index is full; indexing is paused until space is freed") from exc
            raise

    def _chunks_by_model(self, batch: WriteBatch) -> dict[tuple[str, int], dict[str, list[ChunkRow]]]:
        """The batch's passages by the text model that embedded them, as their file's
        record says (a record without one: the store's default text model)."""
        model_of = {r.fid: r.text_model for r in batch.files}
        out: dict[tuple[str, int], dict[str, list[ChunkRow]]] = {}
        for fid, rows in batch.chunks.items():
            model = self._text_model(model_of.get(fid) or None)
            assert model is not None, "passages written to a store without a text model"
            out.setdefault(model, {})[fid] = rows
        return out

    def _split_retired(self, batch: WriteBatch) -> tuple[list[FileRecord], list[str]]:
        """``batch.retire`` as records to hide (indexed: their vectors may serve a twin)
        and fids to delete (nothing to reuse). The time retired goes in ``indexed_at``."""
        if not batch.retire:
            return [], []
        live = self.files()
        written = {r.fid for r in batch.files}
        now = time.time()
        retired, dropped = [], []
        for fid in dict.fromkeys(batch.retire):
            if fid in written:
                continue
            rec = live.get(fid)
            if rec is not None and rec.state == "indexed" and rec.content_hash and rec.kind in ("text", "image"):
                retired.append(dataclasses.replace(rec, state=REMOVED, indexed_at=now))
            else:
                dropped.append(fid)
        return retired, dropped

    def _upsert_files(self, records: Sequence[FileRecord]) -> None:
        import pyarrow as pa

        unique: dict[str, FileRecord] = {}
        for rec in records:  # merge_insert with duplicate keys is undefined (L6)
            unique[rec.fid] = rec
        recs = list(unique.values())
        data = pa.table(
            {
                "fid": [r.fid for r in recs],
                "path": [display_path(r.path) for r in recs],
                "path_bytes": [os.fsencode(r.path) for r in recs],
                "root": [display_path(r.root) for r in recs],
                "root_bytes": [os.fsencode(r.root) for r in recs],
                "name": [r.name for r in recs],
                "ext": [r.ext for r in recs],
                "kind": [r.kind for r in recs],
                "size": pa.array([r.size for r in recs], pa.int64()),
                "mtime_ns": pa.array([r.mtime_ns for r in recs], pa.int64()),
                "content_hash": [r.content_hash for r in recs],
                "state": [r.state for r in recs],
                "reason": [r.reason for r in recs],
                "text_model": [r.text_model for r in recs],
                "image_model": [r.image_model for r in recs],
                "truncated": [r.truncated for r in recs],
                "indexed_at": pa.array([r.indexed_at for r in recs], pa.float64()),
                "title": [r.title for r in recs],
                "n_chunks": pa.array([r.n_chunks for r in recs], pa.int32()),
                "available": [r.available for r in recs],
            },
            schema=self._files.schema,
        )
        (
            self._files.merge_insert("fid")
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute(data)
        )

    def side_tables(self) -> list[Any]:
        """Tables of recognised text keyed by fid (`indexer.store.recognised`), those that exist:
        a file's rows there go with it, and are compacted and swept like the others."""
        from indexer.store import recognised

        return recognised.tables(self)

    def _delete_files(self, fids: Sequence[str]) -> None:
        side = self.side_tables()
        for part in _batches(list(dict.fromkeys(fids)), 500):
            ids = _hex_list(part)
            self._files.delete(f"fid IN ({ids})")
            for table in (*self.chunk_tables(), self.images_table(), *side):
                if table is not None:
                    table.delete(f"fid IN ({ids})")

    def _delete_rows(self, table: Any | None, fids: Sequence[str], keep_batch: int | None) -> None:
        if table is None or not fids:
            return
        for part in _batches(list(dict.fromkeys(fids)), 500):
            where = f"fid IN ({_hex_list(part)})"
            if keep_batch is not None:
                where += f" AND batch != {int(keep_batch)}"
            table.delete(where)

    def set_available(self, root: str, available: bool) -> int:
        """Mark every file under ``root`` (un)available without touching vectors."""
        recs = [dataclasses.replace(r, available=available) for r in self.files().values() if r.root == root and r.available != available]
        if recs:
            with self._write_lock:
                self._upsert_files(recs)
        return len(recs)

    def relocate_root(self, old_root: str, new_root: str) -> int:
        """A watched folder renamed or moved as a whole: every record under ``old_root``
        takes the same place under ``new_root``. Records keep their ids, so their rows in
        every table (passages, pictures, recognised words) and the kept maps stay as they
        are: one commit of the files table, nothing read, no model call, no index upkeep.
        Returns the records moved."""
        files, removed = self._snapshot()
        cut = len(old_root)
        moved = [dataclasses.replace(r, path=new_root + r.path[cut:], root=new_root, available=True)
                 for r in (*files.values(), *removed.values()) if r.root == old_root]
        if not moved:
            return 0
        try:
            with self._write_lock:
                self._upsert_files(moved)  # one merge_insert: all of them or none
                with self._cache_lock:
                    self._files_cache = None  # cheaper to re-read once than to patch every entry
                    self._hash_index = None
                    self._path_index = None
        except (OSError, RuntimeError) as exc:
            if is_disk_full(exc):
                raise DiskFull("the disk holding the index is full; indexing is paused until space is freed") from exc
            raise
        return len(moved)

    def delete_files(self, fids: Sequence[str]) -> None:
        if fids:
            self.write(WriteBatch(delete=list(fids)))

    def purge_removed(self, *, roots: Iterable[str] = (), retired_before: float | None = None) -> int:
        """Writer only: delete retired records (and their vectors) of ``roots``, and those
        retired before ``retired_before`` (a time.time()); returns how many went."""
        roots = set(roots)
        fids = [
            fid for fid, rec in self.removed().items()
            if rec.root in roots or (retired_before is not None and rec.indexed_at < retired_before)
        ]
        self.delete_files(fids)
        return len(fids)

    def drop_other_model_tables(self) -> list[str]:
        """Drop vector tables of models that are no longer configured."""
        from indexer.store import recognised

        keep = {*(self.chunks_table_name(m) for m in self.text_models), self.images_table_name(), FILES,
                *recognised.keep_names(self)}
        dropped = []
        with self._write_lock:
            for name in self.table_names():
                if name not in keep and name.startswith(("chunks__", "images__", recognised.PREFIX)):
                    self._db.drop_table(name)
                    self._tables.pop(name, None)
                    dropped.append(name)
        return dropped

    def remove_orphans(self) -> int:
        """Delete vector rows whose file no longer exists (left by a crash)."""
        known = set(self.files()) | set(self.removed())
        removed = 0
        for table in (*self.chunk_tables(), self.images_table(), *self.side_tables()):
            if table is None:
                continue
            fids = set(table.search().select(["fid"]).limit(None).to_arrow().column("fid").to_pylist())
            orphans = sorted(fids - known)
            if orphans:
                with self._write_lock:
                    self._delete_rows(table, orphans, None)
                removed += len(orphans)
        return removed

    def optimize(self, cleanup_older_than: timedelta = CLEANUP_OLDER_THAN) -> None:
        """Compact fragments, fold new rows into indexes, prune old versions (L4)."""
        with self._write_lock:
            for table in (self._files, *self.chunk_tables(), self.images_table(), *self.side_tables()):
                if table is None:
                    continue
                try:
                    table.optimize(cleanup_older_than=cleanup_older_than)
                except Exception as exc:
                    if is_disk_full(exc):
                        raise DiskFull("the disk holding the index is full") from exc
                    log.warning("optimize of %s failed: %s", getattr(table, "name", "?"), _short(exc))

    def clear(self) -> None:
        with self._write_lock:
            for name in self.table_names():
                self._db.drop_table(name)
            self._tables.clear()
            self._files = self._db.create_table(FILES, schema=_files_schema(), exist_ok=True)
            with self._cache_lock:
                self._files_cache = None

    def refresh(self) -> None:
        """Make sure the next read sees other processes' commits."""
        for table in [self._files, *self._tables.values()]:
            try:
                table.checkout_latest()
            except Exception:  # noqa: BLE001 - a table handle that is already latest
                pass

    def close(self) -> None:
        self._tables.clear()


def schema_version_of(table: Any) -> int:
    """The schema version a table was written with; 0 when it has none (or garbage)."""
    raw = (table.schema.metadata or {}).get(SCHEMA_KEY.encode(), b"")
    try:
        return int(raw.decode("ascii", "replace"))
    except ValueError:
        return 0


def too_new_message(path: Path, found: int) -> str:
    return (f"the index at {path} was written by a newer Lodestar (index format {found}; this one reads up to "
            f"{SCHEMA_VERSION}): update Lodestar, or use another data folder (--data-dir); the index was not changed")


def read_damaged_notes(data_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The notes of damaged vectors left by any process (see `Store.note_damaged`)."""
    out = []
    try:
        entries = sorted((Path(data_dir) / DAMAGED_NOTES).glob("*.json"))
    except OSError:
        return []
    for path in entries:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("fids"), list):
            out.append((path, data))
    return out


def _checked_hex(value: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{1,64}", value):
        raise ValueError(f"not a hex id: {value!r}")
    return value


def _vectors(arrow: Any) -> np.ndarray:
    """The ``vector`` column of a query result as one float32 [n, dim] array."""
    column = arrow.column("vector")
    dim = column.type.list_size
    if arrow.num_rows == 0:
        return np.zeros((0, dim), np.float32)
    flat = column.combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return np.asarray(flat, dtype=np.float32).reshape(-1, dim)


def _batches(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]
