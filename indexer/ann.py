"""Vector index upkeep: exact search while small, an ANN index past a threshold.

Below ``ANN_MIN_ROWS`` the searcher keeps the vectors in memory and ranks them
exactly (a matrix-vector product: a few ms). Past it, the writer builds an
IVF_HNSW_SQ index (`ensure_indexes`, called after a reconcile and on optimize);
queries probe a few partitions and refine by exact distance. Thresholds and
figures come from bench/bench_query.py (docs/SEARCH.md).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

from indexer.fts import ensure_fts_index

log = logging.getLogger(__name__)

ANN_MIN_ROWS = 50_000
"""Rows from which an ANN index is built (exact in-memory search is fast below)."""
EXACT_MAX_ROWS = 250_000
"""Largest table the searcher ranks exactly in memory when it has no ANN index yet."""
NPROBES = 16
PARTITION_ROWS = 8192
REFINE_FACTOR = 4
HNSW_EF = 300
"""HNSW candidate list per partition; at least twice the rows fetched."""


@dataclasses.dataclass
class IndexReport:
    fts_built: list[str] = dataclasses.field(default_factory=list)
    ann_built: list[str] = dataclasses.field(default_factory=list)


def has_vector_index(table: Any, column: str = "vector") -> bool:
    try:
        return any(ix.index_type != "FTS" and column in ix.columns for ix in table.list_indices())
    except Exception as exc:  # noqa: BLE001 - a table being rewritten; treat as missing
        log.debug("cannot list indices: %s", exc)
        return False


def num_partitions(rows: int) -> int:
    """Large partitions (~8k rows): HNSW searches inside each one quickly, so probing a
    good share of them is cheap. Measured: sqrt(rows) partitions with 24 probes gave
    recall@10 0.33 at 100k clustered vectors (too few of 316 partitions probed)."""
    return max(4, min(4096, rows // PARTITION_ROWS))


PROBE_SHARE = 0.5
"""Share of partitions probed. A fixed count stops scaling: 16 of 125 partitions gave
recall@10 0.315 at 1M clustered vectors (bench/bench_query.py), 16 of 12 gave 0.98 at 100k."""


def nprobes_for(rows: int) -> int:
    """Probes for a table of ``rows``: at least NPROBES, else a fixed share of the partitions."""
    return max(NPROBES, math.ceil(num_partitions(rows) * PROBE_SHARE))


def ensure_vector_index(table: Any | None, *, min_rows: int = ANN_MIN_ROWS) -> bool:
    """Build an ANN index when the table has grown past ``min_rows``. True when built."""
    if table is None or has_vector_index(table):
        return False
    rows = table.count_rows()
    if rows < min_rows:
        return False
    from lancedb.index import IvfHnswSq

    log.info("building a vector index on %s (%d rows)", getattr(table, "name", "?"), rows)
    table.create_index("vector", config=IvfHnswSq(distance_type="cosine", num_partitions=num_partitions(rows)), replace=True)
    return True


def ensure_indexes(store: Any, *, ann_min_rows: int = ANN_MIN_ROWS) -> IndexReport:
    """Keyword index on chunk text and, past the threshold, ANN indexes on both vector tables.

    Called by the writer only (IndexService after a run / optimize). New rows
    after that are folded in by ``Store.optimize``; until then searches still see
    them (LanceDB scans unindexed rows), only a little slower.
    """
    report = IndexReport()
    chunks = store.chunks_table()
    images = store.images_table()
    with store._write_lock:  # the store's writer lock: never race a commit
        if ensure_fts_index(chunks):
            report.fts_built.append(chunks.name)
        for table in (chunks, images):
            if ensure_vector_index(table, min_rows=ann_min_rows):
                report.ann_built.append(table.name)
    return report
