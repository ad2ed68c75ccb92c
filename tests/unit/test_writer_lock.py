"""One writer per data directory: busy is reported with the holder; crashes free the lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from indexer.errors import WriterBusy
from indexer.library.settings import open_paths
from indexer.library.writer_lock import WriterLock

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock semantics tested on POSIX")

REPO = str(Path(__file__).resolve().parents[2])


def _spawn_holder(data_dir: Path) -> subprocess.Popen[str]:
    code = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {REPO!r})
        from indexer.library.settings import open_paths
        from indexer.library.writer_lock import WriterLock
        lock = WriterLock(open_paths({str(data_dir)!r}), command="lodestar watch")
        lock.acquire()
        print("locked", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_writer_in_same_process_is_busy(tmp_path: Path) -> None:
    paths = open_paths(tmp_path / "data")
    first = WriterLock(paths, command="lodestar watch")
    with first:
        assert first.held
        second = WriterLock(paths, command="lodestar index")
        with pytest.raises(WriterBusy, match=rf"pid {os.getpid()}.*this one will stop"):
            second.acquire()
        holder = second.holder()
        assert holder is not None and holder["pid"] == os.getpid() and holder["command"] == "lodestar watch"
        assert not second.held
    assert WriterLock(paths).holder() is None
    with WriterLock(paths) as again:  # released on exit
        assert again.held
    assert os.stat(paths.writer_lock).st_mode & 0o077 == 0


def test_busy_names_other_process_and_sigkill_frees_the_lock(tmp_path: Path) -> None:
    data = tmp_path / "data"
    paths = open_paths(data)
    proc = _spawn_holder(data)
    try:
        lock = WriterLock(paths)
        with pytest.raises(WriterBusy) as info:
            lock.acquire(then="wait")
        assert f"pid {proc.pid}" in str(info.value) and "lodestar watch" in str(info.value)
        assert "this one will wait" in str(info.value)
        assert lock.holder()["pid"] == proc.pid  # type: ignore[index]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        lock.acquire(wait=True, timeout=10)  # the kernel released it: no stale lock
        assert lock.held
        assert lock.holder()["pid"] == os.getpid()  # type: ignore[index]
        lock.release()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_wait_acquires_when_holder_releases_and_times_out_otherwise(tmp_path: Path) -> None:
    paths = open_paths(tmp_path / "data")
    holder = WriterLock(paths, command="lodestar index")
    holder.acquire()
    waiter = WriterLock(paths)
    t0 = time.monotonic()
    with pytest.raises(WriterBusy):
        waiter.acquire(wait=True, timeout=0.5)
    assert time.monotonic() - t0 >= 0.4
    got = threading.Event()

    def wait_for_it() -> None:
        waiter.acquire(wait=True, timeout=10)
        got.set()

    t = threading.Thread(target=wait_for_it)
    t.start()
    assert not got.wait(0.3)  # still held
    holder.release()
    assert got.wait(10)
    t.join()
    waiter.release()
