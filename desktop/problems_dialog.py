"""Problems: files that failed, are pending, or are findable by name only — grouped by reason.

The same reason (often long: a model's failure) is shown once, wrapped, with its files
beneath it; the count is the one the status bar and the settings show (the store's
``problems()``).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.backend import Backend, Problem
from desktop.opener import Opener, OpenRefused
from indexer.wording import plural

STATE_LABELS = {"failed": "Failed", "pending": "Waiting", "name_only": "Name only", "unavailable": "Offline"}
PathRole = Qt.ItemDataRole.UserRole + 1


def wrap_to_width(text: str, advance: Callable[[str], int], width: int) -> str:
    """Break ``text`` at spaces so no line is wider than ``width`` pixels (a longer word keeps its line)."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if line and advance(candidate) > width:
            lines.append(line)
            line = word
        else:
            line = candidate
    if line:
        lines.append(line)
    return "\n".join(lines)


def group_problems(problems: list[Problem]) -> list[tuple[str, str, list[str]]]:
    """(state, reason, paths) per distinct state and reason, largest group first."""
    groups: dict[tuple[str, str], list[str]] = {}
    for p in problems:
        groups.setdefault((p.state, p.reason.strip() or "no reason recorded"), []).append(p.path)
    return sorted(((s, r, sorted(paths)) for (s, r), paths in groups.items()), key=lambda g: (-len(g[2]), g[0], g[1]))


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
        self.tree = QTreeWidget(self)
        self.tree.setAccessibleName("Problems by reason")
        self.tree.setColumnCount(1)
        self.tree.setHeaderHidden(True)
        self.tree.setWordWrap(False)  # reasons are wrapped at word boundaries by show_problems
        self.tree.setUniformRowHeights(False)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # file paths only
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.itemDoubleClicked.connect(lambda _i, _c: self.open_selected())
        row = QHBoxLayout()
        self.retry_button = QPushButton("Retry", self)
        self.retry_button.setAccessibleName("Retry selected files")
        self.open_button = QPushButton("Open", self)
        self.open_button.setAccessibleName("Open selected file")
        self.message = QLabel(self)
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.message.setWordWrap(True)
        self.retry_button.clicked.connect(self.retry_selected)
        self.open_button.clicked.connect(self.open_selected)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self.buttons.rejected.connect(self.reject)
        row.addWidget(self.message, 1)
        row.addWidget(self.retry_button)
        row.addWidget(self.open_button)
        row.addWidget(self.buttons)
        lay.addWidget(self.summary)
        lay.addWidget(self.tree, 1)
        lay.addLayout(row)
        backend.problemsReady.connect(self.show_problems)
        self.resize(760, 420)

    def reload(self) -> None:
        self.summary.setText("Loading…")
        self.backend.load_problems()

    def show_problems(self, problems: list[Problem]) -> None:
        keep = {tuple(item.data(0, PathRole) or []) for item in self.tree.selectedItems()}
        self.problems = list(problems)
        self.tree.clear()
        for state, reason, paths in group_problems(self.problems):
            label = STATE_LABELS.get(state, state)
            # Wrapped at word boundaries to the tree's width: a long reason is read whole, never cut.
            top = QTreeWidgetItem([wrap_to_width(f"{label}: {reason} ({plural(len(paths), 'file')})",
                                                 self.tree.fontMetrics().horizontalAdvance, self._wrap_px())])
            top.setToolTip(0, reason)
            top.setData(0, PathRole, paths)
            for path in paths:
                child = QTreeWidgetItem([path])  # plain text
                child.setToolTip(0, path)
                child.setData(0, PathRole, [path])
                top.addChild(child)
            self.tree.addTopLevelItem(top)
            top.setExpanded(len(paths) <= 3)
            # A reload (after Retry) keeps what was selected, so Open still has its file.
            top.setSelected(tuple(paths) in keep)
            for i in range(top.childCount()):
                item = top.child(i)
                if item is not None:
                    item.setSelected(tuple(item.data(0, PathRole)) in keep)
        self.summary.setText(f"{plural(len(self.problems), 'file')} need attention" if len(self.problems) != 1
                             else "1 file needs attention")
        if not self.problems:
            self.summary.setText("No problems: every file was indexed.")

    def _wrap_px(self) -> int:
        """Room for a group's text: the tree's width less the branch indicator and margins."""
        return max(200, max(self.tree.viewport().width(), self.width() - 60) - 60)

    def selected_paths(self) -> list[str]:
        out: list[str] = []
        for item in self.tree.selectedItems():
            out.extend(item.data(0, PathRole) or [])
        return list(dict.fromkeys(out))

    def retry_selected(self) -> None:
        paths = self.selected_paths()
        if paths and self.backend.retry(paths) is not None:
            self.message.setText(f"Retrying {plural(len(paths), 'file')}…")

    def open_selected(self) -> None:
        paths = self.selected_paths()
        if not paths:
            return
        try:
            self.opener.open(paths[0])
        except OpenRefused as exc:
            self.message.setText(str(exc))
