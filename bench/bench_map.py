"""The map's figures (docs/MAP.md): layout time and peak memory, neighbours kept, placement.

    .venv/bin/python bench/bench_map.py                    # 10k and 100k points (the table)
    .venv/bin/python bench/bench_map.py --compare          # t-SNE vs UMAP vs PCA at 10k
    .venv/bin/python bench/bench_map.py --sizes 2000       # a quick smoke run

Points are SYNTHETIC: clustered 384-d unit vectors (the text model's size): 40 topics of
5 subtopics each, Gaussian spread around their centres, so neighbours mean something
without a real corpus of 100k documents. Each measurement runs in a fresh child process
(so peak RSS is its own, and numba's JIT warm-up for UMAP is counted in its time); the
layout is `indexer.map.layout`, the product's code (openTSNE); UMAP (umap-learn, not a
dependency: installed for this comparison) is measured beside it with --compare. "10-NN kept": the share of a point's
10 nearest neighbours by cosine that are among its 10 nearest on the map (1,000 sampled
points), against PCA on the same points. "place 1k": 1,000 more points of the same
distribution placed into the kept layout (`layout.place`), and how many of their 10
nearest neighbours (among all points) they land beside. Prints `uptime` before and after:
run it on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DIM = 384
TOPICS = 40
SUBTOPICS = 5


def synthetic(n: int, seed: int = 7) -> np.ndarray:
    """n clustered unit vectors: topic centre + subtopic offset + per-point noise."""
    rng = np.random.default_rng(seed)
    topics = rng.standard_normal((TOPICS, DIM))
    subs = topics[:, None, :] + 0.8 * rng.standard_normal((TOPICS, SUBTOPICS, DIM))
    subs = subs.reshape(TOPICS * SUBTOPICS, DIM)
    which = rng.integers(0, len(subs), n)
    x = subs[which] + 1.1 * rng.standard_normal((n, DIM))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def umap_layout(x: np.ndarray, parallel: bool) -> np.ndarray:
    """The alternative measured against t-SNE (docs/MAP.md §2): UMAP, 15 neighbours, seeded
    (one thread) or not (every core)."""
    import umap

    reducer = umap.UMAP(n_neighbors=15, min_dist=0.1, metric="euclidean", low_memory=True,
                        random_state=None if parallel else 42, n_jobs=-1 if parallel else 1)
    return np.asarray(reducer.fit_transform(x), np.float32)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker(method: str, n: int, place_n: int) -> dict[str, float | str]:
    """One measurement in this process; prints JSON."""
    t0 = time.perf_counter()
    from indexer.map import layout

    x_all = synthetic(n + place_n)
    x, x_new = x_all[:n], x_all[n:]
    base_rss = _rss_mb()
    t_import = time.perf_counter()
    if method == "tsne":  # the product's layout
        import openTSNE  # noqa: F401 - imported first: its time is counted apart from the layout's

        t_import = time.perf_counter()
        xy = layout.tsne_layout(x)
    elif method in ("umap", "umap-parallel"):
        import umap  # noqa: F401 - imported first: its time is counted apart

        t_import = time.perf_counter()
        xy = umap_layout(x, parallel=method == "umap-parallel")
    elif method == "pca":
        xy = layout.pca_layout(x)
    else:
        raise SystemExit(f"unknown method {method}")
    t_fit = time.perf_counter()
    out: dict[str, float | str] = {
        "method": method, "n": n, "import_s": t_import - t0, "fit_s": t_fit - t_import,
        "total_s": t_fit - t0, "peak_rss_mb": _rss_mb(), "data_rss_mb": base_rss,
    }
    out["nn10"] = layout.neighbour_preservation(x, xy, k=10)
    if method == "tsne":
        from indexer.map import regions

        t = time.perf_counter()
        found = regions.find_clusters(xy)
        out["regions_s"] = time.perf_counter() - t
        out["regions"] = float(found.max() + 1) if len(found) else 0.0
    if method != "pca":
        out["pca_nn10"] = layout.neighbour_preservation(x, layout.pca_layout(x), k=10)
    if place_n:
        t = time.perf_counter()
        new_xy, _near = layout.place(x_new, x, xy)
        out["place_s"] = time.perf_counter() - t
        # Where the new points landed: their 10 nearest (by cosine, among all points) vs on the map.
        all_xy = np.vstack([xy, new_xy]).astype(np.float64)
        hi, _ = layout.nearest(x_new, x_all, 11)
        kept = 0.0
        for row in range(place_n):
            p = n + row
            want = [j for j in hi[row] if j != p][:10]
            d = np.sum((all_xy - all_xy[p]) ** 2, axis=1)
            d[p] = np.inf
            kept += len(set(want) & set(np.argpartition(d, 9)[:10].tolist())) / 10
        out["place_nn10"] = kept / place_n
        # What the product does around a placement: read the kept map's vectors, write it again.
        import tempfile

        from indexer.map import keep as keep_mod

        with tempfile.TemporaryDirectory() as tmp:
            kept_map = keep_mod.KeptMap(
                layer="documents", model="bench/384", method="tsne", fids=[f"{i:032x}" for i in range(n)],
                hashes=[f"{i:064x}" for i in range(n)], xy=xy, regions=np.zeros(n, np.int32), clusters=[],
                built_at=0.0, laid_out_at=0.0, laid_out_n=n, changed_since=0, origin=(0.0, 0.0), span=1.0,
                vectors=x)
            t = time.perf_counter()
            keep_mod.save(tmp, kept_map)
            keep_mod.load_vectors(tmp, "documents", n)
            out["keep_s"] = time.perf_counter() - t
            out["keep_mb"] = keep_mod.map_file(tmp, "documents").stat().st_size / 1e6
    return out


def run_child(method: str, n: int, place_n: int) -> dict[str, float | str]:
    cmd = [sys.executable, __file__, "--worker", method, "--n", str(n), "--place", str(place_n)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"method": method, "n": n, "error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "uptime unavailable"


def _f(row: dict[str, float | str], key: str, fmt: str) -> str:
    value = row.get(key)
    return format(value, fmt) if isinstance(value, float | int) else "–"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated point counts")
    ap.add_argument("--compare", action="store_true", help="t-SNE vs UMAP vs PCA at --n (default 10000)")
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--place", type=int, default=1000, help="points placed into the kept layout")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.n, args.place)))
        return 0
    print(f"load before: {_uptime()}")
    print(f"cpus: {os.cpu_count()}; synthetic clustered {DIM}-d unit vectors ({TOPICS}x{SUBTOPICS} clusters)\n")
    if args.compare:
        rows = [run_child(m, args.n, 0) for m in ("tsne", "umap", "umap-parallel", "pca")]
        print("| method | n | import s | layout s | total s (incl. import, JIT) | peak RSS MB | 10-NN kept |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            if "error" in r:
                print(f"| {r['method']} | {r['n']} | error: {r['error']} |||||")
                continue
            print(f"| {r['method']} | {r['n']} | {_f(r, 'import_s', '.1f')} | {_f(r, 'fit_s', '.1f')} | "
                  f"{_f(r, 'total_s', '.1f')} | {_f(r, 'peak_rss_mb', '.0f')} | {_f(r, 'nn10', '.3f')} |")
    else:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
        print("| points | layout s (t-SNE fit) | total s (incl. import) | peak RSS MB (data alone) | "
              "10-NN kept: t-SNE | 10-NN kept: PCA | place 1k s | placed 10-NN kept | kept map: write + read s (MB) | "
              "regions s (found) |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for n in sizes:
            r = run_child("tsne", n, args.place)
            if "error" in r:
                print(f"| {n} | error: {r['error']} |||||||")
                continue
            print(f"| {n:,} | {_f(r, 'fit_s', '.1f')} | {_f(r, 'total_s', '.1f')} | "
                  f"{_f(r, 'peak_rss_mb', '.0f')} ({_f(r, 'data_rss_mb', '.0f')}) | {_f(r, 'nn10', '.3f')} | "
                  f"{_f(r, 'pca_nn10', '.3f')} | {_f(r, 'place_s', '.3f')} | {_f(r, 'place_nn10', '.3f')} | "
                  f"{_f(r, 'keep_s', '.2f')} ({_f(r, 'keep_mb', '.0f')}) | "
                  f"{_f(r, 'regions_s', '.1f')} ({_f(r, 'regions', '.0f')}) |")
    print(f"\nload after: {_uptime()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
