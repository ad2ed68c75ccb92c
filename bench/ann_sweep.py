"""ANN settings sweep on a store kept by bench_query.py: recall@10 vs exact and latency.

Each argument is ``nprobes,ef,refine`` (refine -1 = fetch the vectors and re-rank
them in numpy instead of LanceDB's refine). The queries are bench_query's 20 typed
queries plus 40 sentences from the corpus, embedded with the real text model.

    LODESTAR_BENCH_KEEP=1 .venv/bin/python bench/bench_query.py --sizes 1000000   # once
    .venv/bin/python bench/ann_sweep.py 1000000 16,300,1 12,300,1 8,300,1

The first argument is the chunk count of bench_query's kept store (real vectors),
or the path of a store.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_query import QUERIES, kept_store, sentences

FETCH = 170  # the searcher's vector_k (150) + 20


def main(argv: list[str]) -> int:
    import lancedb

    from models.text import TextEmbedder

    if len(argv) < 2:
        print(__doc__)
        return 2
    db = lancedb.connect(kept_store(int(argv[0]), "real") if argv[0].isdigit() else argv[0])
    name = next(n for n in getattr(db.list_tables(), "tables", db.list_tables()) if n.startswith("chunks__"))
    table = db.open_table(name)
    arrow = table.to_arrow().select(["fid", "start", "vector"])
    n = arrow.num_rows
    vecs = np.asarray(arrow.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False), np.float32).reshape(n, -1)
    keys = [f"{f}:{s}" for f, s in zip(arrow.column("fid").to_pylist(), arrow.column("start").to_pylist())]
    text = TextEmbedder()
    queries = QUERIES + random.Random(5).sample(sentences(), 40)
    qv = np.asarray([text.embed_query(q) for q in queries], np.float32)
    truth = [{keys[i] for i in np.argsort(-row)[:10]} for row in qv @ vecs.T]
    print(f"{n} rows; indexes: {[ix.name for ix in table.list_indices()]}")
    for spec in argv[1:]:
        nprobes, ef, refine = (int(x) for x in spec.split(","))
        hits, times = 0, []
        for qi, q in enumerate(qv):
            started = time.perf_counter()
            query = table.search(q, vector_column_name="vector").distance_type("cosine").nprobes(nprobes).ef(ef)
            if refine > 0:
                query = query.refine_factor(refine)
            cols = ["fid", "start", "text", "end", "file_hash", "_distance"] + (["vector"] if refine < 0 else [])
            res = query.select(cols).limit(FETCH).to_arrow()
            got = [f"{f}:{s}" for f, s in zip(res.column("fid").to_pylist(), res.column("start").to_pylist())]
            if refine < 0:
                v = np.asarray(res.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False), np.float32)
                got = [got[i] for i in np.argsort(-(v.reshape(res.num_rows, -1) @ q))]
            times.append((time.perf_counter() - started) * 1000)
            hits += len(truth[qi] & set(got[:10]))
        print(f"nprobes {nprobes:3d} ef {ef:4d} refine {refine:2d}: recall@10 {hits / len(qv) / 10:.3f}  "
              f"p50 {np.percentile(times, 50):.1f} ms  p95 {np.percentile(times, 95):.1f} ms", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
