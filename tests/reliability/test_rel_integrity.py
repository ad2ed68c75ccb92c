"""Damage inside readable files (issue 11, items 6 and 13).

Bytes overwritten inside a data file, or NaN/huge vectors, are never ranked, are
reported, and a re-index re-embeds the files concerned. A deleted keyword or ANN
index folder is reported, searches go on quietly without it, and the writer
rebuilds it.
"""

from __future__ import annotations

import glob
import io
import logging
import os
import random
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from indexer.store.health import check_and_heal, last_report, verify_vectors
from indexer.store.tables import WriteBatch
from tests.support.rel_checks import committed_intact
from tests.support.rel_stack import Stack, make_stack

N_FILES = 120
EPS = 1e-4


@pytest.fixture
def one_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    """One commit per run however slow the machine: the seeded damage lands on the same bytes."""
    from indexer.ingest import pipeline

    monkeypatch.setattr(pipeline, "COMMIT_INTERVAL_S", 1e9)


def _fill(s: Stack, n: int = N_FILES) -> None:
    for i in range(n):
        words = " ".join(f"zq{i}x topic{i} clause{j}" for j in range(40))
        (s.root / f"note{i}.txt").write_text(words, encoding="utf-8")
    s.service.index_roots([str(s.root)])


def _reopen(s: Stack) -> Stack:
    s.store.close()
    return make_stack(s.root.parent, data_dir=s.paths.data_dir)


def _table_dir(s: Stack, name: str | None) -> Path:
    assert name
    return s.paths.store / f"{name}.lance"


def _overwrite_middle_of_largest_chunks_file(s: Stack) -> None:
    """Random bytes over a 4 KB stretch near the middle of the largest chunks data file.

    Where the vectors sit in the file depends on how Lance laid out its pages, so the
    stretch walks outwards from the middle until one lands on vectors only (every
    file still reads): the damage the issue describes, on any machine.
    """
    files = glob.glob(str(_table_dir(s, s.store.chunks_table_name()) / "data" / "*.lance"))
    big = Path(max(files, key=os.path.getsize))
    original = big.read_bytes()
    rng = random.Random(1)
    for step in range(60):
        offset = len(original) // 2 + (step + 1) // 2 * 4096 * (1 if step % 2 else -1)
        if not 0 <= offset <= len(original) - 4096:
            continue
        with open(big, "r+b") as fh:
            fh.seek(offset)
            fh.write(rng.randbytes(4096))
        found = verify_vectors(s.paths.store)
        if found.damaged and not found.unreadable:
            return
        big.write_bytes(original)
    pytest.fail("no 4 KB stretch near the middle of the chunks file held only vectors")


@contextmanager
def _no_numpy_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy "invalid value"/"overflow" would raise here
        yield


def _fid(s: Stack, name: str) -> str:
    rec = s.store.get_file(str(s.root / name))
    assert rec is not None
    return rec.fid


def _damaged_rows(s: Stack) -> set[tuple[str, int]]:
    """(fid, passage start) of every chunk row whose vector is not finite and unit length."""
    import lance

    from indexer.store.tables import sane_rows

    arrow = lance.dataset(str(_table_dir(s, s.store.chunks_table_name()))).to_table(columns=["fid", "start", "vector"])
    vecs = np.asarray(arrow.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False), np.float32)
    ok = sane_rows(vecs.reshape(arrow.num_rows, -1))
    return {(f, st) for f, st, good in zip(arrow.column("fid").to_pylist(), arrow.column("start").to_pylist(), ok) if not good}


def _assert_sane_search(searcher: Any, query: str, damaged: set[str], rows: set[tuple[str, int]] = frozenset(), **kw: Any) -> Any:
    """No damaged file or row is ranked; every vector similarity is a cosine, every score bounded."""
    rk = searcher.ranking
    resp = searcher.search(query, **kw)
    bound = 1.0 + max(rk.identifier_weight, rk.keyword_weight, rk.short_query_weight) + EPS
    for r in resp.results:
        fid = searcher.store.get_file(r.path).fid
        assert np.isfinite(r.score) and r.score <= bound, (query, r.path, r.score)
        assert (fid, r.passage_start) not in rows, (query, r.path, r.score)
        if fid in damaged:  # only its name or title may still match, never a passage
            assert not r.passage and r.score <= rk.name_only_score + EPS, (query, r.path, r.score, r.passage)
    qvec = np.asarray(searcher.text_embedder.embed_query(query), np.float32)
    from indexer.search.filters import FileFilter

    for c in searcher._vector_candidates(qvec / np.linalg.norm(qvec), searcher.store.files(), FileFilter(), 50):
        assert -1.0 - EPS <= c.sim <= 1.0 + EPS, (query, c.fid, c.sim)
        assert c.fid not in damaged and (c.fid, c.start) not in rows, (query, c.fid, c.sim)
    return resp


