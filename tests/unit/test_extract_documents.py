"""HTML, PDF, DOCX, EPUB extraction and the sandboxed worker (timeouts, crashes)."""

from __future__ import annotations

import io
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer.ingest.extract import extract_text, sandbox
from indexer.ingest.extract.documents import html_to_text
from indexer.library.settings import Settings
from indexer.types import ExtractionError, NameOnly
from tests.support import sandbox_tasks
from tests.support.nasty import docx_bytes, epub_bytes, minimal_pdf


@pytest.fixture(autouse=True, scope="module")
def _stop_worker() -> Iterator[None]:
    yield
    sandbox.shutdown()


def _write(p: Path, data: bytes) -> str:
    p.write_bytes(data)
    return str(p)


def test_html_visible_text_only(tmp_path: Path) -> None:
    html = (
        "<html><head><title> The  Title </title><style>body{}</style><script>alert('x')</script></head>"
        "<body><h2>Section &amp; more</h2><p>One<br>two</p><div>three</div><template>tpl</template>"
        "<svg><text>svgtext</text></svg><pre>  keep   spaces</pre></body></html>"
    )
    text, title, truncated = html_to_text(html, 10_000)
    assert title == "The Title" and not truncated
    assert "alert" not in text and "body{}" not in text and "tpl" not in text and "svgtext" not in text
    assert "## Section & more" in text
    assert "One\ntwo" in text and "three" in text and "keep   spaces" in text  # inner spacing of <pre> kept


def test_html_unclosed_head_and_cap() -> None:
    text, title, _ = html_to_text("<html><head><title>T</title><body><p>visible body", 1000)
    assert "visible body" in text and title == "T"
    text, _, truncated = html_to_text("<p>" + "word " * 10_000 + "</p>", 100)
    assert truncated and len(text) <= 100


def test_html_file_meta_charset(tmp_path: Path) -> None:
    html = '<html><head><meta charset="windows-1252"><title>Caf\xe9</title></head><body>cr\xe8me br\xfbl\xe9e</body></html>'
    r = extract_text(_write(tmp_path / "p.htm", html.encode("cp1252")), Settings())
    assert r.title == "Café" and "crème brûlée" in r.text and r.encoding == "cp1252"


def test_pdf_text_and_title(tmp_path: Path) -> None:
    p = _write(tmp_path / "d.pdf", minimal_pdf(["Hello PDF world", "Line two"], title="Doc Title"))
    r = extract_text(p, Settings())
    assert "Hello PDF world" in r.text and "Line two" in r.text
    assert r.title == "Doc Title" and r.encoding == "pdf" and not r.truncated


def test_pdf_without_title_uses_first_line(tmp_path: Path) -> None:
    r = extract_text(_write(tmp_path / "d.pdf", minimal_pdf(["Heading Here", "body"])), Settings())
    assert r.title == "Heading Here"


def test_pdf_corrupt_and_empty_layer(tmp_path: Path) -> None:
    with pytest.raises(ExtractionError, match="PDF"):
        extract_text(_write(tmp_path / "bad.pdf", b"%PDF-1.7\n garbage garbage"), Settings())
    with pytest.raises(ExtractionError):
        extract_text(_write(tmp_path / "trunc.pdf", minimal_pdf(["x" * 50])[:150]), Settings())
    with pytest.raises(NameOnly, match="text layer"):
        extract_text(_write(tmp_path / "blank.pdf", minimal_pdf([])), Settings())


def test_pdf_size_cap_and_empty(tmp_path: Path) -> None:
    p = _write(tmp_path / "big.pdf", minimal_pdf(["x"]) + b"\n%" + b"0" * 2 * 1024 * 1024)
    with pytest.raises(NameOnly, match="too large"):
        extract_text(p, Settings(max_document_mb=1))
    with pytest.raises(NameOnly, match="empty"):
        extract_text(_write(tmp_path / "e.pdf", b""), Settings())


def test_encrypted_pdf(tmp_path: Path) -> None:
    pypdf = pytest.importorskip("pypdf")
    reader = pypdf.PdfReader(io.BytesIO(minimal_pdf(["secret text"])))
    writer = pypdf.PdfWriter()
    for page in reader.pages:
        writer.add_page(page)
    writer.encrypt(user_password="pw", owner_password="owner", algorithm="RC4-128")
    buf = io.BytesIO()
    writer.write(buf)
    with pytest.raises(ExtractionError, match="encrypted"):
        extract_text(_write(tmp_path / "enc.pdf", buf.getvalue()), Settings())


def test_docx_paragraphs_headings_title(tmp_path: Path) -> None:
    data = docx_bytes([("Heading1", "Plan"), ("", "Buy seeds &amp; soil."), ("Heading2", "Later"), ("", "Water.")])
    r = extract_text(_write(tmp_path / "d.docx", data), Settings())
    assert r.text == "# Plan\n\nBuy seeds & soil.\n\n## Later\n\nWater."
    assert r.title == "Plan"  # no core title: first heading


def test_docx_truncated_at_cap(tmp_path: Path) -> None:
    data = docx_bytes([("", "word " * 100)] * 50)
    r = extract_text(_write(tmp_path / "d.docx", data), Settings(max_text_mb=1 / 1024))  # 1 KiB
    assert r.truncated and len(r.text) <= 1024


def test_docx_missing_document_part(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("other.xml", "<a/>")
    with pytest.raises(ExtractionError, match="missing part"):
        extract_text(_write(tmp_path / "d.docx", buf.getvalue()), Settings())


def test_epub_spine_order_title_and_no_scripts(tmp_path: Path) -> None:
    data = epub_bytes("A Book", ["<p>first chapter</p>", "<p>second chapter</p><script>evil()</script>"])
    r = extract_text(_write(tmp_path / "b.epub", data), Settings())
    assert r.title == "A Book"
    assert r.text.index("first chapter") < r.text.index("second chapter")
    assert "evil" not in r.text and "color" not in r.text


def test_sandbox_timeout_kills_and_recovers(tmp_path: Path) -> None:
    t0 = time.monotonic()
    with pytest.raises(ExtractionError, match="longer than"):
        sandbox.run(sandbox_tasks.sleep, (30.0,), timeout_s=1.0)
    assert time.monotonic() - t0 < 10
    # The next document gets a fresh worker.
    r = extract_text(_write(tmp_path / "d.pdf", minimal_pdf(["after timeout"])), Settings())
    assert "after timeout" in r.text


def test_sandbox_crash_is_one_failed_file(tmp_path: Path) -> None:
    with pytest.raises(ExtractionError, match="crashed"):
        sandbox.run(sandbox_tasks.crash, ())
    r = extract_text(_write(tmp_path / "d.docx", docx_bytes([("", "after crash")])), Settings())
    assert r.text == "after crash"


def test_in_process_mode_gives_same_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = _write(tmp_path / "d.pdf", minimal_pdf(["same text"], title="T"))
    via_worker = extract_text(p, Settings())
    monkeypatch.setattr(sandbox, "ENABLED", False)
    assert extract_text(p, Settings()) == via_worker


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS is enforced on Linux")
def test_sandbox_memory_cap_turns_bomb_into_failure(tmp_path: Path) -> None:
    with pytest.raises(ExtractionError, match="memory"):
        sandbox.run(sandbox_tasks.alloc, (sandbox.WORKER_MEMORY_MB * 2,))
    # The same worker keeps serving.
    r = extract_text(_write(tmp_path / "d.pdf", minimal_pdf(["still alive"])), Settings())
    assert "still alive" in r.text
