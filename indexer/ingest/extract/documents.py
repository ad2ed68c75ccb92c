"""HTML, PDF, DOCX and EPUB to plain text.

All four go through ``sandbox.run`` (a spawned worker with a time and memory
limit); the ``parse_*`` functions below are what the worker executes. Size caps
are checked in-process first, so a too-large file never costs a round trip. DOCX and EPUB are
read with stdlib ``zipfile`` + expat with a cap on decompressed bytes (zip
bombs) and entity declarations refused (billion laughs).
"""

from __future__ import annotations

import io
import logging
import posixpath
import re
import struct
import zipfile
import zlib
from html.parser import HTMLParser
from typing import IO, Any
from urllib.parse import unquote
from xml.parsers import expat

from indexer.ingest.extract import text as textmod
from indexer.ingest.extract.text import MB, decode_bytes, guess_title, looks_binary, stem_of
from indexer.ingest.safe_open import Identity, OpenFile, opened, reopen
from indexer.library.settings import Settings
from indexer.types import ExtractionError, NameOnly, TextExtraction

log = logging.getLogger(__name__)

ZIP_MAX_UNCOMPRESSED = 512 * MB  # across all members read from one DOCX/EPUB
ZIP_MAX_RATIO = 200  # deflate tops out near 1000:1 only for pathological input
_HEADING_PREFIX = {f"h{i}": "#" * i + " " for i in range(1, 7)}


# --------------------------------------------------------------------------- HTML

_SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "svg", "math", "iframe", "object"})
_BLOCK_TAGS = frozenset(
    {"p", "div", "br", "li", "tr", "td", "th", "section", "article", "blockquote", "pre", "table",
     "ul", "ol", "dl", "dt", "dd", "header", "footer", "nav", "aside", "figure", "figcaption", "hr",
     "main", "address", "caption", "details", "summary", "body", "form", "fieldset", "legend"}
    | set(_HEADING_PREFIX)
)
_PARA_TAGS = frozenset({"p", "blockquote", "pre", "table", "ul", "ol", "section", "article"} | set(_HEADING_PREFIX))


