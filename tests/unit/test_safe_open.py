"""indexer.ingest.safe_open: no symlink is followed anywhere below a watched folder (RELIABILITY S2).

Each check runs twice: with ``openat``-style directory descriptors (Linux, macOS)
and with the fallback used where ``os.open`` has no ``dir_fd`` (Windows).
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer.ingest import safe_open
from indexer.ingest.safe_open import PathUnsafe, open_under_root, reopen, stat_under_root
from indexer.types import ExtractionError
from tests.support import nasty

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")


@pytest.fixture(params=["dir_fd", "by_path"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "by_path":
        monkeypatch.setattr(safe_open, "_DIR_FD", False)
    else:
        assert safe_open._DIR_FD, "this platform has openat; the test would not cover it"
    yield request.param


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """root/sub/deep/f.txt inside; outside/deep/f.txt with a marker, outside every root."""
    root = tmp_path / "root"
    (root / "sub" / "deep").mkdir(parents=True)
    (root / "sub" / "deep" / "f.txt").write_text("inside words", encoding="utf-8")
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "f.txt").write_text("OUTSIDE-MARKER secret", encoding="utf-8")
    return root, outside


def _swap_for_link(folder: Path, target: Path) -> None:
    folder.rename(folder.with_name(folder.name + ".real"))
    folder.symlink_to(target, target_is_directory=True)


def test_plain_nested_file_opens_and_fstat_is_what_is_read(tree: tuple[Path, Path], mode: str) -> None:
    root, _ = tree
    path = root / "sub" / "deep" / "f.txt"
    with open_under_root(str(root), str(path)) as f:
        assert os.read(f.fd, 100) == b"inside words"
        st = os.stat(path)
        assert (f.st.st_dev, f.st.st_ino, f.st.st_size, f.st.st_mtime_ns) == (
            st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns
        )
        fd = f.fd
    assert f.fd == -1
    with pytest.raises(OSError):
        os.fstat(fd)  # closed by the context manager
    assert stat_under_root(str(root), str(path)).st_ino == st.st_ino


@pytest.mark.parametrize("level", ["sub", "deep"])
def test_symlinked_folder_on_the_way_is_refused(tree: tuple[Path, Path], mode: str, level: str) -> None:
    root, outside = tree
    if level == "sub":
        _swap_for_link(root / "sub", outside)
    else:
        _swap_for_link(root / "sub" / "deep", outside / "deep")
    path = root / "sub" / "deep" / "f.txt"
    assert path.read_text(encoding="utf-8").startswith("OUTSIDE-MARKER")  # the OS would follow it
    with pytest.raises(PathUnsafe, match="symbolic link") as info:
        open_under_root(str(root), str(path))
    assert level in str(info.value)
    with pytest.raises(PathUnsafe, match="symbolic link"):
        stat_under_root(str(root), str(path))


def test_symlinked_file_is_refused(tree: tuple[Path, Path], mode: str) -> None:
    root, outside = tree
    link = root / "sub" / "link.txt"
    link.symlink_to(outside / "deep" / "f.txt")
    with pytest.raises(PathUnsafe, match="symbolic link"):
        open_under_root(str(root), str(link))
    with pytest.raises(PathUnsafe, match="symbolic link"):
        stat_under_root(str(root), str(link))


def test_file_where_a_folder_was_is_refused(tree: tuple[Path, Path], mode: str) -> None:
    root, _ = tree
    (root / "sub" / "deep" / "f.txt").unlink()
    (root / "sub" / "deep").rmdir()
    (root / "sub" / "deep").write_text("now a file", encoding="utf-8")
    with pytest.raises(ExtractionError):
        open_under_root(str(root), str(root / "sub" / "deep" / "f.txt"))


def test_missing_fifo_and_outside_paths(tree: tuple[Path, Path], mode: str) -> None:
    root, outside = tree
    with pytest.raises(ExtractionError, match="vanished"):
        open_under_root(str(root), str(root / "sub" / "nope.txt"))
    with pytest.raises(ExtractionError, match="vanished"):
        open_under_root(str(root), str(root / "gone" / "nope.txt"))
    with pytest.raises(PathUnsafe, match="not inside"):
        open_under_root(str(root), str(outside / "deep" / "f.txt"))
    with pytest.raises(PathUnsafe, match="not inside"):
        open_under_root(str(root), str(root))
    if hasattr(os, "mkfifo"):
        os.mkfifo(root / "sub" / "pipe.txt")
        with pytest.raises(ExtractionError, match="not a regular file"):
            open_under_root(str(root), str(root / "sub" / "pipe.txt"))  # and it did not block


def test_reopen_insists_on_the_same_file(tree: tuple[Path, Path], mode: str) -> None:
    root, outside = tree
    path = root / "sub" / "deep" / "f.txt"
    with open_under_root(str(root), str(path)) as f:
        expect = f.identity()
    with reopen(str(path), str(root), expect) as again:
        assert again.identity() == expect
    # Replaced by another file with the same name (an editor's save, or a swap).
    path.unlink()
    path.write_text("other words entirely", encoding="utf-8")
    with pytest.raises(ExtractionError, match="changed while it was being read"):
        reopen(str(path), str(root), expect)
    # The folder swapped for a symlink: refused before any identity check.
    _swap_for_link(root / "sub", outside)
    with pytest.raises(PathUnsafe):
        reopen(str(path), str(root), None)


def test_document_worker_side_refuses_a_swapped_folder(tree: tuple[Path, Path]) -> None:
    """The sandboxed parsers re-open with the same walk and must find the very file checked."""
    from indexer.ingest.extract import documents

    root, outside = tree
    html = "<html><body><p>inside page</p></body></html>"
    (root / "sub" / "deep" / "p.html").write_text(html, encoding="utf-8")
    (outside / "deep" / "p.html").write_text("<p>OUTSIDE-MARKER page</p>", encoding="utf-8")
    (root / "sub" / "deep" / "d.pdf").write_bytes(nasty.minimal_pdf(["inside pdf"]))
    (outside / "deep" / "d.pdf").write_bytes(nasty.minimal_pdf(["OUTSIDE-MARKER pdf"]))
    page, pdf = root / "sub" / "deep" / "p.html", root / "sub" / "deep" / "d.pdf"
    with open_under_root(str(root), str(page)) as f:
        page_id = f.identity()
    with open_under_root(str(root), str(pdf)) as f:
        pdf_id = f.identity()
    assert "inside page" in documents.parse_html_file(str(page), str(root), page_id, 10_000, 10_000)[0]
    assert "inside pdf" in documents.parse_pdf(str(pdf), str(root), pdf_id, 10_000)[0]
    _swap_for_link(root / "sub" / "deep", outside / "deep")
    with pytest.raises(PathUnsafe):
        documents.parse_html_file(str(page), str(root), page_id, 10_000, 10_000)
    with pytest.raises(PathUnsafe):
        documents.parse_pdf(str(pdf), str(root), pdf_id, 10_000)
    # Opened by path alone (no watched folder): the identity check still refuses the other file.
    with pytest.raises(ExtractionError, match="changed"):
        documents.parse_pdf(str(pdf), None, pdf_id, 10_000)


def test_extractors_read_the_opened_file_not_the_path(tree: tuple[Path, Path]) -> None:
    """``source`` is what is read; the path only names the file (extension, title)."""
    from indexer.ingest.extract import extract_image, extract_text
    from indexer.library.settings import Settings

    root, outside = tree
    (root / "sub" / "deep" / "p.png").write_bytes(nasty.rotated_photo())
    path = root / "sub" / "deep" / "f.txt"
    with open_under_root(str(root), str(path)) as text_src, open_under_root(
        str(root), str(root / "sub" / "deep" / "p.png")
    ) as image_src:
        _swap_for_link(root / "sub", outside)  # the path now leads outside
        assert extract_text(str(path), Settings(), text_src).text == "inside words"
        assert extract_text(str(path), Settings(), text_src).text == "inside words"  # read from the start again
        assert extract_image(str(root / "sub" / "deep" / "p.png"), Settings(), image_src).width > 0
        assert stat.S_ISREG(os.fstat(text_src.fd).st_mode)  # left open for the caller


def test_sandboxed_worker_reports_a_swapped_folder_as_unsafe(tree: tuple[Path, Path]) -> None:
    """Through the real spawned worker: its refusal comes back as PathUnsafe, not a plain failure."""
    from indexer.ingest.extract import sandbox
    from indexer.ingest.extract.documents import parse_html_file

    root, outside = tree
    page = root / "sub" / "deep" / "p.html"
    page.write_text("<p>inside page</p>", encoding="utf-8")
    (outside / "deep" / "p.html").write_text("<p>OUTSIDE-MARKER page</p>", encoding="utf-8")
    with open_under_root(str(root), str(page)) as f:
        ident = f.identity()
    try:
        assert "inside page" in sandbox.run(parse_html_file, (str(page), str(root), ident, 10_000, 10_000))[0]
        _swap_for_link(root / "sub", outside)
        with pytest.raises(PathUnsafe, match="symbolic link"):
            sandbox.run(parse_html_file, (str(page), str(root), ident, 10_000, 10_000))
        _unswap_link(root / "sub")
        page.unlink()
        with pytest.raises(safe_open.Vanished):
            sandbox.run(parse_html_file, (str(page), str(root), ident, 10_000, 10_000))
    finally:
        sandbox.shutdown()


def _unswap_link(folder: Path) -> None:
    folder.unlink()
    folder.with_name(folder.name + ".real").rename(folder)
