"""One short, self-contained GPU check: text and image throughput on CUDA (≈3-5 min).

Needs only the repo (``pip install -e .``) and its installed packages: no network,
no /work/shared. Text comes from the generated corpus, CLIP is ViT-B-32 with
random weights saved to /tmp as safetensors (same compute as the real weights).

Measures, all on the first CUDA device and in one process:
1. text, raw ``SentenceTransformer.encode``: fp32 vs fp16 (what TextEmbedder uses on
   CUDA) at batch sizes 64/128/256;
2. text through IndexService (TextEmbedder on cuda) vs raw fp16 encode of the same
   passages → ratio;
3. image, raw ``ClipEmbedder.embed_tensors`` (fp16 on CUDA) at batch 32/64/128;
4. image through IndexService on generated 4000×3000 JPEGs with 2 and 8 extraction
   threads vs the raw tower → ratio (on a GPU the CPU decode is the bottleneck).

    python bench/gpu_check.py --json "$OUT/gpu_check.json"      # or: bash bench/gpu_check.sh
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, make_text_corpus, table, write_json  # noqa: E402


def sync() -> None:
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def text_raw(model: Any, texts: list[str], batch: int) -> float:
    sync()
    t = time.perf_counter()
    model.encode(texts, batch_size=batch, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    sync()
    return len(texts) / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--text-files", type=int, default=300)
    ap.add_argument("--images", type=int, default=48)
    ap.add_argument("--device", default="cuda", help="cuda (default); cpu only to dry-run this script")
    ap.add_argument("--json", dest="json_out", default=os.path.join(os.environ["OUT"], "gpu_check.json") if os.environ.get("OUT") else None)
    args = ap.parse_args(argv)

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        write_json(args.json_out, {"benchmark": "gpu_check", "cuda": False})
        return 0
    from bench_image_index import BENCH_DIR, make_clip, make_photos, prepare_tensors, random_clip_checkpoint, run_pipeline, run_raw
    from bench_text_index import run_pipeline as text_pipeline

    from models.text import TextEmbedder

    dev = args.device
    res: dict[str, Any] = {"benchmark": "gpu_check", "device": dev,
                           "cuda": torch.cuda.get_device_name(0) if dev == "cuda" else None}
    rows: list[list[Any]] = []

    # ---- text
    corpus = make_text_corpus(BENCH_DIR / f"textgen/{args.text_files}x6k", args.text_files, 6)
    emb = TextEmbedder(device=dev)
    emb.load()
    emb.embed_documents(["warm up"] * 64)
    t = time.perf_counter()
    pipe = text_pipeline(corpus, emb, threads=4)
    texts = pipe["texts"]
    model = emb._model
    text_raw(model, texts[:256], 64)  # warm-up
    res["text_chunks"] = len(texts)
    res["text_fp16"] = {b: text_raw(model, texts, b) for b in (64, 128, 256)}
    pipe = text_pipeline(corpus, emb, threads=4)  # second run: warm
    res["text_pipeline_chunks_per_s"] = len(texts) / pipe["elapsed_s"]
    res["text_ratio"] = res["text_pipeline_chunks_per_s"] / res["text_fp16"][emb.batch_size]
    res["text_fp32"] = {}
    if dev == "cuda":  # TextEmbedder runs fp16 on CUDA; compare with fp32 once
        model.float()
        res["text_fp32"] = {b: text_raw(model, texts, b) for b in (64, 256)}
        model.half()
    for b, v in res["text_fp16"].items():
        rows.append([f"text raw encode ({'fp16' if dev == 'cuda' else 'fp32'})", f"batch {b}", v, "chunks/s"])
    for b, v in res["text_fp32"].items():
        rows.append(["text raw encode fp32", f"batch {b}", v, "chunks/s"])
    rows.append(["text pipeline (IndexService)", f"batch {emb.batch_size}", res["text_pipeline_chunks_per_s"],
                 f"chunks/s, ratio {res['text_ratio']:.2f}"])
    emb.close()
    del emb, model
    if dev == "cuda":
        torch.cuda.empty_cache()

    # ---- image
    folder = make_photos(BENCH_DIR / f"photos-{args.images}-4000x3000", args.images)
    ckpt = random_clip_checkpoint()
    res["image_raw"] = {}
    clip = None
    for b in (32, 64, 128):
        clip = make_clip(ckpt, b, dev)
        if b == 32:
            tensors = prepare_tensors(folder, clip)
            reps = max(1, 256 // len(tensors)) if dev == "cuda" else 1
            tensors = tensors * reps
            run_raw(clip, tensors[:32])
        res["image_raw"][b] = len(tensors) / run_raw(clip, tensors)
        rows.append([f"image raw tower ({'fp16' if dev == 'cuda' else 'fp32'})", f"batch {b}", res["image_raw"][b], "images/s"])
    clip = make_clip(ckpt, 32, dev)
    raw32 = res["image_raw"][32]
    res["image_pipeline"] = {}
    for threads in (2, 8):
        run_pipeline(folder, clip, threads)  # warm (thumbnail dir, kernels)
        elapsed, _s = run_pipeline(folder, clip, threads)
        rate = args.images / elapsed
        res["image_pipeline"][threads] = {"img_per_s": rate, "ratio": rate / raw32}
        rows.append(["image pipeline (IndexService)", f"{threads} extract threads", rate, f"images/s, ratio {rate / raw32:.2f}"])
    res["elapsed_total_s"] = time.perf_counter() - t
    m = machine()
    print(f"machine: {m['cpu']} nproc={m['nproc']} ram={m['ram_gb']}GB device={dev} gpu={res['cuda']}")
    print(table("GPU throughput (same run)", ["what", "setting", "rate", "unit"], rows))
    write_json(args.json_out, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
