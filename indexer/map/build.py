"""Making, keeping and reading a layer's map; what `LibrarySession`'s map methods call.

`update_map` brings a layer's kept map up to date with the index: with nothing changed
it only reads; files that arrived are placed among the others, which do not move (and
join the region of their nearest neighbour); files removed or changed drop out (a
changed one comes back as a new arrival); once more than `RELAYOUT_SHARE` of the last
full layout has come or gone, or the vector space changed, the whole layer is laid out
afresh and its regions found and named again. `load_map` reads the kept map and says
whether it is stale, without any layout or model.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexer.map import keep, layout, regions
from indexer.map.keep import KeptMap, KeptRegion
from indexer.store.read import StoreReader, VectorKind, live_hash
from indexer.store.tables import FileRecord
from indexer.types import LibraryMap, MapCluster, MapHits, MapLayer, MapPoint, SearchResult

log = logging.getLogger(__name__)

RELAYOUT_SHARE = 0.3
"""Lay the map out afresh once this share of the last full layout's files came or went."""

EMPTY_MESSAGE = {
    "documents": "No documents indexed yet: add a folder, and the map fills in as its files are read.",
    "images": "No pictures indexed yet: add a folder with pictures, and the map fills in as they are read.",
}
ONE_MESSAGE = {
    "documents": "Only one document so far: the map shows what sits near what once there are a few more.",
    "images": "Only one picture so far: the map shows what sits near what once there are a few more.",
}

Progress = Callable[[str, float], None]
Cancel = Callable[[], bool]
WordVectors = Callable[[Sequence[str]], "np.ndarray | None"]


def _say(progress: Progress | None, line: str, fraction: float) -> None:
    if progress is not None:
        progress(line, max(0.0, min(1.0, fraction)))


def layer_model(store: Any, layer: MapLayer) -> str:
    """The vector space a layer is laid out from: the store's model id and size."""
    model = store.text_model if layer == "documents" else store.image_model
    return f"{model[0]}/{model[1]}" if model else ""


def candidates(files: dict[str, FileRecord], layer: MapLayer) -> dict[str, FileRecord]:
    """The files a layer shows: indexed, available, of its kind (documents with passages)."""
    kind = "text" if layer == "documents" else "image"
    return {fid: r for fid, r in files.items()
            if r.kind == kind and live_hash(r) is not None and (layer == "images" or r.n_chunks > 0)}


# ------------------------------------------------------------------------------ vectors
def read_vectors(store: Any, layer: MapLayer, want: dict[str, FileRecord], progress: Progress | None = None,
                 cancel: Cancel | None = None) -> tuple[list[str], np.ndarray]:
    """One unit vector per wanted file: a document's is the mean of its passages' vectors
    (normalised), an image's its CLIP vector. Returns (fids, float32 [n, dim])."""
    reader = StoreReader(store)
    kind: VectorKind = "chunks" if layer == "documents" else "images"
    pos: dict[str, int] = {}
    sums: np.ndarray | None = None
    total = max(1, len(want))
    for batch in reader.iter_vectors(kind):
        if cancel is not None and cancel():
            break
        rows = [i for i, (f, h) in enumerate(zip(batch.fids, batch.file_hashes))
                if f in want and want[f].content_hash == h and (kind == "chunks" or f not in pos)]
        if not rows:
            continue
        if sums is None:
            sums = np.zeros((len(want), batch.vectors.shape[1]), np.float32)
        codes = np.fromiter((pos.setdefault(batch.fids[i], len(pos)) for i in rows), np.int64, count=len(rows))
        # Sum each file's rows of this batch at once (np.add.at is slow on a million rows).
        order = np.argsort(codes, kind="stable")
        sorted_codes = codes[order]
        starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
        sums[sorted_codes[starts]] += np.add.reduceat(batch.vectors[rows][order], starts, axis=0)
        _say(progress, f"Reading vectors: {len(pos):,} of {len(want):,} files", 0.3 * len(pos) / total)
    if sums is None or not pos:
        return [], np.zeros((0, 1), np.float32)
    vectors = sums[:len(pos)]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    good = (norms[:, 0] > 1e-12) & np.isfinite(norms[:, 0])
    vectors = np.where(good[:, None], vectors / np.where(norms > 0, norms, 1.0), 0.0).astype(np.float32)
    fids = list(pos)
    if not good.all():
        keep_rows = np.flatnonzero(good)
        fids, vectors = [fids[i] for i in keep_rows], vectors[keep_rows]
    return fids, vectors


