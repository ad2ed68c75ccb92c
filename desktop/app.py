"""Composition root of the window: QApplication → library session → backend/controller → MainWindow.

The window is shown before anything heavy happens: models load and the store opens
on worker threads (:class:`desktop.backend.Backend` over the session), the indexer
and watcher run in background threads of this process when we hold the writer lock.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from PySide6.QtCore import QObject, QProcess, QSettings, Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from desktop.backend import Backend
from desktop.icons import app_icon
from desktop.main_window import MainWindow
from desktop.opener import Opener
from desktop.search_controller import SearchController
from desktop.thumbnails import ThumbnailCache
from indexer.library.session import ConfigError, LibrarySession, open_session

log = logging.getLogger(__name__)

ORG = "Lodestar"
APP = "Lodestar"


@dataclass
class Parts:
    """Everything the composition root built, so it can be shut down in order."""

    window: MainWindow
    controller: SearchController
    backend: Backend
    thumbnails: ThumbnailCache
    opener: Opener
    dialogs: dict[str, Any] = field(default_factory=dict)  # name -> its open dialog (each its own class)
    _closed: bool = False
    _clean: bool = True

    def shutdown(self) -> bool:
        """Cancel and await every background job, stop the watcher, close the runtime.

        False when the indexer's threads could not be stopped in time.
        """
        if self._closed:
            return self._clean
        self._closed = True
        self.controller.close()
        self.thumbnails.close()
        duplicates = self.dialogs.get("duplicates")
        if duplicates is not None:
            duplicates.pool.wait()  # its scan reads the index the backend is about to close
        map_view = self.dialogs.get("map")
        if map_view is not None:
            map_view.wait()  # a layout or a query reads the index the backend is about to close
        self._clean = self.backend.close()
        for dlg in self.dialogs.values():
            dlg.close()
        return self._clean


def build_window(session: LibrarySession, *, open_url: Callable[..., bool] | None = None,
                 run: Callable[[list[str]], None] | None = None, platform: str = sys.platform) -> Parts:
    """Wire the window to a library session (on a real or a fake runtime) and start loading
    in the background."""
    backend = Backend(session)
    controller = SearchController()
    thumbnails = ThumbnailCache(str(session.paths.thumbnails))
    opener_kwargs: dict[str, Any] = {"platform": platform}
    if open_url is not None:
        opener_kwargs["open_url"] = open_url
    if run is not None:
        opener_kwargs["run"] = run
    opener = Opener(backend.folders, **opener_kwargs)
    window = MainWindow(backend, controller, opener, thumbnails)
    parts = Parts(window, controller, backend, thumbnails, opener)
    window.settingsRequested.connect(lambda: show_settings(parts))
    window.problemsRequested.connect(lambda: show_problems(parts))
    window.duplicatesRequested.connect(lambda: show_duplicates(parts))
    window.mapRequested.connect(lambda: show_map(parts))
    backend.start()
    return parts


def show_settings(parts: Parts) -> None:
    from desktop.settings_dialog import SettingsDialog

    dlg = parts.dialogs.get("settings")
    if dlg is None:
        dlg = SettingsDialog(parts.backend, parts.window)
        parts.dialogs["settings"] = dlg
    dlg.refresh()
    dlg.show()
    dlg.raise_()


def show_problems(parts: Parts) -> None:
    from desktop.problems_dialog import ProblemsDialog

    dlg = parts.dialogs.get("problems")
    if dlg is None:
        dlg = ProblemsDialog(parts.backend, parts.opener, parts.window)
        parts.dialogs["problems"] = dlg
    dlg.reload()
    dlg.show()
    dlg.raise_()


def show_duplicates(parts: Parts) -> None:
    """The Duplicates view; the first opening scans (on its own worker thread)."""
    from desktop.duplicates_view import DuplicatesView

    dlg = parts.dialogs.get("duplicates")
    if dlg is None:
        dlg = DuplicatesView(parts.backend.session, parts.opener, parts.thumbnails, parts.window)
        parts.dialogs["duplicates"] = dlg
        dlg.scan()
    dlg.show()
    dlg.raise_()


def show_map(parts: Parts) -> None:
    """The Map view; it reads the stored map (or lays one out) on its own worker thread.
    A search in the window is lit up on the map as it opens."""
    from desktop.map_view import MapView

    dlg = parts.dialogs.get("map")
    if dlg is None:
        dlg = MapView(parts.backend.session, parts.opener, parts.thumbnails, parts.window)
        parts.dialogs["map"] = dlg
        parts.backend.progress.connect(dlg.index_changed)
        words = parts.window.search_bar.text().strip()
        if words:
            dlg.query.setText(words)
    dlg.start()
    dlg.show()
    dlg.raise_()


class _BugReporter(QObject):
    """Shows uncaught exceptions from any thread on the GUI thread."""

    bug = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.bug.connect(self._show, Qt.ConnectionType.QueuedConnection)
        self._shown = 0

    def _show(self, text: str) -> None:
        self._shown += 1
        if self._shown > 3:
            return  # a bug in a loop must not bury the person in dialogs
        box = QMessageBox(QMessageBox.Icon.Critical, "Lodestar hit a bug",
                          "Something went wrong inside Lodestar. It was written to the log.")
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setDetailedText(text)
        box.exec()


def install_excepthooks(reporter: _BugReporter) -> None:
    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        log.error("uncaught exception:\n%s", text)
        reporter.bug.emit(text)

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        hook(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback)

    sys.excepthook = hook
    threading.excepthook = thread_hook


def _setup_file_log(logs_dir: str) -> None:
    from logging.handlers import RotatingFileHandler

    try:
        os.makedirs(logs_dir, mode=0o700, exist_ok=True)
        handler = RotatingFileHandler(os.path.join(logs_dir, "lodestar.log"), maxBytes=2_000_000, backupCount=3,
                                      encoding="utf-8")
    except OSError as exc:
        log.warning("no log file: %s", exc)
        return
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    if root.level > logging.INFO or root.level == logging.NOTSET:
        # The file gets INFO; the console keeps the verbosity the CLI chose.
        for h in root.handlers:
            if h.level == logging.NOTSET:
                h.setLevel(root.level or logging.WARNING)
        root.setLevel(logging.INFO)
    root.addHandler(handler)


def _quit_on_signals(app: QApplication) -> Callable[[], None]:
    """Ctrl+C / SIGTERM quit cleanly (watcher stopped, lock released) instead of dying mid-batch.

    Returns a function that restores the previous handlers and stops the wake-up timer.
    """
    import signal

    saved: dict[int, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            saved[sig] = signal.signal(sig, lambda *_a: app.quit())
        except (ValueError, OSError):  # not the main thread / not supported here
            break
    # Python runs signal handlers only when it gets control; an idle timer gives it that.
    timer = QTimer(app)
    timer.timeout.connect(lambda: None)
    timer.start(250)

    def restore() -> None:
        timer.stop()
        timer.deleteLater()
        for sig, handler in saved.items():
            signal.signal(sig, handler)

    return restore


def restore_geometry(window: MainWindow) -> None:
    qs = QSettings(ORG, APP)
    geom = qs.value("main/geometry")
    if geom is not None:
        window.restoreGeometry(geom)
    clamp_to_screen(window)
    split = qs.value("main/splitter")
    if split is not None:
        window.splitter.restoreState(split)


def clamp_to_screen(window: QWidget) -> None:
    """Keep a restored (or grown) window inside the available screen area."""
    screen = window.screen() or QApplication.primaryScreen()
    if screen is None:
        return
    avail = screen.availableGeometry()
    if avail.isEmpty():
        return
    w, h = min(window.width(), avail.width()), min(window.height(), avail.height())
    if (w, h) != (window.width(), window.height()):
        window.resize(w, h)
    x = min(max(window.x(), avail.left()), avail.right() - w + 1)
    y = min(max(window.y(), avail.top()), avail.bottom() - h + 1)
    if (x, y) != (window.x(), window.y()):
        window.move(x, y)


def save_geometry(window: MainWindow) -> None:
    qs = QSettings(ORG, APP)
    qs.setValue("main/geometry", window.saveGeometry())
    qs.setValue("main/splitter", window.splitter.saveState())


def run_app(data_dir: str | os.PathLike[str] | None = None) -> int:
    """Open the window; returns the exit code."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    from desktop.pyside_none import keep_none_alive

    keep_none_alive()  # a PySide6 abi3 wheel on Python 3.11 would abort a long session
    app.setApplicationName(APP)
    app.setOrganizationName(ORG)
    app.setApplicationDisplayName(APP)
    app.setDesktopFileName("lodestar")
    app.setWindowIcon(app_icon())
    reporter = _BugReporter(app)
    install_excepthooks(reporter)

    try:
        session = open_session(data_dir)  # paths + settings only; store and models open lazily
    except ConfigError as exc:
        QMessageBox.critical(None, APP, str(exc))
        return 2
    _setup_file_log(str(session.paths.logs))

    if not session.settings.welcome_done:
        from desktop.welcome_dialog import WelcomeDialog

        watched = session.folders()  # set up with the CLI before the window was first opened
        dlg = WelcomeDialog(session.data_dir, watched=watched)
        if dlg.exec():
            for f in dlg.chosen_folders():
                if f in watched:
                    continue
                refused = session.add_folder(f).refused  # the same rule as everywhere
                if refused:
                    log.warning("not watching %s", refused)
            session.settings.welcome_done = True
            session.save_settings()

    parts = build_window(session)
    window = parts.window
    restore_geometry(window)

    from desktop.tray import Tray

    tray = Tray.create(parts, app)
    if tray is not None:
        window.tray_available = True
        app.setQuitOnLastWindowClosed(False)  # closing the window may just hide it; Quit is in the tray

    restart: list[bool] = []
    window.quitRequested.connect(app.quit)
    restore_signals = _quit_on_signals(app)
    def restart_later() -> None:
        restart.append(True)
        app.quit()

    window.restartRequested.connect(restart_later)
    window.show()
    try:
        code = app.exec()
    finally:
        restore_signals()
        save_geometry(window)
        window.hide()  # stopping the indexer can take a while; don't leave a frozen window
        if tray is not None:
            tray.hide()
        clean = parts.shutdown()  # releases the writer lock before a restarted process wants it
    if restart and clean:
        argv = list(getattr(sys, "orig_argv", [sys.executable, *sys.argv]))
        log.info("restarting: %s", argv)
        QProcess.startDetached(argv[0], argv[1:])
    if not clean:
        # An indexing thread is still inside native code (torch or ONNX Runtime); letting
        # the interpreter finalise under it can abort the process. Commits are atomic, so
        # leave now.
        log.error("exiting with the indexer still running; the next start resumes it")
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(code))
    return int(code)
