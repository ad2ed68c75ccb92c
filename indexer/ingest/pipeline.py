"""The indexing pipeline: scan → extract → chunk → embed → store, incrementally.

One `IndexService` owns the store's writes in a process (the writer lock makes
it one per data directory). It is incremental by default:

- unchanged size and mtime: the file is not read;
- changed mtime but the same bytes: the record is refreshed, no model call;
- the same bytes under another path (rename, move, copy): vectors are copied,
  no model call;
- changed text: only chunks whose embedded text changed are re-embedded;
- gone: the record is retired (hidden, its vectors kept for the other end of a
  move processed later in the run or in a later watcher batch), then purged;
  unless its watched folder is offline (kept, hidden).

Extraction runs on a small thread pool ahead of the model so decoding overlaps
inference; writes are batched (never one commit per file) and the per-file
"indexed" state is committed only after its vectors (see `Store.write`).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np

from indexer.errors import DiskFull
from indexer.ingest.safe_open import (
    OpenFile,
    PathUnsafe,
    Vanished,
    open_under_root,
    stat_under_root,
)
from indexer.library.settings import AppPaths, Settings, read_json, save_settings, write_json_atomic
from indexer.paths import display_path, root_of
from indexer.store.tables import ChunkRow, FileRecord, ImageRow, Store, WriteBatch, file_id
from indexer.types import (
    Chunk,
    ExtractionError,
    FileInfo,
    IndexSummary,
    NameOnly,
    Progress,
)
from indexer.wording import plural
from models.base import ImageEmbedder, TextEmbedder

log = logging.getLogger(__name__)

ProgressCallback = Callable[[Progress], None]

FILES_PER_COMMIT = 256
"""Files committed together; a crash loses at most this much finished work."""
COMMIT_INTERVAL_S = 5.0
"""...or this much time, whichever comes first, so progress is durable on slow models."""
TEXT_BATCH = 64
IMAGE_BATCH = 32
EXTRACT_AHEAD = 8
IMAGE_AHEAD = IMAGE_BATCH + EXTRACT_AHEAD
"""Images in flight: decoding must go on while the model embeds a whole batch
(with 8 the pool idled during each forward pass: docs/PERFORMANCE.md)."""
HASH_BLOCK = 1 << 20
OPTIMIZE_EVERY_COMMITS = 100
"""A watcher only calls sync_paths (never index_roots, which optimizes after each run), so
compact and prune after this many commits or ``OPTIMIZE_INTERVAL_S``: bounded disk (L4/L5)."""
OPTIMIZE_INTERVAL_S = 600.0
REMOVED_KEPT_S = 600.0
"""How long a watcher keeps a retired record (a file gone from disk) for the other end of a
move in a later batch; a reconcile purges its roots' retired records when it ends."""
FOLDER_KIND: Final = "folder"
FOLLOWING_FILE: Final = "following.json"
"""In the data folder while a watched folder is being followed (`IndexService.follow_moved_roots`)."""
"""``kind`` of a problem record for a folder that could not be listed (state ``failed``).
Its files' records are kept as they were; the record goes once the folder can be read."""


class _Cancelled(Exception):
    """A stop was requested in the middle of embedding a batch."""


@dataclasses.dataclass
class _Work:
    """One file on its way through the pipeline."""

    info: FileInfo
    old: FileRecord | None
    content_hash: str = ""
    record: FileRecord | None = None
    chunks: list[Chunk] = dataclasses.field(default_factory=list)
    inputs: list[str] = dataclasses.field(default_factory=list)
    chunk_hashes: list[str] = dataclasses.field(default_factory=list)
    reuse: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # chunk_hash -> vector
    twin: FileRecord | None = None  # a file with the same bytes: its vectors are copied (_copy_from_twins)
    twin_unusable: bool = False  # its twin's vectors went since it was found: read the file
    copied_rows: list[ChunkRow] | None = None
    copied_image: ImageRow | None = None
    image: Any = None  # the image model's input (ImageEmbedder.preprocess), awaiting its batch
    thumb: str = ""
    width: int = 0
    height: int = 0
    is_new: bool = True
    fid: str = ""  # the record's id (`Store.fid_resolver`; a followed file keeps its first path's)
    touched_only: bool = False  # same bytes, new mtime: no model call, no row rewrite
    vanished: bool = False  # deleted between the scan and the read: gone, not failed
    unsafe: bool = False  # reached through a symlink when read: store nothing (S2)
    thumb_png: bytes = b""  # read elsewhere (a WorkSource): the thumbnail, written here by settle()
    image_vector: np.ndarray | None = None  # embedded elsewhere (a WorkSource's model actor)


Work = _Work
"""One file on its way through a run: what a `WorkSource` receives and hands back."""


class WorkSource(Protocol):
    """Where a run's files are scanned, read and embedded when that is not this process:
    a Ray cluster (indexer/cluster). The service still decides which files need work, takes
    each file read elsewhere through `IndexService.settle`, and commits as for its own."""

    def scan(self, root: str, settings: Settings, data_dir: Path, unreadable: dict[str, str]) -> Iterable[FileInfo]:
        """What `indexer.ingest.scan.scan_root` yields for ``root`` (folders it could not list in ``unreadable``)."""
        ...

    def works(self, service: IndexService, todo: Sequence[_Work], cancel: threading.Event | None) -> Iterator[_Work]:
        """Each of ``todo`` read as `IndexService._extract` reads it, in any order, passages and
        pictures already embedded (``reuse`` holds every passage's vector, ``image_vector`` the
        picture's) and passed through `IndexService.settle`. Stops early when ``cancel`` is set."""
        ...

RECENT_S = 14 * 24 * 3600.0
"""Files modified within this long go first in a big run: what a person works on now."""
URGENT_CHECK_S = 0.5
"""How often a long run asks the watcher for changes that should jump the queue."""


def _priority(work: _Work, now: float) -> tuple[int, int]:
    """Order of a run: recently modified files first, then small before large.

    A first index of a big library becomes useful in its first minute: what was
    touched lately, and the many short documents, are searchable long before the end.
    """
    recent = now - work.info.mtime_ns / 1e9 <= RECENT_S
    return (0 if recent else 1, work.info.size)


