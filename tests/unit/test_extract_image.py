"""Image extraction: allowlist, bombs, truncation, first frame, orientation, modes, thumbnails."""

from __future__ import annotations

import io
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from indexer.ingest.extract import extract_image
from indexer.ingest.extract.image import MODEL_SHORT_SIDE, THUMB_LONG_SIDE, to_rgb
from indexer.library.settings import Settings
from indexer.types import ExtractionError, NameOnly
from tests.support.nasty import many_frame_gif, png_bomb, rotated_photo


def _save(tmp_path: Path, name: str, img: Image.Image, fmt: str, **kw: object) -> str:
    p = tmp_path / name
    img.save(p, fmt, **kw)
    return str(p)


def _thumb(r) -> Image.Image:  # type: ignore[no-untyped-def]
    t = Image.open(io.BytesIO(r.thumbnail_png))
    assert t.format == "PNG"
    return t


def test_large_jpeg_downscaled_and_thumbnail(tmp_path: Path) -> None:
    p = _save(tmp_path, "big.jpg", Image.new("RGB", (4000, 3000), (20, 120, 220)), "JPEG", quality=85)
    r = extract_image(p, Settings())
    assert (r.width, r.height) == (4000, 3000)
    assert r.image.mode == "RGB" and min(r.image.size) == MODEL_SHORT_SIDE
    t = _thumb(r)
    assert max(t.size) <= THUMB_LONG_SIDE and t.mode == "RGB"
    assert np.allclose(np.asarray(r.image).reshape(-1, 3).mean(0), (20, 120, 220), atol=6)


