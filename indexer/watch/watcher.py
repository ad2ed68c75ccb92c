"""Watch folders: filesystem events → debounced path batches → ``service.sync_paths``.

Events are hints, never the truth (RELIABILITY.md W2–W9). The watchdog handler
only records *which paths* were touched (both ends of a move, folders too) into a
coalescing queue. One worker thread drains it after a per-path quiet period
(``debounce_s``, capped by ``max_delay_s`` so a file written non-stop still gets
indexed), drops excluded paths, and asks the service to sync the rest; the service
stats each path, so event types never matter. A reconcile (``index_roots``) at start,
every ``settings.reconcile_interval_s``, after any watcher error and when an offline
folder returns is what guarantees the index converges to the disk (promise 4).

A supervisor thread restarts dead observers, notices folders that disappear or get
unmounted (their rows are hidden, never deleted) and falls back to polling where
inotify limits are hit or the folder sits on a network filesystem.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from indexer.errors import LodestarError
from indexer.library.settings import (
    AppPaths,
    Settings,
    as_number,
    normalise_folder,
    read_json,
    write_json_atomic,
)
from indexer.paths import is_under, root_of
from indexer.types import FolderStatus, IndexSummary, WatchMode

log = logging.getLogger(__name__)


NETWORK_FSTYPES = frozenset(
    {
        "nfs", "nfs4", "cifs", "smb", "smb3", "smbfs", "sshfs", "fuse.sshfs", "9p",
        "afs", "ncpfs", "davfs", "fuse.davfs2", "fuse.rclone", "fuse.s3fs", "glusterfs",
        "fuse.glusterfs", "ceph", "fuse.ceph", "lustre", "virtiofs", "fuse.gvfsd-fuse",
    }
)
INOTIFY_HINT = (
    "the system's limit on watched folders is reached, so this folder is checked by polling "
    "(slower to notice changes). To watch it live, raise the limit: "
    "sudo sysctl fs.inotify.max_user_watches=524288 fs.inotify.max_user_instances=512 "
    "(add the same lines to /etc/sysctl.d/90-lodestar.conf to keep them)"
)
NETWORK_HINT = "network filesystem ({fstype}) sends no change events; this folder is checked by polling"
UNAVAILABLE_HINT = "folder is missing or not mounted; its files are hidden until it returns"

# Events that never mean "content may have changed": reading files (which the
# indexer itself does) must not feed back into the queue.
_IGNORED_EVENT_TYPES = frozenset({"opened", "closed_no_write"})


class SyncService(Protocol):
    """What the watcher needs from `indexer.ingest.pipeline.IndexService`."""

    # The watcher sets this: a long run calls it for changed paths that should go first.
    urgent: Callable[[], list[str]] | None

    def index_roots(self, roots: Sequence[str], cancel: threading.Event | None = None) -> IndexSummary: ...

    def sync_paths(self, paths: Sequence[str], cancel: threading.Event | None = None) -> IndexSummary: ...

    def remove_root(self, root: str) -> int: ...

    def set_root_available(self, root: str, available: bool) -> None: ...


class Excluder(Protocol):
    def is_excluded(self, path: str, is_dir: bool) -> bool: ...


ExclusionsFactory = Callable[[str], Excluder]


def default_exclusions_factory(settings: Settings, paths: AppPaths) -> ExclusionsFactory:
    """The scanner's exclusions for one root: the same rules as a full scan."""
    from indexer.ingest.scan import Exclusions

    def make(root: str) -> Excluder:
        return Exclusions(settings, paths.data_dir, roots=[root])

    return make


# --------------------------------------------------------------------------- helpers


def filesystem_type(path: str, mounts_file: str = "/proc/mounts") -> str | None:
    """The fstype of the mount holding ``path`` (Linux), or None if unknown."""
    try:
        with open(mounts_file, encoding="utf-8", errors="surrogateescape") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    best, best_type = "", None
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        # /proc/mounts escapes spaces as \040.
        mnt = parts[1].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
        prefix = mnt.rstrip("/") + "/"
        if (path == mnt or path.startswith(prefix) or mnt == "/") and len(mnt) >= len(best):
            best, best_type = mnt, parts[2]
    return best_type


def is_network_fs(fstype: str | None) -> bool:
    return fstype is not None and (fstype in NETWORK_FSTYPES or fstype.startswith(("nfs", "smb", "cifs")))


