"""Safe bounded reads and robust decoding of text files.

Decoding order (RELIABILITY X6/X7): BOM → strict UTF-8 → charset-normalizer
(only with enough bytes and a clean result) → cp1252, then latin-1. Decoding
never raises and never yields lone surrogates. Binary detection is a NUL byte
in the first 8 KB, unless a UTF-16/32 BOM explains it.
"""

from __future__ import annotations

import codecs
import dataclasses
import logging
import os
import re

from indexer.ingest.safe_open import (
    OpenFile,
    is_cloud_placeholder,  # noqa: F401 - re-exported (D7)
    opened,
    os_reason,
)
from indexer.library.settings import Settings
from indexer.types import ExtractionError, NameOnly, TextExtraction

log = logging.getLogger(__name__)

MB = 1024 * 1024
SNIFF_BYTES = 8192
DETECT_MIN_BYTES = 64  # below this, detectors guess; cp1252 is the better bet
DETECT_SAMPLE_BYTES = 64 * 1024  # charset-normalizer's cost grows with input
DETECT_MAX_CHAOS = 0.1
_READ_BLOCK = MB

_LATIN_CODEPAGES = frozenset(
    codecs.lookup(n).name
    for n in (
        "cp1250", "cp1252", "cp1254", "cp1257", "cp437", "cp775", "cp850", "cp852", "cp858",
        "latin-1", "iso8859-2", "iso8859-3", "iso8859-4", "iso8859-9", "iso8859-10",
        "iso8859-13", "iso8859-14", "iso8859-15", "iso8859-16", "mac-roman", "mac-latin2",
        "mac-iceland", "mac-turkish",
    )
)

_BOMS: list[tuple[bytes, str]] = [
    # Longest first: the UTF-32-LE BOM starts with the UTF-16-LE one.
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
]


@dataclasses.dataclass
class RawRead:
    data: bytes
    size: int  # file size from fstat
    truncated: bool  # the file holds more than ``data``


def read_bounded(
    path: str, limit_bytes: int, size_cap_bytes: int | None = None, source: OpenFile | None = None
) -> RawRead:
    """Read at most ``limit_bytes`` of a regular file; NameOnly if larger than ``size_cap_bytes``.

    ``source``: the file already opened under its watched folder, read from its start
    (``path`` is not opened again then).
    """
    with opened(path, source) as f:
        st = f.st
        if size_cap_bytes is not None and st.st_size > size_cap_bytes:
            raise NameOnly(f"too large to read ({st.st_size / MB:.0f} MB > {size_cap_bytes / MB:.0f} MB cap)")
        buf = bytearray()
        # Read one byte past the limit to learn whether the file goes on (st_size can lie: /proc, growing logs).
        want = limit_bytes + 1
        try:
            f.rewind()
        except OSError as exc:
            raise ExtractionError(os_reason(exc)) from exc
        while len(buf) < want:
            try:
                block = os.read(f.fd, min(_READ_BLOCK, want - len(buf)))
            except BlockingIOError:
                break
            except OSError as exc:
                raise ExtractionError(os_reason(exc)) from exc
            if not block:
                break
            buf += block
    truncated = len(buf) > limit_bytes
    if truncated:
        del buf[limit_bytes:]
    return RawRead(bytes(buf), st.st_size, truncated)


def bom_encoding(data: bytes) -> str | None:
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    return None


def looks_binary(data: bytes) -> bool:
    """NUL in the first 8 KB means binary, unless a UTF-16/32 BOM explains the NULs (X7)."""
    if b"\x00" not in data[:SNIFF_BYTES]:
        return False
    enc = bom_encoding(data)
    return enc is None or enc == "utf-8"


def _strip_incomplete_tail(data: bytes) -> bytes:
    """Drop a UTF-8 sequence cut by the read limit (at most 3 bytes)."""
    for back in range(1, min(4, len(data)) + 1):
        b = data[-back]
        if b < 0x80:
            return data  # ASCII: nothing cut
        if b >= 0xC0:  # lead byte: is its sequence complete?
            need = 2 if b < 0xE0 else 3 if b < 0xF0 else 4
            return data if back >= need else data[:-back]
    return data


