"""The duplicate rules over plain arrays, and the groups they make.

Each rule is its own function that turns item arrays into candidate pairs without
comparing every item with every other:

- identical: grouping by content hash;
- same picture: 64-bit perceptual hashes split into bands, items sharing a band are
  candidates (multi-index hashing: two hashes within 3 bits always share one of 4
  bands), kept when their Hamming distance is small and their CLIP vectors agree;
- similar shots: items sorted by time, each block compared (one matrix product) only
  with the items inside the time window after it;
- same document: MinHash signatures of word shingles, candidates from LSH buckets
  (datasketch), kept when the estimated share of shared shingles is high enough.

Pairs become groups by connected components (`components`).
"""

from __future__ import annotations

import dataclasses
import re
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Literal

import numpy as np

Tier = Literal["identical", "resaved", "burst", "document"]
TIERS: tuple[Tier, ...] = ("identical", "resaved", "burst", "document")
TIER_TITLES: dict[str, str] = {
    "identical": "Identical files",
    "resaved": "Same picture, saved again",
    "burst": "Similar shots",
    "document": "Same document, another form or version",
}


@dataclasses.dataclass(frozen=True)
class Rules:
    """The thresholds of every tier (the defaults are what docs/DUPLICATES.md measured)."""

    phash_bits: int = 6  # most differing bits of two 64-bit perceptual hashes
    resaved_clip: float = 0.90  # and at least this CLIP similarity
    burst_clip: float = 0.85  # similar shots: at least this CLIP similarity...
    burst_window_s: float = 600.0  # ...taken at most this far apart
    burst_span: int = 2000  # compare a shot with at most this many later ones
    document_share: float = 0.5  # estimated share of shared word shingles
    shingle_words: int = 4
    num_perm: int = 64
    max_shingles: int = 20000  # per document: the first ones (a long book is not read whole)
    max_bucket: int = 2000  # a hash band shared by more items is too common to mean anything

    def text(self, tier: str) -> str:
        """The rule of a tier, in the words the person sees."""
        if tier == "identical":
            return "Same bytes: the files have the same content hash."
        if tier == "resaved":
            return (f"Same picture: perceptual hashes differ in at most {self.phash_bits} of 64 bits "
                    f"and the image model agrees (similarity ≥ {self.resaved_clip:.2f}); "
                    "resized, re-encoded, converted, lightly cropped or turned.")
        if tier == "burst":
            minutes = self.burst_window_s / 60
            return (f"Similar shots: image similarity ≥ {self.burst_clip:.2f} and taken within "
                    f"{minutes:g} minute{'s' if minutes != 1 else ''} of each other.")
        return (f"Same text: at least {self.document_share:.0%} of their {self.shingle_words}-word "
                "passages are shared (MinHash estimate).")


@dataclasses.dataclass
class Member:
    """One file of a group, with what a side-by-side comparison shows."""

    path: str
    size: int
    mtime: float
    content_hash: str
    kind: str = "other"
    width: int = 0
    height: int = 0
    taken: float | None = None  # EXIF date (seconds since the epoch), when the file has one
    camera: str = ""
    similarity: float | None = None  # to the keeper: image similarity or share of shared text
    distance_bits: int | None = None  # to the keeper: differing perceptual-hash bits

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def when(self) -> float:
        return self.taken if self.taken is not None else self.mtime


