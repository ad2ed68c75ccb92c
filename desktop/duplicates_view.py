"""The Duplicates view: groups by kind, side-by-side comparison, keep one, trash the rest.

The scan, the move to the trash and the document comparison run on this view's own
worker thread (`desktop.workers`), never on the GUI thread; the view asks the library
session (`find_duplicates`, `trash_duplicates`, `not_duplicates`, `differing_passages`).
Groups are listed under their kind (each kind's rule is shown with it), largest
reclaimable space first. Moving to the trash is confirmed with the number of files and
bytes; nothing is ever deleted.
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.opener import Opener, OpenRefused
from desktop.workers import Worker, WorkerPool
from indexer.wording import human_bytes, plural

log = logging.getLogger(__name__)

TIER_TITLES = {
    "identical": "Identical files",
    "resaved": "Same picture, saved again",
    "burst": "Similar shots",
    "document": "Same document, another form or version",
}
GroupRole = Qt.ItemDataRole.UserRole + 1
CARD_THUMB = 150
CARDS_PER_ROW = 3


def ask_to_trash(parent: QWidget, files: int, size: int) -> bool:
    """The confirmation: how many files and bytes go to the trash."""
    box = QMessageBox(QMessageBox.Icon.Question, "Move to trash",
                      f"Move {plural(files, 'file')} ({human_bytes(size)}) to the trash?\n\n"
                      "They can be restored from the trash; nothing is deleted.", parent=parent)
    box.setStandardButtons(QMessageBox.StandardButton.Cancel | QMessageBox.StandardButton.Yes)
    box.button(QMessageBox.StandardButton.Yes).setText("Move to trash")
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    return box.exec() == QMessageBox.StandardButton.Yes


def member_facts(m: Any) -> str:
    """Size, dimensions, date and camera of a member, as one line."""
    parts = [human_bytes(m.size)]
    if m.width and m.height:
        parts.append(f"{m.width}×{m.height}")
    when = m.taken if m.taken is not None else m.mtime
    parts.append(("taken " if m.taken is not None else "modified ")
                 + datetime.datetime.fromtimestamp(when).strftime("%Y-%m-%d %H:%M"))
    if m.camera:
        parts.append(m.camera)
    return " · ".join(parts)


def likeness(tier: str, m: Any) -> str:
    """How close a member is to the keeper, in the group's own terms."""
    if m.similarity is None:
        return ""
    if tier == "document":
        return f"{m.similarity:.0%} of the text shared"
    bits = f", hashes {m.distance_bits} bits apart" if m.distance_bits is not None else ""
    return f"image similarity {m.similarity:.2f}{bits}"


