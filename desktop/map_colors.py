"""How the map colours its points: by region, folder, type or date, with the legend to match.

Plain numpy and strings (colours as ``#rrggbb``): the canvas turns them into brushes.
Each scheme gives every point an index into a small palette, so the canvas draws one
batch per colour; the legend lists what each colour means, largest groups first.
"""

from __future__ import annotations

import datetime
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

# Tableau 10, reordered so neighbouring indices contrast; readable on light and dark.
QUALITATIVE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1",
               "#76b7b2", "#edc948", "#9c755f", "#ff9da7", "#5b8bd0",
               "#86bc6a", "#d37295")
OTHER = "#b8b8b8"  # noise, "other folders", unknown
# A perceptually even ramp (viridis, sampled) for dates: old = purple, new = yellow.
RAMP = ("#440154", "#482475", "#414487", "#355f8d", "#2a788e", "#21918c",
        "#22a884", "#44bf70", "#7ad151", "#bddf26", "#fde725")
MAX_GROUPS = 10  # named colours in the legend; the rest share OTHER

SCHEMES = (("region", "Region"), ("folder", "Folder"), ("type", "Type"), ("date", "Date"))

TYPE_NAMES = {
    ".pdf": "PDF", ".doc": "Word", ".docx": "Word", ".odt": "Word", ".rtf": "Word",
    ".md": "Markdown", ".markdown": "Markdown", ".rst": "Markdown",
    ".txt": "Plain text", ".text": "Plain text", ".log": "Plain text",
    ".html": "Web page", ".htm": "Web page", ".xml": "Web page",
    ".xlsx": "Spreadsheet", ".xls": "Spreadsheet", ".ods": "Spreadsheet", ".csv": "Spreadsheet",
    ".pptx": "Slides", ".ppt": "Slides", ".odp": "Slides", ".epub": "E-book",
    ".py": "Code", ".js": "Code", ".ts": "Code", ".c": "Code", ".h": "Code", ".cpp": "Code",
    ".java": "Code", ".go": "Code", ".rs": "Code", ".rb": "Code", ".sh": "Code", ".json": "Code",
    ".yaml": "Code", ".yml": "Code", ".toml": "Code", ".ini": "Code", ".sql": "Code",
    ".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".heic": "HEIC", ".heif": "HEIC",
    ".gif": "GIF", ".webp": "WebP", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "Bitmap",
}


@dataclass
class Coloring:
    """``index[i]`` is point i's colour in ``colors``; ``legend`` is (colour, text, count)."""

    index: np.ndarray
    colors: list[str]
    legend: list[tuple[str, str, int]] = field(default_factory=list)
    ramp: tuple[str, str] | None = None  # (oldest, newest) labels when the legend is a gradient


def _categorical(keys: Sequence[str], other_label: str, named: dict[str, str] | None = None) -> Coloring:
    """Largest groups get their own colour (up to MAX_GROUPS), the rest share grey."""
    counts = Counter(keys)
    top = [k for k, _ in counts.most_common() if k != ""][:MAX_GROUPS]
    slot = {k: i for i, k in enumerate(top)}
    colors = [QUALITATIVE[i % len(QUALITATIVE)] for i in range(len(top))] + [OTHER]
    other = len(top)
    index = np.fromiter((slot.get(k, other) for k in keys), dtype=np.int32, count=len(keys))
    legend = [(colors[i], (named or {}).get(k, k), counts[k]) for i, k in enumerate(top)]
    rest = int(np.count_nonzero(index == other))
    if rest:
        legend.append((OTHER, other_label, rest))
    return Coloring(index, colors, legend)


