"""Sharing: make this library a part of one shared between computers on S3 storage, see its
parts, publish now, stop sharing. The privacy statement is shown where sharing is chosen.

Every call to the session (which asks the bucket) runs on the backend's worker pool; the
answers come back as signals. Credentials are never asked for here: they come from the
standard AWS variables and files, and Lodestar does not store them.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.backend import Backend
from desktop.workers import Worker
from indexer.errors import user_message
from indexer.library.session import SHARE_PRIVACY

log = logging.getLogger(__name__)

CREDENTIALS_HELP = ("Credentials and the endpoint come from the standard AWS settings (AWS_ACCESS_KEY_ID, "
                    "AWS_SECRET_ACCESS_KEY or AWS_PROFILE, ~/.aws, AWS_ENDPOINT_URL for MinIO, R2 or a NAS). "
                    "Lodestar never stores them.")


def _plain(text: str, parent: QWidget, *, wrap: bool = True) -> QLabel:
    label = QLabel(parent)
    label.setTextFormat(Qt.TextFormat.PlainText)  # a bucket name or a message is never markup
    label.setWordWrap(wrap)
    label.setText(text)
    return label


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else "never"


class ShareDialog(QDialog):
    """The Sharing page of the settings."""

    statusShown = Signal(object)  # the SharedStatus on screen (tests wait for it)

    def __init__(self, backend: Backend, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.backend = backend
        self.status: Any = None
        self._busy = False
        self.setWindowTitle("Share between computers")
        self.setAccessibleName("Share between computers")
        lay = QVBoxLayout(self)

        privacy = QGroupBox("What sharing sends", self)
        pl = QVBoxLayout(privacy)
        self.privacy = _plain(SHARE_PRIVACY, privacy)
        self.privacy.setAccessibleName("Privacy")
        font = self.privacy.font()
        font.setBold(True)
        self.privacy.setFont(font)
        pl.addWidget(self.privacy)
        pl.addWidget(_plain("Each computer searches every part and opens only its own files; "
                            "a part can be removed from the shared library at any time (Stop sharing).", privacy))
        lay.addWidget(privacy)

        self.join_box = QGroupBox("Share this library", self)
        form = QFormLayout(self.join_box)
        self.uri = QLineEdit(self.join_box)
        self.uri.setPlaceholderText("s3://bucket/folder")
        self.uri.setAccessibleName("Shared library address")
        self.computer = QLineEdit(self.join_box)
        self.computer.setAccessibleName("This computer's name")
        self.computer.setPlaceholderText("this computer's host name")
        self.agree = QCheckBox("I understand what is sent to that storage", self.join_box)
        self.share_button = QPushButton("Share", self.join_box)
        self.share_button.setEnabled(False)
        self.share_button.clicked.connect(self.share)
        self.agree.toggled.connect(self._update_buttons)
        self.uri.textChanged.connect(self._update_buttons)
        form.addRow("Address", self.uri)
        form.addRow("This computer", self.computer)
        form.addRow("", _plain(CREDENTIALS_HELP, self.join_box))
        row = QHBoxLayout()
        row.addWidget(self.agree, 1)
        row.addWidget(self.share_button)
        form.addRow("", row)
        lay.addWidget(self.join_box)

        self.parts_box = QGroupBox("Shared library", self)
        ppl = QVBoxLayout(self.parts_box)
        self.where = _plain("", self.parts_box)
        self.where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = QTableWidget(0, 4, self.parts_box)
        self.table.setHorizontalHeaderLabels(["Computer", "Files", "Updated", "Reachable"])
        self.table.setAccessibleName("Parts of the shared library")
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2, 3):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        buttons = QHBoxLayout()
        self.refresh_button = QPushButton("Refresh", self.parts_box)
        self.sync_button = QPushButton("Publish now", self.parts_box)
        self.leave_button = QPushButton("Stop sharing…", self.parts_box)
        self.refresh_button.clicked.connect(self.refresh)
        self.sync_button.clicked.connect(self.publish_now)
        self.leave_button.clicked.connect(self.leave)
        for b in (self.refresh_button, self.sync_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.leave_button)
        ppl.addWidget(self.where)
        ppl.addWidget(self.table)
        ppl.addLayout(buttons)
        lay.addWidget(self.parts_box, 1)

        self.message = _plain("", self)
        self.message.setAccessibleName("Sharing message")
        lay.addWidget(self.message)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        close.rejected.connect(self.reject)
        lay.addWidget(close)
        self.parts_box.hide()
        self.resize(640, 560)

    # -- running session calls off the GUI thread ------------------------------------
    def _run(self, fn: Any, *args: Any, then: Any, doing: str) -> None:
        self._busy = True
        self._update_buttons()
        self.message.setText(doing)
        worker = Worker(fn, *args)

        def answered(value: Any) -> None:
            self._idle()  # idle first: the buttons follow the answer
            then(value)

        worker.signals.result.connect(answered)
        worker.signals.error.connect(self._failed)
        self.backend.pool.start(worker)

    def _idle(self) -> None:
        self._busy = False
        self._update_buttons()

    def _failed(self, exc: BaseException) -> None:
        self._idle()
        self.message.setText(user_message(exc) or f"{type(exc).__name__}: {exc}")

    def _update_buttons(self) -> None:
        self.share_button.setEnabled(not self._busy and self.agree.isChecked() and bool(self.uri.text().strip()))
        for b in (self.refresh_button, self.sync_button, self.leave_button):
            b.setEnabled(not self._busy)

    # -- actions -----------------------------------------------------------------------
    def refresh(self) -> None:
        self._run(self.backend.session.share_status, then=self.show_status, doing="Asking the shared library…")

    def share(self) -> None:
        uri = self.uri.text().strip()
        computer = self.computer.text().strip() or None
        self._run(self.backend.session.share_library, uri, computer, then=self._shared,
                  doing="Sharing: checking the storage and publishing this computer's part…")

    def _shared(self, status: Any) -> None:
        self._new_searcher()
        self.show_status(status)

    def publish_now(self) -> None:
        self._run(self.backend.session.publish_part, then=self.show_status, doing="Publishing this computer's part…")

    def leave(self) -> None:
        box = QMessageBox(QMessageBox.Icon.Question, "Stop sharing",
                          "Stop sharing this library? The other computers stop finding this computer's files.",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self)
        remove = QCheckBox("Also remove this computer's part from the storage", box)
        remove.setChecked(True)
        box.setCheckBox(remove)
        if box.exec() != QMessageBox.StandardButton.Yes:
            return
        self._run(self.backend.session.leave_library, not remove.isChecked(), then=self._left,
                  doing="Stopping sharing…")

    def _left(self, removed: int) -> None:
        self._new_searcher()
        self.refresh()

    def _new_searcher(self) -> None:
        """Searches ask the other computers (or stop asking) from now on."""
        searcher = self.backend.session.shared_searcher()
        if searcher is not None:
            self.backend.searcher = searcher
            self.backend.searcherReady.emit(searcher)

    # -- showing -------------------------------------------------------------------------
    def show_status(self, status: Any) -> None:
        self.status = status
        shared = bool(status.shared)
        self.join_box.setVisible(not shared)
        self.parts_box.setVisible(shared)
        if not shared:
            self.message.setText("This library is not shared.")
            self.statusShown.emit(status)
            return
        lines = [f"{status.uri} — this computer is “{status.computer}”."]
        if status.problem:
            lines.append(f"Not reachable now: {status.problem}. This computer's own files are still searched.")
        if status.publish_problem:
            lines.append(f"Last publish failed: {status.publish_problem}. Retried in the background.")
        else:
            lines.append(f"Last published: {_when(status.last_published)}.")
        self.where.setText("\n".join(lines))
        self.table.setRowCount(len(status.parts))
        for row, part in enumerate(status.parts):
            name = f"{part.computer} (this computer)" if part.this_computer else part.computer
            cells = [name, f"{part.files:,}", _when(part.updated_at), "yes" if part.reachable else "no"]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)  # plain text, never markup
                if col == 3 and part.problem:
                    item.setToolTip(part.problem)
                self.table.setItem(row, col, item)
        self.message.setText("")
        self.statusShown.emit(status)
