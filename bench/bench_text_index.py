"""Text indexing throughput through the real pipeline vs the bare model, same run.

For each corpus (the pyfaq docs and a generated markdown corpus) it indexes the
folder with ``IndexService`` on a fresh temporary data directory and the real
bundled all-MiniLM-L6-v2, recording exactly which passages the pipeline sent to
the model. It then times ``SentenceTransformer.encode`` on those same passages
with the same batch size. Runs alternate (pipeline, raw, pipeline, raw...) and
the best of each is kept, so a neighbour's burst of CPU hurts both sides alike.

ratio = pipeline chunks/s ÷ raw encode chunks/s  (target ≥ 0.9: the pipeline's
scan, extraction, chunking, hashing and LanceDB writes cost < 10%). With
``--backend onnx``/``onnx-int8`` the raw baseline stays torch's encode, so the ratio
is then the backend's speed-up including pipeline overhead. ``model_s_in_pipeline``
in the JSON is the time spent inside the model during the pipeline run.

    .venv/bin/python bench/bench_text_index.py --json bench/out/text_index.json
    .venv/bin/python bench/bench_text_index.py --gen-files 300 --repeats 1 --backend onnx
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np
from _common import PYFAQ_DOCS, SCRATCH, machine, make_text_corpus, table, tree_bytes, write_json


class RecordingEmbedder:
    """Wraps a TextEmbedder and keeps the passages it is asked to embed (cheap: a list)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dim = inner.dim
        self.texts: list[str] = []
        self.embed_s = 0.0

    def load(self) -> None:
        self.inner.load()

    def embed_documents(self, items: Sequence[str]) -> np.ndarray:
        self.texts.extend(items)
        t = time.perf_counter()
        out = self.inner.embed_documents(items)
        self.embed_s += time.perf_counter() - t
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)


def run_pipeline(root: Path, embedder: Any, threads: int) -> dict[str, Any]:
    from indexer.ingest.pipeline import IndexService
    from indexer.library.settings import Settings, open_paths
    from indexer.store.tables import Store

    rec = RecordingEmbedder(embedder)
    with tempfile.TemporaryDirectory(prefix="lodestar-bench-text-") as tmp:
        paths = open_paths(Path(tmp) / "data")
        settings = Settings(folders=[str(root)], allow_download=False)
        store = Store(paths.store, text_model=(rec.model_id, rec.dim))
        svc = IndexService(store, paths, settings, rec, None, threads=threads)
        t = time.perf_counter()
        summary = svc.index_roots([str(root)])
        elapsed = time.perf_counter() - t
        counts = store.counts()
        store.close()
    return {
        "elapsed_s": elapsed,
        "files": summary.new,
        "failed": summary.failed,
        "chunks_stored": counts["chunks"],
        "chunks_embedded": len(rec.texts),
        "model_s": rec.embed_s,
        "texts": rec.texts,
    }


def run_raw(model: Any, texts: list[str], batch_size: int) -> float:
    t = time.perf_counter()
    model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    return time.perf_counter() - t


def bench_corpus(name: str, root: Path, embedder: Any, repeats: int, threads: int) -> dict[str, Any]:
    model = getattr(embedder._backend, "model", None)  # the loaded SentenceTransformer (torch backend)
    if model is None:  # the product runs the light ONNX path: the baseline stays raw fp32 torch encode
        from sentence_transformers import SentenceTransformer

        from models.text import bundled_model_dir

        model = SentenceTransformer(str(bundled_model_dir()), device="cpu")
    nbytes = tree_bytes(root)
    pipe_times: list[float] = []
    raw_times: list[float] = []
    last: dict[str, Any] = {}
    for _ in range(repeats):
        last = run_pipeline(root, embedder, threads)
        pipe_times.append(last["elapsed_s"])
        raw_times.append(run_raw(model, last["texts"], embedder.batch_size))
    n = last["chunks_embedded"]
    pipe, raw = min(pipe_times), min(raw_times)
    return {
        "corpus": name,
        "root": str(root),
        "files": last["files"],
        "failed": last["failed"],
        "mb": nbytes / 1e6,
        "chunks": n,
        "chunks_stored": last["chunks_stored"],
        "pipeline_s": pipe_times,
        "raw_s": raw_times,
        "model_s_in_pipeline": last["model_s"],
        "pipeline_chunks_per_s": n / pipe,
        "pipeline_mb_per_s": nbytes / 1e6 / pipe,
        "raw_chunks_per_s": n / raw,
        "ratio": raw / pipe,
        "batch_size": embedder.batch_size,
    }