def lower_thread_priority(niceness: int = 10) -> bool:
    """Lower the calling thread's CPU priority (Linux: per-thread nice). Best effort."""
    if not hasattr(os, "setpriority"):
        return False
    try:
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, max(current, niceness))
        return True
    except OSError as exc:
        log.debug("cannot lower watcher priority: %s", exc)
        return False


# --------------------------------------------------------------------------- queue


class PathQueue:
    """Thread-safe, coalescing set of touched paths with per-path timing.

    A flush happens once the whole queue has been quiet for ``debounce`` (a burst of
    2,000 new files becomes one batch, not 2,000) or the oldest path has waited
    ``max_delay`` (a constantly written file still gets indexed). A flush takes every
    path quiet for ``debounce`` plus any that waited ``max_delay``.
    """

    def __init__(self) -> None:
        self.cond = threading.Condition()
        # path -> (first event, last event); insertion order = first-seen order.
        self._items: dict[str, tuple[float, float]] = {}
        self._newest = 0.0

    def put(self, path: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self.cond:
            first = self._items.get(path, (now, now))[0]
            self._items[path] = (first, now)
            self._newest = now
            self.cond.notify_all()

    def __len__(self) -> int:
        with self.cond:
            return len(self._items)

    def pop_due(self, now: float, debounce: float, max_delay: float, limit: int) -> list[str]:
        """Take the paths ready now (at most ``limit``). Caller holds ``cond``."""
        out = [
            p for p, (first, last) in self._items.items() if now - last >= debounce or now - first >= max_delay
        ][:limit]
        for p in out:
            del self._items[p]
        return out

    def wait_for_due(self, now: float, debounce: float, max_delay: float) -> float | None:
        """Seconds until a flush is due (0: now), None if empty. Caller holds ``cond``."""
        if not self._items:
            return None
        oldest_first = next(iter(self._items.values()))[0]
        return max(0.0, min(self._newest + debounce, oldest_first + max_delay) - now)


# --------------------------------------------------------------------------- handler


class _EnqueueHandler:
    """watchdog handler that only records paths; it never reads files and never raises."""

    def __init__(self, on_path: Callable[[str], None], on_error: Callable[[], None]) -> None:
        self._on_path = on_path
        self._on_error = on_error

    def dispatch(self, event: Any) -> None:
        try:
            kind = event.event_type
            if kind in _IGNORED_EVENT_TYPES:
                return
            if kind == "modified" and event.is_directory:
                return  # a child's own event covers it; syncing the folder would rescan it
            for raw in (event.src_path, getattr(event, "dest_path", "")):
                if raw:
                    self._on_path(os.fsdecode(raw))
        except Exception:
            log.exception("watch handler failed on %r; scheduling a reconcile", event)
            try:
                self._on_error()
            except Exception:
                log.exception("watch handler could not schedule a reconcile")


# --------------------------------------------------------------------------- service


@dataclasses.dataclass
class _Root:
    path: str
    mode: WatchMode = "stopped"
    message: str = ""
    last_reconcile: float | None = None  # unix time
    last_attempt_mono: float | None = None  # monotonic start of the last reconcile try
    observer: Any = None
    force_polling: bool = False  # set after inotify limits were hit
    was_mount: bool = False
    announced_unavailable: bool = False


def _make_native_observer() -> Any:
    from watchdog.observers import Observer

    return Observer()


def _make_polling_observer(interval_s: float) -> Any:
    from watchdog.observers.polling import PollingObserver

    return PollingObserver(timeout=interval_s)


class WatchService:
    """Keep the index of ``roots`` in step with the disk until `stop`."""

    def __init__(
        self,
        service: SyncService,
        settings: Settings,
        paths: AppPaths,
        exclusions_factory: ExclusionsFactory | None = None,
        on_status: Callable[[list[FolderStatus]], None] | None = None,
        debounce_s: float = 0.3,
        max_delay_s: float = 2.0,
        *,
        roots: Iterable[str] | None = None,
        supervise_interval_s: float = 2.0,
        poll_interval_s: float = 5.0,
        network_poll_interval_s: float = 30.0,
        max_batch: int = 1000,
        on_batch: Callable[[list[str], IndexSummary], None] | None = None,
        observer_factory: Callable[[], Any] = _make_native_observer,
        polling_factory: Callable[[float], Any] = _make_polling_observer,
        mounts_file: str = "/proc/mounts",
    ) -> None:
        self.service = service
        self.settings = settings
        self.paths = paths
        self._exclusions_factory = exclusions_factory or default_exclusions_factory(settings, paths)
        self._on_status = on_status
        self.debounce_s = debounce_s
        self.max_delay_s = max_delay_s
        self.supervise_interval_s = supervise_interval_s
        self.poll_interval_s = poll_interval_s
        # A snapshot of a network share costs a full remote listing: poll it less often.
        self.network_poll_interval_s = network_poll_interval_s
        self.max_batch = max_batch
        self._on_batch = on_batch
        self._observer_factory = observer_factory
        self._polling_factory = polling_factory
        self._mounts_file = mounts_file
        self._data_dir = normalise_folder(paths.data_dir)

        self._queue = PathQueue()
        self._cond = self._queue.cond  # one lock guards queue, requests and root table
        self._roots: dict[str, _Root] = {}
        self._excluders: dict[str, Excluder] = {}
        self._reconcile_pending: set[str] = set()
        self._availability_pending: dict[str, bool] = {}
        self._removals_pending: set[str] = set()
        self._removed: set[str] = set()  # roots whose entries this watcher already dropped
        self._prune_pending = False
        self._busy = False
        self._stop = threading.Event()
        self.cancel = threading.Event()  # handed to the pipeline, checked between batches
        self._threads: list[threading.Thread] = []
        self._publish_lock = threading.Lock()
        wanted = settings.folders if roots is None else roots
        for root in wanted:
            self._roots[normalise_folder(root)] = _Root(normalise_folder(root))

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        if self._threads:
            raise RuntimeError("WatchService already started")
        with self._cond:
            roots = list(self._roots)
            # Folders removed while another process was the writer are dropped first.
            self._prune_pending = True
        for root in roots:
            self._arm(root)
            self._request(root)
        # Files saved during a long reconcile jump its queue (IndexService.urgent).
        self.service.urgent = self._take_urgent
        self._threads = [
            threading.Thread(target=self._worker, name="lodestar-watch-worker", daemon=True),
            threading.Thread(target=self._supervisor, name="lodestar-watch-supervisor", daemon=True),
        ]
        for t in self._threads:
            t.start()
        self._publish()

    def stop(self, timeout: float = 10.0) -> bool:
        """Cancel the batch in flight, stop observers and threads. True if all joined."""
        self._stop.set()
        self.cancel.set()
        with self._cond:
            self._cond.notify_all()
            roots = list(self._roots.values())
        for r in roots:
            self._disarm(r)
        deadline = time.monotonic() + timeout
        ok = True
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
            ok = ok and not t.is_alive()
        with self._cond:
            for r in self._roots.values():
                r.mode = "stopped"
        self._publish()
        return ok

    def __enter__(self) -> WatchService:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- public API

    def request_reconcile(self, root: str | None = None) -> None:
        """Ask for a full reconcile of ``root`` (all roots when None)."""
        with self._cond:
            targets = list(self._roots) if root is None else [normalise_folder(root)]
            for r in targets:
                if r in self._roots:
                    self._reconcile_pending.add(r)
            self._cond.notify_all()

    def set_roots(self, roots: Iterable[str]) -> None:
        """Follow a changed folder list: arm new roots, disarm and remove dropped ones."""
        wanted = {normalise_folder(r) for r in roots}
        with self._cond:
            added = [r for r in wanted if r not in self._roots]
            dropped = [r for r in self._roots if r not in wanted]
            for r in added:
                self._roots[r] = _Root(r)
                self._removed.discard(r)
            gone = [self._roots.pop(r) for r in dropped]
            for r in dropped:
                self._reconcile_pending.discard(r)
                self._excluders.pop(r, None)
                self._removals_pending.add(r)
            self._cond.notify_all()
        for g in gone:
            self._disarm(g)
        for r in added:
            self._arm(r)
            self._request(r)
        if added or dropped:
            log.info("watched folders changed: +%d -%d", len(added), len(dropped))
            self._publish()

    def folder_status(self) -> list[FolderStatus]:
        with self._cond:
            return [
                FolderStatus(path=r.path, mode=r.mode, last_reconcile=r.last_reconcile, message=r.message)
                for r in self._roots.values()
            ]

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """True once nothing is queued, requested or in flight (`lodestar watch --once` waits on it)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                idle = (
                    not len(self._queue._items)
                    and not self._reconcile_pending
                    and not self._availability_pending
                    and not self._removals_pending
                    and not self._prune_pending
                    and not self._busy
                )
                if idle:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))

    # ----------------------------------------------------------------- observers

    def _enqueue(self, path: str) -> None:
        self._queue.put(path)

    def _arm(self, root: str) -> None:
        """Start watching ``root``: native where possible, polling where not."""
        with self._cond:
            r = self._roots.get(root)
            if r is None or self._stop.is_set():
                return
        why = self._unavailable_reason(r)
        if why:
            self._mark_unavailable(r, why)
            return
        r.was_mount = r.was_mount or os.path.ismount(root)
        fstype = filesystem_type(root, self._mounts_file)
        polling, message = r.force_polling, INOTIFY_HINT if r.force_polling else ""
        interval = self.poll_interval_s
        if is_network_fs(fstype):
            polling, message = True, NETWORK_HINT.format(fstype=fstype)
            interval = self.network_poll_interval_s
        handler = _EnqueueHandler(self._enqueue, lambda: self.request_reconcile(root))
        observer = None
        if not polling:
            try:
                observer = self._observer_factory()
                observer.schedule(handler, root, recursive=True)
                observer.start()
            except OSError as exc:
                self._discard_observer(observer)
                observer = None
                if exc.errno in (errno.ENOSPC, errno.EMFILE, errno.ENFILE, errno.ENOMEM):
                    log.warning("cannot watch %s live (%s): %s", root, exc, INOTIFY_HINT)
                    r.force_polling = True
                    polling, message = True, INOTIFY_HINT
                elif not os.path.isdir(root):
                    self._mark_unavailable(r)
                    return
                else:
                    log.warning("cannot watch %s live (%s); polling it instead", root, exc)
                    polling, message = True, f"live watching failed ({exc.strerror or exc}); checked by polling"
        if polling:
            try:
                observer = self._polling_factory(interval)
                observer.schedule(handler, root, recursive=True)
                observer.start()
            except OSError as exc:
                self._discard_observer(observer)
                log.warning("cannot poll %s: %s; relying on periodic reconciles", root, exc)
                observer = None
                message = f"{message or 'watching failed'}; only periodic full checks run ({exc.strerror or exc})"
        with self._cond:
            if self._roots.get(root) is not r or self._stop.is_set():
                self._discard_observer(observer)
                return
            r.observer = observer
            r.mode = "polling" if polling else "live"
            r.message = message
        self._publish()

    def _discard_observer(self, observer: Any) -> None:
        if observer is None:
            return
        try:
            observer.stop()
            if observer.is_alive():
                observer.join(5.0)
        except (RuntimeError, OSError) as exc:
            log.debug("stopping an observer failed: %s", exc)

    def _disarm(self, r: _Root) -> None:
        obs, r.observer = r.observer, None
        self._discard_observer(obs)

    def _observer_healthy(self, observer: Any) -> bool:
        try:
            if not observer.is_alive():
                return False
            return all(e.is_alive() for e in getattr(observer, "emitters", ()))
        except (AttributeError, RuntimeError):
            return False

    def _unavailable_reason(self, r: _Root) -> str:
        """Why ``r`` cannot be watched now ("" when it can); its entries are kept meanwhile."""
        from indexer.ingest.scan import refusal_reason, unlistable_reason

        try:
            if not os.path.isdir(r.path):
                return UNAVAILABLE_HINT
            # A mount point that is no longer one is an unmounted disk: the empty folder
            # left behind must not be read as "every file was deleted".
            if r.was_mount and not os.path.ismount(r.path):
                return UNAVAILABLE_HINT
        except OSError:
            return UNAVAILABLE_HINT
        refused = refusal_reason(r.path, self.paths.data_dir)
        if refused:
            return refused
        # A folder that cannot be listed (no permission) is not an empty one.
        why = unlistable_reason(r.path)
        return f"{why}; its files are kept, hidden from results, until it can be read again" if why else ""

    def _mark_unavailable(self, r: _Root, message: str = UNAVAILABLE_HINT) -> None:
        with self._cond:
            if r.mode == "unavailable" and r.announced_unavailable:
                return
            r.mode = "unavailable"
            r.message = message
            r.announced_unavailable = True
            self._reconcile_pending.discard(r.path)
            self._availability_pending[r.path] = False
            self._cond.notify_all()
        log.warning("watched folder %s is unavailable (%s); hiding its files until it returns", r.path, message)
        self._publish()
        self._disarm(r)

    def _check_pending_removals(self) -> None:
        if (self.paths.data_dir / PENDING_REMOVALS_FILE).exists():
            with self._cond:
                self._prune_pending = True
                self._cond.notify_all()

    def _supervise_once(self) -> None:
        now = time.monotonic()
        self._check_pending_removals()
        with self._cond:
            roots = list(self._roots.values())
        for r in roots:
            if self._stop.is_set():
                return
            why = self._unavailable_reason(r)
            available = not why
            if r.mode == "unavailable":
                if available:
                    log.warning("watched folder %s is back; re-checking it", r.path)
                    with self._cond:
                        r.announced_unavailable = False
                        self._availability_pending[r.path] = True
                    self._arm(r.path)
                    self._request(r.path)
                continue
            if not available:
                self._mark_unavailable(r, why)
                continue
            if r.observer is not None and not self._observer_healthy(r.observer):
                log.warning("watcher for %s stopped unexpectedly; restarting it and re-checking", r.path)
                self._disarm(r)
                self._arm(r.path)
                self._request(r.path)
                continue
            interval = self.settings.reconcile_interval_s
            last = r.last_attempt_mono
            if interval > 0 and last is not None and now - last >= interval:
                self._request(r.path)

    def _supervisor(self) -> None:
        while not self._stop.wait(self.supervise_interval_s):
            try:
                self._supervise_once()
            except Exception:
                log.exception("watch supervisor check failed")

    # ----------------------------------------------------------------- worker

    def _request(self, root: str) -> None:
        with self._cond:
            if root in self._roots:
                self._reconcile_pending.add(root)
                self._cond.notify_all()

    def _excluder(self, root: str) -> Excluder:
        ex = self._excluders.get(root)
        if ex is None:
            ex = self._excluders[root] = self._exclusions_factory(root)
        return ex

    def _filter(self, raw: list[str], roots: dict[str, _Root]) -> list[str]:
        """Keep paths inside an available root that the exclusions let through."""
        keep: list[str] = []
        for path in raw:
            root = root_of(path, roots)
            if root is None or roots[root].mode == "unavailable":
                continue
            if is_under(path, self._data_dir):
                continue  # never index ourselves
            try:
                # The final path decides (an atomic save's temp name is excluded, its
                # target is not); exclusions also check every folder above it.
                excluded = path != root and self._excluder(root).is_excluded(path, os.path.isdir(path))
            except OSError as exc:  # e.g. an unreadable .gitignore: let the service decide
                log.debug("exclusion check failed for %r: %s", path, exc)
                excluded = False
            if not excluded:
                keep.append(path)
        return keep

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except LodestarError as exc:  # known problem (disk full, store): say it, keep watching
            log.warning("%s failed: %s", what, exc)
        except Exception:
            log.exception("%s failed", what)
        return None

    def _worker(self) -> None:
        lower_thread_priority(10)
        while not self._stop.is_set():
            job = self._next_job()
            if job is None:
                continue
            try:
                job()
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _next_job(self) -> Callable[[], None] | None:
        """Wait for work; return it with ``_busy`` set (None when stopping or spurious)."""
        with self._cond:
            while not self._stop.is_set():
                if self._availability_pending:
                    root, available = self._availability_pending.popitem()
                    self._busy = True
                    return lambda: self._do_availability(root, available)
                if self._removals_pending:
                    root = self._removals_pending.pop()
                    self._busy = True
                    return lambda: self._do_remove(root)
                if self._prune_pending:
                    self._prune_pending = False
                    self._busy = True
                    return self._do_prune
                if self._reconcile_pending:
                    # All waiting roots in one run: one progress from 0 to N, one "up to date".
                    roots = sorted(self._reconcile_pending)
                    self._reconcile_pending.clear()
                    self._busy = True
                    return lambda: self._do_reconcile(roots)
                now = time.monotonic()
                wait = self._queue.wait_for_due(now, self.debounce_s, self.max_delay_s)
                if wait == 0.0:
                    batch = self._queue.pop_due(now, self.debounce_s, self.max_delay_s, self.max_batch)
                    self._busy = True
                    return lambda: self._do_sync(batch)
                self._cond.wait(wait if wait is not None else 1.0)
            return None

    def _do_availability(self, root: str, available: bool) -> None:
        if not available and self._follow_moved(root):
            return
        self._call(f"marking {root} {'available' if available else 'unavailable'}",
                   lambda: self.service.set_root_available(root, available))

    def _follow_moved(self, root: str) -> bool:
        """A watched folder gone from its path may have been renamed or moved as a whole:
        the index follows it (`IndexService.follow_moved_roots`, no model call; it saves the
        settings with the new place) and it is watched there. False when it went nowhere
        to be found (an unplugged drive: its entries wait, hidden)."""
        follow = getattr(self.service, "follow_moved_roots", None)
        if follow is None or os.path.lexists(root):
            return False
        followed = self._call(f"following {root}", follow)
        if not followed:
            return False
        live = getattr(self.service, "settings", self.settings)  # saved by the service
        if live is not self.settings:
            self.settings.folders[:] = list(live.folders)
        log.warning("watched folders moved: %s", "; ".join(f"{old} -> {new}" for old, new in followed))
        self.set_roots(self.settings.folders)
        return True

    def _do_remove(self, root: str) -> None:
        with self._cond:
            if root in self._removed or root in self._roots:
                return  # already done (settings change and a noted removal both ask)
            self._removed.add(root)
        removed = self._call(f"removing {root}", lambda: self.service.remove_root(root))
        log.info("removed %s entries of %s, no longer watched", removed, root)

    def _do_prune(self) -> None:
        """Drop the entries of folders removed while another process was the writer
        (`lodestar folders remove` leaves a note; see `add_pending_removal`)."""
        try:
            noted = read_pending_removals(self.paths)
        except OSError as exc:
            log.warning("cannot read %s: %s", self.paths.data_dir / PENDING_REMOVALS_FILE, exc)
            return
        done = []
        for root in noted:
            if self._stop.is_set():
                break
            self._do_remove(root)  # skips folders re-added since
            done.append(root)
        try:
            clear_pending_removals(self.paths, done)
        except OSError as exc:
            log.warning("cannot update %s: %s", self.paths.data_dir / PENDING_REMOVALS_FILE, exc)

    def _do_reconcile(self, roots: list[str]) -> None:
        ready: list[_Root] = []
        for root in roots:
            with self._cond:
                r = self._roots.get(root)
            if r is None or r.mode == "unavailable":
                continue
            why = self._unavailable_reason(r)
            if why:
                self._mark_unavailable(r, why)
                continue
            self._excluders.pop(root, None)  # pick up .gitignore / setting edits
            ready.append(r)
        if not ready:
            return
        started = time.monotonic()
        for r in ready:
            r.last_attempt_mono = started
        names = ", ".join(r.path for r in ready)
        summary = self._call(
            f"checking {names}", lambda: self.service.index_roots([r.path for r in ready], cancel=self.cancel)
        )
        if self.cancel.is_set() or summary is None:
            return
        with self._cond:
            for r in ready:
                r.last_reconcile = time.time()
        log.info("reconciled %s in %.1fs", names, time.monotonic() - started)
        self._publish()

    def _take_urgent(self) -> list[str]:
        """Changed paths due now, for a long reconcile to index between two of its files.

        Runs on the worker thread, inside that reconcile, as `_do_sync` would.
        """
        with self._cond:
            now = time.monotonic()
            if self._queue.wait_for_due(now, self.debounce_s, self.max_delay_s) != 0.0:
                return []
            raw = self._queue.pop_due(now, self.debounce_s, self.max_delay_s, self.max_batch)
            roots = dict(self._roots)
        self._mark_vanished_roots(raw, roots)
        return self._filter(raw, roots)

    def _mark_vanished_roots(self, raw: list[str], roots: dict[str, _Root]) -> None:
        """A root's own folder in a batch may mean it vanished: mark it unavailable
        instead of syncing it (which would delete all of its rows)."""
        for path in raw:
            r = roots.get(path)
            why = self._unavailable_reason(r) if r is not None else ""
            if r is not None and why:
                self._mark_unavailable(r, why)

    def _do_sync(self, raw: list[str]) -> None:
        with self._cond:
            roots = dict(self._roots)
        self._mark_vanished_roots(raw, roots)
        batch = self._filter(raw, roots)
        if not batch:
            return
        summary = self._call(f"updating {len(batch)} paths", lambda: self.service.sync_paths(batch, cancel=self.cancel))
        if summary is not None and self._on_batch is not None:
            try:
                self._on_batch(batch, summary)
            except Exception:
                log.exception("batch callback failed")

    # ----------------------------------------------------------------- status

    def _publish(self) -> None:
        # Serialised and read inside the lock, so the last write always holds the latest
        # state (two threads publishing must not leave an older snapshot on disk).
        with self._publish_lock:
            statuses = self.folder_status()
            try:
                write_watch_status(self.paths, statuses)
            except OSError as exc:
                log.warning("cannot write watch status %s: %s", self.paths.status_file, exc)
        if self._on_status is not None:
            try:
                self._on_status(statuses)
            except Exception:
                log.exception("status callback failed")


# --------------------------------------------------------------------------- status file


def write_watch_status(paths: AppPaths, statuses: list[FolderStatus]) -> None:
    """Atomically write folder modes so `lodestar status` in another process can show them."""
    data = {
        "pid": os.getpid(),
        "updated": time.time(),
        "folders": [dataclasses.asdict(s) for s in statuses],
    }
    write_json_atomic(Path(paths.status_file), data)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def read_watch_status(paths: AppPaths) -> list[FolderStatus]:
    """Folder modes written by the watching process; "stopped" if it is not running.

    Never raises: a damaged file (not JSON, wrong types) gives no or fewer entries."""
    data = read_json(Path(paths.status_file))
    if not isinstance(data, dict) or not isinstance(data.get("folders"), list):
        return []
    pid = as_number(data.get("pid", 0), 0, 2**31 - 1) or 0
    running = pid > 0 and pid == int(pid) and _pid_alive(int(pid))
    out: list[FolderStatus] = []
    for item in data["folders"]:
        st = _folder_status_from(item)
        if st is None:
            continue
        if not running:
            st.mode = "stopped"
            st.message = "not being watched (no `lodestar watch` or window running)"
        out.append(st)
    return out


_MODES = ("live", "polling", "unavailable", "stopped")


def _folder_status_from(item: Any) -> FolderStatus | None:
    """One entry of the status file, each field checked (a wrong one gets its default)."""
    if not isinstance(item, dict):
        return None
    path = item.get("path")
    if not isinstance(path, str) or not os.path.isabs(path) or "\x00" in path:
        return None
    mode = item.get("mode")
    message = item.get("message")
    count = {k: as_number(item.get(k), 0, 2**53) for k in ("files", "failed")}
    return FolderStatus(
        path=path,
        mode=mode if mode in _MODES else "stopped",
        files=int(count["files"] or 0),
        failed=int(count["failed"] or 0),
        last_reconcile=as_number(item.get("last_reconcile"), 0, 1e11),  # a date, or None
        message=message if isinstance(message, str) else "",
    )


# --------------------------------------------------------------------------- pending removals

PENDING_REMOVALS_FILE = "pending-removals.json"


def read_pending_removals(paths: AppPaths) -> list[str]:
    data = read_json(paths.data_dir / PENDING_REMOVALS_FILE)
    if not isinstance(data, list):
        return []
    # Only absolute folder paths: a damaged entry must not name something else to remove.
    return [p for p in data if isinstance(p, str) and os.path.isabs(p) and "\x00" not in p]


def add_pending_removal(paths: AppPaths, root: str) -> None:
    """Note that ``root``'s entries must go; the writer (watcher) drops them within seconds.

    Only noted folders are removed: files indexed one by one outside any watched folder
    (``lodestar index FILE``) have roots that settings never listed, and must stay.
    """
    noted = read_pending_removals(paths)
    if root not in noted:
        write_json_atomic(paths.data_dir / PENDING_REMOVALS_FILE, [*noted, root])


def clear_pending_removals(paths: AppPaths, done: Sequence[str]) -> None:
    left = [r for r in read_pending_removals(paths) if r not in set(done)]
    target = paths.data_dir / PENDING_REMOVALS_FILE
    if left:
        write_json_atomic(target, left)
    else:
        try:
            target.unlink()
        except FileNotFoundError:
            pass
