"""The library session: one door to a person's index, for the window and `lodestar watch`.

A `LibrarySession` owns the writing side, in order: writer lock → index service →
watcher; and everything that touches it: the watched folders (one rule for adding
one), pause and resume, clearing the index, retrying files, the folder statuses and
the problems list. It also hands out the searcher (a text-only one first, while the
image model loads) and says what state the image model is in.

Plain Python, no Qt. Methods that wait (loading models, stopping a batch, arming a
watcher) say so; the window runs them on worker threads and turns the callbacks into
signals (desktop/backend.py). `desktop/` reaches the core only through this module,
the searcher it hands out and the plain data modules (indexer.types, errors,
wording); tests/unit/test_import_rules.py keeps it so. That is why the few plain
helpers the widgets need are re-exported here (``__all__``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from indexer.errors import DiskFull, StoreError, WriterBusy
from indexer.ingest.extract import IMAGE_EXTENSIONS, kind_for_path
from indexer.library.settings import AppPaths, ConfigError, Settings, load_settings, normalise_folder, save_settings
from indexer.paths import is_under
from indexer.search.query import QUERY_TOO_LONG, parse_query
from indexer.shared.config import PRIVACY as SHARE_PRIVACY
from indexer.types import (
    FolderStatus,
    IndexSummary,
    LibraryMap,
    MapHits,
    MapLayer,
    OcrProgress,
    Progress,
    SearchResult,
)
from models.weights import DOWNLOAD_ANNOUNCED

log = logging.getLogger(__name__)

__all__ = [
    "DOWNLOAD_ANNOUNCED", "IMAGE_EXTENSIONS", "QUERY_TOO_LONG", "ClipState", "ConfigError", "FolderChange",
    "LibrarySession", "Problem",
    "clip_state_from", "follow_settings", "kind_for_path", "open_session", "parse_query", "plan_folder_add",
    "SHARE_PRIVACY",
]

# Settings a running watcher follows live; model choices need a restart.
LIVE_FIELDS = (
    "folders", "excludes", "skip_hidden", "honour_gitignore", "max_text_mb", "max_text_file_mb",
    "max_document_mb", "max_image_mb", "reconcile_interval_s", "recognise_text",
)
_EXCLUSION_FIELDS = ("excludes", "skip_hidden", "honour_gitignore")


@dataclasses.dataclass
class Problem:
    """A file that needs attention, as the Problems list shows it."""

    path: str
    state: str
    reason: str


@dataclasses.dataclass
class ClipState:
    """The image model as the window shows it: built only by :func:`clip_state_from`
    (from ``Runtime.image_state``), so every widget says the same thing."""

    state: str  # "loading" | "ready" | "missing" | "downloading"
    message: str = ""  # one line: what is true now
    fix: str = ""  # what the person can do ("" when nothing)
    short: str = ""  # the status bar's few words
    failed: bool = False  # a download was tried and failed (said once as a notice)

    def line(self) -> str:
        """What happened and what to do, as one notice."""
        return f"{self.message.rstrip('.')}. {self.fix}" if self.fix else self.message


def clip_state_from(runtime: Any, ok: bool, why: str) -> ClipState:
    """The window's ClipState from the runtime's one image-model state (or a bare reason)."""
    if ok:
        return ClipState("ready", "Image search ready", short="image search ready")
    st = getattr(runtime, "image_state", None)
    if st is None or getattr(st, "ready", False):
        return ClipState("missing", f"Image search unavailable: {why or 'CLIP weights missing'}",
                         "Download the weights, or choose a .safetensors checkpoint file.",
                         short="image search unavailable")
    reason = st.reason[:1].upper() + st.reason[1:]
    if st.offline:
        short = "image model: no internet"
    elif st.download_failed:
        short = "image model download failed"
    elif not st.download_allowed:
        short = "image downloads turned off"
    elif "not downloaded" in st.reason:
        short = "image model not downloaded"
    else:
        short = "image search unavailable"
    fix = st.fix[:1].upper() + st.fix[1:] if st.fix else ""
    return ClipState("missing", reason, fix.rstrip(".") + "." if fix else "", short=short,
                     failed=bool(st.download_failed))


# ----------------------------------------------------------------------------- folders
@dataclasses.dataclass(frozen=True)
class FolderChange:
    """What adding a folder does: refused (and why), already covered, or added."""

    path: str  # the folder as settings keep it
    refused: str = ""  # why it may not be watched ("" when it may)
    covered_by: str = ""  # the watched folder that already holds it (maybe itself)
    absorbed: tuple[str, ...] = ()  # listed folders inside it, which it now covers

    @property
    def added(self) -> bool:
        return not self.refused and not self.covered_by


def plan_folder_add(raw: str, current: Iterable[str], data_dir: str | os.PathLike[str]) -> FolderChange:
    """May ``raw`` be watched, next to the ``current`` folders? The one rule for every way
    a folder is added: the window, its welcome dialog and `lodestar folders add`."""
    from indexer.ingest.scan import refusal_reason

    path = normalise_folder(raw)
    refused = refusal_reason(path, data_dir)  # Lodestar's own data is never watched
    if not refused and not os.path.exists(path):
        refused = f"no such folder: {raw}"
    elif not refused and not os.path.isdir(path):
        refused = f"not a folder: {raw} (Lodestar watches folders; add the folder that holds it)"
    if refused:
        return FolderChange(path, refused=refused)
    listed = [normalise_folder(f) for f in current]
    for existing in listed:
        if is_under(path, existing):
            return FolderChange(path, covered_by=existing)
    return FolderChange(path, absorbed=tuple(f for f in listed if is_under(f, path)))


def follow_settings(paths: AppPaths, live: Settings, watch: Any) -> list[str]:
    """Copy the live-followable fields of settings.json into ``live`` (shared with the
    pipeline and ``watch``, so changed in place); returns the changed field names."""
    fresh = load_settings(paths)
    # A field the file gets wrong (a typo mid-edit, a half-written file) keeps its live
    # value: following its default would drop every folder, and with it their index.
    changed = [f for f in LIVE_FIELDS
               if f not in fresh.invalid_fields and getattr(fresh, f) != getattr(live, f)]
    if not changed:
        return changed
    for name in changed:
        value = getattr(fresh, name)
        if isinstance(value, list):
            getattr(live, name)[:] = value
        else:
            setattr(live, name, value)
    log.info("settings changed: %s", ", ".join(changed))
    if watch is not None:
        if "folders" in changed:
            watch.set_roots(live.folders)
        if any(f in changed for f in _EXCLUSION_FIELDS):
            watch.request_reconcile()
    return changed


# ----------------------------------------------------------------------------- the writer
def take_writer_lock(paths: AppPaths, command: str) -> Any:
    """Acquire the data directory's writer lock without waiting (raises WriterBusy)."""
    from indexer.library.writer_lock import WriterLock

    lock = WriterLock(paths, command=command)
    lock.acquire(wait=False, then="search only")
    return lock


