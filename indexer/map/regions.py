"""Regions of a map: clusters of the layout, their names, and the zoom level of each name.

Clusters are HDBSCAN (scikit-learn) on the 2-D layout: the regions a person sees are
the ones named. Documents are named by class-based TF-IDF (c-TF-IDF, as BERTopic does)
over their passages: a word scores by how much of the region's files use it against how
much of the whole library does, stop words out. Each passage counts 1/n of its file (n:
the file's passages), so one long file cannot name a region alone and memory stays one
batch of passages plus a word count per region. Images are named by the words of a
fixed vocabulary (`vocabulary.NOUNS`) nearest to the region's centre through CLIP's
text tower, most distinctive first, after any word most of its files' names share and
the recognised text (passages of images) where there is some.

Label levels: as on a street map, larger regions are named first, each at the first
zoom level where its label overlaps none already shown (`indexer.types.MapCluster`).
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence

import numpy as np

MAX_LEVEL = 8
VIEW_PX = 800.0  # level 0: the whole map in about this many pixels
CHAR_PX = 7.0
LABEL_H_PX = 18.0
LABEL_PAD_PX = 6.0
LABEL_WORDS = 3

_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")  # letters, inner hyphens; an apostrophe ends a word

STOP_WORDS = frozenset("""
a about above after again against all almost also although always am among an and another any anyone
anything are aren around as at back be became because become becomes been before being below between
both but by can cannot could couldn did didn do does doesn doing don done down during each either else
enough etc even ever every few first for from further get gets getting give given go goes going got had
hadn has hasn have haven having he her here hers herself him himself his how however i if in into is
isn it its itself just last least less let like likely made make makes many may me might mine more most
much must my myself need needs never new next no nor not now of off often on once one only onto or other
others otherwise our ours ourselves out over own per perhaps put rather re really said same see seem
seems several shall she should shouldn show since so some something sometimes still such than that the
their theirs them themselves then there therefore these they thing things this those though through thus
to together too toward towards under until up upon us use used uses using usually very via was wasn way
ways we well were weren what whatever when where whether which while who whom whose why will with within
without won would wouldn yet you your yours yourself yourselves also e.g i.e example examples following
note see section chapter page true false none null yes
def self return elif print args kwargs str int len cls init foo bar baz spam eggs
http https www com org net html htm pdf txt
""".split())

# Words of file names that say nothing about what a picture shows.
NAME_STOP_WORDS = STOP_WORDS | frozenset("""
img image images pic pics picture photo photos dsc dscn dscf pxl jpg jpeg png gif heic webp tif tiff bmp
screenshot screen shot capture scan scanned copy edited edit final version untitled file new export
whatsapp signal telegram camera mvimg vid burst cover portrait
""".split())


def tokens(text: str, stop: frozenset[str] = STOP_WORDS) -> list[str]:
    """Lower-case words of at least three letters, stop words out (no numbers, no punctuation)."""
    out = []
    for m in _WORD.finditer(text.lower()):
        w = m.group(0)
        if 3 <= len(w) <= 24 and w not in stop:
            out.append(w)
    return out


# ------------------------------------------------------------------------------ clusters
def min_cluster_size(n: int) -> int:
    """Regions grow with the library: ~√n/2 files at least (4 for a small one)."""
    return max(4, int(round(math.sqrt(max(n, 1)) / 2)))


def find_clusters(xy: np.ndarray) -> np.ndarray:
    """A region id per point (0..k-1), -1 for points in none: HDBSCAN on the 2-D layout,
    then stray points join the region of their nearest clustered point when it is close."""
    n = int(xy.shape[0])
    if n == 0:
        return np.zeros(0, np.int32)
    mcs = min_cluster_size(n)
    if n < 2 * mcs:
        return np.zeros(n, np.int32)  # too few for more than one region
    from sklearn.cluster import HDBSCAN

    labels = HDBSCAN(min_cluster_size=mcs, min_samples=max(2, mcs // 2), copy=True).fit_predict(
        np.asarray(xy, np.float64))
    labels = np.asarray(labels, np.int32)
    if (labels < 0).all():
        return np.zeros(n, np.int32)
    noise = labels < 0
    if noise.any():
        from scipy.spatial import cKDTree

        tree = cKDTree(xy[~noise])
        d_all, _ = cKDTree(xy).query(xy, k=2)
        typical = float(np.median(d_all[:, 1])) if n > 1 else 0.0
        dist, where = tree.query(xy[noise], k=1)
        near = dist <= 3.0 * typical
        labels[np.flatnonzero(noise)[near]] = labels[~noise][where[near]]
    # Renumber largest first, so ids are stable in meaning ("0" is the biggest region).
    ids, counts = np.unique(labels[labels >= 0], return_counts=True)
    order = ids[np.argsort(-counts, kind="stable")]
    remap = np.full(int(labels.max()) + 2, -1, np.int32)
    remap[order] = np.arange(len(order), dtype=np.int32)
    return np.where(labels >= 0, remap[labels], -1).astype(np.int32)


# ------------------------------------------------------------------------------ c-TF-IDF
class TermCounter:
    """Per-region word weights, fed a passage at a time (each passage weighs 1/n of its file)."""

    def __init__(self) -> None:
        self.counts: dict[int, defaultdict[str, float]] = {}
        self.files: dict[int, set[str]] = {}

    def add(self, region: int, text: str, weight: float, fid: str = "", stop: frozenset[str] = STOP_WORDS) -> None:
        if region < 0:
            return
        self.files.setdefault(region, set()).add(fid)
        words = set(tokens(text, stop))
        if words:
            c = self.counts.setdefault(region, defaultdict(float))
            for w in words:
                c[w] += weight

    def top_words(self, k: int = 5, min_weight: float = 1.5) -> dict[int, list[str]]:
        """The k most distinctive words of each region: c-TF-IDF with the lift as its IDF,
        ``p(w|region) * log(p(w|region) / p(w|library))``, over words at least ``min_weight``
        files' worth of the region use (fewer for a small region), damped by a square root
        so a word every passage repeats does not drown the rest."""
        if not self.counts:
            return {}
        total: defaultdict[str, float] = defaultdict(float)
        for c in self.counts.values():
            for w, f in c.items():
                total[w] += math.sqrt(f)
        grand = sum(total.values()) or 1.0
        out: dict[int, list[str]] = {}
        for region, c in self.counts.items():
            size = sum(math.sqrt(f) for f in c.values()) or 1.0
            need = min(min_weight, max(0.5, 0.3 * len(self.files.get(region, ()))))
            scored = []
            for w, f in c.items():
                if f < need:
                    continue
                p_region, p_all = math.sqrt(f) / size, total[w] / grand
                if p_region > p_all or len(self.counts) == 1:
                    scored.append((w, p_region * math.log(1.0 + p_region / p_all)))
            scored.sort(key=lambda t: (-t[1], t[0]))
            out[region] = [w for w, _ in scored[:k]]
        return out


def document_words(passages: Iterable[tuple[list[str], list[str]]], region_of: dict[str, int],
                   n_chunks: dict[str, int], k: int = 5) -> dict[int, list[str]]:
    """c-TF-IDF words per region from (fids, texts) batches of passages."""
    counter = TermCounter()
    for fids, texts in passages:
        for fid, text in zip(fids, texts):
            region = region_of.get(fid, -1)
            if region >= 0:
                counter.add(region, text, 1.0 / max(1, n_chunks.get(fid, 1)), fid)
    return counter.top_words(k)


def name_words(names_by_region: dict[int, list[str]], share: float = 0.4) -> dict[int, list[str]]:
    """Words most of a region's file names share (at least two files), most common first."""
    out: dict[int, list[str]] = {}
    for region, names in names_by_region.items():
        seen: Counter[str] = Counter()
        for name in names:
            stem = name.rsplit(".", 1)[0]
            seen.update(set(tokens(stem.replace("_", " "), NAME_STOP_WORDS)))
        need = max(2, math.ceil(share * len(names)))
        out[region] = [w for w, c in sorted(seen.items(), key=lambda t: (-t[1], t[0])) if c >= need][:2]
    return out


