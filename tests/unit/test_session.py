"""The library session on its own (no Qt): the folder rule, the writer's order, pause, close."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from indexer.errors import WriterBusy
from indexer.library.session import LibrarySession, plan_folder_add
from indexer.library.settings import load_settings
from indexer.watch.watcher import read_pending_removals
from tests.support.gui_fakes import FakeLock, FakeRuntime, FakeSearcher, FakeWatch


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    (d / "inner").mkdir(parents=True)
    return d


@pytest.fixture
def session(tmp_path: Path, docs: Path) -> LibrarySession:
    rt = FakeRuntime(tmp_path / "data", [str(docs)], FakeSearcher())
    return LibrarySession(rt, lock_factory=lambda paths: FakeLock(), watch_factory=FakeWatch)


def test_one_rule_for_adding_a_folder(tmp_path: Path, docs: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    assert "own data folder" in plan_folder_add(str(data), [], data).refused
    assert plan_folder_add(str(tmp_path / "nope"), [], data).refused.startswith("no such folder")
    (tmp_path / "f.txt").write_text("x")
    assert plan_folder_add(str(tmp_path / "f.txt"), [], data).refused.startswith("not a folder")
    inner = plan_folder_add(str(docs / "inner"), [str(docs)], data)
    assert not inner.added and inner.covered_by == os.path.realpath(docs)
    parent = plan_folder_add(str(tmp_path), [str(docs)], data)
    assert parent.added and parent.absorbed == (os.path.realpath(docs),)


def test_adding_and_removing_follow_the_writer(session: LibrarySession, tmp_path: Path, docs: Path) -> None:
    assert session.become_writer() == ""
    assert session.is_writer and isinstance(session.lock, FakeLock) and session.watch.started
    more = tmp_path / "more"
    more.mkdir()
    assert session.add_folder(str(more)).added
    assert session.watch.roots == session.folders() == [str(docs), os.path.realpath(more)]
    assert load_settings(session.paths).folders == session.folders()  # saved
    assert session.remove_folder(str(more))
    assert session.watch.roots == [str(docs)]  # the watcher drops its entries
    assert read_pending_removals(session.paths) == []


def test_removing_without_a_watcher_leaves_it_to_the_writer(tmp_path: Path, docs: Path) -> None:
    def busy(paths: Any) -> Any:
        raise WriterBusy("lodestar watch (pid 4242, since today) is already indexing")

    session = LibrarySession(FakeRuntime(tmp_path / "data", [str(docs)], FakeSearcher()), lock_factory=busy)
    assert session.become_writer() == "Indexing is done by another Lodestar process (pid 4242)"
    assert not session.is_writer and session.lock is None
    assert session.remove_folder(str(docs))
    assert read_pending_removals(session.paths) == [os.path.realpath(docs)]
    with pytest.raises(WriterBusy):
        session.clear_index()  # a reader never writes


def test_a_long_lived_writer_pauses_on_a_full_disk(session: LibrarySession) -> None:
    """The window and `lodestar watch` wait for space (docs/RELIABILITY.md §12); they used not to."""
    session.become_writer()
    assert session.service is not None and session.service.wait_when_disk_full


def test_pause_resume_clear_and_close(session: LibrarySession) -> None:
    session.become_writer()
    first = session.watch
    assert session.pause() and first.stopped and session.watch is None
    assert not session.start_watching()  # paused: nothing starts
    assert session.resume() and session.watch is not first and session.watch.started
    second = session.watch
    session.clear_index()
    assert second.stopped and session.runtime.store.cleared == 1 and session.watch.started
    lock = session.lock
    assert session.close() and lock.released and session.runtime.closed
    assert session.lock is None and session.watch is None
    assert not session.start_watching() and session.watch is None  # closed: nothing starts again
