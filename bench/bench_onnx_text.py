"""Text paths on CPU against raw sentence-transformers, same passages, same run (issue 13.2).

Baseline: fp32 ``SentenceTransformer.encode`` (batch 64), the model as its library runs
it. Against it, ``TextEmbedder.embed_documents`` as the product calls it:
- ``default``: the product's default on a CPU (the light path: the fp32 ONNX export,
  tokenizer.json, each passage alone, two at once);
- ``onnx`` / ``onnx-int8``: the ``text_backend`` settings (the same encoder behind a
  sentence-transformers load; int8 = per-channel dynamic quantisation).
Rounds alternate between the paths; the best round of each is kept. Agreement: mean /
min cosine between each path's vectors and the baseline's on those passages.

Quality (optional, slow: indexes all of pyfaq once per backend): MRR@10 with
``lodestar eval`` on data dirs indexed with each backend, e.g.

    .venv/bin/python bench/bench_onnx_text.py --json bench/out/onnx.json
    .venv/bin/python bench/bench_onnx_text.py --eval torch=bench/out/eval-pyfaq --eval onnx-int8=bench/out/eval-int8

A data dir for a backend is made with settings.json ``"text_backend": "onnx-int8"``
then ``lodestar index ../shared/eval/pyfaq/docs --data-dir DIR`` (from the repository root).
Adoption rule (issue): default only if MRR@10 drops < 1% AND throughput ≥ 2×.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np
from _common import PYFAQ_DOCS, PYFAQ_QUERIES, SCRATCH, machine, table, write_json

BACKENDS = ("torch", "onnx", "onnx-int8")  # text_backend values; "torch" = the default
PATHS = ("sentence-transformers", "default", "onnx", "onnx-int8")


def passages(root: Path) -> list[str]:
    from indexer.ingest.chunk import chunk_text, embedding_input
    from indexer.ingest.extract import extract_text
    from indexer.library.settings import Settings

    out: list[str] = []
    settings = Settings()
    for p in sorted(root.rglob("*.txt")):
        ex = extract_text(str(p), settings)
        out += [embedding_input(c, ex.title) for c in chunk_text(ex.text, ex.title)]
    return out


def run_eval(backend: str, data_dir: str) -> dict[str, Any]:
    exe = Path(sys.executable).parent / "lodestar"
    cmd = [str(exe), "eval", str(PYFAQ_QUERIES), "--root", str(PYFAQ_DOCS), "--data-dir", data_dir, "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if proc.returncode:
        return {"error": proc.stderr[-500:]}
    data = json.loads(proc.stdout)
    data.pop("queries", None)
    return data


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=20, help="pyfaq sample size for throughput")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--eval", action="append", default=[], metavar="BACKEND=DATA_DIR",
                    help="score an index built with BACKEND via `lodestar eval` (repeatable)")
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args(argv)
    os.environ.setdefault("LODESTAR_ONNX_CACHE", str(SCRATCH / "onnx-cache"))

    from bench_text_index import pyfaq_sample

    from models.text import TextEmbedder

    name, root = pyfaq_sample(PYFAQ_DOCS, args.files)
    texts = passages(root)
    import torch
    from sentence_transformers import SentenceTransformer

    from models.text import bundled_model_dir

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    st = SentenceTransformer(str(bundled_model_dir()), device="cpu")
    raw = lambda: st.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    embs: dict[str, Any] = {"sentence-transformers": None}
    load_s: dict[str, float] = {"sentence-transformers": 0.0}
    for path in PATHS[1:]:
        t = time.perf_counter()
        e = TextEmbedder(device="cpu", backend="torch" if path == "default" else path)
        e.load()
        if path == "default" and not e.light:  # first run in this cache: wait for the export, use it
            e.wait_export(600)
        e.embed_documents(texts[:16])
        load_s[path] = time.perf_counter() - t
        embs[path] = e
    raw()
    times: dict[str, list[float]] = {p: [] for p in PATHS}
    vecs: dict[str, np.ndarray] = {}
    for _ in range(args.rounds):
        for p in PATHS:
            t = time.perf_counter()
            vecs[p] = np.asarray(raw(), np.float32) if p == "sentence-transformers" else embs[p].embed_documents(texts)
            times[p].append(time.perf_counter() - t)
    rate = {p: len(texts) / min(times[p]) for p in PATHS}
    base = vecs["sentence-transformers"]
    cos = {p: (vecs[p] * base).sum(axis=1) for p in PATHS}
    engines = {p: (embs[p].engine if embs[p] is not None else "torch") for p in PATHS}
    evals = {}
    for spec in args.eval:
        b, _, d = spec.partition("=")
        evals[b] = run_eval(b, d)
    m = machine()
    print(f"machine: {m['cpu']} nproc={m['nproc']} ram={m['ram_gb']}GB torch_threads={m.get('torch_threads')}")
    print(table(
        f"Text paths on CPU, {len(texts)} passages of {name} (best of {args.rounds}, alternating)",
        ["path", "engine", "chunks/s", "× raw ST", "mean cos vs raw", "min cos", "MRR@10", "load s"],
        [[p, engines[p], rate[p], rate[p] / rate["sentence-transformers"], float(cos[p].mean()), float(cos[p].min()),
          evals.get(p, {}).get("mrr", "-"), load_s[p]] for p in PATHS],
    ))
    write_json(args.json_out, {
        "benchmark": "onnx_text", "passages": len(texts), "corpus": name, "times_s": times, "chunks_per_s": rate,
        "speedup_vs_raw": {p: rate[p] / rate["sentence-transformers"] for p in PATHS}, "engines": engines,
        "cos_mean": {p: float(cos[p].mean()) for p in PATHS}, "cos_min": {p: float(cos[p].min()) for p in PATHS},
        "eval": evals, "load_s": load_s,
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