def test_rotated_exif_upright_and_metadata_stripped(tmp_path: Path) -> None:
    p = tmp_path / "rot.jpg"
    p.write_bytes(rotated_photo())
    r = extract_image(str(p), Settings())
    assert (r.width, r.height) == (200, 300)  # swapped: orientation 6
    assert r.image.size == (200, 300)
    t = _thumb(r)
    assert t.size[0] < t.size[1]
    top = t.getpixel((t.size[0] // 2, 5))
    bottom = t.getpixel((t.size[0] // 2, t.size[1] - 5))
    assert top[0] > 200 and top[2] < 60, top  # red on top once upright
    assert bottom[2] > 200 and bottom[0] < 60, bottom
    assert not t.getexif() and "exif" not in t.info and "icc_profile" not in t.info
    assert b"Exif" not in r.thumbnail_png and b"passwd" not in r.thumbnail_png


def test_png_bomb_rejected_fast_and_small(tmp_path: Path) -> None:
    p = tmp_path / "bomb.png"
    p.write_bytes(png_bomb())
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(ExtractionError, match="decompression bomb"):
            extract_image(str(p), Settings())
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0 and peak < 50 * 1024 * 1024


def test_between_1x_and_2x_max_pixels_is_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = _save(tmp_path, "wide.png", Image.new("L", (300, 200)), "PNG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 40_000)  # 60k px: warning zone, not Pillow's error zone
    with pytest.raises(ExtractionError, match="decompression bomb"):
        extract_image(p, Settings())


def test_10k_frame_gif_first_frame_only(tmp_path: Path) -> None:
    p = tmp_path / "anim.gif"
    p.write_bytes(many_frame_gif(10_000))
    t0 = time.perf_counter()
    r = extract_image(str(p), Settings())
    assert time.perf_counter() - t0 < 1.0
    assert (r.width, r.height) == (1, 1) and r.image.mode == "RGB"


def test_truncated_images_fail_cleanly(tmp_path: Path) -> None:
    src = Image.new("RGB", (128, 96), (200, 10, 10))
    for fmt, ext in [("JPEG", "jpg"), ("PNG", "png"), ("GIF", "gif"), ("WEBP", "webp"), ("TIFF", "tif"), ("BMP", "bmp")]:
        buf = io.BytesIO()
        src.save(buf, fmt)
        data = buf.getvalue()
        for cut in (len(data) // 3, len(data) // 2, len(data) - 9, 20, 3):
            p = tmp_path / f"cut{cut}.{ext}"
            p.write_bytes(data[:cut])
            try:
                r = extract_image(str(p), Settings())
            except ExtractionError as exc:
                assert str(exc)  # a reason, no other exception type
            else:
                assert r.image.mode == "RGB"  # some cuts (GIF trailer) still decode


def test_eps_renamed_png_never_reaches_ghostscript(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("a subprocess was started")

    monkeypatch.setattr(subprocess, "Popen", boom)
    p = tmp_path / "x.png"
    p.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    with pytest.raises(ExtractionError, match="not a supported image"):
        extract_image(str(p), Settings())


def test_fits_not_in_allowlist(tmp_path: Path) -> None:
    p = tmp_path / "x.jpg"
    p.write_bytes(b"SIMPLE  =                    T" + b" " * 50 + b"BITPIX  =                    8" + b" " * 2800)
    with pytest.raises(ExtractionError):
        extract_image(str(p), Settings())


def test_size_cap_and_empty(tmp_path: Path) -> None:
    p = _save(tmp_path, "n.bmp", Image.new("RGB", (800, 600)), "BMP")  # ~1.4 MB
    with pytest.raises(NameOnly, match="too large"):
        extract_image(p, Settings(max_image_mb=1))
    (tmp_path / "e.png").write_bytes(b"")
    with pytest.raises(ExtractionError, match="empty"):
        extract_image(str(tmp_path / "e.png"), Settings())


def test_heic_without_pillow_heif_is_name_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from indexer.ingest.extract import image

    monkeypatch.setattr(image, "_heif_state", False)
    (tmp_path / "p.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    with pytest.raises(NameOnly, match="HEIC"):
        extract_image(str(tmp_path / "p.heic"), Settings())


def test_heic_round_trip_if_encoder_available(tmp_path: Path) -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    p = tmp_path / "p.heic"
    try:
        Image.new("RGB", (64, 48), (0, 200, 0)).save(p, "HEIF")
    except (KeyError, OSError, ValueError) as exc:
        pytest.skip(f"no HEIF encoder: {exc}")
    r = extract_image(str(p), Settings())
    assert (r.width, r.height) == (64, 48) and r.image.mode == "RGB"


def test_avif(tmp_path: Path) -> None:
    p = tmp_path / "a.avif"
    try:
        Image.new("RGB", (40, 30), (9, 9, 200)).save(p, "AVIF")
    except (KeyError, OSError) as exc:
        pytest.skip(f"no AVIF encoder: {exc}")
    r = extract_image(str(p), Settings())
    assert (r.width, r.height) == (40, 30)


def _mode_image(mode: str) -> Image.Image:
    if mode == "P+tRNS":
        img = Image.new("P", (32, 32), 0)
        img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
        img.paste(1, (0, 0, 16, 32))
        img.info["transparency"] = 0
        return img
    if mode == "I;16":
        return Image.fromarray((np.arange(1024).reshape(32, 32) * 60).astype(np.uint16))
    if mode == "I":
        return Image.fromarray((np.arange(1024).reshape(32, 32) * 100_000).astype(np.int32))
    if mode == "F":
        return Image.fromarray(np.linspace(-5.0, 5.0, 1024, dtype=np.float32).reshape(32, 32))
    if mode == "CMYK":
        return Image.new("CMYK", (32, 32), (0, 255, 255, 0))
    if mode == "RGBA":
        img = Image.new("RGBA", (32, 32), (255, 0, 0, 255))
        img.paste((0, 0, 0, 0), (16, 0, 32, 32))
        return img
    return Image.new(mode, (32, 32))


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "P+tRNS", "RGBA", "CMYK", "I;16", "I", "F", "YCbCr", "PA"])
def test_mode_zoo_normalised_to_rgb(mode: str) -> None:
    out = to_rgb(_mode_image(mode))
    assert out.mode == "RGB" and out.size == (32, 32)
    arr = np.asarray(out)
    assert arr.dtype == np.uint8
    if mode in ("P+tRNS", "RGBA"):
        assert tuple(arr[16, 4]) == (255, 0, 0) and tuple(arr[16, 28]) == (255, 255, 255)  # alpha on white
    if mode == "CMYK":
        assert arr[..., 0].mean() > 200 and arr[..., 1].mean() < 60  # red, not green/inverted
    if mode in ("I;16", "I", "F"):
        assert arr.min() == 0 and arr.max() == 255  # rescaled, not clipped to black/white


@pytest.mark.parametrize("fmt,ext", [("PNG", "png"), ("GIF", "gif"), ("WEBP", "webp"), ("TIFF", "tiff"), ("BMP", "bmp")])
def test_formats_round_trip(tmp_path: Path, fmt: str, ext: str) -> None:
    p = _save(tmp_path, f"x.{ext}", Image.new("RGB", (50, 40), (250, 250, 0)), fmt)
    r = extract_image(p, Settings())
    assert (r.width, r.height) == (50, 40) and r.image.size == (50, 40)


def test_sixteen_bit_png_file(tmp_path: Path) -> None:
    p = _save(tmp_path, "d.png", _mode_image("I;16"), "PNG")
    r = extract_image(p, Settings())
    arr = np.asarray(r.image)
    assert r.image.mode == "RGB" and arr.max() > 200 and arr.min() < 50


def test_extreme_aspect_is_cropped_around_the_centre(tmp_path: Path) -> None:
    img = Image.new("RGB", (20_000, 100), (0, 0, 255))
    img.paste((255, 0, 0), (9_900, 0, 10_100, 100))  # a red mark in the centre
    p = _save(tmp_path, "strip.png", img, "PNG")
    r = extract_image(p, Settings())
    assert (r.width, r.height) == (20_000, 100)  # the original size is still reported
    assert r.image.size == (400, 100)
    assert r.image.getpixel((200, 50)) == (255, 0, 0)
    assert max(_thumb(r).size) <= THUMB_LONG_SIDE
