"""Results: tabs All / Documents / Images with counts, a list and a thumbnail grid.

The panel only shows things and emits intents (open, reveal, copy, find similar,
current changed); the main window routes them.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QModelIndex, QObject, QPoint, QSize, Qt, Signal
from PySide6.QtGui import QAction, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListView,
    QMenu,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.results_delegate import DocumentDelegate
from desktop.results_model import PathRole, ResultRole, ResultsModel, ResultsProxy
from indexer.types import SearchResponse, SearchResult

TABS = (("all", "All"), ("documents", "Documents"), ("images", "Images"))


class EmptyState(QWidget):
    """A centred title, explanation, optional progress and action buttons."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.addStretch(1)
        self.title = QLabel(self)
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.35)
        self.title.setFont(font)
        # Messages can be long (a model's failure reason): wrap, never widen the window.
        self.title.setWordWrap(True)
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.text = QLabel(self)
        self.text.setTextFormat(Qt.TextFormat.PlainText)
        self.text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.text.setWordWrap(True)
        self.text.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.progress = QProgressBar(self)
        self.progress.setMaximumWidth(360)
        self.progress.hide()
        self.buttons = QHBoxLayout()
        self.buttons.addStretch(1)
        self.buttons.addStretch(1)
        lay.addWidget(self.title)
        lay.addWidget(self.text)
        lay.addWidget(self.progress, 0, Qt.AlignmentFlag.AlignHCenter)
        lay.addLayout(self.buttons)
        lay.addStretch(2)
        self._buttons: list[QPushButton] = []

    def show_state(self, title: str, text: str = "",
                   actions: list[tuple[str, Callable[[], None]]] | None = None) -> None:
        self.title.setText(title)
        self.text.setText(text)
        self.text.setVisible(bool(text))
        for b in self._buttons:
            self.buttons.removeWidget(b)
            b.deleteLater()
        self._buttons = []
        for i, (label, fn) in enumerate(actions or []):
            b = QPushButton(label, self)
            b.setAccessibleName(label.rstrip("…"))
            b.clicked.connect(fn)
            self.buttons.insertWidget(1 + i, b)
            self._buttons.append(b)

    def set_progress(self, done: int, total: int) -> None:
        self.progress.setVisible(total > 0)
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(min(done, total))

    def button_labels(self) -> list[str]:
        return [b.text() for b in self._buttons]

    def click(self, label: str) -> None:
        for b in self._buttons:
            if b.text() == label:
                b.click()
                return
        raise KeyError(label)