# ------------------------------------------------------------------------------ labels
def _document_labels(store: Any, region_of: dict[str, int], want: dict[str, FileRecord]) -> dict[int, list[str]]:
    n_chunks = {f: want[f].n_chunks for f in region_of}
    return regions.document_words(StoreReader(store).iter_passages(set(region_of)), region_of, n_chunks)


def _image_labels(store: Any, fids: list[str], vectors: np.ndarray, region_ids: np.ndarray, k: int,
                  want: dict[str, FileRecord], word_vectors: WordVectors | None) -> dict[int, list[str]]:
    """Name words (shared by most of a region's file names), recognised text, then the
    vocabulary words nearest the region's centre through CLIP's text tower."""
    from indexer.map.vocabulary import NOUNS

    names: dict[int, list[str]] = {}
    for f, r in zip(fids, region_ids):
        if r >= 0:
            names.setdefault(int(r), []).append(want[f].name)
    by_name = regions.name_words(names)
    region_of = {f: int(r) for f, r in zip(fids, region_ids) if r >= 0}
    counter = regions.TermCounter()
    for pf, texts in StoreReader(store).iter_passages(set(region_of)):
        for f, text in zip(pf, texts):
            counter.add(region_of.get(f, -1), text, 1.0 / max(1, want[f].n_chunks) if f in want else 1.0, f)
    by_text = counter.top_words(2, min_weight=2.0)
    vocab: list[list[str]] = [[] for _ in range(k)]
    words = [w.replace("-", " ") for w in NOUNS]
    wv = word_vectors(words) if word_vectors is not None else None
    if wv is not None and len(wv) == len(words) and k:
        centres = np.zeros((k, vectors.shape[1]), np.float32)
        for r in range(k):
            m = vectors[region_ids == r].mean(axis=0)
            centres[r] = m / (np.linalg.norm(m) or 1.0)
        vocab = regions.vocabulary_words(centres, np.asarray(wv, np.float32), words)
    return {r: [*by_name.get(r, []), *by_text.get(r, []), *vocab[r]] for r in range(k)}


def vocabulary_vectors(data_dir: str | os.PathLike[str], model: str,
                       embed: Callable[[str], np.ndarray]) -> WordVectors:
    """CLIP text vectors of the vocabulary ("a photo of a …"), computed once per model and
    kept under the map folder."""

    def vectors(words: Sequence[str]) -> np.ndarray:
        key = hashlib.blake2b(("\n".join([model, *words])).encode(), digest_size=8).hexdigest()
        path = keep.map_dir(data_dir) / f"vocabulary-{key}.npy"
        try:
            cached = np.load(path, allow_pickle=False)
            if cached.shape[0] == len(words):
                return np.asarray(cached, np.float32)
        except (OSError, ValueError):
            pass
        out = np.stack([np.asarray(embed(f"a photo of a {w}"), np.float32) for w in words])
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, out)
            os.replace(tmp, path)
        except OSError as exc:
            log.info("vocabulary vectors not kept (%s)", exc)
        return out

    return vectors


def _fallback_label(fids: list[str], region_ids: np.ndarray, r: int, want: dict[str, FileRecord]) -> list[str]:
    """A region without words is named by the folder most of its files share."""
    folders = Counter(os.path.basename(want[f].folder.rstrip("/\\")) for f, g in zip(fids, region_ids) if g == r)
    return [folders.most_common(1)[0][0]] if folders else []