def pyfaq_sample(docs: Path, n: int) -> tuple[str, Path]:
    """The whole pyfaq folder, or every k-th file of it copied to the scratch folder (spans all sections)."""
    files = sorted(p for p in docs.rglob("*") if p.is_file())
    if n <= 0 or n >= len(files):
        return "pyfaq (all)", docs
    step = len(files) / n
    picked = [files[int(i * step)] for i in range(n)]
    dest = SCRATCH / f"pyfaq-sample-{n}"
    if not (dest / ".complete").exists():
        for p in picked:
            target = dest / p.relative_to(docs)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, target)
        (dest / ".complete").touch()
    return f"pyfaq ({n} of {len(files)} files)", dest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pyfaq", default=str(PYFAQ_DOCS), help="pyfaq docs folder ('' to skip)")
    ap.add_argument("--pyfaq-files", type=int, default=40,
                    help="index a deterministic sample of this many pyfaq files (0: all 472, ~26k chunks)")
    ap.add_argument("--gen-files", type=int, default=200, help="generated corpus size in files (0 to skip)")
    ap.add_argument("--gen-kb", type=int, default=6, help="KB per generated file")
    ap.add_argument("--gen-dir", default=str(SCRATCH / "textgen"))
    ap.add_argument("--repeats", type=int, default=1, help="alternating pipeline/raw rounds; best of each is kept")
    ap.add_argument("--threads", type=int, default=2, help="IndexService extraction threads")
    ap.add_argument("--backend", default="torch", help="text backend: torch | onnx | onnx-int8 (models.text)")
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args(argv)

    from models.text import TextEmbedder

    kwargs: dict[str, Any] = {}
    if args.backend != "torch":
        kwargs["backend"] = args.backend
    embedder = TextEmbedder(device="cpu", **kwargs)
    embedder.load()
    embedder.embed_documents(["warm up the model", "and the tokenizer"] * 8)

    corpora: list[tuple[str, Path]] = []
    if args.pyfaq and Path(args.pyfaq).is_dir():
        corpora.append(pyfaq_sample(Path(args.pyfaq), args.pyfaq_files))
    if args.gen_files > 0:
        gen = make_text_corpus(Path(args.gen_dir) / f"{args.gen_files}x{args.gen_kb}k", args.gen_files, args.gen_kb)
        corpora.append((f"generated {args.gen_files}x{args.gen_kb}KB", gen))

    results = []
    for name, root in corpora:
        r = bench_corpus(name, root, embedder, args.repeats, args.threads)
        results.append(r)
        print(f"{name}: {r['chunks']} chunks, pipeline {r['pipeline_chunks_per_s']:.3g}/s, "
              f"raw {r['raw_chunks_per_s']:.3g}/s, ratio {r['ratio']:.3f}", flush=True)
    m = machine()
    print(f"machine: {m['cpu']} nproc={m['nproc']} ram={m['ram_gb']}GB torch_threads={m.get('torch_threads')} backend={args.backend}")
    print(
        table(
            "Text indexing: pipeline vs SentenceTransformer.encode on the same chunks (same run)",
            ["corpus", "files", "MB", "chunks", "pipeline chunks/s", "pipeline MB/s", "raw chunks/s", "ratio", "target"],
            [
                [r["corpus"], r["files"], r["mb"], r["chunks"], r["pipeline_chunks_per_s"], r["pipeline_mb_per_s"],
                 r["raw_chunks_per_s"], r["ratio"], "≥0.9 " + ("met" if r["ratio"] >= 0.9 else "MISSED")]
                for r in results
            ],
        )
    )
    write_json(args.json_out, {"benchmark": "text_index", "backend": args.backend, "threads": args.threads, "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
