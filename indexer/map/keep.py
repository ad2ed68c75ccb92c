"""The map kept with the index: ``<data dir>/map/<layer>.npz``, one file, written atomically.

It holds each point's file id, the content hash it was laid out from, its raw layout
coordinates, region and vector (float16: placing new files then reads only theirs from
the index), and a JSON header: the model (vector space) it was made from,
how and when it was laid out, the scale that maps the last full layout onto [0, 1], how
many files came and went since that layout, and the regions with their names and zoom
levels. A map made from another model's vectors is never shown (the session lays it out
again). Loaded without pickles; a damaged or unreadable file counts as no map.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

FORMAT = 1
LAYERS = ("documents", "images")


@dataclasses.dataclass
class KeptRegion:
    id: int
    label: str
    x: float  # raw layout coordinates
    y: float
    size: int
    level: int
    words: list[str]


@dataclasses.dataclass
class KeptMap:
    layer: str
    model: str
    method: str
    fids: list[str]
    hashes: list[str]
    xy: np.ndarray  # float32 [n, 2], raw layout coordinates
    regions: np.ndarray  # int32 [n], -1: none
    clusters: list[KeptRegion]
    built_at: float  # last write
    laid_out_at: float  # last full layout
    laid_out_n: int  # points in the last full layout
    changed_since: int  # files placed or dropped since the last full layout
    origin: tuple[float, float]  # raw (x, y) that maps to (0, 0) ...
    span: float  # ... and the raw length that maps to 1
    vectors: np.ndarray | None = None  # float16 [n, dim]: each point's vector, so placing new files
    # reads only theirs (written with the map; not read by `load`, see `load_vectors`)

    def normalised(self, x: float, y: float) -> tuple[float, float]:
        return (x - self.origin[0]) / self.span, (y - self.origin[1]) / self.span


def map_dir(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / "map"


def map_file(data_dir: str | os.PathLike[str], layer: str) -> Path:
    if layer not in LAYERS:
        raise ValueError(f"unknown map layer {layer!r}")
    return map_dir(data_dir) / f"{layer}.npz"


def scale_for(xy: np.ndarray) -> tuple[tuple[float, float], float]:
    """Origin and span that fit ``xy`` into [0, 1]² keeping its aspect, centred."""
    if not len(xy):
        return (0.0, 0.0), 1.0
    lo, hi = xy.min(axis=0).astype(np.float64), xy.max(axis=0).astype(np.float64)
    span = float(max(hi[0] - lo[0], hi[1] - lo[1]))
    if not np.isfinite(span) or span <= 1e-12:
        return (float(lo[0]) - 0.5, float(lo[1]) - 0.5), 1.0  # one point (or all in one place): the centre
    margin = 0.04 * span  # room for the outermost points' labels
    span_m = span + 2 * margin
    ox = float(lo[0]) - margin - (span - float(hi[0] - lo[0])) / 2
    oy = float(lo[1]) - margin - (span - float(hi[1] - lo[1])) / 2
    return (ox, oy), span_m


def save(data_dir: str | os.PathLike[str], kept: KeptMap) -> Path:
    """Write the map atomically (a temporary file in the same folder, then a rename)."""
    path = map_file(data_dir, kept.layer)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    header = {
        "format": FORMAT, "layer": kept.layer, "model": kept.model, "method": kept.method,
        "built_at": kept.built_at, "laid_out_at": kept.laid_out_at, "laid_out_n": kept.laid_out_n,
        "changed_since": kept.changed_since, "origin": list(kept.origin), "span": kept.span,
        "clusters": [dataclasses.asdict(c) for c in kept.clusters],
    }
    arrays: dict[str, np.ndarray] = {
        "header": np.array(json.dumps(header)),
        "fids": np.array(kept.fids, dtype=str) if kept.fids else np.zeros(0, "U1"),  # widest entry: never cut
        "hashes": np.array(kept.hashes, dtype=str) if kept.hashes else np.zeros(0, "U1"),
        "xy": np.asarray(kept.xy, np.float32).reshape(-1, 2),
        "regions": np.asarray(kept.regions, np.int32),
    }
    if kept.vectors is not None:
        arrays["vectors"] = np.asarray(kept.vectors, np.float16)
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]  # numpy's stubs type **kwds as allow_pickle
    fd, tmp = tempfile.mkstemp(prefix=f".{kept.layer}-", suffix=".npz.tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def load(data_dir: str | os.PathLike[str], layer: str) -> KeptMap | None:
    """The kept map of ``layer``, or None when there is none or it cannot be read."""
    path = map_file(data_dir, layer)
    try:
        with np.load(path, allow_pickle=False) as z:
            header: dict[str, Any] = json.loads(str(z["header"]))
            fids = [str(f) for f in z["fids"]]
            hashes = [str(h) for h in z["hashes"]]
            xy = np.asarray(z["xy"], np.float32).reshape(-1, 2)
            regions = np.asarray(z["regions"], np.int32)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:  # JSONDecodeError is a ValueError
        log.warning("the kept map %s cannot be read (%s); it will be laid out again", path, exc)
        return None
    if header.get("format") != FORMAT or header.get("layer") != layer or not (
            len(fids) == len(hashes) == len(xy) == len(regions)):
        log.warning("the kept map %s is of another format or inconsistent; it will be laid out again", path)
        return None
    try:
        clusters = [KeptRegion(int(c["id"]), str(c["label"]), float(c["x"]), float(c["y"]), int(c["size"]),
                               int(c["level"]), [str(w) for w in c.get("words", [])]) for c in header["clusters"]]
        origin = (float(header["origin"][0]), float(header["origin"][1]))
        span = float(header["span"]) or 1.0
        return KeptMap(
            layer=layer, model=str(header["model"]), method=str(header["method"]), fids=fids, hashes=hashes,
            xy=xy, regions=regions, clusters=clusters, built_at=float(header["built_at"]),
            laid_out_at=float(header["laid_out_at"]), laid_out_n=int(header["laid_out_n"]),
            changed_since=int(header["changed_since"]), origin=origin, span=span,
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        log.warning("the kept map %s has a damaged header (%s); it will be laid out again", path, exc)
        return None


def load_vectors(data_dir: str | os.PathLike[str], layer: str, n: int) -> np.ndarray | None:
    """The kept points' vectors (float32 [n, dim]), or None when missing or not ``n`` rows."""
    try:
        with np.load(map_file(data_dir, layer), allow_pickle=False) as z:
            if "vectors" not in z.files:
                return None
            vectors = np.asarray(z["vectors"], np.float32)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        log.info("the kept map's vectors cannot be read (%s); reading them from the index", exc)
        return None
    return vectors if vectors.ndim == 2 and len(vectors) == n else None
