"""Vector index upkeep: exact search while small, an ANN index past a threshold.

Below ``ANN_MIN_ROWS`` the searcher keeps the vectors in memory and ranks them
exactly (a matrix-vector product: a few ms). Past it, the writer builds an
IVF_HNSW_SQ index (`ensure_indexes`, called after a reconcile and on optimize):
a few large partitions, each an HNSW graph; queries probe them all and re-rank
the fetched rows by exact distance. Thresholds and
figures come from bench/bench_query.py (docs/SEARCH.md).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Any

from indexer.store.fts import describe_indices, ensure_fts_index, index_files_problem, is_fts

log = logging.getLogger(__name__)

ANN_MIN_ROWS = 50_000
"""Rows from which an ANN index is built (exact in-memory search is fast below)."""
EXACT_MAX_ROWS = 250_000
"""Largest table the searcher ranks exactly in memory when it has no ANN index yet."""
PARTITION_ROWS = 62_500
"""Rows per IVF partition. Few large partitions, each an HNSW graph, all probed: at 1M
real-geometry vectors 16 partitions probed in full gave recall@10 0.998 for ~30 ms,
where 122 partitions of 8k needed 61 probes for 0.97 at ~90 ms (bench/bench_query.py,
docs/SEARCH.md)."""
MAX_PARTITIONS = 32
HNSW_EF = 300
"""HNSW candidate list per partition; at least the rows fetched."""
INDEX_PREFIX = "vector_hnsw_v2_p"
"""Vector indexes are named for their recipe and partition count; others get rebuilt."""
LEGACY_PROBES = 16


@dataclasses.dataclass
class IndexReport:
    fts_built: list[str] = dataclasses.field(default_factory=list)
    ann_built: list[str] = dataclasses.field(default_factory=list)


def _vector_indexes(table: Any, column: str = "vector") -> list[Any]:
    return [ix for ix in describe_indices(table) if not is_fts(ix) and column in ix.field_names]


def has_vector_index(table: Any, column: str = "vector") -> bool:
    return bool(_vector_indexes(table, column))


def vector_index_problem(table: Any | None, column: str = "vector", *, open_it: bool = False) -> str | None:
    """Why the ANN index that the manifest lists cannot be used; None when it is usable
    or not built (issue 11.13). Searches then rank exactly (in memory, or a flat scan)
    until the writer rebuilds it. ``open_it`` also runs a tiny query through it."""
    if table is None:
        return None
    listed = _vector_indexes(table, column)
    for ix in listed:
        why = index_files_problem(table, ix)
        if why:
            return why
    if listed and open_it:
        try:
            dim = table.schema.field(column).type.list_size
            (
                table.search([0.0] * dim, vector_column_name=column)
                .distance_type("cosine")
                .nprobes(1)
                .select([column])
                .limit(1)
                .to_arrow()
            )
        except Exception as exc:  # noqa: BLE001 - lance reports a damaged index as RuntimeError/OSError alike
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return f"it cannot be opened ({text[:200]})"
    return None


def num_partitions(rows: int) -> int:
    return max(1, min(MAX_PARTITIONS, round(rows / PARTITION_ROWS)))


def index_partitions(table: Any) -> int | None:
    """Partitions of the table's vector index when it follows the current recipe."""
    for ix in _vector_indexes(table):
        m = re.fullmatch(re.escape(INDEX_PREFIX) + r"(\d+)", getattr(ix, "name", "") or "")
        if m:
            return int(m.group(1))
    return None


def nprobes_for(table: Any) -> int:
    """Probe every partition of a current-recipe index (each is an HNSW graph, so a
    probe costs ~ef distance computations, not a scan); an older index until the writer
    rebuilds it gets a fixed number."""
    return index_partitions(table) or LEGACY_PROBES


def ensure_vector_index(table: Any | None, *, min_rows: int = ANN_MIN_ROWS) -> bool:
    """Build (or rebuild) the ANN index when the table needs one. True when built.

    Rebuilt when it predates the current recipe, or when the table has grown to twice
    the partitions it was trained for (optimize folds new rows into the existing
    partitions; past that, partitions grow large and their centroids stale).
    """
    if table is None:
        return False
    rows = table.count_rows()
    existing = _vector_indexes(table)
    broken = vector_index_problem(table, open_it=True) if existing else None
    if existing and not broken:
        built = index_partitions(table)
        if built is not None and num_partitions(rows) < 2 * built:
            return False
    elif not broken and rows < min_rows:
        return False
    if broken:
        log.warning("vector index of %s is unusable (%s); rebuilding it", getattr(table, "name", "?"), broken)
    from lancedb.index import IvfHnswSq

    parts = num_partitions(rows)
    log.info("building a vector index on %s (%d rows, %d partitions)", getattr(table, "name", "?"), rows, parts)
    for ix in existing:  # an index of another recipe (or an unusable one): replaced, not kept beside
        if broken or ix.name != f"{INDEX_PREFIX}{parts}":
            try:
                table.drop_index(ix.name)
            except Exception as exc:  # noqa: BLE001 - searches fall back to a scan meanwhile
                log.warning("cannot drop old vector index %s: %s", ix.name, exc)
    table.create_index(
        "vector",
        config=IvfHnswSq(distance_type="cosine", num_partitions=parts),
        replace=True,
        name=f"{INDEX_PREFIX}{parts}",
    )
    return True


def ensure_indexes(store: Any, *, ann_min_rows: int = ANN_MIN_ROWS) -> IndexReport:
    """Keyword index on chunk text and, past the threshold, ANN indexes on both vector tables.

    Called by the writer only (IndexService after a run / optimize). New rows
    after that are folded in by ``Store.optimize``; until then searches still see
    them (LanceDB scans unindexed rows), only a little slower.
    """
    from indexer.store import recognised

    report = IndexReport()
    # Every text model's passages, and the text recognised in pictures and scans (issue 16).
    text_tables = [*store.chunk_tables(),
                   *(t for t in (recognised.rows_table(store, model_id=m) for m in store.text_models) if t is not None)]
    images = store.images_table()
    with store._write_lock:  # the store's writer lock: never race a commit
        for chunks in text_tables:
            if ensure_fts_index(chunks):
                report.fts_built.append(chunks.name)
        for table in (*text_tables, images):
            if ensure_vector_index(table, min_rows=ann_min_rows):
                report.ann_built.append(table.name)
    return report