# ------------------------------------------------------------------------------ build
def update_map(store: Any, data_dir: str | os.PathLike[str], layer: MapLayer, *, progress: Progress | None = None,
               cancel: Cancel | None = None, fresh: bool = False, word_vectors: WordVectors | None = None,
               now: Callable[[], float] = time.time) -> LibraryMap:
    """Bring ``layer``'s kept map up to date (see the module docstring) and return it."""
    _say(progress, "Reading the index", 0.0)
    files = store.files()
    model = layer_model(store, layer)
    kept = keep.load(data_dir, layer)
    if kept is not None and kept.model != model:
        kept = None  # another vector space: nothing of it can be kept
    want = candidates(files, layer)
    if kept is not None and not fresh:
        same = [i for i, f in enumerate(kept.fids) if f in want and want[f].content_hash == kept.hashes[i]]
        if len(same) == len(kept.fids) and len(same) == len(want):
            _say(progress, "The map is up to date", 1.0)
            return assemble(kept, files, data_dir, want)
        kept_now = {kept.fids[i] for i in same}
        arrived = [f for f in want if f not in kept_now]
        removed = len(kept.fids) - len(same)
        old_vectors = None
        if same and kept.changed_since + len(arrived) + removed <= RELAYOUT_SHARE * max(kept.laid_out_n, 1):
            old_vectors = keep.load_vectors(data_dir, layer, len(kept.fids))
        if old_vectors is not None:
            # Placing: only the arrivals' vectors are read from the index.
            new_fids, new_vectors = read_vectors_of(store, layer, arrived, want)
            if cancel is not None and cancel():
                return _as_was(kept, files, data_dir, want, layer)
            if not new_fids and not removed:
                _say(progress, "The map is up to date", 1.0)  # what arrived has no vectors (yet)
                return assemble(kept, files, data_dir, want)
            changed = kept.changed_since + len(new_fids) + removed
            placed = _place(kept, same, old_vectors[same], new_fids, new_vectors, want, changed, now(), progress)
            keep.save(data_dir, placed)
            _say(progress, "Map updated", 1.0)
            return assemble(placed, files, data_dir, want)
    fids, vectors = read_vectors(store, layer, want, progress, cancel)
    if cancel is not None and cancel():
        return _as_was(kept, files, data_dir, want, layer)
    index = {f: i for i, f in enumerate(fids)}
    if kept is not None and not fresh:
        # A kept map without its vectors (or read wrong): placed from the vectors just read.
        old = [i for i, f in enumerate(kept.fids) if f in index and want[f].content_hash == kept.hashes[i]]
        old_set = {kept.fids[i] for i in old}
        added = [f for f in fids if f not in old_set]
        removed = len(kept.fids) - len(old)
        if not added and not removed:
            _say(progress, "The map is up to date", 1.0)
            return assemble(kept, files, data_dir, want)
        changed = kept.changed_since + len(added) + removed
        if old and changed <= RELAYOUT_SHARE * max(kept.laid_out_n, 1):
            old_vectors = vectors[[index[kept.fids[i]] for i in old]]
            new_vectors = vectors[[index[f] for f in added]] if added else np.zeros((0, vectors.shape[1]), np.float32)
            placed = _place(kept, old, old_vectors, added, new_vectors, want, changed, now(), progress)
            keep.save(data_dir, placed)
            _say(progress, "Map updated", 1.0)
            return assemble(placed, files, data_dir, want)
    made = _full(store, layer, model, fids, vectors, want, progress, cancel, word_vectors, now())
    if made is None:
        return _as_was(kept, files, data_dir, want, layer)
    keep.save(data_dir, made)
    _say(progress, "Map ready", 1.0)
    return assemble(made, files, data_dir, want)