@dataclasses.dataclass
class _RunProgress:
    """Files done of a run's total, so every event the run emits says N of M and time left.

    Time left follows the work, not the file count: a run goes small files first, so
    the last files are the long ones. Work is estimated as a text file's size, a fixed
    amount per image (one forward pass) and next to nothing for a name-only file.
    """

    total: int
    total_work: int = 0
    started: float = dataclasses.field(default_factory=time.monotonic)
    done: int = 0
    done_work: int = 0
    failed: int = 0

    def add(self, info: FileInfo) -> None:
        self.done += 1
        self.done_work += _work_of(info)

    def event(self, phase: Any, message: str = "", current: str = "") -> Progress:
        elapsed = time.monotonic() - self.started
        rate = self.done / elapsed if elapsed > 0 and self.done else 0.0
        if self.total_work and self.done_work and elapsed > 0:
            eta: float | None = (self.total_work - self.done_work) / (self.done_work / elapsed)
        else:
            eta = (self.total - self.done) / rate if rate > 0 else None
        return Progress(
            phase, done=self.done, total=self.total, failed=self.failed, rate=rate, eta_s=eta,
            message=message, current=current,
        )


IMAGE_WORK = 8_192
"""An image's share of a run's work, in text bytes: about one CLIP forward pass."""


def _work_of(info: FileInfo) -> int:
    return info.size if info.kind == "text" else IMAGE_WORK if info.kind == "image" else 256


