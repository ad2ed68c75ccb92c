"""MainWindow: composes search bar, filters, results, preview and status; routes intents.

It holds no search logic (that is :class:`SearchController`) and no runtime logic
(that is :class:`Backend`); it decides what to show.
"""

from __future__ import annotations

import logging
import os

from PySide6.QtCore import QBuffer, QByteArray, QEvent, QIODevice, QMimeData, QObject, Qt, QTimer, Signal
from PySide6.QtGui import (
    QCloseEvent,
    QDragEnterEvent,
    QDragLeaveEvent,
    QDropEvent,
    QGuiApplication,
    QIcon,
    QImage,
    QKeyEvent,
    QKeySequence,
    QPixmap,
    QShortcut,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop.backend import Backend, ClipState
from desktop.filter_bar import FilterBar
from desktop.folder_dialog import choose_folder
from desktop.icons import app_icon, type_icon
from desktop.notice_bar import NoticeBar
from desktop.opener import Opener, OpenRefused
from desktop.preview import PreviewPane
from desktop.results_model import ResultsModel
from desktop.results_panel import ResultsPanel
from desktop.search_bar import SearchBar
from desktop.search_controller import ImageQuery, SearchController
from desktop.status_panel import StatusPanel
from desktop.thumbnails import ThumbnailCache
from indexer.library.session import QUERY_TOO_LONG, kind_for_path
from indexer.types import Progress, SearchResponse

log = logging.getLogger(__name__)

DEFAULT_SIZE = (1100, 720)


def image_from_mime(mime: QMimeData) -> tuple[str, bytes]:
    """(local image path, "") or ("", PNG bytes) from dropped/pasted data; ("", b"") if none."""
    if mime.hasUrls():
        for url in mime.urls():
            if url.isLocalFile():
                path = url.toLocalFile()
                if kind_for_path(path) == "image" and os.path.isfile(path):
                    return path, b""
    if mime.hasImage():
        image = mime.imageData()
        if isinstance(image, QPixmap):
            image = image.toImage()
        if isinstance(image, QImage) and not image.isNull():
            return "", qimage_to_png(image)
    return "", b""


def qimage_to_png(image: QImage) -> bytes:
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buf, "PNG")  # type: ignore[call-overload]  # PySide6 takes the format as str; its stubs say bytes
    buf.close()
    return bytes(data.data())


def settings_shortcuts() -> list[QKeySequence]:
    """The platform's Preferences key plus Ctrl+, (Preferences is empty on Linux)."""
    keys = [k for k in QKeySequence.keyBindings(QKeySequence.StandardKey.Preferences) if not k.isEmpty()]
    comma = QKeySequence("Ctrl+,")
    return keys + ([comma] if comma not in keys else [])


