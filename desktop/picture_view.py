"""A picture in the preview, with the boxes of the words that matched drawn over it (issue 16).

The picture is the indexer's own thumbnail (never the person's file: RELIABILITY S6),
fitted to the widget; the recognised lines' boxes are in pixels of the original upright
image, so they are scaled by the drawn size over the original size and follow the
preview as it is resized. Lines holding a matched word are filled and outlined; when no
line holds one (the passage matched by meaning), every line of the passage is outlined
thinly, so the person still sees where the words are.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPalette, QPen, QPixmap, QPolygonF, QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

from indexer.types import RecognisedLine

MAX_UPSCALE = 2.0
"""A thumbnail is drawn at most this much larger than it is (beyond that it is only blur)."""


class PictureView(QLabel):
    """A QLabel that paints one picture fitted to its size, plus line boxes; its text
    (``setText``: "Loading preview…", "No preview") shows while there is no picture."""

    def __init__(self, side: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._side = side
        self._picture: QPixmap | None = None
        self._original = QSize()
        self._lines: list[RecognisedLine] = []
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(side // 2)  # room for its text; a picture takes what it needs

    # -- content -------------------------------------------------------------
    def set_picture(self, pixmap: QPixmap, original: QSize, lines: Sequence[RecognisedLine] = ()) -> None:
        """Show ``pixmap`` (a thumbnail of an image ``original`` pixels large) and ``lines``' boxes."""
        super().clear()
        self._picture = pixmap
        # Without the original's size (a picture still waiting for the image model) the
        # boxes cannot be placed: the picture is shown without them.
        self._original = QSize(original) if original.isValid() and not original.isEmpty() else QSize()
        self._lines = [ln for ln in lines if len(ln.box) >= 3]
        self._fit_height()
        self.update()

    def clear(self) -> None:
        self._picture = None
        self._lines = []
        self._original = QSize()
        super().clear()
        self.setFixedHeight(self._side // 2)

    def has_picture(self) -> bool:
        return self._picture is not None

    def lines(self) -> list[RecognisedLine]:
        return list(self._lines)

    # -- geometry --------------------------------------------------------------
    def picture_rect(self) -> QRectF:
        """Where the picture is drawn in this widget: fitted, centred, never upscaled past `MAX_UPSCALE`."""
        if self._picture is None or self._picture.isNull():
            return QRectF()
        pw, ph = self._picture.width(), self._picture.height()
        if pw <= 0 or ph <= 0:
            return QRectF()
        scale = min(self.width() / pw, self.height() / ph, MAX_UPSCALE)
        w, h = pw * scale, ph * scale
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def drawn_boxes(self) -> list[tuple[QPolygonF, bool]]:
        """Each line's box in widget coordinates, and whether it is drawn as matched."""
        rect = self.picture_rect()
        if rect.isEmpty() or self._original.isEmpty():
            return []
        sx = rect.width() / self._original.width()
        sy = rect.height() / self._original.height()
        any_matched = any(ln.matched for ln in self._lines)
        out = []
        for ln in self._lines:
            if any_matched and not ln.matched:
                continue  # only where the matched words are
            poly = QPolygonF([QPointF(rect.left() + x * sx, rect.top() + y * sy) for x, y in ln.box])
            out.append((poly, ln.matched))
        return out

    def sizeHint(self) -> QSize:
        return QSize(self._side, self.height())

    def _fit_height(self) -> None:
        """As tall as the picture is at this width (a wide screenshot leaves no empty band),
        at most ``side``."""
        if self._picture is None or self._picture.isNull() or self._picture.width() <= 0:
            return
        pw, ph = self._picture.width(), self._picture.height()
        scale = min(max(1, self.width()) / pw, MAX_UPSCALE)
        self.setFixedHeight(max(self._side // 4, min(self._side, round(ph * scale))))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            self._fit_height()

    # -- painting ---------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        if self._picture is None:
            super().paintEvent(event)  # the label's text
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.drawPixmap(self.picture_rect(), self._picture, QRectF(self._picture.rect()))
        accent = QColor(self.palette().color(QPalette.ColorRole.Highlight))
        for poly, matched in self.drawn_boxes():
            if matched:
                fill = QColor(accent)
                fill.setAlpha(70)
                painter.setBrush(fill)
                painter.setPen(QPen(accent, 2))
            else:
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.setPen(QPen(accent, 1, Qt.PenStyle.DashLine))
            painter.drawPolygon(poly)
        painter.end()
