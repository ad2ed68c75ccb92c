"""Text extraction: kinds, decoding order, binary sniffing, bounded reads, special files."""

from __future__ import annotations

import codecs
import os
import threading
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.ingest.extract import IMAGE_EXTENSIONS, TEXT_EXTENSIONS, extract_text, has_markup_headings, kind_for_path
from indexer.ingest.extract.text import decode_bytes, guess_title, looks_binary
from indexer.library.settings import Settings
from indexer.types import ExtractionError, NameOnly
from tests.support.timing import cpu_seconds


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a.TXT", "text"), ("notes.md", "text"), ("x.rst", "text"), ("t.org", "text"), ("d.csv", "text"),
        ("d.tsv", "text"), ("c.json", "text"), ("c.yaml", "text"), ("p.toml", "text"), ("f.xml", "text"),
        ("app.log", "text"), ("m.py", "text"), ("m.ts", "text"), ("m.c", "text"), ("m.H", "text"),
        ("m.cpp", "text"), ("M.java", "text"), ("m.go", "text"), ("m.rs", "text"), ("m.rb", "text"),
        ("run.sh", "text"), ("p.html", "text"), ("p.XHTML", "text"), ("d.pdf", "text"), ("d.docx", "text"),
        ("b.epub", "text"), ("README", "text"), ("Makefile", "text"),
        ("a.jpg", "image"), ("a.JPEG", "image"), ("a.png", "image"), ("a.webp", "image"), ("a.gif", "image"),
        ("a.bmp", "image"), ("a.tif", "image"), ("a.tiff", "image"), ("a.HEIC", "image"), ("a.heif", "image"),
        ("a.avif", "image"),
        ("a.exe", "other"), ("a.zip", "other"), ("noext", "other"), (".bashrc", "other"), ("a.", "other"),
    ],
)
def test_kind_for_path(name: str, kind: str) -> None:
    assert kind_for_path(f"/some/dir/{name}") == kind


def test_extension_sets_exported_and_disjoint() -> None:
    assert {"pdf", "docx", "epub", "md", "py"} <= TEXT_EXTENSIONS
    assert {"jpg", "png", "heic", "avif"} <= IMAGE_EXTENSIONS
    assert not TEXT_EXTENSIONS & IMAGE_EXTENSIONS
    assert has_markup_headings("a.md") and not has_markup_headings("a.py")


@pytest.mark.parametrize(
    ("data", "text", "encoding"),
    [
        ("héllo".encode(), "héllo", "utf-8"),
        (codecs.BOM_UTF8 + "bom ü".encode(), "bom ü", "utf-8"),
        (codecs.BOM_UTF16_LE + "ünï 16".encode("utf-16-le"), "ünï 16", "utf-16-le"),
        (codecs.BOM_UTF16_BE + "ünï 16".encode("utf-16-be"), "ünï 16", "utf-16-be"),
        (codecs.BOM_UTF32_LE + "ünï 32".encode("utf-32-le"), "ünï 32", "utf-32-le"),
        ("\u201csmart\u201d \u2018quotes\u2019".encode("cp1252"), "\u201csmart\u201d \u2018quotes\u2019", "cp1252"),
        ("café crème".encode("latin-1"), "café crème", "cp1252"),
        (("Les élèves sont allés à l'école. " * 4).encode("latin-1"), "Les élèves sont allés à l'école. " * 4, "cp1252"),
    ],
)
def test_decode_golden(data: bytes, text: str, encoding: str) -> None:
    assert decode_bytes(data) == (text, encoding)


def test_decode_detector_for_non_latin_scripts() -> None:
    jp = "日本語のテキストです。これは文字コードのテストです。" * 6
    text, enc = decode_bytes(jp.encode("shift_jis"))
    assert text == jp and enc in ("cp932", "shift_jis")
    ru = "Привет, как дела? Это тестовый текст на русском языке. " * 4
    text, enc = decode_bytes(ru.encode("cp1251"))
    assert text == ru and enc == "cp1251"


def test_truncated_cjk_is_text_not_binary() -> None:
    data = ("中文字符" * 300).encode("utf-8")[:1000]  # cut mid-character
    assert not looks_binary(data)
    text, enc = decode_bytes(data)
    assert enc == "utf-8" and text.startswith("中文字符中文字符")
    text, enc = decode_bytes(data, truncated=True)
    assert enc == "utf-8" and "\ufffd" not in text


