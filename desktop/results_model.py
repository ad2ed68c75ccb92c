"""Item models for a SearchResponse: one list model plus per-tab proxies."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QIcon

from desktop.icons import type_icon
from desktop.thumbnails import ThumbnailCache
from indexer.types import SearchResult
from indexer.wording import human_bytes

ResultRole = Qt.ItemDataRole.UserRole + 1
PathRole = Qt.ItemDataRole.UserRole + 2
KindRole = Qt.ItemDataRole.UserRole + 3
ScoreRole = Qt.ItemDataRole.UserRole + 4
MtimeRole = Qt.ItemDataRole.UserRole + 5
RankRole = Qt.ItemDataRole.UserRole + 6
ShowScoreRole = Qt.ItemDataRole.UserRole + 7  # False for a listing by filters (no relevance)

Index = QModelIndex | QPersistentModelIndex


def format_mtime(mtime: float) -> str:
    if mtime <= 0:
        return ""
    try:
        when = dt.datetime.fromtimestamp(mtime)
    except (OverflowError, OSError, ValueError):
        return ""
    return when.strftime("%Y-%m-%d %H:%M")


def format_size(size: int) -> str:
    """As the Duplicates view and the CLI say sizes (decimal units, like file managers)."""
    return human_bytes(size)


def match_label(r: SearchResult) -> str:
    """How a result was found, in words, when that is worth saying (issue 16): a picture by
    what it shows or by the words in it, a scanned page by its recognised words; "" for a
    document found by its text."""
    if r.kind == "image":
        return {
            "words": "Matched the words in this picture",
            "look": "Matched what it shows",
            "look+words": "Matched what it shows and the words in it",
        }.get(r.matched_by, "")
    if r.passage_source == "ocr" and r.passage:
        if r.passage_page >= 0:
            return f"Matched the words on scanned page {r.passage_page + 1}"
        return "Matched the words on a scanned page"
    return ""


class ResultsModel(QAbstractListModel):
    """Read-only list of SearchResults in rank order."""

    def __init__(self, thumbnails: ThumbnailCache | None = None, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[SearchResult] = []
        self._thumbs = thumbnails
        self.ranked = True
        if thumbnails is not None:
            thumbnails.loaded.connect(self._on_thumbnail)

    def set_results(self, results: list[SearchResult], ranked: bool = True) -> None:
        self.beginResetModel()
        self._rows = list(results)
        self.ranked = ranked
        self.endResetModel()

    def results(self) -> list[SearchResult]:
        return list(self._rows)

    def result(self, row: int) -> SearchResult | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt signature
        return 0 if parent.isValid() else len(self._rows)

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.parent().isValid() or not 0 <= index.row() < len(self._rows):
            return None
        r = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return r.name or os.path.basename(r.path)
        if role == Qt.ItemDataRole.ToolTipRole:
            how = match_label(r)
            return f"{r.path}\n{how}" if how else r.path
        if role == Qt.ItemDataRole.DecorationRole:
            return self._decoration(r)
        if role == Qt.ItemDataRole.AccessibleTextRole:
            how = match_label(r)
            said = f"{r.name or os.path.basename(r.path)} in {r.folder or os.path.dirname(r.path)}"
            return f"{said}. {how}" if how else said
        if role == ResultRole:
            return r
        if role == PathRole:
            return r.path
        if role == KindRole:
            return r.kind
        if role == ScoreRole:
            return float(r.score)
        if role == MtimeRole:
            return float(r.mtime)
        if role == RankRole:
            return index.row()
        if role == ShowScoreRole:
            return self.ranked
        return None

    def _decoration(self, r: SearchResult) -> Any:
        if r.kind == "image" and r.thumbnail and self._thumbs is not None:
            pm = self._thumbs.square(r.thumbnail)
            if pm is not None:
                return QIcon(pm)
        return type_icon(r.kind, r.ext)

    def _on_thumbnail(self, thumb_path: str) -> None:
        for row, r in enumerate(self._rows):
            if r.thumbnail == thumb_path:
                idx = self.index(row, 0)
                self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])


class ResultsProxy(QSortFilterProxyModel):
    """One tab's view: a kind filter ("all", "documents", "images") and a sort (relevance/date)."""

    def __init__(self, tab: str, parent: Any = None) -> None:
        super().__init__(parent)
        self.tab = tab
        self._sort = "relevance"
        self.setDynamicSortFilter(True)
        self.sort(0, Qt.SortOrder.AscendingOrder)

    def set_sort(self, mode: str) -> None:
        self._sort = mode
        self.invalidate()
        self.sort(0, Qt.SortOrder.AscendingOrder)

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        if self.tab == "all":
            return True
        kind = self.sourceModel().index(source_row, 0, source_parent).data(KindRole)
        return (kind == "image") == (self.tab == "images")

    def lessThan(self, left: Index, right: Index) -> bool:
        if self._sort == "date":
            lm, rm = left.data(MtimeRole) or 0.0, right.data(MtimeRole) or 0.0
            if lm != rm:
                return lm > rm  # newest first
        return (left.data(RankRole) or 0) < (right.data(RankRole) or 0)
