"""A query image (a path, raw bytes from a drop or the clipboard, or a PIL image) → RGB PIL.

Every query image goes through the same guarded decoder as indexed images
(`indexer.ingest.extract.extract_image`), imported when an image is asked for.
"""

from __future__ import annotations

import os
from typing import Any


def decode_query_image(image: Any) -> Any:
    """A path, raw bytes or a PIL image → an RGB PIL image (through the safe extractor)."""
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.convert("RGB")
    from indexer.ingest.extract import extract_image
    from indexer.library.settings import Settings

    if isinstance(image, (bytes, bytearray, memoryview)):
        # Raw bytes (drag-and-drop, clipboard) go through the same guarded decoder.
        import tempfile

        data = bytes(image)
        with tempfile.TemporaryDirectory(prefix="lodestar-query-") as tmp:
            path = os.path.join(tmp, "query" + _sniff_ext(data))
            with open(path, "wb") as fh:
                fh.write(data)
            return extract_image(path, Settings()).image
    return extract_image(os.fspath(image), Settings()).image


def _sniff_ext(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return ".png"
    if data.startswith(b"\xff\xd8"):
        return ".jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    if data[:3] == b"GIF":
        return ".gif"
    if data[:2] == b"BM":
        return ".bmp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return ".tiff"
    return ".png"
