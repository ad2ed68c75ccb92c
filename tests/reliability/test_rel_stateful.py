"""Promise 4: the index converges to the disk, whatever sequence of changes happens.

A Hypothesis state machine creates, edits, atomically saves, renames, moves and
deletes files and folders in a temporary root while a real WatchService and a real
IndexService (hash embedders, real LanceDB store) follow along. After things settle
(the watcher idle, then one reconcile, as the periodic one would do) the index must
equal a model of the file system: the same paths, and for every file with words the
state ``indexed`` with the hash of its current bytes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from indexer.ingest.pipeline import IndexService
from indexer.library.settings import Settings, open_paths, save_settings
from indexer.store.tables import Store
from indexer.watch.watcher import WatchService
from tests.support.fakes import HashImageEmbedder, HashTextEmbedder

WORDS = ["harbor", "lantern", "quartz", "meadow", "violin", "copper", "ember", "glacier"]
NAMES = ["a.txt", "b.md", "notes.txt", "c.txt"]
DIRS = ["d1", "d2", "sub"]
SETTLE_S = 60.0
STATS = {"checks": 0, "watcher_alone_equal": 0}

content_st = st.lists(st.sampled_from(WORDS), max_size=6).map(lambda ws: " ".join(ws).encode())


def _h(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class IndexEqualsDisk(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="lodestar-stateful-"))
        self.root = Path(os.path.realpath(self.tmp / "root"))
        self.root.mkdir()
        self.files: dict[str, bytes] = {}  # relative path -> bytes (the model)
        self.dirs: set[str] = {""}  # relative folders ('' is the root)
        paths = open_paths(self.tmp / "data")
        self.settings = Settings(folders=[str(self.root)], reconcile_interval_s=3600)
        save_settings(paths, self.settings)
        text, image = HashTextEmbedder(), HashImageEmbedder()
        self.store = Store(paths.store, text_model=(text.model_id, text.dim), image_model=(image.model_id, image.dim))
        self.service = IndexService(self.store, paths, self.settings, text, image)
        # The check reads through a second connection: what is on disk, not the writer's cache.
        self.reader = Store(paths.store, text_model=(text.model_id, text.dim), image_model=(image.model_id, image.dim))
        self.ws = WatchService(self.service, self.settings, paths, debounce_s=0.05, max_delay_s=0.5, supervise_interval_s=0.2)
        self.ws.start()

    # ------------------------------------------------------------------ helpers
    def _abs(self, rel: str) -> Path:
        return self.root / rel if rel else self.root

    def _index_view(self) -> dict[str, tuple[str, str]]:
        with self.service._lock:  # between batches, like the window's refresh
            return {os.path.relpath(r.path, self.root): (r.state, r.content_hash) for r in self.reader.files().values()}

    def _matches(self) -> list[str]:
        view = self._index_view()
        diffs = [f"extra in index: {p}" for p in view if p not in self.files]
        for p, data in self.files.items():
            got = view.get(p)
            if got is None:
                diffs.append(f"missing from index: {p}")
            elif data.strip():
                if got != ("indexed", _h(data)):
                    diffs.append(f"{p}: index has {got}, disk has {_h(data)}")
            elif got[0] != "name_only":
                diffs.append(f"{p}: empty file is {got[0]}")
        return diffs

    def _settle(self) -> None:
        time.sleep(0.3)  # let inotify deliver the last events into the queue
        assert self.ws.wait_idle(SETTLE_S)

    # ------------------------------------------------------------------ rules
    @rule(folder=st.sampled_from(DIRS + [""]), name=st.sampled_from(NAMES), data=content_st)
    def create(self, folder: str, name: str, data: bytes) -> None:
        if folder not in self.dirs:
            return
        rel = os.path.join(folder, name)
        if rel in self.dirs:
            return
        self._abs(rel).write_bytes(data)
        self.files[rel] = data

    @precondition(lambda self: self.files)
    @rule(pick=st.integers(0, 1000), data=content_st)
    def modify(self, pick: int, data: bytes) -> None:
        rel = sorted(self.files)[pick % len(self.files)]
        self._abs(rel).write_bytes(data)
        self.files[rel] = data

    @precondition(lambda self: self.files)
    @rule(pick=st.integers(0, 1000), data=content_st)
    def atomic_save(self, pick: int, data: bytes) -> None:
        rel = sorted(self.files)[pick % len(self.files)]
        target = self._abs(rel)
        tmp = target.with_name(f".{target.name}.swp")  # an editor's temp name: excluded
        tmp.write_bytes(data)
        os.replace(tmp, target)
        self.files[rel] = data

    @precondition(lambda self: self.files)
    @rule(pick=st.integers(0, 1000), folder=st.sampled_from(DIRS + [""]), name=st.sampled_from(NAMES))
    def rename(self, pick: int, folder: str, name: str) -> None:
        src = sorted(self.files)[pick % len(self.files)]
        dst = os.path.join(folder, name)
        if folder not in self.dirs or dst in self.dirs or dst == src:
            return
        os.replace(self._abs(src), self._abs(dst))
        self.files[dst] = self.files.pop(src)

    @precondition(lambda self: len(self.dirs) > 1)
    @rule(pick=st.integers(0, 1000), parent=st.sampled_from(DIRS + [""]), name=st.sampled_from(DIRS))
    def move_dir(self, pick: int, parent: str, name: str) -> None:
        src = sorted(self.dirs - {""})[pick % (len(self.dirs) - 1)]
        dst = os.path.join(parent, name)
        if parent not in self.dirs or dst in self.dirs or dst in self.files or dst == src or dst.startswith(src + "/"):
            return
        os.rename(self._abs(src), self._abs(dst))
        moved = lambda p: dst + p[len(src):] if p == src or p.startswith(src + "/") else p
        self.dirs = {moved(d) for d in self.dirs}
        self.files = {moved(p): v for p, v in self.files.items()}

    @rule(parent=st.sampled_from(DIRS + [""]), name=st.sampled_from(DIRS))
    def make_dir(self, parent: str, name: str) -> None:
        rel = os.path.join(parent, name)
        if parent not in self.dirs or rel in self.dirs or rel in self.files:
            return
        self._abs(rel).mkdir()
        self.dirs.add(rel)

    @precondition(lambda self: self.files)
    @rule(pick=st.integers(0, 1000))
    def delete(self, pick: int) -> None:
        rel = sorted(self.files)[pick % len(self.files)]
        self._abs(rel).unlink()
        del self.files[rel]

    @precondition(lambda self: len(self.dirs) > 1)
    @rule(pick=st.integers(0, 1000))
    def delete_dir(self, pick: int) -> None:
        rel = sorted(self.dirs - {""})[pick % (len(self.dirs) - 1)]
        shutil.rmtree(self._abs(rel))
        self.dirs = {d for d in self.dirs if not (d == rel or d.startswith(rel + "/"))}
        self.files = {p: v for p, v in self.files.items() if not p.startswith(rel + "/")}

    @rule()
    def settle_and_check(self) -> None:
        self._check()

    def _check(self) -> None:
        self._settle()
        STATS["checks"] += 1
        STATS["watcher_alone_equal"] += not self._matches()
        self.ws.request_reconcile()  # the periodic reconcile, now
        self._settle()
        diffs = self._matches()
        assert not diffs, diffs

    @invariant()
    def store_is_readable(self) -> None:
        with self.service._lock:
            self.store.counts()

    def teardown(self) -> None:
        try:
            self._check()
        finally:
            assert self.ws.stop(timeout=30)
            self.store.close()
            self.reader.close()
            shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.mark.slow
def test_index_equals_disk() -> None:
    run = IndexEqualsDisk.TestCase
    run.settings = settings(
        max_examples=15, stateful_step_count=12, deadline=None, derandomize=True, database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    STATS.update(checks=0, watcher_alone_equal=0)
    run().runTest()
    print(f"\nstateful: {STATS['checks']} settle checks; the watcher alone (before the reconcile) "
          f"already matched the disk in {STATS['watcher_alone_equal']}")