def decode_bytes(data: bytes, truncated: bool = False) -> tuple[str, str]:
    """Decode to ``(text, encoding)``; never raises, never returns lone surrogates."""
    enc = bom_encoding(data)
    if enc is not None:
        bom_len = next(len(bom) for bom, name in _BOMS if name == enc)
        body = data[bom_len:]
        if truncated:
            # Drop a code unit cut by the read limit rather than emit U+FFFD for it.
            body = _strip_incomplete_tail(body) if enc == "utf-8" else body[: len(body) - len(body) % bom_len]
        return body.decode(enc, errors="replace"), enc
    candidate = _strip_incomplete_tail(data) if truncated else data
    try:
        return candidate.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        # A file cut mid-character (X7: truncated CJK) is still UTF-8.
        if exc.start >= len(candidate) - 3 and exc.reason == "unexpected end of data":
            return candidate.decode("utf-8", errors="replace"), "utf-8"
    if len(data) >= DETECT_MIN_BYTES:
        guessed = _detect(data)
        if guessed is not None:
            try:
                return data.decode(guessed, errors="replace"), guessed
            except LookupError:
                pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def _detect(data: bytes) -> str | None:
    try:
        from charset_normalizer import from_bytes
    except ImportError:
        return None
    try:
        best = from_bytes(data[:DETECT_SAMPLE_BYTES]).best()
    except (ValueError, LookupError, RuntimeError) as exc:
        log.debug("charset detection failed: %s", exc)
        return None
    if best is None or best.chaos > DETECT_MAX_CHAOS:
        return None
    name = codecs.lookup(best.encoding).name
    if name in ("utf-8", "ascii"):
        return None  # strict UTF-8 already failed: the detector is wrong here
    if name in _LATIN_CODEPAGES:
        # Detectors cannot tell Latin code pages apart on short text (they pick
        # cp1250 for French, turning è into č); cp1252 is by far the commonest.
        return None
    return name


# Linear in the line: no lazy group followed by an overlapping run ("[^\n]*?[ \t#]*"),
# no two runs that can split a line many ways ("[^\n]*\S[^\n]*").
_MD_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(\S(?:[^\n]*[^ \t#\n])?)[ \t#]*$", re.MULTILINE)
_SETEXT = re.compile(r"^(?=[^\n]*\S)([^\n]*+)\n([=\-~^*#+])\2{2,}[ \t]*$", re.MULTILINE)
_ORG_TITLE = re.compile(r"^#\+title:[ \t]*(\S[^\n]*)$", re.MULTILINE | re.IGNORECASE)
TITLE_SCAN_CHARS = 4096
TITLE_MAX = 200


def guess_title(text: str, stem: str, prose: bool = True) -> str:
    """First heading, org title, or first short non-empty line (prose only); else the stem."""
    head = text[:TITLE_SCAN_CHARS]
    if prose:
        best: tuple[int, str] | None = None
        for rx in (_MD_HEADING, _SETEXT, _ORG_TITLE):
            m = rx.search(head)
            if m and (best is None or m.start() < best[0]):
                best = (m.start(), m.group(1))
        if best is not None:
            return _clean_title(best[1]) or stem
        for line in head.splitlines()[:20]:
            line = line.strip()
            if line and len(line) <= 120:
                return _clean_title(line) or stem
    return stem


def _clean_title(s: str) -> str:
    s = " ".join(s.split())
    s = "".join(ch for ch in s if ch.isprintable())
    return s[:TITLE_MAX]


def stem_of(path: str) -> str:
    name = os.path.basename(path)
    stem, dot, _ = name.rpartition(".")
    return stem if dot and stem else name


def text_limits(settings: Settings) -> tuple[int, int]:
    """(bytes of text to extract at most, size of a text file above which it is name-only)."""
    return int(settings.max_text_mb * MB), int(settings.max_text_file_mb * MB)


def extract_plain(path: str, settings: Settings, source: OpenFile | None = None) -> TextExtraction:
    from indexer.ingest.extract import extension, has_markup_headings

    limit, cap = text_limits(settings)
    raw = read_bounded(path, limit, cap, source)
    if not raw.data:
        raise NameOnly("empty file")
    if looks_binary(raw.data):
        raise NameOnly("binary content in a text-named file")
    text, encoding = decode_bytes(raw.data, raw.truncated)
    if "\x00" in text:
        text = text.replace("\x00", "")  # a NUL past the sniff window; useless to the model
    if "\r" in text:
        # One line-ending convention, so paragraph/heading detection sees "\n\n".
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise NameOnly("no text (whitespace only)")
    prose = has_markup_headings(path) or extension(path) == ""
    title = guess_title(text, stem_of(path), prose=prose)
    if raw.truncated:
        log.info("text of %r truncated at %d bytes", path, limit)
    return TextExtraction(text=text, title=title, encoding=encoding, truncated=raw.truncated)
