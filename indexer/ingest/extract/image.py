"""Decode one image safely: allowlisted formats, bomb guard, first frame, upright, RGB.

RELIABILITY X1-X5, S7: Pillow only opens the formats we list (never EPS/PS/PDF
/FITS...), the pixel count is checked against ``Image.MAX_IMAGE_PIXELS`` before
any decode, JPEGs decode at reduced size (``draft``), only the first frame of an
animation is ever touched, EXIF orientation is applied first, every mode is
normalised to RGB, and the thumbnail is a fresh PNG with no metadata.
"""

from __future__ import annotations

import io
import logging
import os
import struct
import threading

from indexer.ingest.extract.text import MB
from indexer.ingest.safe_open import OpenFile, opened
from indexer.library.settings import Settings
from indexer.types import ExtractionError, ImageExtraction, NameOnly

log = logging.getLogger(__name__)

MODEL_SHORT_SIDE = 256
"""Short side of the picture handed to CLIP (which reads 224 px) and to the thumbnail. Just
above 224, so a camera JPEG decodes at 1/8 scale in the DCT (4000×3000 → 500×375), the
cheapest decode there is; CLIP's own resize stays a mild one. Was 448 (a 1/4 decode and a
larger resize): the model's input differs by ≥ 49 dB PSNR on textured 12 MP photos and
extraction takes a third less (docs/PERFORMANCE.md, "Measured alone, 2026-12-01")."""
THUMB_LONG_SIDE = 256
MAX_ASPECT = 4.0  # CLIP only sees the centre square; a 100:1 strip is cropped to 4:1 around it
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF", "HEIF")
_HEIF_EXTS = frozenset({"heic", "heif"})

_register_lock = threading.Lock()
_heif_state: bool | None = None  # None: not tried; True: registered; False: unavailable


def _ensure_heif() -> bool:
    global _heif_state
    with _register_lock:
        if _heif_state is None:
            try:
                import pillow_heif

                pillow_heif.register_heif_opener()
                _heif_state = True
            except (ImportError, OSError) as exc:
                log.info("HEIC support unavailable: %s", exc)
                _heif_state = False
        return _heif_state


def _pil_errors() -> tuple[type[BaseException], ...]:
    from PIL import Image

    # Pillow's own fuzzers expect exactly this zoo (Tests/oss-fuzz/test_fuzzers.py).
    return (OSError, SyntaxError, ValueError, MemoryError, NotImplementedError, OverflowError,
            struct.error, EOFError, IndexError, KeyError, TypeError, ZeroDivisionError,
            Image.DecompressionBombError, Image.DecompressionBombWarning)


def _reason(exc: BaseException) -> str:
    from PIL import Image, UnidentifiedImageError

    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return "image too large (decompression bomb guard)"
    if isinstance(exc, UnidentifiedImageError):
        return "not a supported image format (or corrupt)"
    if isinstance(exc, MemoryError):
        return "image needs too much memory to decode"
    return f"truncated or corrupt image ({type(exc).__name__})"


def to_rgb(img: object) -> object:
    """Normalise any Pillow mode to RGB (alpha composited on white, 16-bit/float rescaled)."""
    from PIL import Image

    assert isinstance(img, Image.Image)
    mode = img.mode
    if mode == "RGB":
        return img
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
        if mode == "RGB":
            return img
    if mode in ("LA", "PA", "La", "RGBa") or (mode == "L" and "transparency" in img.info):
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode == "RGBA":
        bg = Image.new("RGB", img.size, (255, 255, 255))
        bg.paste(img, mask=img.getchannel("A"))
        return bg
    if mode in ("I", "F") or mode.startswith("I;16"):
        import numpy as np

        arr = np.asarray(img, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        return Image.fromarray(scaled.clip(0, 255).astype(np.uint8), "L").convert("RGB")
    if mode == "1":
        return img.convert("L").convert("RGB")
    return img.convert("RGB")  # L, CMYK (Pillow inverts Adobe CMYK), YCbCr, LAB, HSV


def _downscale(img: object, short_side: int) -> object:
    from PIL import Image

    assert isinstance(img, Image.Image)
    w, h = img.size
    s = min(w, h)
    if s <= short_side:
        return img
    ratio = short_side / s
    size = (max(1, round(w * ratio)), max(1, round(h * ratio)))
    return img.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)


