"""What could not be read is never treated as deleted (issue 11, items 5 and 10).

- A watched folder that cannot be listed is like an unplugged drive: its records
  stay, hidden, and the reason is a listed problem (status, summary, window).
- A folder inside a watched folder that cannot be listed is a listed problem; the
  records below it are kept, not swept.
- A file that vanishes between the scan and the read is gone, not failed, and is
  indexed when it comes back.

Tests run as root here, and root ignores mode bits: `locked` also makes
``os.scandir`` answer as the kernel would for anyone else (PermissionError).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fakes import HashImageEmbedder, HashTextEmbedder
from tests.support.rel_stack import Stack


@contextlib.contextmanager
def locked(monkeypatch: pytest.MonkeyPatch, *folders: Path) -> Iterator[None]:
    """``chmod 000`` on ``folders``, with the kernel's answer simulated for root."""
    names = {os.fspath(f) for f in folders}
    real = os.scandir

    def scandir(path: Any = ".") -> Any:
        if os.fspath(path) in names:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    if hasattr(os, "geteuid") and os.geteuid() == 0:
        monkeypatch.setattr(os, "scandir", scandir)
    for f in folders:
        os.chmod(f, 0)
    try:
        yield
    finally:
        for f in folders:
            os.chmod(f, 0o700)
        monkeypatch.setattr(os, "scandir", real)


def _notes(folder: Path, n: int, prefix: str = "n") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"{prefix}{i}.txt"
        p.write_text(f"note {i} about {prefix} alpha{i}", encoding="utf-8")
        out.append(p)
    return out


def _file_records(s: Stack) -> dict[str, Any]:
    return {r.path: r for r in s.store.files().values() if r.kind != "folder"}