class IndexService:
    """Keeps the store equal to the watched folders. One per process and data directory."""

    def __init__(
        self,
        store: Store,
        paths: AppPaths,
        settings: Settings,
        text_embedder: TextEmbedder,
        image_embedder: ImageEmbedder | None,
        progress: ProgressCallback | None = None,
        *,
        image_unavailable_reason: str = "",
        wait_when_disk_full: bool = False,
        threads: int = 2,
        recogniser: Any = None,
    ) -> None:
        """``recogniser``: an `indexer.ingest.ocr.Recogniser` to read the words in pictures
        and scans after each run (`recognise`; `Settings.recognise_text` turns it off);
        None: no recognition stage (the composition root passes one)."""
        self.store = store
        self.paths = paths
        self.settings = settings
        self.text_embedder = text_embedder
        self.image_embedder = image_embedder
        self.image_unavailable_reason = image_unavailable_reason
        self.wait_when_disk_full = wait_when_disk_full
        self._progress_cb = progress
        self._threads = max(1, threads)
        self._lock = threading.RLock()  # one sync at a time in this process
        self.model_calls = 0
        self.paused = threading.Event()  # set by the window's pause button
        self._commits_since_optimize = 0
        self._index_changed = False  # a commit not yet reported (see _emit)
        self._last_optimize = time.monotonic()
        self._run: _RunProgress | None = None  # the outermost run in progress
        # Set by a watcher: returns changed paths waiting behind a long run (or []), so
        # a file saved during a first index is searchable in seconds, not at the end.
        self.urgent: Callable[[], list[str]] | None = None
        self._serving_urgent = False
        self._store_verified = False  # the deep index check runs at the first reconcile (issue 11.6)
        self.recogniser = recogniser
        self.recognising = False  # the recognition stage is at work (status, the window)
        # Where files are scanned, read and embedded: None is this process (its pool and
        # models); a cluster sets one (indexer/cluster). Commits stay here either way.
        self.source: WorkSource | None = None
        # Set by the runtime: (old folder, new folder) after a watched folder was followed,
        # for what other rooms keep by path (the duplicates' preferred folders) and to say so.
        self.after_follow: Callable[[str, str], None] | None = None
        paths.thumbnails.mkdir(parents=True, exist_ok=True, mode=0o700)

    # ---------------------------------------------------------------- public
    def index_roots(self, roots: Sequence[str], cancel: threading.Event | None = None) -> IndexSummary:
        """Reconcile each root with the disk: index what changed, drop what is gone."""
        from indexer.ingest.scan import scan_root

        started = time.monotonic()
        summary = IndexSummary()
        reconciled: list[str] = []  # roots scanned to the end: their retired records can go
        with self._lock:
            self._repair_store(deep=not self._store_verified)
            for root in roots:
                root = os.path.abspath(root)
                if not os.path.isdir(root):
                    # Unmounted or deleted folder: keep its entries, hidden (W7).
                    n = self.store.set_available(root, False)
                    if n:
                        log.warning("folder %r is unavailable; keeping %d entries", root, n)
                    continue
                self._emit(Progress("scanning", message=f"Scanning {root}"))
                seen: set[str] = set()
                infos: list[FileInfo] = []
                fids: list[str] = []  # computed once: _process needs the same ids (re-scan profile)
                unreadable: dict[str, str] = {}  # could not be listed: unknown, never "deleted"
                scanned = (
                    scan_root(root, self.settings, self.paths.data_dir, unreadable=unreadable) if self.source is None
                    else self.source.scan(root, self.settings, self.paths.data_dir, unreadable)
                )
                resolve = self.store.fid_resolver()  # a followed folder's records keep their ids
                for info in scanned:
                    fid = resolve(info.path)
                    seen.add(fid)
                    fids.append(fid)
                    infos.append(info)
                    if cancel is not None and cancel.is_set():
                        break
                if cancel is not None and cancel.is_set():
                    break
                if root in unreadable:
                    # Like an unplugged drive: keep its entries, hidden, and say why (W7, D6).
                    self._root_unreadable(root, unreadable[root], summary)
                    continue
                self.store.set_available(root, True)
                known = {fid: r for fid, r in self.store.files().items() if r.root == root}
                gone = [fid for fid, r in known.items() if fid not in seen and not _covered(r.path, unreadable)]
                problems = [_folder_problem(p, root, why, resolve(p)) for p, why in sorted(unreadable.items())]
                self._process(infos, root, summary, cancel, gone=gone, fids=fids, problems=problems)
                reconciled.append(root)
            if cancel is None or not cancel.is_set():
                # Only now: a file moved across folders or roots may be the run's last.
                self._purge_removed(reconciled, time.time())
                self._after_run()
                self.recognise(cancel)  # the words in pictures and scans, after everything else
        release_memory()
        summary.elapsed_s = time.monotonic() - started
        summary.model_calls = self.model_calls
        self._emit(Progress("idle", done=summary.new + summary.updated, message=_summary_line(summary)))
        return summary

    def follow_moved_roots(self) -> list[tuple[str, str]]:
        """Watched folders renamed or moved as a whole while nothing watched them.

        Each missing folder whose files turn up together elsewhere (`find_new_home`)
        takes its records along (`Store.relocate_root`: no reading, no model call) and
        takes the old one's place in the saved settings. One that turns up nowhere stays
        an unplugged drive. Returns (old, new) pairs.

        A note in the data folder (`FOLLOWING_FILE`) names each follow from before the
        store changes until the settings are saved: a crash in between is finished by the
        next call, so the settings never keep naming a folder whose records went elsewhere.
        """
        from indexer.ingest.relocated import find_new_home

        followed: list[tuple[str, str]] = []
        with self._lock:
            self._finish_interrupted_follows()
            folders = [os.path.abspath(f) for f in self.settings.folders]
            missing = [f for f in folders if not os.path.isdir(f)]
            if not missing:
                return followed
            by_root: dict[str, list[FileRecord]] = collections.defaultdict(list)
            for rec in self.store.files().values():
                by_root[rec.root].append(rec)
            for root in missing:
                avoid = [f for f in folders if f != root] + [os.path.abspath(self.paths.data_dir)]
                new = find_new_home(root, by_root.get(root, ()), avoid)
                if new is None or new in folders:
                    continue
                self._emit(Progress("scanning", message=f"Following {display_path(root)} to {display_path(new)}"))
                self._note_follow(root, new)
                moved = self._follow(root, new)
                folders = [new if f == root else f for f in folders]
                log.info("watched folder %r was moved to %r; %d records followed with no model call", root, new, moved)
                followed.append((root, new))
            if followed:
                self._emit(Progress("idle", message=followed_line(followed), index_changed=True))
        return followed

    def _follow(self, old: str, new: str) -> int:
        """Records, then the saved settings, then what else follows; the note goes last."""
        moved = self.store.relocate_root(old, new)
        self.settings.folders[:] = [new if os.path.abspath(f) == old else f for f in self.settings.folders]
        save_settings(self.paths, self.settings)
        self._follow_side_state(old, new)
        try:
            (self.paths.data_dir / FOLLOWING_FILE).unlink(missing_ok=True)
        except OSError as exc:
            log.warning("cannot remove %s: %s", FOLLOWING_FILE, exc)
        return moved

    def _note_follow(self, old: str, new: str) -> None:
        write_json_atomic(self.paths.data_dir / FOLLOWING_FILE, {"old": old, "new": new})

    def _finish_interrupted_follows(self) -> None:
        note = read_json(self.paths.data_dir / FOLLOWING_FILE)
        if not (isinstance(note, dict) and isinstance(note.get("old"), str) and isinstance(note.get("new"), str)):
            return
        old, new = note["old"], note["new"]
        if os.path.isdir(new) and not os.path.isdir(old) and old in map(os.path.abspath, self.settings.folders):
            log.warning("finishing the follow of %r to %r that an earlier run left half done", old, new)
            self._follow(old, new)
        else:
            try:
                (self.paths.data_dir / FOLLOWING_FILE).unlink(missing_ok=True)
            except OSError as exc:
                log.warning("cannot remove %s: %s", FOLLOWING_FILE, exc)

    def _follow_side_state(self, old: str, new: str) -> None:
        """What else is keyed by a followed folder's paths follows it (`after_follow`, set by
        the runtime: the duplicates' preferred folders), and the person is told. Best effort:
        the index itself has followed."""
        if self.after_follow is None:
            return
        try:
            self.after_follow(old, new)
        except OSError as exc:
            log.warning("what is kept beside the index could not follow %r: %s", new, exc)

    def _root_unreadable(self, root: str, why: str, summary: IndexSummary) -> None:
        """A watched folder that cannot be listed: its entries stay, hidden, with the reason."""
        n = self.store.set_available(root, False)
        kept = sum(1 for r in self.store.files().values() if r.root == root and r.kind != FOLDER_KIND)
        reason = f"{why}; its {kept} entries are kept, hidden from results, until it can be read again"
        log.warning("watched folder %r cannot be read (%s); keeping %d entries", root, why, n)
        problem = dataclasses.replace(_folder_problem(root, root, reason, self.store.fid_resolver()(root)), available=False)
        self._write(WriteBatch(files=[problem]))
        summary.failed += 1
        summary.failures.append((root, reason))

    def sync_paths(
        self, paths: Iterable[str], cancel: threading.Event | None = None, *, force: bool = False
    ) -> IndexSummary:
        """Bring the given paths in line with the disk; idempotent; event types never matter.

        ``force`` re-reads files even when their size and mtime are unchanged (the
        window's Retry on a failed file).
        """
        from indexer.ingest.scan import Exclusions, scan_root, stat_file

        started = time.monotonic()
        started_at = time.time()
        summary = IndexSummary()
        with self._lock:
            paths = [*paths, *self._repair_store()]  # files whose vectors were found damaged
            roots = [os.path.abspath(r) for r in self.settings.folders]
            exclusions = Exclusions(self.settings, self.paths.data_dir)
            by_root: dict[str, list[FileInfo]] = collections.defaultdict(list)
            gone: dict[str, list[str]] = collections.defaultdict(list)
            problems: dict[str, list[FileRecord]] = collections.defaultdict(list)
            files = self.store.files()
            resolve = self.store.fid_resolver()
            for raw in dict.fromkeys(paths):
                path = os.path.abspath(raw)
                root = root_of(path, roots)
                if root is None:
                    continue
                try:
                    st = os.lstat(path)
                except FileNotFoundError:
                    st = None
                except OSError as exc:
                    log.info("cannot stat %r: %s", path, exc)
                    continue
                if st is not None and stat.S_ISDIR(st.st_mode):
                    if _is_excluded(exclusions, path, True) or _via_symlinked_folder(path, root):
                        gone[root].extend(_under(files, path))
                        continue
                    seen = set()
                    unreadable: dict[str, str] = {}  # could not be listed: unknown, never "deleted"
                    for info in scan_root(path, self.settings, self.paths.data_dir, unreadable=unreadable):
                        info = dataclasses.replace(info, root=root)
                        seen.add(resolve(info.path))
                        by_root[root].append(info)
                    gone[root].extend(
                        f for f in _under(files, path) if f not in seen and not _covered(files[f].path, unreadable)
                    )
                    if path not in unreadable and resolve(path) in files:
                        gone[root].append(resolve(path))  # a folder problem that went away
                    problems[root].extend(_folder_problem(p, root, why, resolve(p)) for p, why in sorted(unreadable.items()))
                    continue
                if st is None or _is_excluded(exclusions, path, False):
                    fid = resolve(path)
                    if fid in files:
                        gone[root].append(fid)
                    gone[root].extend(_under(files, path))  # a folder that went away
                    continue
                regular = stat_file(path, root)
                if regular is None:  # a symlink, FIFO or other non-regular file
                    if resolve(path) in files:
                        gone[root].append(resolve(path))
                    continue
                by_root[root].append(regular)
            for root in set(by_root) | set(gone) | set(problems):
                self._process(
                    by_root.get(root, []), root, summary, cancel, gone=gone.get(root, []), force=force,
                    problems=problems.get(root, []),
                )
            if not self._serving_urgent:
                self._purge_removed((), started_at)  # what this sync retired waits for later batches
                self._maybe_optimize()
                if self._run is None:
                    self.recognise(cancel)  # words in the pictures this batch brought
        summary.elapsed_s = time.monotonic() - started
        summary.model_calls = self.model_calls
        if self._run is None and not self._serving_urgent:
            # A watcher's sync ends here: say so, or the window keeps showing "saving".
            self._emit(Progress("idle", done=summary.new + summary.updated, message=_summary_line(summary)))
        return summary

    def index_files(self, paths: Iterable[str], cancel: threading.Event | None = None) -> IndexSummary:
        """Index individual files, even outside watched folders (root = their folder)."""
        from indexer.ingest.scan import stat_file

        started = time.monotonic()
        summary = IndexSummary()
        with self._lock:
            roots = [os.path.abspath(r) for r in self.settings.folders]
            by_root: dict[str, list[FileInfo]] = collections.defaultdict(list)
            for raw in dict.fromkeys(paths):
                path = os.path.abspath(raw)
                root = root_of(path, roots) or os.path.dirname(path)
                info = stat_file(path, root)
                if info is not None:
                    by_root[root].append(info)
            for root, infos in by_root.items():
                self._process(infos, root, summary, cancel)
        summary.elapsed_s = time.monotonic() - started
        summary.model_calls = self.model_calls
        return summary

    def recognise(self, cancel: threading.Event | None = None) -> Any:
        """Read the words in pictures and scans that are due (`indexer.ingest.recognise`).

        At a lower priority than files: between two pictures, files changed meanwhile
        (the watcher's) are indexed first. Returns the stage's summary, or None when there
        is no recogniser or the setting is off.
        """
        if self.recogniser is None or not getattr(self.settings, "recognise_text", True):
            return None
        from indexer.ingest.recognise import RecognitionStage

        stage = RecognitionStage(self.store, self.text_embedder, self.recogniser)

        last_urgent = 0.0

        def should_yield(flush: Callable[[], None]) -> None:
            nonlocal last_urgent
            self._wait_if_paused(cancel)
            if self.urgent is None or self._serving_urgent or time.monotonic() - last_urgent < URGENT_CHECK_S:
                return
            last_urgent = time.monotonic()
            waiting = self._take_urgent()
            if waiting:
                flush()  # what was read is committed before the changed files are served
                self._serve_urgent(waiting, cancel)

        def on_progress(done: int, total: int, path: str) -> None:
            self._emit(Progress("reading", done=done, total=total, current=path,
                                message=f"reading words in pictures and scans: {done:,} of {total:,}"))

        with self._lock:
            self.recognising = True
            try:
                summary = stage.run(cancel=cancel, should_yield=should_yield, on_progress=on_progress,
                                    commit=self._commit_side)
            except DiskFull:
                raise
            except Exception:
                # A bug or a damaged words table must not undo the run it follows: the files
                # are indexed; their words wait for the next run (the traceback is in the log).
                log.exception("reading the words in pictures and scans stopped")
                return None
            finally:
                self.recognising = False
        if summary.read or summary.copied or summary.skipped or summary.failed:
            self._index_changed = True
            log.info("words read in %d files (%d with words, %d copied, %d without text, %d failed) in %.1f s",
                     summary.read, summary.with_text, summary.copied, summary.skipped, summary.failed, summary.elapsed_s)
        return summary

    def _commit_side(self, write: Callable[[], None]) -> None:
        """Run a write of another table (recognised text) with the pipeline's full-disk rule."""
        delay = 2.0
        while True:
            try:
                write()
                self._commits_since_optimize += 1
                self._index_changed = True
                return
            except (DiskFull, OSError, RuntimeError) as exc:
                from indexer.errors import is_disk_full

                if not isinstance(exc, DiskFull) and not is_disk_full(exc):
                    raise
                if not self.wait_when_disk_full:
                    raise DiskFull("the disk holding the index is full; what was saved is kept: free some space and run again") from exc
                self._emit(Progress("paused", message="the disk holding the index is full; reading words waits for space"))
                time.sleep(delay)
                delay = min(delay * 2, 60.0)

    def remove_root(self, root: str) -> int:
        root = os.path.abspath(root)
        with self._lock:
            fids = [fid for fid, r in self.store.files().items() if r.root == root]
            retired = [fid for fid, r in self.store.removed().items() if r.root == root]
            self._write(WriteBatch(delete=[*fids, *retired]))
            self._gc_thumbnails()
        return len(fids)

    def set_root_available(self, root: str, available: bool) -> None:
        with self._lock:
            self.store.set_available(os.path.abspath(root), available)

    def close(self) -> None:
        """Stop helper processes (the document reader); the store stays open."""
        from indexer.ingest import extract

        extract.shutdown()

    def optimize(self) -> None:
        with self._lock:
            self._emit(Progress("optimizing", message="Compacting the index"))
            self.store.optimize()
            from indexer.store.ann import ensure_indexes

            ensure_indexes(self.store)  # keyword index; ANN index once the tables are large
            self._commits_since_optimize = 0
            self._last_optimize = time.monotonic()

    def _maybe_optimize(self) -> None:
        """Compact now and then on sync-only (watcher) workloads; best effort."""
        due = self._commits_since_optimize >= OPTIMIZE_EVERY_COMMITS or (
            self._commits_since_optimize and time.monotonic() - self._last_optimize > OPTIMIZE_INTERVAL_S
        )
        if not due:
            return
        try:
            self.optimize()
        except DiskFull as exc:  # committed data is intact; compaction waits for space
            log.warning("compaction postponed: %s", exc)

    # --------------------------------------------------------------- process
    def _process(
        self,
        infos: Sequence[FileInfo],
        root: str,
        summary: IndexSummary,
        cancel: threading.Event | None,
        gone: Sequence[str] = (),
        force: bool = False,
        fids: Sequence[str] | None = None,
        problems: Sequence[FileRecord] = (),
    ) -> None:
        """Index ``infos``, delete ``gone``, record ``problems`` (folders that could not be read)."""
        files = self.store.files()
        resolve = self.store.fid_resolver()
        todo: list[_Work] = []
        pending_meta: list[FileRecord] = []
        for i, info in enumerate(infos):
            fid = fids[i] if fids is not None else resolve(info.path)
            old = files.get(fid)
            if old is not None and not force and not self._needs_work(old, info):
                summary.unchanged += 1
                if old.root != root or not old.available:
                    pending_meta.append(dataclasses.replace(old, root=root, available=True))
                continue
            todo.append(_Work(info=info, old=old, is_new=old is None, fid=fid))

        now = time.time()
        todo.sort(key=lambda w: _priority(w, now))
        batch = WriteBatch(files=[*pending_meta, *problems])
        for p in problems:
            summary.failed += 1
            summary.failures.append((p.path, p.reason))
        if gone:
            batch.retire.extend(gone)  # kept, hidden, as twins for moves later in this run
            summary.removed += sum(1 for f in gone if f not in files or files[f].kind != FOLDER_KIND)
        total = len(todo)
        outer = self._run is None and not self._serving_urgent
        run = _RunProgress(total, total_work=sum(_work_of(w.info) for w in todo)) if outer else None
        if outer:
            self._run = run
        started = time.monotonic()
        last_commit = started
        last_urgent = started
        if run is not None and total:
            self._emit(run.event("extracting"))
        text_queue: list[_Work] = []
        image_queue: list[_Work] = []
        copy_queue: list[_Work] = []  # moves and copies: their twins' vectors are read together

        def queue(work: _Work) -> None:
            """Send a file that was read on its way: copy, embed, or record as it is."""
            rec = work.record
            assert rec is not None
            if work.unsafe:
                pass  # reached through a symlink when read: nothing of it is stored (S2)
            elif work.touched_only:
                batch.files.append(rec)
            elif work.twin is not None:
                copy_queue.append(work)
            elif rec.state == "indexed" and rec.kind == "text":
                text_queue.append(work)
            elif rec.state == "indexed" and rec.kind == "image":
                image_queue.append(work)
            else:
                batch.files.append(rec)

        def copy_twins() -> None:
            works = list(copy_queue)
            copy_queue.clear()
            unusable = self._copy_from_twins(works, batch)
            summary.moved += len(works) - len(unusable)
            for work in unusable:  # rare: its twin changed or was found damaged meanwhile
                if cancel is not None and cancel.is_set():
                    return  # the next run reads it
                work.twin, work.twin_unusable = None, True
                self._extract(work)
                if work.record is not None and work.record.state == "failed" and not work.vanished:
                    summary.failed += 1
                    summary.failures.append((work.record.path, work.record.reason))
                if not work.vanished:
                    queue(work)

        def flush(force: bool = False) -> None:
            nonlocal batch, last_commit
            if cancel is not None and cancel.is_set():
                # Stopping: abandon files not embedded yet (the next run picks them
                # up); what is finished (embedded by a WorkSource too) is still committed below.
                text_queue[:] = [w for w in text_queue if all(h in w.reuse for h in w.chunk_hashes)]
                image_queue[:] = [w for w in image_queue if w.image_vector is not None]
            if copy_queue:  # first: a copy whose twin is unusable joins the embedding below
                copy_twins()
            if text_queue:
                try:
                    self._embed_text(text_queue, cancel)
                except _Cancelled:
                    text_queue.clear()
                for w in text_queue:
                    _finish_text(w, batch, self.text_embedder.model_id)
                text_queue.clear()
            if image_queue:
                self._embed_images(image_queue, batch)
                image_queue.clear()
            if force or len(batch.files) >= FILES_PER_COMMIT or time.monotonic() - last_commit > COMMIT_INTERVAL_S:
                self._write(batch, cancel)
                batch = WriteBatch()
                last_commit = time.monotonic()

        pool = ThreadPoolExecutor(max_workers=self._threads, thread_name_prefix="lodestar-extract")
        try:
            works = self._prefetch(pool, todo) if self.source is None else self.source.works(self, todo, cancel)
            for work in works:
                if cancel is not None and cancel.is_set():
                    break
                self._wait_if_paused(cancel)
                if outer and self.urgent is not None and time.monotonic() - last_urgent > URGENT_CHECK_S:
                    last_urgent = time.monotonic()
                    waiting = self._take_urgent()
                    if waiting:
                        flush(force=True)  # commit what is in hand, then the changes
                        self._serve_urgent(waiting, cancel)
                if run is not None:
                    run.add(work.info)
                rec = work.record
                assert rec is not None
                if work.vanished:
                    # Deleted between the scan and the read: gone, not failed. If it comes
                    # back, nothing is recorded that could keep it from being indexed.
                    if work.old is not None:
                        batch.retire.append(work.old.fid)  # maybe moved: its twin may come later
                        summary.removed += 1
                    continue
                if rec.state == "failed":
                    summary.failed += 1
                    summary.failures.append((rec.path, rec.reason))
                elif rec.state == "name_only":
                    summary.name_only += 1
                elif rec.state == "pending":
                    summary.pending += 1
                if work.unsafe:
                    if work.old is not None:  # what an earlier run stored for this path goes too
                        batch.delete.append(rec.fid)
                        summary.removed += 1
                elif work.is_new:
                    summary.new += 1
                else:
                    summary.updated += 1
                queue(work)
                if sum(len(w.inputs) - len(w.reuse) for w in text_queue) >= TEXT_BATCH * 4 or len(image_queue) >= IMAGE_BATCH:
                    flush()
                elif (
                    len(batch.files) + len(copy_queue) + len(text_queue) >= FILES_PER_COMMIT
                    or time.monotonic() - last_commit > COMMIT_INTERVAL_S
                ):
                    flush()
                if run is not None:
                    run.failed = summary.failed
                    self._emit(run.event("embedding", current=rec.path))
            flush(force=True)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            if outer:
                self._run = None

    def _take_urgent(self) -> list[str]:
        assert self.urgent is not None
        try:
            return list(self.urgent())
        except Exception:
            log.exception("could not ask the watcher for changed files")
            return []

    def _serve_urgent(self, paths: list[str], cancel: threading.Event | None) -> None:
        """Index files changed during a long run now, between two of its files."""
        run = self._run
        if run is not None:
            self._emit(run.event("embedding", message=f"first {plural(len(paths), 'file')} just changed"))
        self._run, self._serving_urgent = None, True
        try:
            self.sync_paths(paths, cancel)
        finally:
            self._run, self._serving_urgent = run, False

    def _needs_work(self, old: FileRecord, info: FileInfo) -> bool:
        if old.size != info.size or old.mtime_ns != info.mtime_ns or old.kind != info.kind:
            return True
        if old.state == "pending":
            return self.image_embedder is not None or old.kind != "image"
        if old.state == "indexed" and old.kind == "text" and old.text_model != self.text_embedder.model_id:
            return True
        if (
            old.state == "indexed"
            and old.kind == "image"
            and self.image_embedder is not None
            and old.image_model != self.image_embedder.model_id
        ):
            return True
        return False

    def _prefetch(self, pool: ThreadPoolExecutor, todo: Sequence[_Work]) -> Iterator[_Work]:
        """Extract ahead of the model on a small pool, yielding in order."""
        queue: collections.deque[Future[_Work]] = collections.deque()
        it = iter(todo)
        nxt = next(it, None)

        def fill() -> None:
            nonlocal nxt
            while nxt is not None and len(queue) < (IMAGE_AHEAD if nxt.info.kind == "image" else EXTRACT_AHEAD):
                queue.append(pool.submit(self._extract, nxt))
                nxt = next(it, None)

        fill()
        while queue:
            yield queue.popleft().result()
            fill()

    def _extract(self, work: _Work) -> _Work:
        """Read one file: hash, then reuse vectors or extract. Never raises."""
        info = work.info
        rec = FileRecord(
            fid=work.fid or file_id(info.path),
            path=info.path,
            root=info.root,
            kind=info.kind,
            size=info.size,
            mtime_ns=info.mtime_ns,
            text_model=self.text_embedder.model_id,
            image_model=self.image_embedder.model_id if self.image_embedder is not None else "",
            indexed_at=time.time(),
        )
        work.record = rec
        try:
            self._extract_into(work, rec)
        except PathUnsafe as exc:
            # Reached through a symlink at read time: nothing of it is stored, as if
            # the scan had not seen it, and a later run looks again (S2).
            log.info("not read %r: %s", info.path, exc)  # the run's failures list says it once
            rec.state = "failed"
            rec.reason = str(exc)
            work.unsafe = True
        except (ExtractionError, OSError) as exc:
            rec.state = "failed"
            rec.reason = _reason(exc)
            # Vanished: the safe open found nothing on the path (lstat here could follow a
            # folder swapped for a symlink since, so it is not asked again).
            work.vanished = isinstance(exc, Vanished) or _vanished(exc, info.path)
        except NameOnly as exc:
            rec.state = "name_only"
            rec.reason = str(exc)
        except Exception as exc:
            log.exception("unexpected error while indexing %r", info.path)
            rec.state = "failed"
            rec.reason = f"internal error: {type(exc).__name__}: {exc}"
        return work

    def _extract_into(self, work: _Work, rec: FileRecord) -> None:
        info = work.info
        if info.kind == "other" or info.size == 0:
            # Nothing is read, but the stat stored must be the inside file's too (S2).
            st = stat_under_root(info.root, info.path)
            if not stat.S_ISREG(st.st_mode):
                raise ExtractionError("not a regular file (pipe, socket or device), not read")
            rec.size, rec.mtime_ns = st.st_size, st.st_mtime_ns
            rec.state = "name_only"
            rec.reason = "" if info.kind == "other" else "empty file"
            rec.content_hash = ""
            return
        # One open, reached from the watched folder without following any symlink (S2):
        # the stat, the hash and the extracted content all describe the file actually read.
        with open_under_root(info.root, info.path) as source:
            rec.size, rec.mtime_ns = source.st.st_size, source.st.st_mtime_ns
            rec.content_hash = work.content_hash = _hash_file(source)
            self._extract_from(work, rec, source)

    def _extract_from(self, work: _Work, rec: FileRecord, source: OpenFile) -> None:
        info = work.info
        old = work.old
        model_ok = (
            (info.kind == "text" and old is not None and old.text_model == rec.text_model)
            or (info.kind == "image" and old is not None and old.image_model == rec.image_model and rec.image_model)
        )
        if old is not None and old.content_hash == rec.content_hash and old.state in ("indexed", "name_only", "failed") and model_ok:
            # Touched but identical: keep everything, refresh the stat.
            # Its committed rows stay valid (same file_hash): only the record changes.
            work.record = dataclasses.replace(old, size=rec.size, mtime_ns=rec.mtime_ns, root=info.root, available=True)
            work.touched_only = True
            return
        if not work.twin_unusable and (info.kind == "text" or (info.kind == "image" and self.image_embedder is not None)):
            twin = self._twin(rec)
            if twin is not None:
                # Its vectors are read later, with the other copies' of the batch.
                work.twin = twin
                work.record = dataclasses.replace(
                    twin, fid=rec.fid, path=rec.path, root=rec.root, size=rec.size,
                    mtime_ns=rec.mtime_ns, indexed_at=time.time(), available=True, state="indexed",
                )
                return
        if info.kind == "text":
            self._extract_text(work, rec, source)
        elif info.kind == "image":
            self._extract_image(work, rec, source)

    def _copy_from_twins(self, works: list[_Work], batch: WriteBatch) -> list[_Work]:
        """Put each work's record with its twin's vectors into ``batch``, reading them in one
        query per table for all the works, not one each (which grew with the table).
        Returns the works whose twin's vectors are gone or damaged after all."""
        texts: dict[str, dict[str, str]] = collections.defaultdict(dict)  # text model -> fid -> hash
        images: dict[str, str] = {}
        for w in works:
            assert w.twin is not None
            if w.twin.kind == "text":
                texts[w.twin.text_model][w.twin.fid] = w.twin.content_hash
            else:
                images[w.twin.fid] = w.twin.content_hash
        rows = {model: self.store.chunk_rows_of(hashes, model_id=model) for model, hashes in texts.items()}
        image_rows = self.store.image_rows_of(images) if images else {}
        unusable = []
        for w in works:
            assert w.twin is not None
            if w.twin.kind == "text":
                w.copied_rows = rows[w.twin.text_model].get(w.twin.fid)
            else:
                w.copied_image = image_rows.get(w.twin.fid)
            if w.copied_rows or w.copied_image is not None:
                _finish_copied(w, batch)
            else:
                unusable.append(w)
        return unusable

    def _twin(self, rec: FileRecord) -> FileRecord | None:
        """An indexed file with the same bytes and model: its vectors can be copied."""
        for other in self.store.by_hash(rec.content_hash):
            if other.kind != rec.kind:
                continue
            if rec.kind == "text" and other.text_model == rec.text_model:
                return other
            if rec.kind == "image" and other.image_model == rec.image_model:
                return other
        return None

    def _extract_text(self, work: _Work, rec: FileRecord, source: OpenFile) -> None:
        from indexer.ingest.chunk import chunk_text, embedding_input
        from indexer.ingest.extract import extract_text

        extraction = extract_text(work.info.path, self.settings, source)
        rec.title = extraction.title[:500]
        rec.truncated = extraction.truncated
        if extraction.truncated:
            rec.reason = f"text truncated to {self.settings.max_text_mb:g} MB"
        from indexer.ingest.extract import has_markup_headings

        # `# comment` lines in code are not headings.
        chunks = chunk_text(extraction.text, extraction.title, headings=has_markup_headings(work.info.path))
        if not chunks:
            raise NameOnly("no text to index")
        if chunks[-1].end < len(extraction.text.rstrip()):
            # The per-file chunk cap cut a megafile: say so rather than hide it.
            rec.truncated = True
            rec.reason = f"only the first {len(chunks)} passages are indexed"
        work.chunks = chunks
        work.inputs = [embedding_input(c, extraction.title) for c in chunks]
        model = self.text_embedder.model_id
        work.chunk_hashes = [hashlib.blake2b(f"{model}\0{t}".encode("utf-8", "surrogatepass"), digest_size=16).hexdigest() for t in work.inputs]
        old = work.old
        work.reuse.update(self._old_chunk_vectors(old, model))
        rec.state = "indexed"
        rec.n_chunks = len(chunks)

    def _old_chunk_vectors(self, old: FileRecord | None, model: str) -> dict[str, np.ndarray]:
        """The vectors of the passages ``old`` (the file's previous record) has stored, by
        chunk hash: passages whose text is unchanged reuse them."""
        if old is None or old.state != "indexed" or old.text_model != model:
            return {}
        return {row.chunk_hash: row.vector for row in self.store.chunk_rows(old.fid, old.content_hash, model_id=model)}

    def _extract_image(self, work: _Work, rec: FileRecord, source: OpenFile) -> None:
        from indexer.ingest.extract import extract_image

        if self.image_embedder is None:
            # Without CLIP weights, images wait; everything else keeps working.
            rec.state = "pending"
            rec.reason = self.image_unavailable_reason or "image model unavailable"
            rec.image_model = ""
            return
        extraction = extract_image(work.info.path, self.settings, source)
        thumb = f"{rec.content_hash}.png"
        self._save_thumbnail(work, thumb, extraction.thumbnail_png)
        work.thumb = thumb
        work.width, work.height = extraction.width, extraction.height
        # Resize/crop/normalise here, on the pool, not serially before each forward pass.
        work.image = self.image_embedder.preprocess(extraction.image)
        rec.state = "indexed"

    def _save_thumbnail(self, work: _Work, name: str, png: bytes) -> None:
        _write_private(self.paths.thumbnails / name, png)

    def settle(self, work: _Work) -> None:
        """This process's part of a file a `WorkSource` read elsewhere: a file with the same
        bytes already indexed gives its vectors (as `_extract_from` does for a file read
        here; its fresh ones are dropped), else the thumbnail read there is written here."""
        rec = work.record
        if rec is None or rec.state != "indexed" or work.touched_only or work.unsafe or work.vanished:
            return
        if rec.kind == "text" or (rec.kind == "image" and self.image_embedder is not None):
            twin = self._twin(rec)
            if twin is not None:
                work.twin = twin
                work.record = dataclasses.replace(
                    twin, fid=rec.fid, path=rec.path, root=rec.root, size=rec.size,
                    mtime_ns=rec.mtime_ns, indexed_at=time.time(), available=True, state="indexed",
                )
                work.chunks, work.inputs, work.chunk_hashes, work.reuse = [], [], [], {}
                work.image, work.image_vector, work.thumb_png = None, None, b""
                return
        if work.thumb_png:
            try:
                _write_private(self.paths.thumbnails / work.thumb, work.thumb_png)
            except OSError as exc:
                rec.state, rec.reason = "failed", _reason(exc)
                work.image, work.image_vector = None, None
            work.thumb_png = b""

    # ----------------------------------------------------------------- embed
    def _embed_text(self, works: list[_Work], cancel: threading.Event | None = None) -> None:
        todo: list[tuple[str, str]] = []  # (chunk hash, embedding input)
        seen: set[str] = set()
        for w in works:
            for h, t in zip(w.chunk_hashes, w.inputs):
                if h not in w.reuse and h not in seen:
                    seen.add(h)
                    todo.append((h, t))
        if not todo:
            return
        fresh: dict[str, np.ndarray] = {}
        # Slices keep a stop request (quit, SIGTERM) answered within one slice.
        for i in range(0, len(todo), TEXT_BATCH):
            if cancel is not None and cancel.is_set():
                raise _Cancelled
            if self._run is not None:
                self._emit(self._run.event("embedding", message=f"passages {i:,}–{min(i + TEXT_BATCH, len(todo)):,} of {len(todo):,}"))
            part = todo[i : i + TEXT_BATCH]
            vectors = self.text_embedder.embed_documents([t for _h, t in part])
            self.model_calls += 1
            fresh.update({h: v for (h, _t), v in zip(part, vectors)})
        for w in works:
            for h in w.chunk_hashes:
                if h not in w.reuse:
                    w.reuse[h] = fresh[h]

    def _embed_images(self, works: list[_Work], batch: WriteBatch) -> None:
        assert self.image_embedder is not None  # images are queued only with an image model
        done = [w for w in works if w.image_vector is not None]  # embedded elsewhere (a WorkSource)
        works = [w for w in works if w.image_vector is None]
        images = [w.image for w in works]  # preprocessed on the pool (_extract_image)
        try:
            vectors = list(self.image_embedder.embed_tensors(images)) if works else []
            if works:
                self.model_calls += 1
        except Exception as exc:
            log.exception("image embedding failed")
            for w in works:
                assert w.record is not None
                w.record.state = "failed"
                w.record.reason = f"image model failed: {exc}"
                batch.files.append(w.record)
            works, vectors = [], []
        for w in done:
            works.append(w)
            vectors.append(w.image_vector)
            w.image_vector = None
        for w, vec in zip(works, vectors):
            assert w.record is not None
            batch.files.append(w.record)
            batch.images[w.record.fid] = ImageRow(width=w.width, height=w.height, thumb=w.thumb, vector=vec)
            w.image = None  # free the pixels early

    # ----------------------------------------------------------------- write
    def _write(self, batch: WriteBatch, cancel: threading.Event | None = None) -> None:
        if not batch:
            return
        delay = 2.0
        while True:
            try:
                if batch.files and self._run is not None:
                    self._emit(self._run.event("writing", message=f"saving {plural(len(batch.files), 'file')}"))
                self.store.write(batch)
                self._commits_since_optimize += 1
                self._index_changed = True  # told with the next event: the window re-runs its query
                return
            except DiskFull as exc:
                if not self.wait_when_disk_full:
                    # The CLI stops here: "paused until space is freed" would not be true.
                    raise DiskFull("the disk holding the index is full; what was saved is kept: free some space and run again") from exc
                # Pause, keep what is committed, retry once space is back.
                self._emit(Progress("paused", message=str(exc)))
                log.warning("%s", exc)
                if cancel is not None and cancel.wait(delay):
                    raise
                if cancel is None:
                    time.sleep(delay)
                delay = min(delay * 2, 60.0)

    def _wait_if_paused(self, cancel: threading.Event | None) -> None:
        while self.paused.is_set() and not (cancel is not None and cancel.is_set()):
            self._emit(Progress("paused", message="Indexing paused"))
            time.sleep(0.2)

    def _repair_store(self, *, deep: bool = False) -> list[str]:
        """Before a run: queue files whose stored vectors are damaged (noted by searches,
        or found by the deep check when ``deep``) and rebuild an unusable keyword or
        vector index. Returns the queued files' paths (issue 11, items 6 and 13)."""
        from indexer.store.health import repair_live

        report, resync = repair_live(self.store, self.paths, deep=deep, open_indexes=deep)
        if deep:
            self._store_verified = True
        if not report.ok:
            self._emit(Progress("optimizing", message=report.message))
        return resync

    def _after_run(self) -> None:
        """Store hygiene after a full reconcile: models, orphans, compaction."""
        files = self.store.files().values()
        text_id = self.text_embedder.model_id
        if all(r.text_model == text_id for r in files if r.kind == "text" and r.state == "indexed"):
            image_id = self.image_embedder.model_id if self.image_embedder is not None else None
            if image_id is None or all(r.image_model == image_id for r in files if r.kind == "image" and r.state == "indexed"):
                if image_id is not None or not any(r.kind == "image" and r.state == "indexed" for r in files):
                    self.store.drop_other_model_tables()
        self.store.remove_orphans()
        self.optimize()
        self._gc_thumbnails()

    def _purge_removed(self, roots: Sequence[str], now: float) -> None:
        """Delete retired records no later file can reuse: those of ``roots`` (reconciled
        to the end) and any retired more than `REMOVED_KEPT_S` before ``now``."""
        try:
            n = self.store.purge_removed(roots=roots, retired_before=now - REMOVED_KEPT_S)
        except DiskFull as exc:  # they stay hidden; the next run purges them
            log.warning("removed entries kept until space is freed: %s", exc)
            return
        if n:
            log.info("purged %d removed entries", n)

    def _gc_thumbnails(self) -> None:
        records = [*self.store.files().values(), *self.store.removed().values()]
        keep = {f"{r.content_hash}.png" for r in records if r.kind == "image"}
        try:
            for entry in os.scandir(self.paths.thumbnails):
                if entry.name.endswith(".png") and entry.name not in keep:
                    try:
                        os.unlink(entry.path)
                    except OSError:
                        pass
        except FileNotFoundError:
            pass

    def _emit(self, event: Progress) -> None:
        if self._index_changed:
            self._index_changed = False
            event = dataclasses.replace(event, index_changed=True)
        if self._progress_cb is None:
            return
        try:
            self._progress_cb(event)
        except Exception:
            log.exception("progress callback failed")


