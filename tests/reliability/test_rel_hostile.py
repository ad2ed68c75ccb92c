"""Promise 5: no single bad file can crash, hang or blow up the extractors.

Hypothesis feeds generated and mutated files (valid PNG/JPEG/GIF/PDF/DOCX/EPUB/HTML
from tests/support/nasty.py, then flipped, truncated, spliced; random bytes; text in odd
encodings; huge lines) to ``extract_text`` / ``extract_image``. Each example must
end in success, ``ExtractionError`` or ``NameOnly`` with a non-empty reason, within
a time limit, and the process's peak memory must stay bounded over the whole run.
"""

from __future__ import annotations

import functools
import os
import resource
import tempfile
import time
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from indexer.ingest.extract import extract_image, extract_text, kind_for_path
from indexer.library.settings import Settings
from indexer.types import ExtractionError, ImageExtraction, NameOnly, TextExtraction
from tests.support import nasty

PER_EXAMPLE_S = 30.0  # documents run in a sandbox with its own 60 s cap; nothing should come close
MAX_RSS_GROWTH_MB = 400  # the whole run, in this process (documents are parsed in a child)
MAX_EXAMPLES = 150

_SETTINGS = Settings(max_text_mb=2.0, max_text_file_mb=8.0, max_document_mb=8.0, max_image_mb=8.0)


@functools.cache
def _seeds() -> dict[str, bytes]:
    """Valid (and known-nasty) files of every family, keyed by a name with the right extension."""
    from PIL import Image

    seeds = {name: data for name, (data, _exp) in {**nasty.text_cases(), **nasty.image_cases()}.items()
             if name != "frames10k.gif" and "\n" not in name and "\udcff" not in name}
    seeds["frames.gif"] = nasty.many_frame_gif(50)
    seeds["bomb.png"] = nasty.png_bomb()
    seeds["plain.png"] = nasty._pil_bytes(Image.new("RGB", (40, 30), (1, 2, 3)), "PNG")
    seeds["photo.jpg"] = nasty.rotated_photo()
    return seeds


def _mutate(data: bytes, ops: list[tuple[int, int, int]]) -> bytes:
    """Apply (kind, position, value) edits: flip a byte, truncate, insert junk, duplicate a slice."""
    buf = bytearray(data)
    for kind, pos, val in ops:
        if not buf:
            buf = bytearray(bytes([val]))
            continue
        i = pos % len(buf)
        if kind == 0:
            buf[i] ^= (val % 255) + 1
        elif kind == 1:
            del buf[i:]
        elif kind == 2:
            buf[i:i] = bytes([val]) * (1 + val % 64)
        else:
            buf[i:i] = buf[i : i + 1 + val * 4]
    return bytes(buf)


ENCODINGS = ["utf-8", "utf-16", "utf-16-be", "utf-32", "latin-1", "cp1252", "shift_jis", "gb18030", "koi8-r", "cp437"]
EXTS = ["txt", "md", "csv", "json", "html", "pdf", "docx", "epub", "png", "jpg", "gif", "webp", "bmp", "tiff"]

mutated = st.builds(
    lambda name, ops, ext: (f"m.{ext}" if ext else name, _mutate(_seeds()[name], ops)),
    st.sampled_from(sorted(_seeds())),
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 1 << 30), st.integers(0, 255)), min_size=0, max_size=6),
    st.one_of(st.none(), st.sampled_from(EXTS)),  # sometimes the extension lies
)
random_bytes = st.tuples(st.sampled_from(EXTS).map(lambda e: f"r.{e}"), st.binary(max_size=4096))
odd_text = st.builds(
    lambda text, enc, ext: (f"t.{ext}", text.encode(enc, "replace")),
    st.text(max_size=2000),
    st.sampled_from(ENCODINGS),
    st.sampled_from(["txt", "md", "html", "csv"]),
)
huge_lines = st.builds(
    lambda ch, n, ext: (f"h.{ext}", (ch * n).encode("utf-8", "replace")),
    st.sampled_from(["a", "é", "日", "\x00", "<", " ", "\ufeff"]),
    st.integers(100_000, 3_000_000),  # up to ~9 MB: over the text cap of 2 MB
    st.sampled_from(["txt", "html", "json"]),
)
hostile = st.one_of(mutated, mutated, random_bytes, odd_text, huge_lines)

_rss_start: list[int] = []


def _check_one(directory: str, name: str, data: bytes) -> None:
    path = os.path.join(directory, name)
    with open(path, "wb") as fh:
        fh.write(data)
    kind = kind_for_path(path)
    started = time.monotonic()
    try:
        if kind == "image":
            out: Any = extract_image(path, _SETTINGS)
            assert isinstance(out, ImageExtraction)
            assert out.image.mode == "RGB" and max(out.image.size) <= 4096
            assert out.thumbnail_png.startswith(b"\x89PNG")
        else:
            out = extract_text(path, _SETTINGS)
            assert isinstance(out, TextExtraction)
            # The text cap holds whatever the input claims.
            assert len(out.text) <= _SETTINGS.max_text_mb * 1024 * 1024 * 1.01
        event(f"{kind}: extracted")
    except (ExtractionError, NameOnly) as exc:
        event(f"{kind}: {type(exc).__name__}")
        assert str(exc).strip(), f"refused {name} ({len(data)} bytes) without a reason: {type(exc).__name__}"
    finally:
        os.unlink(path)
    elapsed = time.monotonic() - started
    assert elapsed < PER_EXAMPLE_S, f"{name} ({len(data)} bytes) took {elapsed:.1f} s"


@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,  # the explicit per-example limit above is steadier on a shared 2-core CI box
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
    database=None,
)
@given(case=hostile)
def test_hostile_files_never_crash_hang_or_explode(case: tuple[str, bytes]) -> None:
    if not _rss_start:
        _rss_start.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    name, data = case
    with tempfile.TemporaryDirectory(prefix="lodestar-hostile-") as d:
        _check_one(d, name, data)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - _rss_start[0]) / 1024
    assert grown_mb < MAX_RSS_GROWTH_MB, f"peak memory grew by {grown_mb:.0f} MB"


def test_every_seed_family_is_exercised() -> None:
    """The seeds cover each format the issue names, so mutations start from valid files."""
    exts = {name.rsplit(".", 1)[1] for name in _seeds()}
    assert {"png", "jpg", "gif", "pdf", "docx", "epub", "html", "txt"} <= exts
