"""`lodestar watch`: writer lock, --once, following settings changes, clean stop."""

from __future__ import annotations

import argparse
import os
import threading
from pathlib import Path
from typing import Any

import pytest

import indexer.cli.main as cli
from indexer.cli import watch as watch_cmd
from indexer.library.settings import Settings, load_settings, open_paths, save_settings
from indexer.library.writer_lock import WriterLock
from tests.unit.test_watch import FakeService, wait_until


class FakeRuntime:
    def __init__(self, data_dir: Path) -> None:
        self.paths = open_paths(data_dir)
        self.settings = load_settings(self.paths)
        self.settings.reconcile_interval_s = 3600
        self.svc = FakeService(self.settings)
        self.closed = False

    def service(self, progress: Any = None, *, wait_when_disk_full: bool = False) -> FakeService:
        self.waits_when_disk_full = wait_when_disk_full
        return self.svc

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_runtime(monkeypatch: pytest.MonkeyPatch) -> list[FakeRuntime]:
    made: list[FakeRuntime] = []

    def open_runtime(data_dir: Any = None, **_: Any) -> FakeRuntime:
        rt = FakeRuntime(Path(data_dir))
        made.append(rt)
        return rt

    monkeypatch.setattr("indexer.library.runtime.open_runtime", open_runtime)
    return made


def test_watch_once_reconciles_every_folder(tmp_path: Path, fake_runtime: list[FakeRuntime], capsys) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("a")
    paths = open_paths(data)
    save_settings(paths, Settings(folders=[os.path.realpath(docs)]))
    assert cli.main(["watch", "--once", "--data-dir", str(data)]) == 0
    (rt,) = fake_runtime
    assert rt.svc.reconciles == [os.path.realpath(docs)]
    assert list(rt.svc.index) == [os.path.realpath(docs / "a.txt")]
    assert rt.closed
    assert "live" in capsys.readouterr().out
    assert WriterLock(paths).holder() is None  # released


def test_watch_follows_settings_and_stops_cleanly(
    tmp_path: Path, fake_runtime: list[FakeRuntime], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(watch_cmd, "SETTINGS_POLL_S", 0.1)
    data = tmp_path / "data"
    paths = open_paths(data)
    stop = threading.Event()
    args = argparse.Namespace(data_dir=str(data), once=False, verbose=1)
    result: list[int] = []
    t = threading.Thread(target=lambda: result.append(watch_cmd.run(args, stop)))
    t.start()
    try:
        assert wait_until(lambda: bool(fake_runtime) and WriterLock(paths).holder() is not None)
        # `lodestar watch` runs for hours: on a full disk it pauses, it does not stop.
        assert wait_until(lambda: getattr(fake_runtime[0], "waits_when_disk_full", False))
        rt = fake_runtime[0]
        docs = tmp_path / "docs"
        docs.mkdir()
        (docs / "new.txt").write_text("n")
        assert cli.main(["folders", "add", str(docs), "--data-dir", str(data)]) == 0
        assert wait_until(lambda: os.path.realpath(docs / "new.txt") in rt.svc.index)
        assert rt.settings.folders == [os.path.realpath(docs)]  # shared object updated in place
        (docs / "later.txt").write_text("l")
        assert wait_until(lambda: os.path.realpath(docs / "later.txt") in rt.svc.index)
        # Removing while we are the writer: the CLI defers, the watcher drops the entries.
        assert cli.main(["folders", "remove", str(docs), "--data-dir", str(data)]) == 0
        assert wait_until(lambda: rt.svc.removed_roots == [os.path.realpath(docs)])
        assert rt.svc.removed_roots == [os.path.realpath(docs)]  # once, though asked twice
    finally:
        stop.set()  # what the SIGINT/SIGTERM handler does
    t.join(15)
    assert not t.is_alive()
    assert result == [0]
    assert fake_runtime[0].closed
    assert WriterLock(paths).holder() is None
    assert " changed paths: " in capsys.readouterr().out  # --verbose: a line per batch


def test_waits_for_busy_writer_and_says_who(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    paths = open_paths(tmp_path / "data")
    holder = WriterLock(paths, command="lodestar index")
    holder.acquire()
    stop = threading.Event()
    got: list[bool] = []
    mine = WriterLock(paths, command="lodestar watch")
    t = threading.Thread(target=lambda: got.append(watch_cmd._acquire(mine, stop)))
    t.start()
    assert wait_until(lambda: "lodestar index" in capsys.readouterr().err or got)
    assert not got
    holder.release()
    t.join(10)
    assert got == [True] and mine.held
    mine.release()
    # Stopped while waiting: gives up without the lock.
    holder.acquire()
    stop.set()
    assert watch_cmd._acquire(WriterLock(paths), stop) is False
    holder.release()


REPO = str(Path(__file__).resolve().parents[2])


@pytest.mark.skipif(not hasattr(os, "getpriority") or os.name != "posix", reason="POSIX signals and nice")
def test_sigterm_stops_watch_process_cleanly(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import textwrap

    data = tmp_path / "data"
    docs = tmp_path / "docs"
    docs.mkdir()
    save_settings(open_paths(data), Settings(folders=[os.path.realpath(docs)]))
    code = textwrap.dedent(
        f"""
        import sys
        sys.path[:0] = [{REPO!r}]
        import indexer.library.runtime
        from tests.unit.test_watch_cmd import FakeRuntime
        from pathlib import Path
        indexer.library.runtime.open_runtime = lambda d=None, **k: FakeRuntime(Path(d))
        from indexer.cli.main import main
        sys.exit(main(["watch", "--data-dir", {str(data)!r}]))
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # wait until it is watching (no sleep)
            if line.startswith("Watching"):
                break
        holder = WriterLock(open_paths(data)).holder()
        assert holder is not None and holder["pid"] == proc.pid and holder["command"] == "lodestar watch"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Stopped watching." in out
    assert WriterLock(open_paths(data)).holder() is None


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="per-thread nice is Linux/POSIX")
def test_worker_thread_runs_at_lower_priority(tmp_path: Path) -> None:
    from indexer.watch.watcher import WatchService

    paths = open_paths(tmp_path / "data")
    settings = Settings(folders=[], reconcile_interval_s=3600)
    ws = WatchService(FakeService(settings), settings, paths)
    ws.start()
    try:
        worker = ws._threads[0]
        assert wait_until(lambda: worker.native_id is not None and os.getpriority(os.PRIO_PROCESS, worker.native_id) >= 10)
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) < 10  # the rest of the process is untouched
    finally:
        assert ws.stop()
