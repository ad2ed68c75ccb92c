"""File-level ranking signals measured on the product's own candidates (docs/SEARCH.md,
"Whole-file signals on the shipped chunker").

For each set the study's kept store (`quality_study.py run --variants s600 --keep DIR`) is
searched by the product's `Searcher` with no cut; the candidates `_group` receives are kept
per query, with each file's passage vectors. Each shape then ranks the files, the product's
floor and gap cut the list, and MRR@10 / Recall@10 are printed. Queries with a quoted phrase
keep the product's answer (a shape cannot add a file that lacks the phrase).

Shapes: the shipped length prior; the first passage ("lead") exempt from it; the file's mean
vector (centroid) as max(…) or added; the prior divided by the file's coherence (the mean
cosine between its passages, i.e. an effective number of independent passages).

    .venv/bin/python bench/ranking_shapes.py $SETS --keep /tmp/qstores
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality_study as qs
from quality_refs import score

FLOOR, GAP, PRIOR = 0.25, 0.30, 0.06
Ranker = Callable[[dict[str, Any], dict[str, list[tuple[float, int]]], dict[str, Any]], dict[str, float]]


def collect(set_dir: Path, keep: Path, variant: str) -> dict[str, Any]:
    from indexer.search.eval import load_queries
    from indexer.search.ranking import Ranking, Searcher

    emb = qs.CachedTextEmbedder(qs.cache_for("torch", qs.CACHE_ROOT), "torch")
    _docs, queries = qs.read_set(set_dir)
    with tempfile.TemporaryDirectory() as tmp:
        store, paths = qs.kept_store(set_dir, variant, emb, keep, Path(tmp))
        root = (set_dir / "docs").resolve()
        files = store.files()
        rel = {fid: Path(r.path).resolve().relative_to(root).as_posix() for fid, r in files.items()}
        arrow = store.chunks_table().search().select(["fid", "ord", "vector"]).limit(None).to_arrow()
        vecs = np.asarray(arrow.column("vector").combine_chunks().flatten().to_numpy(), np.float32).reshape(arrow.num_rows, -1)
        rows: dict[str, list[tuple[int, np.ndarray]]] = {}
        for f, o, v in zip(arrow.column("fid").to_pylist(), arrow.column("ord").to_pylist(), vecs):
            if f in rel:
                rows.setdefault(rel[f], []).append((o, v))
        filevecs = {p: np.stack([v for _o, v in sorted(r, key=lambda x: x[0])]) for p, r in rows.items()}
        searcher = Searcher(store, emb, None, paths=paths, ranking=dataclasses.replace(Ranking(), floor=-1.0, gap=9.0))
        seen: list[tuple[str, int, float]] = []
        group = searcher._group

        def keep_cands(cands: Any, files_: Any, limit: int, **kw: Any) -> Any:
            seen[:] = [(rel[c.fid], c.start, c.score) for c in cands]
            return group(cands, files_, limit, **kw)

        searcher._group = keep_cands  # type: ignore[method-assign]
        per = []
        for q in load_queries(set_dir / "queries.jsonl"):
            resp = searcher.search(q.query, kind="text", limit=200)
            per.append({"query": q.query, "cands": list(seen), "qvec": np.asarray(emb.embed_query(q.query), np.float32),
                        "shown": [Path(r.path).resolve().relative_to(root).as_posix() for r in resp.results]})
        searcher.close()
    unit = lambda v: v / max(float(np.linalg.norm(v)), 1e-12)
    coherence = {}
    for p, v in filevecs.items():
        n, m = len(v), v.sum(0)
        coherence[p] = float((m @ m - n) / (n * (n - 1))) if n > 1 else 1.0
    return {"per": per, "queries": queries, "n": {p: len(v) for p, v in filevecs.items()},
            "lead": {p: unit(v[0]) for p, v in filevecs.items()}, "centroid": {p: unit(v.mean(0)) for p, v in filevecs.items()},
            "coherence": coherence}


def evaluate(data: dict[str, Any], ranker: Ranker) -> dict[str, float]:
    ranked = {}
    for q in data["per"]:
        if '"' in q["query"]:
            ranked[q["query"]] = q["shown"]
            continue
        groups: dict[str, list[tuple[float, int]]] = {}
        for p, start, sc in q["cands"]:
            groups.setdefault(p, []).append((sc, start))
        for g in groups.values():
            g.sort(reverse=True)
        fs = ranker(q, groups, data)
        order = sorted(groups, key=lambda p: -fs[p])
        if groups:
            cut = max(FLOOR, max(g[0][0] for g in groups.values()) - GAP)
            order = [p for p in order if groups[p][0][0] >= cut]
        ranked[q["query"]] = order
    return score(ranked, data["queries"])


def shipped(p: float = PRIOR) -> Ranker:
    return lambda q, g, d: {f: v[0][0] - p * math.log(d["n"].get(f, 1)) for f, v in g.items()}


def lead_exempt(margin: float) -> Ranker:
    def rank(q: dict[str, Any], g: dict[str, list[tuple[float, int]]], d: dict[str, Any]) -> dict[str, float]:
        out = {}
        for f, v in g.items():
            lead = [s for s, start in v if start == 0]
            lead_score = lead[0] if lead else float(d["lead"][f] @ q["qvec"])
            out[f] = max(v[0][0] - PRIOR * math.log(d["n"].get(f, 1)), lead_score - margin)
        return out
    return rank


def centroid_max(margin: float) -> Ranker:
    return lambda q, g, d: {f: max(v[0][0] - PRIOR * math.log(d["n"].get(f, 1)), float(d["centroid"][f] @ q["qvec"]) - margin)
                            for f, v in g.items()}


def centroid_add(weight: float) -> Ranker:
    return lambda q, g, d: {f: v[0][0] - PRIOR * math.log(d["n"].get(f, 1)) + weight * float(d["centroid"][f] @ q["qvec"])
                            for f, v in g.items()}


def effective_n(p: float, base: float) -> Ranker:
    def rank(q: dict[str, Any], g: dict[str, list[tuple[float, int]]], d: dict[str, Any]) -> dict[str, float]:
        out = {}
        for f, v in g.items():
            n = d["n"].get(f, 1)
            rho = max(0.0, (d["coherence"].get(f, 0.0) - base) / (1 - base))
            out[f] = v[0][0] - p * math.log(max(1.0, n / (1 + (n - 1) * rho)))
        return out
    return rank


SHAPES: dict[str, Ranker] = {
    "0.06 ln n (shipped)": shipped(),
    "lead exempt, margin 0": lead_exempt(0.0),
    "lead exempt, margin 0.04": lead_exempt(0.04),
    "lead exempt, margin 0.08": lead_exempt(0.08),
    "max(., centroid - 0.05)": centroid_max(0.05),
    "max(., centroid - 0.10)": centroid_max(0.10),
    "+ 0.05 centroid": centroid_add(0.05),
    "+ 0.20 centroid": centroid_add(0.20),
    "0.06 ln n_eff (coherence over 0.2)": effective_n(0.06, 0.2),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sets", nargs="+", type=Path)
    ap.add_argument("--keep", type=Path, required=True, help="the study's kept stores (quality_study.py run --keep)")
    ap.add_argument("--variant", default="s600")
    args = ap.parse_args()
    data = {s.name: collect(s, args.keep, args.variant) for s in args.sets}
    print(f"{'shape':<36}" + "".join(f"{name:>20}" for name in data))
    for name, ranker in SHAPES.items():
        cells = [evaluate(d, ranker) for d in data.values()]
        print(f"{name:<36}" + "".join(f"{c['mrr']:>12.3f} / {c['recall']:.3f}" for c in cells), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
