"""Turn one file into text (documents) or a small RGB image (photos).

Public surface (see docs/ARCHITECTURE.md and docs/EXTRACTION.md):

- ``kind_for_path(path)`` classifies by extension only (no I/O), so the scanner
  can call it for every file cheaply.
- ``extract_text(path, settings, source)`` and ``extract_image(path, settings, source)``
  read one file in bounded memory and raise ``ExtractionError`` (failed, with a
  user-facing reason) or ``NameOnly`` (record by name only, with a reason).
  ``source`` is the file already opened by ``indexer.ingest.safe_open.open_under_root``
  (no symlink followed below the watched folder); the pipeline always passes it.

Heavy libraries (Pillow, pypdf, charset-normalizer) are imported lazily by the
submodules so importing this package is instant.
"""

from __future__ import annotations

import os

from indexer.ingest.safe_open import OpenFile
from indexer.library.settings import Settings
from indexer.types import FileKind, ImageExtraction, TextExtraction

# Plain text family: decoded as text, chunked as-is.
PLAIN_TEXT_EXTENSIONS = frozenset(
    {
        # prose and markup
        "txt", "text", "md", "markdown", "mdown", "mkd", "rst", "org", "adoc", "asciidoc",
        "tex", "latex", "bib", "rtf", "nfo", "me", "readme", "wiki", "textile", "pod",
        # data and config
        "csv", "tsv", "json", "jsonl", "ndjson", "geojson", "yaml", "yml", "toml", "ini",
        "cfg", "conf", "config", "properties", "env", "xml", "xsd", "xsl", "svg", "plist",
        "log", "out", "srt", "vtt", "sub", "ics", "vcf", "sql", "graphql", "gql", "proto",
        "diff", "patch", "po", "pot", "lock",
        # source code
        "py", "pyi", "pyx", "ipynb", "js", "mjs", "cjs", "jsx", "ts", "tsx", "vue", "svelte",
        "c", "h", "cc", "cpp", "cxx", "hh", "hpp", "hxx", "m", "mm", "java", "kt", "kts",
        "scala", "groovy", "gradle", "go", "rs", "rb", "php", "pl", "pm", "lua", "r", "jl",
        "swift", "cs", "fs", "fsx", "vb", "dart", "hs", "ml", "mli", "ex", "exs", "erl",
        "clj", "cljs", "lisp", "el", "scm", "rkt", "nim", "zig", "d", "v", "sv", "vhd",
        "vhdl", "asm", "s", "f", "f90", "for", "pas", "ada", "cob", "tcl", "awk", "sed",
        "sh", "bash", "zsh", "fish", "ksh", "csh", "ps1", "psm1", "bat", "cmd", "mk",
        "cmake", "make", "dockerfile", "tf", "hcl", "nix", "bzl", "css", "scss", "sass",
        "less", "styl",
    }
)
HTML_EXTENSIONS = frozenset({"html", "htm", "xhtml", "xht", "shtml", "mhtml"})
DOCUMENT_EXTENSIONS = frozenset({"pdf", "docx", "epub"})
TEXT_EXTENSIONS = PLAIN_TEXT_EXTENSIONS | HTML_EXTENSIONS | DOCUMENT_EXTENSIONS
IMAGE_EXTENSIONS = frozenset(
    {"jpg", "jpeg", "jpe", "jfif", "png", "webp", "gif", "bmp", "tif", "tiff", "heic", "heif", "avif"}
)
# Extension-less files commonly holding text.
TEXT_FILENAMES = frozenset(
    {"readme", "license", "licence", "copying", "authors", "changelog", "news", "todo",
     "makefile", "dockerfile", "vagrantfile", "gemfile", "rakefile", "procfile"}
)
# Source code and data: a "# comment" there is not a heading, and the first
# line ("import os") is a poor title, so callers use this to adapt.
CODE_EXTENSIONS = PLAIN_TEXT_EXTENSIONS - frozenset(
    {"txt", "text", "md", "markdown", "mdown", "mkd", "rst", "org", "adoc", "asciidoc",
     "tex", "latex", "rtf", "nfo", "me", "readme", "wiki", "textile", "pod", "srt", "vtt", "sub"}
)

__all__ = [
    "CODE_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "TEXT_EXTENSIONS",
    "extension",
    "extract_image",
    "extract_text",
    "has_markup_headings",
    "kind_for_name",
    "kind_for_path",
    "shutdown",
]


def extension(path: str) -> str:
    """Lower-case extension without the dot ('' if none); ``.bashrc`` has none."""
    return _ext_of_name(os.path.basename(path))


def _ext_of_name(name: str) -> str:
    dot = name.rfind(".")
    if dot <= 0:
        return ""
    return name[dot + 1 :].lower()


def kind_for_path(path: str) -> FileKind:
    """Classify by extension, case-insensitively; never touches the disk."""
    return kind_for_name(os.path.basename(path))


def kind_for_name(name: str) -> FileKind:
    """``kind_for_path`` for a bare file name (the scanner's hot path skips basename)."""
    ext = _ext_of_name(name)
    if ext in TEXT_EXTENSIONS:
        return "text"
    if ext in IMAGE_EXTENSIONS:
        return "image"
    if not ext and name.lower() in TEXT_FILENAMES:
        return "text"
    return "other"


def has_markup_headings(path: str) -> bool:
    """Whether '#'-lines in this file are headings (Markdown) rather than comments (code)."""
    return extension(path) not in CODE_EXTENSIONS


def extract_text(path: str, settings: Settings, source: OpenFile | None = None) -> TextExtraction:
    """Extract the readable text of a text, HTML, PDF, DOCX or EPUB file.

    ``source``: the file already opened under its watched folder
    (``indexer.ingest.safe_open.open_under_root``); it is what gets read, and ``path`` only
    names it. Without one, ``path`` is opened here (last component not followed):
    for files the person names directly, not for files under a watched folder.

    Raises ``NameOnly`` (binary content, empty, over a size cap) or
    ``ExtractionError`` (corrupt, encrypted, unreadable, vanished, timed out).
    """
    ext = extension(path)
    if ext in DOCUMENT_EXTENSIONS:
        from indexer.ingest.extract import documents

        return documents.extract_document(path, settings, ext, source)
    if ext in HTML_EXTENSIONS:
        from indexer.ingest.extract import documents

        return documents.extract_html_file(path, settings, source)
    from indexer.ingest.extract import text

    return text.extract_plain(path, settings, source)


def extract_image(path: str, settings: Settings, source: OpenFile | None = None) -> ImageExtraction:
    """Decode the first frame of an image into a small upright RGB copy and a PNG thumbnail.

    ``source`` as for ``extract_text``.
    """
    from indexer.ingest.extract import image

    return image.extract_image(path, settings, source)


def shutdown() -> None:
    """Stop the document worker process, if one was started (call on service close)."""
    from indexer.ingest.extract import sandbox

    sandbox.shutdown()