class MemberCard(QFrame):
    """One file of a group: picture, facts, keep/trash choice, open and reveal."""

    def __init__(self, member: Any, tier: str, keeper: bool, why: str, thumbnail: Any, parent: QWidget,
                 preferred: bool = False) -> None:
        super().__init__(parent)
        self.member = member
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setMinimumWidth(CARD_THUMB + 40)
        self.setMaximumWidth(CARD_THUMB + 90)
        lay = QVBoxLayout(self)
        self.picture = QLabel(self)
        self.picture.setFixedHeight(CARD_THUMB)
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setText("" if member.kind == "image" else os.path.splitext(member.path)[1].upper().lstrip(".") or "FILE")
        lay.addWidget(self.picture)
        self.set_thumbnail(thumbnail)
        name = QLabel(f"<b>{_escape(os.path.basename(member.path))}</b>", self)
        name.setToolTip(member.path)
        folder = QLabel(os.path.dirname(member.path), self)
        folder.setTextFormat(Qt.TextFormat.PlainText)
        folder.setWordWrap(True)
        facts = QLabel(member_facts(member), self)
        facts.setWordWrap(True)
        lay.addWidget(name)
        lay.addWidget(folder)
        lay.addWidget(facts)
        close = likeness(tier, member)
        if close and not keeper:
            closeness = QLabel(close, self)
            closeness.setWordWrap(True)
            lay.addWidget(closeness)
        if keeper:
            badge = QLabel(f"Suggested to keep: {why}", self)
            badge.setWordWrap(True)
            badge.setStyleSheet("color: palette(highlight); font-weight: bold;")
            lay.addWidget(badge)
        self.trash = QCheckBox("Move to trash", self)
        self.trash.setChecked(not keeper)
        lay.addWidget(self.trash)
        row = QHBoxLayout()
        self.open_button = QPushButton("Open", self)
        self.reveal_button = QPushButton("Show in folder", self)
        row.addWidget(self.open_button)
        row.addWidget(self.reveal_button)
        lay.addLayout(row)
        self.prefer_button = QPushButton("Stop preferring this folder" if preferred else "Prefer this folder", self)
        self.prefer_button.setToolTip("Copies inside a preferred folder are suggested as the ones to keep.")
        lay.addWidget(self.prefer_button)
        lay.addStretch(1)

    def set_thumbnail(self, pixmap: Any) -> None:
        if pixmap is not None:
            self.picture.setPixmap(pixmap.scaled(CARD_THUMB, CARD_THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                                                 Qt.TransformationMode.SmoothTransformation))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class DuplicatesView(QDialog):
    """``session``: the library session (or a test double with its duplicate methods)."""

    def __init__(self, session: Any, opener: Opener, thumbnails: Any = None, parent: QWidget | None = None,
                 confirm: Callable[[QWidget, int, int], bool] = ask_to_trash) -> None:
        super().__init__(parent)
        self.session = session
        self.opener = opener
        self.thumbnails = thumbnails
        self.confirm = confirm
        self.pool = WorkerPool(max_threads=1, name="duplicates", parent=self)
        self.groups: list[Any] = []
        self.preferred: list[str] = []
        self.current: Any = None
        self.cards: list[MemberCard] = []
        self._scan: Worker | None = None
        self.setWindowTitle("Duplicates")
        self.resize(1180, 720)

        top = QHBoxLayout()
        self.summary = QLabel("Not scanned yet.", self)
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        self.tier_filter = QComboBox(self)
        self.tier_filter.addItem("All kinds", None)
        for tier, title in TIER_TITLES.items():
            self.tier_filter.addItem(title, tier)
        self.tier_filter.currentIndexChanged.connect(lambda _i: self.show_groups(self.groups))
        self.scan_button = QPushButton("Scan again", self)
        self.scan_button.clicked.connect(self.scan)
        top.addWidget(self.summary, 1)
        top.addWidget(self.tier_filter)
        top.addWidget(self.scan_button)

        self.tree = QTreeWidget(self)
        self.tree.setHeaderHidden(True)
        self.tree.setAccessibleName("Duplicate groups by kind")
        self.tree.currentItemChanged.connect(lambda item, _prev: self.show_group(item.data(0, GroupRole) if item else None))

        right = QWidget(self)
        rlay = QVBoxLayout(right)
        rlay.setContentsMargins(0, 0, 0, 0)
        self.rule = QLabel("", right)
        self.rule.setWordWrap(True)
        self.rule.setTextFormat(Qt.TextFormat.PlainText)
        self.cards_area = QScrollArea(right)
        self.cards_area.setWidgetResizable(True)
        self.cards_host = QWidget(self.cards_area)
        self.cards_layout = QGridLayout(self.cards_host)
        self.cards_layout.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.cards_area.setWidget(self.cards_host)
        self.passages = QPlainTextEdit(right)
        self.passages.setReadOnly(True)
        self.passages.setMaximumHeight(160)
        self.passages.setPlaceholderText("Differing passages appear here for documents.")
        self.passages.hide()
        actions = QHBoxLayout()
        self.message = QLabel("", right)
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.dismiss_button = QPushButton("Not duplicates", right)
        self.dismiss_button.setToolTip("Remember that these files are not duplicates; the group is not shown again.")
        self.trash_button = QPushButton("Move checked to trash…", right)
        self.dismiss_button.clicked.connect(self.dismiss_current)
        self.trash_button.clicked.connect(self.trash_checked)
        actions.addWidget(self.message, 1)
        actions.addWidget(self.dismiss_button)
        actions.addWidget(self.trash_button)
        rlay.addWidget(self.rule)
        rlay.addWidget(self.cards_area, 1)
        rlay.addWidget(self.passages)
        rlay.addLayout(actions)

        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(self.tree)
        split.addWidget(right)
        split.setSizes([380, 800])
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(split, 1)
        note = QLabel("Lodestar never changes your files unless you ask it to, and then only moves them to the trash.", self)
        note.setStyleSheet("color: palette(mid);")
        lay.addWidget(note)
        self._set_actions_enabled(False)
        if thumbnails is not None:
            thumbnails.loaded.connect(self._thumbnail_loaded)

    # -- scanning ---------------------------------------------------------------------
    def scan(self) -> None:
        if self._scan is not None:
            return
        self.summary.setText("Scanning…")
        self.scan_button.setEnabled(False)
        def find(cancel: Any, progress: Any) -> tuple[list[Any], list[str]]:
            groups = self.session.find_duplicates(progress=progress, cancel=cancel.is_set)
            return groups, self.session.preferred_folders()

        worker = Worker(find, pass_cancel=True, pass_progress=True)
        worker.signals.progress.connect(lambda line: self.summary.setText(str(line)))
        worker.signals.result.connect(self._scanned)
        worker.signals.error.connect(lambda exc: self.summary.setText(f"The scan failed: {exc}"))
        worker.signals.finished.connect(self._scan_done)
        self._scan = self.pool.start(worker)

    def _scanned(self, found: tuple[list[Any], list[str]]) -> None:
        groups, self.preferred = found
        self.show_groups(groups)

    def _scan_done(self) -> None:
        self._scan = None
        self.scan_button.setEnabled(True)

    def show_groups(self, groups: list[Any]) -> None:
        self.groups = list(groups)
        wanted = self.tier_filter.currentData()
        shown = [g for g in self.groups if wanted is None or g.tier == wanted]
        self.tree.clear()
        first = None
        for tier, title in TIER_TITLES.items():
            of_tier = [g for g in shown if g.tier == tier]
            if not of_tier:
                continue
            total = sum(g.reclaimable for g in of_tier)
            head = QTreeWidgetItem([f"{title} — {plural(len(of_tier), 'group')}, {human_bytes(total)}"])
            head.setToolTip(0, of_tier[0].rule)
            head.setFlags(head.flags() & ~Qt.ItemFlag.ItemIsSelectable)
            font = head.font(0)
            font.setBold(True)
            head.setFont(0, font)
            self.tree.addTopLevelItem(head)
            for g in of_tier:
                keeper = g.members[g.keeper]
                item = QTreeWidgetItem([f"{os.path.basename(keeper.path)} + {plural(len(g.members) - 1, 'other')}"
                                        f" · {human_bytes(g.reclaimable)}"])
                item.setToolTip(0, "\n".join(m.path for m in g.members))
                item.setData(0, GroupRole, g)
                head.addChild(item)
                first = first or item
            head.setExpanded(True)
        total = sum(g.reclaimable for g in self.groups)
        self.summary.setText(f"{plural(len(self.groups), 'group')}; {human_bytes(total)} could be reclaimed."
                             if self.groups else "No duplicates found.")
        if first is not None:
            self.tree.setCurrentItem(first)
        else:
            self.show_group(None)

    # -- one group ---------------------------------------------------------------------
    def show_group(self, group: Any) -> None:
        self.current = group
        for card in self.cards:
            card.deleteLater()
        self.cards = []
        self.passages.hide()
        self.message.setText("")
        self._set_actions_enabled(group is not None)
        if group is None:
            self.rule.setText("")
            return
        self.rule.setText(f"{TIER_TITLES[group.tier]}. {group.rule}\nSuggested keeper: {group.keeper_why}.")
        for i, m in enumerate(group.members):
            folder = os.path.dirname(m.path)
            card = MemberCard(m, group.tier, i == group.keeper, group.keeper_why, self._thumb(m), self.cards_host,
                              preferred=folder in self.preferred)
            card.prefer_button.clicked.connect(lambda _c=False, f=folder: self.toggle_preferred(f))
            card.open_button.clicked.connect(lambda _c=False, p=m.path: self._open(p, reveal=False))
            card.reveal_button.clicked.connect(lambda _c=False, p=m.path: self._open(p, reveal=True))
            card.trash.toggled.connect(lambda _on: self._update_trash_button())
            self.cards_layout.addWidget(card, i // CARDS_PER_ROW, i % CARDS_PER_ROW)
            self.cards.append(card)
        self._update_trash_button()
        if group.tier == "document":
            self._load_passages(group)

    def _thumb_path(self, m: Any) -> str:
        return os.path.join(self.thumbnails.thumb_dir, f"{m.content_hash}.png") if self.thumbnails else ""

    def _thumb(self, m: Any) -> Any:
        if m.kind != "image" or self.thumbnails is None:
            return None
        return self.thumbnails.pixmap(self._thumb_path(m))

    def _thumbnail_loaded(self, path: str) -> None:
        for card in self.cards:
            if self._thumb_path(card.member) == path:
                card.set_thumbnail(self.thumbnails.pixmap(path))

    def _load_passages(self, group: Any) -> None:
        keeper = group.members[group.keeper]
        others = [m for i, m in enumerate(group.members) if i != group.keeper]

        def differing() -> str:
            out = []
            for m in others:
                texts = self.session.differing_passages(keeper.path, m.path)
                name = os.path.basename(m.path)
                if texts:
                    out.append(f"In {name}, not in {os.path.basename(keeper.path)}:")
                    out.extend(f"  • {t.strip()[:400]}" for t in texts)
                else:
                    out.append(f"{name}: no passage differs from {os.path.basename(keeper.path)}.")
            return "\n".join(out)

        worker = Worker(differing)
        worker.signals.result.connect(lambda text, g=group: self._show_passages(g, text))
        worker.signals.error.connect(lambda exc: log.info("differing passages unavailable: %s", exc))
        self.pool.start(worker)

    def _show_passages(self, group: Any, text: str) -> None:
        if group is self.current:
            self.passages.setPlainText(text)
            self.passages.show()

    def _open(self, path: str, *, reveal: bool) -> None:
        try:
            (self.opener.reveal if reveal else self.opener.open)(path)
        except OpenRefused as exc:
            self.message.setText(str(exc))

    # -- actions ---------------------------------------------------------------------
    def checked_paths(self) -> list[str]:
        return [c.member.path for c in self.cards if c.trash.isChecked()]

    def _update_trash_button(self) -> None:
        chosen = self.checked_paths()
        size = sum(c.member.size for c in self.cards if c.trash.isChecked())
        self.trash_button.setText(f"Move {plural(len(chosen), 'file')} to trash ({human_bytes(size)})…"
                                  if chosen else "Move checked to trash…")
        self.trash_button.setEnabled(bool(chosen) and len(chosen) < len(self.cards))

    def _set_actions_enabled(self, on: bool) -> None:
        self.trash_button.setEnabled(on)
        self.dismiss_button.setEnabled(on)

    def trash_checked(self) -> None:
        group, paths = self.current, self.checked_paths()
        if group is None or not paths:
            return
        size = sum(m.size for m in group.members if m.path in paths)
        if not self.confirm(self, len(paths), size):
            return
        self._set_actions_enabled(False)
        self.message.setText("Moving to the trash…")
        worker = Worker(self.session.trash_duplicates, group, paths)
        worker.signals.result.connect(lambda outcome, g=group: self._trashed(g, outcome))
        worker.signals.error.connect(lambda exc: self.message.setText(f"Nothing more was moved: {exc}"))
        self.pool.start(worker)

    def _trashed(self, group: Any, outcome: Any) -> None:
        if outcome.moved:
            left = [m for m in group.members if m.path not in outcome.moved]
            self._drop(group, keep_if_several=left)
        self.message.setText(outcome.refused or f"Moved {plural(len(outcome.moved), 'file')} to the trash; "
                                                 f"{human_bytes(outcome.freed)} freed.")
        self._set_actions_enabled(self.current is not None)

    def toggle_preferred(self, folder: str) -> None:
        """Prefer copies inside ``folder`` as keepers (or stop), then scan again to re-choose."""
        preferred = [f for f in self.preferred if f != folder]
        if len(preferred) == len(self.preferred):
            preferred.append(folder)
        self.session.set_preferred_folders(preferred)
        self.preferred = preferred
        self.scan()

    def dismiss_current(self) -> None:
        group = self.current
        if group is None:
            return
        self.session.not_duplicates(group)
        self._drop(group)
        self.message.setText("Remembered: those files are not shown as duplicates again.")

    def _drop(self, group: Any, keep_if_several: list[Any] | None = None) -> None:
        """Take a group off the list (or what is left of it, when several files remain)."""
        groups = [g for g in self.groups if g is not group]
        if keep_if_several is not None and len(keep_if_several) > 1:
            group.members = keep_if_several
            group.keeper = 0
            groups.append(group)
            groups.sort(key=lambda g: -g.reclaimable)
        message = self.message.text()
        self.show_groups(groups)
        self.message.setText(message)

    def closeEvent(self, event: Any) -> None:  # Qt override
        self.pool.cancel_all()
        super().closeEvent(event)
