"""The Map view's drawing (issue 17): frames per second while panning 100k points, and what
zooming, hovering, a lasso and lighting up a query cost.

The canvas (`desktop.map_canvas.MapCanvas`) is driven offscreen (Qt's raster engine, as on
a desktop without OpenGL): synthetic clustered layouts of N points (30 regions of uneven
size, labels on each; the view's own colouring by region) in a 1100 x 700 canvas.

- pan: steps of 4 px (a brisk drag at 60 Hz) for ``--seconds``, each step repainted
  synchronously (`repaint`) after the event loop has run once; the cached image is moved,
  and drawn afresh when the drag leaves its margin (at once up to 20,000 points, on the
  drawing thread beyond, the old image shown meanwhile). Reported: frames per second,
  median and 95th-percentile frame time, the worst frame, and how many frames brought a
  fresh drawing.
- zoom: wheel steps (the cached image stretched) and the fresh drawing once it settles.
- fresh drawing: the whole map drawn into the cache (what a resize, a colour change or a
  query costs, on the window's thread up to 20,000 points, else on the drawing thread),
  mean of several.
- hover: `point_at` (grid lookup) at random places; lasso: the points inside a polygon
  covering about a quarter of the map; set: building the arrays and the grid.

    .venv/bin/python bench/bench_map_view.py                         # 10k and 100k, 5 s pans
    .venv/bin/python bench/bench_map_view.py --points 2000 --seconds 0.5   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np

W, H = 1100, 700


def clustered(n: int, seed: int = 1, k: int = 30) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n points in k Gaussian regions of uneven size and spread, plus 3 % strays."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 1, (k, 2))
    topic = rng.choice(k, size=n, p=rng.dirichlet(np.full(k, 1.5)))
    xy = centres[topic] + rng.normal(size=(n, 2)) * rng.uniform(0.015, 0.05, k)[topic, None]
    stray = rng.random(n) < 0.03
    xy[stray] = rng.uniform(0, 1, (int(stray.sum()), 2))
    topic[stray] = -1
    return xy, topic, centres


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "uptime unavailable"


def measure(n: int, seconds: float, sync_points: int | None = None) -> dict[str, Any]:
    from PySide6.QtCore import QPointF
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from desktop import map_colors
    from desktop.map_canvas import MapCanvas, MapLabel

    app = QApplication.instance() or QApplication([])
    xy, topic, centres = clustered(n)
    labels = [MapLabel(f"region {i} · words · here", float(centres[i, 0]), float(centres[i, 1]),
                       int((topic == i).sum()), 0 if i < 12 else 1) for i in range(len(centres))]
    canvas = MapCanvas()
    if sync_points is not None:
        canvas.sync_points = sync_points
    canvas.resize(W, H)
    canvas.show()
    QTest.qWaitForWindowExposed(canvas)
    t = time.perf_counter()
    canvas.set_points(xy, [f"file-{i}.pdf" for i in range(n)], ["/home/ada/Documents"] * n, [""] * n, labels)
    coloring = map_colors.by_region(topic.tolist(), {i: f"region {i}" for i in range(len(centres))})
    canvas.set_colors(coloring.index, coloring.colors)
    set_s = time.perf_counter() - t
    app.processEvents()

    fresh = []
    for _ in range(5):
        t = time.perf_counter()
        canvas._render()  # what the drawing thread does (on this thread for maps up to SYNC_POINTS)
        fresh.append(time.perf_counter() - t)

    frames, redraws = [], 0
    end = time.perf_counter() + seconds
    step, direction = 4.0, 1.0
    travelled = 0.0
    while time.perf_counter() < end:
        before = canvas._cache
        t = time.perf_counter()
        canvas.pan_by(step * direction, step * 0.35 * direction)
        app.processEvents()  # a drawing finished on the drawing thread arrives here, as in the window
        canvas.repaint()
        frames.append(time.perf_counter() - t)
        redraws += canvas._cache is not before
        travelled += step
        if travelled > W * 1.5:  # drag back and forth across the map
            direction, travelled = -direction, 0.0
    pan_s = sum(frames)

    zoom_frames = []
    for i in range(20):
        t = time.perf_counter()
        canvas.zoom_at(1.12 if i < 10 else 1 / 1.12, QPointF(W * 0.4, H * 0.6))
        canvas.repaint()
        zoom_frames.append(time.perf_counter() - t)
    canvas._settle.stop()
    t = time.perf_counter()
    canvas._render()
    settle = time.perf_counter() - t

    canvas.fit()
    rng = np.random.default_rng(2)
    spots = rng.uniform(0, 1, (2000, 2)) * [W, H]
    t = time.perf_counter()
    for x, y in spots:
        canvas.point_at(QPointF(float(x), float(y)))
    hover_us = (time.perf_counter() - t) / len(spots) * 1e6
    ring = [QPointF(W / 2 + np.cos(a) * W * 0.28, H / 2 + np.sin(a) * H * 0.3) for a in np.linspace(0, 6.283, 120)]
    t = time.perf_counter()
    inside = canvas.points_inside(ring)
    lasso_ms = (time.perf_counter() - t) * 1000
    mask = rng.random(n) < 200 / n
    t = time.perf_counter()
    canvas.set_highlight(mask)
    canvas._render()
    query_ms = (time.perf_counter() - t) * 1000
    canvas.wait()
    canvas.close()
    canvas.deleteLater()
    app.processEvents()

    ms = sorted(f * 1000 for f in frames)
    return {
        "points": n, "set_ms": set_s * 1000, "fresh_ms": statistics.mean(fresh) * 1000,
        "pan_fps": len(frames) / pan_s if pan_s else 0.0, "pan_frames": len(frames), "pan_redraws": redraws,
        "pan_median_ms": statistics.median(ms), "pan_p95_ms": ms[int(len(ms) * 0.95) - 1] if ms else 0.0,
        "pan_worst_ms": ms[-1] if ms else 0.0,
        "zoom_fps": len(zoom_frames) / sum(zoom_frames), "zoom_settle_ms": settle * 1000,
        "hover_us": hover_us, "lasso_ms": lasso_ms, "lasso_points": int(len(inside)), "query_ms": query_ms,
    }


def table(rows: list[dict[str, Any]]) -> str:
    head = ("| points | pan fps | pan median / p95 / worst ms | fresh drawings while panning | zoom fps | "
            "drawn afresh (settle) ms | full redraw ms | query lit ms | hover µs | lasso ms (points) | set ms |")
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        out.append(f"| {r['points']:,} | {r['pan_fps']:.0f} | {r['pan_median_ms']:.1f} / {r['pan_p95_ms']:.1f} / "
                   f"{r['pan_worst_ms']:.0f} | {r['pan_redraws']} of {r['pan_frames']} | {r['zoom_fps']:.0f} | "
                   f"{r['zoom_settle_ms']:.0f} | {r['fresh_ms']:.0f} | {r['query_ms']:.0f} | {r['hover_us']:.0f} | "
                   f"{r['lasso_ms']:.1f} ({r['lasso_points']:,}) | {r['set_ms']:.0f} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", default="10000,100000", help="comma-separated sizes")
    ap.add_argument("--seconds", type=float, default=5.0, help="panning time per size")
    ap.add_argument("--sync-points", type=int, default=None,
                    help="draw maps up to this size on the window's thread (default: the view's own, 20,000); "
                         "a large number compares drawing everything there")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args(argv)
    print(f"before: {uptime()}")
    rows = [measure(int(n), args.seconds, args.sync_points) for n in args.points.split(",")]
    print(f"after:  {uptime()}")
    print(f"canvas {W}x{H}, QT_QPA_PLATFORM={os.environ.get('QT_QPA_PLATFORM')}, {os.cpu_count()} CPUs")
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
