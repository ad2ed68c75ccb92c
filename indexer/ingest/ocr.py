"""Words inside pictures and scans: text recognition with rapidocr, offline (issue 16).

`rapidocr`'s wheel ships the PP-OCR detection and recognition ONNX models and runs
them on ONNX Runtime: nothing is downloaded. This module is the narrow interface the
rest of Lodestar uses:

- `TextLine`: one recognised line, its text, the four corners of its box in pixels of
  the ORIGINAL image (upright, after EXIF orientation) and the recogniser's confidence.
- `Recogniser`: the engine, loaded lazily once per process and shared; thread-safe.
  `has_text` is the cheap gate (the detector alone on a small downscale: a photo with
  nothing to read costs a few tens of milliseconds), `read` the full recognition with a
  per-image time bound and a pixel bound (large images are downscaled first).
- `read_pdf_scans`: the pages of a PDF that have no text layer, rendered with pypdfium2
  in the sandboxed document worker (a hostile PDF never runs in this process), read.
- `reading_order` and `passage_text`: lines top-to-bottom, left-to-right, joined into
  a passage whose line spans are kept, so a highlight maps back to boxes.

Heavy imports (rapidocr, onnxruntime, cv2, pypdfium2, Pillow) stay inside functions.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from indexer.types import ExtractionError, NameOnly

log = logging.getLogger(__name__)

Point = tuple[float, float]
Box = tuple[Point, Point, Point, Point]

READ_MAX_SIDE = 2000
"""The long side an image is brought down to before recognition (pixel and memory bound:
2000 x 2000 RGB is 12 MB; the detector's own working copy is about 4x that)."""
GATE_MAX_SIDE = 512
"""The long side of the downscale the gate's detector looks at (a multiple of 32, as the
detector wants). The gate's cost grows with its square: 640 took ~2x the time of 480 under
the same load (250 vs 129 ms a photo); smaller misses small print (a line must be >= 4 px
high here). `bench/bench_ocr_stage.py --gate-side N` measures the trade-off."""
GATE_MIN_BOXES = 1
"""Text-shaped regions the gate must find on the downscale to call an image worth reading."""
GATE_MAX_AREA = 0.5
"""A region covering more of the picture than this is texture (grain, foliage), not a line."""
TIME_LIMIT_S = 20.0
"""Per image (or PDF page): recognition stops taking new lines past this, keeps what it read."""
MAX_LINES = 400
"""Text regions recognised per image at most (a page of small print is ~60 lines)."""
MIN_SCORE = 0.5
"""Lines the recogniser is less sure of than this are dropped (rapidocr's default)."""
REC_BATCH = 8
PDF_DPI = 150
"""Scanned pages are rendered at this resolution (an A4 page: 1240 x 1754 px)."""
PDF_MAX_PAGES = 50
"""Scanned pages read per PDF at most (the first ones); the rest are said in the log."""
PDF_TIMEOUT_S = 120.0


@dataclasses.dataclass(frozen=True)
class TextLine:
    """One line of recognised text. ``box``: four corners (x, y) clockwise from top-left,
    in pixels of the original upright image; for a PDF page, in PDF points (1/72 inch)
    from the page's top-left corner."""

    text: str
    box: Box
    score: float

    @property
    def top(self) -> float:
        return min(p[1] for p in self.box)

    @property
    def bottom(self) -> float:
        return max(p[1] for p in self.box)

    @property
    def left(self) -> float:
        return min(p[0] for p in self.box)


@dataclasses.dataclass(frozen=True)
class LineSpan:
    """Where one line sits in a passage's text: ``text[start:end]`` is the line."""

    start: int
    end: int
    box: Box
    page: int = -1  # PDF page index (0-based); -1 for an image


# ------------------------------------------------------------------ reading order
def reading_order(lines: Sequence[TextLine]) -> list[TextLine]:
    """Top-to-bottom, and left-to-right within a row: a line joins the row above when it
    overlaps that row's vertical extent by at least half of the smaller height."""
    rows: list[list[TextLine]] = []
    extents: list[tuple[float, float]] = []
    for line in sorted(lines, key=lambda t: (t.top, t.left)):
        top, bottom = line.top, line.bottom
        if rows:
            r_top, r_bottom = extents[-1]
            overlap = min(bottom, r_bottom) - max(top, r_top)
            if overlap >= 0.5 * max(1.0, min(bottom - top, r_bottom - r_top)):
                rows[-1].append(line)
                extents[-1] = (min(top, r_top), max(bottom, r_bottom))
                continue
        rows.append([line])
        extents.append((top, bottom))
    return [line for row in rows for line in sorted(row, key=lambda t: t.left)]


def passage_text(lines: Sequence[TextLine], page: int = -1, *, start: int = 0) -> tuple[str, list[LineSpan]]:
    """The lines in reading order as one text (a line each) and each line's span in it.

    ``start``: where this text begins in a longer one (the spans are offset by it).
    """
    parts: list[str] = []
    spans: list[LineSpan] = []
    pos = start
    for line in reading_order(lines):
        text = " ".join(line.text.split())
        if not text:
            continue
        spans.append(LineSpan(pos, pos + len(text), line.box, page))
        parts.append(text)
        pos += len(text) + 1
    return "\n".join(parts), spans


# ------------------------------------------------------------------ the engine
_engine_lock = threading.Lock()
_engine: Any = None


def _threads() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(2, n))


