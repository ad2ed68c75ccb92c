"""The store's read layer (indexer/store/read.py): live rows, cache reloads, vectors by file, batches."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from indexer.store import read
from indexer.store.read import EveryFile, StoreReader, is_live, live_hash
from indexer.store.tables import ChunkRow, FileRecord, ImageRow, Store, WriteBatch, file_id

DIM = 8


def _unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def _text(path: str, seed: int, chunks: int = 2, **kw: object) -> tuple[FileRecord, list[ChunkRow]]:
    rec = FileRecord(fid=file_id(path), path=path, root="/r", kind="text", size=10, mtime_ns=1,
                     content_hash=f"{seed + 1:032x}", state="indexed", text_model="t", n_chunks=chunks)
    rec = dataclasses.replace(rec, **kw)
    rows = [ChunkRow(ord=i, text=f"{path} part {i}", start=i * 10, end=i * 10 + 9, chunk_hash=f"{seed}-{i}",
                     vector=_unit(seed * 100 + i)) for i in range(chunks)]
    return rec, rows


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "store", text_model=("t", DIM), image_model=("i", DIM))
    yield s
    s.close()


def _write_texts(store: Store, items: list[tuple[FileRecord, list[ChunkRow]]]) -> None:
    store.write(WriteBatch(files=[r for r, _ in items], chunks={r.fid: rows for r, rows in items}))


def test_the_live_rule() -> None:
    rec, _ = _text("/r/a.txt", 1)
    assert is_live(rec, rec.content_hash) and live_hash(rec) == rec.content_hash
    assert not is_live(rec, "0" * 32)  # a row of older content
    assert not is_live(None, rec.content_hash)  # a row whose file is gone
    for changed in ({"state": "pending"}, {"state": "failed"}, {"available": False}):
        other = dataclasses.replace(rec, **changed)
        assert not is_live(other, rec.content_hash) and live_hash(other) is None, changed


def test_nearest_chunks_show_live_rows_only(store: Store) -> None:
    a, b = _text("/r/a.txt", 1), _text("/r/b.txt", 2)
    _write_texts(store, [a, b])
    reader = StoreReader(store)
    query = a[1][0].vector
    got = reader.nearest_chunks(query, store.files(), EveryFile(), 10)
    assert {r["fid"] for r in got} == {a[0].fid, b[0].fid}
    assert got[0]["fid"] == a[0].fid and got[0]["ord"] == 0 and got[0]["sim"] == pytest.approx(1.0, abs=1e-5)
    # The same snapshot with a's record pending (as a crash between commits leaves it): hidden.
    files = dict(store.files())
    files[a[0].fid] = dataclasses.replace(files[a[0].fid], state="pending")
    assert {r["fid"] for r in reader.nearest_chunks(query, files, EveryFile(), 10)} == {b[0].fid}


def test_the_cache_reloads_when_the_table_version_changes(store: Store) -> None:
    a = _text("/r/a.txt", 1)
    _write_texts(store, [a])
    reader = StoreReader(store)
    query = _unit(999)
    assert {r["fid"] for r in reader.nearest_chunks(query, store.files(), EveryFile(), 10)} == {a[0].fid}
    version = store.chunks_table().version
    c = _text("/r/c.txt", 3)
    _write_texts(store, [c])
    assert store.chunks_table().version != version
    got = reader.nearest_chunks(c[1][1].vector, store.files(), EveryFile(), 10)
    assert got[0]["fid"] == c[0].fid and got[0]["ord"] == 1  # the new rows are seen, no stale cache
    # New content for a: its old rows are gone, the new ones ranked.
    a2 = _text("/r/a.txt", 7)
    _write_texts(store, [a2])
    got = reader.nearest_chunks(a2[1][0].vector, store.files(), EveryFile(), 10)
    assert got[0]["fid"] == a[0].fid and got[0]["sim"] == pytest.approx(1.0, abs=1e-5)
    assert all(r["file_hash"] == a2[0].content_hash for r in got if r["fid"] == a[0].fid)


@pytest.mark.parametrize("lane", ["memory", "lancedb"])
def test_vectors_of_a_set_of_files(store: Store, lane: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if lane == "lancedb":
        monkeypatch.setattr(read, "EXACT_MAX_ROWS", 0)
    a, b, c = _text("/r/a.txt", 1, chunks=3), _text("/r/b.txt", 2), _text("/r/c.txt", 3)
    _write_texts(store, [a, b, c])
    reader = StoreReader(store)
    files = store.files()
    reader.nearest_chunks(_unit(5), files, EveryFile(), 3)  # loads the in-memory cache on the memory lane
    got = reader.vectors_of({a[0].fid, b[0].fid, file_id("/r/unknown.txt")}, files)
    assert set(got) == {a[0].fid, b[0].fid}
    np.testing.assert_allclose(got[a[0].fid], np.stack([r.vector for r in a[1]]), atol=1e-6)  # in passage order
    assert got[b[0].fid].shape == (2, DIM)
    files = dict(files)
    files[b[0].fid] = dataclasses.replace(files[b[0].fid], available=False)
    assert set(reader.vectors_of([a[0].fid, b[0].fid], files)) == {a[0].fid}
    img = FileRecord(fid=file_id("/r/p.png"), path="/r/p.png", root="/r", kind="image", size=5, mtime_ns=1,
                     content_hash="f" * 32, state="indexed", image_model="i")
    store.write(WriteBatch(files=[img], images={img.fid: ImageRow(width=2, height=3, thumb="", vector=_unit(42))}))
    got = reader.vectors_of([img.fid], store.files(), "images")
    np.testing.assert_allclose(got[img.fid], _unit(42)[None, :], atol=1e-6)


def test_iterate_all_vectors_in_batches(store: Store) -> None:
    items = [_text(f"/r/f{i}.txt", i, chunks=3) for i in range(10)]
    _write_texts(store, items)
    gone = items[4][0]
    store.write(WriteBatch(files=[dataclasses.replace(gone, state="failed", reason="unreadable")]))
    reader = StoreReader(store)
    batches = list(reader.iter_vectors("chunks", batch_rows=4))
    assert batches and all(len(b.fids) <= 4 for b in batches)
    assert all(b.vectors.shape == (len(b.fids), DIM) and len(b.file_hashes) == len(b.fids) for b in batches)
    seen = [f for b in batches for f in b.fids]
    assert len(seen) == 27 and gone.fid not in seen  # every live row once; the failed file's rows never
    norms = np.linalg.norm(np.concatenate([b.vectors for b in batches]), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)
    assert list(reader.iter_vectors("images")) == []  # no image table yet


def test_prefilter_narrows_to_allowed_files(store: Store) -> None:
    a, b = _text("/r/a.txt", 1), _text("/r/b.txt", 2)
    _write_texts(store, [a, b])
    reader = StoreReader(store)

    class OnlyA(EveryFile):
        active = True
        narrows = True

        def key(self) -> tuple[str]:
            return ("only-a",)

        def accepts(self, rec: FileRecord) -> bool:
            return rec.path.endswith("a.txt")

    files = store.files()
    assert reader.prefilter(EveryFile(), files) == ""
    assert reader.prefilter(OnlyA(), files) == f"fid IN ('{a[0].fid}')"
    assert {r["fid"] for r in reader.nearest_chunks(b[1][0].vector, files, OnlyA(), 10)} == {a[0].fid}


def test_a_missing_table_is_not_listed_again_on_every_search(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = Store(tmp_path / "store", text_model=("t", DIM), image_model=("i", DIM))
    reader = Store(tmp_path / "store", text_model=("t", DIM), image_model=("i", DIM))
    listed = []
    real = reader._db.list_tables
    monkeypatch.setattr(reader._db, "list_tables", lambda *a, **k: listed.append(1) or real(*a, **k))
    reader.files()  # a search reads the files first
    for _ in range(20):  # and asks for the words table on every query
        assert reader.images_table() is None
    assert len(listed) == 1
    # Another connection creates the table: no file needs it until the files change...
    writer.images_table(create=True)
    assert reader.images_table() is None
    # ...and once they have, the next search finds it.
    _write_texts(writer, [_text("/a.txt", 1)])
    reader.files()
    assert reader.images_table() is not None
    writer.close()
    reader.close()


def test_keyword_matches_read_the_index_alone_while_many_rows_wait_outside_it(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past FTS_FLAT_MAX_ROWS waiting rows (a followed folder: 117k) LanceDB's scan of them
    costs seconds per query; the reader then asks the index alone until the upkeep."""
    from indexer.store.fts import ensure_fts_index

    monkeypatch.setattr(read, "FTS_FLAT_MAX_ROWS", 3)
    _write_texts(store, [_text("/r/indexed.txt", 1)])
    assert ensure_fts_index(store.chunks_table())
    reader = StoreReader(store)

    def found() -> set[str]:
        files = store.files()
        hits = reader.keyword_hits("part", files, EveryFile(), 10)
        assert hits is not None
        return {files[f].path for f in hits.column("fid").to_pylist()}

    _write_texts(store, [_text("/r/one.txt", 2)])  # 2 rows waiting: still read
    assert found() == {"/r/indexed.txt", "/r/one.txt"}
    _write_texts(store, [_text("/r/two.txt", 3)])  # 4 waiting: the index alone
    assert found() == {"/r/indexed.txt"}
    store.optimize()  # the writer's upkeep folds them in
    assert found() == {"/r/indexed.txt", "/r/one.txt", "/r/two.txt"}