def _status_line(s: Stack) -> str:
    from indexer.cli import status
    from indexer.library.runtime import Runtime
    from tests.support.fakes import HashImageEmbedder, HashTextEmbedder

    rt = Runtime(s.paths, s.settings)
    rt._text, rt._image = HashTextEmbedder(), HashImageEmbedder()
    try:
        return str(status.collect(rt)["index_health"])
    finally:
        rt.close()


# ------------------------------------------------------------------ item 6


def test_overwritten_vector_bytes_are_never_ranked_reported_and_repaired(stack: Stack, one_commit: None) -> None:
    _fill(stack)
    stack.store.close()
    _overwrite_middle_of_largest_chunks_file(stack)
    found = verify_vectors(stack.paths.store)
    assert found.damaged and not found.unreadable, found  # the bytes landed on vectors (seeded)
    damaged = set(found.damaged)
    # Every data file still reads, so the start-up probe cannot tell (the bug: "healthy").
    assert check_and_heal(stack.paths).ok
    s = make_stack(stack.root.parent, data_dir=stack.paths.data_dir)
    rows = _damaged_rows(s)
    assert {f for f, _ in rows} == damaged
    searcher = s.searcher()
    with _no_numpy_warnings():
        for i in range(N_FILES):
            _assert_sane_search(searcher, f"zq{i}x topic{i}", set(), rows)
    # Each damaged file met by a search is remembered for the writer, and status says so.
    noted = set(s.store.damaged_noted())
    assert noted and noted <= damaged
    report = check_and_heal(s.paths)
    assert not report.ok and report.damaged_files == len(noted)
    assert "Damaged vectors" in report.message and "re-indexed" in report.message
    assert "Damaged vectors" in _status_line(s)
    # A re-index re-embeds them (it used to call them "unchanged").
    summary = s.service.index_roots([str(s.root)])
    assert summary.updated >= len(noted), summary
    assert not verify_vectors(s.paths.store).damaged
    committed_intact(s.store)
    with _no_numpy_warnings():
        for i in range(N_FILES):
            resp = _assert_sane_search(searcher, f"zq{i}x topic{i}", set())
            assert resp.results and resp.results[0].path.endswith(f"note{i}.txt"), (i, resp.results[:2])
    assert not s.store.damaged_noted()
    assert check_and_heal(s.paths).ok
    s.store.close()


def test_deep_check_at_the_first_reindex_repairs_without_any_search(stack: Stack, one_commit: None) -> None:
    _fill(stack)
    stack.store.close()
    _overwrite_middle_of_largest_chunks_file(stack)
    damaged = set(verify_vectors(stack.paths.store).damaged)
    assert damaged
    s = make_stack(stack.root.parent, data_dir=stack.paths.data_dir)
    summary = s.service.index_roots([str(s.root)])
    assert summary.updated >= len(damaged) and summary.unchanged == N_FILES - summary.updated, summary
    last = last_report(s.paths)
    assert last and "Damaged vectors" in last["message"] and "queued for re-indexing" in last["message"]
    assert not verify_vectors(s.paths.store).damaged
    committed_intact(s.store)
    s.store.close()


def _photo(color: tuple[int, int, int]) -> bytes:
    from PIL import Image

    img = Image.new("RGB", (64, 48), color)
    for x in range(0, 64, 8):
        img.putpixel((x, x % 48), (255 - color[0], 10, 200))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _damage_rows(s: Stack, name: str, value: float) -> str:
    """Rewrite one file's committed vectors: 1e30 times through the store API; NaN (which
    LanceDB refuses to write) straight through lance, as damage on disk would leave them."""
    import lance
    import pyarrow as pa

    rec = s.store.get_file(str(s.root / name))
    assert rec is not None and rec.state == "indexed"
    if not np.isnan(value):
        rows = s.store.chunk_rows(rec.fid, rec.content_hash)
        assert rows
        for r in rows:
            r.vector = r.vector * np.float32(value)
        s.store.write(WriteBatch(files=[rec], chunks={rec.fid: rows}))
        return rec.fid
    table = s.store.images_table() if rec.kind == "image" else s.store.chunks_table()
    uri = str(_table_dir(s, table.name))
    ds = lance.dataset(uri)
    old = ds.to_table(filter=f"fid = '{rec.fid}'")
    assert old.num_rows
    dim = table.schema.field("vector").type.list_size
    nan = pa.FixedSizeListArray.from_arrays(pa.array(np.full(old.num_rows * dim, np.nan, np.float32)), dim)
    new = old.set_column(old.schema.get_field_index("vector"), old.schema.field("vector"), nan)
    ds.delete(f"fid = '{rec.fid}'")
    lance.write_dataset(new, uri, mode="append")
    s.store.refresh()
    return rec.fid


