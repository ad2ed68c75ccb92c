"""ANN index upkeep (indexer/store/ann.py): the recipe, its rebuilds, and probing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from indexer.store import ann


def _table(tmp_path: Path, n: int, seed: int = 0) -> tuple[object, np.ndarray]:
    import lancedb

    v = np.random.default_rng(seed).standard_normal((n, 16)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    db = lancedb.connect(str(tmp_path / "db"))
    data = pa.table({"id": np.arange(n), "vector": pa.FixedSizeListArray.from_arrays(pa.array(v.ravel()), 16)})
    return db.create_table("t", data=data), v


def _names(table: object) -> list[str]:
    return [ix.name for ix in table.list_indices()]  # type: ignore[attr-defined]


def test_partitions_are_few_and_bounded() -> None:
    assert ann.num_partitions(50_000) == 1
    assert ann.num_partitions(1_000_000) == 16
    assert ann.num_partitions(10**9) == ann.MAX_PARTITIONS


def test_small_tables_get_no_index(tmp_path: Path) -> None:
    table, _ = _table(tmp_path, 500)
    assert not ann.ensure_vector_index(table, min_rows=1000)
    assert not ann.has_vector_index(table)


def test_index_is_named_for_its_partitions_and_probed_in_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ann, "PARTITION_ROWS", 1000)
    table, v = _table(tmp_path, 3000)
    assert ann.ensure_vector_index(table, min_rows=1)
    assert _names(table) == [f"{ann.INDEX_PREFIX}3"]
    assert ann.index_partitions(table) == 3 and ann.nprobes_for(table) == 3
    assert not ann.ensure_vector_index(table, min_rows=1)  # current: left alone
    hits = table.search(v[42]).distance_type("cosine").nprobes(ann.nprobes_for(table)).limit(1).to_arrow()
    assert hits.column("id").to_pylist() == [42]


def test_an_index_of_an_older_recipe_is_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lancedb.index import IvfHnswSq

    monkeypatch.setattr(ann, "PARTITION_ROWS", 1000)
    table, _ = _table(tmp_path, 3000)
    table.create_index("vector", config=IvfHnswSq(distance_type="cosine", num_partitions=4), replace=True)
    assert ann.index_partitions(table) is None and ann.nprobes_for(table) == ann.LEGACY_PROBES
    assert ann.ensure_vector_index(table, min_rows=1)
    assert _names(table) == [f"{ann.INDEX_PREFIX}3"]


def test_index_is_retrained_when_the_table_doubles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ann, "PARTITION_ROWS", 1000)
    table, v = _table(tmp_path, 2000)
    assert ann.ensure_vector_index(table, min_rows=1) and ann.index_partitions(table) == 2
    data = pa.table({"id": np.arange(2000, 3000), "vector": pa.FixedSizeListArray.from_arrays(pa.array(v[:1000].ravel()), 16)})
    table.add(data)  # 3 partitions' worth: not yet twice
    assert not ann.ensure_vector_index(table, min_rows=1)
    table.add(data)  # 4: retrain
    assert ann.ensure_vector_index(table, min_rows=1)
    assert _names(table) == [f"{ann.INDEX_PREFIX}4"]
