"""The map's drawing surface: up to 100k points, pan and zoom, labels, hover, click and lasso.

No item per point: the points are drawn in batches (one ``drawPoints`` per colour and
sprite offset, from numpy through a ``QPolygonF``) into a cached image a margin larger
than the view, together with the region labels. Panning only moves that image; zooming
scales it and draws afresh once the wheel settles. A uniform grid over the points
(:class:`PointGrid`) answers hover and click (nearest point) and lasso (points inside a
polygon) without looking at every point.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QFocusEvent,
    QFont,
    QFontMetricsF,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QNativeGestureEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
    QPolygonF,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QWidget

from desktop.pyside_none import keep_none_alive
from desktop.workers import Worker, WorkerPool

keep_none_alive()  # the map makes thousands of void Qt calls a second while it moves

MARGIN = 0.6  # the cached image reaches this share of the view beyond each edge (fewer fresh drawings in a drag)
SETTLE_MS = 140  # draw afresh this long after the last zoom step
SYNC_POINTS = 20_000  # maps up to this size are drawn afresh at once; larger ones on the drawing thread
RECENTRE_MS = 250  # and this long after the last pan step, when the margin is half used
HOVER_PX = 9.0  # how near the pointer must be to a point to pick it
CLICK_SLOP = 4  # a press that moves less than this is a click, not a drag
ZOOM_STEP = 1.25
CROSS_REACH = 40.0  # Space picks the file nearest the middle within this many pixels
KEYS_HELP = ("Arrow keys move the map, plus and minus zoom, 0 shows the whole map; Space picks the file "
             "nearest the middle, Enter opens it; shift-drag draws a lasso round files.")
HALO = [(math.cos(a) * r, math.sin(a) * r) for r in (1.0, 2.0) for a in (i * math.pi / 6 for i in range(12))]
MAX_ZOOM = 2.0 ** 11


@dataclass
class MapLabel:
    """A region's name at its centre; ``level`` 0 shows at any zoom, 1 from twice the
    fitted zoom, and so on; bigger regions win when two labels would overlap. Regions
    holding a lit-up search's results (``lit``) are named first, at any zoom."""

    text: str
    x: float
    y: float
    size: int
    level: int = 0
    lit: tuple[float, float] | None = None  # where a lit region's name goes: above its lit files