def test_unreadable_root_keeps_its_records_hidden_with_the_reason(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    s = stack
    _notes(s.root, 4)
    assert s.service.index_roots([str(s.root)]).new == 4

    with locked(monkeypatch, s.root):
        summary = s.service.index_roots([str(s.root)])
    assert summary.removed == 0, "an unreadable folder is not an empty one"
    recs = _file_records(s)
    assert len(recs) == 4 and not any(r.available for r in recs.values())  # kept, hidden from results
    assert summary.failed == 1 and summary.failures[0][0] == str(s.root)
    problems = {p.path: p for p in s.store.problems()}
    assert "Permission denied" in problems[str(s.root)].reason
    assert "kept" in problems[str(s.root)].reason
    assert not s.searcher().search("alpha1").results  # hidden while unreadable

    back = s.service.index_roots([str(s.root)])
    assert back.removed == 0 and back.unchanged == 4 and back.failed == 0
    assert all(r.available for r in _file_records(s).values())
    assert str(s.root) not in {p.path for p in s.store.problems()}  # the problem went with its cause
    assert s.searcher().search("alpha1").results


def test_unreadable_subfolder_is_a_listed_problem_and_nothing_below_it_is_swept(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = stack
    _notes(s.root, 2)
    secret = s.root / "secret"
    kept = _notes(secret, 2, "s") + _notes(secret / "deep", 1, "d")
    never = s.root / "never-read"
    _notes(never, 1, "x")
    with locked(monkeypatch, never):
        first = s.service.index_roots([str(s.root)])
    # A folder that could not be read from the start is a problem, not silence.
    assert first.failed == 1 and first.failures[0][0] == str(never)
    assert "Permission denied" in first.failures[0][1]
    assert first.new == 5

    with locked(monkeypatch, secret):
        summary = s.service.index_roots([str(s.root)])
        assert summary.removed == 0
        assert summary.failed == 1 and summary.failures == [(str(secret), summary.failures[0][1])]
        assert "Permission denied" in summary.failures[0][1]
        assert {str(p) for p in kept} <= set(_file_records(s))
        assert str(secret) in {p.path for p in s.store.problems()}
        # A watcher event on the folder must not sweep it either.
        synced = s.service.sync_paths([str(secret)])
        assert synced.removed == 0 and {str(p) for p in kept} <= set(_file_records(s))

    back = s.service.index_roots([str(s.root)])
    assert back.removed == 0 and back.failed == 0
    assert {str(p) for p in kept} <= set(_file_records(s))
    assert not [p for p in s.store.problems() if p.kind == "folder"]
    assert len(_file_records(s)) == 6  # the folder that is readable now was indexed too


def test_file_vanishing_between_scan_and_read_is_gone_not_failed(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import indexer.ingest.scan as scan

    s = stack
    a, b = _notes(s.root, 2)
    away = tmp_path / "away.txt"
    real_scan = scan.scan_root

    def scan_then_vanish(*args: Any, **kwargs: Any) -> Iterator[Any]:
        yield from real_scan(*args, **kwargs)
        os.rename(b, away)  # after the scan saw it, before the pipeline reads it

    monkeypatch.setattr(scan, "scan_root", scan_then_vanish)
    first = s.service.index_roots([str(s.root)])
    assert first.failed == 0 and first.new == 1 and str(b) not in _file_records(s)

    os.rename(away, b)  # it comes back, same size and mtime
    monkeypatch.setattr(scan, "scan_root", real_scan)
    again = s.service.index_roots([str(s.root)])
    assert again.new == 1 and _file_records(s)[str(b)].state == "indexed"

    # An indexed file that changes and then vanishes before the read: its record goes.
    b.write_text("changed text about bravo", encoding="utf-8")
    monkeypatch.setattr(scan, "scan_root", scan_then_vanish)
    gone = s.service.index_roots([str(s.root)])
    assert gone.failed == 0 and gone.removed == 1 and str(b) not in _file_records(s)
    monkeypatch.setattr(scan, "scan_root", real_scan)
    os.rename(away, b)
    assert s.service.index_roots([str(s.root)]).new == 1
    assert _file_records(s)[str(b)].state == "indexed"


def _fake_runtime(args: Any, **_kw: Any) -> Any:
    """The real Runtime on the hash embedders (the CLI's composition root, minus the models)."""
    from indexer.library.runtime import Runtime
    from indexer.library.settings import load_settings, open_paths

    paths = open_paths(args.data_dir)
    rt = Runtime(paths, load_settings(paths))
    rt._text, rt._image = HashTextEmbedder(), HashImageEmbedder()
    return rt


def test_cli_index_and_status_keep_and_explain_an_unreadable_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import indexer.cli.main as cli
    from indexer.cli import index as index_cmd
    from indexer.cli import status as status_cmd

    monkeypatch.setattr(index_cmd, "runtime_from_args", _fake_runtime)
    monkeypatch.setattr(status_cmd, "runtime_from_args", _fake_runtime)
    root = tmp_path / "docs"
    _notes(root, 4)
    secret = root / "secret"
    _notes(secret, 1, "s")
    data = str(tmp_path / "data")
    assert cli.main(["index", str(root), "--data-dir", data]) == 0
    assert "5 new" in capsys.readouterr().out

    with locked(monkeypatch, secret):
        assert cli.main(["index", str(root), "--data-dir", data]) == 0
        out = capsys.readouterr().out
    assert "0 removed, 1 failed" in out
    assert f"failed: {secret}: cannot list folder: Permission denied" in out

    with locked(monkeypatch, root):
        assert cli.main(["index", str(root), "--data-dir", data]) == 0
        out = capsys.readouterr().out
        assert "0 removed" in out and "Permission denied" in out
        assert cli.main(["status", "--json", "--data-dir", data]) == 0
        status = json.loads(capsys.readouterr().out)
    (folder,) = status["folders"]
    assert folder["files"] == 5 and folder["mode"] == "unavailable"
    assert "Permission denied" in folder["message"]
    assert any(p["path"] == str(root) and "Permission denied" in p["reason"] for p in status["problems"])
