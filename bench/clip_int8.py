"""Issue 13.2, the image half: int8 of the CLIP image tower — speed, and agreement with fp32.

Quantises the exported ONNX image tower (models/onnx_clip.py) with ONNX Runtime's dynamic
int8 (weights per channel, activations per run) and compares it with the fp32 export on the
same preprocessed photos, in the same run, alternating:

- throughput (photos/s, batches of 32, the product's session options);
- agreement: cosine of each photo's int8 vector to its fp32 vector, and how many of each
  photo's 5 nearest neighbours among the others are the same under both.

There are no real CLIP weights on this machine: the tower is ViT-B-32 with random weights
(the same arithmetic; `bench_image_index.random_clip_checkpoint`). Agreement under random
weights says how much the quantisation moves the vectors, not what it does to meaning;
``--checkpoint`` runs it on real weights where they are at hand.

    .venv/bin/python bench/clip_int8.py [--images 60] [--rounds 3] [--checkpoint FILE] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO  # noqa: F401 - puts the repository on sys.path
from bench_image_index import BENCH_DIR, make_clip, make_photos, prepare_tensors, random_clip_checkpoint


def _session(path: Path, threads: int) -> object:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _embed(sess: object, batch: np.ndarray, size: int = 32) -> tuple[np.ndarray, float]:
    out = []
    t = time.perf_counter()
    for i in range(0, len(batch), size):
        out.append(sess.run(None, {"pixels": batch[i : i + size]})[0])  # type: ignore[attr-defined]
    elapsed = time.perf_counter() - t
    v = np.concatenate(out).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True), elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--checkpoint", type=Path, help="a real ViT-B-32 .safetensors (default: random weights)")
    ap.add_argument("--json")
    args = ap.parse_args()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    clip = make_clip(args.checkpoint or random_clip_checkpoint(), 32)
    folder = make_photos(BENCH_DIR / f"photos-{args.images}-4000x3000", args.images)
    pixels = np.stack([np.asarray(t, np.float32) for t in prepare_tensors(folder, clip)])
    backend = clip._backend
    assert backend is not None and hasattr(backend, "onnx"), "the CLIP light path is not in use (no ONNX export)"
    export = Path(backend.onnx.dir)  # the light path's export of this checkpoint
    with tempfile.TemporaryDirectory(prefix="lodestar-clip-int8-") as tmp:
        int8_path = Path(tmp) / "image_int8.onnx"
        t = time.perf_counter()
        quantize_dynamic(str(export / "image.onnx"), str(int8_path), per_channel=True, weight_type=QuantType.QInt8)
        quant_s = time.perf_counter() - t
        sessions = {"fp32": _session(export / "image.onnx", args.threads), "int8": _session(int8_path, args.threads)}
        sizes = {"fp32": (export / "image.onnx").stat().st_size, "int8": int8_path.stat().st_size}
        for s in sessions.values():
            _embed(s, pixels[:4])  # warm-up
        times: dict[str, list[float]] = {"fp32": [], "int8": []}
        vecs: dict[str, np.ndarray] = {}
        for _ in range(args.rounds):
            for name, s in sessions.items():
                vecs[name], dt = _embed(s, pixels)
                times[name].append(dt)
    cos = (vecs["fp32"] * vecs["int8"]).sum(axis=1)

    def neighbours(v: np.ndarray) -> np.ndarray:
        sims = v @ v.T
        np.fill_diagonal(sims, -np.inf)
        return np.argsort(-sims, axis=1)[:, :5]

    a, b = neighbours(vecs["fp32"]), neighbours(vecs["int8"])
    overlap = float(np.mean([len(set(x) & set(y)) / 5 for x, y in zip(a, b)]))
    rate = {k: len(pixels) / min(v) for k, v in times.items()}
    out = {
        "images": len(pixels), "rounds": args.rounds, "threads": args.threads, "quantise_s": round(quant_s, 1),
        "photos_per_s": {k: round(v, 2) for k, v in rate.items()}, "speedup": round(rate["int8"] / rate["fp32"], 2),
        "size_mb": {k: round(v / 1e6, 1) for k, v in sizes.items()},
        "cosine_min": round(float(cos.min()), 4), "cosine_mean": round(float(cos.mean()), 4),
        "neighbours_at_5_same": round(overlap, 3), "load": open("/proc/loadavg").read().split()[:3],
    }
    weights = args.checkpoint.name if args.checkpoint else "random weights"
    print(f"CLIP image tower, fp32 vs dynamic int8 (ViT-B-32, {weights}; {len(pixels)} photos, best of {args.rounds})")
    print(f"  fp32 {rate['fp32']:.1f} photos/s, int8 {rate['int8']:.1f} photos/s: {out['speedup']}x; "
          f"{out['size_mb']['fp32']} MB -> {out['size_mb']['int8']} MB")
    print(f"  agreement: cosine min {out['cosine_min']}, mean {out['cosine_mean']}; same 5 nearest neighbours {overlap:.1%}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
