"""Retrieval quality of the default ranking on the shared labelled sets (docs/SEARCH.md).

Index each set once, then run this (cheap: query embeddings are computed once); from
the repository root, with the sets in ``../shared/eval`` (``--eval-dir`` elsewhere)::

    .venv/bin/lodestar index ../shared/eval/pyfaq/docs --data-dir bench/out/eval-pyfaq
    .venv/bin/lodestar index ../shared/eval/pyfaq-long/docs --data-dir bench/out/eval-pyfaq-long
    .venv/bin/python bench/eval_quality.py            # default Ranking on both sets
    .venv/bin/python bench/eval_quality.py --set length_prior=0 --set keyword_weight=0.22

``--set`` changes one `indexer.search.ranking.Ranking` field for an ablation; the product
always uses the defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import EVAL_DIR, REPO


class CachedEmbedder:
    """The real text model, memoised: sweeps re-rank without re-embedding queries."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dim = inner.dim
        self._memo: dict[str, Any] = {}

    def embed_query(self, text: str) -> Any:
        if text not in self._memo:
            self._memo[text] = self.inner.embed_query(text)
        return self._memo[text]

    def embed_documents(self, items: Any) -> Any:
        return self.inner.embed_documents(items)


def run(sets: list[str], overrides: dict[str, float], eval_dir: Path, data_root: Path) -> dict[str, Any]:
    """Each set's queries (``eval_dir/<set>``) against its index (``data_root/eval-<set>``)."""
    from indexer.library.settings import load_settings, open_paths
    from indexer.search.eval import evaluate, load_queries
    from indexer.search.ranking import Ranking, Searcher
    from indexer.store.ann import ensure_indexes
    from indexer.store.tables import Store
    from models.text import TextEmbedder

    text = TextEmbedder()
    text.load()
    emb = CachedEmbedder(text)
    ranking = dataclasses.replace(Ranking(), **overrides)
    out: dict[str, Any] = {"ranking": dataclasses.asdict(ranking)}
    for name in sets:
        root, data_dir = eval_dir / name, data_root / f"eval-{name}"
        paths = open_paths(data_dir)
        load_settings(paths)
        store = Store(paths.store, text_model=(emb.model_id, emb.dim))
        ensure_indexes(store)  # a no-op when `lodestar index` already built them
        searcher = Searcher(store, emb, None, paths=paths, ranking=ranking)
        queries = load_queries(f"{root}/queries.jsonl")
        search = functools.partial(searcher.search, kind="text", limit=10)
        evaluate(search, queries[:5], f"{root}/docs")  # warm
        report = evaluate(search, queries, f"{root}/docs")
        out[name] = report.summary()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="pyfaq,pyfaq-long")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a Ranking field")
    ap.add_argument("--eval-dir", type=Path, default=EVAL_DIR, help="folder holding the labelled sets")
    ap.add_argument("--data-root", type=Path, default=REPO / "bench" / "out",
                    help="folder holding the sets' indexes, one eval-<set> data dir each")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    overrides = {k: float(v) for k, v in (s.split("=", 1) for s in args.set)}
    for k in ("vector_k", "keyword_k"):
        if k in overrides:
            overrides[k] = int(overrides[k])  # type: ignore[assignment]
    result = run(args.sets.split(","), overrides, args.eval_dir, args.data_root)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{'set':<12} {'MRR@10':>7} {'R@10':>6} {'nDCG@10':>8} {'p50 ms':>7} {'p95 ms':>7} {'passage':>8}")
    for name in args.sets.split(","):
        r = result[name]
        span = f"{r['span_overlap']:.3f}" if r["span_overlap"] is not None else "-"
        print(f"{name:<12} {r['mrr']:>7.3f} {r['recall']:>6.3f} {r['ndcg']:>8.3f} {r['p50_ms']:>7.1f} {r['p95_ms']:>7.1f} {span:>8}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