@pytest.mark.parametrize("lane", ["exact", "flat-scan", "ann"])
def test_nan_and_huge_vectors_written_through_the_store_are_never_ranked(
    stack: Stack, lane: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from indexer.store import ann, read

    s = stack
    for i in range(40):
        (s.root / f"doc{i}.txt").write_text(f"ERR_QUUX_{i} shared words about storage {i}", encoding="utf-8")
    (s.root / "red.png").write_bytes(_photo((200, 30, 30)))
    (s.root / "red2.png").write_bytes(_photo((201, 31, 30)))
    s.service.index_roots([str(s.root)])
    bad = {_damage_rows(s, "doc3.txt", np.nan), _damage_rows(s, "doc4.txt", 1e30), _damage_rows(s, "red2.png", np.nan)}
    if lane == "flat-scan":
        monkeypatch.setattr(read, "EXACT_MAX_ROWS", 0)  # past the in-memory size, without an index
    elif lane == "ann":
        monkeypatch.setattr(ann, "PARTITION_ROWS", 20)
        for table in (s.store.chunks_table(), s.store.images_table()):
            if table.count_rows() >= 10:
                assert ann.ensure_vector_index(table, min_rows=1)
    searcher = s.searcher()
    with _no_numpy_warnings():
        for q in ["ERR_QUUX_3", "ERR_QUUX_4 storage", "shared words about storage", "ERR_QUUX_5"]:
            _assert_sane_search(searcher, q, bad)  # also the keyword lane: BM25 finds doc3's passage
        assert "damaged" in searcher.similar_to(str(s.root / "doc3.txt")).message
        for resp in (searcher.similar_to(str(s.root / "doc5.txt")), searcher.similar_to(str(s.root / "red.png")),
                     searcher.similar_image(s.root / "red.png"), searcher.search("crimson picture", kind="image")):
            assert all(np.isfinite(r.score) and r.score <= 1 + EPS for r in resp.results)
            assert not {s.store.get_file(r.path).fid for r in resp.results} & bad, resp.results
    noted = set(s.store.damaged_noted())
    # What a search met is noted (a flat scan may never fetch a NaN row: the deep check finds it).
    assert noted <= bad and {f for f in bad if s.store.files()[f].kind == "text"} <= noted
    s = _reopen(s)  # the writer's next start: it takes the notes, checks deeply, re-embeds the three
    summary = s.service.index_roots([str(s.root)])
    assert summary.updated == 3, summary
    assert not verify_vectors(s.paths.store).damaged
    searcher = s.searcher()
    with _no_numpy_warnings():
        assert searcher.search("ERR_QUUX_3").results[0].path.endswith("doc3.txt")
        assert searcher.search("ERR_QUUX_4").results[0].path.endswith("doc4.txt")
        similar = searcher.similar_to(str(s.root / "red.png")).results
        assert similar and similar[0].path.endswith("red2.png")


def test_unreadable_data_file_found_while_running_is_dropped_and_reindexed(stack: Stack) -> None:
    _fill(stack, 30)
    s = stack
    # A second commit, so the damaged data file holds some files' rows, not all.
    for i in range(30, 40):
        (s.root / f"note{i}.txt").write_text(f"zq{i}x topic{i} clause", encoding="utf-8")
    s.service.index_roots([str(s.root)])
    data = sorted(glob.glob(str(_table_dir(s, s.store.chunks_table_name()) / "data" / "*.lance")), key=os.path.getmtime)
    assert len(data) >= 2
    Path(data[-1]).write_bytes(random.Random(3).randbytes(os.path.getsize(data[-1])))
    assert verify_vectors(s.paths.store).unreadable
    s.service._store_verified = False  # as at the next start of the writer
    s.service.index_roots([str(s.root)])
    found = verify_vectors(s.paths.store)
    assert not found.unreadable and not found.damaged, found
    committed_intact(s.store)
    assert sum(r.state == "indexed" for r in s.store.files().values()) == 40
    with _no_numpy_warnings():
        assert s.searcher().search("zq35x topic35").results[0].path.endswith("note35.txt")
    assert "re-index" in (last_report(s.paths) or {}).get("message", "")


# ----------------------------------------------------------------- item 13


def _index_folders(s: Stack, table_name: str | None, kind: str) -> list[Path]:
    import lance

    tdir = _table_dir(s, table_name)
    out = []
    for ix in lance.dataset(str(tdir)).describe_indices():
        if (str(ix.index_type).lower() in ("inverted", "fts")) == (kind == "fts"):
            out.extend(tdir / "_indices" / seg.uuid for seg in ix.segments)
    return out


def test_deleted_keyword_index_is_reported_searched_around_and_rebuilt(stack: Stack, caplog: Any, capfd: Any) -> None:
    from indexer.search.filters import FileFilter
    from indexer.store.fts import fts_problem

    s = stack
    for i in range(20):
        (s.root / f"doc{i}.txt").write_text(f"ERR_QUUX_{i} shared words about storage {i}", encoding="utf-8")
    s.service.index_roots([str(s.root)])
    folders = _index_folders(s, s.store.chunks_table_name(), "fts")
    assert folders and all(f.is_dir() for f in folders)
    for f in folders:
        shutil.rmtree(f)
    s = _reopen(s)
    report = check_and_heal(s.paths)
    assert not report.ok and "keyword index" in report.message and "rebuil" in report.message
    assert "keyword index" in _status_line(s)
    searcher = s.searcher()
    caplog.set_level(logging.DEBUG, logger="indexer")
    capfd.readouterr()
    for _ in range(3):
        resp = searcher.search("ERR_QUUX_7")  # meaning and names still work
        assert resp.results and resp.results[0].path.endswith("doc7.txt")
    assert "WARN" not in capfd.readouterr().err  # no Rust warning per query (LanceDB logs to stderr)
    assert searcher._keyword_rows(["err_quux_7"], s.store.files(), FileFilter(), 5) is None
    said = [r for r in caplog.records if r.name == "indexer.store.read" and "keyword index" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.WARNING, [r.getMessage() for r in caplog.records]  # once
    assert not [r for r in caplog.records if "keyword search unavailable" in r.getMessage()]
    # The writer rebuilds it at its next run (a watcher's sync is enough).
    s.service.sync_paths([])
    assert fts_problem(s.store.chunks_table(), open_it=True) is None
    assert _index_folders(s, s.store.chunks_table_name(), "fts")[0].is_dir()
    assert searcher._keyword_rows(["err_quux_7"], s.store.files(), FileFilter(), 5).num_rows
    assert "rebuilt" in (last_report(s.paths) or {}).get("message", "")
    assert check_and_heal(s.paths).ok
    s.store.close()


def _with_vector_index(s: Stack, monkeypatch: pytest.MonkeyPatch, texts: list[str], partition_rows: int) -> None:
    """One small file per text, indexed, and the passages' ANN index built (small partitions)."""
    from indexer.store import ann

    for i, text in enumerate(texts):
        (s.root / f"doc{i}.txt").write_text(text, encoding="utf-8")
    s.service.index_roots([str(s.root)])
    monkeypatch.setattr(ann, "PARTITION_ROWS", partition_rows)
    assert ann.ensure_vector_index(s.store.chunks_table(), min_rows=1)


def test_deleted_vector_index_is_reported_searched_around_and_rebuilt(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    from indexer.store import ann, read

    s = stack
    _with_vector_index(s, monkeypatch, [f"zq{i}x storage words {i}" for i in range(60)], partition_rows=30)
    for f in _index_folders(s, s.store.chunks_table_name(), "ann"):
        shutil.rmtree(f)
    s = _reopen(s)
    report = check_and_heal(s.paths)
    assert not report.ok and "vector index" in report.message
    monkeypatch.setattr(read, "EXACT_MAX_ROWS", 0)  # as a large table: LanceDB, not memory
    searcher = s.searcher()
    with _no_numpy_warnings():
        assert searcher.search("zq17x").results[0].path.endswith("doc17.txt")  # a flat scan meanwhile
    s.service.sync_paths([])
    assert ann.vector_index_problem(s.store.chunks_table(), open_it=True) is None
    assert ann.has_vector_index(s.store.chunks_table())
    searcher = s.searcher()
    assert searcher.search("zq17x").results[0].path.endswith("doc17.txt")
    assert check_and_heal(s.paths).ok
    s.store.close()


def test_searches_on_the_vector_index_write_nothing_to_stderr(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """LanceDB logs a deprecation warning on stderr for each vector query that leaves out
    its distance column: with the index built (50k+ passages), every `lodestar search`
    printed it to the person's terminal."""
    s = stack
    _with_vector_index(s, monkeypatch, [f"notes about storage and topic {i}" for i in range(40)], partition_rows=20)
    capfd.readouterr()
    resp = s.searcher().search("storage notes", kind="text")
    assert resp.results
    err = capfd.readouterr().err
    assert "Deprecation" not in err and "_distance" not in err, err[-2000:]
