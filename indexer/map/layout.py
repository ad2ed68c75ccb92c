"""Layout: unit vectors → 2-D points, and new points placed into a kept layout.

A full layout is t-SNE (openTSNE, FFT-accelerated past a few thousand points), chosen by
measurement over UMAP (docs/MAP.md §2: on the same 10,000 points on 2 cores it kept 0.42
of each point's 10 nearest neighbours against UMAP's 0.26, in 25 % less memory and with
no numba compilation at each start; UMAP was faster). Euclidean distance on unit vectors
orders neighbours exactly as cosine does. A fixed seed makes the same library give
(nearly) the same map. Very few points are laid out by PCA.

New files are placed without moving anyone (`place`): each goes to the similarity-
weighted centre of its nearest laid-out neighbours in the original space, the start
openTSNE's own ``transform`` takes (the median of the neighbours' places) before it
optimises; that needs the fitted model, its neighbour index and affinities, which is not
kept (hundreds of MB at 100k points). When much of the library has changed, the caller
lays it out afresh.
"""

from __future__ import annotations

import logging
import os
from typing import Literal

import numpy as np

log = logging.getLogger(__name__)

Method = Literal["tsne", "pca", "single", "empty"]

TSNE_PERPLEXITY = 30.0
MIN_POINTS = 12
"""Fewer points than this are laid out by PCA: t-SNE's neighbourhoods need some."""
PLACE_NEIGHBOURS = 10
PLACE_TEMPERATURE = 0.03
"""Softmax temperature over cosine similarities when placing a point: the nearest few
neighbours dominate, so a point between two regions does not land in the gap."""
SEED = 42
THREADED_FROM = 5000


def full_layout(vectors: np.ndarray, *, seed: int = SEED, method: str = "auto") -> tuple[np.ndarray, Method]:
    """2-D coordinates (float32 [n, 2]) for unit ``vectors`` [n, dim], and how they were made."""
    n = int(vectors.shape[0])
    if n == 0:
        return np.zeros((0, 2), np.float32), "empty"
    if n == 1:
        return np.zeros((1, 2), np.float32), "single"
    if method == "pca" or (method == "auto" and n < MIN_POINTS):
        return pca_layout(vectors), "pca"
    xy = tsne_layout(vectors, seed=seed)
    if not np.isfinite(xy).all():  # a degenerate input (all points equal): fall back
        log.warning("t-SNE gave non-finite coordinates for %d points; using PCA", n)
        return pca_layout(vectors), "pca"
    return xy, "tsne"


def tsne_layout(vectors: np.ndarray, *, seed: int = SEED, n_jobs: int | None = None) -> np.ndarray:
    import openTSNE

    n = int(vectors.shape[0])
    # Perplexity is an effective neighbour count: at most about a third of the points.
    perplexity = float(min(TSNE_PERPLEXITY, max(2.0, (n - 1) / 3.0)))
    tsne = openTSNE.TSNE(
        perplexity=perplexity, metric="euclidean", initialization="pca", random_state=seed,
        n_jobs=n_jobs or threads_for(n), verbose=False,
    )
    return np.asarray(tsne.fit(np.asarray(vectors, np.float32)), np.float32)


def threads_for(n: int) -> int:
    """One thread below `THREADED_FROM` points: each of t-SNE's 750 steps waits for all its
    threads, and on a busy machine (indexing beside it) those waits cost more than the
    step (measured: 24 points took 28 s on 2 threads under load, 0.9 s CPU on one)."""
    return max(1, os.cpu_count() or 1) if n >= THREADED_FROM else 1


def pca_layout(vectors: np.ndarray) -> np.ndarray:
    """The two main axes of the vectors (the benchmark's baseline, and tiny libraries)."""
    x = np.asarray(vectors, np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    if x.shape[0] < 2 or not np.any(x):
        return np.zeros((x.shape[0], 2), np.float32)
    _u, _s, vt = np.linalg.svd(x, full_matrices=False)
    xy = x @ vt[:2].T
    if xy.shape[1] < 2:
        xy = np.hstack([xy, np.zeros((xy.shape[0], 2 - xy.shape[1]))])
    return xy.astype(np.float32)


def nearest(queries: np.ndarray, base: np.ndarray, k: int, *, block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest rows of unit ``base`` to each unit query by cosine: (indices, sims),
    best first; computed a block of queries at a time so memory stays bounded."""
    k = max(1, min(k, int(base.shape[0])))
    idx = np.zeros((queries.shape[0], k), np.int64)
    sims = np.zeros((queries.shape[0], k), np.float32)
    for start in range(0, queries.shape[0], block):
        s = queries[start:start + block] @ base.T
        part = np.argpartition(-s, k - 1, axis=1)[:, :k]
        ps = np.take_along_axis(s, part, axis=1)
        order = np.argsort(-ps, axis=1, kind="stable")
        idx[start:start + block] = np.take_along_axis(part, order, axis=1)
        sims[start:start + block] = np.take_along_axis(ps, order, axis=1)
    return idx, sims


def place(new_vectors: np.ndarray, old_vectors: np.ndarray, old_xy: np.ndarray,
          k: int = PLACE_NEIGHBOURS) -> tuple[np.ndarray, np.ndarray]:
    """Positions for new points among laid-out ones that do not move: the softmax-weighted
    (by cosine similarity) centre of each one's k nearest old points. Returns (xy [m, 2],
    the index of each new point's nearest old point)."""
    m = int(new_vectors.shape[0])
    if m == 0:
        return np.zeros((0, 2), np.float32), np.zeros(0, np.int64)
    if old_vectors.shape[0] == 0:
        return np.zeros((m, 2), np.float32), np.full(m, -1, np.int64)
    idx, sims = nearest(np.asarray(new_vectors, np.float32), np.asarray(old_vectors, np.float32), k)
    w = np.exp((sims - sims[:, :1]) / PLACE_TEMPERATURE)
    w /= w.sum(axis=1, keepdims=True)
    xy = np.einsum("mk,mkd->md", w, old_xy[idx].astype(np.float64))
    return xy.astype(np.float32), idx[:, 0]


def neighbour_preservation(vectors: np.ndarray, xy: np.ndarray, k: int = 10, sample: int = 1000,
                           seed: int = 0) -> float:
    """Share of each sampled point's k nearest neighbours in the original (cosine) space that
    are also among its k nearest on the map, averaged (the benchmark's measure)."""
    n = int(vectors.shape[0])
    if n <= k:
        return 1.0
    rng = np.random.default_rng(seed)
    picks = rng.choice(n, size=min(sample, n), replace=False)
    hi, _ = nearest(vectors[picks], vectors, k + 1)
    xy64 = np.asarray(xy, np.float64)
    kept = 0.0
    for row, p in enumerate(picks):
        want = [j for j in hi[row] if j != p][:k]
        d = np.sum((xy64 - xy64[p]) ** 2, axis=1)
        d[p] = np.inf
        got = np.argpartition(d, k - 1)[:k]
        kept += len(set(want) & set(got.tolist())) / k
    return kept / len(picks)
