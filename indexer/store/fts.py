"""Keyword (full-text) index over chunk text: LanceDB's native inverted index.

Measured on LanceDB 0.40 (see docs/SEARCH.md): a native FTS query also scans
rows added since the index was built (and skips deleted ones), so results are
always current; the index only makes them fast. ``Store.optimize`` folds new rows
into the index. The scan tokenises every waiting row for each query, so past
`FTS_FLAT_MAX_ROWS` waiting rows (a big addition) the reader asks the index alone
until the next upkeep. File names are matched in memory instead (`NameIndex` in
indexer/search/ranking.py): there are far fewer of them and they change with every
commit of the files table.
"""

from __future__ import annotations

import logging
import os
from typing import Any

log = logging.getLogger(__name__)

FTS_COLUMN = "text"
FTS_FLAT_MAX_ROWS = 5_000
"""Rows outside the keyword index up to which a keyword query still reads them too (flat:
about 25 µs a row on 2 cores, so ≈ 0.12 s here); past it, the index alone (`StoreReader`)."""


def describe_indices(table: Any) -> list[Any]:
    """The table's indexes as lance describes them (name, index_type, field_names, segments).

    Not LanceDB's ``list_indices``: that one reads each keyword index's configuration and
    logs a Rust warning every time it is missing (issue 11.13); this reads the manifest only.
    """
    try:
        return list(table.to_lance().describe_indices())
    except Exception as exc:  # noqa: BLE001 - a table being rewritten by the writer; treat as none
        log.debug("cannot list indices: %s", exc)
        return []


def is_fts(index: Any) -> bool:
    return str(getattr(index, "index_type", "")).lower() in ("inverted", "fts")


def index_files_problem(table: Any, index: Any) -> str | None:
    """Why an index listed in the table's manifest cannot be used (its folder gone or
    empty), or None. Cheap: one directory listing per segment, no index is opened."""
    uri = str(getattr(table, "uri", "") or "")
    if not uri or "://" in uri:
        return None  # not a local table: nothing to look at
    for segment in getattr(index, "segments", None) or []:
        folder = os.path.join(uri, "_indices", str(segment.uuid))
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return "its files are missing"
        except OSError as exc:
            return f"its files cannot be read ({exc.strerror or exc})"
        if not names:
            return "its files are missing"
    return None


def fts_problem(table: Any | None, column: str = FTS_COLUMN, *, open_it: bool = False) -> str | None:
    """Why the keyword index that the manifest lists cannot be used; None when it is
    usable or simply not built yet (issue 11.13). ``open_it`` also runs a tiny query,
    which reads the index itself (the writer's check)."""
    if table is None:
        return None
    listed = [ix for ix in describe_indices(table) if is_fts(ix) and column in ix.field_names]
    for ix in listed:
        why = index_files_problem(table, ix)
        if why:
            return why
    if listed and open_it:
        try:
            table.search("lodestarprobe", query_type="fts").select([column, "_score"]).limit(1).to_arrow()
        except Exception as exc:  # noqa: BLE001 - lance reports a damaged index as RuntimeError/OSError alike
            return f"it cannot be opened ({_short(exc)})"
    return None


def has_fts_index(table: Any, column: str = FTS_COLUMN) -> bool:
    return any(is_fts(ix) and column in ix.field_names for ix in describe_indices(table))


def ensure_fts_index(table: Any | None, column: str = FTS_COLUMN) -> bool:
    """Create the keyword index when it is missing. Returns True when one was built.

    English stemming and stop words match how people type queries; identifiers
    such as ERR_QUUX_4711 are split on ``_`` by the simple tokenizer, so every
    part is searchable and the whole token still ranks highest.
    """
    if table is None:
        return False
    broken = fts_problem(table, column, open_it=True)
    if has_fts_index(table, column) and not broken:
        return False
    from lancedb.index import FTS

    if table.count_rows() == 0:
        return False
    if broken:
        log.warning("keyword index of %s is unusable (%s); rebuilding it", getattr(table, "name", "?"), broken)
    table.create_index(column, config=FTS(with_position=False), replace=True)
    log.info("built keyword index on %s.%s", getattr(table, "name", "?"), column)
    return True


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
