"""Image indexing throughput through the pipeline vs the bare image tower, same run.

Generates photo-sized JPEGs once (default 60 × 4000×3000, in the scratch folder), saves a
random-weight ViT-B-32 as safetensors once (same compute as the real weights; no
download possible here) and loads it through the normal checkpoint path of
``ClipEmbedder``. Then, alternating:

- ``pipeline``: ``IndexService.index_roots`` on a fresh data dir (hash, JPEG
  draft decode, EXIF, thumbnail PNG, preprocessing, CLIP forward, LanceDB writes);
- ``raw``: ``ClipEmbedder.embed_tensors`` on the same images already decoded and
  preprocessed into tensors, in batches of the embedder's batch size.

ratio = pipeline images/s ÷ raw images/s (target ≥ 0.9).

    .venv/bin/python bench/bench_image_index.py --json bench/out/image_index.json
    .venv/bin/python bench/bench_image_index.py --images 24 --torch-threads 2 --extract-threads 1
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SCRATCH, machine, table, write_json

BENCH_DIR = SCRATCH


def make_photos(folder: Path, n: int, size: tuple[int, int] = (4000, 3000)) -> Path:
    """Photo-like JPEGs (smooth colour fields + grain, quality 90); generated once."""
    import numpy as np
    from PIL import Image

    marker = folder / f".complete-{n}-{size[0]}x{size[1]}"
    if marker.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    w, h = size
    for i in range(n):
        small = rng.integers(0, 256, size=(12, 16, 3), dtype=np.uint8)
        img = Image.fromarray(small, "RGB").resize((w, h), Image.Resampling.BICUBIC)
        grain = rng.integers(-12, 13, size=(h // 4, w // 4, 1), dtype=np.int16)
        arr = np.asarray(img, dtype=np.int16)
        arr[::4, ::4] += grain  # cheap grain so the JPEG has real entropy
        Image.fromarray(arr.clip(0, 255).astype(np.uint8), "RGB").save(folder / f"IMG_{i:04d}.jpg", quality=90)
    marker.touch()
    return folder


def random_clip_checkpoint(model_name: str = "ViT-B-32") -> Path:
    """A random-weight open_clip model as safetensors (same architecture and compute)."""
    path = BENCH_DIR / f"{model_name}-random.safetensors"
    if path.is_file():
        return path
    import open_clip
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = open_clip.create_model(model_name, pretrained=None)
    state = {k: v.contiguous().clone() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file(state, str(tmp))
    os.replace(tmp, path)
    return path


def make_clip(checkpoint: Path, batch_size: int, device: str = "cpu") -> Any:
    from models.clip import ClipEmbedder

    emb = ClipEmbedder(checkpoint=str(checkpoint), allow_download=False, device=device, batch_size=batch_size)
    emb.load()
    return emb


def run_pipeline(folder: Path, clip: Any, threads: int) -> tuple[float, Any]:
    from indexer.ingest.pipeline import IndexService
    from indexer.library.settings import Settings, open_paths
    from indexer.store.tables import Store
    from tests.support.fakes import HashTextEmbedder

    text = HashTextEmbedder()
    with tempfile.TemporaryDirectory(prefix="lodestar-bench-img-") as tmp:
        paths = open_paths(Path(tmp) / "data")
        settings = Settings(folders=[str(folder)], allow_download=False)
        store = Store(paths.store, text_model=(text.model_id, text.dim), image_model=(clip.model_id, clip.dim))
        svc = IndexService(store, paths, settings, text, clip, threads=threads)
        t = time.perf_counter()
        summary = svc.index_roots([str(folder)])
        elapsed = time.perf_counter() - t
        counts = store.counts()
        store.close()
    if counts["images"] != summary.new:
        print(f"warning: {summary.new} files but {counts['images']} image rows ({summary.failures[:3]})")
    return elapsed, summary


def prepare_tensors(folder: Path, clip: Any) -> list[Any]:
    from indexer.ingest.extract.image import extract_image
    from indexer.library.settings import Settings

    settings = Settings()
    return [clip.preprocess(extract_image(str(p), settings).image) for p in sorted(folder.glob("*.jpg"))]


def run_raw(clip: Any, tensors: list[Any]) -> float:
    # A list of [3, H, W] items: torch tensors, or numpy arrays on the light path.
    t = time.perf_counter()
    for i in range(0, len(tensors), clip.batch_size):
        clip.embed_tensors(tensors[i : i + clip.batch_size])
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=60)
    ap.add_argument("--size", default="4000x3000")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--extract-threads", type=int, default=2, help="IndexService extraction threads")
    ap.add_argument("--torch-threads", type=int, default=0, help="torch.set_num_threads (0: leave torch's default)")
    ap.add_argument("--profile", help="write a pyinstrument text profile of one pipeline run here")
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args(argv)

    import torch

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    w, h = (int(x) for x in args.size.split("x"))
    t = time.perf_counter()
    folder = make_photos(BENCH_DIR / f"photos-{args.images}-{args.size}", args.images, (w, h))
    gen_s = time.perf_counter() - t
    ckpt = random_clip_checkpoint()
    clip = make_clip(ckpt, args.batch_size)
    tensors = prepare_tensors(folder, clip)
    run_raw(clip, tensors[: min(4, len(tensors))])  # warm-up (allocator, oneDNN kernels)
    mb = sum(p.stat().st_size for p in folder.glob("*.jpg")) / 1e6

    pipe_times: list[float] = []
    raw_times: list[float] = []
    summary: Any = None
    for _ in range(args.repeats):
        raw_times.append(run_raw(clip, tensors))
        elapsed, summary = run_pipeline(folder, clip, args.extract_threads)
        pipe_times.append(elapsed)
    if args.profile:
        from pyinstrument import Profiler

        prof = Profiler(interval=0.002)
        prof.start()
        run_pipeline(folder, clip, args.extract_threads)
        prof.stop()
        Path(args.profile).write_text(prof.output_text(unicode=False, color=False), encoding="utf-8")
    n = len(tensors)
    pipe, raw = min(pipe_times), min(raw_times)
    m = machine()
    print(f"machine: {m['cpu']} nproc={m['nproc']} ram={m['ram_gb']}GB torch_threads={torch.get_num_threads()} "
          f"extract_threads={args.extract_threads}")
    print(
        table(
            f"Image indexing: pipeline vs bare ViT-B-32 image tower on ready tensors (best of {args.repeats}, same run)",
            ["images", "MB", "pipeline img/s", "raw tower img/s", "ratio", "failed", "target"],
            [[n, mb, n / pipe, n / raw, raw / pipe, summary.failed, "≥0.9 " + ("met" if raw / pipe >= 0.9 else "MISSED")]],
        )
    )
    write_json(args.json_out, {
        "benchmark": "image_index", "images": n, "size": args.size, "mb": mb, "batch_size": args.batch_size,
        "torch_threads": torch.get_num_threads(), "extract_threads": args.extract_threads,
        "pipeline_s": pipe_times, "raw_s": raw_times, "pipeline_img_per_s": n / pipe, "raw_img_per_s": n / raw,
        "ratio": raw / pipe, "failed": summary.failed, "generate_s": gen_s,
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