def test_binary_sniffing() -> None:
    assert looks_binary(b"\x7fELF\x02\x01\x01\x00\x00\x00")
    assert looks_binary(b"PK\x03\x04\x14\x00\x00\x00")
    assert not looks_binary(codecs.BOM_UTF16_LE + "hi".encode("utf-16-le"))
    assert not looks_binary(b"plain ascii")
    assert not looks_binary(b"x" * 9000 + b"\x00")  # NUL only past the 8 KB window


def test_decode_never_raises_or_yields_surrogates() -> None:
    import random

    rng = random.Random(1234)
    samples = [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300))) for _ in range(300)]
    samples += [b"\xff\xfe\x00\xd8", b"\xfe\xff\xd8\x00", b"\xef\xbb\xbf\xff", b"\xed\xa0\x80"]
    for data in samples:
        for truncated in (False, True):
            text, enc = decode_bytes(data, truncated)
            assert isinstance(text, str) and enc
            text.encode("utf-8")  # raises on lone surrogates


def _write(p: Path, data: bytes) -> str:
    p.write_bytes(data)
    return str(p)


def test_extract_plain_title_and_encoding(tmp_path: Path) -> None:
    r = extract_text(_write(tmp_path / "notes.md", b"intro line\n\n# Gardening Notes\n\nbody"), Settings())
    assert r.title == "Gardening Notes" and r.encoding == "utf-8" and not r.truncated
    r = extract_text(_write(tmp_path / "plain.txt", b"\n\n  First short line  \nmore"), Settings())
    assert r.title == "First short line"
    r = extract_text(_write(tmp_path / "tool.py", b"# comment\nimport os\n"), Settings())
    assert r.title == "tool"  # code: no heading/first-line title
    assert guess_title("Title\n=====\n\ntext", "stem") == "Title"
    assert guess_title("#+TITLE: Org Doc\n* x", "stem") == "Org Doc"


def test_empty_and_binary_are_name_only(tmp_path: Path) -> None:
    with pytest.raises(NameOnly, match="empty"):
        extract_text(_write(tmp_path / "e.txt", b""), Settings())
    with pytest.raises(NameOnly, match="binary"):
        extract_text(_write(tmp_path / "b.txt", b"\x7fELF\x00\x00\x01"), Settings())
    with pytest.raises(NameOnly, match="whitespace"):
        extract_text(_write(tmp_path / "w.txt", b" \n\t\n"), Settings())


def test_size_cap_is_name_only(tmp_path: Path) -> None:
    p = _write(tmp_path / "big.log", b"a" * (2 * 1024 * 1024))
    with pytest.raises(NameOnly, match="too large"):
        extract_text(p, Settings(max_text_file_mb=1))


def test_50mb_single_line_bounded_memory_and_truncated(tmp_path: Path) -> None:
    p = tmp_path / "one-line.json"
    with open(p, "wb") as fh:
        block = b'{"k": "value"},' * 4096
        while fh.tell() < 50 * 1024 * 1024:
            fh.write(block)
    settings = Settings(max_text_mb=1)
    tracemalloc.start()
    try:
        r = extract_text(str(p), settings)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.truncated
    assert len(r.text) == 1024 * 1024
    assert peak < 8 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB for a 1 MB cap"


def test_truncated_utf8_at_cap_has_no_replacement_char(tmp_path: Path) -> None:
    p = _write(tmp_path / "cjk.txt", ("字" * 1_000_000).encode("utf-8"))  # 3 MB
    r = extract_text(p, Settings(max_text_mb=1))
    assert r.truncated and r.encoding == "utf-8"
    assert "\ufffd" not in r.text and set(r.text) == {"字"}


def _run_with_timeout(fn, timeout: float = 5.0):  # type: ignore[no-untyped-def]
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "extraction blocked"
    return box


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")
def test_fifo_raises_instead_of_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    box = _run_with_timeout(lambda: extract_text(str(fifo), Settings()))
    assert isinstance(box.get("error"), ExtractionError)
    assert "not a regular file" in str(box["error"])
    assert time.monotonic() - t0 < 5


def test_symlink_and_vanished_are_errors(tmp_path: Path) -> None:
    target = tmp_path / "real.txt"
    target.write_text("secret")
    os.symlink(target, tmp_path / "link.txt")
    with pytest.raises(ExtractionError, match="symbolic link"):
        extract_text(str(tmp_path / "link.txt"), Settings())
    with pytest.raises(ExtractionError, match="vanished"):
        extract_text(str(tmp_path / "gone.txt"), Settings())