# ------------------------------------------------------------------ helpers
def _finish_text(work: _Work, batch: WriteBatch, model_id: str) -> None:
    rec = work.record
    assert rec is not None
    rows = [
        ChunkRow(ord=i, text=c.text, start=c.start, end=c.end, chunk_hash=h, vector=work.reuse[h])
        for i, (c, h) in enumerate(zip(work.chunks, work.chunk_hashes))
    ]
    rec.text_model = model_id
    batch.files.append(rec)
    batch.chunks[rec.fid] = rows
    work.reuse = {}


def _finish_copied(work: _Work, batch: WriteBatch) -> None:
    rec = work.record
    assert rec is not None
    batch.files.append(rec)
    if work.copied_rows:
        batch.chunks[rec.fid] = work.copied_rows
    if work.copied_image is not None:
        batch.images[rec.fid] = work.copied_image


def _hash_file(source: OpenFile) -> str:
    """Content hash of the opened file's bytes, from its start (bounded reads)."""
    h = hashlib.blake2b(digest_size=16)
    source.rewind()
    while True:
        try:
            block = os.read(source.fd, HASH_BLOCK)
        except BlockingIOError:
            break
        if not block:
            break
        h.update(block)
    return h.hexdigest()


def _write_private(path: Path, data: bytes) -> None:
    # One temporary name per thread: two copies of one picture, read side by side on the
    # extract pool, write the same thumbnail; a shared name made one rename fail and that
    # copy was taken for vanished (left out of the index, uncounted).
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "the file vanished while it was being read"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, OSError):
        return f"cannot read: {exc.strerror or exc}"
    return str(exc) or type(exc).__name__


