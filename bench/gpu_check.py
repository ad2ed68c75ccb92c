"""One short, self-contained GPU check: text and image throughput on CUDA (≈2-3 min).

Runs on a bare GPU machine with no network and no LanceDB: the repo on PYTHONPATH,
torch + sentence-transformers + transformers + pillow, and open_clip (+ ftfy, wcwidth)
carried as wheels (see bench/gpu_check.sh). Everything is generated in the scratch folder (_common.SCRATCH):

- text model: the all-MiniLM-L6-v2 *architecture* (config, tokenizer, pooling from the
  bundled folder, or ``.gpu_carry/minilm`` when the bundle isn't installed) with random
  weights (seed 0) saved as safetensors: same shapes, same compute as the real weights;
  loaded through ``TextEmbedder(folder, device=...)`` (fp16 on CUDA, as in the product);
- CLIP: ViT-B-32 with random weights, loaded through ``ClipEmbedder(checkpoint=...)``;
- a generated markdown corpus and generated 4000×3000 JPEGs (quality 90).

"Pipeline" runs are the real ``IndexService.index_roots`` (scan, hash, extract, chunk /
JPEG draft decode, EXIF, thumbnail PNG, preprocess on the extraction pool, model calls)
on an in-memory store (``MemStore`` below) instead of LanceDB: the store's writes, FTS
and compaction are *not* in these figures.

Measures, all in one process on the first CUDA device:
1. text, raw ``SentenceTransformer.encode``: fp16 (what TextEmbedder uses on CUDA) vs
   fp32 at batch 64/128/256; ``TextEmbedder.embed_documents`` on the same passages;
   the text pipeline vs raw fp16 encode at the product's batch (64) → ratio;
2. image tower: ``ClipEmbedder.embed_tensors`` (the product call: CPU tensors in,
   fp16 on CUDA) and the bare fp16 forward on tensors already on the GPU, fp32 too,
   at batch 32/64/128/256;
3. CPU decode + preprocess (``extract_image`` + ``ClipEmbedder.preprocess``) of the
   JPEGs on 2/8/16 threads, no GPU;
4. the image pipeline with 2/8/16 extraction threads vs the tower → ratio.

    python bench/gpu_check.py --json "$OUT/gpu_check.json"      # or: bash bench/gpu_check.sh
    python bench/gpu_check.py --device cpu --text-files 6 --images 4 --threads 1,2 \
        --text-batches 16 --image-batches 4 --image-reps 1       # CPU dry run of the logic
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, SCRATCH, machine, make_text_corpus, table, write_json

BENCH_DIR = SCRATCH


def ints(s: str) -> list[int]:
    return [int(x) for x in s.split(",") if x.strip()]


def sync(dev: str) -> None:
    if dev.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def best(fn: Callable[[], float], repeats: int) -> float:
    return min(fn() for _ in range(max(1, repeats)))


# ------------------------------------------------------------------ in-memory store
class MemStore:
    """The part of ``indexer.store.tables.Store`` that ``IndexService.index_roots`` uses, in dicts.

    No LanceDB (its wheels can't travel to the GPU machine); writes just keep the rows.
    """

    def __init__(self) -> None:
        self._files: dict[str, Any] = {}
        self._chunks: dict[str, list[Any]] = {}
        self._images: dict[str, Any] = {}
        self._write_lock = threading.Lock()
        self.writes = 0

    def files(self) -> dict[str, Any]:
        return dict(self._files)

    def set_available(self, root: str, available: bool) -> int:
        import dataclasses

        n = 0
        for fid, r in list(self._files.items()):
            if r.root == root and r.available != available:
                self._files[fid] = dataclasses.replace(r, available=available)
                n += 1
        return n

    def by_hash(self, content_hash: str) -> list[Any]:
        return [r for r in self._files.values() if r.content_hash == content_hash and r.state == "indexed"]

    def chunk_rows(self, fid: str, file_hash: str | None = None, *, model_id: str | None = None) -> list[Any]:
        return list(self._chunks.get(fid, []))  # one text model per run

    def image_row(self, fid: str, file_hash: str | None = None) -> Any:
        return self._images.get(fid)

    def write(self, batch: Any) -> None:
        with self._write_lock:
            for fid in batch.delete:
                self._files.pop(fid, None)
                self._chunks.pop(fid, None)
                self._images.pop(fid, None)
            self._chunks.update(batch.chunks)
            self._images.update(batch.images)
            for rec in batch.files:
                self._files[rec.fid] = rec
            self.writes += 1

    def counts(self) -> dict[str, int]:
        return {"files": len(self._files), "chunks": sum(len(v) for v in self._chunks.values()),
                "images": len(self._images)}

    # store hygiene after a run: nothing to do in memory
    def drop_other_model_tables(self) -> list[str]:
        return []

    def remove_orphans(self) -> int:
        return 0

    def optimize(self) -> None:
        pass

    def chunks_table(self, create: bool = False, *, model_id: str | None = None) -> None:
        return None

    def chunk_tables(self) -> list[Any]:
        return []

    def images_table(self, create: bool = False) -> None:
        return None


def index_with_memstore(folder: Path, text: Any, clip: Any, threads: int) -> tuple[float, Any, dict[str, int]]:
    from indexer.ingest.pipeline import IndexService
    from indexer.library.settings import Settings, open_paths

    store = MemStore()
    with tempfile.TemporaryDirectory(prefix="lodestar-gpu-") as tmp:
        paths = open_paths(Path(tmp) / "data")
        settings = Settings(folders=[str(folder)], allow_download=False)
        svc = IndexService(store, paths, settings, text, clip, threads=threads)  # type: ignore[arg-type]
        t = time.perf_counter()
        summary = svc.index_roots([str(folder)])
        elapsed = time.perf_counter() - t
        svc.close()
    return elapsed, summary, store.counts()


# ------------------------------------------------------------------ inputs
def random_minilm_dir(dest: Path = BENCH_DIR / "minilm-random") -> Path:
    """all-MiniLM-L6-v2's folder with random weights (seed 0) in place of model.safetensors."""
    if (dest / "model.safetensors").is_file():
        return dest
    src = REPO / ".gpu_carry" / "minilm"
    if not (src / "config.json").is_file():
        from models.text import bundled_model_dir

        src = bundled_model_dir()
    import torch
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoModel

    tmp = dest.with_name(f".{dest.name}.{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp, ignore=shutil.ignore_patterns("model.safetensors", "*.bin", "onnx", "openvino"))
    torch.manual_seed(0)
    model = AutoModel.from_config(AutoConfig.from_pretrained(str(tmp)))
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    return dest


def make_photos_parallel(folder: Path, n: int, size: tuple[int, int] = (4000, 3000), workers: int = 0) -> Path:
    """bench_image_index.make_photos' recipe (colour fields + grain, q90), one seed per file, in parallel."""
    import numpy as np
    from PIL import Image

    marker = folder / f".complete-{n}-{size[0]}x{size[1]}"
    if marker.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    w, h = size

    def one(i: int) -> None:
        rng = np.random.default_rng(1000 + i)
        small = rng.integers(0, 256, size=(12, 16, 3), dtype=np.uint8)
        img = Image.fromarray(small, "RGB").resize((w, h), Image.Resampling.BICUBIC)
        grain = rng.integers(-12, 13, size=(h // 4, w // 4, 1), dtype=np.int16)
        arr = np.asarray(img, dtype=np.int16)
        arr[::4, ::4] += grain
        Image.fromarray(arr.clip(0, 255).astype(np.uint8), "RGB").save(folder / f"IMG_{i:04d}.jpg", quality=90)

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2) as pool:
        list(pool.map(one, range(n)))
    marker.touch()
    return folder


# ------------------------------------------------------------------ text
def text_section(args: argparse.Namespace, res: dict[str, Any], rows: list[list[Any]]) -> None:
    import torch
    from bench_text_index import RecordingEmbedder

    from models.text import TextEmbedder

    dev = args.device
    t0 = time.perf_counter()
    folder = random_minilm_dir()
    res["text_model"] = "all-MiniLM-L6-v2 architecture, random weights (seed 0)"
    emb = TextEmbedder(str(folder), device=dev)
    emb.load()
    model = emb._backend.model
    res["text_dtype_in_product"] = str(next(model.parameters()).dtype)
    res["text_batch_in_product"] = emb.batch_size
    emb.embed_documents(["warm up the model and the tokenizer"] * 64)
    corpus = make_text_corpus(BENCH_DIR / f"textgen/{args.text_files}x6k", args.text_files, 6)
    res["text_setup_s"] = time.perf_counter() - t0
    print(f"text: model + corpus ready in {res['text_setup_s']:.1f} s", flush=True)

    # pipeline (IndexService on MemStore), recording the passages sent to the model
    res["text_pipeline"] = {}
    texts: list[str] = []
    for threads in args.text_threads:
        times = []
        for _ in range(args.repeats):
            rec = RecordingEmbedder(emb)
            elapsed, summary, counts = index_with_memstore(corpus, rec, None, threads)
            times.append(elapsed)
            texts = rec.texts
        n = len(texts)
        res["text_pipeline"][threads] = {"s": times, "chunks": n, "chunks_per_s": n / min(times),
                                         "model_s": rec.embed_s, "files": summary.new, "failed": summary.failed,
                                         "stored_chunks": counts["chunks"]}
        print(f"text pipeline, {threads} threads: {n} chunks, {n / min(times):.0f}/s "
              f"(model {rec.embed_s:.2f} of {min(times):.2f} s)", flush=True)
    res["text_chunks"] = len(texts)
    sample = texts[:256]

    def raw(batch: int) -> float:
        model.encode(sample, batch_size=batch, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        sync(dev)
        t = time.perf_counter()
        model.encode(texts, batch_size=batch, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        sync(dev)
        return len(texts) / (time.perf_counter() - t)

    def via_embedder() -> float:
        t = time.perf_counter()
        emb.embed_documents(texts)
        return len(texts) / (time.perf_counter() - t)

    prod = "fp16" if dev.startswith("cuda") else "fp32"
    res["text_raw"] = {prod: {b: max(raw(b) for _ in range(args.repeats)) for b in args.text_batches}}
    res["text_embedder_per_s"] = max(via_embedder() for _ in range(args.repeats))
    if dev.startswith("cuda"):
        model.float()
        res["text_raw"]["fp32"] = {b: max(raw(b) for _ in range(args.repeats)) for b in args.text_batches}
        model.half()
    for dtype, by_batch in res["text_raw"].items():
        for b, v in by_batch.items():
            rows.append(["text", f"raw encode {dtype}", f"batch {b}", v, "chunks/s"])
    base = res["text_raw"][prod].get(emb.batch_size) or max(res["text_raw"][prod].values())
    res["text_embedder_ratio"] = res["text_embedder_per_s"] / base
    rows.append(["text", f"TextEmbedder.embed_documents ({prod})", f"batch {emb.batch_size}",
                 res["text_embedder_per_s"], f"chunks/s, ×{res['text_embedder_ratio']:.2f} of raw"])
    for threads, r in res["text_pipeline"].items():
        r["ratio"] = r["chunks_per_s"] / base
        rows.append(["text", "pipeline (IndexService, MemStore)", f"{threads} extract threads", r["chunks_per_s"],
                     f"chunks/s, ×{r['ratio']:.2f} of raw"])
    emb.close()
    del emb, model
    if dev.startswith("cuda"):
        torch.cuda.empty_cache()
    res["text_section_s"] = time.perf_counter() - t0


# ------------------------------------------------------------------ image
def image_section(args: argparse.Namespace, res: dict[str, Any], rows: list[list[Any]]) -> None:
    import torch
    from bench_image_index import make_clip, random_clip_checkpoint

    from indexer.ingest.extract.image import extract_image
    from indexer.library.settings import Settings
    from tests.support.fakes import HashTextEmbedder

    dev = args.device
    t0 = time.perf_counter()
    folder = make_photos_parallel(BENCH_DIR / f"gpu-photos-{args.images}-4000x3000", args.images)
    files = sorted(folder.glob("*.jpg"))
    res["images"] = len(files)
    res["images_mb"] = sum(p.stat().st_size for p in files) / 1e6
    res["photos_s"] = time.perf_counter() - t0
    print(f"image: {len(files)} JPEGs ({res['images_mb']:.0f} MB) ready in {res['photos_s']:.1f} s", flush=True)
    ckpt = random_clip_checkpoint()
    clip = make_clip(ckpt, 32, dev)  # the product's embedder: fp16 on CUDA, batch 32
    _ = clip.model_id  # hash the checkpoint once, outside the timings
    res["clip_dtype_in_product"] = str(next(clip._backend.model.parameters()).dtype)
    res["clip_batch_in_product"] = clip.batch_size
    res["image_setup_s"] = time.perf_counter() - t0
    settings = Settings()

    def decode(p: Path) -> Any:
        return clip.preprocess(extract_image(str(p), settings).image)

    # 3. CPU decode + preprocess (what the extraction pool does per image, minus hash and PNG write)
    res["decode"] = {}
    tensors: list[Any] = []
    for threads in args.threads:
        def run(threads: int = threads) -> float:
            nonlocal tensors
            t = time.perf_counter()
            with ThreadPoolExecutor(max_workers=threads) as pool:
                tensors = list(pool.map(decode, files))
            return len(files) / (time.perf_counter() - t)

        res["decode"][threads] = max(run() for _ in range(args.repeats))
        rows.append(["image", "CPU decode+preprocess (extract_image)", f"{threads} threads", res["decode"][threads], "images/s"])
        print(f"decode {threads} threads: {res['decode'][threads]:.1f} img/s", flush=True)

    # 2. tower
    model = clip._backend.model
    reps = max(1, args.image_reps // max(1, len(tensors)))
    cpu_batch = torch.stack(tensors * reps)  # fp32 [N, 3, 224, 224] on the CPU, as the pipeline hands them over
    n = cpu_batch.shape[0]
    res["tower_images"] = n

    def product_call(b: int) -> float:  # ClipEmbedder.embed_tensors: CPU tensors in, vectors out
        clip.embed_tensors(cpu_batch[:b])
        sync(dev)
        t = time.perf_counter()
        for i in range(0, n, b):
            clip.embed_tensors(cpu_batch[i : i + b])
        sync(dev)
        return n / (time.perf_counter() - t)

    def on_device(b: int) -> float:  # bare forward on tensors already on the device
        dtype = next(model.parameters()).dtype
        x = cpu_batch.to(dev, dtype=dtype)
        with torch.inference_mode():
            model.encode_image(x[:b])
            sync(dev)
            t = time.perf_counter()
            for i in range(0, n, b):
                model.encode_image(x[i : i + b])
            sync(dev)
        return n / (time.perf_counter() - t)

    prod = "fp16" if dev.startswith("cuda") else "fp32"
    res["tower"] = {prod: {}}
    for b in args.image_batches:
        res["tower"][prod][b] = {"embed_tensors": max(product_call(b) for _ in range(args.repeats)),
                                 "on_device": max(on_device(b) for _ in range(args.repeats))}
    if dev.startswith("cuda"):
        model.float()  # embed_tensors follows the parameters' dtype
        res["tower"]["fp32"] = {b: {"embed_tensors": max(product_call(b) for _ in range(args.repeats)),
                                    "on_device": max(on_device(b) for _ in range(args.repeats))}
                                for b in args.image_batches}
        model.half()
    for dtype, by_batch in res["tower"].items():
        for b, r in by_batch.items():
            rows.append(["image", f"tower {dtype}, embed_tensors (CPU tensors in)", f"batch {b}", r["embed_tensors"], "images/s"])
            rows.append(["image", f"tower {dtype}, on-device forward only", f"batch {b}", r["on_device"], "images/s"])
        print(f"tower {dtype}: " + ", ".join(f"b{b} {r['embed_tensors']:.0f}/{r['on_device']:.0f}" for b, r in by_batch.items()), flush=True)
    del cpu_batch
    tower32 = res["tower"][prod].get(32, next(iter(res["tower"][prod].values())))["embed_tensors"]

    # 4. pipeline
    res["image_pipeline"] = {}
    text = HashTextEmbedder()
    index_with_memstore(folder, text, clip, max(args.threads))  # warm (thread pools, allocator)
    for threads in args.threads:
        times = []
        for _ in range(args.repeats):
            elapsed, summary, counts = index_with_memstore(folder, text, clip, threads)
            times.append(elapsed)
        rate = len(files) / min(times)
        res["image_pipeline"][threads] = {"s": times, "img_per_s": rate, "ratio_vs_tower": rate / tower32,
                                          "ratio_vs_decode": rate / res["decode"][threads],
                                          "images_stored": counts["images"], "failed": summary.failed}
        rows.append(["image", "pipeline (IndexService, MemStore)", f"{threads} extract threads", rate,
                     f"images/s, ×{rate / tower32:.3f} of tower b32, ×{rate / res['decode'][threads]:.2f} of decode"])
        print(f"image pipeline {threads} threads: {rate:.1f} img/s", flush=True)
        if counts["images"] != len(files):
            print(f"warning: {counts['images']} image rows for {len(files)} files ({summary.failures[:2]})")
    res["image_section_s"] = time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--text-files", type=int, default=150, help="generated 6 KB markdown files")
    ap.add_argument("--images", type=int, default=192, help="generated 4000×3000 JPEGs")
    ap.add_argument("--threads", type=ints, default=ints("2,8,16"), help="image extraction/decode threads")
    ap.add_argument("--text-threads", type=ints, default=ints("2,8"), help="text pipeline extraction threads")
    ap.add_argument("--text-batches", type=ints, default=ints("64,128,256"))
    ap.add_argument("--image-batches", type=ints, default=ints("32,64,128,256"))
    ap.add_argument("--image-reps", type=int, default=1024, help="tower timings run on about this many tensors")
    ap.add_argument("--repeats", type=int, default=2, help="best of this many")
    ap.add_argument("--skip", default="", help="text or image")
    ap.add_argument("--device", default="cuda", help="cuda (default); cpu only to dry-run this script")
    ap.add_argument("--json", dest="json_out", default=os.path.join(os.environ["OUT"], "gpu_check.json") if os.environ.get("OUT") else None)
    args = ap.parse_args(argv)

    # `timeout` sends SIGTERM: leave through `finally`, so the partial table and JSON are kept.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(124))
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        write_json(args.json_out, {"benchmark": "gpu_check", "cuda": False})
        return 0
    t = time.perf_counter()
    res: dict[str, Any] = {"benchmark": "gpu_check", "device": args.device,
                           "gpu": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None,
                           "torch": torch.__version__, "cpu_count": os.cpu_count(), "args": vars(args)}
    for mod in ("sentence_transformers", "transformers", "open_clip", "PIL"):
        try:
            res[f"{mod}_version"] = __import__(mod).__version__
        except Exception as exc:  # noqa: BLE001 - report, don't stop
            res[f"{mod}_version"] = f"unavailable: {exc}"
    rows: list[list[Any]] = []
    m = machine()
    print(f"machine: {m['cpu']} nproc={m['nproc']} ram={m['ram_gb']}GB torch={res['torch']} gpu={res['gpu']}", flush=True)
    try:
        if "text" not in args.skip:
            text_section(args, res, rows)
        if "image" not in args.skip:
            image_section(args, res, rows)
    finally:
        res["elapsed_total_s"] = time.perf_counter() - t
        print(table(f"GPU check on {res['gpu'] or args.device} (same run, best of {args.repeats})",
                    ["model", "what", "setting", "rate", "unit / ratio"], rows))
        write_json(args.json_out, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
