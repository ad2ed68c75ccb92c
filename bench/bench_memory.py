"""Memory with both models loaded, and index size per 1,000 documents / images.

Part 1 (RSS, this process): after importing torch (baseline) → loading the text
model and a random-weight ViT-B-32 through the normal checkpoint path → indexing
a small folder (pyfaq sample + a few photos) → a few queries → gc. Reports the
idle RSS at the end and the peak (VmHWM). Target: idle ≤ 1.2 GB.

``--path light`` (the app's default on CPU once the ONNX exports are cached; they
are made first, in child processes, into ``--onnx-cache``) serves both models with
ONNX Runtime: the text model with tokenizers, CLIP with models/onnx_clip.py — no
torch, open_clip, transformers or sentence-transformers in the process. ``torch``
(LODESTAR_TEXT_LIGHT=0, LODESTAR_CLIP_LIGHT=0) is sentence-transformers + open_clip.
``both`` (default) runs each in a fresh child process, alternating ``--rounds``
times, and prints them side by side with the 1-min load average, plus the CLIP
text-query latency of each path (ViT-B-32, random weights, short queries).

Part 2 (disk): fills a store through the real pipeline with embedders that have
the real dimensions (384 text, 512 image) but random vectors (store size does
not depend on vector values), then reports bytes per 1,000 documents and per
1,000 images (LanceDB after optimize; thumbnails separately).

    .venv/bin/python bench/bench_memory.py --json bench/out/memory.json
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np
from _common import PYFAQ_DOCS, SCRATCH, machine, make_text_corpus, table, write_json

MB = 1024 * 1024


def status() -> dict[str, int]:
    """VmRSS, VmHWM (peak), RssAnon (private), RssFile (mapped libraries/files) in bytes."""
    out: dict[str, int] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key = line.split(":", 1)[0]
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[key] = int(line.split()[1]) * 1024
    return out


def rss() -> tuple[int, int]:
    """(current RSS, peak RSS) in bytes."""
    st = status()
    return st.get("VmRSS", 0), st.get("VmHWM", 0)


class RandomEmbedder:
    """Real dimensions, deterministic random unit vectors: fills a store fast."""

    def __init__(self, dim: int, model_id: str) -> None:
        self.dim = dim
        self.model_id = model_id

    def load(self) -> None:
        pass

    def available(self) -> tuple[bool, str]:
        return True, ""

    def embed_documents(self, items: Sequence[Any]) -> np.ndarray:
        seed = int.from_bytes(hashlib.blake2b(repr(len(items)).encode(), digest_size=4).digest(), "little")
        v = np.random.default_rng(seed).standard_normal((len(items), self.dim)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


def dir_bytes(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def make_small_photos(folder: Path, n: int) -> Path:
    from bench_image_index import make_photos

    return make_photos(folder, n, (1600, 1200))


def store_sizes(n_docs: int, n_images: int) -> dict[str, Any]:
    from indexer.ingest.pipeline import IndexService
    from indexer.library.settings import Settings, open_paths
    from indexer.store.tables import Store

    docs = make_text_corpus(SCRATCH / "textgen" / f"{n_docs}x6k", n_docs, 6)
    photos = make_small_photos(SCRATCH / f"photos-{n_images}-1600x1200", n_images)
    out: dict[str, Any] = {}
    for kind, root in (("documents", docs), ("images", photos)):
        text = RandomEmbedder(384, "sentence-transformers/all-MiniLM-L6-v2")
        image = RandomEmbedder(512, "open_clip/ViT-B-32/random")
        with tempfile.TemporaryDirectory(prefix="lodestar-bench-size-") as tmp:
            paths = open_paths(Path(tmp) / "data")
            store = Store(paths.store, text_model=(text.model_id, 384), image_model=(image.model_id, 512))
            empty = dir_bytes(paths.store)
            svc = IndexService(store, paths, Settings(folders=[str(root)]), text, image)
            s = svc.index_roots([str(root)])  # ends with optimize() + version cleanup
            counts = store.counts()
            n = s.new
            lance = dir_bytes(paths.store) - empty
            thumbs = dir_bytes(paths.thumbnails)
            store.close()
        out[kind] = {"files": n, "chunks": counts["chunks"], "store_bytes": lance, "thumb_bytes": thumbs,
                     "store_mb_per_1000": lance / n * 1000 / 1e6, "thumbs_mb_per_1000": thumbs / n * 1000 / 1e6}
    return out


def ensure_export(cache: Path) -> None:
    """The fp32 ONNX export of the bundled text model in ``cache``, made in a child
    process (a first start: sentence-transformers + background export) if missing."""
    from models.onnx_text import cached_fp32
    from models.text import bundled_model_dir

    if cached_fp32(bundled_model_dir(), cache) is not None:
        return
    code = ("from models.text import TextEmbedder; e = TextEmbedder(device='cpu'); e.load(); "
            "assert e.wait_export(600) and e.export_error is None, e.export_error")
    env = dict(os.environ, LODESTAR_ONNX_CACHE=str(cache), HF_HUB_OFFLINE="1")
    env.pop("LODESTAR_TEXT_LIGHT", None)
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=Path(__file__).resolve().parent.parent)


def ensure_clip_export(cache: Path) -> Path:
    """The random ViT-B-32 checkpoint and its CLIP ONNX export in ``cache`` (a first
    start in a child process: open_clip load + background export) if missing."""
    from bench_image_index import random_clip_checkpoint

    ckpt = random_clip_checkpoint()
    code = ("from models.clip import ClipEmbedder; import sys; "
            f"e = ClipEmbedder(checkpoint={str(ckpt)!r}, device='cpu'); e.load(); "
            "assert e.light or (e.wait_export(900) and e.export_error is None), e.export_error")
    env = dict(os.environ, LODESTAR_ONNX_CACHE=str(cache), HF_HUB_OFFLINE="1")
    env.pop("LODESTAR_CLIP_LIGHT", None)
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=Path(__file__).resolve().parent.parent)
    return ckpt


def compare(args: argparse.Namespace) -> int:
    """Both paths (light, torch), each in a fresh child process, alternating; side by side."""
    import json
    import statistics

    ensure_export(Path(args.onnx_cache))
    ensure_clip_export(Path(args.onnx_cache))
    runs: dict[str, list[dict[str, Any]]] = {"light": [], "torch": []}
    with tempfile.TemporaryDirectory(prefix="lodestar-bench-mem-cmp-") as tmp:
        for r in range(args.rounds):
            for kind in ("light", "torch"):
                out = Path(tmp) / f"{kind}-{r}.json"
                load = os.getloadavg()[0]
                subprocess.run([sys.executable, __file__, "--path", kind, "--onnx-cache", args.onnx_cache,
                                "--files", str(args.files), "--photos", str(args.photos),
                                "--size-docs", "0", "--size-images", "0", "--json", str(out)], check=True)
                res = json.loads(out.read_text())
                res["load_before"] = load
                runs[kind].append(res)
    med = statistics.median
    steps = [s["step"] for s in runs["light"][0]["steps"]]
    rows = []
    for i, name in enumerate(steps):
        row: list[Any] = [name]
        for kind in ("light", "torch"):
            st = [r["steps"][i] for r in runs[kind]]
            row += [med(s["rss_mb"] for s in st), med(s["anon_mb"] for s in st), med(s["file_mb"] for s in st)]
        rows.append(row)
    print(table(f"RSS MB by step (median of {args.rounds} child processes per path, alternating)",
                ["step", "light RSS", "light anon", "light file", "torch RSS", "torch anon", "torch file"], rows))
    loads = [r["load_before"] for k in runs for r in runs[k]]
    idle = {k: med(r["idle_mb"] for r in runs[k]) for k in runs}
    peak = {k: med(r["peak_mb"] for r in runs[k]) for k in runs}
    print(f"load average (1 min) before each child: {', '.join(f'{x:.1f}' for x in loads)}")
    print(table("Memory targets", ["models path", "idle RSS MB", "peak MB", "target"], [
        [k, idle[k], peak[k], "≤1229 MB " + ("met" if idle[k] <= 1.2 * 1024 else "MISSED")] for k in runs]))
    clip_ms = {k: med(r["clip_query_ms"] for r in runs[k]) for k in runs}
    print(table("CLIP text query (ViT-B-32, random weights; median of the children's medians)",
                ["models path", "ms / query"], [[k, clip_ms[k]] for k in runs]))
    print("modules: " + "; ".join(f"{k}: {runs[k][0]['modules']}" for k in runs))
    write_json(args.json_out, {"benchmark": "memory", "compare": True, "runs": runs, "idle_mb": idle, "peak_mb": peak,
                               "clip_query_ms": clip_ms,
                               "load_avg_1min": loads, "target_idle_mb": 1.2 * 1024,
                               "met": {k: idle[k] <= 1.2 * 1024 for k in runs}})
    return 0


CLIP_QUERIES = ("a dog", "sunset over the sea", "red car", "birthday cake with candles", "mountain lake")


def clip_query_ms(clip: Any, repeats: int = 5) -> float:
    """Median ms of ``embed_query`` on short queries (after one warm-up each)."""
    import statistics

    for q in CLIP_QUERIES:
        clip.embed_query(q)
    times = []
    for _ in range(repeats):
        for q in CLIP_QUERIES:
            t = time.perf_counter()
            clip.embed_query(q)
            times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=20, help="pyfaq files in the small index")
    ap.add_argument("--photos", type=int, default=16)
    ap.add_argument("--size-docs", type=int, default=1000, help="documents for the size-per-1000 figure")
    ap.add_argument("--size-images", type=int, default=200, help="images for the size-per-1000 figure")
    ap.add_argument("--path", "--text-path", dest="path", choices=("light", "torch", "both"), default="both",
                    help="light: both models on ONNX Runtime; torch: sentence-transformers + open_clip")
    ap.add_argument("--rounds", type=int, default=2, help="child processes per path with --path both")
    ap.add_argument("--onnx-cache", default=str(SCRATCH / "onnx-cache"), help="ONNX export cache (light path)")
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args(argv)
    if args.path == "both":
        rc = compare(args)
        if args.size_docs and args.size_images:
            print(table("Index size", ["kind", "files", "chunks", "LanceDB MB / 1000", "thumbnails MB / 1000"], [
                [k, v["files"], v["chunks"], v["store_mb_per_1000"], v["thumbs_mb_per_1000"]]
                for k, v in store_sizes(args.size_docs, args.size_images).items()]))
        return rc
    os.environ["LODESTAR_ONNX_CACHE"] = args.onnx_cache
    if args.path == "torch":
        os.environ["LODESTAR_TEXT_LIGHT"] = "0"
        os.environ["LODESTAR_CLIP_LIGHT"] = "0"
    else:
        os.environ.pop("LODESTAR_TEXT_LIGHT", None)
        os.environ.pop("LODESTAR_CLIP_LIGHT", None)
        ensure_export(Path(args.onnx_cache))
        ensure_clip_export(Path(args.onnx_cache))

    steps: list[tuple[str, int, int]] = []
    split: dict[str, dict[str, int]] = {}

    def mark(name: str) -> None:
        gc.collect()
        cur, peak = rss()
        steps.append((name, cur, peak))
        split[name] = status()

    mark("python + numpy")
    import lancedb  # noqa: F401
    from bench_image_index import random_clip_checkpoint
    from bench_text_index import pyfaq_sample

    mark("lancedb imported")
    if args.path == "torch":
        import open_clip  # noqa: F401
        import sentence_transformers  # noqa: F401
        import torch  # noqa: F401
    else:
        import onnxruntime  # noqa: F401
        import tokenizers  # noqa: F401

    mark("all libraries imported (no weights)")
    ckpt = random_clip_checkpoint()
    _n, corpus = pyfaq_sample(PYFAQ_DOCS, args.files)
    photos = make_small_photos(SCRATCH / f"photos-{args.photos}-1600x1200", args.photos)

    from indexer.ingest.pipeline import IndexService
    from indexer.library.settings import Settings, open_paths
    from indexer.search.ranking import Searcher
    from indexer.store.tables import Store
    from models.clip import ClipEmbedder
    from models.text import TextEmbedder

    text = TextEmbedder(device="cpu")
    text.load()
    clip = ClipEmbedder(checkpoint=str(ckpt), allow_download=False, device="cpu")
    clip.load()
    want = args.path == "light"
    if text.light != want or clip.light != want:
        raise SystemExit(f"asked for the {args.path} path but TextEmbedder.light={text.light}, ClipEmbedder.light={clip.light}")
    mark("both models loaded")
    clip_ms = clip_query_ms(clip)
    with tempfile.TemporaryDirectory(prefix="lodestar-bench-mem-") as tmp:
        paths = open_paths(Path(tmp) / "data")
        settings = Settings(folders=[str(corpus), str(photos)])
        store = Store(paths.store, text_model=(text.model_id, text.dim), image_model=(clip.model_id, clip.dim))
        svc = IndexService(store, paths, settings, text, clip)
        t = time.perf_counter()
        svc.index_roots([str(corpus), str(photos)])
        index_s = time.perf_counter() - t
        mark("after indexing")
        searcher = Searcher(store, text, clip, paths=paths, settings=settings)
        for q in ("how do I read a file", "sunset over the sea", "exceptions and tracebacks", "install python"):
            searcher.search(q, limit=20)
        mark("after 4 queries")
        time.sleep(1.0)
        mark("idle")
        idle, peak = steps[-1][1], steps[-1][2]
        store.close()
    heavy = [m for m in ("torch", "torchvision", "open_clip", "transformers", "sentence_transformers", "onnxruntime")
             if m in sys.modules]
    print(f"{args.path} path: modules loaded: {heavy}; CLIP text query {clip_ms:.1f} ms")
    if want and any(m in heavy for m in ("torch", "open_clip", "transformers")):
        raise SystemExit(f"the light path imported {heavy}")

    sizes = store_sizes(args.size_docs, args.size_images) if args.size_docs and args.size_images else {}
    m = machine()
    print(f"machine: {m['cpu']} nproc={m['nproc']} ram={m['ram_gb']}GB")
    print(table("Resident memory (this process)", ["step", "RSS MB", "anon MB", "file-backed MB", "peak MB"],
                [[name, cur / MB, split[name].get("RssAnon", 0) / MB, split[name].get("RssFile", 0) / MB, pk / MB]
                 for name, cur, pk in steps]))
    print()
    print(table("Memory targets", ["figure", "MB", "target"], [
        ["idle RSS, both models loaded, after index + queries", idle / MB, "≤1229 MB " + ("met" if idle <= 1.2 * 1024 * MB else "MISSED")],
        ["peak RSS (VmHWM)", peak / MB, ""],
        ["idle minus 'all libraries imported' baseline (weights, caches, index)", (idle - steps[2][1]) / MB, ""],
        ["libraries alone (lancedb + the path's runtimes)", steps[2][1] / MB, ""],
    ]))
    print()
    print(table("Index size", ["kind", "files", "chunks", "LanceDB MB / 1000", "thumbnails MB / 1000"], [
        [k, v["files"], v["chunks"], v["store_mb_per_1000"], v["thumbs_mb_per_1000"]] for k, v in sizes.items()
    ]))
    write_json(args.json_out, {
        "benchmark": "memory", "steps": [{"step": s, "rss_mb": c / MB, "peak_mb": p / MB, "anon_mb": split[s].get("RssAnon", 0) / MB,
                   "file_mb": split[s].get("RssFile", 0) / MB} for s, c, p in steps],
        "path": args.path, "light": text.light and clip.light, "modules": heavy, "clip_query_ms": clip_ms,
        "idle_mb": idle / MB, "peak_mb": peak / MB, "target_idle_mb": 1.2 * 1024, "met": idle <= 1.2 * 1024 * MB,
        "index_s": index_s, "sizes": sizes,
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
