"""Store.write commits data → file rows → stale-row cleanup, so a crash between any
two steps never shows a half-indexed file (the "done" marker comes after the data).

Each test stops a write at one step (an exception standing in for SIGKILL; the
crash loop in test_rel_crash.py does the real thing), then reopens the store on a
fresh connection the way the next start would.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.store.tables import Store
from tests.support.rel_checks import committed_intact, text_rows
from tests.support.rel_stack import Stack, make_stack


class Killed(BaseException):
    """Not an Exception: nothing in the pipeline may catch it, like a real kill."""


def _restart(s: Stack) -> Stack:
    s.store.close()
    return make_stack(s.root.parent, data_dir=s.paths.data_dir)


def test_crash_after_data_before_file_row_hides_the_file(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    s = stack
    (s.root / "a.txt").write_text("zeppelin over the harbour at dawn", encoding="utf-8")

    def killed(*_a: object, **_k: object) -> None:
        raise Killed

    monkeypatch.setattr(Store, "_upsert_files", killed)
    with pytest.raises(Killed):
        s.service.index_roots([str(s.root)])
    monkeypatch.undo()
    s2 = _restart(s)
    assert text_rows(s2.store), "the chunk rows were committed first"
    assert s2.store.get_file(str(s.root / "a.txt")) is None  # ...but the file is not marked done
    assert not s2.searcher().search("zeppelin harbour").results  # so search does not show it
    s2.service.index_roots([str(s2.root)])  # the next run redoes it
    stats = committed_intact(s2.store)
    assert stats == {"indexed": 1, "duplicates": 0}  # the orphaned first attempt is gone
    assert s2.searcher().search("zeppelin harbour").results[0].path.endswith("a.txt")
    s2.store.close()


def test_crash_before_stale_rows_are_removed_shows_only_new_content(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    s = stack
    a = s.root / "a.txt"
    a.write_text("the old text talks about walruses", encoding="utf-8")
    s.service.index_roots([str(s.root)])
    a.write_text("the new text talks about flamingos", encoding="utf-8")
    real = Store._delete_rows

    def killed(self: Store, table: object, fids: object, keep_batch: int | None) -> None:
        if keep_batch is not None and fids:
            raise Killed
        real(self, table, fids, keep_batch)  # type: ignore[arg-type]

    monkeypatch.setattr(Store, "_delete_rows", killed)
    with pytest.raises(Killed):
        s.service.sync_paths([str(a)])
    monkeypatch.undo()
    s2 = _restart(s)
    rec = s2.store.get_file(str(a))
    assert rec is not None and rec.state == "indexed"
    assert len(text_rows(s2.store)) == 2  # old and new rows both on disk...
    committed_intact(s2.store)  # ...the file row names the new ones, and they are whole
    hits = s2.searcher().search("walruses").results
    assert all("walruses" not in h.passage for h in hits)  # old rows are invisible
    assert "flamingos" in s2.searcher().search("flamingos").results[0].passage
    s2.service.index_roots([str(s2.root)])
    s2.store.close()


def test_file_row_is_written_after_data_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The order itself, observed: chunks add → files upsert → cleanup."""
    s = make_stack(tmp_path)
    (s.root / "a.txt").write_text("ordering matters", encoding="utf-8")
    order: list[str] = []
    real_upsert, real_delete = Store._upsert_files, Store._delete_rows
    chunks = s.store.chunks_table(create=True)
    real_add = type(chunks).add

    def add(self: object, *a: object, **k: object) -> object:
        order.append("data")
        return real_add(self, *a, **k)

    def upsert(self: Store, *a: object) -> None:
        order.append("files")
        real_upsert(self, *a)  # type: ignore[arg-type]

    def delete_rows(self: Store, table: object, fids: object, keep: int | None) -> None:
        if fids:
            order.append("cleanup")
        real_delete(self, table, fids, keep)  # type: ignore[arg-type]

    monkeypatch.setattr(type(chunks), "add", add)
    monkeypatch.setattr(Store, "_upsert_files", upsert)
    monkeypatch.setattr(Store, "_delete_rows", delete_rows)
    s.service.sync_paths([str(s.root / "a.txt")])
    assert order[:3] == ["data", "files", "cleanup"], order
    s.store.close()