def _vanished(exc: BaseException, path: str) -> bool:
    """Whether a read failed because the file is no longer there (not a failure: it is gone)."""
    if isinstance(exc, (FileNotFoundError, NotADirectoryError)):
        return True
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False
    return False


def _covered(path: str, unreadable: dict[str, str]) -> bool:
    """Whether ``path`` is, or is below, a path the scan could not read (so its fate is unknown)."""
    if not unreadable:
        return False
    p = path
    while True:
        if p in unreadable:
            return True
        parent = os.path.dirname(p)
        if parent == p:
            return False
        p = parent


def _folder_problem(path: str, root: str, reason: str, fid: str = "") -> FileRecord:
    """The record of a folder that could not be read: listed with the problems, never a result."""
    return FileRecord(
        fid=fid or file_id(path), path=path, root=root, kind=FOLDER_KIND, size=0, mtime_ns=0,
        state="failed", reason=reason, indexed_at=time.time(),
    )


def _via_symlinked_folder(path: str, root: str) -> bool:
    """Whether a folder between ``root`` and ``path`` is a symlink (it may lead outside: fail closed)."""
    parent = os.path.dirname(path)
    while parent != root and len(parent) > len(root):
        try:
            if not stat.S_ISDIR(os.lstat(parent).st_mode):
                return True
        except OSError:
            return True
        parent = os.path.dirname(parent)
    return False


