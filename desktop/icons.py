"""Icons: the app mark from resources/icons and small per-type icons from the style."""

from __future__ import annotations

import functools
from pathlib import Path

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QStyle

ICON_DIR = Path(__file__).resolve().parent.parent / "resources" / "icons"

DOCUMENT_EXTS = {".pdf", ".docx", ".doc", ".odt", ".rtf", ".epub"}


@functools.cache
def app_icon() -> QIcon:
    icon = QIcon()
    for size in (16, 32, 64, 128, 256):
        png = ICON_DIR / f"lodestar-{size}.png"
        if png.exists():
            icon.addFile(str(png))
    svg = ICON_DIR / "lodestar.svg"
    if icon.isNull() and svg.exists():
        icon.addFile(str(svg))
    return icon


def _std(pixmap: QStyle.StandardPixmap) -> QIcon:
    app = QApplication.instance()
    style = app.style() if isinstance(app, QApplication) else None
    return style.standardIcon(pixmap) if style is not None else QIcon()


def type_icon(kind: str, ext: str = "") -> QIcon:
    """A themed icon for a result kind (falls back to the style's standard icons)."""
    ext = ext.lower() if ext.startswith(".") else f".{ext.lower()}" if ext else ""
    if kind == "image":
        return QIcon.fromTheme("image-x-generic", _std(QStyle.StandardPixmap.SP_FileIcon))
    if ext == ".pdf":
        return QIcon.fromTheme("application-pdf", _std(QStyle.StandardPixmap.SP_FileIcon))
    if ext in DOCUMENT_EXTS:
        return QIcon.fromTheme("x-office-document", _std(QStyle.StandardPixmap.SP_FileIcon))
    if kind == "text":
        return QIcon.fromTheme("text-x-generic", _std(QStyle.StandardPixmap.SP_FileIcon))
    return QIcon.fromTheme("unknown", _std(QStyle.StandardPixmap.SP_FileIcon))
