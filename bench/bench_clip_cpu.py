"""CLIP ViT-B-32 image tower on CPU: fp32 vs bf16, channels_last, thread count — measured.

Random weights (same compute), random ready tensors [n, 3, 224, 224]; each
variant embeds the same batches; rounds alternate between variants and the best
round is kept. Also reports the cosine between bf16 and fp32 outputs (bf16 is only
worth it if vectors stay close *and* it is faster on this CPU).

    .venv/bin/python bench/bench_clip_cpu.py --json bench/out/clip_cpu.json
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table, write_json


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args(argv)

    import torch
    from bench_image_index import make_clip, random_clip_checkpoint

    clip = make_clip(random_clip_checkpoint(), args.batch)
    model = clip._backend.model
    default_threads = torch.get_num_threads()
    x = torch.randn(args.images, 3, 224, 224, generator=torch.Generator().manual_seed(0))

    def run(dtype: Any = None, channels_last: bool = False, threads: int | None = None) -> tuple[float, Any]:
        torch.set_num_threads(threads or default_threads)
        outs = []
        t = time.perf_counter()
        for i in range(0, len(x), args.batch):
            b = x[i : i + args.batch]
            if channels_last:
                b = b.contiguous(memory_format=torch.channels_last)
            ctx = torch.autocast("cpu", dtype=dtype) if dtype is not None else contextlib.nullcontext()
            with torch.inference_mode(), ctx:
                f = model.encode_image(b)
            outs.append(torch.nn.functional.normalize(f.float(), dim=-1))
        elapsed = time.perf_counter() - t
        torch.set_num_threads(default_threads)
        return elapsed, torch.cat(outs)

    variants: dict[str, dict[str, Any]] = {
        "fp32 (default)": {},
        "fp32 channels_last": {"channels_last": True},
        "bf16 autocast": {"dtype": torch.bfloat16},
        "fp32 1 thread": {"threads": 1},
    }
    run()  # warm-up
    run(dtype=torch.bfloat16)
    times: dict[str, list[float]] = {k: [] for k in variants}
    outs: dict[str, Any] = {}
    for _ in range(args.rounds):
        for name, kw in variants.items():
            el, out = run(**kw)
            times[name].append(el)
            outs[name] = out
    base = min(times["fp32 (default)"])
    ref = outs["fp32 (default)"]
    rows = []
    res: dict[str, Any] = {}
    for name in variants:
        best = min(times[name])
        cos = (outs[name] * ref).sum(-1)
        res[name] = {"img_per_s": args.images / best, "speedup": base / best, "cos_mean": float(cos.mean()), "cos_min": float(cos.min())}
        rows.append([name, args.images / best, base / best, float(cos.mean()), float(cos.min())])
    m = machine()
    print(f"machine: {m['cpu']} nproc={m['nproc']} torch_threads={default_threads} (bf16 hw: see /proc/cpuinfo avx512_bf16/amx)")
    print(table(f"ViT-B-32 image tower on CPU, {args.images} images, batch {args.batch} (best of {args.rounds})",
                ["variant", "img/s", "× fp32", "mean cos vs fp32", "min cos"], rows))
    write_json(args.json_out, {"benchmark": "clip_cpu", "images": args.images, "batch": args.batch,
                               "default_threads": default_threads, "times_s": times, "results": res})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
