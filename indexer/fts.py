"""Keyword (full-text) index over chunk text: LanceDB's native inverted index.

Measured on LanceDB 0.40 (see docs/SEARCH.md): a native FTS query also scans
rows added since the index was built (and skips deleted ones), so results are
always current; the index only makes them fast. ``Store.optimize`` folds new
rows into the index. File names are matched in memory instead (`NameIndex` in
indexer/search.py): there are far fewer of them and they change with every
commit of the files table.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

FTS_COLUMN = "text"


def has_fts_index(table: Any, column: str = FTS_COLUMN) -> bool:
    try:
        return any(ix.index_type == "FTS" and column in ix.columns for ix in table.list_indices())
    except Exception as exc:  # noqa: BLE001 - a table being rewritten by the writer; treat as missing
        log.debug("cannot list indices: %s", exc)
        return False


def ensure_fts_index(table: Any | None, column: str = FTS_COLUMN) -> bool:
    """Create the keyword index when it is missing. Returns True when one was built.

    English stemming and stop words match how people type queries; identifiers
    such as ERR_QUUX_4711 are split on ``_`` by the simple tokenizer, so every
    part is searchable and the whole token still ranks highest.
    """
    if table is None or has_fts_index(table, column):
        return False
    from lancedb.index import FTS

    if table.count_rows() == 0:
        return False
    table.create_index(column, config=FTS(with_position=False), replace=True)
    log.info("built keyword index on %s.%s", getattr(table, "name", "?"), column)
    return True
