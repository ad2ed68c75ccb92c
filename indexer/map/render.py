"""A map as a picture (`lodestar map --png`): points coloured by region, regions named.

Drawn with Pillow (no plotting library): each point a small disc in its region's colour
(grey outside any region), then the labels whose zoom level fits the picture's size, in
dark text on a light halo, largest regions first, a title line at the top.
"""

from __future__ import annotations

import datetime as _dt
import math
from pathlib import Path
from typing import Any

from indexer.map import regions
from indexer.types import LibraryMap

# Distinct, readable on white (Tableau 20, darker halves first).
PALETTE = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
    (227, 119, 194), (188, 189, 34), (23, 190, 207), (127, 127, 127), (174, 199, 232), (255, 187, 120),
    (152, 223, 138), (255, 152, 150), (197, 176, 213), (196, 156, 148), (247, 182, 210), (219, 219, 141),
    (158, 218, 229), (57, 59, 121),
]
NOISE = (190, 190, 190)
BACKGROUND = (250, 250, 248)
INK = (30, 30, 34)


def colour(cluster: int) -> tuple[int, int, int]:
    return NOISE if cluster < 0 else PALETTE[cluster % len(PALETTE)]


def _font(size: int) -> Any:
    from PIL import ImageFont

    for name in ("DejaVuSans.ttf", "Arial.ttf", "LiberationSans-Regular.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def render_png(m: LibraryMap, out: str | Path, width: int = 1600, height: int = 1200) -> Path:
    """Draw ``m`` into a PNG of ``width`` x ``height`` pixels at ``out``; returns the path."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(img)
    title_h = 44
    side = min(width, height - title_h) - 20
    ox = (width - side) / 2
    oy = title_h + (height - title_h - side) / 2

    def to_px(x: float, y: float) -> tuple[float, float]:
        return ox + x * side, oy + y * side  # y grows downwards, as in the window

    n = len(m.points)
    r = 4.0 if n < 500 else 2.5 if n < 5000 else 1.5 if n < 30000 else 0.8
    for p in sorted(m.points, key=lambda p: p.cluster >= 0):  # regions over strays
        cx, cy = to_px(p.x, p.y)
        if r < 1.0:
            draw.point((cx, cy), fill=colour(p.cluster))
        else:
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour(p.cluster))
    # The zoom level at which the picture's scale matches the levels' (regions.VIEW_PX at 0).
    level = max(0, int(math.floor(math.log2(max(side, 1) / regions.VIEW_PX) + 1e-9)))
    font = _font(15)
    for c in sorted(m.clusters, key=lambda c: (c.level, -c.size)):
        if c.level > level or not c.label:
            continue
        cx, cy = to_px(c.x, c.y)
        box = draw.textbbox((0, 0), c.label, font=font)
        w, h = box[2] - box[0], box[3] - box[1]
        draw.text((cx - w / 2, cy - h / 2), c.label, font=font, fill=INK, stroke_width=3,
                  stroke_fill=(255, 255, 255))
    title = f"Lodestar map · {m.layer} · {n:,} file{'s' if n != 1 else ''}"
    if m.built_at:
        title += " · " + _dt.datetime.fromtimestamp(m.built_at).strftime("%Y-%m-%d %H:%M")
    draw.text((16, 12), title, font=_font(18), fill=INK)
    if m.message:
        box = draw.textbbox((0, 0), m.message, font=_font(16))
        draw.text(((width - (box[2] - box[0])) / 2, height / 2), m.message, font=_font(16), fill=INK)
    path = Path(out)
    img.save(path, format="PNG")
    return path