@dataclasses.dataclass
class DuplicateGroup:
    tier: str
    rule: str
    members: list[Member]
    keeper: int = 0  # index into members
    keeper_why: str = ""

    @property
    def reclaimable(self) -> int:
        """Bytes freed by moving every member but the keeper to the trash."""
        return sum(m.size for i, m in enumerate(self.members) if i != self.keeper)

    @property
    def key(self) -> list[str]:
        """What "not duplicates" remembers: the members' content hashes (a renamed file stays
        dismissed, a new version shows the group again); identical files, which share one
        hash, by their paths instead."""
        if self.tier == "identical":
            return sorted(f"path:{m.path}" for m in self.members)
        return sorted({m.content_hash for m in self.members})

    def to_json(self) -> dict[str, object]:
        return {
            "tier": self.tier,
            "title": TIER_TITLES[self.tier],
            "rule": self.rule,
            "reclaimable_bytes": self.reclaimable,
            "keeper": self.members[self.keeper].path,
            "keeper_why": self.keeper_why,
            "files": [dataclasses.asdict(m) for m in self.members],
        }


# ----------------------------------------------------------------------------- grouping
def components(n: int, pairs: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Connected components of size ≥ 2 over items 0..n-1 (union-find)."""
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        ra, rb = find(int(a)), find(int(b))
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    return [g for g in groups.values() if len(g) > 1]


def star_groups(n: int, pairs: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Groups without chains: the most connected item and its direct partners, repeated.

    Connected components chain: a re-save of a burst shot links the whole burst into
    one "same picture". Here every member matches the group's centre itself.
    """
    partners: dict[int, set[int]] = {}
    for a, b in pairs:
        partners.setdefault(int(a), set()).add(int(b))
        partners.setdefault(int(b), set()).add(int(a))
    groups = []
    left = set(partners)
    while left:
        centre = max(left, key=lambda i: (len(partners[i] & left), -i))
        group = sorted({centre} | (partners[centre] & left))
        left -= set(group)
        if len(group) > 1:
            groups.append(group)
    return groups


def identical_groups(hashes: Sequence[str]) -> list[list[int]]:
    """Items with the same content hash (empty hashes never match)."""
    by_hash: dict[str, list[int]] = {}
    for i, h in enumerate(hashes):
        if h:
            by_hash.setdefault(h, []).append(i)
    return [g for g in by_hash.values() if len(g) > 1]


# ----------------------------------------------------------------------------- same picture
def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Differing bits of two uint64 arrays, element by element."""
    return np.bitwise_count(np.bitwise_xor(a, b)).astype(np.int32)


def band_pairs(hashes: np.ndarray, turned: np.ndarray | None = None, bands: int = 4,
               max_bucket: int = 2000) -> np.ndarray:
    """Candidate pairs (i < j) of items whose 64-bit hashes share a whole band.

    ``turned`` [n, r]: the hashes of each item's picture turned by 90°, 180° and 270°;
    an item is then also a candidate of another whose upright hash shares a band with
    one of its turned ones. A band value held by more than ``max_bucket`` entries (a
    blank picture's hash) is skipped: it costs its square and says little.
    """
    n = len(hashes)
    if n < 2:
        return np.zeros((0, 2), np.int64)
    upright = np.asarray(hashes, np.uint64)
    pool = upright if turned is None else np.concatenate([upright, np.asarray(turned, np.uint64).T.reshape(-1)])
    owner = np.tile(np.arange(n), len(pool) // n)
    width = 64 // bands
    mask = np.uint64((1 << width) - 1)
    found = []
    for b in range(bands):
        shift = np.uint64(b * width)
        key_a = (upright >> shift) & mask
        key_p = (pool >> shift) & mask
        order = np.argsort(key_p, kind="stable")
        sorted_p = key_p[order]
        lo = np.searchsorted(sorted_p, key_a, "left")
        hi = np.searchsorted(sorted_p, key_a, "right")
        counts = np.where(hi - lo > max_bucket, 0, hi - lo)
        total = int(counts.sum())
        if not total:
            continue
        a_idx = np.repeat(np.arange(n), counts)
        offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        b_idx = owner[order[np.repeat(lo, counts) + offsets]]
        keep = a_idx != b_idx
        a_idx, b_idx = a_idx[keep], b_idx[keep]
        found.append(np.minimum(a_idx, b_idx) * n + np.maximum(a_idx, b_idx))
    if not found:
        return np.zeros((0, 2), np.int64)
    codes = np.unique(np.concatenate(found))
    return np.stack([codes // n, codes % n], axis=1)


def pair_similarity(vectors: np.ndarray, pairs: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Cosine similarity of each pair of unit vectors (rows of ``vectors``)."""
    out = np.empty(len(pairs), np.float32)
    for s in range(0, len(pairs), chunk):
        p = pairs[s:s + chunk]
        a = vectors[p[:, 0]].astype(np.float32)
        b = vectors[p[:, 1]].astype(np.float32)
        out[s:s + chunk] = np.einsum("ij,ij->i", a, b)
    return out


def same_picture_pairs(hashes: np.ndarray, turned: np.ndarray | None, vectors: np.ndarray, has_vector: np.ndarray,
                       rules: Rules) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs that are the same picture: (pairs [m, 2], differing bits [m], similarity [m]).

    Both need a perceptual hash and a CLIP vector; the distance is the smallest over
    the other item's turns, so a picture turned and saved again is still found.
    """
    pairs = band_pairs(hashes, turned, max_bucket=rules.max_bucket)
    if not len(pairs):
        return pairs, np.zeros(0, np.int32), np.zeros(0, np.float32)
    upright = np.asarray(hashes, np.uint64)
    bits = hamming(upright[pairs[:, 0]], upright[pairs[:, 1]])
    if turned is not None:
        for r in range(turned.shape[1]):
            bits = np.minimum(bits, hamming(upright[pairs[:, 0]], np.asarray(turned, np.uint64)[pairs[:, 1], r]))
    keep = (bits <= rules.phash_bits) & has_vector[pairs[:, 0]] & has_vector[pairs[:, 1]]
    pairs, bits = pairs[keep], bits[keep]
    sims = pair_similarity(vectors, pairs)
    keep = sims >= rules.resaved_clip
    return pairs[keep], bits[keep], sims[keep]


# ----------------------------------------------------------------------------- similar shots
def similar_shot_pairs(times: np.ndarray, vectors: np.ndarray, has_vector: np.ndarray, rules: Rules,
                       block: int = 512, cancel: Callable[[], bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pairs taken within the window and similar enough: (pairs [m, 2], similarity [m]).

    Items are sorted by time; each block of ``block`` items is compared with one matrix
    product against the items from its start up to the window past its last one (at
    most ``burst_span`` of them), so the work grows with the photos per window, not n².
    """
    idx = np.flatnonzero(has_vector)
    if len(idx) < 2:
        return np.zeros((0, 2), np.int64), np.zeros(0, np.float32)
    order = idx[np.argsort(np.asarray(times)[idx], kind="stable")]
    t = np.asarray(times, np.float64)[order]
    out_pairs, out_sims = [], []
    for s in range(0, len(order), block):
        if cancel is not None and cancel():
            break
        e = min(s + block, len(order))
        stop = int(np.searchsorted(t, t[e - 1] + rules.burst_window_s, "right"))
        stop = min(stop, e + rules.burst_span)
        if stop - s < 2:
            continue
        a = vectors[order[s:e]].astype(np.float32)
        b = vectors[order[s:stop]].astype(np.float32)
        sims = a @ b.T
        ii, jj = np.nonzero(sims >= rules.burst_clip)
        gi, gj = ii + s, jj + s
        keep = (gj > gi) & (t[gj] - t[gi] <= rules.burst_window_s) & (gj - gi <= rules.burst_span)
        if keep.any():
            out_pairs.append(np.stack([order[gi[keep]], order[gj[keep]]], axis=1))
            out_sims.append(sims[ii[keep], jj[keep]])
    if not out_pairs:
        return np.zeros((0, 2), np.int64), np.zeros(0, np.float32)
    return np.concatenate(out_pairs), np.concatenate(out_sims)


# ----------------------------------------------------------------------------- documents
_WORD = re.compile(r"\w+")
_MIX = (np.uint64(0x9E3779B1), np.uint64(0x85EBCA77), np.uint64(0xC2B2AE3D), np.uint64(0x27D4EB2F))


def shingle_hashes(texts: Iterable[str], words: int = 4, limit: int = 20000) -> np.ndarray:
    """The distinct 32-bit hashes of a text's ``words``-word shingles (lower case, words only).

    Shingles run across passage boundaries, so the same text cut into passages
    differently (a PDF and its DOCX) gives the same shingles.
    """
    ids: list[int] = []
    for text in texts:
        ids.extend(zlib.crc32(w.encode("utf-8", "surrogatepass")) for w in _WORD.findall(text.lower()))
        if len(ids) >= limit + words:
            break
    arr = np.asarray(ids[: limit + words - 1], np.uint64)
    if len(arr) < words:
        return np.unique(arr) if len(arr) else np.zeros(0, np.uint64)
    with np.errstate(over="ignore"):
        mixed = np.zeros(len(arr) - words + 1, np.uint64)
        for k in range(words):
            mixed = mixed * _MIX[k % len(_MIX)] + arr[k:len(arr) - words + 1 + k]
    return np.unique(mixed & np.uint64(0xFFFFFFFF))


SCHEME = "legacy"
"""datasketch's permutation scheme whose arithmetic `Signer` repeats in numpy:
(a·h + b) mod (2⁶¹ − 1), kept to 32 bits."""


class Signer:
    """MinHash signatures with datasketch's permutations (so its LSH and estimates apply),
    computed for a whole array of shingle hashes at once."""

    def __init__(self, num_perm: int = 64, seed: int = 1) -> None:
        from datasketch import MinHash

        self.num_perm, self.seed = num_perm, seed
        self._a, self._b = (np.asarray(p, np.uint64) for p in MinHash(num_perm=num_perm, seed=seed, scheme=SCHEME).permutations)

    def sign(self, shingles: np.ndarray, chunk: int = 4096) -> np.ndarray:
        """uint64 [num_perm]: the signature of a set of 32-bit shingle hashes (all max when empty)."""
        prime, top = np.uint64((1 << 61) - 1), np.uint64((1 << 32) - 1)
        sig = np.full(self.num_perm, top, np.uint64)
        with np.errstate(over="ignore"):
            for s in range(0, len(shingles), chunk):
                hv = np.asarray(shingles[s:s + chunk], np.uint64)[:, None]
                sig = np.minimum(sig, (((hv * self._a + self._b) % prime) & top).min(axis=0))
        return sig


def document_pairs(signatures: np.ndarray, rules: Rules, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of documents sharing text: (pairs [m, 2], estimated share [m]), via MinHash LSH."""
    from datasketch import LeanMinHash, MinHashLSH

    n = len(signatures)
    empty = (np.zeros((0, 2), np.int64), np.zeros(0, np.float32))
    if n < 2:
        return empty
    lsh = MinHashLSH(threshold=max(0.1, rules.document_share * 0.8), num_perm=signatures.shape[1])
    top = np.uint64((1 << 32) - 1)
    usable = [i for i in range(n) if not (signatures[i] == top).all()]
    for i in usable:
        lsh.insert(i, LeanMinHash(seed=seed, hashvalues=signatures[i], scheme=SCHEME), check_duplication=False)
    codes = set()
    for i in usable:
        for j in lsh.query(LeanMinHash(seed=seed, hashvalues=signatures[i], scheme=SCHEME)):
            if j != i:
                codes.add((min(i, j), max(i, j)))
    if not codes:
        return empty
    pairs = np.array(sorted(codes), np.int64)
    share = (signatures[pairs[:, 0]] == signatures[pairs[:, 1]]).mean(axis=1).astype(np.float32)
    keep = share >= rules.document_share
    return pairs[keep], share[keep]