def _under(files: dict[str, FileRecord], folder: str) -> list[str]:
    prefix = folder.rstrip(os.sep) + os.sep
    return [fid for fid, r in files.items() if r.path.startswith(prefix)]


def _is_excluded(exclusions: Any, path: str, is_dir: bool) -> bool:
    try:
        return bool(exclusions.is_excluded(path, is_dir))
    except Exception:
        log.exception("exclusion check failed for %r", path)
        return False


def _summary_line(s: IndexSummary) -> str:
    """What a run changed, in words ("12 new, 1 removed"; "no changes in 498 files")."""
    changes = [
        f"{n:,} {label}"
        for n, label in ((s.new, "new"), (s.updated, "updated"), (s.removed, "removed"), (s.failed, "failed"))
        if n
    ]
    if not changes:
        return f"no changes in {plural(s.unchanged, 'file')}" if s.unchanged else "nothing to index"
    return ", ".join(changes)


def followed_line(followed: Sequence[tuple[str, str]]) -> str:
    """The line a person reads when watched folders were followed to where they went."""
    return "; ".join(
        f"{display_path(old)} was moved to {display_path(new)}: its index followed, nothing was read again"
        for old, new in followed
    )


def release_memory() -> None:
    """Hand the heap that a run freed back to the OS (glibc keeps it otherwise).

    A reconcile decodes images, tokenises and builds Arrow batches by the hundred MB;
    glibc keeps freed arenas mapped, so the idle app would keep its peak. malloc_trim
    returns them (docs/PERFORMANCE.md section 4). ``LODESTAR_MALLOC_TRIM=0`` turns it off.
    """
    import gc

    gc.collect()
    if os.environ.get("LODESTAR_MALLOC_TRIM", "1") == "0":
        return
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc (macOS, Windows, musl): their allocators return memory themselves
