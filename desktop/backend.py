"""The window's view of the runtime: model loading, the writer (index + watch), folders.

Everything slow (loading models, opening the store, indexing, reading problems)
runs on :class:`~desktop.workers.WorkerPool` threads or the watcher's own threads;
results come back as queued signals. The runtime is duck-typed against
``indexer.library.runtime.Runtime`` so tests can hand in a small fake.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal

from desktop.workers import ProgressBridge, Worker, WorkerPool
from indexer.library.settings import normalise_folder, save_settings
from indexer.types import FolderStatus, Progress

log = logging.getLogger(__name__)


@dataclass
class Problem:
    path: str
    state: str
    reason: str


@dataclass
class ClipState:
    """The image model as the window shows it: built only by :func:`clip_state_from`
    (from ``Runtime.image_state``), so every widget says the same thing."""

    state: str  # "loading" | "ready" | "missing" | "downloading"
    message: str = ""  # one line: what is true now
    fix: str = ""  # what the person can do ("" when nothing)
    short: str = ""  # the status bar's few words
    failed: bool = False  # a download was tried and failed (said once as a notice)

    def line(self) -> str:
        """What happened and what to do, as one notice."""
        return f"{self.message.rstrip('.')}. {self.fix}" if self.fix else self.message


def clip_state_from(runtime: Any, ok: bool, why: str) -> ClipState:
    """The window's ClipState from the runtime's one image-model state (or a bare reason)."""
    if ok:
        return ClipState("ready", "Image search ready", short="image search ready")
    st = getattr(runtime, "image_state", None)
    if st is None or getattr(st, "ready", False):
        return ClipState("missing", f"Image search unavailable: {why or 'CLIP weights missing'}",
                         "Download the weights, or choose a .safetensors checkpoint file.",
                         short="image search unavailable")
    reason = st.reason[:1].upper() + st.reason[1:]
    if st.offline:
        short = "image model: no internet"
    elif st.download_failed:
        short = "image model download failed"
    elif not st.download_allowed:
        short = "image downloads turned off"
    elif "not downloaded" in st.reason:
        short = "image model not downloaded"
    else:
        short = "image search unavailable"
    fix = st.fix[:1].upper() + st.fix[1:] if st.fix else ""
    return ClipState("missing", reason, fix.rstrip(".") + "." if fix else "", short=short,
                     failed=bool(st.download_failed))


class Backend(QObject):
    modelsText = Signal(str)
    searcherReady = Signal(object)
    clipChanged = Signal(object)  # ClipState
    progress = Signal(object)  # indexer.types.Progress
    folderStatus = Signal(object)  # list[FolderStatus]
    writerChanged = Signal(str)  # "" when this process writes, else who does
    foldersChanged = Signal(object)
    problemsReady = Signal(object)  # list[Problem]
    failed = Signal(str)
    clipDownloaded = Signal()  # the weights arrived: the window offers to use them
    problemCount = Signal(int)  # files needing attention: len(store.problems()), the one count
    notice = Signal(str)  # one line the person must see now (announced download, repaired settings)

    def __init__(self, runtime: Any, parent: QObject | None = None, *,
                 lock_factory: Callable[[Any], Any] | None = None,
                 watch_factory: Callable[..., Any] | None = None) -> None:
        super().__init__(parent)
        self.runtime = runtime
        self._lock_factory = lock_factory or take_writer_lock
        self._watch_factory = watch_factory or _real_watch_service
        self.pool = WorkerPool(max_threads=2, name="backend", parent=self)
        self._bridge = ProgressBridge(self)
        self._bridge.progress.connect(self._on_progress)
        self._status_bridge = ProgressBridge(self)
        self._status_bridge.progress.connect(self.folderStatus)
        self.searcher: Any = None
        self.service: Any = None
        self.watch: Any = None
        self.lock: Any = None
        self.writer_message = ""
        self.clip = ClipState("loading")
        self.paused = False
        self.last_progress: Progress | None = None
        self._closed = False
        self._clean = True
        self._started_writer: tuple[Any, Any, Any] | None = None

    # -- settings ---------------------------------------------------------------
    @property
    def settings(self) -> Any:
        return self.runtime.settings

    def folders(self) -> list[str]:
        return list(self.settings.folders)

    def data_dir(self) -> str:
        return str(self.runtime.paths.data_dir)

    def save_settings(self) -> None:
        save_settings(self.runtime.paths, self.settings)

    def add_folder(self, path: str) -> bool:
        """Watch ``path``; False (and ``failed`` says why, if it is refused) when nothing changed."""
        from indexer.ingest.scan import refusal_reason

        folder = normalise_folder(path)
        refused = refusal_reason(folder, self.runtime.paths.data_dir)  # the same rule as the CLI
        if refused:
            self.failed.emit(refused)
            return False
        if folder in self.settings.folders:
            return False
        self.settings.folders.append(folder)
        self._folders_changed()
        return True

    def remove_folder(self, path: str) -> bool:
        if path not in self.settings.folders:
            return False
        self.settings.folders.remove(path)
        self._folders_changed()
        return True

    def _folders_changed(self) -> None:
        self.save_settings()
        if self.watch is not None:
            self.watch.set_roots(self.settings.folders)
        elif self.service is not None and not self.paused:
            self._restart_watch()  # we are the writer but had nothing to watch until now
        elif self.service is None and self.searcher is not None and not self.writer_message:
            self.start_writer()
        self.foldersChanged.emit(self.folders())

    # -- start-up -----------------------------------------------------------------
    def start(self) -> None:
        """Load the models and open the store off the GUI thread."""
        self._route_notices()
        self.modelsText.emit("Loading text model…")
        self._on_clip(ClipState("loading", "Loading image model…"))
        worker = Worker(self._load_models, pass_progress=True)
        worker.signals.progress.connect(self._on_load_step)
        worker.signals.result.connect(self._on_models_loaded)
        worker.signals.error.connect(self._on_text_failed)
        self.pool.start(worker)

    def _route_notices(self) -> None:
        """Repaired settings now; announced downloads when they happen (from worker
        threads: the signal queues them to the GUI thread), before any connection."""
        if hasattr(self.runtime, "on_notice"):
            self.runtime.on_notice = self.notice.emit
        for line in getattr(self.settings, "problems", ()):
            self.notice.emit(line)

    def _load_models(self, progress: Callable[[object], None]) -> tuple[Any, ClipState]:
        """Text model → store → a text-only searcher (usable at once) → CLIP → the full searcher."""
        text = self.runtime.text_embedder
        opening = self._open_store_beside()
        loader = getattr(text, "load", None)
        if callable(loader):
            loader()
        if opening is not None:
            opening.join()
        early = self._text_only_searcher()
        if early is not None:
            progress(("searcher", early))
        clip = self._clip_state()
        return self.runtime.searcher(), clip

    def _open_store_beside(self) -> threading.Thread | None:
        """Open the store (health check, lancedb import: ~2 s cold) while the text model
        loads, so the first answer waits for the slower of the two, not their sum."""
        from indexer.library.runtime import Runtime

        if not isinstance(self.runtime, Runtime):
            return None

        def open_store() -> None:
            try:
                self.runtime.store
            except Exception:  # noqa: BLE001 - raised again, and reported, where the store is used next
                log.debug("store not opened beside the text model", exc_info=True)

        thread = threading.Thread(target=open_store, name="lodestar-open-store", daemon=True)
        thread.start()
        return thread

    def _text_only_searcher(self) -> Any:
        from indexer.library.runtime import Runtime
        from indexer.search.ranking import Searcher

        if not isinstance(self.runtime, Runtime):
            return None  # a test double: it hands out its own searcher
        return Searcher(self.runtime.store, self.runtime.text_embedder, None, paths=self.runtime.paths,
                        settings=self.runtime.settings, image_problem="the image model is still loading")

    def _clip_state(self) -> ClipState:
        ready = getattr(self.runtime, "image_ready", None)
        if callable(ready):
            ok, why = ready(load=True)
        else:
            ok, why = _load_embedder(self.runtime.image_embedder)
        return clip_state_from(self.runtime, ok, why)

    def refresh_clip_state(self) -> None:
        """Re-read the image model's state (after the writer tried a download), off-thread."""
        ready = getattr(self.runtime, "image_ready", None)
        if not callable(ready) or self.clip.state in ("ready", "downloading"):
            return
        worker = Worker(lambda: clip_state_from(self.runtime, *ready(load=False)))
        worker.signals.result.connect(self._on_clip_refreshed)
        self.pool.start(worker)

    def _on_clip_refreshed(self, state: ClipState) -> None:
        if self._closed or self.clip.state == "downloading":
            return
        news = state.failed and (state.message, state.fix) != (self.clip.message, self.clip.fix)
        self._on_clip(state)
        if news:  # the announced download did not happen: say so where the announcement is
            getattr(self, "notice", self.failed).emit(state.line())

    def download_clip(self) -> Worker | None:
        """Fetch the CLIP weights in the background: announced, with progress, and a clear
        outcome (``clipDownloaded`` on success; a failure says why, e.g. no internet)."""
        ready = getattr(self.runtime, "image_ready", None)
        if not callable(ready) or self.clip.state == "downloading":
            return None
        self.settings.allow_download = True
        self.save_settings()
        self._on_clip(ClipState("downloading", "Downloading the image model…", short="downloading image model…"))
        worker = Worker(self._download, pass_progress=True)
        worker.signals.progress.connect(self._on_download_progress)
        worker.signals.result.connect(self._on_downloaded)
        worker.signals.error.connect(lambda exc: self._on_downloaded(
            ClipState("missing", f"Image model download failed: {exc}", short="image model download failed")))
        return self.pool.start(worker)

    def _download(self, progress: Callable[[object], None]) -> ClipState:
        emb = self.runtime.image_embedder
        if hasattr(emb, "on_download_progress"):
            emb.on_download_progress = lambda done, total: progress((done, total))
        try:
            ok, why = self.runtime.image_ready(load=True, download=True, retry=True)
        finally:
            if hasattr(emb, "on_download_progress"):
                emb.on_download_progress = None
        return clip_state_from(self.runtime, ok, why)

    def _on_download_progress(self, value: Any) -> None:
        done, total = value
        pct = f" {100 * done // total}%" if total else ""
        mb = f" ({done / 1e6:,.0f} of {total / 1e6:,.0f} MB)" if total else ""
        self._on_clip(ClipState("downloading", f"Downloading the image model…{mb}",
                                short=f"downloading image model…{pct}"))

    def _on_downloaded(self, state: ClipState) -> None:
        if self._closed:
            return
        self._on_clip(state)
        if state.state == "ready":
            self.clipDownloaded.emit()
        else:
            getattr(self, "notice", self.failed).emit(state.line())  # stays in view until dismissed

    def _on_load_step(self, step: Any) -> None:
        kind, value = step
        if kind == "searcher" and not self._closed and self.searcher is None:
            self.searcher = value
            self.modelsText.emit("Text model ready")
            self.searcherReady.emit(value)
            self.start_writer()

    def _on_models_loaded(self, value: tuple[Any, ClipState]) -> None:
        if self._closed:
            return
        searcher, clip = value
        self.searcher = searcher
        self._on_clip(clip)
        self.modelsText.emit("Text model ready")
        self.searcherReady.emit(searcher)
        self._report_health()
        self.start_writer()

    def _report_health(self) -> None:
        """Say so when the start-up check repaired a damaged index (never silently)."""
        health = getattr(self.runtime, "health", None)
        if health is not None and not getattr(health, "ok", True) and getattr(health, "message", ""):
            self.failed.emit(health.message)

    def _on_text_failed(self, exc: BaseException) -> None:
        from indexer.errors import user_message

        msg = user_message(exc) or f"{type(exc).__name__}: {exc}"
        self.modelsText.emit("Text model unavailable")
        self.failed.emit(f"Search is unavailable: {msg}")

    def can_reload_clip(self) -> bool:
        return callable(getattr(self.runtime, "reset_image_model", None))

    def load_clip(self) -> None:
        """Try CLIP again after the settings changed (download allowed / checkpoint chosen)."""
        reset = getattr(self.runtime, "reset_image_model", None)
        if callable(reset):
            reset()
        self._on_clip(ClipState("loading", "Loading image model…"))
        worker = Worker(lambda: (self.runtime.searcher(), self._clip_state()))
        worker.signals.result.connect(self._on_models_loaded)
        worker.signals.error.connect(lambda exc: self._on_clip(ClipState("missing", str(exc))))
        self.pool.start(worker)

    def _on_clip(self, state: ClipState) -> None:
        self.clip = state
        self.clipChanged.emit(state)

    # -- the writer -------------------------------------------------------------
    def start_writer(self) -> None:
        if self.service is not None or self._closed:
            return
        worker = Worker(self._become_writer)
        worker.signals.result.connect(self._on_writer)
        worker.signals.error.connect(lambda exc: self.failed.emit(f"Indexing could not start: {exc}"))
        self.pool.start(worker)

    def _become_writer(self) -> tuple[str, Any, Any, Any]:
        from indexer.errors import WriterBusy

        try:
            lock = self._lock_factory(self.runtime.paths)
        except WriterBusy as exc:
            holder = getattr(exc, "holder", None) or {}
            pid = holder.get("pid") if isinstance(holder, dict) else None
            pid = pid or _pid_from(str(exc))
            who = f"pid {pid}" if pid else "unknown pid"
            return f"Indexing is done by another Lodestar process ({who})", None, None, None
        service = self.runtime.service(progress=self._bridge)
        watch = None
        if self.settings.folders:
            watch = self._watch_factory(service, self.settings, self.runtime.paths, on_status=self._status_bridge)
            watch.start()
        # close() may run before _on_writer is delivered; it adopts these to stop them.
        self._started_writer = (lock, service, watch)
        return "", lock, service, watch

    def _on_writer(self, value: tuple[str, Any, Any, Any]) -> None:
        message, lock, service, watch = value
        self.writer_message, self.lock, self.service, self.watch = message, lock, service, watch
        if self._closed:
            self._stop_writer()
            return
        self.writerChanged.emit(message)
        if service is not None:
            self.refresh_clip_state()  # starting the indexer may have tried (and failed) a download

    def pause(self, paused: bool) -> None:
        """Pause stops the watcher (cancelling its batch); resume starts it again and reconciles."""
        self.paused = paused
        if paused and self.watch is not None:
            watch, self.watch = self.watch, None
            self.pool.submit(watch.stop)
            self._on_progress(Progress("paused", message="Indexing paused"))
        elif not paused and self.watch is None:
            self._restart_watch()

    def _on_progress(self, p: Progress) -> None:
        if self.paused and p.phase != "paused":
            return
        self.last_progress = p
        self.progress.emit(p)
        if getattr(p, "index_changed", False) or p.phase == "idle":
            self.load_problem_count()

    def load_problem_count(self) -> None:
        worker = Worker(lambda: len(self._read_problems()))
        worker.signals.result.connect(lambda n: self.problemCount.emit(int(n)))
        worker.signals.error.connect(lambda exc: log.info("problem count unavailable: %s", exc))
        self.pool.start(worker)

    def folder_status(self) -> list[FolderStatus]:
        if self.watch is not None:
            return list(self.watch.folder_status())
        try:
            from indexer.watch.watcher import read_watch_status

            return list(read_watch_status(self.runtime.paths))
        except (ImportError, OSError, ValueError):
            return [FolderStatus(path=f) for f in self.folders()]

    def load_folder_status(self) -> None:
        """Folder states plus per-folder file/problem counts read from the store (off-thread)."""
        worker = Worker(self._counted_status)
        worker.signals.result.connect(self.folderStatus)
        worker.signals.error.connect(lambda exc: log.info("folder counts unavailable: %s", exc))
        self.pool.start(worker)

    def _counted_status(self) -> list[FolderStatus]:
        statuses = self.folder_status()
        files = getattr(self.runtime.store, "files", None)
        if not callable(files):
            return statuses
        from indexer.store.tables import is_problem

        counts: dict[str, list[int]] = {}
        for rec in files().values():
            c = counts.setdefault(getattr(rec, "root", ""), [0, 0])
            c[0] += 1
            c[1] += is_problem(rec)  # the same rule as the Problems dialog and the status bar
        for st in statuses:
            st.files, st.failed = counts.get(st.path, [st.files, st.failed])
        return statuses

    # -- problems ----------------------------------------------------------------
    def load_problems(self) -> None:
        worker = Worker(self._read_problems)
        worker.signals.result.connect(self.problemsReady)
        worker.signals.result.connect(lambda rows: self.problemCount.emit(len(rows)))
        worker.signals.error.connect(lambda exc: self.failed.emit(f"Could not read problems: {exc}"))
        self.pool.start(worker)

    def _read_problems(self) -> list[Problem]:
        store = self.runtime.store
        reader = getattr(store, "problems", None)
        if not callable(reader):
            return []
        out = []
        for row in reader():
            if isinstance(row, tuple):
                out.append(Problem(*[str(x) for x in row[:3]]))
            else:
                out.append(Problem(row.path, row.state, row.reason))
        return out

    def retry(self, paths: list[str]) -> Worker | None:
        if self.service is None:
            self.failed.emit(self.writer_message or "Indexing has not started yet.")
            return None
        worker = Worker(self.service.sync_paths, list(paths), force=True)
        worker.signals.finished.connect(self.load_problems)
        return self.pool.start(worker)

    def clear_index(self) -> Worker:
        """Stop the watcher, clear the store, then watch again (which re-indexes everything)."""
        watch, self.watch = self.watch, None

        def clear() -> None:
            if watch is not None:
                watch.stop()  # never clear under a running batch
            self.runtime.store.clear()

        worker = Worker(clear)
        worker.signals.result.connect(lambda _v: self._restart_watch())
        worker.signals.error.connect(lambda exc: self.failed.emit(f"Could not clear the index: {exc}"))
        return self.pool.start(worker)

    def _restart_watch(self) -> None:
        if self._closed or self.paused or self.service is None or not self.settings.folders:
            return
        self.watch = self._watch_factory(self.service, self.settings, self.runtime.paths,
                                         on_status=self._status_bridge)
        self.pool.submit(self.watch.start)

    # -- shutdown ---------------------------------------------------------------
    def _stop_writer(self, timeout: float = 10.0) -> bool:
        """Stop the watcher and release the lock; False if the watcher's threads did not end."""
        stopped = True
        if self.watch is not None:
            stopped = bool(self.watch.stop(timeout=timeout))
            if not stopped:
                log.warning("the indexer did not stop within %.0f s", timeout)
            self.watch = None
        if self.lock is not None and stopped:
            # Only a writer that really stopped gives up the lock (else two could write).
            release = getattr(self.lock, "release", None) or getattr(self.lock, "close", None)
            if callable(release):
                release()
            self.lock = None
        return stopped

    def close(self, timeout: float = 15.0) -> bool:
        """Stop the watcher, await every worker, close the runtime (idempotent).

        Returns False when background indexing threads are still running; the caller
        must then not let the interpreter finalise under them (see ``run_app``).
        """
        if self._closed:
            return self._clean
        self._closed = True
        cancel = getattr(self.watch, "cancel", None)
        if cancel is not None:
            cancel.set()  # a long batch stops between files while we wait
        self.pool.wait()
        if self._started_writer is not None and self.lock is None:
            # The writer started but its result never reached the GUI thread.
            self.lock, self.service, self.watch = self._started_writer
        self._clean = self._stop_writer(timeout)
        if self._clean:
            closer = getattr(self.runtime, "close", None)
            if callable(closer):
                closer()
        return self._clean


