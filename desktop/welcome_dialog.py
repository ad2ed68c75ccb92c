"""First-run welcome: pick folders, learn where the index lives and that nothing leaves the machine."""

from __future__ import annotations

import os
from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.backend import suggested_folders
from desktop.folder_dialog import choose_folder
from desktop.icons import app_icon


class WelcomeDialog(QDialog):
    """``watched``: folders already watched (set up with the CLI before the window was first
    opened): listed first, ticked and fixed (Settings removes a folder, with its entries)."""

    def __init__(self, data_dir: str, parent: QWidget | None = None, home: str | None = None,
                 watched: Sequence[str] = ()) -> None:
        super().__init__(parent)
        self.setWindowTitle("Welcome to Lodestar")
        self.setWindowIcon(app_icon())
        lay = QVBoxLayout(self)
        intro = QLabel(
            "Lodestar finds your files by what they mean, not just their names.\n"
            "Pick the folders it should search. You can change them later.", self)
        intro.setTextFormat(Qt.TextFormat.PlainText)
        intro.setWordWrap(True)
        self.folders = QListWidget(self)
        self.folders.setAccessibleName("Folders to search")
        for f in watched:
            item = self._add(f, checked=True)
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsUserCheckable)
            item.setToolTip("Already watched; remove it in Settings")
        for f in suggested_folders(home):
            if not any(f == w or f.startswith(w.rstrip(os.sep) + os.sep) for w in watched):
                self._add(f, checked=True)
        add = QPushButton("Add folder…", self)
        add.clicked.connect(self.add_folder)
        privacy = QLabel(
            f"The index is stored in {data_dir}.\n"
            "Nothing leaves this computer: models run locally and no file is uploaded.", self)
        privacy.setTextFormat(Qt.TextFormat.PlainText)
        privacy.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Start")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        for w in (intro, self.folders, add, privacy, buttons):
            lay.addWidget(w)
        self.resize(520, 380)

    def _add(self, path: str, checked: bool) -> QListWidgetItem:
        item = QListWidgetItem(path)  # plain text item
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
        self.folders.addItem(item)
        return item

    def add_folder(self) -> None:
        path = choose_folder(self, "Add a folder")
        if path and path not in self.chosen_folders():
            self._add(path, checked=True)

    def chosen_folders(self) -> list[str]:
        out = []
        for i in range(self.folders.count()):
            item = self.folders.item(i)
            if item.checkState() == Qt.CheckState.Checked:
                out.append(item.text())
        return out
