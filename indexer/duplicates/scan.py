"""A duplicate scan of the index: what the rules need, gathered once, and the groups.

Records come from `Store.files`, vectors and passages from the read layer
(`StoreReader.iter_vectors` / `iter_passages`, a batch at a time). What only the files
can say is computed here and cached per content hash under ``<data dir>/duplicates/``:
the perceptual hashes of each picture (from its stored 256-px thumbnail, upright and
turned), its size in pixels, EXIF date and camera (from the file's header, never its
pixels), and each document's MinHash signature. A second scan reads the caches and
only works on what is new.
"""

from __future__ import annotations

import logging
import math
import os
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from indexer.duplicates.tiers import (
    TIERS,
    DuplicateGroup,
    Member,
    Rules,
    Signer,
    components,
    document_pairs,
    identical_groups,
    same_picture_pairs,
    shingle_hashes,
    similar_shot_pairs,
    star_groups,
)
from indexer.paths import is_under

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
CACHE_DIR = "duplicates"
NO_HASH = np.uint64(0)


class Cancelled(Exception):
    """The scan was asked to stop."""


# ----------------------------------------------------------------------------- caches
def _load_npz(path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """An npz cache's arrays, or None when it is missing, damaged or of another shape."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in names}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if len({len(a) for a in arrays.values()}) != 1:
        return None
    return arrays


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Written beside and renamed: a crash never leaves half a cache (it is only a cache)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    try:
        np.savez(tmp, **arrays)  # type: ignore[arg-type]  # numpy's stub reads a key as allow_pickle
        os.replace(tmp, path)
    except OSError as exc:
        log.info("duplicate cache not saved (%s): %s", path, exc)
        tmp.unlink(missing_ok=True)


PICTURE_FIELDS = ("hash", "phash", "width", "height", "taken", "camera")


def picture_facts(thumb: Path, original: str) -> tuple[np.ndarray, int, int, float, str]:
    """(perceptual hashes [4]: upright, turned 90°, 180°, 270°; width; height; EXIF date; camera).

    Hashes are 0 when the thumbnail cannot be read; size and EXIF come from the original's
    header (0, NaN and "" when it has none). Never decodes the original's pixels.
    """
    import imagehash
    from PIL import Image

    hashes = np.zeros(4, np.uint64)
    try:
        with Image.open(thumb) as img:
            img.load()
            gray = img.convert("L")
        for r in range(4):
            h = imagehash.phash(gray.rotate(90 * r, expand=True) if r else gray)
            hashes[r] = np.uint64(int(str(h), 16))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        log.debug("no perceptual hash for %s: %s", thumb, exc)
    width = height = 0
    taken, camera = math.nan, ""
    try:
        with Image.open(original) as img:
            width, height = img.size
            exif = img.getexif()
            if exif.get(0x0112, 1) in (5, 6, 7, 8):  # shown turned a quarter
                width, height = height, width
            camera = " ".join(str(exif.get(t, "")).strip("\x00 ") for t in (0x010F, 0x0110)).strip()
            stamp = exif.get_ifd(0x8769).get(0x9003) or exif.get(0x0132)
            taken = _exif_time(stamp)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        log.debug("no header facts for %s: %s", original, exc)
    return hashes, int(width), int(height), taken, camera[:80]


def _exif_time(stamp: Any) -> float:
    """'2024:05:01 12:30:00' → seconds since the epoch (local time), NaN when unreadable."""
    import time

    try:
        return time.mktime(time.strptime(str(stamp).strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S"))
    except (ValueError, OverflowError, TypeError):
        return math.nan


class PictureCache:
    """Perceptual hashes and header facts per content hash, in ``pictures.npz``."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "pictures.npz"
        self.rows: dict[str, tuple[np.ndarray, int, int, float, str]] = {}
        data = _load_npz(self.path, PICTURE_FIELDS)
        if data is not None and data["phash"].ndim == 2 and data["phash"].shape[1] == 4:
            for i, h in enumerate(data["hash"].tolist()):
                self.rows[h] = (data["phash"][i], int(data["width"][i]), int(data["height"][i]),
                                float(data["taken"][i]), str(data["camera"][i]))
        self.changed = False

    def get(self, content_hash: str, thumb: Path, original: str) -> tuple[np.ndarray, int, int, float, str]:
        row = self.rows.get(content_hash)
        if row is None:
            row = self.rows[content_hash] = picture_facts(thumb, original)
            self.changed = True
        return row

    def save(self, keep: set[str]) -> None:
        """Written when something changed; entries of content no longer indexed are dropped."""
        if not self.changed and keep >= set(self.rows):
            return
        kept = [h for h in self.rows if h in keep]
        rows = [self.rows[h] for h in kept]
        _save_npz(
            self.path,
            hash=np.array(kept, dtype=str),
            phash=np.array([r[0] for r in rows], np.uint64).reshape(-1, 4),
            width=np.array([r[1] for r in rows], np.int64),
            height=np.array([r[2] for r in rows], np.int64),
            taken=np.array([r[3] for r in rows], np.float64),
            camera=np.array([r[4] for r in rows], dtype=str),
        )


# ----------------------------------------------------------------------------- keeper
def choose_keeper(group: DuplicateGroup, preferred: list[str]) -> None:
    """The member to keep, and the rule that chose it, written into ``group``.

    Inside a folder marked preferred first; then pictures by largest resolution (then
    largest file), everything else by oldest; the shortest path breaks a tie.
    """
    members = group.members
    candidates = list(range(len(members)))
    why = []
    inside = [i for i in candidates if any(is_under(members[i].path, f) for f in preferred)]
    if inside and len(inside) < len(candidates):
        candidates = inside
        why.append("inside a preferred folder")
    pictures = group.tier in ("resaved", "burst")
    if pictures and len({members[i].pixels for i in candidates}) > 1:
        best = max(members[i].pixels for i in candidates)
        candidates = [i for i in candidates if members[i].pixels == best]
        m = members[candidates[0]]
        why.append(f"largest resolution ({m.width}×{m.height})")
    if pictures and len({members[i].size for i in candidates}) > 1:
        best = max(members[i].size for i in candidates)
        candidates = [i for i in candidates if members[i].size == best]
        why.append("largest file")
    if len({members[i].when for i in candidates}) > 1:
        oldest = min(members[i].when for i in candidates)
        candidates = [i for i in candidates if members[i].when == oldest]
        why.append("oldest")
    group.keeper = min(candidates, key=lambda i: (len(members[i].path), members[i].path))
    group.keeper_why = ", then ".join(why) if why else "shortest path (the files are otherwise alike)"
    group.keeper_why = group.keeper_why[:1].upper() + group.keeper_why[1:]


# ----------------------------------------------------------------------------- the scan
class DuplicateScan:
    """One scan of one store: ``run(tiers)`` returns the groups, largest reclaimable first."""

    def __init__(self, store: Any, reader: Any, data_dir: str | os.PathLike[str], rules: Rules | None = None,
                 progress: Progress | None = None, cancel: Callable[[], bool] | None = None) -> None:
        self.store = store
        self.reader = reader
        self.cache_dir = Path(data_dir) / CACHE_DIR
        self.thumbnails = Path(data_dir) / "thumbnails"
        self.rules = rules or Rules()
        self._progress = progress
        self._cancel = cancel

    def _say(self, line: str) -> None:
        if self._progress is not None:
            self._progress(line)

    def _check(self) -> None:
        if self._cancel is not None and self._cancel():
            raise Cancelled()

    def run(self, tiers: tuple[str, ...] = TIERS, preferred: list[str] | None = None,
            dismissed: list[set[str]] | None = None) -> list[DuplicateGroup]:
        self._say("Reading the index…")
        records = sorted((r for r in self.store.files().values()
                          if r.available and r.content_hash and r.size > 0), key=lambda r: r.path)
        groups: list[DuplicateGroup] = []
        # Identical files, then one representative per content hash for the later tiers.
        same_bytes = identical_groups([r.content_hash for r in records])
        rep_of_hash: dict[str, Any] = {}
        for g in same_bytes:
            group = DuplicateGroup("identical", self.rules.text("identical"), [_member(records[i]) for i in g])
            choose_keeper(group, preferred or [])
            if "identical" in tiers:
                groups.append(group)
            rep_of_hash[records[g[0]].content_hash] = next(records[i] for i in g
                                                           if records[i].path == group.members[group.keeper].path)
        for r in records:
            rep_of_hash.setdefault(r.content_hash, r)
        reps = list(rep_of_hash.values())
        if "resaved" in tiers or "burst" in tiers:
            groups += self._pictures([r for r in reps if r.kind == "image" and r.state == "indexed"], tiers, preferred or [])
        if "document" in tiers:
            groups += self._documents([r for r in reps if r.kind == "text" and r.state == "indexed"], preferred or [])
        kept = [g for g in groups if not any(set(g.key) <= d for d in (dismissed or []))]
        kept.sort(key=lambda g: (-g.reclaimable, TIERS.index(g.tier), g.members[g.keeper].path))
        self._say(f"{len(kept)} group{'s' if len(kept) != 1 else ''} found")
        return kept

    # -- pictures ------------------------------------------------------------------
    def _pictures(self, images: list[Any], tiers: tuple[str, ...], preferred: list[str]) -> list[DuplicateGroup]:
        if len(images) < 2:
            return []
        index = {r.fid: i for i, r in enumerate(images)}
        vectors: np.ndarray | None = None
        has_vector = np.zeros(len(images), bool)
        self._say(f"Reading the vectors of {len(images)} pictures…")
        for batch in self.reader.iter_vectors("images"):
            self._check()
            if vectors is None:
                vectors = np.zeros((len(images), batch.vectors.shape[1]), np.float16)
            for fid, vec in zip(batch.fids, batch.vectors):
                i = index.get(fid)
                if i is not None:
                    vectors[i] = vec
                    has_vector[i] = True
        if vectors is None:
            return []
        cache = PictureCache(self.cache_dir)
        facts = []
        for n, r in enumerate(images):
            if n % 200 == 0:
                self._check()
                self._say(f"Looking at pictures: {n} of {len(images)}…")
            facts.append(cache.get(r.content_hash, self.thumbnails / f"{r.content_hash}.png", r.path))
        cache.save({r.content_hash for r in images})
        members = [_member(r, f) for r, f in zip(images, facts)]
        phashes = np.array([f[0] for f in facts], np.uint64).reshape(-1, 4)
        hashed = has_vector & (phashes[:, 0] != NO_HASH)
        out: list[DuplicateGroup] = []
        root = np.arange(len(images))
        self._say("Comparing pictures…")
        if "resaved" in tiers or "burst" in tiers:
            sub = np.flatnonzero(hashed)
            pairs, _bits, _sims = same_picture_pairs(phashes[sub, 0], phashes[sub, 1:], vectors[sub], hashed[sub], self.rules)
            pairs = sub[pairs] if len(pairs) else pairs
            for g in star_groups(len(images), pairs.tolist()):
                group = self._group("resaved", [members[i] for i in g], preferred)
                keeper = g[group.keeper]
                for i, m in zip(g, group.members):
                    m.similarity = round(float(vectors[i].astype(np.float32) @ vectors[keeper].astype(np.float32)), 3)
                    m.distance_bits = int(np.min(np.bitwise_count(phashes[i] ^ phashes[keeper, 0])))
                root[g] = keeper
                if "resaved" in tiers:
                    out.append(group)
        if "burst" in tiers:
            self._check()
            times = np.array([m.when for m in members], np.float64)
            pairs, _sims = similar_shot_pairs(times, vectors, has_vector, self.rules, cancel=self._cancel)
            self._check()
            linked = [(int(root[a]), int(root[b])) for a, b in pairs.tolist() if root[a] != root[b]]
            for g in components(len(images), linked):
                group = self._group("burst", [members[i] for i in g], preferred)
                keeper = g[group.keeper]
                for i, m in zip(g, group.members):
                    m.similarity = round(float(vectors[i].astype(np.float32) @ vectors[keeper].astype(np.float32)), 3)
                out.append(group)
        return out

    def _group(self, tier: str, members: list[Member], preferred: list[str]) -> DuplicateGroup:
        group = DuplicateGroup(tier, self.rules.text(tier), members)
        choose_keeper(group, preferred)
        return group

    # -- documents -------------------------------------------------------------------
    def _documents(self, docs: list[Any], preferred: list[str]) -> list[DuplicateGroup]:
        if len(docs) < 2:
            return []
        signer = Signer(self.rules.num_perm)
        path = self.cache_dir / f"documents-{self.rules.num_perm}-{self.rules.shingle_words}.npz"
        cached: dict[str, np.ndarray] = {}
        data = _load_npz(path, ("hash", "signature"))
        if data is not None and data["signature"].ndim == 2 and data["signature"].shape[1] == signer.num_perm:
            cached = dict(zip(data["hash"].tolist(), data["signature"]))
        missing = {r.fid: r for r in docs if r.content_hash not in cached}
        if missing:
            self._say(f"Reading the text of {len(missing)} documents…")
            top = np.uint64((1 << 32) - 1)
            signatures = {fid: np.full(signer.num_perm, top, np.uint64) for fid in missing}
            words = dict.fromkeys(missing, 0)
            for fids, texts in self.reader.iter_passages(set(missing)):
                self._check()
                for fid, text in zip(fids, texts):
                    if words[fid] >= self.rules.max_shingles:
                        continue  # a long document is signed by its first passages
                    shingles = shingle_hashes([text], self.rules.shingle_words, self.rules.max_shingles)
                    words[fid] += len(shingles)
                    signatures[fid] = np.minimum(signatures[fid], signer.sign(shingles))
            for fid, rec in missing.items():
                cached[rec.content_hash] = signatures[fid]
            keep = [(h, s) for h, s in cached.items() if h in {r.content_hash for r in docs}]
            _save_npz(path, hash=np.array([h for h, _ in keep], dtype=str),
                      signature=np.array([s for _, s in keep], np.uint64).reshape(-1, signer.num_perm))
        matrix = np.array([cached[r.content_hash] for r in docs], np.uint64)
        self._say("Comparing documents…")
        pairs, _share = document_pairs(matrix, self.rules)
        out = []
        for g in components(len(docs), pairs.tolist()):
            group = self._group("document", [_member(docs[i]) for i in g], preferred)
            keeper = g[group.keeper]
            for i, m in zip(g, group.members):
                m.similarity = round(float((matrix[i] == matrix[keeper]).mean()), 3)
            out.append(group)
        return out


def _member(rec: Any, facts: tuple[np.ndarray, int, int, float, str] | None = None) -> Member:
    m = Member(path=rec.path, size=int(rec.size), mtime=rec.mtime_ns / 1e9, content_hash=rec.content_hash, kind=rec.kind)
    if facts is not None:
        _h, m.width, m.height, taken, m.camera = facts
        m.taken = None if math.isnan(taken) else taken
    return m


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


def differing_passages(store: Any, keeper: Any, other: Any, rules: Rules | None = None, limit: int = 20) -> list[str]:
    """Sentences of ``other`` (a file record) that share little text with ``keeper``'s:
    what an edited version added or rewrote (compared sentence by sentence, so a change
    inside a long passage still shows)."""
    rules = rules or Rules()
    kept: set[int] = set()
    for row in store.chunk_rows(keeper.fid, keeper.content_hash):
        kept.update(shingle_hashes([row.text], rules.shingle_words).tolist())
    out: list[str] = []
    for row in store.chunk_rows(other.fid, other.content_hash):
        for sentence in _SENTENCE_END.split(row.text):
            sh = shingle_hashes([sentence], rules.shingle_words)
            if len(sh) >= 4 and np.isin(sh, list(kept)).mean() < 0.5 and sentence.strip() not in out:
                out.append(sentence.strip())
                if len(out) >= limit:
                    return out
    return out
