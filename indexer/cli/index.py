"""`lodestar index PATH...`: index folders now, then print a summary."""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Any

from indexer.cli._common import ProgressPrinter, add_clip_flag, print_json, runtime_from_args, say
from indexer.errors import UserError
from indexer.paths import display_path, root_of


def register(sub: Any, common: Any) -> None:
    p = sub.add_parser("index", parents=[common], help="index folders now and print a summary")
    p.add_argument("paths", nargs="+", metavar="PATH", help="folders (or files) to index")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument(
        "--ray", metavar="ADDRESS",
        help="read and embed on a Ray cluster (ray://host:10001, host:6379), or 'auto' for a local Ray "
        "instance on this machine's CPUs; the files must be at the same paths on every worker "
        "(shared storage); needs pip install 'lodestar[cluster]' (docs/CLUSTER.md)",
    )
    p.add_argument("--ray-workers", type=int, metavar="N",
                   help="model workers on the cluster (default: one per GPU, or per node without GPUs)")
    add_clip_flag(p)
    p.set_defaults(func=run)


def run(args: Any) -> int:
    from indexer.ingest.scan import check_indexable
    from indexer.library.settings import default_data_dir, normalise_folder
    from indexer.library.writer_lock import WriterLock

    data_dir = args.data_dir or default_data_dir()
    ray_address = getattr(args, "ray", None)
    if ray_address is not None:
        from indexer.cluster.ray_index import import_ray

        import_ray()  # without Ray: one line saying how to get it, before anything is opened
        if args.ray_workers is not None and args.ray_workers < 1:
            raise UserError("--ray-workers must be at least 1")
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
    cluster = None
    try:
        # Indexed folders become known roots (the watcher and status use them).
        roots = [t for t in targets if os.path.isdir(t)]
        files = [t for t in targets if not os.path.isdir(t)]
        # The image model is downloaded on first use: only when this run meets a picture.
        service = rt.service(None if args.json else ProgressPrinter(), images_expected=_meets_images(rt, roots, files))
        cluster = _start_cluster(rt, service, ray_address, args) if ray_address is not None else None
        service.follow_moved_roots()  # folders renamed since: the index follows (said on stderr), no model call
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
        if cluster is not None:
            cluster.close()
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
    _publish_shared(rt.paths.data_dir, quiet=bool(args.json))
    return 0


def _publish_shared(data_dir: Any, *, quiet: bool) -> None:
    """A data folder that is part of a shared library publishes what this run indexed (docs/SHARED.md)."""
    import sys

    from indexer.shared.config import load_config

    if load_config(data_dir) is None:
        return
    from indexer.shared.library import sync

    report = sync(data_dir)
    if quiet or report.busy:
        return
    if report.problem:
        say(f"Not published to the shared library yet: {report.problem} (retried by `lodestar library sync`, "
            "`lodestar watch` or the window)", file=sys.stderr)
    else:
        from indexer.wording import plural

        say(f"Shared library: {plural(report.files, 'file')} of this computer published.")


def _start_cluster(rt: Any, service: Any, address: str, args: Any) -> Any:
    """Connect to Ray, place the model actors (the library's own models, built there from
    its settings) and make ``service`` read and embed on them (indexer/cluster)."""
    import functools

    from indexer.cluster.ray_index import RayCluster
    from models.clip import ClipEmbedder
    from models.text import TextEmbedder

    s = rt.settings
    text = functools.partial(TextEmbedder, s.text_model, device=s.device, backend=s.text_backend)
    image = service.image_embedder
    clip = None
    if image is not None:
        clip = functools.partial(
            ClipEmbedder, model_name=s.clip_model, pretrained=s.clip_pretrained, checkpoint=rt.clip_checkpoint,
            allow_download=s.allow_download, device=s.device,
        )
    cluster = RayCluster(address, text, clip, workers=args.ray_workers)
    try:
        if not args.json:
            say("Ray: connecting and loading the models on the workers…", file=sys.stderr)
        placement = cluster.start(
            (service.text_embedder.model_id, service.text_embedder.dim),
            (image.model_id, image.dim) if image is not None else None,
        )
    except BaseException:
        cluster.close()
        raise
    if not args.json:
        say(f"Ray: {placement.line()}", file=sys.stderr)
    service.source = cluster.source()
    return cluster


def _meets_images(rt: Any, roots: list[str], files: list[str]) -> bool:
    """Whether this run will meet a picture: one named on the command line, one waiting in
    the index for the image model, or one under a folder (a walk that stops at the first)."""
    from indexer.ingest.extract import kind_for_path
    from indexer.ingest.scan import scan_root

    if any(kind_for_path(f) == "image" for f in files):
        return True
    if any(r.kind == "image" and r.state == "pending" for r in rt.store.files().values()):
        return True
    return any(info.kind == "image" for root in roots for info in scan_root(root, rt.settings, rt.paths.data_dir))
