"""Bulk indexing on Ray (issue 19) vs the local pipeline: same files, same run.

One corpus (generated once under the scratch folder): markdown notes (``--text-files``
× ~6 KB) and photo-like JPEGs (``--images`` at ``--image-size``). Models: the bundled
all-MiniLM-L6-v2 and a random-weight open_clip ViT-B-32 (same compute as the real
weights; nothing to download), on ``--device``. Each repeat indexes the corpus into a
fresh data directory:

- ``local``: ``IndexService.index_roots`` in this process (its extraction pool and models);
- ``ray N``: the same service with a `RaySource` on a local Ray instance (``--cpus``
  CPUs, GPUs found by Ray) and N workers (one text and one CLIP actor each), for each N
  in ``--workers``. Actor start-up (model loads) is timed apart from indexing.

Prints a markdown table (best of ``--repeats``: files/s, passages/s, images/s, ratio to
local) with ``uptime`` before and after; ``--out`` writes every figure as JSON. Per-file
figures for docs/CLUSTER.md's cost model: ``s_per_text_file`` and ``s_per_image``
(wall time of the mode divided by the files it indexed; the run is mixed, so they are
upper bounds for each kind).

    .venv/bin/python bench/bench_ray.py --out bench/out/ray.json                     # this machine
    .venv/bin/python bench/bench_ray.py --text-files 20 --images 4 --repeats 1       # smoke
    python bench/bench_ray.py --device cuda --cpus 16 --workers 1 2 --text-files 4000 \
        --images 2000 --out bench/out/ray-gpu.json                                   # a GPU machine
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, SCRATCH, machine, make_text_corpus, table, write_json


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "load average: {:.2f}, {:.2f}, {:.2f}".format(*os.getloadavg())


def corpus(n_text: int, n_images: int, size: tuple[int, int]) -> Path:
    from bench_image_index import make_photos

    root = SCRATCH / f"ray-corpus-{n_text}-{n_images}-{size[0]}x{size[1]}"
    make_text_corpus(root / "text", n_text)
    if n_images:
        make_photos(root / "photos", n_images, size)
    return root


def service(data: Path, root: Path, text: Any, clip: Any) -> Any:
    from indexer.ingest.pipeline import IndexService
    from indexer.library.runtime import extract_threads
    from indexer.library.settings import Settings, open_paths
    from indexer.store.tables import Store

    paths = open_paths(data)
    store = Store(paths.store, text_model=(text.model_id, text.dim), image_model=(clip.model_id, clip.dim))
    settings = Settings(folders=[str(root)], allow_download=False)
    return IndexService(store, paths, settings, text, clip, threads=extract_threads(text, clip))


def run_mode(mode: str, workers: int, root: Path, text: Any, clip: Any, factories: tuple[Any, Any]) -> dict[str, Any]:
    from indexer.cluster.ray_index import RayCluster

    with tempfile.TemporaryDirectory(prefix="lodestar-bench-ray-") as tmp:
        svc = service(Path(tmp) / "data", root, text, clip)
        startup = 0.0
        cluster = None
        placement = ""
        try:
            if mode == "ray":
                t = time.perf_counter()
                cluster = RayCluster("auto", factories[0], factories[1], workers=workers)
                cluster.start((text.model_id, text.dim), (clip.model_id, clip.dim))
                startup = time.perf_counter() - t
                placement = cluster.placement.line() if cluster.placement else ""
                devices = cluster.devices()
                svc.source = cluster.source()
            else:
                devices = [str(text.device), str(clip.device)]
            t = time.perf_counter()
            summary = svc.index_roots([str(root)])
            elapsed = time.perf_counter() - t
        finally:
            if cluster is not None:
                cluster.close()
        counts = svc.store.counts()
        svc.store.close()
    by_kind = counts.get("by_kind", {})
    return {
        "mode": "local" if mode == "local" else f"ray {workers}", "workers": workers, "elapsed_s": elapsed,
        "startup_s": startup, "files": summary.new, "failed": summary.failed, "passages": counts["chunks"],
        "images": counts["images"], "text_files": by_kind.get("text", 0), "placement": placement, "devices": devices,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--text-files", type=int, default=300)
    ap.add_argument("--images", type=int, default=60)
    ap.add_argument("--image-size", default="1600x1200")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Ray worker counts to run")
    ap.add_argument("--cpus", type=int, default=0, help="CPUs of the local Ray instance (0: all of this machine's)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, auto: for the local models and the actors")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", help="write the figures here as JSON")
    args = ap.parse_args(argv)

    import ray
    from bench_image_index import random_clip_checkpoint

    from models.clip import ClipEmbedder
    from models.text import TextEmbedder

    load_before = uptime()
    print(f"load before: {load_before}")
    w, h = (int(x) for x in args.image_size.split("x"))
    t = time.perf_counter()
    root = corpus(args.text_files, args.images, (w, h))
    gen_s = time.perf_counter() - t
    ckpt = random_clip_checkpoint()  # ViT-B-32, random weights, saved once
    text_factory = functools.partial(TextEmbedder, device=args.device)
    clip_factory = functools.partial(ClipEmbedder, checkpoint=str(ckpt), allow_download=False, device=args.device)
    text, clip = text_factory(), clip_factory()
    text.load()
    clip.load()
    cpus = args.cpus or os.cpu_count() or 1
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}})
    modes = [("local", 0), *(("ray", n) for n in args.workers)]
    runs: list[dict[str, Any]] = []
    try:
        for rep in range(args.repeats):
            order = modes if rep % 2 == 0 else list(reversed(modes))  # neither side always goes first
            for mode, n in order:
                r = run_mode(mode, n, root, text, clip, (text_factory, clip_factory))
                r["repeat"] = rep
                runs.append(r)
                print(f"  {r['mode']:<6} {r['elapsed_s']:.1f}s ({r['files']} files, startup {r['startup_s']:.1f}s)", flush=True)
    finally:
        ray.shutdown()
    load_after = uptime()

    best: dict[str, dict[str, Any]] = {}
    for r in runs:
        if r["mode"] not in best or r["elapsed_s"] < best[r["mode"]]["elapsed_s"]:
            best[r["mode"]] = r
    local = best["local"]
    rows = []
    for name, r in best.items():
        s = r["elapsed_s"]
        rows.append([name, r["files"], r["passages"], r["images"], s, r["files"] / s, r["passages"] / s,
                     r["images"] / s, local["elapsed_s"] / s, r["startup_s"], r["failed"]])
        r["files_per_s"], r["passages_per_s"] = r["files"] / s, r["passages"] / s
        r["s_per_text_file"] = s / max(1, r["text_files"])
        r["s_per_image"] = s / max(1, r["images"])
    m = machine()
    print(f"\nmachine: {m['cpu']} nproc={m['nproc']} ram={m['ram_gb']}GB cuda={m.get('cuda')} device={args.device} "
          f"ray cpus={cpus}")
    print(table(
        f"Bulk indexing, local pipeline vs Ray ({args.text_files} notes + {args.images} photos {args.image_size}; "
        f"MiniLM-L6 + ViT-B-32 random weights; best of {args.repeats})",
        ["mode", "files", "passages", "images", "s", "files/s", "passages/s", "images/s", "× local", "actor start s", "failed"],
        rows,
    ))
    print(f"\nload after: {load_after}")
    write_json(args.out, {
        "benchmark": "ray_index", "machine": m, "device": args.device, "ray_cpus": cpus, "text_files": args.text_files,
        "images": args.images, "image_size": args.image_size, "generate_s": gen_s, "repeats": args.repeats,
        "load_before": load_before, "load_after": load_after, "runs": runs,
        "best": {k: {kk: vv for kk, vv in v.items()} for k, v in best.items()},
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