class _HTMLText(HTMLParser):
    """Visible text only; headings become Markdown '#' lines so the chunker sees them."""

    def __init__(self, limit_chars: int) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.size = 0
        self.limit = limit_chars
        self.truncated = False
        self.skip_depth = 0
        self.pre_depth = 0
        self.in_title = False
        self.title = ""
        self.first_heading = ""
        self._heading: list[str] | None = None

    def _emit(self, s: str) -> None:
        if self.truncated:
            return
        if self.size + len(s) > self.limit:
            s = s[: self.limit - self.size]
            self.truncated = True
        self.parts.append(s)
        self.size += len(s)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self.in_title = True
            return
        if tag in _SKIP_TAGS:
            self.skip_depth += 1
            return
        if self.skip_depth:
            return
        if tag == "pre":
            self.pre_depth += 1
        if tag in _PARA_TAGS:
            self._emit("\n\n")
        elif tag in _BLOCK_TAGS:
            self._emit("\n")
        if tag in _HEADING_PREFIX:
            self._emit(_HEADING_PREFIX[tag])
            self._heading = []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self.skip_depth and tag in ("br", "hr"):
            self._emit("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
            return
        if tag in _SKIP_TAGS:
            self.skip_depth = max(0, self.skip_depth - 1)
            return
        if self.skip_depth:
            return
        if tag == "pre":
            self.pre_depth = max(0, self.pre_depth - 1)
        if tag in _HEADING_PREFIX and self._heading is not None:
            if not self.first_heading:
                self.first_heading = " ".join("".join(self._heading).split())
            self._heading = None
        if tag in _PARA_TAGS:
            self._emit("\n\n")
        elif tag in _BLOCK_TAGS:
            self._emit("\n")

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title += data
            return
        if self.skip_depth:
            return
        if not self.pre_depth:
            data = _WS.sub(" ", data)
        if self._heading is not None:
            self._heading.append(data)
        self._emit(data)

    def text(self) -> str:
        out = "".join(self.parts)
        out = _TRAILING_WS.sub("\n", out)
        out = _BLANK_RUNS.sub("\n\n", out)
        return out.strip()


_WS = re.compile(r"\s+")
# Starts only where a run of blanks starts (or at a newline right after a match), so a
# long run not followed by a newline is read once, not once per blank (quadratic).
_TRAILING_WS = re.compile(r"(?:(?<![ \t])[ \t]*+|(?=\n))\n[ \t]*+")
_BLANK_RUNS = re.compile(r"\n{3,}")
_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]{1,40})""", re.IGNORECASE)


def html_to_text(html: str, limit_chars: int) -> tuple[str, str, bool]:
    """(visible text, title, truncated)."""
    parser = _HTMLText(limit_chars)
    try:
        # Feed in slices so we can stop early on megafiles once the cap is hit.
        step = 1 << 20
        for i in range(0, len(html), step):
            parser.feed(html[i : i + step])
            if parser.truncated:
                break
        parser.close()
    except (AssertionError, ValueError) as exc:
        raise ExtractionError(f"malformed HTML: {exc}") from exc
    title = " ".join(parser.title.split())[: textmod.TITLE_MAX] or parser.first_heading[: textmod.TITLE_MAX]
    return parser.text(), title, parser.truncated


def _decode_html(data: bytes, truncated: bool) -> tuple[str, str]:
    if textmod.bom_encoding(data) is None:
        m = _META_CHARSET.search(data[:4096])
        if m:
            declared = m.group(1).decode("ascii").lower()
            try:
                import codecs

                name = codecs.lookup(declared).name
            except LookupError:
                name = ""
            # A declared UTF-8 goes through the normal path (strict first, then fallbacks).
            if name and name != "utf-8" and not name.startswith(("utf-16", "utf-32")):
                return data.decode(name, errors="replace"), name
    return decode_bytes(data, truncated)


def extract_html_file(path: str, settings: Settings, source: OpenFile | None = None) -> TextExtraction:
    """HTML goes through the worker too: CPython's html.parser has had quadratic-time
    worst cases on crafted unclosed markup, so it gets the same time limit."""
    from indexer.ingest.extract import sandbox

    limit, cap = textmod.text_limits(settings)
    with opened(path, source) as f:
        st = f.st
        if st.st_size == 0:
            raise NameOnly("empty file")
        if st.st_size > cap:
            raise NameOnly(f"too large to read ({st.st_size / MB:.0f} MB > {cap / MB:.0f} MB cap)")
        # The worker re-opens it the same safe way and must find this very file (S2).
        text, title, encoding, truncated = sandbox.run(parse_html_file, (path, f.root, f.identity(), limit, cap))
    return TextExtraction(text=text, title=title, encoding=encoding, truncated=truncated)


def parse_html_file(
    path: str, root: str | None, expect: Identity | None, limit: int, cap: int
) -> tuple[str, str, str, bool]:
    """Worker side: (text, title, encoding, truncated)."""
    with reopen(path, root, expect) as f:
        raw = textmod.read_bounded(path, limit, cap, f)
    if not raw.data:
        raise NameOnly("empty file")
    if looks_binary(raw.data):
        raise NameOnly("binary content in a text-named file")
    html, encoding = _decode_html(raw.data, raw.truncated)
    text, title, truncated = html_to_text(html, limit)
    if not text.strip():
        raise NameOnly("no visible text")
    return text, title or guess_title(text, stem_of(path)), encoding, raw.truncated or truncated


# --------------------------------------------------------------------------- entry for PDF/DOCX/EPUB


def extract_document(path: str, settings: Settings, ext: str, source: OpenFile | None = None) -> TextExtraction:
    """Check size in-process (cheap), then parse in the sandboxed worker."""
    from indexer.ingest.extract import sandbox

    cap = int(settings.max_document_mb * MB)
    with opened(path, source) as f:
        st = f.st
        if st.st_size == 0:
            raise NameOnly("empty file")
        if st.st_size > cap:
            raise NameOnly(f"too large to read ({st.st_size / MB:.0f} MB > {cap / MB:.0f} MB cap)")
        limit_chars = int(settings.max_text_mb * MB)
        # The worker re-opens it the same safe way and must find this very file (S2).
        parse = {"pdf": parse_pdf, "docx": parse_docx, "epub": parse_epub}[ext]
        text, title, truncated = sandbox.run(parse, (path, f.root, f.identity(), limit_chars))
    if not text.strip():
        if ext == "pdf":
            raise NameOnly("PDF has no text layer (scanned image?)")
        raise NameOnly("document has no text")
    return TextExtraction(text=text, title=title or guess_title(text, stem_of(path)), encoding=ext,
                          truncated=truncated)


# --------------------------------------------------------------------------- PDF (worker side)

def parse_pdf(path: str, root: str | None, expect: Identity | None, limit_chars: int) -> tuple[str, str, bool]:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError, PdfReadError, PyPdfError

    corrupt = (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError,
               AssertionError, zlib.error, struct.error, UnicodeError, OverflowError, NotImplementedError)
    bomb = "PDF expands to too much data when decompressed (decompression bomb guard)"
    with reopen(path, root, expect) as f, open(f.fd, "rb", closefd=False) as fh:
        try:
            reader = PdfReader(fh)
            if reader.is_encrypted:
                try:
                    ok = reader.decrypt("")  # many "protected" PDFs open with the empty password
                except (DependencyError, NotImplementedError) as exc:
                    raise ExtractionError("encrypted PDF (unsupported encryption)") from exc
                if not ok:
                    raise ExtractionError("encrypted PDF (password required)")
            title = ""
            try:
                meta = reader.metadata
                if meta is not None and meta.title:
                    title = " ".join(str(meta.title).split())[: textmod.TITLE_MAX]
            except corrupt:
                pass
            pages = reader.pages
            n = len(pages)
        except FileNotDecryptedError as exc:
            raise ExtractionError("encrypted PDF (password required)") from exc
        except LimitReachedError as exc:
            raise ExtractionError(bomb) from exc
        except corrupt as exc:
            raise ExtractionError(f"corrupt or unreadable PDF ({type(exc).__name__})") from exc
        parts: list[str] = []
        size = 0
        truncated = False
        bad_pages = 0
        for i in range(n):
            try:
                page_text = pages[i].extract_text() or ""
            except LimitReachedError as exc:
                raise ExtractionError(bomb) from exc
            except corrupt as exc:
                bad_pages += 1
                log.debug("page %d of %r unreadable: %s", i, path, exc)
                continue
            if size + len(page_text) > limit_chars:
                page_text = page_text[: limit_chars - size]
                truncated = True
            parts.append(page_text)
            size += len(page_text) + 2
            if truncated:
                break
        if n and bad_pages == n:
            raise ExtractionError("corrupt PDF (no page could be read)")
    return "\n\n".join(parts), title, truncated


# --------------------------------------------------------------------------- zip formats (worker side)


class _Budget:
    """Decompressed bytes left for one archive (zip bomb guard)."""

    def __init__(self, limit: int) -> None:
        self.left = limit


class _BoundedReader(io.RawIOBase):
    def __init__(self, fh: IO[bytes], budget: _Budget, name: str) -> None:
        self.fh = fh
        self.budget = budget
        self.name = name

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n if n is not None and n >= 0 else 1 << 20)
        self.budget.left -= len(data)
        if self.budget.left < 0:
            raise ExtractionError("archive expands to too much data (zip bomb guard)")
        return data


def _open_member(zf: zipfile.ZipFile, name: str, budget: _Budget) -> _BoundedReader:
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise ExtractionError(f"missing part {name!r} (corrupt file)") from None
    if info.file_size > budget.left or (
        info.compress_size and info.file_size > 1 * MB and info.file_size / info.compress_size > ZIP_MAX_RATIO
    ):
        raise ExtractionError("archive expands to too much data (zip bomb guard)")
    return _BoundedReader(zf.open(info), budget, name)


def _read_member(zf: zipfile.ZipFile, name: str, budget: _Budget) -> bytes:
    r = _open_member(zf, name, budget)
    chunks: list[bytes] = []
    while True:
        block = r.read(1 << 20)
        if not block:
            return b"".join(chunks)
        chunks.append(block)


def _refuse_entities(*_args: object) -> None:
    raise ExtractionError("XML entity declarations are not accepted (possible entity bomb)")


def _expat(handlers: dict[str, object]) -> expat.XMLParserType:
    p = expat.ParserCreate()
    p.EntityDeclHandler = _refuse_entities
    p.UnparsedEntityDeclHandler = _refuse_entities
    p.buffer_text = True
    for k, v in handlers.items():
        setattr(p, k, v)
    return p


def _local(name: str) -> str:
    return name.rpartition(":")[2]


def _open_zip(path: str, fh: IO[bytes], what: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(fh)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise ExtractionError(f"corrupt {what} (not a valid zip archive)") from exc


_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError, RuntimeError)


def parse_docx(path: str, root: str | None, expect: Identity | None, limit_chars: int) -> tuple[str, str, bool]:
    with reopen(path, root, expect) as f, open(f.fd, "rb", closefd=False) as fh, _open_zip(path, fh, "DOCX") as zf:
        budget = _Budget(ZIP_MAX_UNCOMPRESSED)
        try:
            title = _docx_title(zf, budget)
            return _docx_body(zf, budget, limit_chars, title)
        except expat.ExpatError as exc:
            raise ExtractionError(f"corrupt DOCX (bad XML: {exc})") from exc
        except _ZIP_ERRORS as exc:
            raise ExtractionError(f"corrupt DOCX ({type(exc).__name__})") from exc


def _docx_title(zf: zipfile.ZipFile, budget: _Budget) -> str:
    if "docProps/core.xml" not in zf.namelist():
        return ""
    buf: list[str] = []
    state = {"in": False}

    def start(name: str, attrs: dict[str, str]) -> None:
        state["in"] = _local(name) == "title"

    def end(name: str) -> None:
        state["in"] = False

    def data(s: str) -> None:
        if state["in"]:
            buf.append(s)

    p = _expat({"StartElementHandler": start, "EndElementHandler": end, "CharacterDataHandler": data})
    p.ParseFile(_open_member(zf, "docProps/core.xml", budget))
    return " ".join("".join(buf).split())[: textmod.TITLE_MAX]


class _Stop(Exception):
    pass


def _docx_body(zf: zipfile.ZipFile, budget: _Budget, limit: int, title: str) -> tuple[str, str, bool]:
    out: list[str] = []
    para: list[str] = []
    st: dict[str, Any] = {"in_t": False, "style": "", "size": 0, "truncated": False, "heading": ""}

    def start(name: str, attrs: dict[str, str]) -> None:
        tag = _local(name)
        if tag == "p":
            para.clear()
            st["style"] = ""
        elif tag == "pStyle":
            st["style"] = next((v for k, v in attrs.items() if _local(k) == "val"), "")
        elif tag == "t":
            st["in_t"] = True
        elif tag == "tab":
            para.append("\t")
        elif tag in ("br", "cr"):
            para.append("\n")

    def end(name: str) -> None:
        tag = _local(name)
        if tag == "t":
            st["in_t"] = False
        elif tag == "p":
            line = "".join(para).strip()
            if not line:
                return
            style = str(st["style"]).lower()
            level = 0
            if style == "title":
                level = 1
            elif style.startswith("heading") and style[7:].strip().isdigit():
                level = min(6, int(style[7:].strip()))
            if level:
                line = "#" * level + " " + line
                if not st["heading"]:
                    st["heading"] = line.lstrip("# ")
            piece = line + "\n\n"
            if int(st["size"]) + len(piece) > limit:
                out.append(piece[: limit - int(st["size"])])
                st["truncated"] = True
                raise _Stop
            out.append(piece)
            st["size"] = int(st["size"]) + len(piece)

    def data(s: str) -> None:
        if st["in_t"]:
            para.append(s)

    p = _expat({"StartElementHandler": start, "EndElementHandler": end, "CharacterDataHandler": data})
    try:
        p.ParseFile(_open_member(zf, "word/document.xml", budget))
    except _Stop:
        pass
    return "".join(out).strip(), title or str(st["heading"]), bool(st["truncated"])


def parse_epub(path: str, root: str | None, expect: Identity | None, limit_chars: int) -> tuple[str, str, bool]:
    with reopen(path, root, expect) as f, open(f.fd, "rb", closefd=False) as fh, _open_zip(path, fh, "EPUB") as zf:
        budget = _Budget(ZIP_MAX_UNCOMPRESSED)
        try:
            title, items = _epub_spine(zf, budget)
            parts: list[str] = []
            size = 0
            truncated = False
            for name in items:
                raw = _read_member(zf, name, budget)
                html, _ = decode_bytes(raw)
                text, chapter_title, cut = html_to_text(html, limit_chars - size)
                if text:
                    parts.append(text)
                    size += len(text) + 2
                if not title and chapter_title:
                    title = chapter_title
                if cut or size >= limit_chars:
                    truncated = True
                    break
        except expat.ExpatError as exc:
            raise ExtractionError(f"corrupt EPUB (bad XML: {exc})") from exc
        except _ZIP_ERRORS as exc:
            raise ExtractionError(f"corrupt EPUB ({type(exc).__name__})") from exc
    return "\n\n".join(parts), title, truncated


def _epub_spine(zf: zipfile.ZipFile, budget: _Budget) -> tuple[str, list[str]]:
    """(title, content documents in reading order) from container.xml and the OPF."""
    names = zf.namelist()
    opf_path = ""
    if "META-INF/container.xml" in names:
        found: list[str] = []

        def root_start(name: str, attrs: dict[str, str]) -> None:
            if _local(name) == "rootfile" and attrs.get("full-path"):
                found.append(attrs["full-path"])

        _expat({"StartElementHandler": root_start}).ParseFile(_open_member(zf, "META-INF/container.xml", budget))
        opf_path = found[0] if found else ""
    if opf_path not in names:
        # No usable package document: read every XHTML part in name order.
        return "", sorted(n for n in names if n.lower().endswith((".xhtml", ".html", ".htm")))
    base = posixpath.dirname(opf_path)
    manifest: dict[str, str] = {}
    spine: list[str] = []
    title_buf: list[str] = []
    st = {"in_title": False}

    def start(name: str, attrs: dict[str, str]) -> None:
        tag = _local(name)
        if tag == "item" and "id" in attrs and "href" in attrs:
            href = unquote(attrs["href"].split("#", 1)[0])
            manifest[attrs["id"]] = posixpath.normpath(posixpath.join(base, href))
        elif tag == "itemref" and "idref" in attrs:
            spine.append(attrs["idref"])
        elif tag == "title" and not title_buf:
            st["in_title"] = True

    def end(name: str) -> None:
        if _local(name) == "title":
            st["in_title"] = False

    def data(s: str) -> None:
        if st["in_title"]:
            title_buf.append(s)

    _expat({"StartElementHandler": start, "EndElementHandler": end, "CharacterDataHandler": data}).ParseFile(
        _open_member(zf, opf_path, budget)
    )
    items = [manifest[i] for i in spine if i in manifest and manifest[i] in names]
    title = " ".join("".join(title_buf).split())[: textmod.TITLE_MAX]
    return title, items
