"""Warm query latency and ANN recall on synthetic stores (docs/SEARCH.md, "Performance").

For each size, builds a store directly through `Store.write` (no model calls for the
corpus): N chunks in N/5 files, plus 20k images. Chunk vectors (``--vectors``):

- ``real`` (default): in the real text model's space. 3,000 passages of 4 real
  English sentences (from the eval documents) are embedded with the real model; each
  chunk is a weighted mix of two of them plus noise (cosine ≈ 0.85 to its main
  passage, whose text it stores). Neighbourhoods have the real embedding geometry;
- ``clustered``: random unit vectors around 512 random centres, unrelated to the
  queries: a query's neighbours are nearly equidistant, a worst case for ANN.

Then it runs the writer's `ensure_indexes` (keyword index; ANN index past the
threshold) and measures, warm:

- end-to-end `Searcher.search(q, kind="all")`: real text-model query embedding +
  CLIP text-tower query embedding (ViT-B-32 with random weights: same compute;
  ``--clip fixed`` replaces it by a fixed vector) + vector search + keyword search +
  names + grouping + image search;
- recall@10 of the chunk search actually used (ANN when built) against exact, over
  the 20 typed queries and 40 sentences taken from the corpus text.

    .venv/bin/python bench/bench_query.py                      # 10k and 100k chunks
    .venv/bin/python bench/bench_query.py --sizes 1000000      # opt-in, takes many minutes
    .venv/bin/python bench/bench_query.py --json
    LODESTAR_BENCH_KEEP=1 .venv/bin/python bench/bench_query.py --reuse   # keep / reuse the stores
    LODESTAR_QUERY_INT8=0 .venv/bin/python bench/bench_query.py    # query towers in fp32 (the baseline)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PYFAQ_DOCS, SCRATCH

QUERIES = [
    "how do I read a file line by line", "budget review for the cloud invoices", "socket timeout error",
    "ERR_QUUX_4711", "what is a generator", "convert a string to a number", "thread pool executor",
    "install a package offline", "regular expression groups", "the meeting notes from March",
    "why is my loop slow", "sort a dictionary by value", "unicode decode error", "parse command line arguments",
    "photos of the beach", "tax return 2024", "copy a list without changing the original",
    "how to handle exceptions", "network configuration", "date formatting",
]


class FixedClip:
    """Stands in for CLIP's text tower: a fixed unit vector per query (weights unavailable offline)."""

    model_id = "bench/clip"
    dim = 512

    def embed_query(self, text: str) -> np.ndarray:
        rng = np.random.default_rng(abs(hash(text)) % (2**32))
        v = rng.standard_normal(self.dim).astype(np.float32)
        return v / np.linalg.norm(v)


def sentences(limit: int = 20000) -> list[str]:
    out: list[str] = []
    for path in sorted((PYFAQ_DOCS / "library").glob("*.txt"))[:200]:
        text = path.read_text(encoding="utf-8", errors="replace")
        out.extend(s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if 40 <= len(s.strip()) <= 300)
        if len(out) >= limit:
            break
    return out or ["The quick brown fox jumps over the lazy dog near the river bank."]