def vocabulary_words(centres: np.ndarray, word_vectors: np.ndarray, words: Sequence[str],
                     k: int = 3) -> list[list[str]]:
    """For each region centre (unit rows), the vocabulary words nearest to it through CLIP's
    text tower, distinctive ones first: similarity plus how much more than to the average region."""
    if not len(centres) or not len(words):
        return [[] for _ in range(len(centres))]
    sims = centres @ word_vectors.T  # [regions, words]
    score = sims + (sims - sims.mean(axis=0, keepdims=True)) if len(centres) > 1 else sims
    out = []
    for row in score:
        best = np.argsort(-row, kind="stable")[:k]
        out.append([words[i] for i in best])
    return out


def compose_label(*word_lists: Sequence[str], n: int = LABEL_WORDS) -> tuple[str, tuple[str, ...]]:
    """The label (its first ``n`` distinct words joined) and every word, in order."""
    words: list[str] = []
    for ws in word_lists:
        for w in ws:
            if w and w not in words:
                words.append(w)
    return " · ".join(words[:n]), tuple(words)


# ------------------------------------------------------------------------------ levels
def label_levels(xs: Sequence[float], ys: Sequence[float], labels: Sequence[str],
                 sizes: Sequence[int]) -> list[int]:
    """The zoom level at which each label is first shown (coordinates in [0, 1]): largest
    first, each at the first level where it overlaps no label shown there already."""
    n = len(labels)
    levels = [MAX_LEVEL] * n
    order = sorted(range(n), key=lambda i: (-sizes[i], i))
    placed: list[int] = []
    for i in order:
        for level in range(MAX_LEVEL + 1):
            # Shown together from the later of the two levels on; zooming in only parts them.
            if all(not _overlap(i, j, max(level, levels[j]), VIEW_PX * 2 ** max(level, levels[j]), xs, ys, labels)
                   for j in placed):
                levels[i] = level
                break
        placed.append(i)
    return levels


def _half(label: str, scale: float) -> tuple[float, float]:
    w = (CHAR_PX * max(len(label), 1) + LABEL_PAD_PX) / scale
    h = (LABEL_H_PX + LABEL_PAD_PX) / scale
    return w / 2, h / 2


def _overlap(i: int, j: int, level: int, scale: float, xs: Sequence[float], ys: Sequence[float],
             labels: Sequence[str]) -> bool:
    wi, hi = _half(labels[i], scale)
    wj, hj = _half(labels[j], scale)
    return abs(xs[i] - xs[j]) < wi + wj and abs(ys[i] - ys[j]) < hi + hj


def centres(xy: np.ndarray, regions: np.ndarray, k: int) -> np.ndarray:
    """Where each region's label sits: the point of the region nearest its mean (so a
    crescent-shaped region's label lands on it, not in the hole)."""
    out = np.zeros((k, 2), np.float32)
    for r in range(k):
        pts = xy[regions == r]
        if len(pts):
            mean = pts.mean(axis=0)
            out[r] = pts[np.argmin(((pts - mean) ** 2).sum(axis=1))]
    return out


ProgressFn = Callable[[str, float], None]
