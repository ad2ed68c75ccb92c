"""The Duplicates view on a fake session: kinds kept apart, the trash confirmation, "not
duplicates", a file gone since the scan, and the File menu's way in (issue 18)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from indexer.duplicates.actions import TrashOutcome
from indexer.duplicates.tiers import DuplicateGroup, Member, Rules

pytestmark = pytest.mark.gui


def _group(tier: str, names: list[str], size: int, keeper: int = 0) -> DuplicateGroup:
    members = [Member(f"/photos/{n}", size, 1_700_000_000.0 + i, f"h{tier}{i}", "image", 640, 480,
                      similarity=0.97 if i != keeper else 1.0) for i, n in enumerate(names)]
    return DuplicateGroup(tier, Rules().text(tier), members, keeper, "Largest resolution (640×480)")


class FakeDuplicateSession:
    def __init__(self, groups: list[DuplicateGroup], outcome: TrashOutcome | None = None) -> None:
        self.groups = groups
        self.outcome = outcome
        self.trashed: list[list[str]] = []
        self.dismissed: list[DuplicateGroup] = []
        self.scan_threads: list[str] = []
        self.preferred: list[str] = []

    def find_duplicates(self, tiers: Any = None, progress: Any = None, cancel: Any = None) -> list[DuplicateGroup]:
        self.scan_threads.append(threading.current_thread().name)
        if progress is not None:
            progress("Looking at pictures…")
        return list(self.groups)

    def trash_duplicates(self, group: DuplicateGroup, paths: list[str]) -> TrashOutcome:
        self.trashed.append(list(paths))
        if self.outcome is not None:
            return self.outcome
        return TrashOutcome(moved=list(paths), freed=sum(m.size for m in group.members if m.path in paths))

    def preferred_folders(self) -> list[str]:
        return list(self.preferred)

    def set_preferred_folders(self, folders: list[str]) -> None:
        self.preferred = list(folders)

    def not_duplicates(self, group: DuplicateGroup) -> None:
        self.dismissed.append(group)

    def differing_passages(self, keeper: str, other: str) -> list[str]:
        return ["An added paragraph."]


GROUPS = [
    _group("identical", ["a.jpg", "copy of a.jpg", "a (2).jpg"], 5_000_000),
    _group("resaved", ["b.jpg", "b-small.jpg"], 2_000_000),
    _group("burst", ["c1.jpg", "c2.jpg", "c3.jpg"], 3_000_000),
]


@pytest.fixture
def view(qtbot: Any, no_leaks: None) -> Any:
    from desktop.duplicates_view import DuplicatesView
    from desktop.opener import Opener

    asked: list[tuple[int, int]] = []
    session = FakeDuplicateSession(list(GROUPS))
    opener = Opener(lambda: ["/photos"], open_url=lambda url: True, run=lambda argv: None, platform="linux")
    dlg = DuplicatesView(session, opener, None, confirm=lambda parent, files, size: asked.append((files, size)) or True)
    dlg.asked = asked
    qtbot.addWidget(dlg)
    dlg.show()
    dlg.scan()
    qtbot.waitUntil(lambda: dlg.tree.topLevelItemCount() > 0, timeout=5000)
    yield dlg
    dlg.pool.wait()


def test_three_kinds_of_groups_are_listed_apart_with_their_rules(view: Any) -> None:
    heads = [view.tree.topLevelItem(i) for i in range(view.tree.topLevelItemCount())]
    assert [h.text(0).split(" — ")[0] for h in heads] == ["Identical files", "Same picture, saved again", "Similar shots"]
    assert heads[0].toolTip(0).startswith("Same bytes") and "perceptual" in heads[1].toolTip(0)
    assert "minutes" in heads[2].toolTip(0)
    assert "3 groups" in view.summary.text() and "MB could be reclaimed" in view.summary.text()
    assert view.session.scan_threads and view.session.scan_threads[0] != threading.current_thread().name
    # The first group is shown side by side, with its keeper and the rule that chose it.
    assert len(view.cards) == 3 and "Largest resolution" in view.rule.text()
    assert [c.trash.isChecked() for c in view.cards] == [False, True, True]
    assert any("640×480" in label.text() for label in view.cards[0].findChildren(type(view.summary)))


def test_trash_confirms_files_and_bytes_then_moves_only_the_checked(view: Any, qtbot: Any) -> None:
    assert view.trash_button.text() == "Move 2 files to trash (10.0 MB)…"
    view.trash_checked()
    assert view.asked == [(2, 10_000_000)]
    qtbot.waitUntil(lambda: "freed" in view.message.text(), timeout=5000)
    assert view.session.trashed == [["/photos/copy of a.jpg", "/photos/a (2).jpg"]]
    assert "10.0 MB freed" in view.message.text()
    assert all(g.tier != "identical" for g in view.groups)


def test_a_file_gone_since_the_scan_is_said_and_the_group_stays(view: Any, qtbot: Any) -> None:
    view.session.outcome = TrashOutcome(refused="Nothing was moved: /photos/a (2).jpg is no longer there. Scan again.")
    view.trash_checked()
    qtbot.waitUntil(lambda: "Nothing was moved" in view.message.text(), timeout=5000)
    assert any(g.tier == "identical" for g in view.groups)


def test_the_whole_group_cannot_be_trashed_from_the_view(view: Any) -> None:
    view.cards[0].trash.setChecked(True)
    assert not view.trash_button.isEnabled()


def test_not_duplicates_is_remembered_and_the_group_leaves(view: Any) -> None:
    group = view.current
    view.dismiss_current()
    assert view.session.dismissed == [group]
    assert group not in view.groups and "Remembered" in view.message.text()


def test_a_folder_can_be_preferred_and_the_view_scans_again(view: Any, qtbot: Any) -> None:
    scans = len(view.session.scan_threads)
    view.cards[1].prefer_button.click()
    assert view.session.preferred == ["/photos"]
    qtbot.waitUntil(lambda: bool(view.cards) and view.cards[0].prefer_button.text() == "Stop preferring this folder",
                    timeout=5000)
    assert len(view.session.scan_threads) == scans + 1


def test_the_file_menu_opens_the_duplicates_view(window: Any, qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    session = window.backend.session
    monkeypatch.setattr(session, "find_duplicates", lambda **kw: list(GROUPS))
    action = next(a for a in window.menuBar().actions()[0].menu().actions() if a.text() == "Duplicates…")
    action.trigger()
    from desktop.duplicates_view import DuplicatesView

    dlg = next(w for w in window.findChildren(DuplicatesView))
    qtbot.waitUntil(lambda: dlg.tree.topLevelItemCount() == 3, timeout=5000)
    dlg.close()
