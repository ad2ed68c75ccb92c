"""What the person decides about duplicates: remembered choices and the move to the trash.

Choices live in ``<data dir>/duplicates.json`` (read safely: a damaged file means no
choices, never a failed scan): groups marked "not duplicates" (`DuplicateGroup.key`:
a group whose key lies within a dismissed one is not shown; one with a new member is)
and the folders whose copies are preferred as keepers.

`move_to_trash` is the only place Lodestar changes a person's files, and it only
moves them to the system trash (send2trash), never deletes. It checks every file
first: if one has vanished or changed since the scan, nothing moves and the answer
says which; a group always keeps at least one file.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from indexer.duplicates.tiers import DuplicateGroup, Member
from indexer.library.settings import read_json, write_json_atomic

log = logging.getLogger(__name__)

DECISIONS_FILE = "duplicates.json"


@dataclasses.dataclass
class Decisions:
    dismissed: list[set[str]] = dataclasses.field(default_factory=list)
    preferred: list[str] = dataclasses.field(default_factory=list)


def load_decisions(data_dir: str | os.PathLike[str]) -> Decisions:
    raw = read_json(Path(data_dir) / DECISIONS_FILE)
    if not isinstance(raw, dict):
        return Decisions()
    dismissed = [{h for h in g if isinstance(h, str)} for g in raw.get("not_duplicates", [])
                 if isinstance(g, list)] if isinstance(raw.get("not_duplicates"), list) else []
    preferred = [f for f in raw.get("preferred_folders", []) if isinstance(f, str)] \
        if isinstance(raw.get("preferred_folders"), list) else []
    return Decisions([d for d in dismissed if len(d) > 1], preferred)


def save_decisions(data_dir: str | os.PathLike[str], decisions: Decisions) -> None:
    write_json_atomic(Path(data_dir) / DECISIONS_FILE, {
        "not_duplicates": [sorted(d) for d in decisions.dismissed],
        "preferred_folders": list(decisions.preferred),
    }, indent=2)


def dismiss(data_dir: str | os.PathLike[str], group: DuplicateGroup) -> None:
    """Remember that this group's files are not duplicates (it is not shown again)."""
    decisions = load_decisions(data_dir)
    decisions.dismissed.append(set(group.key))
    save_decisions(data_dir, decisions)


def follow_folder(data_dir: str | os.PathLike[str], old: str, new: str) -> bool:
    """A watched folder followed to its new place: preferred folders in it follow too."""
    from indexer.paths import is_under

    decisions = load_decisions(data_dir)
    moved = [new + f[len(old):] if is_under(f, old) else f for f in decisions.preferred]
    if moved == decisions.preferred:
        return False
    decisions.preferred = moved
    save_decisions(data_dir, decisions)
    return True


def set_preferred(data_dir: str | os.PathLike[str], folders: Sequence[str]) -> None:
    decisions = load_decisions(data_dir)
    decisions.preferred = list(folders)
    save_decisions(data_dir, decisions)


@dataclasses.dataclass
class TrashOutcome:
    moved: list[str] = dataclasses.field(default_factory=list)
    freed: int = 0  # bytes
    refused: str = ""  # why nothing moved ("" when it did)


def trash_plan(group: DuplicateGroup, paths: Sequence[str]) -> tuple[int, int]:
    """(files, bytes) that moving ``paths`` of ``group`` to the trash would free: the confirmation's figures."""
    chosen = set(paths)
    sizes = [m.size for m in group.members if m.path in chosen]
    return len(sizes), sum(sizes)


def _changed(m: Member) -> str:
    """Why ``m`` may not be moved now ("" when it is as the scan saw it)."""
    try:
        st = os.lstat(m.path)
    except FileNotFoundError:
        return f"{m.path} is no longer there"
    except OSError as exc:
        return f"{m.path} cannot be read ({exc.strerror or exc})"
    if not os.path.isfile(m.path) or os.path.islink(m.path):
        return f"{m.path} is no longer a plain file"
    if st.st_size != m.size or abs(st.st_mtime - m.mtime) > 1e-3:
        return f"{m.path} changed since the scan"
    return ""


def move_to_trash(group: DuplicateGroup, paths: Sequence[str],
                  after: Callable[[list[str]], object] | None = None,
                  send: Callable[[str], None] | None = None) -> TrashOutcome:
    """Move ``paths`` (members of ``group``) to the system trash, then ``after(moved)``
    (the index follows: `IndexService.sync_paths`). All or nothing up front: a vanished or
    changed file, a path not in the group, or a choice that leaves no file refuses the move."""
    by_path = {m.path: m for m in group.members}
    chosen = list(dict.fromkeys(paths))
    strangers = [p for p in chosen if p not in by_path]
    if strangers:
        return TrashOutcome(refused=f"{strangers[0]} is not in this group")
    if not chosen:
        return TrashOutcome(refused="no file chosen")
    if len(chosen) >= len(by_path):
        return TrashOutcome(refused="every file of the group was chosen; keep at least one")
    problems = [why for why in (_changed(by_path[p]) for p in chosen) if why]
    kept = [m for m in group.members if m.path not in chosen]
    if not problems and all(_changed(m) for m in kept):
        problems.append("the file to keep is no longer there as the scan saw it")
    if problems:
        return TrashOutcome(refused=f"Nothing was moved: {problems[0]}. Scan again to see the files as they are now.")
    if send is None:
        from send2trash import send2trash

        send = send2trash
    outcome = TrashOutcome()
    try:
        for p in chosen:
            send(p)
            outcome.moved.append(p)
            outcome.freed += by_path[p].size
    except OSError as exc:
        outcome.refused = f"Stopped: {p} could not be moved to the trash ({exc})"
        log.warning("move to trash failed for %s: %s", p, exc)
    if outcome.moved and after is not None:
        after(outcome.moved)
    return outcome
