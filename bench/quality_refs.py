"""The four reference rankings of ../shared/eval/README.md, measured outside the product.

All use all-MiniLM-L6-v2 on the same files (read as UTF-8 text) and score the ranked files
with MRR@10 / Recall@10 (`indexer.search.eval.score_ranking`, the scorer `lodestar eval` uses):

- ``whole``: one vector per file (the model truncating at its 256 word pieces), cosine;
- ``chunk``: 1,000-character chunks with 200 characters of overlap, a file scores its best chunk;
- ``keyword``: LanceDB full-text search (BM25, the product's index settings) over the same
  chunks, a file scores its best chunk;
- ``rrf``: reciprocal-rank fusion (k = 60) of the ``chunk`` and ``keyword`` file rankings.

Vectors go through a `VectorCache` (one folder per model and backend, keyed by a hash of
the text): a corpus is embedded once, whatever runs it next.

    .venv/bin/python bench/quality_refs.py ../shared/eval/pyfaq [more set folders] [--cache DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, SCRATCH

REF_CHUNK = 1000
REF_OVERLAP = 200
RRF_K = 60
K = 10
CACHE_ROOT = SCRATCH / "qcache"
MODEL_TAG = "all-MiniLM-L6-v2"

Embed = Callable[[Sequence[str]], np.ndarray]


# ------------------------------------------------------------------ vector cache
def text_key(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


class VectorCache:
    """Unit vectors by text, in ``folder`` (``part-*.npz`` files of ``keys`` + ``vectors``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._vecs: dict[str, np.ndarray] = {}
        for part in sorted(folder.glob("part-*.npz")):
            self._load(part)

    def _load(self, part: Path) -> int:
        with np.load(part) as z:
            keys, vecs = z["keys"], z["vectors"].astype(np.float32)
        for k, v in zip(keys.tolist(), vecs):
            self._vecs[str(k)] = v
        return len(keys)

    def __contains__(self, text: str) -> bool:
        return text_key(text) in self._vecs

    def __len__(self) -> int:
        return len(self._vecs)

    def missing(self, texts: Sequence[str]) -> list[str]:
        seen: set[str] = set()
        out = []
        for t in texts:
            k = text_key(t)
            if k not in self._vecs and k not in seen:
                seen.add(k)
                out.append(t)
        return out

    def add(self, texts: Sequence[str], vecs: np.ndarray) -> None:
        if not len(texts):
            return
        keys = [text_key(t) for t in texts]
        part = self.folder / f"part-{time.strftime('%Y%m%d-%H%M%S')}-{len(list(self.folder.glob('part-*.npz'))):04d}.npz"
        np.savez(part, keys=np.array(keys), vectors=np.asarray(vecs, np.float32))
        for k, v in zip(keys, np.asarray(vecs, np.float32)):
            self._vecs[k] = v

    def import_npz(self, path: Path) -> int:
        """Merge an `embed_texts.py` output (keys are `text_key`s) into the cache."""
        target = self.folder / f"part-import-{path.stem}-{int(time.time())}.npz"
        with np.load(path) as z:
            np.savez(target, keys=z["keys"], vectors=z["vectors"].astype(np.float32))
        return self._load(target)

    def get(self, texts: Sequence[str], embed: Embed | None = None) -> np.ndarray:
        """Vectors of ``texts`` in order; misses are embedded with ``embed`` (or raise KeyError)."""
        miss = self.missing(texts)
        if miss:
            if embed is None:
                raise KeyError(f"{len(miss)} texts are not in {self.folder} (first: {miss[0][:80]!r})")
            for i in range(0, len(miss), 2048):
                part = miss[i : i + 2048]
                self.add(part, embed(part))
        if not texts:
            return np.zeros((0, 384), np.float32)
        return np.stack([self._vecs[text_key(t)] for t in texts])


def cache_for(backend: str, root: Path = CACHE_ROOT) -> VectorCache:
    return VectorCache(root / f"{MODEL_TAG}-{backend}")


def model_embedder(backend: str = "torch") -> Embed:
    """The product's text model class with the given backend (torch = fp32 sentence-transformers)."""
    from models.text import TextEmbedder

    te = TextEmbedder(backend=backend)
    te.load()
    return lambda texts: np.asarray(te.embed_documents(list(texts)), np.float32)


# ------------------------------------------------------------------ sets
def read_set(set_dir: Path) -> tuple[dict[str, str], list[Any]]:
    """(relative path -> file text, labelled queries) of a set folder with docs/ and queries.jsonl."""
    from indexer.search.eval import load_queries

    docs_dir = set_dir / "docs"
    docs = {
        p.relative_to(docs_dir).as_posix(): p.read_bytes().decode("utf-8", errors="replace")
        for p in sorted(docs_dir.rglob("*"))
        if p.is_file()
    }
    return docs, load_queries(set_dir / "queries.jsonl")


def ref_chunks(text: str, size: int = REF_CHUNK, overlap: int = REF_OVERLAP) -> list[str]:
    """Fixed windows of ``size`` characters, ``overlap`` shared with the next (whitespace-only ones dropped)."""
    step = size - overlap
    out = []
    for start in range(0, max(1, len(text)), step):
        piece = text[start : start + size]
        if piece.strip():
            out.append(piece)
        if start + size >= len(text):
            break
    return out


def score(rankings: dict[str, list[str]], queries: Sequence[Any], k: int = K) -> dict[str, float]:
    from indexer.search.eval import score_ranking

    mrr = rec = 0.0
    for q in queries:
        rank, recall, _ = score_ranking(rankings.get(q.query, []), q.relevant, k)
        mrr += 1.0 / rank if rank else 0.0
        rec += recall
    n = max(1, len(queries))
    return {"mrr": mrr / n, "recall": rec / n}


def rrf(*rankings: Sequence[str], k: int = RRF_K, weights: Sequence[float] | None = None) -> list[str]:
    scores: dict[str, float] = {}
    for j, ranking in enumerate(rankings):
        w = 1.0 if weights is None else weights[j]
        for i, path in enumerate(ranking):
            scores[path] = scores.get(path, 0.0) + w / (k + i + 1)
    return sorted(scores, key=lambda p: -scores[p])


def best_per_file(owner: Sequence[str], sims: np.ndarray, limit: int = 100) -> list[str]:
    """Files ordered by their best row's score."""
    best: dict[str, float] = {}
    for i in np.argsort(-sims, kind="stable"):
        f = owner[int(i)]
        if f not in best:
            best[f] = float(sims[i])
            if len(best) >= limit:
                break
    return list(best)


def keyword_rankings(owner: Sequence[str], texts: Sequence[str], queries: Sequence[Any], limit: int = 300) -> dict[str, list[str]]:
    """BM25 over ``texts`` with LanceDB's FTS (the product's index settings); files by best chunk."""
    import lancedb
    import pyarrow as pa
    from lancedb.index import FTS

    with tempfile.TemporaryDirectory(prefix="lodestar-refs-") as tmp:
        db = lancedb.connect(tmp)
        table = db.create_table("chunks", pa.table({"row": list(range(len(texts))), "text": list(texts)}))
        table.create_index("text", config=FTS(with_position=False), replace=True)
        out: dict[str, list[str]] = {}
        for q in queries:
            words = " ".join(re.findall(r"\w+", q.query))
            if not words:
                out[q.query] = []
                continue
            hits = table.search(words, query_type="fts").select(["row", "_score"]).limit(limit).to_arrow()
            ranked: list[str] = []
            for r in hits.column("row").to_pylist():
                f = owner[r]
                if f not in ranked:
                    ranked.append(f)
            out[q.query] = ranked
        return out


def references(set_dir: Path, cache: VectorCache, embed: Embed | None) -> dict[str, dict[str, float]]:
    """The four reference figures of one set, vectors through ``cache``."""
    docs, queries = read_set(set_dir)
    paths = list(docs)
    owner: list[str] = []
    chunks: list[str] = []
    for p in paths:
        for c in ref_chunks(docs[p]):
            owner.append(p)
            chunks.append(c)
    qtexts = [q.query for q in queries]
    qv = cache.get(qtexts, embed)
    dv = cache.get([docs[p] for p in paths], embed)
    cv = cache.get(chunks, embed)
    whole = {q.query: [paths[i] for i in np.argsort(-(dv @ qv[j]), kind="stable")[:100]] for j, q in enumerate(queries)}
    chunk = {q.query: best_per_file(owner, cv @ qv[j]) for j, q in enumerate(queries)}
    keyword = keyword_rankings(owner, chunks, queries)
    fused = {q.query: rrf(chunk[q.query], keyword[q.query]) for q in queries}
    return {
        "whole": score(whole, queries),
        "chunk": score(chunk, queries),
        "keyword": score(keyword, queries),
        "rrf": score(fused, queries),
    }


def reference_texts(set_dir: Path) -> list[str]:
    """Every text the references embed (queries, whole files, 1000/200 chunks)."""
    docs, queries = read_set(set_dir)
    out = [q.query for q in queries] + list(docs.values())
    for t in docs.values():
        out += ref_chunks(t)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sets", nargs="+", type=Path, help="set folders (docs/ + queries.jsonl)")
    ap.add_argument("--cache", type=Path, default=CACHE_ROOT, help=f"vector cache root (default {CACHE_ROOT})")
    ap.add_argument("--no-embed", action="store_true", help="fail instead of embedding texts missing from the cache")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    cache = cache_for("torch", args.cache)
    embed = None if args.no_embed else model_embedder("torch")
    out = {s.name: references(s, cache, embed) for s in args.sets}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
