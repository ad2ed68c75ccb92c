"""Problems: files that failed, are pending, or are findable by name only — with reasons."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.backend import Backend, Problem
from desktop.opener import Opener, OpenRefused

STATE_LABELS = {"failed": "Failed", "pending": "Waiting", "name_only": "Name only", "unavailable": "Offline"}


class ProblemsDialog(QDialog):
    def __init__(self, backend: Backend, opener: Opener, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.backend = backend
        self.opener = opener
        self.problems: list[Problem] = []
        self.setWindowTitle("Problems")
        lay = QVBoxLayout(self)
        self.summary = QLabel("Loading…", self)
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        self.table = QTableWidget(0, 3, self)
        self.table.setAccessibleName("Problem files")
        self.table.setHorizontalHeaderLabels(["File", "State", "Reason"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.verticalHeader().hide()
        h = self.table.horizontalHeader()
        h.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        h.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        h.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.doubleClicked.connect(lambda _i: self.open_selected())
        row = QHBoxLayout()
        self.retry_button = QPushButton("Retry", self)
        self.retry_button.setAccessibleName("Retry selected files")
        self.open_button = QPushButton("Open", self)
        self.open_button.setAccessibleName("Open selected file")
        self.message = QLabel(self)
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.retry_button.clicked.connect(self.retry_selected)
        self.open_button.clicked.connect(self.open_selected)
        row.addWidget(self.message, 1)
        row.addWidget(self.retry_button)
        row.addWidget(self.open_button)
        lay.addWidget(self.summary)
        lay.addWidget(self.table, 1)
        lay.addLayout(row)
        backend.problemsReady.connect(self.show_problems)
        self.resize(760, 420)

    def reload(self) -> None:
        self.summary.setText("Loading…")
        self.backend.load_problems()

    def show_problems(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        self.table.setRowCount(len(problems))
        for row, p in enumerate(problems):
            for col, text in enumerate((p.path, STATE_LABELS.get(p.state, p.state), p.reason)):
                item = QTableWidgetItem(text)  # plain text
                item.setToolTip(text)
                self.table.setItem(row, col, item)
        self.summary.setText(f"{len(problems):,} files need attention" if problems
                             else "No problems: every file was indexed.")

    def selected_paths(self) -> list[str]:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [self.problems[r].path for r in rows if r < len(self.problems)]

    def retry_selected(self) -> None:
        paths = self.selected_paths()
        if paths and self.backend.retry(paths) is not None:
            self.message.setText(f"Retrying {len(paths)} file(s)…")

    def open_selected(self) -> None:
        paths = self.selected_paths()
        if not paths:
            return
        try:
            self.opener.open(paths[0])
        except OpenRefused as exc:
            self.message.setText(str(exc))
