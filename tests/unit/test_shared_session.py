"""The writer's background publishing of its part (issue 19): started by the session when the
data folder shares, poked by commits, retried with backoff, stopped on close. No storage:
the publish step is a stand-in here (tests/integration/test_shared_library.py runs it for real)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

import indexer.shared.publish as publish_mod
from indexer.library.session import LibrarySession
from indexer.shared.config import ShareConfig, save_config
from indexer.shared.publish import PublishLoop, PublishReport
from indexer.types import Progress
from tests.support.gui_fakes import FakeLock, FakeRuntime, FakeSearcher, FakeWatch


def _wait(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def publishes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []

    def fake(data_dir: Any, **kw: Any) -> PublishReport:
        calls.append(Path(data_dir))
        return PublishReport(files=1)

    monkeypatch.setattr(publish_mod, "publish", fake)
    return calls


def test_the_writer_publishes_while_it_shares_and_stops_on_close(tmp_path: Path, publishes: list[Path]) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    rt = FakeRuntime(tmp_path / "data", [str(docs)], FakeSearcher())
    save_config(rt.paths.data_dir, ShareConfig.new("s3://family/lib", "desk"))
    session = LibrarySession(rt, lock_factory=lambda paths: FakeLock(), watch_factory=FakeWatch)
    seen: list[Progress] = []
    session.on_progress = seen.append
    assert session.become_writer() == ""
    loop = session._publisher
    assert loop is not None
    _wait(lambda: len(publishes) >= 1)  # the first publish at once
    session._progress_and_publish(Progress(phase="writing", index_changed=True))  # a commit landed
    _wait(lambda: len(publishes) >= 2)  # ... is published after the short gap, not the 30 s interval
    assert seen[-1].index_changed  # the window still hears every event
    assert session.close()
    assert loop._thread is not None and not loop._thread.is_alive()


def test_a_data_folder_that_does_not_share_publishes_nothing(tmp_path: Path, publishes: list[Path]) -> None:
    rt = FakeRuntime(tmp_path / "data", [], FakeSearcher())
    session = LibrarySession(rt, lock_factory=lambda paths: FakeLock(), watch_factory=FakeWatch)
    session.become_writer()
    assert session._publisher is None
    session.close()
    assert publishes == []


def test_failures_back_off_then_it_catches_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_config(tmp_path, ShareConfig.new("s3://family/lib", "desk"))
    outcomes = ["cannot reach the storage", "cannot reach the storage", ""]
    times: list[float] = []
    done = threading.Event()

    def fake(data_dir: Any, **kw: Any) -> PublishReport:
        times.append(time.monotonic())
        problem = outcomes.pop(0) if outcomes else ""
        if not outcomes:
            done.set()
        return PublishReport(problem=problem)

    monkeypatch.setattr(publish_mod, "publish", fake)
    loop = PublishLoop(tmp_path, interval_s=60, min_gap_s=0, first_backoff_s=0.2, max_backoff_s=5)
    loop.start()
    try:
        assert done.wait(10)
        _wait(lambda: loop.last is not None and not loop.last.problem)
        assert loop.failures == 0
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert gaps[0] >= 0.18 and gaps[1] >= 0.38  # 0.2 s, then twice that
    finally:
        assert loop.stop(5)