def by_region(clusters: Sequence[int], labels: dict[int, str]) -> Coloring:
    """Every region a colour (the palette repeats past a dozen, largest regions first);
    points in no region (-1) are grey. The legend names the largest regions."""
    ids = np.asarray(clusters, dtype=np.int64)
    found = ids[ids >= 0]
    counts = np.bincount(found) if found.size else np.zeros(0, np.int64)
    ranked = [int(c) for c in np.argsort(-counts, kind="stable") if counts[c] > 0]
    colors = [QUALITATIVE[i % len(QUALITATIVE)] for i in range(len(ranked))] + [OTHER]
    slot = np.full(len(counts) + 1, len(ranked), dtype=np.int32)  # the last slot: no region
    slot[ranked] = np.arange(len(ranked), dtype=np.int32)
    index = slot[np.where(ids >= 0, ids, len(counts))] if ids.size else np.zeros(0, np.int32)
    legend = [(colors[i], labels.get(c) or f"Region {c}", int(counts[c])) for i, c in enumerate(ranked[:MAX_GROUPS])]
    if len(ranked) > MAX_GROUPS:
        rest = sum(int(counts[c]) for c in ranked[MAX_GROUPS:])
        legend.append(("", f"and {len(ranked) - MAX_GROUPS} smaller regions", rest))
    outside = int(np.count_nonzero(ids < 0))
    if outside:
        legend.append((OTHER, "In no region", outside))
    return Coloring(index.astype(np.int32), colors, legend)


def folder_groups(folders: Sequence[str]) -> list[str]:
    """The first folder below what all points share (``Work``, ``Taxes``...), or the folder."""
    distinct = sorted({f for f in folders if f})
    if not distinct:
        return ["" for _ in folders]
    try:
        common = os.path.commonpath(distinct)
    except ValueError:  # different drives
        common = ""
    names: dict[str, str] = {}
    for f in distinct:
        rest = os.path.relpath(f, common) if common else f
        head = rest.split(os.sep)[0] if rest not in (".", "") else os.path.basename(f) or f
        names[f] = head
    return [names.get(f, "") for f in folders]


def by_folder(folders: Sequence[str]) -> Coloring:
    return _categorical(folder_groups(folders), "Other folders")


def type_name(path: str) -> str:
    """'PDF', 'Markdown', 'JPEG'...: by extension (a path, or the extension itself)."""
    ext = os.path.splitext(path)[1].lower() or (path.lower() if path.startswith(".") else "")
    return TYPE_NAMES.get(ext, ext.lstrip(".").upper() or "No extension")


def by_type(paths: Sequence[str]) -> Coloring:
    """``paths``: paths or extensions (``.pdf``); each distinct one is named once."""
    named: dict[str, str] = {}
    keys = []
    for p in paths:
        name = named.get(p)
        if name is None:
            name = named[p] = type_name(p)
        keys.append(name)
    return _categorical(keys, "Other types")


def by_date(mtimes: np.ndarray) -> Coloring:
    """Oldest to newest along the ramp (the 2nd to 98th percentile, so one odd date
    does not wash the rest out); the legend is a gradient between the two dates."""
    t = np.asarray(mtimes, dtype=np.float64)
    if t.size == 0:
        return Coloring(np.zeros(0, np.int32), list(RAMP), [], ("", ""))
    lo, hi = (float(v) for v in np.percentile(t, [2, 98]))
    span = max(hi - lo, 1.0)
    index = np.clip(((t - lo) / span * (len(RAMP) - 1)).round(), 0, len(RAMP) - 1).astype(np.int32)
    return Coloring(index, list(RAMP), [], (_day(lo), _day(hi)))


def _day(ts: float) -> str:
    try:
        return datetime.datetime.fromtimestamp(ts).strftime("%b %Y")
    except (OverflowError, OSError, ValueError):
        return "?"


def coloring(scheme: str, *, clusters: Sequence[int], labels: dict[int, str], folders: Sequence[str],
             paths: Sequence[str], mtimes: np.ndarray) -> Coloring:
    if scheme == "folder":
        return by_folder(folders)
    if scheme == "type":
        return by_type(paths)
    if scheme == "date":
        return by_date(mtimes)
    return by_region(clusters, labels)