def read_vectors_of(store: Any, layer: MapLayer, fids: Sequence[str], want: dict[str, FileRecord],
                    group: int = 500) -> tuple[list[str], np.ndarray]:
    """`read_vectors` for a few files (those that arrived): asked for by id, a group at a time."""
    reader = StoreReader(store)
    kind: VectorKind = "chunks" if layer == "documents" else "images"
    out_fids: list[str] = []
    out: list[np.ndarray] = []
    for start in range(0, len(fids), group):
        part = list(fids[start:start + group])
        got = reader.vectors_of(part, {f: want[f] for f in part}, kind)
        for f in part:
            rows = got.get(f)
            if rows is None or not len(rows):
                continue
            v = rows.astype(np.float64).mean(axis=0)
            norm = float(np.linalg.norm(v))
            if np.isfinite(norm) and norm > 1e-12:
                out_fids.append(f)
                out.append((v / norm).astype(np.float32))
    return out_fids, np.stack(out) if out else np.zeros((0, 1), np.float32)


def _place(kept: KeptMap, old: list[int], old_vectors: np.ndarray, added: list[str], new_vectors: np.ndarray,
           want: dict[str, FileRecord], changed: int, when: float, progress: Progress | None) -> KeptMap:
    _say(progress, f"Placing {len(added):,} new files", 0.5)
    old_fids = [kept.fids[i] for i in old]
    old_xy = kept.xy[old]
    old_regions = kept.regions[old]
    if added:
        new_xy, nearest = layout.place(new_vectors, old_vectors, old_xy)
        new_regions = old_regions[nearest]
    else:
        new_xy, new_regions = np.zeros((0, 2), np.float32), np.zeros(0, np.int32)
    all_regions = np.concatenate([old_regions, new_regions]).astype(np.int32)
    sizes = Counter(int(r) for r in all_regions if r >= 0)
    clusters = [KeptRegion(c.id, c.label, c.x, c.y, sizes[c.id], c.level, c.words) for c in kept.clusters if sizes[c.id]]
    vectors = np.vstack([old_vectors, new_vectors]) if added else old_vectors
    return KeptMap(
        layer=kept.layer, model=kept.model, method=kept.method, fids=[*old_fids, *added],
        hashes=[*(kept.hashes[i] for i in old), *(want[f].content_hash for f in added)],
        xy=np.vstack([old_xy, new_xy]).astype(np.float32), regions=all_regions, clusters=clusters,
        built_at=when, laid_out_at=kept.laid_out_at, laid_out_n=kept.laid_out_n, changed_since=changed,
        origin=kept.origin, span=kept.span, vectors=vectors,
    )


def _full(store: Any, layer: MapLayer, model: str, fids: list[str], vectors: np.ndarray, want: dict[str, FileRecord],
          progress: Progress | None, cancel: Cancel | None, word_vectors: WordVectors | None,
          when: float) -> KeptMap | None:
    n = len(fids)
    _say(progress, f"Laying out {n:,} files", 0.3)
    xy, method = layout.full_layout(vectors)
    if cancel is not None and cancel():
        return None
    origin, span = keep.scale_for(xy)
    _say(progress, "Finding regions", 0.75)
    region_ids = regions.find_clusters(xy)
    k = int(region_ids.max()) + 1 if n else 0
    label_xy = regions.centres(xy, region_ids, k)
    if cancel is not None and cancel():
        return None
    _say(progress, "Naming regions", 0.85)
    if layer == "documents":
        words = _document_labels(store, {f: int(r) for f, r in zip(fids, region_ids) if r >= 0}, want)
    else:
        words = _image_labels(store, fids, vectors, region_ids, k, want, word_vectors)
    sizes = np.bincount(region_ids[region_ids >= 0], minlength=k) if k else np.zeros(0, np.int64)
    composed = [regions.compose_label(words.get(r, []) or _fallback_label(fids, region_ids, r, want)) for r in range(k)]
    nx = [(float(label_xy[r, 0]) - origin[0]) / span for r in range(k)]
    ny = [(float(label_xy[r, 1]) - origin[1]) / span for r in range(k)]
    levels = regions.label_levels(nx, ny, [c[0] for c in composed], [int(s) for s in sizes])
    clusters = [KeptRegion(r, composed[r][0], float(label_xy[r, 0]), float(label_xy[r, 1]), int(sizes[r]), levels[r],
                           list(composed[r][1][:6])) for r in range(k)]
    return KeptMap(
        layer=layer, model=model, method=method, fids=list(fids), hashes=[want[f].content_hash for f in fids],
        xy=np.asarray(xy, np.float32).reshape(-1, 2), regions=region_ids, clusters=clusters, built_at=when,
        laid_out_at=when, laid_out_n=n, changed_since=0, origin=origin, span=span, vectors=vectors,
    )


