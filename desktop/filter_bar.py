"""Filters (type, folder, modified date) and sort, reachable without query syntax.

Emits a dict for ``Searcher.search(filters=...)``: ``{"folder": str, "after": date,
"before": date, "ext": [..]}`` with only the keys that are set.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QDate, Signal
from PySide6.QtWidgets import QComboBox, QDateEdit, QHBoxLayout, QLabel, QWidget

from indexer.library.session import IMAGE_EXTENSIONS, parse_query

TYPE_CHOICES: list[tuple[str, list[str]]] = [
    ("Any type", []),
    ("PDF", [".pdf"]),
    ("Word / office", [".docx", ".doc", ".odt", ".rtf"]),
    ("Text & Markdown", [".txt", ".md", ".rst", ".org"]),
    ("Code", [".py", ".js", ".ts", ".c", ".h", ".cpp", ".rs", ".go", ".java", ".sh"]),
    ("Images", ["." + e for e in sorted(IMAGE_EXTENSIONS)]),  # every extension the index reads as an image
]
DATE_CHOICES: list[tuple[str, int | None]] = [
    ("Any time", None), ("Past week", 7), ("Past month", 31), ("Past year", 365), ("Custom range…", -1),
]


class FilterBar(QWidget):
    filtersChanged = Signal(dict)
    sortChanged = Signal(str)  # "relevance" | "date"

    def __init__(self, parent: QWidget | None = None, today: dt.date | None = None) -> None:
        super().__init__(parent)
        self._today = today
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.type_combo = QComboBox(self)
        self.type_combo.setAccessibleName("File type filter")
        for label, exts in TYPE_CHOICES:
            self.type_combo.addItem(label, exts)
        self.folder_combo = QComboBox(self)
        self.folder_combo.setAccessibleName("Folder filter")
        self.folder_combo.setMinimumContentsLength(14)
        self.folder_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.set_folders([])
        self.date_combo = QComboBox(self)
        self.date_combo.setAccessibleName("Modified date filter")
        for label, days in DATE_CHOICES:
            self.date_combo.addItem(label, days)
        self.after_edit = QDateEdit(self)
        self.before_edit = QDateEdit(self)
        for edit, name in ((self.after_edit, "Modified after"), (self.before_edit, "Modified before")):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.setAccessibleName(name)
            edit.hide()
        today_q = QDate.currentDate()
        self.after_edit.setDate(today_q.addMonths(-1))
        self.before_edit.setDate(today_q)
        self.sort_combo = QComboBox(self)
        self.sort_combo.setAccessibleName("Sort order")
        self.sort_combo.addItem("Best match", "relevance")
        self.sort_combo.addItem("Newest first", "date")

        lay.addWidget(self.type_combo)
        lay.addWidget(self.folder_combo)
        lay.addWidget(self.date_combo)
        lay.addWidget(self.after_edit)
        self.dash = QLabel("–", self)
        self.dash.hide()
        lay.addWidget(self.dash)
        lay.addWidget(self.before_edit)
        lay.addStretch(1)
        lay.addWidget(QLabel("Sort:", self))
        lay.addWidget(self.sort_combo)

        for combo in (self.type_combo, self.folder_combo, self.date_combo):
            combo.currentIndexChanged.connect(self._emit)
        self.after_edit.dateChanged.connect(self._emit)
        self.before_edit.dateChanged.connect(self._emit)
        self.sort_combo.currentIndexChanged.connect(lambda _i: self.sortChanged.emit(self.sort_combo.currentData()))

    def set_folders(self, folders: Sequence[str]) -> None:
        current = self.folder_combo.currentData()
        self.folder_combo.blockSignals(True)
        self.folder_combo.clear()
        self.folder_combo.addItem("All folders", "")
        for f in folders:
            self.folder_combo.addItem(os.path.basename(f.rstrip(os.sep)) or f, f)
            self.folder_combo.setItemData(self.folder_combo.count() - 1, f, 3)  # ToolTipRole
        idx = self.folder_combo.findData(current) if current else 0
        self.folder_combo.setCurrentIndex(max(0, idx))
        self.folder_combo.blockSignals(False)

    def filters(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        exts = self.type_combo.currentData()
        if exts:
            out["ext"] = list(exts)
        folder = self.folder_combo.currentData()
        if folder:
            out["folder"] = folder
        days = self.date_combo.currentData()
        custom = days == -1
        for w in (self.after_edit, self.before_edit, self.dash):
            w.setVisible(custom)
        if custom:
            out["after"] = self.after_edit.date().toPython()
            # The searcher's "before" is exclusive; the person means "up to and including".
            last: dt.date = self.before_edit.date().toPython()  # type: ignore[assignment]
            out["before"] = last + dt.timedelta(days=1) if last < dt.date.max else last  # 9999-12-31 is the end
        elif days:
            today = self._today or dt.date.today()
            out["after"] = today - dt.timedelta(days=days)
        return out

    def sync_from_query(self, text: str) -> None:
        """Show typed filters (type:txt, kind:image, in:Folder) in the dropdowns.

        Only the display follows the query (no filtersChanged: the query already
        applies them); a dropdown the query set goes back to "any" when the query
        drops the filter, one the person chose is left alone.
        """
        parsed = parse_query(text or "")
        exts = ["." + e.lower().lstrip(".") for e in parsed.exts]
        if not exts and parsed.kind == "image":
            exts = list(dict(TYPE_CHOICES)["Images"])
        self._sync_combo(self.type_combo, "type", exts and self._type_index(exts), f"Type: {' '.join(exts)}", exts)
        folder_idx = None
        for frag in parsed.folders:
            frag_l = frag.lower().strip("/\\")
            for i in range(1, self.folder_combo.count()):
                if self.folder_combo.itemText(i).lower() == frag_l:
                    folder_idx = i
        self._sync_combo(self.folder_combo, "folder", folder_idx, "", None)

    def _type_index(self, exts: list[str]) -> int:
        """The first choice that covers every typed extension, else -1."""
        for i in range(1, self.type_combo.count()):
            choice = self.type_combo.itemData(i) or []
            if choice and all(e in choice for e in exts) and not self.type_combo.itemText(i).startswith("Type: "):
                return i
        return -1

    def _sync_combo(self, combo: QComboBox, key: str, index: int | None | list[str], label: str,
                    data: list[str] | None) -> None:
        typed = getattr(self, "_typed", {})
        self._typed = typed
        combo.blockSignals(True)
        try:
            # A temporary "Type: .xyz" entry from an earlier query goes first.
            last = combo.count() - 1
            if key == "type" and combo.itemText(last).startswith("Type: ") and combo.currentIndex() != last:
                combo.removeItem(last)
            if isinstance(index, int) and index >= 0:
                combo.setCurrentIndex(index)
                typed[key] = True
            elif index == -1 and data:
                if not combo.itemText(combo.count() - 1).startswith("Type: "):
                    combo.addItem(label, data)
                else:
                    combo.setItemText(combo.count() - 1, label)
                    combo.setItemData(combo.count() - 1, data)
                combo.setCurrentIndex(combo.count() - 1)
                typed[key] = True
            elif typed.get(key):
                combo.setCurrentIndex(0)  # the query no longer asks for it
                typed[key] = False
                last = combo.count() - 1
                if key == "type" and combo.itemText(last).startswith("Type: "):
                    combo.removeItem(last)
        finally:
            combo.blockSignals(False)

    def _emit(self, *_args: object) -> None:
        self.filtersChanged.emit(self.filters())
