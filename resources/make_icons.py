"""Render the Lodestar mark (resources/icons/lodestar.svg) to PNGs at the usual icon sizes.

Run: python resources/make_icons.py   (offscreen Qt is enough)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

HERE = Path(__file__).resolve().parent / "icons"
SIZES = (16, 32, 64, 128, 256)

# A four-pointed compass star over a night-blue disc, with a small north star.
SVG = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 256 256">
  <defs>
    <radialGradient id="sky" cx="50%" cy="40%" r="65%">
      <stop offset="0" stop-color="#2d4a8a"/>
      <stop offset="1" stop-color="#101c3c"/>
    </radialGradient>
    <linearGradient id="gold" x1="0" y1="0" x2="0" y2="1">
      <stop offset="0" stop-color="#ffe9a3"/>
      <stop offset="1" stop-color="#f2b632"/>
    </linearGradient>
  </defs>
  <circle cx="128" cy="128" r="120" fill="url(#sky)"/>
  <circle cx="128" cy="128" r="104" fill="none" stroke="#8fa7d9" stroke-width="4" stroke-opacity="0.55"/>
  <path d="M128 22 L146 110 L234 128 L146 146 L128 234 L110 146 L22 128 L110 110 Z" fill="url(#gold)"/>
  <path d="M128 22 L146 110 L128 128 Z M234 128 L146 146 L128 128 Z M128 234 L110 146 L128 128 Z M22 128 L110 110 L128 128 Z"
        fill="#c98a10" fill-opacity="0.55"/>
  <path d="M128 70 L136 120 L186 128 L136 136 L128 186 L120 136 L70 128 L120 120 Z" fill="#fff6d6" fill-opacity="0.9"
        transform="rotate(45 128 128)"/>
  <circle cx="128" cy="128" r="10" fill="#101c3c"/>
  <circle cx="128" cy="128" r="5" fill="#ffe9a3"/>
</svg>
"""


def main() -> int:
    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    HERE.mkdir(parents=True, exist_ok=True)
    svg_path = HERE / "lodestar.svg"
    svg_path.write_text(SVG, encoding="utf-8")
    renderer = QSvgRenderer(str(svg_path))
    if not renderer.isValid():
        print("invalid SVG", file=sys.stderr)
        return 1
    for size in SIZES:
        img = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        img.fill(Qt.GlobalColor.transparent)
        painter = QPainter(img)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter, QRectF(0, 0, size, size))
        painter.end()
        out = HERE / f"lodestar-{size}.png"
        if not img.save(str(out), "PNG"):
            print(f"cannot write {out}", file=sys.stderr)
            return 1
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