class ResultsPanel(QWidget):
    openRequested = Signal(str)
    revealRequested = Signal(str)
    copyRequested = Signal(str)
    similarRequested = Signal(str)
    currentChanged = Signal(object)  # SearchResult | None

    def __init__(self, model: ResultsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.stack = QStackedWidget(self)
        self.empty = EmptyState(self)
        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        self.tabs.setAccessibleName("Result kinds")
        self.proxies: dict[str, ResultsProxy] = {}
        self.views: dict[str, QListView] = {}
        self._delegate = DocumentDelegate(self)
        for key, label in TABS:
            proxy = ResultsProxy(key, self)
            proxy.setSourceModel(model)
            view = QListView(self)
            view.setModel(proxy)
            view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
            view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
            view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
            view.setAccessibleName(f"{label} results")
            view.setUniformItemSizes(True)
            if key == "images":
                view.setViewMode(QListView.ViewMode.IconMode)
                view.setIconSize(QSize(128, 128))
                view.setGridSize(QSize(156, 164))
                view.setSpacing(8)
                view.setResizeMode(QListView.ResizeMode.Adjust)
                view.setMovement(QListView.Movement.Static)
                view.setWordWrap(False)
                view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
            else:
                view.setItemDelegate(self._delegate)
                view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
            view.activated.connect(lambda idx: self.openRequested.emit(idx.data(PathRole)))
            view.customContextMenuRequested.connect(lambda pos, v=view: self._context_menu(v, pos))
            view.selectionModel().currentChanged.connect(self._on_current)
            view.installEventFilter(self)
            self.proxies[key] = proxy
            self.views[key] = view
            self.tabs.addTab(view, label)
        self.tabs.currentChanged.connect(lambda _i: self._on_current(self.current_view().currentIndex()))
        self.stack.addWidget(self.tabs)
        self.stack.addWidget(self.empty)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.stack)
        self.show_empty("Type to search", "")

    # -- content -------------------------------------------------------------
    def set_response(self, response: SearchResponse, keep_position: bool = False) -> None:
        """Show a response; ``keep_position`` (the same query run again after the index
        changed) keeps the selected file and the scroll position where they still apply."""
        kept = self._position() if keep_position and self.showing_results() else None
        self.model.set_results(response.results, ranked=getattr(response, "ranked", True))
        counts = {
            "all": len(response.results),
            "documents": sum(1 for r in response.results if r.kind != "image"),
            "images": sum(1 for r in response.results if r.kind == "image"),
        }
        for i, (key, label) in enumerate(TABS):
            self.tabs.setTabText(i, f"{label} ({counts[key]})")
        if not response.results:
            return
        self.stack.setCurrentWidget(self.tabs)
        # Land on the tab that has something when the current one is empty.
        if counts[self.current_tab()] == 0:
            self.tabs.setCurrentIndex(0)
        view = self.current_view()
        if kept is not None:
            self._restore(*kept)
        if view.model().rowCount() and not view.currentIndex().isValid():
            view.setCurrentIndex(view.model().index(0, 0))

    def _position(self) -> tuple[str, dict[str, int]]:
        r = self.current_result()
        return (r.path if r is not None else "",
                {k: v.verticalScrollBar().value() for k, v in self.views.items()})

    def _restore(self, path: str, scroll: dict[str, int]) -> None:
        for key, view in self.views.items():
            proxy = self.proxies[key]
            if path and key == self.current_tab():
                for row in range(proxy.rowCount()):
                    idx = proxy.index(row, 0)
                    if idx.data(PathRole) == path:
                        view.setCurrentIndex(idx)
                        break
            view.verticalScrollBar().setValue(scroll.get(key, 0))

    def show_empty(self, title: str, text: str = "",
                   actions: list[tuple[str, Callable[[], None]]] | None = None) -> None:
        self.model.set_results([])
        for i, (_key, label) in enumerate(TABS):
            self.tabs.setTabText(i, label)
        self.empty.show_state(title, text, actions)
        self.stack.setCurrentWidget(self.empty)
        self.currentChanged.emit(None)

    def showing_results(self) -> bool:
        return self.stack.currentWidget() is self.tabs

    def set_sort(self, mode: str) -> None:
        for proxy in self.proxies.values():
            proxy.set_sort(mode)

    def current_tab(self) -> str:
        return TABS[self.tabs.currentIndex()][0]

    def select_tab(self, key: str) -> None:
        self.tabs.setCurrentIndex([k for k, _ in TABS].index(key))

    def current_view(self) -> QListView:
        return self.views[self.current_tab()]

    def current_result(self) -> SearchResult | None:
        idx = self.current_view().currentIndex()
        return idx.data(ResultRole) if idx.isValid() else None

    def focus_results(self) -> None:
        self.current_view().setFocus(Qt.FocusReason.OtherFocusReason)

    # -- interaction -----------------------------------------------------------
    def _on_current(self, index: QModelIndex) -> None:
        self.currentChanged.emit(index.data(ResultRole) if index.isValid() else None)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.KeyPress and isinstance(obj, QListView):
            key_event: QKeyEvent = event  # type: ignore[assignment]
            if key_event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                path = obj.currentIndex().data(PathRole)
                if path:
                    if key_event.modifiers() & Qt.KeyboardModifier.ControlModifier:
                        self.revealRequested.emit(path)
                    else:
                        self.openRequested.emit(path)
                return True
        return super().eventFilter(obj, event)

    def context_actions(self, path: str) -> list[QAction]:
        menu_parent = self
        actions = []
        for label, signal in (("Open", self.openRequested), ("Reveal in folder", self.revealRequested),
                              ("Copy path", self.copyRequested), ("Find similar", self.similarRequested)):
            act = QAction(label, menu_parent)
            act.triggered.connect(lambda _c=False, s=signal, p=path: s.emit(p))
            actions.append(act)
        return actions

    def _context_menu(self, view: QListView, pos: QPoint) -> None:
        idx = view.indexAt(pos)
        if not idx.isValid():
            return
        view.setCurrentIndex(idx)
        menu = QMenu(self)
        for act in self.context_actions(idx.data(PathRole)):
            menu.addAction(act)
        menu.exec(view.viewport().mapToGlobal(pos))
        menu.deleteLater()