class PointGrid:
    """A uniform grid over 2-D points for nearest-point and inside-polygon questions."""

    def __init__(self, xy: np.ndarray) -> None:
        self.xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        n = len(self.xy)
        self.lo = self.xy.min(axis=0) if n else np.zeros(2)
        hi = self.xy.max(axis=0) if n else np.ones(2)
        self.side = max(1, min(1024, int(math.sqrt(n / 4)) or 1))
        self.cell = np.maximum((hi - self.lo) / self.side, 1e-12)
        cx, cy = self._cells(self.xy)
        cid = cy * self.side + cx
        self.order = np.argsort(cid, kind="stable")
        self.starts = np.searchsorted(cid[self.order], np.arange(self.side * self.side + 1))

    def _cells(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = np.floor((xy - self.lo) / self.cell).astype(np.int64)
        c = np.clip(c, 0, self.side - 1)
        return c[:, 0], c[:, 1]

    def _in_box(self, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
        (cx0, cx1), (cy0, cy1) = (np.clip(np.floor((np.array(v) - self.lo[i]) / self.cell[i]), 0, self.side - 1)
                                  .astype(np.int64) for i, v in enumerate(((x0, x1), (y0, y1))))
        parts = [self.order[self.starts[row * self.side + cx0]:self.starts[row * self.side + cx1 + 1]]
                 for row in range(cy0, cy1 + 1)]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def nearest(self, x: float, y: float, radius: float) -> int:
        """Index of the point nearest (x, y) within ``radius``, or -1."""
        if not len(self.xy):
            return -1
        cand = self._in_box(x - radius, y - radius, x + radius, y + radius)
        if not len(cand):
            return -1
        d = np.hypot(self.xy[cand, 0] - x, self.xy[cand, 1] - y)
        best = int(np.argmin(d))
        return int(cand[best]) if d[best] <= radius else -1

    def inside(self, polygon: np.ndarray) -> np.ndarray:
        """Sorted indices of the points inside ``polygon`` ([m, 2], even-odd rule)."""
        poly = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
        if len(poly) < 3 or not len(self.xy):
            return np.zeros(0, np.int64)
        (x0, y0), (x1, y1) = poly.min(axis=0), poly.max(axis=0)
        cand = self._in_box(x0, y0, x1, y1)
        px, py = self.xy[cand, 0], self.xy[cand, 1]
        inside = np.zeros(len(cand), dtype=bool)
        xa, ya = poly[:, 0], poly[:, 1]
        xb, yb = np.roll(xa, -1), np.roll(ya, -1)
        for ax, ay, bx, by in zip(xa, ya, xb, yb, strict=True):
            if ay == by:
                continue
            crosses = (ay > py) != (by > py)
            at = ax + (py - ay) * (bx - ax) / (by - ay)
            inside ^= crosses & (px < at)
        return np.sort(cand[inside])


def polygon_of(xs: np.ndarray, ys: np.ndarray) -> QPolygonF:
    """A QPolygonF holding the points, filled from numpy in one copy."""
    n = len(xs)
    poly = QPolygonF()
    if not n:
        return poly
    try:
        import shiboken6

        poly.resize(n)
        buf = shiboken6.VoidPtr(poly.data(), n * 16, True)  # type: ignore[call-arg, arg-type]  # (object, size, writable)
        view = np.frombuffer(buf, dtype=np.float64).reshape(n, 2)  # type: ignore[call-overload]
        view[:, 0] = xs
        view[:, 1] = ys
    except (ImportError, TypeError, ValueError, AttributeError):  # another binding's layout
        poly = QPolygonF([QPointF(float(x), float(y)) for x, y in zip(xs, ys, strict=True)])
    return poly


@functools.lru_cache(maxsize=64)
def sprite(radius: float) -> tuple[tuple[float, tuple[tuple[int, int], ...]], ...]:
    """An antialiased disc as pixel offsets grouped by coverage (one pen per group)."""
    reach = int(math.ceil(radius))
    groups: dict[float, list[tuple[int, int]]] = {}
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            cover = round(min(1.0, max(0.0, radius + 0.5 - math.hypot(dx, dy))), 2)
            if cover > 0.06:
                groups.setdefault(cover, []).append((dx, dy))
    return tuple((cover, tuple(offsets)) for cover, offsets in sorted(groups.items()))


def splat(painter: QPainter, xs: np.ndarray, ys: np.ndarray, color: QColor, radius: float, alpha: float = 1.0) -> None:
    """Draw discs at (xs, ys): one 1-px ``drawPoints`` per offset of the disc's sprite."""
    if not len(xs):
        return
    poly = polygon_of(xs, ys)
    painter.save()
    base = painter.transform()
    for cover, offsets in sprite(round(radius, 1)):
        c = QColor(color)
        c.setAlphaF(max(0.0, min(1.0, color.alphaF() * alpha * cover)))
        painter.setPen(QPen(c, 1.0))
        for dx, dy in offsets:
            painter.setTransform(base)
            painter.translate(dx, dy)
            painter.drawPoints(poly)
    painter.restore()


def point_radius(n: int) -> float:
    """Smaller dots when there are many, so regions read as shapes, not blobs."""
    return 3.4 if n <= 2_000 else 2.6 if n <= 10_000 else 1.9 if n <= 40_000 else 1.4


@dataclass
class _Cache:
    image: QImage
    scale: float
    wx0: float  # world position of the image's top-left corner
    wy0: float
    size: QSize  # logical size
    generation: int  # what the map looked like (colours, lit files, lasso, labels) when drawn
    placed: list[tuple[MapLabel, QRectF]]  # the labels drawn, where


@dataclass
class _Frame:
    """Everything one drawing of the map needs, copied on the GUI thread so that a worker
    thread can draw it (QPainter may paint a QImage off the GUI thread)."""

    generation: int
    xy: np.ndarray
    color_index: np.ndarray
    colors: list[QColor]
    highlight: np.ndarray | None
    selection: np.ndarray
    labels: list[MapLabel]
    radius: float
    scale: float
    zoom: float
    wx0: float
    wy0: float
    size: QSize
    dpr: float
    font: QFont
    text: QColor
    base: QColor


def draw_frame(f: _Frame) -> _Cache:
    """The map's points and labels drawn into an image (any thread)."""
    image = QImage(int(f.size.width() * f.dpr), int(f.size.height() * f.dpr), QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    p = QPainter(image)
    dpr = f.dpr
    if len(f.xy):
        sx = ((f.xy[:, 0] - f.wx0) * f.scale) * dpr
        sy = ((f.xy[:, 1] - f.wy0) * f.scale) * dpr
        seen = (sx > -8) & (sx < image.width() + 8) & (sy > -8) & (sy < image.height() + 8)
        r = f.radius * dpr * min(2.2, max(1.0, f.zoom ** 0.3))
        lit_up = f.highlight is not None and len(f.highlight) == len(f.xy)
        faint = 0.16 if len(f.xy) > 2_000 else 0.3  # a small map must stay visible round its lit files
        dim = faint if lit_up else 0.4 if len(f.selection) else 1.0
        _draw_points(p, f, sx, sy, seen, r, dim)
        if len(f.selection):  # the lasso's files: full colour, a fine dark edge
            sel = f.selection[seen[f.selection]]
            splat(p, sx[sel], sy[sel], QColor(30, 30, 30), r + 1.0 * dpr, 0.45 if lit_up else 0.6)
            chosen = np.zeros(len(sx), dtype=bool)
            chosen[sel] = True
            _draw_points(p, f, sx, sy, chosen, r, 0.45 if lit_up else 1.0)
        if lit_up and f.highlight is not None:
            lit = f.highlight & seen
            idx = np.flatnonzero(lit)
            splat(p, sx[idx], sy[idx], QColor(40, 40, 40), r + 2.6 * dpr, 0.55)
            splat(p, sx[idx], sy[idx], f.base, r + 1.6 * dpr)
            _draw_points(p, f, sx, sy, lit, r + 0.8 * dpr, 1.0)
    p.scale(dpr, dpr)
    placed = _draw_labels(p, f)
    p.end()
    image.setDevicePixelRatio(dpr)
    return _Cache(image, f.scale, f.wx0, f.wy0, f.size, f.generation, placed)


def _draw_points(p: QPainter, f: _Frame, sx: np.ndarray, sy: np.ndarray, mask: np.ndarray,
                 radius: float, alpha: float) -> None:
    ci = f.color_index if len(f.color_index) == len(sx) else np.zeros(len(sx), np.int32)
    counts = np.bincount(ci[mask], minlength=len(f.colors))
    for c in np.argsort(-counts):  # big groups first, so small ones stay visible on top
        if counts[c] == 0 or c >= len(f.colors):
            continue
        idx = np.flatnonzero(mask & (ci == c))
        splat(p, sx[idx], sy[idx], f.colors[c], radius, alpha)


def label_font(base: QFont, label: MapLabel, biggest: int) -> QFont:
    font = QFont(base)
    font.setPointSizeF(font.pointSizeF() * (0.9 + 0.4 * math.sqrt(max(label.size, 0) / max(biggest, 1))))
    font.setWeight(QFont.Weight.DemiBold if label.level == 0 or label.lit is not None else QFont.Weight.Medium)
    return font


def _draw_labels(p: QPainter, f: _Frame) -> list[tuple[MapLabel, QRectF]]:
    """Greedy placement: bigger regions first; a label that would overlap one already
    placed, or whose level needs more zoom, waits for the reader to zoom in."""
    placed: list[tuple[MapLabel, QRectF]] = []
    zoom_level = math.log2(max(f.zoom, 1e-9))
    halo = QColor(f.base)
    halo.setAlphaF(0.5)
    bounds = QRectF(0, 0, f.size.width(), f.size.height())
    biggest = max((lab.size for lab in f.labels), default=1)
    p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    for lab in sorted(f.labels, key=lambda lab: lab.lit is None):  # stable: lit first, then as given
        if (lab.level > zoom_level + 0.5 and lab.lit is None) or not lab.text:
            continue
        font = label_font(f.font, lab, biggest)
        fm = QFontMetricsF(font)
        text = fm.elidedText(lab.text, Qt.TextElideMode.ElideRight, 320)
        w, h = fm.horizontalAdvance(text), fm.height()
        if lab.lit is not None:  # above the lit files, not over them
            cx, top = (lab.lit[0] - f.wx0) * f.scale, (lab.lit[1] - f.wy0) * f.scale
            cy = top - f.radius - 6 - h / 2
        else:
            cx, cy = (lab.x - f.wx0) * f.scale, (lab.y - f.wy0) * f.scale
        rect = QRectF(cx - w / 2, cy - h / 2, w, h)
        padded = rect.adjusted(-6, -3, 6, 3)
        if not bounds.contains(padded) or any(padded.intersects(r) for _l, r in placed):
            continue
        placed.append((lab, padded))
        at = QPointF(rect.left(), rect.top() + fm.ascent())
        p.setFont(font)
        p.setPen(halo)  # a halo: the text drawn round itself in the background colour
        for dx, dy in HALO:
            p.drawText(at + QPointF(dx, dy), text)
        p.setPen(f.text)
        p.drawText(at, text)
    return placed


@dataclass
class HoverCard:
    """What the hover card says about point ``index``."""

    index: int
    title: str
    subtitle: str
    thumbnail: str = ""


class MapCanvas(QWidget):
    """Points in world coordinates; ``scale`` pixels per world unit around ``center``."""

    hovered = Signal(int)  # point index, -1 when none
    clicked = Signal(int)  # point index, -1 on empty space
    activated = Signal(int)  # double click or Enter on the chosen point: open it
    lassoed = Signal(object)  # np.ndarray of point indices (empty: selection cleared)
    menuRequested = Signal(int, object)  # point index, global QPoint: a right click on a file
    viewChanged = Signal()

    def __init__(self, thumbnails: object = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.thumbnails = thumbnails  # a desktop.thumbnails.ThumbnailCache, or None
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent, True)
        self.setMinimumSize(320, 240)
        self.setAccessibleName("Map of your files")
        self.setAccessibleDescription(KEYS_HELP)
        self.xy = np.zeros((0, 2))
        self.grid = PointGrid(self.xy)
        self.color_index = np.zeros(0, np.int32)
        self.colors: list[QColor] = []
        self.labels: list[MapLabel] = []
        self._given: list[MapLabel] = []
        self.highlight: np.ndarray | None = None  # bool mask of a query's results
        self.selection = np.zeros(0, np.int64)
        self.cards: list[HoverCard | None] = []
        self.titles: Sequence[str] = []
        self.subtitles: Sequence[str] = []
        self.thumbs: Sequence[str] = []
        self.center = np.zeros(2)
        self.scale = 1.0
        self.fit_scale = 1.0
        self.fitted = True
        self._fit_size = QSize()
        self.radius = 2.0
        self.lasso_mode = False
        self.hover = -1
        self.current = -1
        self._cache: _Cache | None = None
        self._generation = 0
        self.sync_points = SYNC_POINTS
        self._pool = WorkerPool(max_threads=1, name="map-draw", parent=self)
        self._drawing: Worker | None = None
        self._press: QPointF | None = None
        self._dragging = False
        self._lasso: list[QPointF] = []
        self._outline: np.ndarray | None = None  # the last lasso, in world coordinates
        self._mouse = QPointF(-1, -1)
        self._settle = QTimer(self)
        self._settle.setSingleShot(True)
        self._settle.setInterval(SETTLE_MS)
        self._settle.timeout.connect(self.invalidate)
        self._recentre = QTimer(self)  # a pause in a drag: centre the cached image again meanwhile
        self._recentre.setSingleShot(True)
        self._recentre.setInterval(RECENTRE_MS)
        self._recentre.timeout.connect(self._recentre_cache)
        if thumbnails is not None:
            thumbnails.loaded.connect(lambda _p: self.update())  # type: ignore[attr-defined]

    # -- content ----------------------------------------------------------------------
    def set_points(self, xy: np.ndarray, titles: Sequence[str], subtitles: Sequence[str],
                   thumbs: Sequence[str], labels: Sequence[MapLabel]) -> None:
        self.xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        self.grid = PointGrid(self.xy)
        self.titles, self.subtitles, self.thumbs = titles, subtitles, thumbs
        self._given = list(labels)
        self.labels = sorted(self._given, key=lambda lab: (lab.level, -lab.size))
        self.color_index = np.zeros(len(self.xy), np.int32)
        self.colors = [self.palette().color(QPalette.ColorRole.Highlight)]
        self.highlight = None
        self.selection = np.zeros(0, np.int64)
        self.hover = self.current = -1
        self.radius = point_radius(len(self.xy))
        self.fit()

    def set_colors(self, index: np.ndarray, colors: Sequence[str]) -> None:
        self.color_index = np.asarray(index, dtype=np.int32)
        self.colors = [QColor(c) for c in colors]
        self.invalidate()

    def set_highlight(self, mask: np.ndarray | None, lit_labels: dict[int, tuple[float, float]] | None = None) -> None:
        """Light up the points in ``mask`` (None: all as usual). ``lit_labels``: label index
        (as given) → the world point its name is set above (the top middle of its lit files);
        those regions are named first, at any zoom."""
        self.highlight = None if mask is None else np.asarray(mask, dtype=bool)
        lit = lit_labels if mask is not None and lit_labels else {}
        for i, lab in enumerate(self._given):
            lab.lit = lit.get(i)
        self.invalidate()

    def set_selection(self, indices: np.ndarray, outline: np.ndarray | None = None) -> None:
        """Mark the lasso's points; ``outline`` (world coordinates) is drawn round them."""
        self.selection = np.asarray(indices, dtype=np.int64)
        self._outline = outline if outline is not None and len(self.selection) else None
        self.invalidate()

    def set_lasso_mode(self, on: bool) -> None:
        self.lasso_mode = on
        self.setCursor(Qt.CursorShape.CrossCursor if on else Qt.CursorShape.ArrowCursor)

    # -- the view -----------------------------------------------------------------------
    def fit(self) -> None:
        """Show every point, with a little room round the edge; the map stays fitted to the
        window as it is resized until the reader pans or zooms."""
        if len(self.xy):
            lo, hi = self.xy.min(axis=0), self.xy.max(axis=0)
        else:
            lo, hi = np.zeros(2), np.ones(2)
        self.center = (lo + hi) / 2
        self.fit_scale = self._fit_scale()
        self.scale = self.fit_scale
        self.fitted = True
        self._fit_size = self.size()
        self.invalidate()

    def _fit_scale(self) -> float:
        if len(self.xy) < 2:
            return 1.0  # one point (or none): it sits in the middle
        span = self.xy.max(axis=0) - self.xy.min(axis=0)
        if np.all(span < 1e-9):
            return 1.0  # all in one place
        span = np.maximum(span, 1e-9)
        w, h = max(self.width(), 50), max(self.height(), 50)
        return float(min(w * 0.9 / span[0], h * 0.86 / span[1]))

    def _sync(self) -> None:
        """A fitted map whose widget changed size since (a layout not yet announced by a
        resize event) is fitted again before anything is placed."""
        if self.fitted and self.size() != self._fit_size:
            self.fit()

    def zoom(self) -> float:
        """How far in from the fitted view (1 = fitted)."""
        return self.scale / self.fit_scale

    def to_screen(self, wx: np.ndarray | float, wy: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        self._sync()
        return ((np.asarray(wx) - self.center[0]) * self.scale + self.width() / 2,
                (np.asarray(wy) - self.center[1]) * self.scale + self.height() / 2)

    def to_world(self, sx: float, sy: float) -> tuple[float, float]:
        self._sync()
        return (float((sx - self.width() / 2) / self.scale + self.center[0]),
                float((sy - self.height() / 2) / self.scale + self.center[1]))

    def pan_by(self, dx: float, dy: float) -> None:
        """Move the map by (dx, dy) pixels."""
        self._sync()
        self.fitted = False
        self.center = self.center - np.array([dx, dy]) / self.scale
        self._recentre.start()
        self.viewChanged.emit()
        self.update()

    def _recentre_cache(self) -> None:
        """Draw the cached image afresh round the view while the reader pauses, when a
        drag used up more than half its margin: the next drag starts with room to spare."""
        cache = self._cache
        if cache is None or cache.scale != self.scale:
            return
        target = self._cache_target(cache)
        used_x = abs(target.center().x() - self.width() / 2) / max(self.width() * MARGIN, 1)
        used_y = abs(target.center().y() - self.height() / 2) / max(self.height() * MARGIN, 1)
        if max(used_x, used_y) > 0.5:
            self.invalidate()

    def zoom_at(self, factor: float, anchor: QPointF | None = None) -> None:
        """Zoom by ``factor`` keeping the world point under ``anchor`` (default: the middle) still."""
        self._sync()
        new = min(max(self.scale * factor, self.fit_scale * 0.5), self.fit_scale * MAX_ZOOM)
        if new == self.scale:
            return
        a = anchor if anchor is not None else QPointF(self.width() / 2, self.height() / 2)
        wx, wy = self.to_world(a.x(), a.y())
        self.scale = new
        self.fitted = False
        self.center = np.array([wx - (a.x() - self.width() / 2) / new, wy - (a.y() - self.height() / 2) / new])
        self._settle.start()
        self.viewChanged.emit()
        self.update()

    def invalidate(self) -> None:
        """Draw the cached image afresh at the next paint (the old one is shown meanwhile
        when the drawing happens on the drawing thread)."""
        self._generation += 1
        self.update()

    # -- questions ----------------------------------------------------------------------
    def point_at(self, pos: QPointF) -> int:
        wx, wy = self.to_world(pos.x(), pos.y())
        return self.grid.nearest(wx, wy, HOVER_PX / self.scale)

    def points_inside(self, screen_polygon: Sequence[QPointF]) -> np.ndarray:
        world = np.array([self.to_world(p.x(), p.y()) for p in screen_polygon])
        return self.grid.inside(world)

    def hover_card(self) -> HoverCard | None:
        i = self.hover
        if i < 0 or i >= len(self.titles):
            return None
        return HoverCard(i, self.titles[i], self.subtitles[i] if i < len(self.subtitles) else "",
                         self.thumbs[i] if i < len(self.thumbs) else "")

    def set_hover(self, index: int) -> None:
        if index != self.hover:
            self.hover = index
            card = self.hover_card()
            self.setAccessibleDescription(f"{card.title}, {card.subtitle}" if card else KEYS_HELP)
            self.hovered.emit(index)
            self.update()

    # -- drawing the cache ----------------------------------------------------------------
    def _frame(self) -> _Frame:
        w, h = self.width(), self.height()
        mx, my = int(w * MARGIN), int(h * MARGIN)
        wx0, wy0 = self.to_world(-mx, -my)
        pal = self.palette()
        return _Frame(self._generation, self.xy, self.color_index, [QColor(c) for c in self.colors],
                      self.highlight, self.selection, [dataclasses.replace(lab) for lab in self.labels],
                      self.radius, self.scale, self.zoom(), wx0, wy0, QSize(w + 2 * mx, h + 2 * my),
                      self.devicePixelRatioF(), QFont(self.font()), QColor(pal.color(QPalette.ColorRole.Text)),
                      QColor(pal.color(QPalette.ColorRole.Base)))

    def _render(self) -> _Cache:
        """Draw the map now, on this thread."""
        return draw_frame(self._frame())

    def _stale(self, cache: _Cache | None) -> bool:
        if cache is None or cache.generation != self._generation:
            return True
        return cache.scale == self.scale and not self._cache_target(cache).contains(QRectF(self.rect()))

    def _request(self) -> None:
        """Draw the map afresh on the drawing thread; meanwhile the old image is shown."""
        if self._drawing is not None:
            return  # the next one is asked for when this one arrives
        worker = Worker(draw_frame, self._frame())
        worker.signals.result.connect(self._arrived)
        worker.signals.finished.connect(self._drawn)
        self._drawing = self._pool.start(worker)

    def _arrived(self, cache: _Cache) -> None:
        if cache.generation == self._generation:
            self._cache = cache
        self.update()  # a paint asks again if the view has moved on

    def _drawn(self) -> None:
        self._drawing = None

    def wait(self) -> None:
        """Await a drawing in progress (the view is closing)."""
        self._pool.wait()

    def cancel(self) -> None:
        """Drop a drawing not yet started; one in progress is let finish and ignored."""
        self._pool.cancel_all()

    @property
    def placed(self) -> list[tuple[MapLabel, QRectF]]:
        """The labels drawn in the cached image (the view and its margin), and where."""
        return self._cache.placed if self._cache is not None else []

    def label_font(self, label: MapLabel) -> QFont:
        return label_font(self.font(), label, max((lab.size for lab in self.labels), default=1))

    def visible_labels(self) -> list[str]:
        """Texts of the labels the current view shows (placed in the view and its margin)."""
        if self._stale(self._cache):
            self._cache = self._render()
        return [lab.text for lab, _r in self.placed]

    # -- painting -----------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        self._sync()
        p = QPainter(self)
        p.fillRect(self.rect(), self.palette().color(QPalette.ColorRole.Base))
        cache = self._cache
        if self._stale(cache):  # new colours, lit files or labels; or panned past the margin
            if cache is None or len(self.xy) <= self.sync_points:
                cache = self._cache = self._render()
            else:
                self._request()
        assert cache is not None
        target = self._cache_target(cache)
        if cache.scale == self.scale:
            p.drawImage(target.topLeft(), cache.image)
        else:  # mid-zoom: the old image stretched until the wheel settles
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            p.drawImage(target, cache.image)
        self._paint_overlay(p)
        p.end()

    def _cache_target(self, cache: _Cache) -> QRectF:
        sx, sy = self.to_screen(cache.wx0, cache.wy0)
        k = self.scale / cache.scale
        return QRectF(float(sx), float(sy), cache.size.width() * k, cache.size.height() * k)

    def _paint_overlay(self, p: QPainter) -> None:
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        pal = self.palette()
        if 0 <= self.current < len(self.xy):
            x, y = self.to_screen(*self.xy[self.current])
            p.setPen(QPen(pal.color(QPalette.ColorRole.Highlight), 2.2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawEllipse(QPointF(float(x), float(y)), self.radius + 5, self.radius + 5)
        outline = self._lasso
        if not outline and self._outline is not None:
            xs, ys = self.to_screen(self._outline[:, 0], self._outline[:, 1])
            outline = [QPointF(float(x), float(y)) for x, y in zip(xs, ys, strict=True)]
        if outline:
            p.setPen(QPen(pal.color(QPalette.ColorRole.Highlight), 1.6, Qt.PenStyle.DashLine))
            fill = QColor(pal.color(QPalette.ColorRole.Highlight))
            fill.setAlphaF(0.08)
            p.setBrush(fill)
            p.drawPolygon(QPolygonF(outline))
        card = self.hover_card()
        if card is not None:
            x, y = self.to_screen(*self.xy[card.index])
            p.setPen(QPen(pal.color(QPalette.ColorRole.Text), 1.6))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawEllipse(QPointF(float(x), float(y)), self.radius + 3, self.radius + 3)
            self._paint_card(p, card, QPointF(float(x), float(y)))
        if self.hasFocus():  # a frame, and the cross Space picks the nearest file to
            p.setPen(QPen(pal.color(QPalette.ColorRole.Highlight), 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(QRectF(self.rect()).adjusted(1, 1, -1, -1))
            mid = QPointF(self.width() / 2, self.height() / 2)
            p.setPen(QPen(pal.color(QPalette.ColorRole.Highlight), 1.4))
            for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                p.drawLine(mid + QPointF(dx * 4, dy * 4), mid + QPointF(dx * 11, dy * 11))

    def _paint_card(self, p: QPainter, card: HoverCard, at: QPointF) -> None:
        pal = self.palette()
        title_font = QFont(self.font())
        title_font.setBold(True)
        tfm, sfm = QFontMetricsF(title_font), QFontMetricsF(self.font())
        title = tfm.elidedText(card.title, Qt.TextElideMode.ElideMiddle, 300)
        sub = sfm.elidedText(card.subtitle, Qt.TextElideMode.ElideMiddle, 300)
        pm = self.thumbnails.pixmap(card.thumbnail) if self.thumbnails is not None and card.thumbnail else None  # type: ignore[attr-defined]
        thumb = pm.scaled(96, 96, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation) \
            if pm is not None else None
        pad = 8.0
        text_w = max(tfm.horizontalAdvance(title), sfm.horizontalAdvance(sub))
        tw = thumb.width() / thumb.devicePixelRatio() if thumb is not None else 0.0
        th = thumb.height() / thumb.devicePixelRatio() if thumb is not None else 0.0
        w = pad * 2 + max(text_w, tw)
        h = pad * 2 + tfm.height() + sfm.height() + (th + 6 if thumb is not None else 0)
        x = at.x() + 14 if at.x() + 14 + w < self.width() else at.x() - 14 - w
        y = at.y() + 14 if at.y() + 14 + h < self.height() else at.y() - 14 - h
        box = QRectF(max(2.0, x), max(2.0, y), w, h)
        shadow = QColor(0, 0, 0, 40)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(shadow)
        p.drawRoundedRect(box.translated(1.5, 2.5), 7, 7)
        p.setBrush(pal.color(QPalette.ColorRole.ToolTipBase))
        p.setPen(QPen(pal.color(QPalette.ColorRole.Mid), 1))
        p.drawRoundedRect(box, 7, 7)
        top = box.top() + pad
        if thumb is not None:
            p.drawPixmap(QPointF(box.left() + pad, top), thumb)
            top += th + 6
        p.setPen(pal.color(QPalette.ColorRole.ToolTipText))
        p.setFont(title_font)
        p.drawText(QPointF(box.left() + pad, top + tfm.ascent()), title)
        p.setFont(self.font())
        sub_color = QColor(pal.color(QPalette.ColorRole.ToolTipText))
        sub_color.setAlphaF(0.7)
        p.setPen(sub_color)
        p.drawText(QPointF(box.left() + pad, top + tfm.height() + sfm.ascent()), sub)

    # -- input --------------------------------------------------------------------------
    def resizeEvent(self, event: QResizeEvent) -> None:
        if self.fitted:
            self.fit()
        else:
            self.fit_scale = self._fit_scale()  # zoom limits and label levels follow the window
            self.invalidate()
        super().resizeEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.RightButton:
            i = self.point_at(event.position())
            if i >= 0:
                self.choose(i)
                self.menuRequested.emit(i, event.globalPosition().toPoint())
            return None
        if event.button() != Qt.MouseButton.LeftButton:
            return super().mousePressEvent(event)
        self._press = event.position()
        self._dragging = False
        if self.lasso_mode or event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self._lasso = [event.position()]
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if self._press is None:
            self._mouse = pos
            self.set_hover(self.point_at(pos))
            return
        if self._lasso:
            self._lasso.append(pos)
            self.update()
            return
        delta = pos - self._mouse if self._dragging else pos - self._press
        if self._dragging or abs(delta.x()) + abs(delta.y()) >= CLICK_SLOP:
            self._dragging = True
            self.set_hover(-1)
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
            self.pan_by(delta.x(), delta.y())
        self._mouse = pos

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton or self._press is None:
            return super().mouseReleaseEvent(event)
        press, self._press = self._press, None
        if self._lasso:
            lasso, self._lasso = self._lasso, []
            moved = max(abs(p.x() - press.x()) + abs(p.y() - press.y()) for p in lasso + [event.position()])
            if moved >= CLICK_SLOP and len(lasso) >= 3:
                chosen = self.points_inside(lasso)
                self.set_selection(chosen, np.array([self.to_world(q.x(), q.y()) for q in lasso]))
                self.lassoed.emit(chosen)
                return
        if self._dragging:
            self._dragging = False
            self.set_lasso_mode(self.lasso_mode)  # restore the cursor
            return
        self.choose(self.point_at(event.position()))

    def choose(self, index: int) -> None:
        self.current = index
        self.clicked.emit(index)
        self.update()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        i = self.point_at(event.position())
        if i >= 0:
            self.choose(i)
            self.activated.emit(i)

    def focusInEvent(self, event: QFocusEvent) -> None:
        self.update()
        super().focusInEvent(event)

    def focusOutEvent(self, event: QFocusEvent) -> None:
        self.update()
        super().focusOutEvent(event)

    def leaveEvent(self, event: QEvent) -> None:
        self.set_hover(-1)
        super().leaveEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:
        pixels, angle = event.pixelDelta().y(), event.angleDelta().y()
        steps = angle / 120 if angle else pixels / 50
        if steps:
            self.zoom_at(ZOOM_STEP ** steps, event.position())
        event.accept()

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.NativeGesture:  # a trackpad pinch (macOS, some Wayland)
            g: QNativeGestureEvent = event  # type: ignore[assignment]
            if g.gestureType() == Qt.NativeGestureType.ZoomNativeGesture:
                self.zoom_at(1.0 + g.value(), g.position())
                return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        step_x, step_y = self.width() * 0.12, self.height() * 0.12
        moves = {Qt.Key.Key_Left: (step_x, 0), Qt.Key.Key_Right: (-step_x, 0),
                 Qt.Key.Key_Up: (0, step_y), Qt.Key.Key_Down: (0, -step_y)}
        if key in moves:
            self.pan_by(*moves[key])  # type: ignore[index]
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_at(ZOOM_STEP)
        elif key in (Qt.Key.Key_Minus, Qt.Key.Key_Underscore):
            self.zoom_at(1 / ZOOM_STEP)
        elif key in (Qt.Key.Key_0, Qt.Key.Key_Home):
            self.fit()
            self.viewChanged.emit()
        elif key == Qt.Key.Key_Space:  # the file nearest the cross in the middle
            wx, wy = self.to_world(self.width() / 2, self.height() / 2)
            i = self.grid.nearest(wx, wy, CROSS_REACH / self.scale)
            self.set_hover(i)
            self.choose(i)
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.current >= 0:
            self.activated.emit(self.current)
        elif key == Qt.Key.Key_Escape and (self._lasso or len(self.selection)):
            self._lasso = []
            self.set_selection(np.zeros(0, np.int64))
            self.lassoed.emit(self.selection)
        else:
            super().keyPressEvent(event)
