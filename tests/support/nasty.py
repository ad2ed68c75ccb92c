"""A generator of hostile and odd files (RELIABILITY 1.3/1.4), reusable by any test.

``make_nasty_corpus(dir)`` writes every case into ``dir`` at test time (nothing
binary is checked in) and returns ``{name: Expected}`` where ``Expected.outcome``
is the file state the pipeline should reach: ``indexed``, ``name_only``,
``failed``, or ``skipped`` (the scanner never yields it: symlink, FIFO).
Names are relative to ``dir`` as ``os.fsdecode`` returns them.
"""

from __future__ import annotations

import dataclasses
import io
import os
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Literal

Outcome = Literal["indexed", "name_only", "failed", "skipped"]


@dataclasses.dataclass(frozen=True)
class Expected:
    outcome: Outcome
    kind: Literal["text", "image", "other"] = "text"
    contains: str = ""  # a phrase the extracted text must contain (text files)
    absent: str = ""  # a phrase it must not contain (e.g. script bodies)
    reason: str = ""  # a fragment of the user-facing reason (failed / name-only / skipped)
    title: str = ""  # expected title, when the format carries one


# --------------------------------------------------------------------------- builders


def minimal_pdf(lines: list[str], title: str = "") -> bytes:
    """A valid one-page PDF with a Helvetica text layer, xref offsets computed exactly."""

    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    ops = ["BT", "/F1 18 Tf", "72 720 Td"]
    for i, line in enumerate(lines):
        if i:
            ops.append("0 -24 Td")
        ops.append(f"({esc(line)}) Tj")
    ops.append("ET")
    stream = "\n".join(ops).encode("latin-1")
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Title (%s) >>" % esc(title).encode("latin-1"),
    ]
    return pdf_from_objects(objs, header=b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", trailer=b" /Info 6 0 R")


def pdf_from_objects(objs: list[bytes], *, header: bytes = b"%PDF-1.4\n", trailer: bytes = b"") -> bytes:
    """A PDF of these numbered objects (1 is the catalog) with exact xref offsets."""
    out = bytearray(header)
    offsets = []
    for i, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, trailer, xref)
    return bytes(out)


