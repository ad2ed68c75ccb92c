"""The schema version stored with the index (indexer/store/tables.py): newer refused, older upgraded."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.errors import StoreTooNew, user_message
from indexer.store.health import check_and_heal
from indexer.store.tables import SCHEMA_VERSION, Store, schema_version_of
from tests.support.rel_stack import Stack, make_stack


def _stamp(s: Stack, version: int) -> None:
    """Every table says it was written with ``version``, as that Lodestar would have left it."""
    import lance

    for tdir in s.paths.store.glob("*.lance"):
        ds = lance.dataset(str(tdir))
        meta = {k.decode(): v.decode() for k, v in (ds.schema.metadata or {}).items()}
        ds.update_schema_metadata({**meta, "lodestar_schema": str(version)}, replace=True)


def _versions(s: Stack) -> dict[str, int]:
    import lance

    return {tdir.name: lance.dataset(str(tdir)).version for tdir in s.paths.store.glob("*.lance")}


def _schemas(s: Stack) -> dict[str, int]:
    import lance

    return {tdir.name: schema_version_of(lance.dataset(str(tdir))) for tdir in s.paths.store.glob("*.lance")}


def _indexed(tmp_path: Path, n: int = 6) -> Stack:
    s = make_stack(tmp_path)
    for i in range(n):
        (s.root / f"note{i}.txt").write_text(f"zq{i}x the harbour crane schedule {i}", encoding="utf-8")
    assert s.service.index_roots([str(s.root)]).new == n
    s.store.close()
    return s


def test_an_index_written_by_a_newer_lodestar_is_refused_in_one_line_and_left_untouched(tmp_path: Path) -> None:
    s = _indexed(tmp_path)
    _stamp(s, SCHEMA_VERSION + 1)
    before = _versions(s)
    assert check_and_heal(s.paths).ok  # never "repaired" (rolled back or moved aside)
    with pytest.raises(StoreTooNew) as info:
        Store(s.paths.store, text_model=(s.text.model_id, s.text.dim), image_model=(s.image.model_id, s.image.dim))
    line = user_message(info.value)
    assert line and "\n" not in line and "newer Lodestar" in line and str(SCHEMA_VERSION + 1) in line
    assert _versions(s) == before
    assert sorted(p.name for p in s.paths.store.iterdir()) == sorted(before)


def test_an_index_of_an_older_version_is_rebuilt_by_the_writer_while_search_keeps_working(tmp_path: Path) -> None:
    s = _indexed(tmp_path)
    _stamp(s, SCHEMA_VERSION - 1)
    s = make_stack(tmp_path, data_dir=s.paths.data_dir)
    assert s.store.schema_found == SCHEMA_VERSION - 1 and s.store.schema_outdated
    searcher = s.searcher()
    assert searcher.search("zq3x").results[0].path.endswith("note3.txt")  # a reader uses what is there
    # The writer's first step: no migration step from SCHEMA_VERSION - 1, so every file is marked.
    s.service.sync_paths([])
    assert not s.store.schema_outdated
    assert set(_schemas(s).values()) == {SCHEMA_VERSION}
    resp = searcher.search("zq3x")  # marked for a rebuild, still found meanwhile
    assert resp.results and resp.results[0].path.endswith("note3.txt")
    summary = s.service.index_roots([str(s.root)])
    assert summary.updated == 6, summary  # every file re-read and re-embedded
    assert all(r.mtime_ns and r.text_model == s.text.model_id for r in s.store.files().values())
    assert searcher.search("zq4x").results[0].path.endswith("note4.txt")
    s.store.close()
    reopened = Store(s.paths.store, text_model=(s.text.model_id, s.text.dim), image_model=(s.image.model_id, s.image.dim))
    assert reopened.schema_found == SCHEMA_VERSION and not reopened.schema_outdated
    reopened.close()
