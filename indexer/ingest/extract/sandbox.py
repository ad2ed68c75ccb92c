"""A disposable worker process for complex document formats (HTML, PDF, DOCX, EPUB).

A hostile PDF can make a parser loop for minutes, recurse deeply or allocate
gigabytes (RELIABILITY D2, X1). Parsing happens in one long-lived *spawned*
child (never forked: LanceDB and torch threads are not fork-safe) with an
address-space cap; each request has a wall-clock limit. On a timeout or a
crash the child is killed and replaced, and that one file is reported failed.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from indexer.ingest.safe_open import PathUnsafe, Vanished
from indexer.types import ExtractionError, NameOnly

log = logging.getLogger(__name__)

DOCUMENT_TIMEOUT_S = 60.0
"""Wall-clock limit for one document; the child is killed past it."""
WORKER_MEMORY_MB = 2048
"""Address-space cap for the child (Linux/macOS RLIMIT_AS); a bomb fails with MemoryError."""
ENABLED = True
"""Tests and frozen builds may switch to in-process parsing (no time limit then)."""

_lock = threading.Lock()
_worker: _Worker | None = None


class _Worker:
    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(
            target=_serve, args=(child, WORKER_MEMORY_MB, _parent_log_file()), name="lodestar-extract", daemon=True
        )
        self.proc.start()
        child.close()

    def kill(self) -> None:
        try:
            self.conn.close()
        except OSError:
            pass
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=5)


def _get_worker() -> _Worker:
    global _worker
    if _worker is None or not _worker.proc.is_alive():
        if _worker is not None:
            _worker.kill()
        _worker = _Worker()
    return _worker


def shutdown() -> None:
    """Stop the worker (idempotent); the next request starts a fresh one."""
    global _worker
    with _lock:
        if _worker is not None:
            try:
                _worker.conn.send(None)
            except OSError:
                pass
            _worker.kill()
            _worker = None


def run(task: Callable[..., Any], args: tuple[Any, ...], timeout_s: float | None = None) -> Any:
    """``task(*args)`` in the worker; re-raise its NameOnly/ExtractionError.

    ``task`` is a module-level function: it travels to the worker by name and is
    imported there (the parsers in `documents`; tests send their own).
    """
    if not ENABLED:
        return task(*args)
    global _worker
    timeout = DOCUMENT_TIMEOUT_S if timeout_s is None else timeout_s
    with _lock:  # one request at a time: the worker is single-threaded
        w = _get_worker()
        started = time.monotonic()
        try:
            w.conn.send((task, args))
            ready = w.conn.poll(timeout)
            reply: tuple[str, Any] | None = w.conn.recv() if ready else None
        except (EOFError, OSError) as exc:
            log.warning("document worker died on %s%r: %s", task.__name__, args[:1], exc)
            w.kill()
            _worker = None
            raise ExtractionError("the document reader crashed on this file") from exc
        if not ready:
            log.warning("document worker timed out after %.1fs on %s%r", time.monotonic() - started, task.__name__, args[:1])
            w.kill()
            _worker = None
            raise ExtractionError(f"took longer than {timeout:.0f} s to read (gave up)")
    assert reply is not None  # a timeout raised above
    status, payload = reply
    if status == "ok":
        return payload
    if status == "name_only":
        raise NameOnly(payload)
    if status == "unsafe":  # the worker's own safe open met a symlink (S2)
        raise PathUnsafe(payload)
    if status == "vanished":
        raise Vanished(payload)
    if status == "bug":
        # An unexpected exception in a parser: a bug or a hostile file; keep the traceback
        # (in the log file; the terminal shows one line) and give the whole reason.
        log.error("document worker error on %r:\n%s", args[:1], payload)
        raise ExtractionError(bug_reason(payload))
    raise ExtractionError(payload)


def _limit_memory(mb: int) -> None:
    try:
        import resource
    except ImportError:  # Windows: no rlimits; the timeout still applies
        return
    limit = mb * 1024 * 1024
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ValueError, OSError) as exc:
        log.debug("cannot cap worker memory: %s", exc)


def bug_reason(trace: str) -> str:
    """The failure reason for a parser's unexpected exception: what it said, and where the
    traceback is if this process has a log file (never a pointer to a file that is not there)."""
    last = next((line.strip() for line in reversed(trace.strip().splitlines()) if line.strip()), "")
    reason = f"unexpected error while reading this file ({last[:300]})" if last else "unexpected error while reading this file"
    from indexer.library.logs import log_file

    where = log_file()
    return f"{reason}; details in {where}" if where else reason


def _parent_log_file() -> str | None:
    from indexer.library.logs import log_file

    return log_file()


def _quiet_child_logging(log_path: str | None) -> None:
    """The worker's library warnings and log records go to the log file, never to the terminal."""
    import warnings

    logging.raiseExceptions = False  # a log file that cannot be written must not print either
    root = logging.getLogger()
    root.handlers.clear()
    handler: logging.Handler = logging.NullHandler()
    if log_path:
        try:
            os.makedirs(os.path.dirname(log_path), mode=0o700, exist_ok=True)
            handler = logging.FileHandler(log_path, encoding="utf-8", delay=True)
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(process)d worker %(name)s: %(message)s"))
        except OSError:
            handler = logging.NullHandler()
    handler.setLevel(logging.WARNING)
    root.addHandler(handler)
    logging.captureWarnings(True)
    warnings.simplefilter("default")


def _serve(conn: Connection, memory_mb: int, log_path: str | None = None) -> None:
    """Child main loop: one request at a time until the parent closes the pipe."""
    _limit_memory(memory_mb)
    _quiet_child_logging(log_path)
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # it warns on every odd xref
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        task, args = msg
        try:
            reply: tuple[str, Any] = ("ok", task(*args))
        except NameOnly as exc:
            reply = ("name_only", str(exc))
        except PathUnsafe as exc:
            reply = ("unsafe", str(exc))
        except Vanished as exc:
            reply = ("vanished", str(exc))
        except ExtractionError as exc:
            reply = ("error", str(exc))
        except MemoryError:
            reply = ("error", f"needs more than {memory_mb} MB of memory to read (gave up)")
        except RecursionError:
            reply = ("error", "too deeply nested to read (corrupt or hostile file)")
        except Exception:  # noqa: BLE001 - report any parser bug to the parent, keep serving
            reply = ("bug", traceback.format_exc())
        try:
            conn.send(reply)
        except (OSError, ValueError):
            return
