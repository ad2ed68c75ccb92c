"""Standard background worker and the bridge from plain-Python progress to Qt signals.

The core (``indexer/``) never imports Qt; it reports progress through callbacks
and honours a ``cancel`` object with ``is_set()``. This module runs those calls off
the GUI thread and turns their results into queued signals, so widgets are only
ever touched on the GUI thread.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """Raised by a job that noticed its cancel token (not an error)."""


class WorkerSignals(QObject):
    """Signals of one :class:`Worker`; emitted from the pool thread, delivered queued."""

    started = Signal()
    progress = Signal(object)
    result = Signal(object)
    error = Signal(object)  # the exception instance (traceback already logged)
    finished = Signal()


class Worker(QRunnable):
    """Runs ``fn(*args, **kwargs)`` on a pool thread.

    If ``fn`` accepts ``cancel`` / ``progress`` keywords (``pass_cancel`` /
    ``pass_progress``) it gets the worker's cancel token (a ``threading.Event``)
    and a callable that emits :attr:`WorkerSignals.progress`.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *args: Any,
        pass_cancel: bool = False,
        pass_progress: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.setAutoDelete(False)  # WorkerPool owns the lifetime (see WorkerPool._done)
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.cancel_event = threading.Event()
        self.signals = WorkerSignals()
        if pass_cancel:
            self.kwargs["cancel"] = self.cancel_event
        if pass_progress:
            self.kwargs["progress"] = self.signals.progress.emit

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def run(self) -> None:
        signals = self.signals
        signals.started.emit()
        try:
            value = self.fn(*self.args, **self.kwargs)
        except Cancelled:
            log.debug("worker %r cancelled", getattr(self.fn, "__name__", self.fn))
        except Exception as exc:  # noqa: BLE001 - forwarded to the GUI, never swallowed
            if _is_known(exc):
                log.info("worker %r: %s", getattr(self.fn, "__name__", self.fn), exc)
            else:
                log.error("bug in background job %r:\n%s", self.fn, traceback.format_exc())
            signals.error.emit(exc)
        else:
            if not self.cancelled:
                signals.result.emit(value)
        finally:
            signals.finished.emit()


def _is_known(exc: BaseException) -> bool:
    try:
        from indexer.errors import user_message
    except ImportError:  # pragma: no cover
        return False
    return user_message(exc) is not None


class WorkerPool(QObject):
    """A small bounded pool that remembers its workers so quit can cancel and await them."""

    def __init__(self, max_threads: int = 2, name: str = "pool", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max_threads)
        self._pool.setObjectName(name)
        self._live: set[Worker] = set()
        # Finished workers are kept until the pool is idle: the pool thread may still be
        # returning from run() when `finished` reaches the GUI thread, so the QRunnable
        # must not be freed yet.
        self._done: list[Worker] = []
        self._lock = threading.Lock()

    def start(self, worker: Worker) -> Worker:
        with self._lock:
            if self._pool.activeThreadCount() == 0:
                self._done.clear()
            self._live.add(worker)
        # Drop the reference when done (finished is delivered on the GUI thread).
        worker.signals.finished.connect(lambda w=worker: self._forget(w))
        self._pool.start(worker)
        return worker

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Worker:
        return self.start(Worker(fn, *args, **kwargs))

    def _forget(self, worker: Worker) -> None:
        with self._lock:
            self._live.discard(worker)
            self._done.append(worker)

    def active(self) -> int:
        return self._pool.activeThreadCount()

    def cancel_all(self) -> None:
        with self._lock:
            workers = list(self._live)
        for w in workers:
            w.cancel()
        self._pool.clear()  # queued-but-not-started jobs never run

    def wait(self, msecs: int = 30_000) -> bool:
        """Cancel everything and wait for running jobs; True when the pool is idle."""
        self.cancel_all()
        done = self._pool.waitForDone(msecs)
        if done:
            with self._lock:
                self._done.clear()
        else:
            log.warning("background jobs still running after %d ms", msecs)
        return done


class ProgressBridge(QObject):
    """Callable handed to the pipeline: ``bridge(progress)`` from any thread → ``progress`` signal."""

    progress = Signal(object)

    def __call__(self, event: object) -> None:
        # Signal emission is thread-safe; the connection to GUI-thread receivers is queued.
        self.progress.emit(event)