def _real_watch_service(*args: Any, **kwargs: Any) -> Any:
    from indexer.watch.watcher import WatchService

    return WatchService(*args, **kwargs)


def take_writer_lock(paths: Any) -> Any:
    """Acquire the data directory's writer lock without waiting (raises WriterBusy)."""
    from indexer.library.writer_lock import WriterLock

    lock = WriterLock(paths, command="lodestar (window)")
    lock.acquire(wait=False, then="search only")
    return lock


def _load_embedder(emb: Any) -> tuple[bool, str]:
    available = getattr(emb, "available", None)
    if callable(available):
        res = available()
        ok, why = res if isinstance(res, tuple) else (bool(res), "CLIP weights missing")
        if not ok:
            return False, why
    try:
        emb.load()
    except Exception as exc:  # noqa: BLE001 - ModelUnavailable and friends carry the reason
        return False, getattr(exc, "reason", "") or str(exc)
    return True, ""


def _pid_from(text: str) -> int | None:
    m = re.search(r"pid\D{0,3}(\d+)", text)
    return int(m.group(1)) if m else None


def suggested_folders(home: str | None = None) -> list[str]:
    home = home or os.path.expanduser("~")
    return [p for p in (os.path.join(home, "Documents"), os.path.join(home, "Pictures")) if os.path.isdir(p)]