def test_permission_denied_is_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "locked.txt"
    p.write_text("x")
    os.chmod(p, 0)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        real_open = os.open

        def fake_open(path, flags, *a):  # type: ignore[no-untyped-def]
            if os.fspath(path) == str(p):
                raise PermissionError(13, "Permission denied", str(p))
            return real_open(path, flags, *a)

        monkeypatch.setattr(os, "open", fake_open)  # root ignores mode bits
    with pytest.raises(ExtractionError, match="permission denied"):
        extract_text(str(p), Settings())


def test_undecodable_filename(tmp_path: Path) -> None:
    raw = os.fsencode(str(tmp_path)) + b"/bad_\xff.txt"
    with open(raw, "wb") as fh:
        fh.write(b"content")
    r = extract_text(os.fsdecode(raw), Settings())
    assert r.text == "content"


def test_decode_property_any_bytes() -> None:
    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import strategies as st

    @hypothesis.settings(max_examples=150, deadline=None, database=None)
    @hypothesis.given(st.binary(max_size=2048), st.booleans())
    def check(data: bytes, truncated: bool) -> None:
        text, enc = decode_bytes(data, truncated)
        assert enc
        text.encode("utf-8")  # no lone surrogates
        assert len(text) <= len(data)  # every codec we pick yields <= 1 char per byte

    check()


def test_crlf_normalised_so_chunker_sees_paragraphs(tmp_path: Path) -> None:
    from indexer.ingest.chunk import find_headings

    data = b"Title\r\n=====\r\n\r\nFirst paragraph.\r\n\r\nSecond.\rOld mac line.\r\n"
    r = extract_text(_write(tmp_path / "w.txt", data), Settings())
    assert "\r" not in r.text
    assert r.text == "Title\n=====\n\nFirst paragraph.\n\nSecond.\nOld mac line.\n"
    assert r.title == "Title" and find_headings(r.text) == [(0, "Title")]


def test_cloud_placeholder_detection() -> None:
    from types import SimpleNamespace

    from indexer.ingest.extract.text import is_cloud_placeholder

    assert is_cloud_placeholder(SimpleNamespace(st_file_attributes=0x400000))  # type: ignore[arg-type]
    assert is_cloud_placeholder(SimpleNamespace(st_file_attributes=0x1000))  # type: ignore[arg-type]
    assert is_cloud_placeholder(SimpleNamespace(st_flags=0x40000000))  # type: ignore[arg-type]
    assert not is_cloud_placeholder(SimpleNamespace(st_file_attributes=0x20))  # type: ignore[arg-type]
    assert not is_cloud_placeholder(os.stat(__file__))


# The original patterns: same answers, but quadratic on long lines (issue 11.3 audit).
_OLD_MD_HEADING = r"^ {0,3}#{1,6}[ \t]+(\S[^\n]*?)[ \t#]*$"
_OLD_SETEXT = r"^([^\n]*\S[^\n]*)\n([=\-~^*#+])\2{2,}[ \t]*$"
_OLD_TRAILING_WS = r"[ \t]*\n[ \t]*"


def test_title_and_blank_line_patterns_are_linear() -> None:
    from indexer.ingest.extract.documents import _TRAILING_WS
    from indexer.ingest.extract.text import _MD_HEADING, _SETEXT

    cases = [
        (_MD_HEADING.search, "# a" + " #" * 50_000 + "x"),
        (_MD_HEADING.search, "# a" + " " * 100_000 + "x"),
        (_SETEXT.search, "a" * 100_000 + "\nb"),
        (_SETEXT.search, "a " * 50_000 + "\nb"),
        (lambda s: _TRAILING_WS.sub("\n", s), " " * 100_000 + "x"),  # a <pre> of blanks
    ]
    for fn, text in cases:
        assert cpu_seconds(fn, text) < 0.5, text[:10]  # the old patterns: 1 s at 20k, 30 s at 100k


@settings(max_examples=500, deadline=None)
@given(text=st.text(alphabet="# \t\n\ra=-x~\u00a0", max_size=16))
def test_linear_patterns_agree_with_the_originals(text: str) -> None:
    import re

    from indexer.ingest.extract.documents import _TRAILING_WS
    from indexer.ingest.extract.text import _MD_HEADING, _SETEXT

    for new, old in ((_MD_HEADING, _OLD_MD_HEADING), (_SETEXT, _OLD_SETEXT)):
        a, b = new.search(text), re.search(old, text, re.MULTILINE)
        assert (a and (a.start(), a.group(1))) == (b and (b.start(), b.group(1)))
    assert _TRAILING_WS.sub("\n", text) == re.sub(_OLD_TRAILING_WS, "\n", text)
