"""WatchService against a fake service that keeps a real path → (size, mtime) index.

Real watchdog observers on real temp folders; every assertion is "the index equals
the disk" (or a named property), polled with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from indexer.ingest.scan import Exclusions
from indexer.library.settings import AppPaths, Settings, open_paths
from indexer.types import IndexSummary
from indexer.watch.watcher import (
    INOTIFY_HINT,
    WatchService,
    _EnqueueHandler,
    filesystem_type,
    is_network_fs,
    read_watch_status,
    write_watch_status,
)

DEADLINE_S = 10.0

# watchdog's inotify bookkeeping warns on folder renames; harmless upstream noise.
pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")


def wait_until(cond: Callable[[], bool], timeout: float = DEADLINE_S, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(interval)
    return cond()


class FakeService:
    """Test double of IndexService with real behaviour: stat-based, idempotent sync."""

    def __init__(self, settings: Settings) -> None:
        self.lock = threading.Lock()
        self.index: dict[str, tuple[int, int]] = {}
        self.synced: list[str] = []  # every path ever passed to sync_paths
        self.sync_calls = 0
        self.reconciles: list[str] = []
        self.availability: list[tuple[str, bool]] = []
        self.removed_roots: list[str] = []
        self.excl = Exclusions(settings, None)  # the scanner's rules, as the real service walks
        self.block_reconcile: threading.Event | None = None

    # -- helpers
    def _walk(self, top: str) -> dict[str, tuple[int, int]]:
        found: dict[str, tuple[int, int]] = {}
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if not self.excl.is_excluded(os.path.join(dirpath, d), True)]
            for name in filenames:
                p = os.path.join(dirpath, name)
                if self.excl.is_excluded(p, False):
                    continue
                try:
                    st = os.lstat(p)
                except FileNotFoundError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    found[p] = (st.st_size, st.st_mtime_ns)
        return found

    def _replace_subtree(self, top: str) -> None:
        fresh = self._walk(top)
        for p in [p for p in self.index if p == top or p.startswith(top + os.sep)]:
            del self.index[p]
        self.index.update(fresh)

    # -- the contract
    def sync_paths(self, paths: Sequence[str], cancel: threading.Event | None = None) -> IndexSummary:
        with self.lock:
            self.sync_calls += 1
            self.synced.extend(paths)
            for p in paths:
                try:
                    st = os.lstat(p)
                except FileNotFoundError:
                    for k in [k for k in self.index if k == p or k.startswith(p + os.sep)]:
                        del self.index[k]
                    continue
                if stat.S_ISDIR(st.st_mode):
                    self._replace_subtree(p)
                elif stat.S_ISREG(st.st_mode):
                    self.index[p] = (st.st_size, st.st_mtime_ns)
        return IndexSummary()

    def index_roots(self, roots: Sequence[str], cancel: threading.Event | None = None) -> IndexSummary:
        if self.block_reconcile is not None:
            assert cancel is not None
            cancel.wait(30)
            return IndexSummary()
        with self.lock:
            for root in roots:
                self.reconciles.append(root)
                self._replace_subtree(root)
        return IndexSummary()

    def remove_root(self, root: str) -> int:
        with self.lock:
            self.removed_roots.append(root)
            gone = [k for k in self.index if k.startswith(root + os.sep)]
            for k in gone:
                del self.index[k]
            return len(gone)

    def set_root_available(self, root: str, available: bool) -> None:
        with self.lock:
            self.availability.append((root, available))

    # -- assertions
    def matches_disk(self, root: str) -> bool:
        with self.lock:
            return self.index == self._walk(root)


@pytest.fixture
def env(tmp_path: Path) -> tuple[str, AppPaths, Settings, FakeService]:
    root = tmp_path / "watched"
    root.mkdir()
    paths = open_paths(tmp_path / "data")
    settings = Settings(folders=[str(root)], reconcile_interval_s=3600)
    return os.path.realpath(root), paths, settings, FakeService(settings)


def make_watch(env_: tuple[str, AppPaths, Settings, FakeService], **kw: object) -> WatchService:
    root, paths, settings, svc = env_
    kw.setdefault("supervise_interval_s", 0.2)
    kw.setdefault("poll_interval_s", 0.2)
    return WatchService(svc, settings, paths, debounce_s=0.1, max_delay_s=1.0, **kw)  # type: ignore[arg-type]


@pytest.fixture
def watching(env):  # type: ignore[no-untyped-def]
    ws = make_watch(env)
    ws.start()
    assert wait_until(lambda: env[3].reconciles != []), "initial reconcile never ran"
    yield ws
    assert ws.stop(timeout=10), "watch threads did not stop"


def write(p: Path | str, text: str) -> None:
    Path(p).write_text(text, encoding="utf-8")


def test_initial_reconcile_indexes_existing_files(env) -> None:  # type: ignore[no-untyped-def]
    root, _, _, svc = env
    write(Path(root) / "a.txt", "alpha")
    (Path(root) / "sub").mkdir()
    write(Path(root) / "sub" / "b.md", "beta")
    ws = make_watch(env)
    ws.start()
    try:
        assert wait_until(lambda: len(svc.index) == 2)
        assert svc.matches_disk(root)
        assert [s.mode for s in ws.folder_status()] == ["live"]
    finally:
        assert ws.stop()


def test_create_modify_delete_rename_move_files_and_folders(env, watching) -> None:  # type: ignore[no-untyped-def]
    root, _, _, svc = env
    r = Path(root)
    write(r / "a.txt", "one")
    assert wait_until(lambda: str(r / "a.txt") in svc.index)
    write(r / "a.txt", "one two three")  # modify: size changes
    assert wait_until(lambda: svc.index.get(str(r / "a.txt"), (0, 0))[0] == 13)
    os.rename(r / "a.txt", r / "b.txt")
    assert wait_until(lambda: svc.matches_disk(root) and str(r / "b.txt") in svc.index)
    (r / "dir").mkdir()
    write(r / "dir" / "c.txt", "c")
    (r / "dir" / "deep").mkdir()
    write(r / "dir" / "deep" / "d.txt", "d")
    assert wait_until(lambda: svc.matches_disk(root) and len(svc.index) == 3)
    os.rename(r / "dir", r / "moved")  # folder rename: old prefix gone, new prefix present
    assert wait_until(lambda: svc.matches_disk(root) and str(r / "moved" / "deep" / "d.txt") in svc.index)
    outside = Path(root).parent / "outside"
    shutil.move(str(r / "moved"), str(outside))  # moved out of the tree = deleted
    assert wait_until(lambda: svc.matches_disk(root) and len(svc.index) == 1)
    shutil.move(str(outside), str(r / "back"))  # moved in from outside = crawled
    assert wait_until(lambda: svc.matches_disk(root) and len(svc.index) == 3)
    os.unlink(r / "b.txt")
    shutil.rmtree(r / "back")
    assert wait_until(lambda: svc.matches_disk(root) and svc.index == {})
    assert not svc.removed_roots


@pytest.mark.parametrize("temp_name", ["f.txt.tmp", ".goutputstream-AB12CD", "f.txt___jb_tmp___", ".f.txt.swp"])
def test_atomic_save_updates_target_and_never_syncs_temp(env, watching, temp_name: str) -> None:  # type: ignore[no-untyped-def]
    root, _, _, svc = env
    r = Path(root)
    target = r / "f.txt"
    write(target, "old")
    assert wait_until(lambda: str(target) in svc.index)
    tmp = r / temp_name
    write(tmp, "brand new content")
    os.replace(tmp, target)
    assert wait_until(lambda: svc.index.get(str(target), (0, 0))[0] == len("brand new content"))
    assert wait_until(lambda: watching.wait_idle(1) and svc.matches_disk(root))
    assert str(tmp) not in svc.synced, "temp file of an atomic save was handed to the indexer"
    assert list(svc.index) == [str(target)]


def test_excluded_folders_never_reach_service(env, watching) -> None:  # type: ignore[no-untyped-def]
    root, _, _, svc = env
    r = Path(root)
    (r / "node_modules" / "pkg").mkdir(parents=True)
    write(r / "node_modules" / "pkg" / "index.js", "x")
    write(r / "keep.txt", "keep")
    assert wait_until(lambda: str(r / "keep.txt") in svc.index)
    assert watching.wait_idle(DEADLINE_S)
    assert not [p for p in svc.synced if "node_modules" in p]


def test_burst_of_2000_files_all_synced_in_few_batches(env, watching) -> None:  # type: ignore[no-untyped-def]
    root, _, _, svc = env
    r = Path(root)
    calls_before = svc.sync_calls
    for i in range(2000):
        (r / f"n{i:04d}.txt").write_bytes(b"x")
    assert wait_until(lambda: len(svc.index) == 2000, timeout=30)
    assert watching.wait_idle(DEADLINE_S)
    assert svc.matches_disk(root)
    batches = svc.sync_calls - calls_before
    # Coalesced: far fewer batches than files (max_batch 1000, max_delay 1 s).
    assert 2 <= batches <= 40, batches


def test_constantly_written_file_is_synced_before_writes_stop(env, watching) -> None:  # type: ignore[no-untyped-def]
    root, _, _, svc = env
    target = Path(root) / "log.txt"
    stop = threading.Event()

    def writer() -> None:
        with open(target, "a", encoding="utf-8") as fh:
            while not stop.is_set():
                fh.write("line\n")
                fh.flush()
                stop.wait(0.03)  # faster than debounce: without max_delay it never settles

    t = threading.Thread(target=writer)
    t.start()
    try:
        assert wait_until(lambda: str(target) in svc.index, timeout=6), "max_delay cap did not fire"
    finally:
        stop.set()
        t.join()


def test_folder_removed_and_restored_is_hidden_not_deleted(env, watching) -> None:  # type: ignore[no-untyped-def]
    root, _, _, svc = env
    r = Path(root)
    write(r / "keep.txt", "k")
    assert wait_until(lambda: str(r / "keep.txt") in svc.index)
    aside = r.parent / "aside"
    os.rename(r, aside)  # like an unmounted drive: the folder is gone
    assert wait_until(lambda: watching.folder_status()[0].mode == "unavailable")
    assert wait_until(lambda: (root, False) in svc.availability)
    assert str(r / "keep.txt") in svc.index, "rows of an unavailable folder must be kept"
    assert wait_until(lambda: read_watch_status(env[1])[0].mode == "unavailable")
    write(aside / "while_away.txt", "w")
    os.rename(aside, r)
    assert wait_until(lambda: watching.folder_status()[0].mode == "live")
    assert wait_until(lambda: (root, True) in svc.availability)
    assert wait_until(lambda: str(r / "while_away.txt") in svc.index)
    write(r / "after.txt", "a")  # the watch was re-armed
    assert wait_until(lambda: str(r / "after.txt") in svc.index)
    assert svc.removed_roots == []
    assert wait_until(lambda: svc.matches_disk(root))


def test_lost_events_are_recovered_by_reconcile(env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    root, _, _, svc = env
    original = _EnqueueHandler.dispatch

    def lossy(self, event) -> None:  # type: ignore[no-untyped-def]
        # Deterministically lose every event of ~30% of the paths (an overflowed queue).
        digest = hashlib.blake2b(os.fsencode(event.src_path)).digest()
        if digest[0] < 77:
            return
        original(self, event)

    monkeypatch.setattr(_EnqueueHandler, "dispatch", lossy)
    ws = make_watch(env)
    ws.start()
    try:
        assert wait_until(lambda: svc.reconciles != [])
        names = [f"f{i:03d}.txt" for i in range(200)]
        lost = {n for n in names if hashlib.blake2b(os.fsencode(os.path.join(root, n))).digest()[0] < 77}
        assert 30 < len(lost) < 90
        for n in names:
            write(Path(root) / n, n)
        kept = {os.path.join(root, n) for n in names if n not in lost}
        assert wait_until(lambda: kept <= set(svc.index))
        assert ws.wait_idle(DEADLINE_S)
        assert not svc.matches_disk(root), "events were not actually lost; the test proves nothing"
        ws.request_reconcile()
        assert wait_until(lambda: svc.matches_disk(root))
        assert len(svc.index) == 200
    finally:
        assert ws.stop()


def test_dead_observer_is_restarted_and_reconciled(env) -> None:  # type: ignore[no-untyped-def]
    root, _, _, svc = env
    made: list[object] = []

    def factory():  # type: ignore[no-untyped-def]
        from watchdog.observers import Observer

        obs = Observer()
        made.append(obs)
        return obs

    ws = make_watch(env, observer_factory=factory)
    ws.start()
    try:
        assert wait_until(lambda: len(svc.reconciles) == 1)
        first = made[0]
        first.stop()  # type: ignore[attr-defined]  # the observer thread dies behind our back
        first.join()  # type: ignore[attr-defined]
        write(Path(root) / "during_outage.txt", "x")  # nobody is listening now
        assert wait_until(lambda: len(made) == 2), "supervisor did not restart the observer"
        assert wait_until(lambda: len(svc.reconciles) >= 2), "no reconcile after the restart"
        assert wait_until(lambda: os.path.join(root, "during_outage.txt") in svc.index)
        write(Path(root) / "after.txt", "y")
        assert wait_until(lambda: os.path.join(root, "after.txt") in svc.index)
        assert ws.folder_status()[0].mode == "live"
    finally:
        assert ws.stop()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_dead_emitter_thread_is_restarted(env) -> None:  # type: ignore[no-untyped-def]
    root, _, _, svc = env
    made: list[object] = []

    def factory():  # type: ignore[no-untyped-def]
        from watchdog.observers import Observer

        obs = Observer()
        made.append(obs)
        return obs

    ws = make_watch(env, observer_factory=factory)
    ws.start()
    try:
        assert wait_until(lambda: len(svc.reconciles) == 1)
        (emitter,) = made[0].emitters  # type: ignore[attr-defined]

        def boom(*a, **k):  # type: ignore[no-untyped-def]
            raise KeyError("inotify bookkeeping bug")  # like watchdog #793: kills the emitter

        emitter.queue_events = boom
        write(Path(root) / "wake.txt", "w")  # the blocked read returns, the next call raises
        assert wait_until(lambda: not emitter.is_alive())
        assert made[0].is_alive()  # type: ignore[attr-defined]  # observer looks fine: only emitters tell
        assert wait_until(lambda: len(made) == 2), "supervisor did not notice the dead emitter"
        assert wait_until(lambda: os.path.join(root, "wake.txt") in svc.index)
        write(Path(root) / "after.txt", "a")
        assert wait_until(lambda: os.path.join(root, "after.txt") in svc.index)
    finally:
        assert ws.stop()


def test_inotify_limit_falls_back_to_polling(env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from watchdog.observers.inotify import InotifyObserver

    def no_watches(self, *a, **k):  # type: ignore[no-untyped-def]
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setattr(InotifyObserver, "schedule", no_watches)
    root, paths, _, svc = env
    ws = make_watch(env)
    ws.start()
    try:
        st = ws.folder_status()[0]
        assert st.mode == "polling"
        assert "fs.inotify.max_user_watches" in st.message and st.message == INOTIFY_HINT
        assert read_watch_status(paths)[0].mode == "polling"
        assert wait_until(lambda: svc.reconciles != [])
        write(Path(root) / "polled.txt", "p")
        assert wait_until(lambda: os.path.join(root, "polled.txt") in svc.index)
        assert len(svc.reconciles) == 1, "the file should come from the poller, not a reconcile"
    finally:
        assert ws.stop()


def test_network_filesystem_is_polled(env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    root, _, _, svc = env
    mounts = tmp_path / "mounts"
    mounts.write_text(f"/dev/sda1 / ext4 rw 0 0\nserver:/share {root} nfs4 rw 0 0\n", encoding="utf-8")
    ws = make_watch(env, mounts_file=str(mounts), network_poll_interval_s=0.2)
    ws.start()
    try:
        st = ws.folder_status()[0]
        assert st.mode == "polling" and "nfs4" in st.message
        write(Path(root) / "n.txt", "n")
        assert wait_until(lambda: os.path.join(root, "n.txt") in svc.index)
    finally:
        assert ws.stop()


def test_filesystem_type_picks_longest_mount(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(
        "/dev/sda1 / ext4 rw 0 0\n//nas/x /mnt/my\\040nas cifs rw 0 0\nhost:/ /mnt/sshdir fuse.sshfs rw 0 0\n",
        encoding="utf-8",
    )
    assert filesystem_type("/home/me", str(mounts)) == "ext4"
    assert filesystem_type("/mnt/my nas/docs", str(mounts)) == "cifs"
    assert filesystem_type("/mnt/sshdir2", str(mounts)) == "ext4"
    assert is_network_fs("fuse.sshfs") and is_network_fs("cifs") and not is_network_fs("ext4")
    assert filesystem_type("/x", str(tmp_path / "missing")) is None


def test_handler_error_does_not_stop_watching(env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    root, _, _, svc = env
    ws = make_watch(env)
    original = ws._enqueue

    def flaky(path: str) -> None:
        if path.endswith("poison.txt"):
            raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad name")
        original(path)

    monkeypatch.setattr(ws, "_enqueue", flaky)
    ws.start()
    try:
        assert wait_until(lambda: svc.reconciles != [])
        write(Path(root) / "poison.txt", "p")
        write(Path(root) / "fine.txt", "f")
        assert wait_until(lambda: os.path.join(root, "fine.txt") in svc.index)
        # The failure asked for a reconcile, which also picks up the poisoned file.
        assert wait_until(lambda: os.path.join(root, "poison.txt") in svc.index)
        assert all(s.mode == "live" for s in ws.folder_status())
    finally:
        assert ws.stop()


def test_roots_dropped_from_settings_are_removed(env) -> None:  # type: ignore[no-untyped-def]
    from indexer.watch.watcher import add_pending_removal, read_pending_removals

    root, paths, _, svc = env
    add_pending_removal(paths, "/old/removed/folder")  # `folders remove` while busy
    add_pending_removal(paths, root)  # removed, then re-added: must stay
    ws = make_watch(env)
    ws.start()
    try:
        assert wait_until(lambda: svc.removed_roots == ["/old/removed/folder"])
        assert wait_until(lambda: read_pending_removals(paths) == [])
        add_pending_removal(paths, "/another/one")  # noticed while running, too
        assert wait_until(lambda: svc.removed_roots == ["/old/removed/folder", "/another/one"])
        other = Path(root).parent / "second"
        other.mkdir()
        write(other / "s.txt", "s")
        ws.set_roots([root, str(other)])
        assert wait_until(lambda: os.path.join(os.path.realpath(other), "s.txt") in svc.index)
        ws.set_roots([str(other)])
        assert wait_until(lambda: root in svc.removed_roots)
        assert [s.path for s in ws.folder_status()] == [os.path.realpath(other)]
    finally:
        assert ws.stop()


def test_stop_cancels_a_long_reconcile(env) -> None:  # type: ignore[no-untyped-def]
    _, _, _, svc = env
    svc.block_reconcile = threading.Event()
    ws = make_watch(env)
    ws.start()
    assert wait_until(lambda: ws._busy)
    t0 = time.monotonic()
    assert ws.stop(timeout=5)
    assert time.monotonic() - t0 < 5
    assert ws.cancel.is_set()


def test_periodic_reconcile(env) -> None:  # type: ignore[no-untyped-def]
    _, _, settings, svc = env
    settings.reconcile_interval_s = 0.3
    ws = make_watch(env)
    ws.start()
    try:
        assert wait_until(lambda: len(svc.reconciles) >= 3)
        assert ws.folder_status()[0].last_reconcile is not None
    finally:
        assert ws.stop()


def test_status_file_reports_stopped_when_writer_is_gone(env) -> None:  # type: ignore[no-untyped-def]
    from indexer.types import FolderStatus

    _, paths, _, _ = env
    write_watch_status(paths, [FolderStatus(path="/x", mode="live", last_reconcile=123.0)])
    assert [(s.path, s.mode, s.last_reconcile) for s in read_watch_status(paths)] == [("/x", "live", 123.0)]
    data = paths.status_file.read_text(encoding="utf-8").replace(f'"pid": {os.getpid()}', '"pid": 999999999')
    paths.status_file.write_text(data, encoding="utf-8")
    (st,) = read_watch_status(paths)
    assert st.mode == "stopped" and st.last_reconcile == 123.0
    paths.status_file.write_text("{broken", encoding="utf-8")
    assert read_watch_status(paths) == []
