"""Loads the indexer's own PNG thumbnails off the GUI thread (RELIABILITY S6).

Only files inside the data directory's thumbnail folder are ever decoded, always
as PNG (format forced, content sniffing off) and with Qt's allocation limit kept.
Raw user files are never handed to Qt's image plugins.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QImage, QImageReader, QPainter, QPixmap

from desktop.workers import Worker, WorkerPool

log = logging.getLogger(__name__)

MAX_ALLOCATION_MB = 64  # thumbnails are ≤256 px; anything needing more is not ours
MAX_CACHED = 512


def thumbnail_allowed(path: str, thumb_dir: str) -> bool:
    """True when ``path`` resolves inside the thumbnail folder."""
    if not path or not thumb_dir:
        return False
    try:
        real = os.path.realpath(path)
        root = os.path.realpath(thumb_dir)
        return os.path.commonpath([real, root]) == root and real != root
    except (OSError, ValueError):
        return False


def read_thumbnail(path: str, thumb_dir: str) -> QImage:
    """Decode one stored thumbnail; a null QImage when refused or unreadable."""
    if not thumbnail_allowed(path, thumb_dir):
        log.warning("refusing to decode %r: not a Lodestar thumbnail", path)
        return QImage()
    reader = QImageReader(path, b"png")
    reader.setDecideFormatFromContent(False)
    reader.setAutoDetectImageFormat(False)
    # Keep a limit (never 0): a bomb disguised as a thumbnail is rejected, not decoded.
    limit = QImageReader.allocationLimit()
    if limit <= 0 or limit > MAX_ALLOCATION_MB:
        QImageReader.setAllocationLimit(MAX_ALLOCATION_MB)
    image = reader.read()
    if image.isNull():
        log.info("thumbnail %r unreadable: %s", path, reader.errorString())
    return image


class ThumbnailCache(QObject):
    """``pixmap(path)`` returns a cached pixmap or None and loads it in the background."""

    loaded = Signal(str)

    def __init__(self, thumb_dir: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.thumb_dir = thumb_dir
        self.pool = WorkerPool(max_threads=1, name="thumbnails", parent=self)
        self._pixmaps: OrderedDict[str, QPixmap] = OrderedDict()
        self._squares: dict[str, QPixmap] = {}
        self._pending: set[str] = set()
        self._failed: set[str] = set()

    def pixmap(self, path: str) -> QPixmap | None:
        if not path:
            return None
        pm = self._pixmaps.get(path)
        if pm is not None:
            self._pixmaps.move_to_end(path)
            return pm
        if path not in self._pending and path not in self._failed:
            self._pending.add(path)
            worker = Worker(read_thumbnail, path, self.thumb_dir)
            worker.signals.result.connect(lambda img, p=path: self._on_loaded(p, img))
            worker.signals.error.connect(lambda _exc, p=path: self._on_failed(p))
            self.pool.start(worker)
        return None

    def square(self, path: str) -> QPixmap | None:
        """The thumbnail centred on a transparent square, so grid tiles line up."""
        sq = self._squares.get(path)
        if sq is not None:
            return sq
        pm = self.pixmap(path)
        if pm is None:
            return None
        side = max(pm.width(), pm.height())
        sq = QPixmap(side, side)
        sq.fill(Qt.GlobalColor.transparent)
        painter = QPainter(sq)
        painter.drawPixmap((side - pm.width()) // 2, (side - pm.height()) // 2, pm)
        painter.end()
        self._squares[path] = sq
        return sq

    def _on_loaded(self, path: str, image: QImage) -> None:
        self._pending.discard(path)
        if image.isNull():
            self._failed.add(path)
            return
        # QPixmap must be created on the GUI thread (this slot runs there).
        self._pixmaps[path] = QPixmap.fromImage(image)
        while len(self._pixmaps) > MAX_CACHED:
            old, _pm = self._pixmaps.popitem(last=False)
            self._squares.pop(old, None)
        self.loaded.emit(path)

    def _on_failed(self, path: str) -> None:
        self._pending.discard(path)
        self._failed.add(path)

    def close(self) -> None:
        self.pool.wait()
