"""Where a watched folder went: renamed or moved as a whole while Lodestar was away.

A missing watched folder is usually an unplugged drive (its entries wait, hidden), but
often it was renamed (``Photos`` → ``Photos 2019``) or moved (into ``Archive/``). Then
its files are all still there, under a new prefix, with their sizes and modification
times unchanged (a rename keeps both). `find_new_home` looks for that folder near the
old one and checks a sample of the files the index knows: the index then follows with
no reading and no model call (`indexer.store.tables.Store.relocate_root`).

Nothing here writes; it only lists folders and stats a few files.
"""

from __future__ import annotations

import logging
import math
import os
import random
from collections.abc import Iterable, Iterator, Sequence

from indexer.paths import is_under
from indexer.store.tables import FileRecord

log = logging.getLogger(__name__)

SAMPLE = 32
"""Files of the old folder checked in a candidate (all of them when it holds fewer)."""
AGREEMENT = 0.8
"""Share of the sample that must be there, same size and mtime: a few may have been
deleted or edited since; a different folder never comes close."""
MAX_FOLDERS = 5000
"""Folders looked at in one search; a missing drive's mount point must not cost a walk."""
MAX_CLIMB = 3
"""How many missing levels above the folder the search may climb (a renamed parent)."""


def find_new_home(root: str, records: Iterable[FileRecord], avoid: Sequence[str] = ()) -> str | None:
    """The one folder that now holds the files the index knows under ``root``, or None.

    ``records``: the index's records under ``root``. ``avoid``: folders never taken nor
    searched (the other watched folders, Lodestar's own data). Candidates are the
    folders at the old depth below the nearest ancestor that still exists, then one
    level deeper (moved into a sibling), then the same from one level above that
    ancestor (moved into another branch), nearest first. None when nothing agrees, or
    when two folders at the same distance do (a copy and the original: which one the
    person meant is theirs to say).
    """
    if os.path.lexists(root):
        return None
    known = [r for r in records if r.kind != "folder" and is_under(r.path, root) and r.path != root]
    if not known:
        return None
    sample = random.Random(len(known)).sample(known, min(SAMPLE, len(known)))  # same picks each start
    rels = [os.path.relpath(r.path, root) for r in sample]
    need = max(1, math.ceil(AGREEMENT * len(sample)))
    ancestor, depth = os.path.dirname(root), 1
    while not os.path.isdir(ancestor):
        parent = os.path.dirname(ancestor)
        if parent == ancestor or depth >= MAX_CLIMB:
            return None
        ancestor, depth = parent, depth + 1
    # Nearest first: beside the old place, then one level deeper (moved into a sibling),
    # then from one level up (moved into ~/Archive/2024 from ~/Documents).
    places = [(ancestor, depth), (ancestor, depth + 1)]
    above = os.path.dirname(ancestor)
    if above != ancestor and os.path.dirname(above) != above:  # never a walk from the file system's root
        places += [(above, depth + 1), (above, depth + 2)]
    found: list[str] = []
    for top, level in places:
        for candidate in _folders_at(top, level, avoid):
            if candidate not in found and _agrees(candidate, sample, rels, need):
                found.append(candidate)
        if found:
            break
    if len(found) != 1:
        if found:
            log.info("%s: more than one folder holds its files (%s); not following", root, ", ".join(found))
        return None
    return found[0]


def _folders_at(top: str, level: int, avoid: Sequence[str]) -> Iterator[str]:
    """Real folders exactly ``level`` below ``top``, on ``top``'s own disk (a rename never
    leaves its file system, and another mounted drive, perhaps a slow network share, is
    never listed), symlinks not followed; at most MAX_FOLDERS."""
    try:
        device = os.stat(top).st_dev
    except OSError:
        return
    frontier, seen = [top], 0
    for _ in range(level):
        deeper: list[str] = []
        for folder in frontier:
            try:
                with os.scandir(folder) as it:
                    entries = sorted(e.path for e in it if e.is_dir(follow_symlinks=False)
                                     and e.stat(follow_symlinks=False).st_dev == device)
            except OSError:
                continue
            for path in entries:
                if any(is_under(path, a) for a in avoid):
                    continue  # another watched folder's files are indexed there already
                seen += 1
                if seen > MAX_FOLDERS:
                    return
                deeper.append(path)
        frontier = deeper
    yield from frontier


def _agrees(candidate: str, sample: Sequence[FileRecord], rels: Sequence[str], need: int) -> bool:
    """Whether at least ``need`` of the sample are in ``candidate``, same size and mtime."""
    hits = misses = 0
    allowed = len(sample) - need
    for rec, rel in zip(sample, rels):
        try:
            st = os.stat(os.path.join(candidate, rel), follow_symlinks=False)
            same = st.st_size == rec.size and st.st_mtime_ns == rec.mtime_ns
        except (OSError, ValueError):
            same = False
        if same:
            hits += 1
        else:
            misses += 1
            if misses > allowed:
                return False  # most folders fail on the first file: one stat each
    return hits >= need