def _as_was(kept: KeptMap | None, files: dict[str, FileRecord], data_dir: str | os.PathLike[str],
            want: dict[str, FileRecord], layer: MapLayer) -> LibraryMap:
    if kept is not None:
        return assemble(kept, files, data_dir, want)
    return LibraryMap(layer=layer, stale=bool(want), message="The map was not made (stopped); lay it out again to see it.")


# ------------------------------------------------------------------------------ reading
def assemble(kept: KeptMap, files: dict[str, FileRecord], data_dir: str | os.PathLike[str],
             want: dict[str, FileRecord]) -> LibraryMap:
    """The kept map as the window shows it: live files only, coordinates scaled to [0, 1]."""
    layer: MapLayer = "images" if kept.layer == "images" else "documents"
    thumbs: set[str] = set()
    if layer == "images":
        try:
            thumbs = set(os.listdir(Path(data_dir) / "thumbnails"))
        except OSError:
            thumbs = set()
    thumb_dir = str(Path(data_dir) / "thumbnails")
    points: list[MapPoint] = []
    stale = False
    ox, oy = kept.origin
    span = kept.span
    for i, fid in enumerate(kept.fids):
        rec = files.get(fid)
        if rec is None or live_hash(rec) != kept.hashes[i]:
            stale = True
            continue
        thumb = f"{rec.content_hash}.png"
        points.append(MapPoint(
            fid=fid, path=rec.path, name=rec.name, kind="image" if rec.kind == "image" else "text",
            x=(float(kept.xy[i, 0]) - ox) / span, y=(float(kept.xy[i, 1]) - oy) / span, cluster=int(kept.regions[i]),
            folder=rec.folder, mtime=rec.mtime_ns / 1e9, ext=rec.ext, size=rec.size,
            thumbnail=os.path.join(thumb_dir, thumb) if thumb in thumbs else "",
        ))
    kept_fids = set(kept.fids)
    stale = stale or any(f not in kept_fids for f in want)
    clusters = [MapCluster(c.id, c.label, (c.x - ox) / span, (c.y - oy) / span, c.size, c.level, tuple(c.words))
                for c in kept.clusters]
    message = _empty_message(layer, files) if not points else ONE_MESSAGE[layer] if len(points) == 1 else ""
    return LibraryMap(layer=layer, points=points, clusters=clusters, built_at=kept.built_at, stale=stale,
                      model=kept.model, method=kept.method, message=message)


def _empty_message(layer: MapLayer, files: dict[str, FileRecord]) -> str:
    """Why a layer has nothing to show: nothing indexed, or pictures waiting for the image model."""
    if layer == "images":
        waiting = sum(1 for r in files.values() if r.kind == "image" and r.state == "pending")
        if waiting:
            many = f"{waiting:,} pictures wait" if waiting != 1 else "1 picture waits"
            return f"{many} for the image model: they appear here once it is ready and they are read."
    return EMPTY_MESSAGE[layer]


def load_map(store: Any, data_dir: str | os.PathLike[str], layer: MapLayer) -> LibraryMap | None:
    """The kept map of a layer (None when never made, or made from another model's vectors)."""
    kept = keep.load(data_dir, layer)
    if kept is None or kept.model != layer_model(store, layer):
        return None
    files = store.files()
    return assemble(kept, files, data_dir, candidates(files, layer))