def _shared_engine() -> Any:
    """One rapidocr engine per process (its ONNX sessions hold ~100 MB): built on first use."""
    global _engine
    with _engine_lock:
        if _engine is None:
            try:
                from rapidocr import RapidOCR
            except ImportError as exc:  # the dependency is declared; a broken install says so
                raise ExtractionError(f"text recognition is not installed ({exc}): reinstall Lodestar") from exc
            threads = _threads()
            _engine = RapidOCR(params={
                "Global.log_level": "error",
                "Global.use_cls": False,  # upright text only: the classifier doubles the time
                "Global.text_score": MIN_SCORE,
                "Global.max_side_len": READ_MAX_SIDE,
                "EngineConfig.onnxruntime.intra_op_num_threads": threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            })
        return _engine


class Recogniser:
    """Reads the words in images. Thread-safe: one image at a time goes through the engine
    (ONNX Runtime already uses every core for one image)."""

    def __init__(self, *, time_limit_s: float = TIME_LIMIT_S, max_side: int = READ_MAX_SIDE,
                 gate_side: int = GATE_MAX_SIDE) -> None:
        self.time_limit_s = time_limit_s
        self.max_side = max_side
        self.gate_side = gate_side
        self._lock = threading.Lock()
        self._gate_pre: Any = None

    @property
    def loaded(self) -> bool:
        return _engine is not None

    def load(self) -> None:
        """Build the engine and its detector and recogniser sessions now (about a second)."""
        engine = _shared_engine()
        engine._load_det_model()
        engine._load_rec_model()

    # -- gate
    def has_text(self, image: Any) -> bool:
        """Whether ``image`` (PIL or an RGB array) seems to hold text: the detector alone on
        a downscale whose long side is `gate_side`. Cheap; may say yes to texture."""
        import numpy as np

        arr = _bgr(image, self.gate_side)
        if arr.shape[0] < 8 or arr.shape[1] < 8:
            return False
        engine = _shared_engine()
        det = engine._load_det_model()
        with self._lock:
            if self._gate_pre is None:
                from rapidocr.ch_ppocr_det.utils import DetPreProcess

                self._gate_pre = DetPreProcess(self.gate_side, "max", det.mean, det.std)
            batch = self._gate_pre(arr)
            if batch is None:
                return False
            preds = det.session(batch)
            boxes, _scores = det.postprocess_op(preds, arr.shape[:2])
        return sum(1 for box in boxes if _text_like(np.asarray(box, np.float32), arr.shape[:2])) >= GATE_MIN_BOXES

    # -- read
    def read(self, image: Any) -> list[TextLine]:
        """The lines of text in ``image`` (PIL or an RGB array), in reading order.

        Bounded: the image is brought down to `max_side`, at most `MAX_LINES` regions are
        recognised, and past `time_limit_s` no new batch of `REC_BATCH` lines is started
        (what was read is kept; the first batch is always read). Raises `ExtractionError` when the engine fails on the image.
        """
        import numpy as np

        arr, scale = _bgr_scaled(image, self.max_side)
        if arr.shape[0] < 4 or arr.shape[1] < 4:
            return []
        deadline = time.monotonic() + self.time_limit_s
        engine = _shared_engine()
        from rapidocr.main import RapidOCRError
        from rapidocr.utils.process_img import map_boxes_to_original

        try:
            with self._lock:
                img, op_record = engine.preprocess_img(arr)
                try:
                    crops, det = engine.detect_and_crop(img, op_record)
                except RapidOCRError:
                    return []  # no text region
                boxes = np.asarray(det.boxes, dtype=np.float32)
                if len(boxes) > MAX_LINES:
                    log.info("image has %d text regions; reading the first %d", len(boxes), MAX_LINES)
                    boxes, crops = boxes[:MAX_LINES], crops[:MAX_LINES]
                texts: list[str] = []
                scores: list[float] = []
                for i in range(0, len(crops), REC_BATCH):
                    if i and time.monotonic() > deadline:  # the first batch is always read
                        log.info("text recognition stopped after %.0f s (%d of %d lines read)",
                                 self.time_limit_s, i, len(crops))
                        break
                    rec = engine.recognize_txt(list(crops[i : i + REC_BATCH]))
                    texts.extend(rec.txts or ())
                    scores.extend(float(s) for s in (rec.scores or ()))
        except (RapidOCRError, ValueError, MemoryError) as exc:
            raise ExtractionError(f"text recognition failed ({type(exc).__name__})") from exc
        except Exception as exc:  # onnxruntime raises its own Fail/RuntimeException types
            if type(exc).__module__.startswith("onnxruntime"):
                raise ExtractionError(f"text recognition failed ({type(exc).__name__})") from exc
            raise
        n = len(texts)
        if not n:
            return []
        mapped = map_boxes_to_original(boxes[:n].copy(), op_record, arr.shape[0], arr.shape[1])
        out: list[TextLine] = []
        for text, score, box in zip(texts, scores, mapped):
            text = " ".join(str(text).split())
            if not has_word(text) or score < MIN_SCORE:
                continue
            corners = tuple((round(float(x) / scale, 1), round(float(y) / scale, 1)) for x, y in box[:4])
            out.append(TextLine(text=text, box=corners, score=round(score, 4)))  # type: ignore[arg-type]
        return reading_order(out)


