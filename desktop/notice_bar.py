"""A banner above the results for what the person must know now: an announced
download, a settings file that had to be repaired. Plain text, stays until dismissed."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

from indexer.library.session import DOWNLOAD_ANNOUNCED

MAX_LINES = 6  # the newest lines; older ones stay in the log and in `lodestar status`


class NoticeBar(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("noticeBar")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAccessibleName("Notices")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 4, 4, 4)
        self.label = QLabel(self)
        self.label.setTextFormat(Qt.TextFormat.PlainText)  # paths and file contents are never markup
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.close_button = QToolButton(self)
        self.close_button.setText("Dismiss")
        self.close_button.setAccessibleName("Dismiss notices")
        self.close_button.clicked.connect(self.dismiss)
        lay.addWidget(self.label, 1)
        lay.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        self.lines: list[str] = []
        self.hide()

    def show_notice(self, line: str) -> None:
        """Add ``line`` (shown once even if said again) and show the banner."""
        if line in self.lines:
            self.lines.remove(line)
        self.lines = [*self.lines, line][-MAX_LINES:]
        self.label.setText("\n".join(self.lines))
        self.show()

    def show_outcome(self, line: str) -> None:
        """A download ended: its announcement goes ("Downloading …" above "No internet
        connection", or after the model arrived, reads as if still under way); a failure
        (``line``) takes its place."""
        self.lines = [x for x in self.lines if not x.startswith(DOWNLOAD_ANNOUNCED)]
        if line:
            self.show_notice(line)
        elif self.lines:
            self.label.setText("\n".join(self.lines))
        else:
            self.dismiss()

    def dismiss(self) -> None:
        self.lines = []
        self.label.clear()
        self.hide()
