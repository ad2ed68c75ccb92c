"""Text backends on CPU: torch vs ONNX Runtime fp32 vs ONNX int8, same chunks, same run.

Throughput: ``TextEmbedder(backend=...).embed_documents`` (same slicing, same batch
size) on the passages of a pyfaq sample, rounds alternating between backends;
best round of each kept. Agreement: mean / min cosine between each backend's
vectors and torch's on those passages.

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

BACKENDS = ("torch", "onnx", "onnx-int8")


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
    embs: dict[str, Any] = {}
    load_s: dict[str, float] = {}
    for b in BACKENDS:
        t = time.perf_counter()
        e = TextEmbedder(device="cpu", backend=b)
        e.load()
        e.embed_documents(texts[:16])
        load_s[b] = time.perf_counter() - t
        embs[b] = e
    times: dict[str, list[float]] = {b: [] for b in BACKENDS}
    vecs: dict[str, np.ndarray] = {}
    for _ in range(args.rounds):
        for b in BACKENDS:
            t = time.perf_counter()
            vecs[b] = embs[b].embed_documents(texts)
            times[b].append(time.perf_counter() - t)
    rate = {b: len(texts) / min(times[b]) for b in BACKENDS}
    cos = {b: (vecs[b] * vecs["torch"]).sum(axis=1) for b in BACKENDS}
    evals = {}
    for spec in args.eval:
        b, _, d = spec.partition("=")
        evals[b] = run_eval(b, d)
    m = machine()
    print(f"machine: {m['cpu']} nproc={m['nproc']} ram={m['ram_gb']}GB torch_threads={m.get('torch_threads')}")
    print(table(
        f"Text backends on CPU, {len(texts)} passages of {name} (best of {args.rounds}, alternating)",
        ["backend", "chunks/s", "× torch", "mean cos vs torch", "min cos", "MRR@10", "load s"],
        [[b, rate[b], rate[b] / rate["torch"], float(cos[b].mean()), float(cos[b].min()),
          evals.get(b, {}).get("mrr", "-"), load_s[b]] for b in BACKENDS],
    ))
    write_json(args.json_out, {
        "benchmark": "onnx_text", "passages": len(texts), "corpus": name, "times_s": times, "chunks_per_s": rate,
        "speedup_vs_torch": {b: rate[b] / rate["torch"] for b in BACKENDS},
        "cos_mean": {b: float(cos[b].mean()) for b in BACKENDS}, "cos_min": {b: float(cos[b].min()) for b in BACKENDS},
        "eval": evals, "load_s": load_s,
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
