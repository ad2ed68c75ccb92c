"""`lodestar watch [--once]`: keep the index in step with the watched folders.

Becomes the single writer (waits, saying so, if another process is), then watches
through the library session (`indexer.library.session`, the window's too) until
SIGINT/SIGTERM. Folder changes made with `lodestar folders` or the window are
picked up from settings.json every few seconds.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from typing import Any

from indexer.cli._common import say
from indexer.library.settings import AppPaths, ConfigError, normalise_folder, open_paths
from indexer.types import FolderStatus, IndexSummary
from indexer.wording import plural

log = logging.getLogger(__name__)

SETTINGS_POLL_S = 3.0


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "watch",
        parents=[common],
        help="keep the index up to date while files change (runs until Ctrl+C)",
    )
    p.add_argument("--once", action="store_true", help="check every folder once, then exit")
    p.set_defaults(func=run)


def _install_signal_handlers(stop: threading.Event) -> dict[int, Any]:
    previous: dict[int, Any] = {}

    def handler(signum: int, _frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt  # second Ctrl+C: stop waiting for the batch
        say("lodestar: stopping after the current batch…", file=sys.stderr)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):  # not the main thread (tests) or unsupported
            pass
    return previous


def _restore_signal_handlers(previous: dict[int, Any]) -> None:
    for sig, old in previous.items():
        try:
            signal.signal(sig, old)
        except (ValueError, OSError):
            pass


def _acquire(lock: Any, stop: threading.Event) -> bool:
    """Become the writer; if busy, say who is and wait. False if stopped while waiting."""
    from indexer.errors import WriterBusy

    try:
        lock.acquire(then="wait until it exits")
        return True
    except WriterBusy as exc:
        say(f"lodestar: {exc} (Ctrl+C to give up)", file=sys.stderr)
    while not stop.is_set():
        try:
            lock.acquire(wait=True, timeout=1.0)
            return True
        except WriterBusy:
            continue
    return False


def run(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    """``stop``: set by SIGINT/SIGTERM (or by a caller embedding the watcher) to finish."""
    from indexer.library.writer_lock import WriterLock

    paths = open_paths(args.data_dir)
    stop = stop or threading.Event()
    previous = _install_signal_handlers(stop)
    lock = WriterLock(paths, command="lodestar watch")
    try:
        if not _acquire(lock, stop):
            return 0
        try:
            return _watch(args, paths, lock, stop)
        finally:
            lock.release()  # the session gives it up too, unless a batch would not stop: we exit now
    finally:
        _restore_signal_handlers(previous)


def _watch(args: argparse.Namespace, paths: AppPaths, lock: Any, stop: threading.Event) -> int:
    """Watch as the writer (``lock`` held) through the library session, as the window does."""
    from indexer.library.session import open_session

    verbose = bool(getattr(args, "verbose", 0))
    modes: dict[str, str] = {}

    def on_status(statuses: list[FolderStatus]) -> None:
        _say_mode_changes(modes, statuses)

    def on_batch(batch: list[str], s: IndexSummary) -> None:
        say(
            f"{time.strftime('%H:%M:%S')} {len(batch)} changed paths: {s.new} new, {s.updated} updated, "
            f"{s.moved} moved, {s.removed} removed, {s.failed} failed"
        )  # say flushes

    session = open_session(paths.data_dir, command="lodestar watch", on_status=on_status,
                           on_batch=on_batch if verbose else None)
    try:
        settings = session.settings
        if not settings.folders:
            say("No watched folders yet; add one with `lodestar folders add PATH`.")
            if args.once:
                return 0
        refused = session.refused_folders()
        for why in refused:
            # The watcher never arms these (it shows them as unavailable); say so once here.
            say(f"lodestar: not watching: {why}; remove it with `lodestar folders remove PATH`", file=sys.stderr)
        if refused and len(refused) == len(settings.folders):
            return 2
        say("Loading models…")
        session.become_writer(lock)
        if args.once:
            while not stop.is_set() and not session.wait_idle(1.0):
                pass
            _report(session.folder_status())
            return 0
        say(f"Watching {plural(len(settings.folders), 'folder')}; Ctrl+C to stop.")
        while not stop.wait(SETTINGS_POLL_S):
            try:
                session.follow_settings_file()
            except (OSError, ValueError, ConfigError) as exc:  # unreadable now: try next time
                log.warning("cannot re-read settings: %s", exc)
    finally:
        if not session.close(timeout=30):
            log.warning("the current batch did not finish within 30 s; abandoning it")
    say("Stopped watching.")
    return 0


def _say_mode_changes(modes: dict[str, str], statuses: list[FolderStatus]) -> None:
    """One line per folder whose mode changed since the last call (``modes`` remembers)."""
    for st in statuses:
        if modes.get(st.path) != st.mode:
            modes[st.path] = st.mode
            note = f" — {st.message}" if st.message else ""
            say(f"{st.mode:<11} {st.path}{note}")


def _report(statuses: list[FolderStatus]) -> None:
    for st in statuses:
        when = time.strftime("%H:%M:%S", time.localtime(st.last_reconcile)) if st.last_reconcile else "never"
        say(f"{st.mode:<11} {normalise_folder(st.path)} (checked {when})")