def clustered(n: int, dim: int, rng: np.random.Generator, clusters: int = 512) -> np.ndarray:
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    v = centres[rng.integers(0, clusters, n)] + 0.9 * rng.standard_normal((n, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


BASE_PASSAGES = 3000


def base_passages(text: Any, n: int = BASE_PASSAGES) -> tuple[list[str], np.ndarray]:
    """n passages of 4 real sentences and their real text-model vectors (cached on disk)."""
    pyrng = random.Random(11)
    sents = sentences()
    texts = [" ".join(pyrng.choice(sents) for _ in range(4))[:600] for _ in range(n)]
    cache = SCRATCH / f"base-{n}-{text.dim}.npy"
    if cache.is_file():
        vecs = np.load(cache)
        if vecs.shape == (n, text.dim):
            return texts, vecs
    vecs = np.asarray(text.embed_documents(texts), np.float32)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, vecs)
    return texts, vecs


def real_mix(n: int, base: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Vectors in the real model's space: each a weighted mix of two real passage
    vectors plus noise (cosine ≈ 0.85 to its main passage), so neighbourhoods have the
    real embedding geometry (anisotropy, topic structure). Returns (vectors, main passage)."""
    main = rng.integers(0, len(base), n)
    other = rng.integers(0, len(base), n)
    w = rng.uniform(0.6, 1.0, (n, 1)).astype(np.float32)
    v = w * base[main] + (1 - w) * base[other] + 0.02 * rng.standard_normal((n, base.shape[1])).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v, main


def build(path: Path, n_chunks: int, n_images: int, text_model: tuple[str, int], text: Any = None,
          vectors: str = "real") -> tuple[Any, float]:
    from indexer.store.tables import ChunkRow, FileRecord, ImageRow, Store, WriteBatch, file_id

    if path.exists():
        shutil.rmtree(path)
    store = Store(path, text_model=text_model, image_model=(FixedClip.model_id, FixedClip.dim))
    rng = np.random.default_rng(7)
    pyrng = random.Random(7)
    sents = sentences()
    base_texts, base = base_passages(text) if vectors == "real" else ([], np.zeros((0, 0), np.float32))
    started = time.perf_counter()
    per_file = 5
    n_files = n_chunks // per_file
    step = 2000  # files per commit
    now = time.time_ns()
    for lo in range(0, n_files, step):
        hi = min(n_files, lo + step)
        if vectors == "real":
            vecs, mains = real_mix((hi - lo) * per_file, base, rng)
        else:
            vecs, mains = clustered((hi - lo) * per_file, text_model[1], rng), None
        batch = WriteBatch()
        for f in range(lo, hi):
            p = f"/bench/docs/folder{f % 97}/note-{f}.txt"
            rec = FileRecord(fid=file_id(p), path=p, root="/bench", kind="text", size=3000, mtime_ns=now - f * 10**9,
                             content_hash=f"{f:032x}", state="indexed", text_model=text_model[0], n_chunks=per_file)
            rows = []
            for j in range(per_file):
                if mains is not None:
                    text = base_texts[mains[(f - lo) * per_file + j]]
                else:
                    text = " ".join(pyrng.choice(sents) for _ in range(4))[:600]
                rows.append(ChunkRow(ord=j, text=text, start=j * 600, end=j * 600 + len(text), chunk_hash=f"{f}-{j}",
                                     vector=vecs[(f - lo) * per_file + j]))
            batch.files.append(rec)
            batch.chunks[rec.fid] = rows
        store.write(batch)
    for lo in range(0, n_images, 5000):
        hi = min(n_images, lo + 5000)
        vecs = clustered(hi - lo, FixedClip.dim, rng)
        batch = WriteBatch()
        for i in range(lo, hi):
            p = f"/bench/pictures/img-{i}.jpg"
            rec = FileRecord(fid=file_id(p), path=p, root="/bench", kind="image", size=50000, mtime_ns=now - i * 10**9,
                             content_hash=f"{i + 10**9:032x}", state="indexed", image_model=FixedClip.model_id)
            batch.files.append(rec)
            batch.images[rec.fid] = ImageRow(width=640, height=480, thumb="", vector=vecs[i - lo])
        store.write(batch)
    store.optimize()
    return store, time.perf_counter() - started


def recall_at_10(store: Any, text: Any, searcher: Any) -> float:
    """Chunk-level recall@10 of the search path in use vs exact brute force."""
    from indexer.store.read import EveryFile

    table = store.chunks_table()
    arrow = table.to_arrow()
    n = arrow.num_rows
    vecs = np.asarray(arrow.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False), np.float32).reshape(n, -1)
    keys = [f"{f}:{s}" for f, s in zip(arrow.column("fid").to_pylist(), arrow.column("start").to_pylist())]
    files = store.files()
    hits = total = 0
    for q in QUERIES + random.Random(5).sample(sentences(), 40):
        qv = np.asarray(text.embed_query(q), np.float32)
        exact = {keys[i] for i in np.argsort(-(vecs @ qv))[:10]}
        got = searcher.reader.nearest_chunks(qv, files, EveryFile(), 10, ["fid", "file_hash", "start"])
        hits += len(exact & {f"{r['fid']}:{r['start']}" for r in got})
        total += 10
    return hits / total


def kept_store(n_chunks: int, vectors: str) -> Path:
    """Where the store of this size lives (kept between runs with LODESTAR_BENCH_KEEP=1)."""
    return SCRATCH / f"store-{n_chunks}-{vectors}"


def measure(n_chunks: int, n_images: int, text: Any, clip: Any, reps: int, reuse: bool = False,
            vectors: str = "real") -> dict[str, Any]:
    from indexer.search.ranking import Searcher
    from indexer.store.ann import ensure_indexes, has_vector_index
    from indexer.store.tables import Store

    path = kept_store(n_chunks, vectors)
    marker = path / f".complete-{n_images}"
    if reuse and marker.exists():  # a store kept by an earlier run (LODESTAR_BENCH_KEEP=1)
        store = Store(path, text_model=(text.model_id, text.dim), image_model=(FixedClip.model_id, FixedClip.dim))
        build_s = 0.0
    else:
        store, build_s = build(path, n_chunks, n_images, (text.model_id, text.dim), text, vectors)
    started = time.perf_counter()
    report = ensure_indexes(store)
    index_s = time.perf_counter() - started
    marker.touch()
    searcher = Searcher(store, text, clip)
    for q in QUERIES:  # warm: caches, model, index pages
        searcher.search(q, kind="all", limit=20)
    times: list[float] = []
    text_only: list[float] = []
    for _ in range(reps):
        for q in QUERIES:
            t = time.perf_counter()
            searcher.search(q, kind="all", limit=20)
            times.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            searcher.search(q, kind="text", limit=20)
            text_only.append((time.perf_counter() - t) * 1000)
    emb: list[float] = []
    for q in QUERIES:
        t = time.perf_counter()
        text.embed_query(q + " x")
        emb.append((time.perf_counter() - t) * 1000)
    clip_emb: list[float] = []
    for q in QUERIES:
        t = time.perf_counter()
        clip.embed_query(q + " y")
        clip_emb.append((time.perf_counter() - t) * 1000)
    out = {
        "chunks": n_chunks,
        "images": n_images,
        "build_s": round(build_s, 1),
        "index_s": round(index_s, 1),
        "ann": has_vector_index(store.chunks_table()),
        "ann_built": report.ann_built,
        "p50_ms": round(float(np.percentile(times, 50)), 1),
        "p95_ms": round(float(np.percentile(times, 95)), 1),
        "text_p50_ms": round(float(np.percentile(text_only, 50)), 1),
        "text_p95_ms": round(float(np.percentile(text_only, 95)), 1),
        "embed_p50_ms": round(float(np.percentile(emb, 50)), 1),
        "clip_embed_p50_ms": round(float(np.percentile(clip_emb, 50)), 1),
        "recall10": round(recall_at_10(store, text, searcher), 3),
        # the weight-int8 query copies (models/query_int8.py; LODESTAR_QUERY_INT8=0: fp32)
        "query_int8": {"text": getattr(text._ensure(), "query", None) is not None,
                       "clip": bool(getattr(getattr(clip, "_backend", None), "onnx", None)
                                    and clip._backend.onnx.text_int8)},
    }
    store.close()
    if not os.environ.get("LODESTAR_BENCH_KEEP"):
        shutil.rmtree(path, ignore_errors=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000", help="chunk counts (1000000 is opt-in: many minutes)")
    ap.add_argument("--images", type=int, default=20000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--vectors", choices=["real", "clustered"], default="real")
    ap.add_argument("--clip", choices=["random", "fixed"], default="random",
                    help="CLIP text tower for the image part: ViT-B-32 random weights (same compute) or a fixed vector")
    ap.add_argument("--sequential", action="store_true",
                    help="run a query's parts one after another (the baseline for Searcher's side threads)")
    ap.add_argument("--reuse", action="store_true", help="reuse a store kept by LODESTAR_BENCH_KEEP=1 (skips the build)")
    args = ap.parse_args()
    from models.text import TextEmbedder

    text = TextEmbedder()
    text.load()
    if args.sequential:
        from concurrent.futures import Future

        from indexer.search.ranking import Searcher

        def inline(self: Any, fn: Any, *a: Any) -> Future:
            done: Future = Future()
            done.set_result(fn(*a))
            return done

        Searcher._side = inline  # type: ignore[method-assign]
    clip: Any = FixedClip()
    if args.clip == "random":
        from bench_image_index import make_clip, random_clip_checkpoint

        clip = make_clip(random_clip_checkpoint(), 32)
        FixedClip.model_id, FixedClip.dim = clip.model_id, clip.dim  # the image table's name and width
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        rows.append(measure(size, args.images, text, clip, args.reps, args.reuse, args.vectors))
        if not args.json:
            r = rows[-1]
            print(f"{r['chunks']:>8} chunks + {r['images']} images: build {r['build_s']}s, indexes {r['index_s']}s, "
                  f"ann={r['ann']}; all p50 {r['p50_ms']} ms p95 {r['p95_ms']} ms; text p50 {r['text_p50_ms']} "
                  f"p95 {r['text_p95_ms']} ms; query embedding p50 text {r['embed_p50_ms']} / clip {r['clip_embed_p50_ms']} ms; recall@10 {r['recall10']}; "
                  f"int8 query copies {r['query_int8']}",
                  flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
