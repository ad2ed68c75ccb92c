"""Recognised text (words inside pictures and scans, issue 16): its own two tables.

- ``ocr__<text model slug>_<dim>``: passages of text recognised in a file (an image, or
  a PDF's scanned pages), embedded with that text model, each with the boxes of its lines
  (``lines``: JSON ``[[start, end, page, x0, y0, x1, y1, x2, y2, x3, y3], ...]``, spans
  within the passage's ``text``). Keyword-indexed like the chunks tables.
- ``ocr_state``: one row per file the recognition stage has finished, for the content
  hash it read (``file_hash``): ``text`` (passages written), ``none`` (nothing to read:
  the gate said no, or no line was read), ``failed`` (``reason`` says why). A file whose
  content hash has no state row is still to be read, so the stage resumes after a crash
  where it stopped, and a changed file is read again.

They are tables of their own, not columns of ``chunks__``: a recognised passage lives
and dies by the recognition stage (run long after the file's own commit, at a lower
priority), so it must never be cleared by the pipeline's write of the file's text
passages, nor clear them; and no existing table changes layout (no migration: an older
Lodestar opening this store ignores these tables, and this one creates them on first use).

Commit order, as everywhere: passages first, then the state row, then the file's older
passages go. A crash in between leaves passages without a state: read again, replaced.
Rows are live only while their file is available and still has the rows' content hash
(`ocr_live`); unlike text passages, a picture still waiting for the image model
(``pending``) and a PDF with no text layer (``name_only``) show theirs too.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from indexer.store.tables import (
    SCHEMA_KEY,
    SCHEMA_VERSION,
    FileRecord,
    Store,
    _batches,
    _hex_list,
    _vectors,
    sane_rows,
    table_slug,
)

log = logging.getLogger(__name__)

STATE_TABLE = "ocr_state"
PREFIX = "ocr__"
OcrStateName = str  # "text" | "none" | "failed"
LIVE_STATES = ("indexed", "pending", "name_only")


@dataclasses.dataclass
class OcrRow:
    """One recognised passage of a file."""

    ord: int
    text: str
    start: int  # span in the file's whole recognised text
    end: int
    page: int  # PDF page (0-based) of its first line; -1 for an image
    lines: str  # JSON, see the module docstring
    chunk_hash: str
    vector: np.ndarray


@dataclasses.dataclass
class OcrState:
    fid: str
    file_hash: str
    state: OcrStateName
    n_lines: int = 0
    reason: str = ""
    at: float = 0.0


@dataclasses.dataclass
class OcrWrite:
    """What the stage learnt of one file: its state and (for ``text``) its passages."""

    state: OcrState
    rows: list[OcrRow] = dataclasses.field(default_factory=list)


def ocr_live(rec: FileRecord | None, file_hash: str) -> bool:
    """Whether a recognised passage written for ``file_hash`` may be shown for this file."""
    return (rec is not None and rec.available and rec.state in LIVE_STATES
            and bool(rec.content_hash) and rec.content_hash == file_hash)


def encode_lines(spans: Iterable[tuple[int, int, int, Sequence[Sequence[float]]]]) -> str:
    """``[(start, end, page, box)]`` → the ``lines`` column (compact JSON)."""
    return json.dumps(
        [[s, e, p, *[round(float(c), 1) for pt in box for c in pt]] for s, e, p, box in spans],
        separators=(",", ":"),
    )


def decode_lines(raw: str | None) -> list[tuple[int, int, int, tuple[tuple[float, float], ...]]]:
    """The ``lines`` column back as ``[(start, end, page, box)]``; garbage reads as none."""
    try:
        data = json.loads(raw or "[]")
    except ValueError:
        return []
    out = []
    if not isinstance(data, list):
        return []
    for item in data:
        if not isinstance(item, list) or len(item) != 11 or not all(isinstance(v, (int, float)) for v in item):
            continue
        s, e, p, *coords = item
        box = tuple((float(coords[i]), float(coords[i + 1])) for i in range(0, 8, 2))
        out.append((int(s), int(e), int(p), box))
    return out


# ------------------------------------------------------------------ schemas and tables
def _rows_schema(dim: int, model_id: str) -> Any:
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
            pa.field("page", pa.int32()),
            pa.field("lines", pa.string()),
            pa.field("chunk_hash", pa.string()),
            pa.field("vector", pa.list_(pa.float32(), dim)),
        ],
        metadata={"model_id": model_id, "dim": str(dim), SCHEMA_KEY: str(SCHEMA_VERSION)},
    )


def _state_schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("fid", pa.string(), nullable=False),
            pa.field("file_hash", pa.string()),
            pa.field("state", pa.string()),
            pa.field("n_lines", pa.int32()),
            pa.field("reason", pa.string()),
            pa.field("at", pa.float64()),
        ],
        metadata={SCHEMA_KEY: str(SCHEMA_VERSION)},
    )


def table_name(store: Store, model_id: str | None = None) -> str | None:
    model = store._text_model(model_id)
    return PREFIX + table_slug(*model) if model else None


def rows_table(store: Store, create: bool = False, *, model_id: str | None = None) -> Any | None:
    """The recognised passages of one text model (default: the store's)."""
    model = store._text_model(model_id)
    if model is None:
        return None
    return store._table(PREFIX + table_slug(*model), _rows_schema(model[1], model[0]), create)


def state_table(store: Store, create: bool = False) -> Any | None:
    return store._table(STATE_TABLE, _state_schema(), create)


def tables(store: Store) -> list[Any]:
    """Every recognised-text table that exists (for deletes, orphans, compaction)."""
    out = [t for t in (rows_table(store, model_id=m) for m in store.text_models) if t is not None]
    state = state_table(store)
    return [*out, *([state] if state is not None else [])]


def keep_names(store: Store) -> set[str]:
    """Table names of the configured text models (others are dropped with their model)."""
    return {n for n in (table_name(store, m) for m in store.text_models) if n} | {STATE_TABLE}


# ------------------------------------------------------------------ reads
def states(store: Store) -> dict[str, OcrState]:
    """The stage's state of every file it finished, by fid."""
    table = state_table(store)
    if table is None:
        return {}
    arrow = table.to_arrow()
    cols = {n: arrow.column(n).to_pylist() for n in arrow.column_names}
    out: dict[str, OcrState] = {}
    for i in range(arrow.num_rows):
        out[cols["fid"][i]] = OcrState(
            fid=cols["fid"][i], file_hash=cols["file_hash"][i] or "", state=cols["state"][i] or "",
            n_lines=cols["n_lines"][i] or 0, reason=cols["reason"][i] or "", at=cols["at"][i] or 0.0,
        )
    return out


def rows_of(store: Store, hashes: dict[str, str], *, model_id: str | None = None) -> dict[str, list[OcrRow]]:
    """The passages of these files (fid → the content hash wanted), in order; a file with a
    damaged vector is left out (and noted). For twins: a moved picture keeps its words."""
    table = rows_table(store, model_id=model_id)
    out: dict[str, list[OcrRow]] = {}
    if table is None or not hashes:
        return out
    for part in _batches(list(hashes), 500):
        arrow = table.search().where(f"fid IN ({_hex_list(part)})").limit(None).to_arrow()
        vectors = _vectors(arrow)
        sane = sane_rows(vectors) if arrow.num_rows else np.zeros(0, bool)
        names = ("fid", "file_hash", "ord", "text", "start", "end", "page", "lines", "chunk_hash")
        cols = [arrow.column(c).to_pylist() for c in names]
        found: dict[str, dict[int, OcrRow]] = {}
        damaged: set[str] = set()
        for i, (fid, fh, o, t, s, e, p, lines, h) in enumerate(zip(*cols)):
            if fh != hashes[fid]:
                continue
            if not sane[i]:
                damaged.add(fid)
            found.setdefault(fid, {}).setdefault(o, OcrRow(o, t, s, e, p, lines, h, vectors[i]))
        if damaged:
            store.note_damaged(sorted(damaged), f"damaged vectors in {table.name}")
        for fid, by_ord in found.items():
            if fid not in damaged:
                out[fid] = [by_ord[o] for o in sorted(by_ord)]
    return out


def counts(store: Store) -> dict[str, int]:
    """Recognised passages, and files by state, of the stage (for `lodestar status`)."""
    table = rows_table(store)
    by_state: dict[str, int] = {}
    for st in states(store).values():
        by_state[st.state] = by_state.get(st.state, 0) + 1
    return {"passages": table.count_rows() if table is not None else 0, **by_state}


# ------------------------------------------------------------------ writes
def write(store: Store, items: Sequence[OcrWrite], *, model_id: str | None = None) -> None:
    """Writer only: commit what the stage learnt of some files (passages, then states,
    then each file's older passages)."""
    if not items:
        return
    import pyarrow as pa

    batch_id = time.time_ns()
    model = store._text_model(model_id)
    with store._write_lock:
        rows = [(it.state, r) for it in items for r in it.rows]
        if rows:
            assert model is not None, "recognised passages written to a store without a text model"
            table = rows_table(store, create=True, model_id=model_id)
            assert table is not None
            flat = np.ascontiguousarray(np.stack([r.vector for _s, r in rows]).astype(np.float32)).reshape(-1)
            table.add(pa.table(
                {
                    "fid": [s.fid for s, _r in rows],
                    "file_hash": [s.file_hash for s, _r in rows],
                    "batch": pa.array([batch_id] * len(rows), pa.int64()),
                    "ord": pa.array([r.ord for _s, r in rows], pa.int32()),
                    "text": [r.text for _s, r in rows],
                    "start": pa.array([r.start for _s, r in rows], pa.int32()),
                    "end": pa.array([r.end for _s, r in rows], pa.int32()),
                    "page": pa.array([r.page for _s, r in rows], pa.int32()),
                    "lines": [r.lines for _s, r in rows],
                    "chunk_hash": [r.chunk_hash for _s, r in rows],
                    "vector": pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), model[1]),
                },
                schema=table.schema,
            ))
        unique = {it.state.fid: it.state for it in items}
        st = list(unique.values())
        state = state_table(store, create=True)
        assert state is not None
        (
            state.merge_insert("fid").when_matched_update_all().when_not_matched_insert_all().execute(pa.table(
                {
                    "fid": [s.fid for s in st],
                    "file_hash": [s.file_hash for s in st],
                    "state": [s.state for s in st],
                    "n_lines": pa.array([s.n_lines for s in st], pa.int32()),
                    "reason": [s.reason for s in st],
                    "at": pa.array([s.at or time.time() for s in st], pa.float64()),
                },
                schema=state.schema,
            ))
        )
        for table in (rows_table(store, model_id=m) for m in store.text_models):
            if table is not None:
                for part in _batches(list(unique), 500):
                    table.delete(f"fid IN ({_hex_list(part)}) AND batch != {int(batch_id)}")


def forget(store: Store, fids: Sequence[str]) -> None:
    """Writer only: drop the passages and states of these files (read again when due)."""
    if not fids:
        return
    with store._write_lock:
        for table in tables(store):
            for part in _batches(list(dict.fromkeys(fids)), 500):
                table.delete(f"fid IN ({_hex_list(part)})")


def forget_all(store: Store) -> int:
    """Writer only: drop every recognised passage and state (the setting turned off and
    the person asked for the words to go). Returns how many files had a state."""
    n = len(states(store))
    with store._write_lock:
        for name in store.table_names():
            if name == STATE_TABLE or name.startswith(PREFIX):
                store._db.drop_table(name)
                store._tables.pop(name, None)
    return n