def has_word(text: str) -> bool:
    """Whether a recognised line holds a letter or digit: a window's title-bar circles,
    bullets and rules come back as lines of "●", "—" or "•" that no query means."""
    return any(ch.isalnum() for ch in text)


def _text_like(box: Any, shape: tuple[int, int]) -> bool:
    """Whether a detected region is shaped like a line of text: wider than tall, at least a
    few pixels high, and not most of the picture (grain or foliage is detected as one
    region covering everything)."""
    import numpy as np

    w = float(np.linalg.norm(box[1] - box[0]))
    h = float(np.linalg.norm(box[3] - box[0]))
    height, width = shape
    return h >= 4 and w >= 1.3 * h and w * h <= GATE_MAX_AREA * height * width


def _pil(image: Any) -> Any:
    from PIL import Image

    if isinstance(image, Image.Image):
        return image
    import numpy as np

    return Image.fromarray(np.asarray(image))


def _bgr(image: Any, max_side: int) -> Any:
    return _bgr_scaled(image, max_side)[0]


def _bgr_scaled(image: Any, max_side: int) -> tuple[Any, float]:
    """An upright BGR uint8 array no longer than ``max_side`` and the scale applied."""
    import numpy as np
    from PIL import Image

    from indexer.ingest.extract.image import to_rgb

    img = to_rgb(_pil(image))
    assert isinstance(img, Image.Image)
    w, h = img.size
    scale = 1.0
    if max(w, h) > max_side:
        scale = max_side / max(w, h)
        img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR,
                         reducing_gap=2.0)
    arr = np.asarray(img, dtype=np.uint8)[:, :, ::-1]
    return np.ascontiguousarray(arr), scale


# ------------------------------------------------------------------ images from files
def decode_for_ocr(fh: io.BufferedReader, max_side: int = READ_MAX_SIDE) -> tuple[Any, int, int]:
    """Decode an opened image for recognition: the same guards as the CLIP decode (allowlisted
    formats, bomb guard, first frame only, EXIF orientation, RGB), but at reading resolution:
    JPEGs decode at the smallest draft scale still >= ``max_side``. Returns the upright RGB
    image (at most ``max_side`` on its long side) and the original upright size."""
    from PIL import Image, ImageOps

    from indexer.ingest.extract.image import ALLOWED_FORMATS, _orientation, _pil_errors, _reason, to_rgb

    try:
        Image.init()
        fh.seek(0)
        img = Image.open(fh, formats=[f for f in ALLOWED_FORMATS if f in Image.OPEN])
        w, h = img.size
        if Image.MAX_IMAGE_PIXELS and w * h > Image.MAX_IMAGE_PIXELS:
            raise Image.DecompressionBombError(f"{w}x{h} pixels")
        orientation = _orientation(img)
        if orientation in (5, 6, 7, 8):
            w, h = h, w
        if img.format == "JPEG" and max(w, h) > max_side:
            ratio = max_side / max(w, h)
            img.draft("RGB", (max(1, int(img.size[0] * ratio)), max(1, int(img.size[1] * ratio))))
        img.load()
        upright = ImageOps.exif_transpose(img) or img
        rgb = to_rgb(upright)
        assert isinstance(rgb, Image.Image)
        if max(rgb.size) > max_side:
            rgb.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
        return rgb, w, h
    except _pil_errors() as exc:
        raise ExtractionError(_reason(exc)) from exc


