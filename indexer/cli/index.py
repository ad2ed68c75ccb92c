"""`lodestar index PATH...`: index folders now, then print a summary."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from indexer.cli._common import ProgressPrinter, add_clip_flag, print_json, runtime_from_args, say
from indexer.errors import UserError
from indexer.paths import display_path, root_of


def register(sub: Any, common: Any) -> None:
    p = sub.add_parser("index", parents=[common], help="index folders now and print a summary")
    p.add_argument("paths", nargs="+", metavar="PATH", help="folders (or files) to index")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    add_clip_flag(p)
    p.set_defaults(func=run)


def run(args: Any) -> int:
    from indexer.ingest.scan import check_indexable
    from indexer.library.settings import default_data_dir, normalise_folder
    from indexer.library.writer_lock import WriterLock

    data_dir = args.data_dir or default_data_dir()
    targets = []
    for raw in args.paths:
        path = normalise_folder(raw)
        if not os.path.exists(path):
            raise UserError(f"no such file or folder: {raw}")
        check_indexable(path, data_dir)  # Lodestar's own data is never indexed (FolderRefused)
        targets.append(path)

    rt = runtime_from_args(args)
    lock = WriterLock(rt.paths)
    lock.acquire(wait=False)  # WriterBusy says who is writing
    try:
        # Indexed folders become known roots (the watcher and status use them).
        roots = [t for t in targets if os.path.isdir(t)]
        files = [t for t in targets if not os.path.isdir(t)]
        service = rt.service(None if args.json else ProgressPrinter())
        for root in roots:
            if root_of(root, rt.settings.folders) is None:
                rt.settings.folders.append(root)
        from indexer.library.settings import save_settings

        save_settings(rt.paths, rt.settings)
        summary = service.index_roots(roots)
        if files:
            more = service.index_files(files)
            for f in dataclasses.fields(more):
                if f.name in ("elapsed_s", "model_calls"):
                    continue
                cur = getattr(summary, f.name)
                setattr(summary, f.name, cur + getattr(more, f.name))
        ok, why = rt.image_ready(load=False)
    finally:
        lock.release()
        rt.close()
    data = dataclasses.asdict(summary)
    data["failures"] = [{"path": p, "reason": r} for p, r in summary.failures]
    if not ok:
        data["image_model"] = why
    if args.json:
        print_json(data)
    else:
        say(
            f"Indexed in {summary.elapsed_s:.1f}s: {summary.new} new, {summary.updated} updated, "
            f"{summary.unchanged} unchanged, {summary.removed} removed, {summary.failed} failed"
            + (f", {summary.moved} moved/copied" if summary.moved else "")
            + (f", {summary.pending} images waiting for the image model" if summary.pending else "")
        )
        for path, reason in summary.failures[:20]:
            say(f"  failed: {display_path(path)}: {reason}")
        if len(summary.failures) > 20:
            say(f"  … and {len(summary.failures) - 20} more (see `lodestar status`)")
        if summary.pending:
            say(f"Image search is off: {why}")
    return 0