class MainWindow(QMainWindow):
    settingsRequested = Signal()
    problemsRequested = Signal()
    duplicatesRequested = Signal()
    mapRequested = Signal()
    quitRequested = Signal()
    restartRequested = Signal()

    def __init__(self, backend: Backend, controller: SearchController, opener: Opener,
                 thumbnails: ThumbnailCache, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.backend = backend
        self.controller = controller
        self.opener = opener
        self.thumbnails = thumbnails
        self.tray_available = False  # set by the app when a tray icon exists
        self._indexing: Progress | None = None
        self._refreshing = False  # the next response re-shows the same query (keep selection)
        self.setWindowTitle("Lodestar")
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.resize(*DEFAULT_SIZE)

        self.search_bar = SearchBar(self)
        self.filter_bar = FilterBar(self)
        self.filter_bar.set_folders(backend.folders())
        self.model = ResultsModel(thumbnails, self)
        self.results = ResultsPanel(self.model, self)
        self.preview = PreviewPane(thumbnails, self)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.addWidget(self.results)
        self.splitter.addWidget(self.preview)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([760, 320])
        self.splitter.setChildrenCollapsible(False)
        central = QWidget(self)
        central.setObjectName("central")
        lay = QVBoxLayout(central)
        lay.setContentsMargins(10, 10, 10, 4)
        self.notices = NoticeBar(self)  # announced downloads, repaired settings
        lay.addWidget(self.notices)
        lay.addWidget(self.search_bar)
        lay.addWidget(self.filter_bar)
        lay.addWidget(self.splitter, 1)
        self.setCentralWidget(central)
        self.status = StatusPanel(self)
        self.statusBar().addWidget(self.status, 1)
        self.statusBar().setSizeGripEnabled(True)
        self._build_menu()
        self._wire()
        self.refresh_empty_state()
        self.search_bar.field.setFocus()

    # -- construction ------------------------------------------------------------
    def _build_menu(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        act = file_menu.addAction("Add folder…")
        act.triggered.connect(self.add_folder)
        act = file_menu.addAction("Search by image…")
        act.triggered.connect(self.search_bar.choose_image)
        file_menu.addSeparator()
        act = file_menu.addAction("Folders && settings…")
        act.setShortcuts(settings_shortcuts())
        act.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        self.settings_action = act
        act.triggered.connect(self.settingsRequested)
        act = file_menu.addAction("Problems…")
        act.triggered.connect(self.problemsRequested)
        act = file_menu.addAction("Duplicates…")
        act.setToolTip("Find identical files, pictures saved again, similar shots and documents in another form")
        act.triggered.connect(self.duplicatesRequested)
        act = file_menu.addAction("Map…")
        act.setShortcut(QKeySequence("Ctrl+M"))
        act.setToolTip("Your whole library laid out by meaning: related files side by side, regions named")
        act.triggered.connect(self.mapRequested)
        file_menu.addSeparator()
        act = file_menu.addAction("Quit")
        act.setShortcut(QKeySequence.StandardKey.Quit)
        act.triggered.connect(self.quitRequested)

    def _wire(self) -> None:
        c, b = self.controller, self.backend
        self.search_bar.textEdited.connect(c.set_text)
        self.search_bar.textEdited.connect(lambda _t: self.refresh_empty_state())
        self.search_bar.textEdited.connect(self.filter_bar.sync_from_query)
        self.search_bar.imageChosen.connect(c.set_image_path)
        self.search_bar.imageRemoved.connect(c.clear_image)
        self.filter_bar.filtersChanged.connect(c.set_filters)
        self.filter_bar.sortChanged.connect(self.results.set_sort)
        c.responseReady.connect(self.show_response)
        c.cleared.connect(self.refresh_empty_state)
        c.failed.connect(self.show_error)
        c.imageQueryChanged.connect(self._on_image_query)
        self.results.openRequested.connect(self.open_path)
        self.results.revealRequested.connect(self.reveal_path)
        self.results.copyRequested.connect(self.copy_path)
        self.results.similarRequested.connect(self.find_similar)
        b.clipDownloaded.connect(self._on_clip_downloaded)
        b.problemCount.connect(self.status.set_problem_count)
        self.results.currentChanged.connect(self.preview.show_result)
        self.status.pauseToggled.connect(b.pause)
        self.status.problemsRequested.connect(self.problemsRequested)
        self.status.clipDownloadRequested.connect(self.download_clip)
        self.status.clipFileRequested.connect(self.choose_clip_file)
        b.modelsText.connect(self._on_models_text)
        b.searcherReady.connect(c.set_searcher)
        b.searcherReady.connect(lambda _s: self.refresh_empty_state())
        b.clipChanged.connect(self._on_clip)
        b.progress.connect(self._on_progress)
        b.writerChanged.connect(self._on_writer)
        b.foldersChanged.connect(self._on_folders)
        b.failed.connect(self.show_error)
        b.notice.connect(self.notices.show_notice)
        b.downloadOutcome.connect(self.notices.show_outcome)

        for seq in ("Ctrl+K", QKeySequence.StandardKey.Find):
            QShortcut(QKeySequence(seq), self, self.search_bar.focus_field)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.clear_query)
        paste = QShortcut(QKeySequence.StandardKey.Paste, self, self.paste)
        paste.setContext(Qt.ShortcutContext.WindowShortcut)
        self.search_bar.field.installEventFilter(self)

    # -- queries -------------------------------------------------------------------
    def clear_query(self) -> None:
        self.search_bar.clear()
        self.controller.clear()
        self.search_bar.focus_field()

    def paste(self) -> bool:
        """Ctrl+V: an image on the clipboard becomes the query image."""
        mime = QGuiApplication.clipboard().mimeData()
        if mime is None:
            return False
        path, data = image_from_mime(mime)
        if path:
            self.controller.set_image_path(path)
        elif data:
            self.controller.set_image_data(data)
        else:
            return False
        return True

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if obj is self.search_bar.field and event.type() == QEvent.Type.KeyPress:
            key: QKeyEvent = event  # type: ignore[assignment]
            if key.matches(QKeySequence.StandardKey.Paste) and self.paste():
                return True  # image pasted; otherwise the field pastes text as usual
            if key.key() == Qt.Key.Key_Down and self.results.showing_results():
                self.results.focus_results()
                return True
            if key.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.results.showing_results():
                r = self.results.current_result()
                if r is not None:
                    if key.modifiers() & Qt.KeyboardModifier.ControlModifier:
                        self.reveal_path(r.path)
                    else:
                        self.open_path(r.path)
                    return True
        return super().eventFilter(obj, event)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        mime = event.mimeData()
        if mime.hasImage() or any(u.isLocalFile() and kind_for_path(u.toLocalFile()) == "image"
                                  for u in mime.urls()):
            event.acceptProposedAction()
            self.set_drop_highlight(True)
        else:
            event.ignore()

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:
        self.set_drop_highlight(False)
        super().dragLeaveEvent(event)

    def set_drop_highlight(self, on: bool) -> None:
        """A dashed frame round the window while an image is dragged over it."""
        central = self.centralWidget()
        if central is None:
            return
        central.setProperty("dropTarget", on)
        central.setStyleSheet("#central[dropTarget=\"true\"] { border: 2px dashed palette(highlight);"
                              " border-radius: 6px; }" if on else "")

    def drop_highlighted(self) -> bool:
        central = self.centralWidget()
        return central is not None and bool(central.property("dropTarget"))

    def dropEvent(self, event: QDropEvent) -> None:
        self.set_drop_highlight(False)
        path, data = image_from_mime(event.mimeData())
        if path:
            self.controller.set_image_path(path)
        elif data:
            self.controller.set_image_data(data, "Dropped image")
        else:
            event.ignore()
            return
        event.acceptProposedAction()

    def _on_image_query(self, query: ImageQuery | None) -> None:
        icon: QIcon | None = None
        if query is not None:
            pm = self.thumbnails.pixmap(query.thumbnail) if query.thumbnail else None  # our own PNG
            if query.data:
                img = QImage.fromData(query.data, "PNG")  # type: ignore[arg-type]  # our own PNG; str, as above
                icon = QIcon(QPixmap.fromImage(img)) if not img.isNull() else None
            elif pm is not None:
                icon = QIcon(pm)
            else:
                kind = "image" if kind_for_path(query.path) == "image" else "text"
                icon = type_icon(kind)  # never decode the person's file with Qt
            # The chip is the query now: the old words would only mislead.
            self.search_bar.field.blockSignals(True)
            self.search_bar.clear()
            self.search_bar.field.blockSignals(False)
            if not query.similar:
                self.results.select_tab("images")
        self.search_bar.chip.show_query(query, icon)
        if query is None:
            self.refresh_empty_state()

    def find_similar(self, path: str) -> None:
        current = self.results.current_result()
        thumb = current.thumbnail if current is not None and current.path == path else ""
        self.controller.find_similar(path, thumb)

    # -- showing ------------------------------------------------------------------
    def show_response(self, response: SearchResponse) -> None:
        # The image model's state lives in the status bar (one place), never per query.
        self.preview.show_scores = response.ranked
        if response.results:
            self.results.set_response(response, keep_position=self._refreshing)
            self._refreshing = False
            if response.message:  # beside results, only what the query ignored (after:2025-13)
                self.statusBar().showMessage(response.message, 10_000)
            return
        self._refreshing = False
        actions = []
        title = QUERY_TOO_LONG if response.message.startswith(QUERY_TOO_LONG) else "No good match"
        text = response.message if response.message and response.message != "No good match." else \
            "Try other words, or check the filters."
        clip = self.backend.clip
        if self.controller.state.image is not None and clip.state != "ready":
            title = "Image search unavailable"
            text = clip.line()
            if clip.state == "missing":
                actions = [("Download", self.download_clip), ("Choose file…", self.choose_clip_file)]
        self.results.show_empty(title, text, actions)

    def refresh_results(self) -> None:
        """The index changed: show the current query's results again, quietly."""
        if not self.controller.state.is_empty() and self.controller.has_searcher():
            self._refreshing = True
            self.controller.refresh()

    def refresh_empty_state(self) -> None:
        if not self.controller.state.is_empty() and self.controller.has_searcher():
            return  # a response is on its way
        if not self.backend.folders():
            self.results.show_empty("No folders yet",
                                    "Choose the folders Lodestar should search. Everything stays on this computer.",
                                    [("Add folder…", self.add_folder)])
        elif not self.controller.has_searcher():
            self.results.show_empty("Loading text model…", "You can start typing; results appear when it is ready.")
        elif self._indexing is not None and self._indexing.phase not in ("idle", "paused", "reading"):
            # (while words in pictures are read every file is already searchable)
            p = self._indexing
            self.results.show_empty("Indexing your files…",
                                    "You can already search what has been indexed.")
            self.results.empty.set_progress(p.done, p.total)
        else:
            self.results.show_empty("Type to search",
                                    "Describe what you are looking for, drop or paste an image, "
                                    "or use filters like type:pdf, in:Folder, after:2024-01-01.")

    def show_error(self, message: str) -> None:
        self.statusBar().showMessage(message, 10_000)

    def _on_models_text(self, text: str) -> None:
        self.status.set_models_text(self._models_summary(text))

    def _models_summary(self, text_state: str) -> str:
        clip = self.backend.clip
        clip_text = clip.short or {"loading": "loading image model…", "ready": "image search ready",
                                   "downloading": "downloading image model…"}.get(clip.state, "image search unavailable")
        return f"{text_state} · {clip_text}"

    def _on_clip(self, state: ClipState) -> None:
        text = "Text model ready" if self.controller.has_searcher() else "Loading text model…"
        self.status.set_models_text(self._models_summary(text))
        self.status.show_clip_fix(state.state == "missing")
        if state.state in ("missing", "downloading"):
            self.status.models_label.setToolTip(state.line())

    def _on_progress(self, p: Progress) -> None:
        self._indexing = p
        if getattr(p, "index_changed", False):
            self.refresh_results()  # a file was added, changed or deleted under the results
        self.status.set_progress(p)
        if not self.results.showing_results() and self.controller.state.is_empty():
            self.refresh_empty_state()

    def _on_writer(self, message: str) -> None:
        if message:
            self.status.set_writer_text(message)
            self.status.pause_button.hide()

    def _on_folders(self, folders: list[str]) -> None:
        self.filter_bar.set_folders(folders)
        self.refresh_empty_state()

    # -- actions ------------------------------------------------------------------
    def add_folder(self) -> None:
        path = choose_folder(self, "Add a folder to search")
        if path:
            self.backend.add_folder(path)

    def _elsewhere(self, path: str) -> bool:
        """A result of another computer (a shared library) opens only there: say so instead."""
        r = self.results.current_result()
        if r is None or r.path != path or not r.computer:
            return False
        self.show_error(f"{r.name or os.path.basename(path)} is on {r.computer}: open it there. "
                        "Its passage or picture is shown here.")
        return True

    def open_path(self, path: str) -> None:
        if self._elsewhere(path):
            return
        try:
            self.opener.open(path)
        except OpenRefused as exc:
            self.show_error(str(exc))

    def reveal_path(self, path: str) -> None:
        if self._elsewhere(path):
            return
        try:
            self.opener.reveal(path)
        except OpenRefused as exc:
            self.show_error(str(exc))

    def copy_path(self, path: str) -> None:
        QGuiApplication.clipboard().setText(path)
        self.statusBar().showMessage("Path copied", 3000)

    def download_clip(self) -> None:
        """Download in the background (announced, with progress in the status bar); only a
        download that worked offers to use the model."""
        if self.backend.download_clip() is None and self.backend.clip.state != "downloading":
            self.backend.settings.allow_download = True
            self.backend.save_settings()
            self._reload_clip()

    def _on_clip_downloaded(self) -> None:
        self._reload_clip()

    def choose_clip_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose CLIP weights", os.path.expanduser("~"),
                                              "Safetensors (*.safetensors)")
        if path:
            self.backend.settings.clip_checkpoint = path
            self.backend.save_settings()
            self._reload_clip()

    def _reload_clip(self) -> None:
        if self.backend.can_reload_clip():
            self.backend.load_clip()
            return
        # The store is keyed by the image model, so new weights mean reopening everything.
        answer = QMessageBox.question(
            self, "Image model", "Lodestar needs to restart to load the image model. Restart now?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes)
        if answer == QMessageBox.StandardButton.Yes:
            self.restartRequested.emit()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.tray_available and self.backend.settings.keep_running_in_tray:
            # Keep watching in the background; the tray menu offers Quit.
            event.ignore()
            self.hide()
            return
        event.accept()
        QTimer.singleShot(0, self.quitRequested.emit)
