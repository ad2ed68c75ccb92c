"""`lodestar folders add|remove|list`: the watched folders, stored in settings.json."""

from __future__ import annotations

import argparse
import logging
import os

from indexer.cli._common import print_json, say
from indexer.errors import UserError
from indexer.library.settings import AppPaths, load_settings, normalise_folder, open_paths, save_settings

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("folders", parents=[common], help="add, remove or list watched folders")
    sub = p.add_subparsers(dest="folders_command", metavar="ACTION")
    add = sub.add_parser("add", parents=[common], help="watch a folder (and everything inside it)")
    add.add_argument("path")
    rm = sub.add_parser("remove", parents=[common], help="stop watching a folder and drop its entries")
    rm.add_argument("path")
    ls = sub.add_parser("list", parents=[common], help="show watched folders and how each is watched")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "folders_command", None) or "list"
    paths = open_paths(args.data_dir)
    if action == "add":
        return add_folder(paths, args.path)
    if action == "remove":
        return remove_folder(paths, args.path, data_dir=args.data_dir)
    return list_folders(paths, as_json=getattr(args, "json", False))


def add_folder(paths: AppPaths, raw: str) -> int:
    from indexer.library.session import plan_folder_add

    settings = load_settings(paths)
    change = plan_folder_add(raw, settings.folders, paths.data_dir)  # the window's rule too
    if change.refused:
        raise UserError(change.refused)
    if change.covered_by:
        what = "already watched" if change.path == change.covered_by else f"already watched as part of {change.covered_by}"
        say(f"{change.path} is {what}; nothing to do.")
        return 0
    current = [normalise_folder(f) for f in settings.folders]
    settings.folders = [f for f in current if f not in change.absorbed] + [change.path]
    save_settings(paths, settings)
    if change.absorbed:
        say(f"{change.path} now covers {', '.join(change.absorbed)}, which no longer need to be listed separately.")
    say(f"Watching {change.path}.")
    say(_next_step(paths))
    return 0


def _next_step(paths: AppPaths) -> str:
    from indexer.watch.watcher import read_watch_status

    if any(s.mode != "stopped" for s in read_watch_status(paths)):
        return "The running watcher picks this up within seconds."
    return "Run `lodestar index` to index it now, or `lodestar watch` to keep it up to date."


def remove_folder(paths: AppPaths, raw: str, data_dir: str | None = None) -> int:
    from indexer.errors import WriterBusy
    from indexer.library.writer_lock import WriterLock

    path = normalise_folder(raw)
    settings = load_settings(paths)
    current = [normalise_folder(f) for f in settings.folders]
    if path not in current:
        listed = ", ".join(current) or "none"
        raise UserError(f"{path} is not a watched folder (watched: {listed})")
    settings.folders = [f for f in current if f != path]
    save_settings(paths, settings)
    say(f"Stopped watching {path}.")
    lock = WriterLock(paths, command="lodestar folders remove")
    try:
        lock.acquire(then="leave the clean-up to it")
    except WriterBusy as exc:
        from indexer.watch.watcher import add_pending_removal

        # The writer's watcher drops noted folders within seconds (or when it next starts).
        add_pending_removal(paths, path)
        say(f"{exc}: it removes this folder's entries on its next check.")
        return 0
    try:
        from indexer.library.runtime import open_runtime

        rt = open_runtime(data_dir if data_dir is not None else paths.data_dir)
        try:
            removed = rt.service().remove_root(path)
        finally:
            rt.close()
    finally:
        lock.release()
    say(f"Removed {removed} entries from the index.")
    return 0


def list_folders(paths: AppPaths, as_json: bool = False) -> int:
    from indexer.watch.watcher import read_watch_status

    settings = load_settings(paths)
    status = {s.path: s for s in read_watch_status(paths)}
    rows = []
    for folder in settings.folders:
        st = status.get(normalise_folder(folder))
        rows.append(
            {
                "path": folder,
                "exists": os.path.isdir(folder),
                "mode": st.mode if st else "stopped",
                "last_reconcile": st.last_reconcile if st else None,
                "message": st.message if st else "",
            }
        )
    if as_json:
        print_json(rows)
        return 0
    if not rows:
        say("No watched folders. Add one with `lodestar folders add PATH`.")
        return 0
    for row in rows:
        flag = "" if row["exists"] else "  (missing)"
        line = f"{row['mode']:<12} {row['path']}{flag}"
        say(line)
        if row["message"]:
            say(f"{'':<12} {row['message']}")
    return 0

