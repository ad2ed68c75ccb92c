"""One writer per data directory: an advisory lock on ``writer.lock``.

``flock`` is released by the kernel when the holding process dies (even on
SIGKILL), so a stale lock after a crash cannot happen. After locking, the holder
writes who it is (pid, command, since) into the file so a second process can tell
the person who the writer is.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any

from indexer.errors import WriterBusy
from indexer.library.settings import AppPaths, as_number

log = logging.getLogger(__name__)

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]
try:
    import msvcrt
except ImportError:  # POSIX
    msvcrt = None  # type: ignore[assignment]

_POLL_S = 0.2


def _describe(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "Another Lodestar process"
    cmd = holder.get("command")
    cmd = cmd if isinstance(cmd, str) and cmd else "Lodestar"
    pid = as_number(holder.get("pid"), 1, 2**31 - 1)
    since = as_number(holder.get("since"), 0, 1e11)  # a damaged note must not stop the message
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(since)) if since is not None else "?"
    return f"{cmd} (pid {int(pid) if pid is not None else '?'}, since {when})"


class WriterLock:
    """Exclusive right to write the index in ``paths.data_dir``."""

    def __init__(self, paths: AppPaths, command: str | None = None) -> None:
        self.path = paths.writer_lock
        words = [a for a in sys.argv[1:] if not a.startswith("-")][:2]
        self.command = command or " ".join(["lodestar", *words])
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _open(self) -> int:
        return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)

    @staticmethod
    def _try_lock(fd: int) -> bool:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return False
        if msvcrt is not None:
            try:
                os.lseek(fd, 0, os.SEEK_SET)
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
                return True
            except OSError:
                return False
        log.warning("no file locking on this platform; not protecting against two writers")
        return True

    def acquire(self, wait: bool = False, timeout: float | None = None, then: str = "stop") -> None:
        """Become the writer, or raise `WriterBusy` naming the holder.

        ``wait``: retry until the holder exits (up to ``timeout`` seconds, forever if None).
        ``then``: what this process does if busy, for the message ("stop", "wait", ...).
        """
        if self._fd is not None:
            return
        fd = self._open()
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not self._try_lock(fd):
                if not wait or (deadline is not None and time.monotonic() >= deadline):
                    holder = self.holder()
                    exc = WriterBusy(
                        f"{_describe(holder)} is already indexing this data folder; this one will {then}"
                    )
                    exc.holder = holder  # type: ignore[attr-defined]
                    raise exc
                time.sleep(_POLL_S)  # flock has no timed wait; poll politely
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        info = {"pid": os.getpid(), "command": self.command, "since": time.time()}
        try:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, json.dumps(info).encode("utf-8"))
        except OSError as exc:  # the lock is what matters; the note is a courtesy
            log.warning("cannot record writer details in %s: %s", self.path, exc)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
            elif msvcrt is not None:
                os.lseek(fd, 0, os.SEEK_SET)
                msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        except OSError as exc:
            log.debug("unlocking %s: %s", self.path, exc)
        finally:
            os.close(fd)  # closing releases the lock in any case

    def holder(self) -> dict[str, Any] | None:
        """Who holds the lock (pid, command, since), or None if nobody does."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            if self._fd is None and fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    return None  # we could lock it: nobody holds it
                except BlockingIOError:
                    pass
            raw = os.read(fd, 4096)
        finally:
            os.close(fd)
        try:
            data = json.loads(raw.decode("utf-8")) if raw else {}
        except (ValueError, RecursionError):
            data = {}
        if not isinstance(data, dict):
            data = {}
        return data

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
