"""The search field, the "Search by image…" button and the query-image chip."""

from __future__ import annotations

import os

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QToolButton,
    QWidget,
)

from desktop.search_controller import ImageQuery
from indexer.library.session import IMAGE_EXTENSIONS

IMAGE_FILTER = "Images (" + " ".join("*." + e for e in sorted(IMAGE_EXTENSIONS)) + ")"


class ImageChip(QWidget):
    """Shows the active query image (name + small marker) with a × to remove it."""

    removeRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("imageChip")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        # A rounded "chip" in palette colours, so it follows light and dark themes.
        self.setStyleSheet("#imageChip { border: 1px solid palette(mid); border-radius: 12px;"
                           " background: palette(alternate-base); }")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 0, 0, 0)
        lay.setSpacing(4)
        self.thumb = QLabel(self)
        self.thumb.setFixedSize(24, 24)
        self.label = QLabel(self)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setMaximumWidth(180)
        self.close_button = QToolButton(self)
        self.close_button.setText("×")
        self.close_button.setAutoRaise(True)
        self.close_button.setAccessibleName("Remove query image")
        self.close_button.setToolTip("Remove the image from the query")
        self.close_button.clicked.connect(self.removeRequested)
        lay.addWidget(self.thumb)
        lay.addWidget(self.label)
        lay.addWidget(self.close_button)
        self.setAccessibleName("Query image")
        self.hide()

    def show_query(self, query: ImageQuery | None, icon: QIcon | None = None) -> None:
        if query is None:
            self.hide()
            return
        name = query.label or os.path.basename(query.path) or "Image"
        self.label.setText(self.label.fontMetrics().elidedText(name, Qt.TextElideMode.ElideMiddle, 170))
        self.label.setToolTip(query.path or name)
        pm = QPixmap()
        if icon is not None and not icon.isNull():
            pm = icon.pixmap(QSize(24, 24))
        self.thumb.setPixmap(pm)
        self.thumb.setVisible(not pm.isNull())
        self.show()


class SearchBar(QWidget):
    """Emits text edits and image picks; the controller decides what to run."""

    textEdited = Signal(str)
    imageChosen = Signal(str)
    imageRemoved = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.chip = ImageChip(self)
        self.field = QLineEdit(self)
        self.field.setObjectName("searchField")
        self.field.setPlaceholderText("Search your files by meaning…  (Ctrl+K)")
        self.field.setClearButtonEnabled(True)
        self.field.setAccessibleName("Search")
        self.field.setMinimumHeight(32)
        self.image_button = QPushButton("Search by image…", self)
        self.image_button.setAccessibleName("Search by image")
        self.image_button.setToolTip("Find pictures that look like an image file (or drop/paste one)")
        lay.addWidget(self.chip)
        lay.addWidget(self.field, 1)
        lay.addWidget(self.image_button)
        self.field.textChanged.connect(self.textEdited)
        self.image_button.clicked.connect(self.choose_image)
        self.chip.removeRequested.connect(self.imageRemoved)

    def choose_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Search by image", os.path.expanduser("~"), IMAGE_FILTER)
        if path:
            self.imageChosen.emit(path)

    def focus_field(self) -> None:
        self.field.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.field.selectAll()

    def text(self) -> str:
        return self.field.text()

    def clear(self) -> None:
        self.field.clear()