def scale_lines(lines: Sequence[TextLine], sx: float, sy: float) -> list[TextLine]:
    """Lines read on a resized copy, in pixels of the original (``sx`` = original / copy)."""
    if sx == 1.0 and sy == 1.0:
        return list(lines)
    return [
        dataclasses.replace(
            line, box=tuple((round(x * sx, 1), round(y * sy, 1)) for x, y in line.box)  # type: ignore[arg-type]
        )
        for line in lines
    ]


def read_image_file(recogniser: Recogniser, fh: io.BufferedReader, *, gate: bool = True) -> tuple[bool, list[TextLine]]:
    """Gate, then read an opened image file. Returns (looked like text, lines in original pixels)."""
    # The gate looks at a small decode (a JPEG decodes at 1/4 or 1/8 scale: a phone photo in
    # tens of milliseconds); only a picture that passes is decoded again at reading size.
    img, w, h = decode_for_ocr(fh, recogniser.gate_side if gate else recogniser.max_side)
    if gate:
        if not recogniser.has_text(img):
            return False, []
        if max(img.size) < min(max(w, h), recogniser.max_side):
            img, w, h = decode_for_ocr(fh, recogniser.max_side)
    lines = recogniser.read(img)
    return True, scale_lines(lines, w / img.size[0], h / img.size[1])


# ------------------------------------------------------------------ scanned PDFs
def read_pdf_scans(recogniser: Recogniser, path: str, root: str | None = None, expect: Any = None, *,
                   max_pages: int = PDF_MAX_PAGES, dpi: int = PDF_DPI) -> list[tuple[int, list[TextLine]]]:
    """The pages of a PDF without a text layer, read: [(page index, lines)], in page order.

    Only pages with no text layer are rendered (a mixed PDF's text pages are left to the
    text extraction). Rendering runs in the sandboxed document worker (time and memory
    limits: a hostile PDF never runs in this process); recognition runs here on the PNGs
    it returns. ``root``/``expect``: the safe-open arguments of `extract.sandbox` (the
    worker re-opens the file under its watched folder and must find this very file).
    """
    from indexer.ingest.extract import sandbox

    pages = sandbox.run(render_scanned_pages, (path, root, expect, max_pages, dpi), timeout_s=PDF_TIMEOUT_S)
    out: list[tuple[int, list[TextLine]]] = []
    for index, png, scale in pages:
        from PIL import Image

        with Image.open(io.BytesIO(png), formats=["PNG"]) as page_img:
            page_img.load()
            lines = recogniser.read(page_img)
        out.append((index, scale_lines(lines, 1 / scale, 1 / scale)))  # pixels -> points
    return out


def render_scanned_pages(path: str, root: str | None, expect: Any, max_pages: int, dpi: int) -> list[tuple[int, bytes, float]]:
    """Worker side: (page index, PNG, pixels per point) of the pages that have no text
    layer (at most ``max_pages``)."""
    import pypdfium2 as pdfium  # type: ignore[import-untyped]

    from indexer.ingest.safe_open import reopen

    with reopen(path, root, expect) as f, open(f.fd, "rb", closefd=False) as fh:
        data = fh.read()
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        msg = str(exc).lower()
        if "password" in msg:
            raise ExtractionError("encrypted PDF (password required)") from exc
        raise ExtractionError(f"corrupt or unreadable PDF ({exc})") from exc
    out: list[tuple[int, bytes, float]] = []
    try:
        n = len(pdf)
        for i in range(n):
            page = pdf[i]
            try:
                textpage = page.get_textpage()
                try:
                    chars = textpage.count_chars()
                    has_layer = chars > 0 and bool(textpage.get_text_range().strip())
                finally:
                    textpage.close()
                if has_layer:
                    continue
                if len(out) >= max_pages:
                    log.info("%r: only the first %d scanned pages are read", path, max_pages)
                    break
                w_pt, h_pt = page.get_size()
                scale = dpi / 72.0
                if w_pt * h_pt * scale * scale > 40_000_000:  # a poster-sized page: bounded
                    scale = (40_000_000 / max(1.0, w_pt * h_pt)) ** 0.5
                bitmap = page.render(scale=scale)
                try:
                    img = bitmap.to_pil()
                    buf = io.BytesIO()
                    img.convert("RGB").save(buf, "PNG", compress_level=1)
                finally:
                    bitmap.close()
                out.append((i, buf.getvalue(), scale))
            finally:
                page.close()
    finally:
        pdf.close()
    if not out:
        raise NameOnly("no scanned pages")
    return out
