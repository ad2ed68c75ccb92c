"""The window's adapter over the library session: Qt signals and worker threads.

Every question about the index goes to :class:`indexer.library.session.LibrarySession`;
this module only decides *where* it runs (slow calls on
:class:`~desktop.workers.WorkerPool` threads) and turns answers and callbacks into
queued signals. Writer jobs (becoming the writer, pause, resume, clear, starting the
watcher) run one at a time, in the order asked, on their own one-thread pool.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from desktop.workers import ProgressBridge, Worker, WorkerPool
from indexer.errors import user_message
from indexer.library.session import ClipState, LibrarySession, Problem, clip_state_from
from indexer.types import FolderStatus, Progress

log = logging.getLogger(__name__)

__all__ = ["Backend", "ClipState", "Problem", "clip_state_from", "suggested_folders"]


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
    problemCount = Signal(int)  # files needing attention: len(session.problems()), the one count
    notice = Signal(str)  # one line the person must see now (announced download, repaired settings)
    downloadOutcome = Signal(str)  # a download ended: its failure ("" when it worked) replaces its announcement
    wordsProgress = Signal(object)  # indexer.types.OcrProgress: words read in pictures and scans

    def __init__(self, session: LibrarySession, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = WorkerPool(max_threads=2, name="backend", parent=self)
        self.writer_jobs = WorkerPool(max_threads=1, name="backend-writer", parent=self)
        self._bridge = ProgressBridge(self)
        self._bridge.progress.connect(self._on_progress)
        self._status_bridge = ProgressBridge(self)
        self._status_bridge.progress.connect(self.folderStatus)
        # The session calls these from worker threads; the bridges queue them here.
        session.on_progress = self._bridge
        session.on_status = self._status_bridge
        self.session = session
        self.searcher: Any = None
        self.clip = ClipState("loading")
        self.paused = False
        self.last_progress: Progress | None = None
        self._closed = False
        self._clean = True

    # -- what the session owns, for the widgets (and tests) ---------------------------
    @property
    def runtime(self) -> Any:
        return self.session.runtime

    @property
    def settings(self) -> Any:
        return self.session.settings

    @property
    def service(self) -> Any:
        return self.session.service

    @property
    def watch(self) -> Any:
        return self.session.watch

    @property
    def lock(self) -> Any:
        return self.session.lock

    @property
    def writer_message(self) -> str:
        return self.session.writer_message

    def folders(self) -> list[str]:
        return self.session.folders()

    def data_dir(self) -> str:
        return self.session.data_dir

    def save_settings(self) -> None:
        self.session.save_settings()

    def set_start_at_login(self, enabled: bool) -> None:
        self.session.set_start_at_login(enabled)

    # -- folders -------------------------------------------------------------------
    def folder_refusal(self, path: str) -> str:
        """Why ``path`` may not be watched ("" when it may): the session's one rule."""
        return self.session.folder_refusal(path)

    def add_folder(self, path: str) -> bool:
        """Watch ``path``; False (and ``failed`` says why, if it is refused) when nothing changed."""
        change = self.session.add_folder(path)
        if change.refused:
            self.failed.emit(change.refused)
        if not change.added:
            return False
        self._folders_changed()
        return True

    def remove_folder(self, path: str) -> bool:
        if not self.session.remove_folder(path):
            return False
        self._folders_changed()
        return True

    def _folders_changed(self) -> None:
        if self.session.is_writer:
            self._writer_job(self.session.start_watching)  # the first folder: start watching
        elif self.searcher is not None and not self.writer_message:
            self.start_writer()
        self.foldersChanged.emit(self.folders())

    # -- start-up -----------------------------------------------------------------
    def start(self) -> None:
        """Load the models and open the store off the GUI thread."""
        self._route_notices()
        self.modelsText.emit("Loading text model…")
        self._on_clip(ClipState("loading", "Loading image model…"))
        worker = Worker(lambda progress: self.session.load_search(lambda s: progress(("searcher", s))),
                        pass_progress=True)
        worker.signals.progress.connect(self._on_load_step)
        worker.signals.result.connect(self._on_models_loaded)
        worker.signals.error.connect(self._on_text_failed)
        self.pool.start(worker)

    def _route_notices(self) -> None:
        """Repaired settings now; announced downloads when they happen (from worker
        threads: the signal queues them to the GUI thread), before any connection."""
        self.session.route_notices(self.notice.emit)

    def refresh_clip_state(self) -> None:
        """Re-read the image model's state (after the writer tried a download), off-thread."""
        if self.clip.state in ("ready", "downloading"):
            return
        worker = Worker(self.session.image_model_state, load=False)
        worker.signals.result.connect(self._on_clip_refreshed)
        self.pool.start(worker)

    def _on_clip_refreshed(self, state: ClipState) -> None:
        if self._closed or self.clip.state == "downloading":
            return
        news = state.failed and (state.message, state.fix) != (self.clip.message, self.clip.fix)
        self._on_clip(state)
        if news:  # the announced download did not happen: say so where the announcement is
            self.downloadOutcome.emit(state.line())
        elif state.state == "ready":  # it happened: the announcement is over
            self.downloadOutcome.emit("")

    def download_clip(self) -> Worker | None:
        """Fetch the CLIP weights in the background: announced, with progress, and a clear
        outcome (``clipDownloaded`` on success; a failure says why, e.g. no internet)."""
        if self.clip.state == "downloading":
            return None
        self.session.allow_image_download()
        self._on_clip(ClipState("downloading", "Downloading the image model…", short="downloading image model…"))
        worker = Worker(lambda progress: self.session.download_image_model(lambda done, total: progress((done, total))),
                        pass_progress=True)
        worker.signals.progress.connect(self._on_download_progress)
        worker.signals.result.connect(self._on_downloaded)
        worker.signals.error.connect(lambda exc: self._on_downloaded(
            ClipState("missing", f"Image model download failed: {exc}", short="image model download failed")))
        return self.pool.start(worker)

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
        self.downloadOutcome.emit("" if state.state == "ready" else state.line())  # a failure stays until dismissed
        if state.state == "ready":
            self.clipDownloaded.emit()

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
        repaired = self.session.health_problem()
        if repaired:
            self.failed.emit(repaired)

    def _on_text_failed(self, exc: BaseException) -> None:
        msg = user_message(exc) or f"{type(exc).__name__}: {exc}"
        self.modelsText.emit("Text model unavailable")
        self.failed.emit(f"Search is unavailable: {msg}")

    def can_reload_clip(self) -> bool:
        return self.session.can_reload_image_model()

    def load_clip(self) -> None:
        """Try CLIP again after the settings changed (download allowed / checkpoint chosen)."""
        self._on_clip(ClipState("loading", "Loading image model…"))
        worker = Worker(self.session.reload_image_model)
        worker.signals.result.connect(self._on_models_loaded)
        worker.signals.error.connect(lambda exc: self._on_clip(ClipState("missing", str(exc))))
        self.pool.start(worker)

    def _on_clip(self, state: ClipState) -> None:
        self.clip = state
        self.clipChanged.emit(state)

    # -- the writer -------------------------------------------------------------
    def _writer_job(self, fn: Callable[..., Any], *args: Any) -> Worker:
        return self.writer_jobs.start(Worker(fn, *args))

    def start_writer(self) -> None:
        if self.session.is_writer or self._closed:
            return
        worker = self._writer_job(self.session.become_writer)
        worker.signals.result.connect(self._on_writer)
        worker.signals.error.connect(lambda exc: self.failed.emit(f"Indexing could not start: {exc}"))

    def _on_writer(self, message: str) -> None:
        if self._closed:
            return
        self.writerChanged.emit(message)
        if self.session.is_writer:
            self.refresh_clip_state()  # starting the indexer may have tried (and failed) a download

    def pause(self, paused: bool) -> None:
        """Pause stops the watcher (cancelling its batch); resume starts it again and reconciles."""
        self.paused = paused
        if paused:
            self._writer_job(self.session.pause)
            self._on_progress(Progress("paused", message="Indexing paused"))
        else:
            self._writer_job(self.session.resume)

    def _on_progress(self, p: Progress) -> None:
        if self.paused and p.phase != "paused":
            return
        self.last_progress = p
        self.progress.emit(p)
        if getattr(p, "index_changed", False) or p.phase == "idle":
            self.load_problem_count()

    def load_problem_count(self) -> None:
        worker = Worker(lambda: len(self.session.problems()))
        worker.signals.result.connect(lambda n: self.problemCount.emit(int(n)))
        worker.signals.error.connect(lambda exc: log.info("problem count unavailable: %s", exc))
        self.pool.start(worker)

    def folder_status(self) -> list[FolderStatus]:
        return self.session.folder_status()

    def load_folder_status(self) -> None:
        """Folder states plus per-folder file/problem counts read from the store (off-thread)."""
        worker = Worker(self.session.counted_folder_status)
        worker.signals.result.connect(self.folderStatus)
        worker.signals.error.connect(lambda exc: log.info("folder counts unavailable: %s", exc))
        self.pool.start(worker)

    def load_words_progress(self) -> None:
        """How far reading the words in pictures and scans has come (off-thread: it opens the index)."""
        worker = Worker(self.session.words_progress)
        worker.signals.result.connect(self.wordsProgress)
        worker.signals.error.connect(lambda exc: log.info("words-in-pictures counts unavailable: %s", exc))
        self.pool.start(worker)

    # -- problems ----------------------------------------------------------------
    def load_problems(self) -> None:
        worker = Worker(self.session.problems)
        worker.signals.result.connect(self.problemsReady)
        worker.signals.result.connect(lambda rows: self.problemCount.emit(len(rows)))
        worker.signals.error.connect(lambda exc: self.failed.emit(f"Could not read problems: {exc}"))
        self.pool.start(worker)

    def retry(self, paths: list[str]) -> Worker | None:
        if not self.session.is_writer:
            self.failed.emit(self.writer_message or "Indexing has not started yet.")
            return None
        worker = Worker(self.session.retry, list(paths))
        worker.signals.finished.connect(self.load_problems)
        return self.pool.start(worker)

    def clear_index(self) -> Worker:
        """Stop the watcher, clear the store, then watch again (which re-indexes everything)."""
        worker = self._writer_job(self.session.clear_index)
        worker.signals.error.connect(lambda exc: self.failed.emit(f"Could not clear the index: {exc}"))
        return worker

    # -- shutdown ---------------------------------------------------------------
    def close(self, timeout: float = 15.0) -> bool:
        """Await every worker, then close the session (idempotent).

        Returns False when background indexing threads are still running; the caller
        must then not let the interpreter finalise under them (see ``run_app``).
        """
        if self._closed:
            return self._clean
        self._closed = True
        self.session.cancel_batch()  # a long batch stops between files while we wait
        self.writer_jobs.wait()
        self.pool.wait()
        self._clean = self.session.close(timeout)
        return self._clean


def suggested_folders(home: str | None = None) -> list[str]:
    home = home or os.path.expanduser("~")
    return [p for p in (os.path.join(home, "Documents"), os.path.join(home, "Pictures")) if os.path.isdir(p)]
