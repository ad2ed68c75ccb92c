"""The Map view: the whole library laid out by meaning, one layer for documents, one for images.

Related files sit together; named regions carry their distinctive words. Hover a point
for its name (and picture), click it for the same preview a search result has, double
click (or Enter) to open it, draw a lasso (shift-drag, or the Lasso button) to list the
files inside, type words to light up where their answers live, colour by region, folder,
type or date.

Everything slow runs on this view's own workers (`desktop.workers`): reading the stored
map, laying it out (`LibrarySession.build_map`, which says how far it got), a query's
results (`map_query`) and file details (`files_in`). The drawing is
`desktop.map_canvas.MapCanvas`; the colours are `desktop.map_colors`.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Sequence
from typing import Any, overload

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import (
    QAction,
    QBrush,
    QColor,
    QFontMetricsF,
    QGuiApplication,
    QLinearGradient,
    QPainter,
    QPaintEvent,
    QPalette,
)
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop import map_colors
from desktop.map_canvas import MapCanvas, MapLabel
from desktop.opener import Opener, OpenRefused
from desktop.preview import PreviewPane
from desktop.results_panel import EmptyState
from desktop.workers import Worker, WorkerPool
from indexer.errors import user_message
from indexer.types import LibraryMap, MapHits, MapPoint, SearchResult
from indexer.wording import plural

log = logging.getLogger(__name__)

LAYERS = (("documents", "Documents"), ("images", "Images"))
NOUNS = {"documents": ("document", "documents"), "images": ("picture", "pictures")}
QUERY_DEBOUNCE_MS = 250
FOLLOW_MS = 20_000  # files arrived while the map is open: placed on it this long after the last commit
LIST_LIMIT = 5_000  # a lasso lists at most this many files (the count says how many it holds)
PathRole = Qt.ItemDataRole.UserRole + 1


def ago(ts: float, now: float | None = None) -> str:
    """'just now', '5 minutes ago', '3 hours ago', '2 days ago', or the date."""
    if ts <= 0:
        return "never"
    secs = max(0.0, (now if now is not None else time.time()) - ts)
    if secs < 90:
        return "just now"
    for unit, size in (("minute", 60), ("hour", 3600), ("day", 86400)):
        n = int(secs // size)
        if unit == "minute" and n < 90 or unit == "hour" and n < 48 or unit == "day" and n < 30:
            return f"{plural(n, unit)} ago"
    return datetime.datetime.fromtimestamp(ts).strftime("on %Y-%m-%d")


def as_result(p: MapPoint) -> SearchResult:
    """A map point as a result row, for the preview until `files_in` brings the passage."""
    return SearchResult(path=p.path, kind=p.kind, score=0.0, name=p.name, folder=p.folder, ext=p.ext,
                        size=p.size, mtime=p.mtime, thumbnail=p.thumbnail)


class Subtitles(Sequence[str]):
    """'folder · date' of each point, written only when asked (a hover card)."""

    def __init__(self, points: list[MapPoint]) -> None:
        self.points = points

    def __len__(self) -> int:
        return len(self.points)

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        p = self.points[i]
        day = _date(p.mtime)
        return f"{p.folder} · {day}" if p.folder and day else p.folder or day


class MapLegend(QWidget):
    """What the colours mean, in a strip under the map: swatches with names and counts
    flowing onto as many lines as they need, or a gradient between two dates."""

    GAP = 18.0

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.coloring: map_colors.Coloring | None = None
        self.setAccessibleName("Legend")
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

    def set_coloring(self, coloring: map_colors.Coloring | None) -> None:
        self.coloring = coloring
        if coloring is None:
            self.setAccessibleDescription("")
        elif coloring.ramp is not None:
            self.setAccessibleDescription(f"Colour by date: from {coloring.ramp[0]} (purple) to {coloring.ramp[1]} (yellow)")
        else:
            self.setAccessibleDescription("; ".join(f"{text}: {n}" for _c, text, n in coloring.legend))
        self.setFixedHeight(self._layout(max(self.width(), 200))[1])
        self.update()

    def entries(self) -> list[tuple[str, str]]:
        """(colour, text) as shown, for tests and screen readers."""
        c = self.coloring
        if c is None:
            return []
        if c.ramp is not None:
            return [(c.colors[0], c.ramp[0]), (c.colors[-1], c.ramp[1])]
        return [(color, self._row_text(text, n)) for color, text, n in c.legend]

    @staticmethod
    def _row_text(text: str, n: int) -> str:
        return f"{text} ({n:,})"

    def _layout(self, width: int) -> tuple[list[tuple[QRectF, str, str]], int]:
        """Where each entry goes at this width, and the height that takes."""
        fm = QFontMetricsF(self.font())
        line = fm.height() + 6
        if self.coloring is None:
            return [], 0
        if self.coloring.ramp is not None:
            return [], int(line + 8)
        x, y, out = 4.0, 4.0, []
        for color, text in self.entries():
            shown = fm.elidedText(text, Qt.TextElideMode.ElideRight, 300)
            w = (16 if color else 0) + fm.horizontalAdvance(shown)
            if x > 4 and x + w > width - 4:
                x, y = 4.0, y + line
            out.append((QRectF(x, y, w, line), color, shown))
            x += w + self.GAP
        return out, int(y + line + 4)

    def resizeEvent(self, event: Any) -> None:
        self.setFixedHeight(self._layout(self.width())[1])
        super().resizeEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        c = self.coloring
        if c is None:
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        pal = self.palette()
        text_color = pal.color(QPalette.ColorRole.WindowText)
        fm = QFontMetricsF(self.font())
        if c.ramp is not None:
            old = f"Older: {c.ramp[0]}"
            x = 4 + fm.horizontalAdvance(old) + 10
            bar = QRectF(x, 4 + (fm.height() - 10) / 2 + 3, 220, 10)
            grad = QLinearGradient(bar.topLeft(), bar.topRight())
            for i, col in enumerate(c.colors):
                grad.setColorAt(i / max(len(c.colors) - 1, 1), QColor(col))
            p.setPen(text_color)
            p.drawText(QPointF(4, 4 + fm.ascent() + 3), old)
            p.fillRect(bar, QBrush(grad))
            p.drawText(QPointF(bar.right() + 10, 4 + fm.ascent() + 3), f"{c.ramp[1]}: newer")
            return
        for rect, color, text in self._layout(self.width())[0]:
            x = rect.left()
            if color:
                p.setPen(Qt.PenStyle.NoPen)
                p.setBrush(QColor(color))
                p.drawEllipse(QRectF(x, rect.top() + (rect.height() - 10) / 2, 10, 10))
                x += 16
            p.setPen(text_color)
            p.drawText(QPointF(x, rect.top() + (rect.height() - fm.height()) / 2 + fm.ascent()), text)


class MapView(QDialog):
    """``session``: the library session (or a test double with its map methods)."""

    def __init__(self, session: Any, opener: Opener, thumbnails: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.opener = opener
        self.thumbnails = thumbnails
        self.pool = WorkerPool(max_threads=2, name="map-build", parent=self)  # reading and laying out (a layer each)
        self.query_pool = WorkerPool(max_threads=1, name="map-query", parent=self)  # queries, details
        self.layer = "documents"
        self.maps: dict[str, LibraryMap] = {}
        self.building: dict[str, Worker] = {}
        self.loading: set[str] = set()
        self.points: list[MapPoint] = []
        self.index_of: dict[str, int] = {}
        self.hits: MapHits | None = None
        self.listed: list[int] = []
        self._query_id = 0
        self._detail_id = 0
        self.setWindowTitle("Map of your files")
        self.resize(1240, 780)

        # -- the bar at the top -------------------------------------------------------
        top = QHBoxLayout()
        self.layer_group = QButtonGroup(self)
        self.layer_buttons: dict[str, QToolButton] = {}
        for key, label in LAYERS:
            b = QToolButton(self)
            b.setText(label)
            b.setCheckable(True)
            b.setObjectName("mapLayer")
            b.setAccessibleName(f"{label} map")
            b.setToolTip(f"Show the map of your {label.lower()}")
            b.clicked.connect(lambda _c=False, k=key: self.show_layer(k))
            self.layer_group.addButton(b)
            self.layer_buttons[key] = b
            top.addWidget(b)
        self.layer_buttons["documents"].setChecked(True)
        # A segmented pair in palette colours (light and dark themes alike).
        self.setStyleSheet("QToolButton#mapLayer { padding: 3px 12px; border: 1px solid palette(mid);"
                           " background: palette(button); }"
                           "QToolButton#mapLayer:checked { background: palette(highlight);"
                           " color: palette(highlighted-text); border-color: palette(highlight); }")
        self.query = QLineEdit(self)
        self.query.setPlaceholderText("Light up a search…")
        self.query.setClearButtonEnabled(True)
        self.query.setAccessibleName("Search to light up on the map")
        self.query.setMinimumWidth(260)
        self._query_timer = QTimer(self)
        self._query_timer.setSingleShot(True)
        self._query_timer.setInterval(QUERY_DEBOUNCE_MS)
        self._query_timer.timeout.connect(self.run_query)
        self.query.textChanged.connect(lambda _t: self._query_timer.start())
        self._follow = QTimer(self)  # the index changed while the map is open
        self._follow.setSingleShot(True)
        self._follow.setInterval(FOLLOW_MS)
        self._follow.timeout.connect(self._catch_up)
        color_label = QLabel("Colour by", self)
        self.color_by = QComboBox(self)
        for key, label in map_colors.SCHEMES:
            self.color_by.addItem(label, key)
        self.color_by.setAccessibleName("Colour by")
        color_label.setBuddy(self.color_by)
        self.color_by.currentIndexChanged.connect(lambda _i: self.recolor())
        self.lasso_button = QToolButton(self)
        self.lasso_button.setText("Lasso")
        self.lasso_button.setCheckable(True)
        self.lasso_button.setAccessibleName("Lasso")
        self.lasso_button.setToolTip("Draw round files to list them (or hold Shift and drag)")
        self.fit_button = QToolButton(self)
        self.fit_button.setText("Whole map")
        self.fit_button.setAccessibleName("Show the whole map")
        self.fit_button.setToolTip("Zoom out to the whole map (0)")
        self.relayout_button = QToolButton(self)
        self.relayout_button.setText("Lay out again")
        self.relayout_button.setAccessibleName("Lay out the map again")
        self.relayout_button.setToolTip("Lay the whole library out afresh (runs in the background)")
        self.relayout_button.clicked.connect(lambda: self.build(self.layer, fresh=True))
        top.addSpacing(8)
        top.addWidget(self.query, 1)
        top.addSpacing(8)
        top.addWidget(color_label)
        top.addWidget(self.color_by)
        top.addWidget(self.lasso_button)
        top.addWidget(self.fit_button)
        top.addWidget(self.relayout_button)

        # -- the map, or a message ------------------------------------------------------
        self.canvas = MapCanvas(thumbnails, self)
        self.legend = MapLegend(self)
        self.empty = EmptyState(self)
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.canvas)
        self.stack.addWidget(self.empty)
        left = QWidget(self)
        left_lay = QVBoxLayout(left)
        left_lay.setContentsMargins(0, 0, 0, 0)
        left_lay.setSpacing(2)
        left_lay.addWidget(self.stack, 1)
        left_lay.addWidget(self.legend)
        self.lasso_button.toggled.connect(self.canvas.set_lasso_mode)
        self.fit_button.clicked.connect(self.canvas.fit)
        self.canvas.clicked.connect(self.point_clicked)
        self.canvas.activated.connect(lambda i: self.open_path(self.points[i].path) if 0 <= i < len(self.points) else None)
        self.canvas.lassoed.connect(self.show_lassoed)
        self.canvas.menuRequested.connect(self._menu)

        # -- the side: preview, the lasso's list ----------------------------------------
        side = QSplitter(Qt.Orientation.Vertical, self)
        preview_box = QWidget(side)
        pl = QVBoxLayout(preview_box)
        pl.setContentsMargins(0, 0, 0, 0)
        self.preview = PreviewPane(thumbnails, preview_box)
        self.preview.show_scores = False
        buttons = QHBoxLayout()
        self.open_button = QPushButton("Open", preview_box)
        self.reveal_button = QPushButton("Show in folder", preview_box)
        self.open_button.clicked.connect(lambda: self._open_current(reveal=False))
        self.reveal_button.clicked.connect(lambda: self._open_current(reveal=True))
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.reveal_button)
        pl.addWidget(self.preview, 1)
        pl.addLayout(buttons)
        list_box = QWidget(side)
        ll = QVBoxLayout(list_box)
        ll.setContentsMargins(0, 0, 0, 0)
        head = QHBoxLayout()
        self.list_title = QLabel("Draw a lasso round some files to list them here.", list_box)
        self.list_title.setWordWrap(True)
        self.list_title.setTextFormat(Qt.TextFormat.PlainText)
        self.clear_list_button = QToolButton(list_box)
        self.clear_list_button.setText("Clear")
        self.clear_list_button.setAccessibleName("Clear the lasso")
        self.clear_list_button.clicked.connect(self.clear_lasso)
        head.addWidget(self.list_title, 1)
        head.addWidget(self.clear_list_button)
        self.file_list = QListWidget(list_box)
        self.file_list.setAccessibleName("Files inside the lasso")
        self.file_list.setUniformItemSizes(True)
        self.file_list.currentRowChanged.connect(self._list_current)
        self.file_list.itemActivated.connect(lambda item: self.open_path(item.data(PathRole)))
        ll.addLayout(head)
        ll.addWidget(self.file_list, 1)
        side.addWidget(preview_box)
        side.addWidget(list_box)
        side.setSizes([430, 300])

        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(left)
        split.addWidget(side)
        split.setStretchFactor(0, 1)
        split.setSizes([900, 330])
        split.setChildrenCollapsible(False)

        bottom = QHBoxLayout()
        self.summary = QLabel("", self)
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        self.status = QLabel("", self)
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setAccessibleName("Map status")
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1000)
        self.progress.setMaximumWidth(220)
        self.progress.setTextVisible(False)
        self.progress.hide()
        bottom.addWidget(self.summary)
        bottom.addStretch(1)
        bottom.addWidget(self.status)
        bottom.addWidget(self.progress)

        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(split, 1)
        lay.addLayout(bottom)
        chain: list[QWidget] = [self.layer_buttons["documents"], self.layer_buttons["images"], self.query,
                                self.color_by, self.lasso_button, self.fit_button, self.relayout_button,
                                self.canvas, self.file_list, self.open_button, self.reveal_button]
        for before, after in zip(chain, chain[1:], strict=False):
            QWidget.setTabOrder(before, after)
        self._set_file_actions(None)

    # -- layers: read, build, show -----------------------------------------------------------
    def start(self) -> None:
        """Show the current layer: from memory, from disk, or laid out now (opening again
        after a close, which cancels a layout in progress, starts it again)."""
        self.show_layer(self.layer)

    def wait(self) -> None:
        """Cancel and await this view's background work (the app is quitting)."""
        self.pool.wait()
        self.query_pool.wait()
        self.canvas.wait()

    def show_layer(self, layer: str) -> None:
        self.layer = layer
        self.layer_buttons[layer].setChecked(True)
        self.show_lassoed(np.zeros(0, np.int64))
        m = self.maps.get(layer)
        if m is not None:
            self.display(m)
            if m.stale and m.points:
                self.build(layer)  # a placement cancelled by closing the view: again
        elif layer in self.building:
            self._show_building(layer)
        elif layer not in self.loading:
            self.loading.add(layer)
            self._message("Reading the map…", "")
            worker = Worker(self.session.load_map, layer)
            worker.signals.result.connect(lambda m, k=layer: self._loaded(k, m))
            worker.signals.error.connect(lambda exc, k=layer: self._failed(k, exc))
            worker.signals.finished.connect(lambda k=layer: self.loading.discard(k))
            self.pool.start(worker)

    def index_changed(self, progress: Any) -> None:
        """Files were added, changed or removed: once the index has been quiet a while, the
        open map places the new files (and drops the gone) without moving the others."""
        if getattr(progress, "index_changed", False) and self.isVisible():
            self._follow.start()

    def _catch_up(self) -> None:
        if self.isVisible() and self.layer in self.maps:
            self.build(self.layer)
        for layer in list(self.maps):
            if layer != self.layer:
                del self.maps[layer]  # read afresh when shown again

    def _loaded(self, layer: str, m: LibraryMap | None) -> None:
        if m is None:  # never built (or built from another model's vectors): build it now
            self.build(layer)
            return
        self.maps[layer] = m
        if layer == self.layer:
            self.display(m)
        if m.stale and m.points:
            self.build(layer)  # files came or went: place them, in the background

    def build(self, layer: str, fresh: bool = False) -> None:
        if layer in self.building:
            return
        worker = Worker(lambda cancel, progress: self.session.build_map(
            layer, progress=lambda line, frac: progress((line, frac)), cancel=cancel.is_set, fresh=fresh),
            pass_cancel=True, pass_progress=True)
        worker.signals.progress.connect(lambda step, k=layer: self._build_progress(k, *step))
        worker.signals.result.connect(lambda m, k=layer: self._built(k, m))
        worker.signals.error.connect(lambda exc, k=layer: self._failed(k, exc))
        worker.signals.finished.connect(lambda k=layer: self._build_done(k))
        self.building[layer] = worker
        self.pool.start(worker)
        if layer == self.layer:
            self._show_building(layer)

    def _show_building(self, layer: str) -> None:
        self.relayout_button.setEnabled(False)
        shown = self.maps.get(layer)
        if shown is not None and shown.points and layer == self.layer:
            self.status.setText("Updating the map…")
            self.progress.show()
            return
        one, many = NOUNS.get(layer, ("file", "files"))
        self._message(f"Laying out your {many}…",
                      f"This is the first map of your {many}: related {many} are placed together and the "
                      "regions named. It runs in the background; you can keep searching meanwhile.")
        self.empty.set_progress(0, 1000)

    def _build_progress(self, layer: str, line: str, fraction: float) -> None:
        if layer != self.layer:
            return
        value = int(max(0.0, min(1.0, fraction)) * 1000)
        if self.stack.currentWidget() is self.empty:
            self.empty.text.setText(line)
            self.empty.set_progress(value, 1000)
        else:
            self.status.setText(line)
            self.progress.setValue(value)

    def _built(self, layer: str, m: LibraryMap) -> None:
        self.maps[layer] = m
        if layer == self.layer:
            self.display(m, keep_view=True)

    def _build_done(self, layer: str) -> None:
        self.building.pop(layer, None)
        if layer == self.layer:
            self.relayout_button.setEnabled(True)
            self.progress.hide()
            if self.status.text().startswith("Updating"):
                self.status.setText("")

    def _failed(self, layer: str, exc: BaseException) -> None:
        if layer != self.layer:
            return
        text = user_message(exc) or f"{type(exc).__name__}: {exc}"
        if self.stack.currentWidget() is self.canvas and self.points:
            self.status.setText(f"The map could not be updated: {text}")
        else:
            self._message("The map could not be made", f"{text} Your files and the index are unchanged.",
                          [("Try again", lambda: self.build(self.layer))])

    def _message(self, title: str, text: str, actions: list[tuple[str, Any]] | None = None) -> None:
        self.empty.show_state(title, text, actions)
        self.empty.progress.hide()
        self.stack.setCurrentWidget(self.empty)
        self.legend.set_coloring(None)
        self.summary.setText("")
        self.status.setText("")

    def display(self, m: LibraryMap, keep_view: bool = False) -> None:
        """Show a layer's map (or why there is none)."""
        one, many = NOUNS.get(m.layer, ("file", "files"))
        self.relayout_button.setEnabled(m.layer not in self.building and len(m.points) > 1)
        if not m.points:
            self.points, self.index_of = [], {}
            self._message(f"No {many} to map yet",
                          m.message or f"Once Lodestar has indexed some {many}, they appear here, "
                          f"related {many} side by side.")
            return
        view = (self.canvas.center.copy(), self.canvas.scale) \
            if keep_view and self.points and not self.canvas.fitted else None
        self.points = list(m.points)
        self.index_of = {p.fid: i for i, p in enumerate(self.points)}
        xy = np.array([(p.x, p.y) for p in self.points], dtype=np.float64)
        subtitles = Subtitles(self.points)  # written when hovered: 100k dates take seconds
        labels = [MapLabel(c.label, c.x, c.y, c.size, c.level) for c in m.clusters]
        self.canvas.set_points(xy, [p.name or p.path for p in self.points], subtitles,
                               [p.thumbnail for p in self.points], labels)
        if view is not None:
            self.canvas.center, self.canvas.scale = view  # the reader's place, kept
            self.canvas.fitted = False
        self.stack.setCurrentWidget(self.canvas)
        self.recolor()
        facts = [plural(len(self.points), one, many)]
        if m.clusters:
            facts.append(plural(len(m.clusters), "named region"))
        if m.built_at > 0:
            facts.append(f"laid out {ago(m.built_at)}")
        self.summary.setText(" · ".join(facts))
        if len(self.points) == 1:
            self.status.setText(m.message or f"Only one {one} so far: the map fills in as more are indexed.")
            self.canvas.choose(0)  # and it is shown beside the map
        elif not self.building:
            self.status.setText(m.message)
        if self.query.text().strip():
            self.run_query()
        else:
            self.canvas.set_highlight(None)

    # -- colours ------------------------------------------------------------------------
    def recolor(self) -> None:
        if not self.points:
            return
        names = {c.id: c.label for c in self.maps[self.layer].clusters} if self.layer in self.maps else {}
        scheme = self.color_by.currentData() or "region"
        pts = self.points
        c = map_colors.coloring(scheme, clusters=[p.cluster for p in pts] if scheme == "region" else [],
                                labels=names, folders=[p.folder for p in pts] if scheme == "folder" else [],
                                paths=[p.ext or p.path for p in pts] if scheme == "type" else [],
                                mtimes=np.fromiter((p.mtime for p in pts), np.float64, len(pts))
                                if scheme == "date" else np.zeros(0))
        self.canvas.set_colors(c.index, c.colors)
        self.legend.set_coloring(c)

    # -- a query lights up ---------------------------------------------------------------
    def run_query(self) -> None:
        self._query_timer.stop()
        text = self.query.text().strip()
        self._query_id += 1
        if not text or not self.points:
            self.hits = None
            self.canvas.set_highlight(None)
            if not text:
                self.status.setText("")
            return
        self.status.setText("Searching…")
        qid, layer = self._query_id, self.layer
        worker = Worker(self.session.map_query, text, layer)
        worker.signals.result.connect(lambda hits: self._lit(qid, layer, hits))
        worker.signals.error.connect(lambda exc: self._query_failed(qid, exc))
        self.query_pool.start(worker)

    def _lit(self, qid: int, layer: str, hits: MapHits) -> None:
        if qid != self._query_id or layer != self.layer:
            return  # an older query, or another layer: its answer is not shown
        self.hits = hits
        mask = np.zeros(len(self.points), dtype=bool)
        found = [self.index_of[f] for f in hits.scores if f in self.index_of]
        mask[found] = True
        m = self.maps.get(self.layer)
        position = {c.id: i for i, c in enumerate(m.clusters)} if m is not None else {}
        tops: dict[int, tuple[float, float]] = {}
        for label in {position[self.points[i].cluster] for i in found if self.points[i].cluster in position}:
            cid = m.clusters[label].id if m is not None else -1
            xy = np.array([(self.points[i].x, self.points[i].y) for i in found if self.points[i].cluster == cid])
            tops[label] = (float(xy[:, 0].mean()), float(xy[:, 1].min()))
        self.canvas.set_highlight(mask, tops)
        if found:
            away = len(hits.scores) - len(found)
            self.status.setText(f"{plural(len(found), 'match', 'matches')} lit up"
                                + (f"; {away} not on the map yet" if away else ""))
        else:
            self.status.setText(hits.message or "Nothing on this map matches.")

    def _query_failed(self, qid: int, exc: BaseException) -> None:
        if qid == self._query_id:
            self.status.setText(user_message(exc) or f"The search failed: {exc}")

    # -- a point, a lasso ------------------------------------------------------------------
    def point_clicked(self, index: int) -> None:
        if not 0 <= index < len(self.points):
            return
        self.show_details(self.points[index])

    def show_details(self, p: MapPoint) -> None:
        """The preview at once from what the map knows, then the passage from the index."""
        self.preview.show_result(as_result(p))
        self._set_file_actions(p.path)
        self._detail_id += 1
        did = self._detail_id
        worker = Worker(self.session.files_in, [p.fid])
        worker.signals.result.connect(lambda rows: self._details(did, rows))
        worker.signals.error.connect(lambda exc: log.info("details unavailable: %s", exc))
        self.query_pool.start(worker)

    def _details(self, did: int, rows: list[SearchResult]) -> None:
        if did == self._detail_id and rows:
            self.preview.show_result(rows[0])

    def show_lassoed(self, indices: np.ndarray) -> None:
        self.listed = [int(i) for i in indices]
        self.file_list.clear()
        if not self.listed:
            self.list_title.setText("Draw a lasso round some files to list them here.")
            self.clear_list_button.setEnabled(False)
            return
        self.clear_list_button.setEnabled(True)
        shown = self.listed[:LIST_LIMIT]
        more = f" (the first {len(shown):,} listed)" if len(shown) < len(self.listed) else ""
        self.list_title.setText(f"{plural(len(self.listed), 'file')} inside the lasso{more}")
        for i in shown:
            p = self.points[i]
            item = QListWidgetItem(p.name or p.path)
            item.setToolTip(p.path)
            item.setData(PathRole, p.path)
            self.file_list.addItem(item)
        self.file_list.setCurrentRow(0)

    def clear_lasso(self) -> None:
        self.canvas.set_selection(np.zeros(0, np.int64))
        self.show_lassoed(np.zeros(0, np.int64))

    def _list_current(self, row: int) -> None:
        if 0 <= row < len(self.listed):
            i = self.listed[row]
            self.canvas.current = i
            self.canvas.update()
            self.show_details(self.points[i])

    # -- opening ----------------------------------------------------------------------------
    def menu_actions(self, path: str) -> list[QAction]:
        out = []
        for label, fn in (("Open", lambda: self.open_path(path)), ("Show in folder", lambda: self.open_path(path, reveal=True)),
                          ("Copy path", lambda: QGuiApplication.clipboard().setText(path))):
            act = QAction(label, self)
            act.triggered.connect(fn)
            out.append(act)
        return out

    def _menu(self, index: int, at: QPoint) -> None:
        if not 0 <= index < len(self.points):
            return
        menu = QMenu(self)
        for act in self.menu_actions(self.points[index].path):
            menu.addAction(act)
        menu.exec(at)
        menu.deleteLater()

    def _set_file_actions(self, path: str | None) -> None:
        self._current_path = path
        self.open_button.setEnabled(path is not None)
        self.reveal_button.setEnabled(path is not None)

    def _open_current(self, *, reveal: bool) -> None:
        if self._current_path:
            self.open_path(self._current_path, reveal=reveal)

    def open_path(self, path: str, reveal: bool = False) -> None:
        try:
            (self.opener.reveal if reveal else self.opener.open)(path)
        except OpenRefused as exc:
            self.status.setText(str(exc))

    def closeEvent(self, event: Any) -> None:  # Qt override
        self._follow.stop()
        self._query_timer.stop()
        self.pool.cancel_all()
        self.query_pool.cancel_all()
        self.canvas.cancel()
        super().closeEvent(event)


def _date(ts: float) -> str:
    try:
        return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d") if ts > 0 else ""
    except (OverflowError, OSError, ValueError):
        return ""