def _real_watch_service(*args: Any, **kwargs: Any) -> Any:
    from indexer.watch.watcher import WatchService

    return WatchService(*args, **kwargs)


def _busy_message(exc: WriterBusy) -> str:
    holder = getattr(exc, "holder", None) or {}
    pid = holder.get("pid") if isinstance(holder, dict) else None
    if not pid:
        m = re.search(r"pid\D{0,3}(\d+)", str(exc))
        pid = int(m.group(1)) if m else None
    who = f"pid {pid}" if pid else "unknown pid"
    return f"Indexing is done by another Lodestar process ({who})"


class LibrarySession:
    """One process's session with a data directory: reader always, writer when it can be.

    ``runtime``: `indexer.library.runtime.Runtime` (or a test double with its shape).
    ``on_progress`` / ``on_status`` / ``on_batch`` receive the index service's progress
    events, the watcher's folder statuses and its per-batch summaries, from worker
    threads. ``lock_factory(paths)`` returns a held writer lock or raises WriterBusy;
    ``watch_factory(service, settings, paths, on_status=..)`` builds the watcher.
    """

    def __init__(self, runtime: Any, *, command: str = "lodestar (window)",
                 lock_factory: Callable[[AppPaths], Any] | None = None,
                 watch_factory: Callable[..., Any] | None = None,
                 on_progress: Callable[[Progress], None] | None = None,
                 on_status: Callable[[list[FolderStatus]], None] | None = None,
                 on_batch: Callable[[list[str], IndexSummary], None] | None = None) -> None:
        self.runtime = runtime
        self._lock_factory = lock_factory or (lambda paths: take_writer_lock(paths, command))
        self._watch_factory = watch_factory or _real_watch_service
        # Set before `become_writer` (the window routes them to its signals).
        self.on_progress = on_progress
        self.on_status = on_status
        self.on_batch = on_batch
        self._state = threading.RLock()  # guards the fields below; slow calls run outside it
        self.lock: Any = None
        self.service: Any = None
        self.watch: Any = None
        self.writer_message = ""  # who writes, when another process does
        self.paused = False
        self._closed = False
        self._clean = True
        self._publisher: Any = None  # indexer.shared.publish.PublishLoop while this writer shares its part

    # -- settings -----------------------------------------------------------------
    @property
    def paths(self) -> AppPaths:
        return self.runtime.paths

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def data_dir(self) -> str:
        return str(self.paths.data_dir)

    def folders(self) -> list[str]:
        return list(self.settings.folders)

    def save_settings(self) -> None:
        save_settings(self.paths, self.settings)

    def route_notices(self, handler: Callable[[str], None]) -> None:
        """Send lines the person must see to ``handler``: repaired settings now, announced
        downloads when they happen (from worker threads)."""
        if hasattr(self.runtime, "on_notice"):
            self.runtime.on_notice = handler
        for line in getattr(self.settings, "problems", ()):
            handler(line)

    def health_problem(self) -> str:
        """What the start-up check repaired in a damaged index ("" when it was sound)."""
        health = getattr(self.runtime, "health", None)
        if health is None or getattr(health, "ok", True):
            return ""
        return str(getattr(health, "message", ""))

    def set_start_at_login(self, enabled: bool) -> None:
        """Run `lodestar watch` for this data directory at login, or stop doing so (OSError)."""
        from indexer.library import autostart

        if enabled:
            autostart.enable(autostart.watch_command(self.data_dir))
        else:
            autostart.disable()

    # -- folders -----------------------------------------------------------------
    def add_folder(self, raw: str) -> FolderChange:
        """Watch ``raw`` if the rule allows: saved to settings, and a running watcher arms it
        (which may take a moment on a big tree). Starting a watcher is `start_watching`'s job."""
        with self._state:
            change = plan_folder_add(raw, self.settings.folders, self.paths.data_dir)
            if not change.added:
                return change
            kept = [f for f in self.settings.folders if normalise_folder(f) not in change.absorbed]
            self.settings.folders[:] = [*kept, change.path]
            watch = self.watch
        self.save_settings()
        if watch is not None:
            watch.set_roots(self.settings.folders)  # drops the absorbed folders' entries itself
        elif change.absorbed:
            self._note_removals(change.absorbed)
        return change

    def folder_refusal(self, raw: str) -> str:
        """Why ``raw`` may not be watched ("" when it may, or is already watched)."""
        return plan_folder_add(raw, self.settings.folders, self.paths.data_dir).refused

    def remove_folder(self, path: str) -> bool:
        """Stop watching ``path`` and drop its entries: the running watcher does it now,
        otherwise whoever writes next (a noted pending removal). False if it was not listed."""
        folder = normalise_folder(path)
        with self._state:
            listed = [f for f in self.settings.folders if f == path or normalise_folder(f) == folder]
            if not listed:
                return False
            self.settings.folders[:] = [f for f in self.settings.folders if f not in listed]
            watch = self.watch
        self.save_settings()
        if watch is not None:
            watch.set_roots(self.settings.folders)  # drops its entries
        else:
            self._note_removals([folder])
        return True

    def _note_removals(self, roots: Sequence[str]) -> None:
        """Leave the dropping of ``roots``' entries to the next watcher, here or in the
        process that writes (`lodestar folders remove` does the same)."""
        from indexer.watch.watcher import add_pending_removal

        for root in roots:
            add_pending_removal(self.paths, root)

    def refused_folders(self) -> list[str]:
        """Why each listed folder that may not be watched is refused (Lodestar's own data)."""
        from indexer.ingest.scan import refusal_reason

        return [why for why in (refusal_reason(f, self.paths.data_dir) for f in self.settings.folders) if why]

    def follow_settings_file(self) -> list[str]:
        """Take up what `lodestar folders` or an editor changed in settings.json (live fields);
        starts watching when the first folder appears. Waits while new folders are armed."""
        with self._state:
            watch = self.watch
        changed = follow_settings(self.paths, self.settings, watch)
        if watch is None and "folders" in changed:
            self.start_watching()
        return changed

    # -- the writer ------------------------------------------------------------------
    @property
    def is_writer(self) -> bool:
        return self.service is not None

    def become_writer(self, lock: Any = None) -> str:
        """Take the writer lock (or adopt ``lock``, already held), build the index service and
        start watching. Returns "" when this session writes, else who does (it then only
        reads). Waits for the models to load and the folders to be armed."""
        with self._state:
            if self._closed or self.service is not None:
                return self.writer_message
            if lock is None:
                lock = self.lock  # held since a try whose service failed to build
        if lock is None:
            try:
                lock = self._lock_factory(self.paths)
            except WriterBusy as exc:
                with self._state:
                    self.writer_message = _busy_message(exc)
                return self.writer_message
        with self._state:
            self.lock = lock  # close() releases it even if the service fails to build
        # A long-lived writer (window, `lodestar watch`) pauses on a full disk and goes on
        # once space is back; `lodestar index` stops instead (it cannot promise to wait).
        service = self.runtime.service(progress=self._progress_and_publish, wait_when_disk_full=True)
        with self._state:
            self.service, self.writer_message = service, ""
        self._follow_moved_folders(service)
        self.start_watching()
        self._start_publishing()
        return ""

    def _follow_moved_folders(self, service: Any) -> None:
        """Watched folders renamed or moved while Lodestar was closed: the index follows
        them (no model call), the saved settings name the new place and the person is told
        (`IndexService.follow_moved_roots`, `Runtime._after_follow`), before watching starts."""
        follow = getattr(service, "follow_moved_roots", None)
        if follow is None:
            return
        try:
            follow()
        except (OSError, StoreError, DiskFull) as exc:
            log.warning("could not follow moved folders: %s", exc)

    # -- a shared library (issue 19; indexer/shared, docs/SHARED.md) -------------------
    def _progress_and_publish(self, event: Progress) -> None:
        publisher = self._publisher
        if publisher is not None and event.index_changed:
            publisher.poke()  # a commit landed: this computer's part follows
        if self.on_progress is not None:
            self.on_progress(event)

    def _start_publishing(self) -> None:
        """The writer publishes this computer's part in the background while it shares one."""
        from indexer.shared.config import load_config
        from indexer.shared.publish import PublishLoop

        with self._state:
            if self._closed or self.service is None or self._publisher is not None:
                return
            if load_config(self.paths.data_dir) is None:
                return
            self._publisher = PublishLoop(self.paths.data_dir)
            self._publisher.start()

    def _stop_publishing(self, timeout: float = 15.0) -> None:
        with self._state:
            publisher, self._publisher = self._publisher, None
        if publisher is not None:
            publisher.stop(timeout)

    def share_status(self) -> Any:
        """Where the shared library stands (`indexer.shared.library.SharedStatus`); asks the bucket, waits."""
        from indexer.shared.library import status

        return status(self.paths.data_dir)

    def share_library(self, uri: str, computer: str | None = None) -> Any:
        """Make this data directory a part of the library at ``uri`` (new or existing) and publish
        it; a storage problem raises `indexer.errors.UserError` (one line). Waits."""
        from indexer.shared.library import share, sync

        share(self.paths.data_dir, uri, computer=computer)
        self._start_publishing()  # the writer keeps the part up to date from now on
        sync(self.paths.data_dir)  # the first publish now (a failure is in the status, and retried)
        return self.share_status()

    def publish_part(self) -> Any:
        """Publish this computer's part now; returns the status afterwards. Waits."""
        from indexer.shared.library import sync

        sync(self.paths.data_dir)
        return self.share_status()

    def shared_searcher(self) -> Any:
        """The searcher again after joining or leaving a shared library (None before one is loaded)."""
        rewrap = getattr(self.runtime, "reshare_searcher", None)
        return rewrap() if callable(rewrap) else None

    def leave_library(self, keep_remote: bool = False) -> int:
        """Stop sharing; removes this computer's part from the bucket unless ``keep_remote``. Waits."""
        from indexer.shared.library import leave

        self._stop_publishing()
        return leave(self.paths.data_dir, keep_remote=keep_remote)

    def start_watching(self) -> bool:
        """Start the watcher (its first check reconciles every folder). Waits while it arms
        the folders. Nothing to do when paused, closed, not the writer, without folders or
        already watching."""
        with self._state:
            if (self._closed or self.paused or self.service is None or self.watch is not None
                    or not self.settings.folders):
                return False
            kwargs: dict[str, Any] = {"on_status": self.on_status}
            if self.on_batch is not None:
                kwargs["on_batch"] = self.on_batch
            watch = self.watch = self._watch_factory(self.service, self.settings, self.paths, **kwargs)
        watch.start()
        return True

    def pause(self, timeout: float = 10.0) -> bool:
        """Stop watching (the batch in flight is cancelled) until `resume`. Waits for the
        watcher to stop; False if it did not within ``timeout``."""
        with self._state:
            self.paused = True
            watch, self.watch = self.watch, None
        return bool(watch.stop(timeout=timeout)) if watch is not None else True

    def resume(self) -> bool:
        """Watch again; the first check catches up with what changed meanwhile."""
        with self._state:
            self.paused = False
        return self.start_watching()

    def wait_idle(self, timeout: float) -> bool:
        """True once the watcher has nothing queued or in flight (or there is none)."""
        watch = self.watch
        return True if watch is None else bool(watch.wait_idle(timeout))

    def clear_index(self) -> None:
        """Stop the watcher, empty the index, then watch again (which re-indexes everything).
        Only the writer may; waits for the batch in flight to stop."""
        with self._state:
            if self.service is None:
                raise WriterBusy(self.writer_message or "indexing has not started yet")
            watch, self.watch = self.watch, None
        if watch is not None:
            watch.stop()  # never clear under a running batch
        self.runtime.store.clear()
        self.start_watching()

    def retry(self, paths: Iterable[str]) -> IndexSummary:
        """Index ``paths`` again now, even if unchanged (after fixing them). Only the writer may."""
        service = self.service
        if service is None:
            raise WriterBusy(self.writer_message or "Indexing has not started yet.")
        return service.sync_paths(list(paths), force=True)

    # -- status and problems -------------------------------------------------------------
    def folder_status(self) -> list[FolderStatus]:
        """How each folder is watched: from our watcher, else the status file the writing
        process keeps (quick; no counts)."""
        watch = self.watch
        if watch is not None:
            return list(watch.folder_status())
        try:
            from indexer.watch.watcher import read_watch_status

            return list(read_watch_status(self.paths))
        except (ImportError, OSError, ValueError):
            return [FolderStatus(path=f) for f in self.folders()]

    def counted_folder_status(self) -> list[FolderStatus]:
        """`folder_status` with each folder's file and problem counts from the index (opens it)."""
        from indexer.store.tables import is_problem

        statuses = self.folder_status()
        counts: dict[str, list[int]] = {}
        for rec in self.runtime.store.files().values():
            c = counts.setdefault(getattr(rec, "root", ""), [0, 0])
            c[0] += 1
            c[1] += is_problem(rec)  # the same rule as the Problems list and its count
        for st in statuses:
            st.files, st.failed = counts.get(st.path, [st.files, st.failed])
        return statuses

    def problems(self) -> list[Problem]:
        """Files that failed, wait, or are findable by name only, with the reason (opens the index)."""
        return [Problem(str(r.path), str(r.state), str(r.reason)) for r in self.runtime.store.problems()]

    def words_progress(self) -> OcrProgress:
        """How far reading the words in pictures and scans has come (issue 16; opens the index).
        ``running``: this process's recognition stage is at work now."""
        from indexer.ingest.recognise import progress

        service = self.runtime._service
        return progress(self.runtime.store, self.settings, running=bool(getattr(service, "recognising", False)))

    # -- search and models -------------------------------------------------------------
    def load_search(self, on_early_searcher: Callable[[Any], None] | None = None) -> tuple[Any, ClipState]:
        """Text model → index → a text-only searcher (handed to ``on_early_searcher`` at once,
        so the first answer does not wait for the image model) → image model → the full
        searcher and the image model's state. Waits for all of it."""
        opening = self._open_store_beside()
        self.runtime.text_embedder.load()
        if opening is not None:
            opening.join()
        early = self._text_only_searcher()
        if early is not None and on_early_searcher is not None:
            on_early_searcher(early)
        clip = self.image_model_state(load=True)
        return self.runtime.searcher(), clip

    def _open_store_beside(self) -> threading.Thread | None:
        """Open the index (health check, lancedb import: ~2 s cold) while the text model
        loads, so the first answer waits for the slower of the two, not their sum."""
        from indexer.library.runtime import Runtime

        if not isinstance(self.runtime, Runtime):
            return None

        def open_store() -> None:
            try:
                _ = self.runtime.store  # opening it is the point
            except Exception:  # raised again, and reported, where the store is used next
                log.debug("store not opened beside the text model", exc_info=True)

        thread = threading.Thread(target=open_store, name="lodestar-open-store", daemon=True)
        thread.start()
        return thread

    def _text_only_searcher(self) -> Any:
        from indexer.library.runtime import Runtime
        from indexer.search.ranking import Searcher

        if not isinstance(self.runtime, Runtime):
            return None  # a test double: it hands out its own searcher
        return Searcher(self.runtime.store, self.runtime.text_embedder, None, paths=self.runtime.paths,
                        settings=self.runtime.settings, image_problem="the image model is still loading")

    def image_model_state(self, *, load: bool) -> ClipState:
        """Whether images can be searched, and if not why and what to do; ``load``: load the
        model now (slow) rather than only look."""
        return clip_state_from(self.runtime, *self.runtime.image_ready(load=load))

    def allow_image_download(self) -> None:
        self.settings.allow_download = True
        self.save_settings()

    def download_image_model(self, progress: Callable[[int, int], None]) -> ClipState:
        """Fetch the image model's weights now (the person asked: a remembered failure is
        forgotten); ``progress(done_bytes, total_bytes)``. Waits for the download."""
        emb = self.runtime.image_embedder
        emb.on_download_progress = progress  # an ImageEmbedder reports a download's bytes
        try:
            ok, why = self.runtime.image_ready(load=True, download=True, retry=True)
        finally:
            emb.on_download_progress = None
        return clip_state_from(self.runtime, ok, why)

    def can_reload_image_model(self) -> bool:
        """Whether new image weights can be taken up without restarting the process."""
        return callable(getattr(self.runtime, "reset_image_model", None))

    def reload_image_model(self) -> tuple[Any, ClipState]:
        """Forget the image model, load it again (after the settings changed) and return the
        searcher with it. Waits for the model."""
        self.runtime.reset_image_model()
        return self.runtime.searcher(), self.image_model_state(load=True)

    # -- duplicates (issue 18) ----------------------------------------------------
    def find_duplicates(self, tiers: Sequence[str] | None = None, progress: Callable[[str], None] | None = None,
                        cancel: Callable[[], bool] | None = None) -> list[Any]:
        """Duplicate groups (`indexer.duplicates.tiers.DuplicateGroup`), largest reclaimable
        first, without those marked "not duplicates". Reads only; waits for the scan."""
        from indexer.duplicates.actions import load_decisions
        from indexer.duplicates.scan import DuplicateScan
        from indexer.duplicates.tiers import TIERS
        from indexer.store.read import StoreReader

        store = self.runtime.store
        decisions = load_decisions(self.data_dir)
        scan = DuplicateScan(store, StoreReader(store), self.data_dir, progress=progress, cancel=cancel)
        return scan.run(tuple(tiers or TIERS), preferred=decisions.preferred, dismissed=decisions.dismissed)

    def trash_duplicates(self, group: Any, paths: Sequence[str]) -> Any:
        """Move these members of ``group`` to the system trash (never a delete); when this
        session writes, the index follows at once, else the writing process's watcher does.
        Returns `indexer.duplicates.actions.TrashOutcome` (nothing moves if a file changed)."""
        from indexer.duplicates.actions import move_to_trash

        service = self.service
        return move_to_trash(group, paths, after=service.sync_paths if service is not None else None)

    def not_duplicates(self, group: Any) -> None:
        """Remember that ``group``'s files are not duplicates: it is not shown again."""
        from indexer.duplicates.actions import dismiss

        dismiss(self.data_dir, group)

    def preferred_folders(self) -> list[str]:
        """Folders whose copies are suggested as the ones to keep."""
        from indexer.duplicates.actions import load_decisions

        return load_decisions(self.data_dir).preferred

    def set_preferred_folders(self, folders: Sequence[str]) -> None:
        from indexer.duplicates.actions import set_preferred

        set_preferred(self.data_dir, folders)

    def differing_passages(self, keeper_path: str, other_path: str) -> list[str]:
        """Sentences of ``other_path`` that share little text with ``keeper_path`` (opens the index)."""
        from indexer.duplicates.scan import differing_passages

        store = self.runtime.store
        keeper, other = store.get_file(keeper_path), store.get_file(other_path)
        if keeper is None or other is None:
            return []
        return differing_passages(store, keeper, other)

    # -- the map (issue 17) ------------------------------------------------------
    def load_map(self, layer: MapLayer) -> LibraryMap | None:
        """The layer's map as last built, read from the data directory (fast: no layout, no
        model); ``stale`` says files came or went since. None when it was never built, or was
        built from another model's vectors."""
        from indexer.map.build import load_library_map

        return load_library_map(self.runtime.store, self.paths, layer)

    def build_map(self, layer: MapLayer, progress: Callable[[str, float], None] | None = None,
                  cancel: Callable[[], bool] | None = None, *, fresh: bool = False) -> LibraryMap:
        """Bring the layer's map up to date and keep it with the index: files that arrived are
        placed without moving the others, removed ones drop, and the whole library is laid out
        afresh when much of it changed (or ``fresh``). ``progress(line, fraction)`` with fraction
        in [0, 1]; ``cancel()`` is asked between steps: a cancelled build writes nothing and
        returns the map as it was. Slow (seconds to minutes): run it on a worker. Reads the
        index only; the map's files are the only thing written."""
        from indexer.map.build import build_library_map

        return build_library_map(self.runtime, layer, progress=progress, cancel=cancel, fresh=fresh)

    def map_query(self, query: str, layer: MapLayer = "documents", limit: int = 200) -> MapHits:
        """The files a query finds, to light up on the layer's map: fid → score. Waits for
        the search (the text model; CLIP for the images layer)."""
        from indexer.map.build import query_hits

        return query_hits(self.runtime, query, layer, limit)

    def files_in(self, fids: Sequence[str]) -> list[SearchResult]:
        """These files as result rows (path, name, folder, thumbnail, ...) for a lasso's list
        and the preview, in the order given; files no longer indexed are left out."""
        from indexer.map.build import files_as_results

        return files_as_results(self.runtime, fids)

    # -- shutdown ----------------------------------------------------------------
    def cancel_batch(self) -> None:
        """Ask the batch in flight to stop between files (shutting down soon)."""
        watch = self.watch
        if watch is not None:
            watch.cancel.set()

    def close(self, timeout: float = 15.0) -> bool:
        """Stop watching, give up the writer lock, close the runtime (idempotent).

        False when the watcher's threads did not stop within ``timeout``: the lock is then
        kept (two writers must never run) and the caller must not let the interpreter
        finalise under those threads.
        """
        with self._state:
            if self._closed:
                return self._clean
            self._closed = True
            watch, self.watch = self.watch, None
        stopped = True
        if watch is not None:
            stopped = bool(watch.stop(timeout=timeout))
            if not stopped:
                log.warning("the indexer did not stop within %.0f s", timeout)
        self._clean = stopped
        self._stop_publishing()
        if not stopped:
            return False
        with self._state:
            lock, self.lock = self.lock, None
        if lock is not None:
            lock.release()
        closer = getattr(self.runtime, "close", None)
        if callable(closer):
            closer()
        return True


def open_session(data_dir: str | os.PathLike[str] | None = None, **kwargs: Any) -> LibrarySession:
    """A session on ``data_dir`` (paths and settings only: models and the index open lazily).
    Raises ConfigError when the data directory cannot be used."""
    from indexer.library import runtime

    return LibrarySession(runtime.open_runtime(data_dir), **kwargs)