def _crop_extreme_aspect(img: object) -> object:
    """Centre-crop panoramas/strips beyond MAX_ASPECT so the model input stays small."""
    from PIL import Image

    assert isinstance(img, Image.Image)
    w, h = img.size
    if w > h * MAX_ASPECT:
        keep = max(1, int(h * MAX_ASPECT))
        left = (w - keep) // 2
        return img.crop((left, 0, left + keep, h))
    if h > w * MAX_ASPECT:
        keep = max(1, int(w * MAX_ASPECT))
        top = (h - keep) // 2
        return img.crop((0, top, w, top + keep))
    return img


def _thumbnail_png(img: object) -> bytes:
    from PIL import Image

    assert isinstance(img, Image.Image)
    thumb = img.copy()
    thumb.thumbnail((THUMB_LONG_SIDE, THUMB_LONG_SIDE), Image.Resampling.BICUBIC)
    thumb.info.clear()  # no EXIF/GPS/ICC/text chunks can ride along (S7)
    buf = io.BytesIO()
    # Level 1: a third of level 6's time for 15 % more bytes (5.6 vs 17 ms a thumbnail).
    thumb.save(buf, "PNG", optimize=False, compress_level=1)
    return buf.getvalue()


def _orientation(img: object) -> int:
    try:
        return int(img.getexif().get(0x0112, 1))  # type: ignore[attr-defined]
    except (ValueError, TypeError, OSError, SyntaxError, struct.error, KeyError):
        return 1  # unreadable EXIF: show as stored


def extract_image(path: str, settings: Settings, source: OpenFile | None = None) -> ImageExtraction:
    """``source``: the file already opened under its watched folder (read from its start, left open)."""
    from indexer.ingest.extract import extension

    ext = extension(path)
    if ext in _HEIF_EXTS and not _ensure_heif():
        raise NameOnly("HEIC/HEIF support is not installed (pillow-heif)")
    with opened(path, source) as f, open(f.fd, "rb", closefd=False) as fh:
        return _extract_open(fh, f.st, path, ext, settings)


def _extract_open(fh: io.BufferedReader, st: os.stat_result, path: str, ext: str, settings: Settings) -> ImageExtraction:
    try:
        fh.seek(0)
        if st.st_size == 0:
            raise ExtractionError("empty image file")
        cap = int(settings.max_image_mb * MB)
        if st.st_size > cap:
            raise NameOnly(f"image file too large ({st.st_size / MB:.0f} MB > {cap / MB:.0f} MB cap)")
        if ext not in _HEIF_EXTS:
            _ensure_heif_if_magic(fh)
        return _decode(fh)
    except (ExtractionError, NameOnly):
        raise
    except _pil_errors() as exc:
        log.debug("cannot decode %r: %r", path, exc)
        raise ExtractionError(_reason(exc)) from exc


def _ensure_heif_if_magic(fh: io.BufferedReader) -> None:
    """HEIC photos are sometimes named .jpg; register the opener only when the bytes say so."""
    head = fh.read(16)
    fh.seek(0)
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"heim", b"heis", b"hevc"):
        _ensure_heif()


def _decode(fh: io.BufferedReader) -> ImageExtraction:
    from PIL import Image, ImageOps

    Image.init()
    # Only formats whose plugin is registered: Image.open raises KeyError on unknown names.
    img = Image.open(fh, formats=[f for f in ALLOWED_FORMATS if f in Image.OPEN])
    w, h = img.size
    # Image.open raises at 2x MAX_IMAGE_PIXELS and only *warns* at 1x. We treat the
    # warning threshold as an error ourselves: catch_warnings() swaps the process-wide
    # filter list and is not thread-safe, and decoding runs on a thread pool.
    if Image.MAX_IMAGE_PIXELS and w * h > Image.MAX_IMAGE_PIXELS:
        raise Image.DecompressionBombError(f"{w}x{h} pixels")
    orientation = _orientation(img)
    if orientation in (5, 6, 7, 8):
        w, h = h, w
    if img.format == "JPEG":
        # Decode at 1/2, 1/4 or 1/8 scale, still >= MODEL_SHORT_SIDE on both sides.
        img.draft("RGB", (MODEL_SHORT_SIDE, MODEL_SHORT_SIDE))
    # Only the first frame: load() decodes the current (first) frame; we never
    # seek or ask for n_frames, which would parse every frame (X5).
    img.load()
    upright = ImageOps.exif_transpose(img) or img
    rgb = _crop_extreme_aspect(to_rgb(upright))
    small = _downscale(rgb, MODEL_SHORT_SIDE)
    return ImageExtraction(image=small, thumbnail_png=_thumbnail_png(small), width=w, height=h)
