"""Failure reasons never point at a log that is not there, and libraries stay off the
terminal (issue 11, item 10).

`lodestar index` writes ``<data dir>/logs/lodestar.log``; library warnings, library
log records and tracebacks go there, never to stderr. A parser's unexpected error
gives its whole reason, and names the log file only when there is one.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest

from tests.support.nasty import pdf_from_objects

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent


def flate_bomb_pdf() -> bytes:
    """A one-page PDF whose font's ToUnicode stream inflates to 200 MB (pypdf stops at 75 MB)."""
    bomb = zlib.compress(b" " * (200 * 1024 * 1024), 9)
    content = b"BT /F1 12 Tf 72 720 Td (hello) Tj ET"
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /ToUnicode 6 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(bomb) + bomb + b"\nendstream",
    ]
    return pdf_from_objects(objs)


# `lodestar index` in a fresh process (logging set up as in real use), on the real
# Runtime with the hash embedders; the text "model" chatters like torch does.
_SCRIPT = textwrap.dedent(
    """
    import logging, sys, warnings
    sys.path.insert(0, {repo!r})
    from tests.support.fakes import HashImageEmbedder, HashTextEmbedder
    import indexer.cli.main as cli
    from indexer.cli import index as index_cmd

    class Chatty(HashTextEmbedder):
        def embed_documents(self, items):
            warnings.warn("somelib: converting a tensor to a Python boolean", UserWarning)
            try:
                raise RuntimeError("somelib internal state")
            except RuntimeError:
                logging.getLogger("somelib.core").exception("somelib failed softly")
            logging.getLogger("indexer.chatter").warning("our own warning\\nwith a second line")
            return super().embed_documents(items)

    def fake_runtime(args, **kw):
        from indexer.library.settings import load_settings, open_paths
        from indexer.library.runtime import Runtime
        paths = open_paths(args.data_dir)
        rt = Runtime(paths, load_settings(paths))
        rt._text, rt._image = Chatty(), HashImageEmbedder()
        return rt

    index_cmd.runtime_from_args = fake_runtime
    sys.exit(cli.main(["index", {root!r}, "--data-dir", {data!r}, "--json"]))
    """
)


def test_index_keeps_library_output_off_stderr_and_in_the_log_file(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "note.txt").write_text("a note about flour and water", encoding="utf-8")
    (root / "bomb.pdf").write_bytes(flate_bomb_pdf())
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT.format(repo=str(REPO), root=str(root), data=str(data))],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    (failure,) = summary["failures"]
    assert failure["path"].endswith("bomb.pdf")
    assert "decompression bomb" in failure["reason"] and "see log" not in failure["reason"]

    err = done.stderr
    assert "Traceback" not in err and "somelib" not in err and "pypdf" not in err, err
    log = data / "logs" / "lodestar.log"
    assert log.is_file() and (log.stat().st_mode & 0o077) == 0
    text = log.read_text(encoding="utf-8")
    assert "somelib failed softly" in text and "RuntimeError: somelib internal state" in text
    assert "converting a tensor" in text  # warnings.warn output, captured
    # Our own warning reaches the terminal as one line, with where the rest is.
    own = [ln for ln in err.splitlines() if "our own warning" in ln]
    assert len(own) == 1 and "with a second line" not in err and str(log) in own[0]


def test_bug_reason_names_the_log_file_only_when_there_is_one(tmp_path: Path) -> None:
    from indexer.ingest.extract.sandbox import bug_reason
    from indexer.library.logs import cli_logging, log_file

    trace = 'Traceback (most recent call last):\n  File "x.py", line 1\nLimitReachedError: limit reached\n'
    assert log_file() is None
    plain = bug_reason(trace)
    assert "LimitReachedError: limit reached" in plain and "log" not in plain

    data = tmp_path / "data"
    data.mkdir()
    with cli_logging(data) as path:
        logging.getLogger("indexer.test").error("a bug\n%s", trace)
        reason = bug_reason(trace)
        assert path in reason and "LimitReachedError: limit reached" in reason
        assert os.path.isfile(path) and "a bug" in Path(path).read_text(encoding="utf-8")
    assert log_file() is None  # the command's handlers are gone afterwards


def test_no_log_file_for_a_data_dir_that_does_not_exist(tmp_path: Path) -> None:
    """A read-only command on a fresh machine must not create the data dir just to log."""
    from indexer.ingest.extract.sandbox import bug_reason
    from indexer.library.logs import cli_logging

    data = tmp_path / "not-yet"
    with cli_logging(data):
        logging.getLogger("indexer.test").warning("nothing to see")
        assert "log" not in bug_reason("ValueError: x")
    assert not data.exists()


@pytest.mark.parametrize("verbose", [0, 1])
def test_cli_logging_restores_the_terminal_handler(tmp_path: Path, verbose: int) -> None:
    from indexer.library.logs import cli_logging

    root = logging.getLogger()
    handler = logging.StreamHandler()
    formatter = logging.Formatter("%(message)s")
    handler.setFormatter(formatter)
    root.addHandler(handler)
    level = root.level
    try:
        with cli_logging(tmp_path, verbose):
            assert root.level <= logging.INFO
        assert handler.formatter is formatter and not handler.filters and root.level == level
    finally:
        root.removeHandler(handler)
