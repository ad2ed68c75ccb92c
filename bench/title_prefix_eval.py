"""Does prefixing each chunk with its file's title/heading help retrieval?

Embeds every chunk of an eval set twice — as `chunk.text` alone and as
`embedding_input(chunk, title)` (title — heading prefix) — with the same model in
the same run, ranks files by their best chunk for each query, and prints
MRR@10 / Recall@10 for both. This isolates the embedding-input choice from
the rest of ranking (keyword fusion, priors).

    .venv/bin/python bench/title_prefix_eval.py ../shared/eval/pyfaq [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from indexer.ingest.chunk import chunk_text, embedding_input
from indexer.ingest.extract import extract_text, has_markup_headings
from indexer.library.settings import Settings
from models.text import TextEmbedder


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("eval_dir", help="a folder with docs/ and queries.jsonl")
    ap.add_argument("--json", metavar="OUT")
    args = ap.parse_args()
    root = Path(args.eval_dir) / "docs"
    queries = [json.loads(line) for line in (Path(args.eval_dir) / "queries.jsonl").read_text().splitlines() if line.strip()]

    settings = Settings()
    files: list[str] = []
    plain: list[str] = []
    prefixed: list[str] = []
    owner: list[int] = []
    for dirpath, _dirs, names in os.walk(root):
        for name in sorted(names):
            path = os.path.join(dirpath, name)
            ext = extract_text(path, settings)
            chunks = chunk_text(ext.text, ext.title, headings=has_markup_headings(path))
            files.append(os.path.relpath(path, root))
            for c in chunks:
                plain.append(c.text)
                prefixed.append(embedding_input(c, ext.title))
                owner.append(len(files) - 1)
    owner_arr = np.asarray(owner)
    emb = TextEmbedder()
    emb.load()
    qv = np.stack([emb.embed_query(q["query"]) for q in queries])
    results = {}
    for label, texts in (("chunk text only", plain), ("title — heading prefix", prefixed)):
        t0 = time.perf_counter()
        vecs = emb.embed_documents(texts)
        secs = time.perf_counter() - t0
        sims = qv @ vecs.T  # [queries, chunks]
        mrr = recall = 0.0
        for qi, q in enumerate(queries):
            best = np.full(len(files), -np.inf)
            np.maximum.at(best, owner_arr, sims[qi])
            top = [files[i] for i in np.argsort(-best)[:10]]
            rel = set(q["relevant"])
            ranks = [r for r, f in enumerate(top, 1) if f in rel]
            if ranks:
                mrr += 1.0 / ranks[0]
                recall += 1.0
        n = len(queries)
        results[label] = {"mrr10": round(mrr / n, 4), "recall10": round(recall / n, 4), "embed_s": round(secs, 1)}
    print(f"{len(files)} files, {len(plain)} chunks, {len(queries)} queries ({args.eval_dir})")
    print(f"{'embedding input':<26} {'MRR@10':>7} {'R@10':>6} {'embed s':>8}")
    for label, r in results.items():
        print(f"{label:<26} {r['mrr10']:>7.3f} {r['recall10']:>6.3f} {r['embed_s']:>8.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