# ------------------------------------------------------------------------------ the session's calls
def load_library_map(store: Any, paths: Any, layer: MapLayer) -> LibraryMap | None:
    return load_map(store, paths.data_dir, _checked_layer(layer))


def build_library_map(runtime: Any, layer: MapLayer, *, progress: Progress | None = None,
                      cancel: Cancel | None = None, fresh: bool = False) -> LibraryMap:
    """`update_map` on a runtime's store; the images layer is named through the runtime's CLIP
    text tower when that model is at hand (never downloaded for this)."""
    layer = _checked_layer(layer)
    store = runtime.store
    word_vectors: WordVectors | None = None
    if layer == "images":
        word_vectors = _clip_words(runtime, store)
    return update_map(store, runtime.paths.data_dir, layer, progress=progress, cancel=cancel, fresh=fresh,
                      word_vectors=word_vectors)


def _clip_words(runtime: Any, store: Any) -> WordVectors | None:
    model = layer_model(store, "images")

    def vectors(words: Sequence[str]) -> np.ndarray | None:
        ok, why = runtime.image_ready(load=True)
        emb = runtime.image_embedder
        if not ok or f"{emb.model_id}/{emb.dim}" != model:
            log.info("image regions named without CLIP words: %s", why or "another image model")
            return None
        return vocabulary_vectors(runtime.paths.data_dir, model, emb.embed_query)(words)

    return vectors


def query_hits(runtime: Any, query: str, layer: MapLayer, limit: int = 200) -> MapHits:
    """The files a query finds on a layer (fid → score), through the runtime's searcher."""
    from indexer.search.query import RESULTS_MAX

    layer = _checked_layer(layer)
    kind = "text" if layer == "documents" else "image"
    resp = runtime.searcher().search(query, kind=kind, limit=max(1, min(int(limit), RESULTS_MAX)))
    resolve = runtime.store.fid_resolver()  # a followed folder's files keep their ids (and map points)
    scores = {resolve(r.path): float(r.score) for r in resp.results if r.kind == kind}
    message = resp.message
    if not scores and not message and (query or "").strip():
        message = "Nothing on this map matches."
    return MapHits(query=query, scores=scores, message=message)


PASSAGES_FOR = 20
"""`files_as_results` reads the opening passage of this many documents (a click asks for
one; a lasso's long list needs names, not passages)."""


def files_as_results(runtime: Any, fids: Sequence[str]) -> list[SearchResult]:
    """Indexed files as result rows (score 0), in the order given; others left out. The
    first `PASSAGES_FOR` documents carry their opening passage, for the preview."""
    store = runtime.store
    files = store.files()
    thumb_dir = Path(runtime.paths.data_dir) / "thumbnails"
    out: list[SearchResult] = []
    for fid in fids:
        rec = files.get(fid)
        if rec is None or rec.kind not in ("text", "image", "other") or not rec.available:
            continue
        thumb = thumb_dir / f"{rec.content_hash}.png" if rec.kind == "image" and rec.content_hash else None
        res = SearchResult(
            path=rec.path, kind="image" if rec.kind == "image" else "text" if rec.kind == "text" else "other",
            score=0.0, name=rec.name, folder=rec.folder, ext=rec.ext, size=rec.size, mtime=rec.mtime_ns / 1e9,
            thumbnail=str(thumb) if thumb is not None and thumb.is_file() else "", state=rec.state,
        )
        if rec.kind == "text" and live_hash(rec) is not None and len(out) < PASSAGES_FOR:
            rows = store.chunk_rows(rec.fid, rec.content_hash)
            if rows:
                first = min(rows, key=lambda r: r.ord)
                res.passage, res.passage_start, res.passage_end = first.text, first.start, first.end
        out.append(res)
    return out


def _checked_layer(layer: str) -> MapLayer:
    if layer == "documents":
        return "documents"
    if layer == "images":
        return "images"
    raise ValueError(f"unknown map layer {layer!r}: documents or images")