def docx_bytes(paragraphs: list[tuple[str, str]], title: str = "", document_xml: bytes | None = None) -> bytes:
    """A DOCX with ``(style, text)`` paragraphs (style '' or 'Heading1', 'Title', ...)."""
    w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    body = []
    for style, text in paragraphs:
        ppr = f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else ""
        body.append(f"<w:p>{ppr}<w:r><w:t xml:space=\"preserve\">{text}</w:t></w:r></w:p>")
    xml = document_xml or (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<w:document xmlns:w="{w}"><w:body>{"".join(body)}</w:body></w:document>'
    ).encode()
    core = (
        '<?xml version="1.0" encoding="UTF-8"?><cp:coreProperties '
        'xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
        f'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{title}</dc:title></cp:coreProperties>'
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        zf.writestr("word/document.xml", xml)
        if title:
            zf.writestr("docProps/core.xml", core)
    return buf.getvalue()


def epub_bytes(title: str, chapters: list[str]) -> bytes:
    """An EPUB whose spine lists ``chapters`` (HTML bodies) in order; manifest order reversed."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        zf.writestr(
            "META-INF/container.xml",
            '<?xml version="1.0"?><container version="1.0" '
            'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
            '<rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
            "</rootfiles></container>",
        )
        items = "".join(
            f'<item id="c{i}" href="text/ch%20{i}.xhtml" media-type="application/xhtml+xml"/>'
            for i in reversed(range(len(chapters)))
        )
        spine = "".join(f'<itemref idref="c{i}"/>' for i in range(len(chapters)))
        zf.writestr(
            "OEBPS/content.opf",
            '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">'
            f'<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{title}</dc:title></metadata>'
            f"<manifest>{items}</manifest><spine>{spine}</spine></package>",
        )
        for i, body in enumerate(chapters):
            zf.writestr(
                f"OEBPS/text/ch {i}.xhtml",
                '<?xml version="1.0" encoding="utf-8"?><!DOCTYPE html>'
                f'<html xmlns="http://www.w3.org/1999/xhtml"><head><title>ch{i}</title>'
                f"<style>p {{ color: red }}</style></head><body>{body}</body></html>",
            )
    return buf.getvalue()


def png_bomb() -> bytes:
    """A PNG whose IHDR claims 100,000 x 100,000 pixels with a tiny IDAT."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b"")


def many_frame_gif(frames: int = 10_000) -> bytes:
    """A GIF with ``frames`` 1x1 frames, built from bytes (cheap even for 10k frames)."""
    head = b"GIF89a" + struct.pack("<HH", 1, 1) + b"\x80\x00\x00" + b"\x00\x00\x00\xff\xff\xff"
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    frame = (
        b"\x21\xf9\x04\x00\x0a\x00\x00\x00"  # graphic control: 0.1 s delay
        b"\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00"  # 1x1 image descriptor
        b"\x02\x02\x44\x01\x00"  # LZW: clear, pixel 0, end
    )
    return head + loop + frame * frames + b"\x3b"


def _pil_bytes(img: object, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)  # type: ignore[attr-defined]
    return buf.getvalue()


def rotated_photo() -> bytes:
    """300x200 JPEG stored sideways (left red, right blue), EXIF orientation 6 and a GPS tag.

    Upright it is 200x300 with red on top.
    """
    from PIL import Image

    img = Image.new("RGB", (300, 200), (255, 0, 0))
    img.paste((0, 0, 255), (150, 0, 300, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    exif[0x010E] = "<img src=file:///etc/passwd>"  # ImageDescription: untrusted text
    exif.get_ifd(0x8825)[2] = (51.0, 30.0, 0.0)  # GPSLatitude
    return _pil_bytes(img, "JPEG", exif=exif.tobytes(), quality=90)


def image_cases() -> dict[str, tuple[bytes, Expected]]:
    import numpy as np
    from PIL import Image

    full = _pil_bytes(Image.new("RGB", (400, 300), (10, 200, 30)), "JPEG", quality=95)
    pal = Image.new("P", (64, 64), 0)
    pal.putpalette([255, 255, 255, 255, 0, 0] + [0] * 762)
    pal.paste(1, (0, 0, 32, 64))  # left half red, right half index 0 = transparent
    arr = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto showpage\n%%EOF\n"
    return {
        "truncated.jpg": (full[: len(full) // 2], Expected("failed", "image", reason="corrupt")),
        "bomb.png": (png_bomb(), Expected("failed", "image", reason="too large")),
        "frames10k.gif": (many_frame_gif(), Expected("indexed", "image")),
        "cmyk.jpg": (_pil_bytes(Image.new("CMYK", (64, 48), (0, 255, 255, 0)), "JPEG"), Expected("indexed", "image")),
        "rotated.jpg": (rotated_photo(), Expected("indexed", "image")),
        "palette_alpha.png": (_pil_bytes(pal, "PNG", transparency=0), Expected("indexed", "image")),
        "sixteen_bit.png": (_pil_bytes(Image.fromarray(arr), "PNG"), Expected("indexed", "image")),
        "eps_renamed.png": (eps, Expected("failed", "image", reason="not a supported image")),
        "empty.png": (b"", Expected("failed", "image", reason="empty")),
    }


def text_cases() -> dict[str, tuple[bytes, Expected]]:
    lat = "Les élèves sont allés à l'école près du château. " * 3
    quotes = "He said \u201chello\u201d and \u2018goodbye\u2019 \u2014 it was a long day\u2026"
    cjk = ("日本語の文章です。" * 200).encode("utf-8")
    elf = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 64 + b"code" * 100
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("a.txt", "hello")
    bomb_xml = b'<?xml version="1.0"?><w:document xmlns:w="x"><w:body>' + b" " * (8 * 1024 * 1024) + b"</w:body></w:document>"
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        b'<w:document xmlns:w="x"><w:body><w:p><w:r><w:t>&lol2;</w:t></w:r></w:p></w:body></w:document>'
    )
    html = (
        "<!doctype html><html><head><title>Garden &amp; Pond</title><style>.x{color:red}</style>"
        "<script>var secret = 'do not index';</script></head><body><h1>Koi care</h1>"
        "<p>Feed the koi twice a day &mdash; sparingly.</p><noscript>enable js</noscript></body></html>"
    )
    return {
        "utf16_bom.txt": ("\ufeffUTF-16 text with a BOM: ünïcödé".encode("utf-16-le"), Expected("indexed", contains="ünïcödé")),
        "latin1.txt": (lat.encode("latin-1"), Expected("indexed", contains="élèves sont allés à l'école près du château")),
        "cp1252_quotes.txt": (quotes.encode("cp1252"), Expected("indexed", contains=quotes)),
        "tiny_utf8.txt": ("héllo".encode(), Expected("indexed", contains="héllo")),
        "cjk_cut.txt": (cjk[:1000], Expected("indexed", contains="日本語の文章です。")),
        "elf.txt": (elf, Expected("name_only", reason="binary")),
        "zip.txt": (zipped.getvalue(), Expected("name_only", reason="binary")),
        "empty.txt": (b"", Expected("name_only", reason="empty")),
        "corrupt.pdf": (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 9 0 R >>\nthis is not a pdf\n", Expected("failed", reason="PDF")),
        "hello.pdf": (
            minimal_pdf(["Lodestar finds files by meaning.", "Second line (with parens)."], title="A Tiny PDF"),
            Expected("indexed", contains="Lodestar finds files by meaning", title="A Tiny PDF"),
        ),
        "report.docx": (
            docx_bytes([("Title", "Quarterly Report"), ("", "Revenue grew in the north region."), ("Heading1", "Outlook"), ("", "Cautious &amp; steady.")], title="Q3 Report"),
            Expected("indexed", contains="Revenue grew in the north region.", title="Q3 Report"),
        ),
        "bomb.docx": (docx_bytes([], document_xml=bomb_xml), Expected("failed", reason="zip bomb")),
        "laughs.docx": (docx_bytes([], document_xml=laughs), Expected("failed", reason="entity")),
        "broken.docx": (b"PK\x03\x04 not really a zip", Expected("failed", reason="DOCX")),
        "page.html": (html.encode("utf-8"), Expected("indexed", contains="Feed the koi twice a day — sparingly.", absent="do not index", title="Garden & Pond")),
        "book.epub": (
            epub_bytes("The Lighthouse", ["<h1>One</h1><p>The keeper climbed the stairs.</p>", "<p>Storm at night.</p><script>x()</script>"]),
            Expected("indexed", contains="The keeper climbed the stairs.", absent="x()", title="The Lighthouse"),
        ),
        "bad_\udcff.txt": (b"invalid utf-8 name but fine content", Expected("indexed", contains="fine content")),
        "new\nline.txt": (b"newline in the name", Expected("indexed", contains="newline in the name")),
    }


def make_nasty_corpus(directory: str | os.PathLike[str]) -> dict[str, Expected]:
    """Write the corpus into ``directory`` (created if needed); return the expectations."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    expected: dict[str, Expected] = {}
    for name, (data, exp) in {**text_cases(), **image_cases()}.items():
        with open(os.path.join(os.fsencode(root), os.fsencode(name)), "wb") as fh:
            fh.write(data)
        expected[name] = exp
    os.symlink(root / "no-such-target.txt", root / "dangling.txt")
    expected["dangling.txt"] = Expected("skipped", reason="symbolic link")
    os.symlink("/etc/passwd", root / "outside_link.txt")
    expected["outside_link.txt"] = Expected("skipped", reason="symbolic link")
    if hasattr(os, "mkfifo"):
        os.mkfifo(root / "fifo.txt")
        expected["fifo.txt"] = Expected("skipped", reason="FIFO")
    return expected
