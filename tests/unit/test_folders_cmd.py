"""`lodestar folders add|remove|list` through the real CLI entry point."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

import indexer.cli.main as cli
from indexer.library.settings import load_settings, open_paths
from indexer.library.writer_lock import WriterLock
from indexer.types import FolderStatus
from indexer.watch.watcher import write_watch_status


class FakeRuntime:
    def __init__(self, removed: list[str]) -> None:
        self.removed = removed
        self.closed = False

    def service(self) -> Any:
        outer = self

        class Svc:
            def remove_root(self, root: str) -> int:
                outer.removed.append(root)
                return 7

        return Svc()

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


def run(data: Path, *argv: str) -> int:
    return cli.main(["folders", *argv, "--data-dir", str(data)])


def folders(data: Path) -> list[str]:
    return load_settings(open_paths(data)).folders


def test_add_list_and_reject(tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = tmp_path / "docs"
    (docs / "inner").mkdir(parents=True)
    assert run(data, "add", str(docs) + "/") == 0
    assert folders(data) == [os.path.realpath(docs)]
    assert "Watching" in capsys.readouterr().out

    assert run(data, "add", str(docs / "inner")) == 0  # nested: says so, changes nothing
    assert "already watched as part of" in capsys.readouterr().out
    assert folders(data) == [os.path.realpath(docs)]

    assert run(data, "add", str(tmp_path / "nope")) == 2
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "file.txt").write_text("x")
    assert run(data, "add", str(tmp_path / "file.txt")) == 2
    assert "not a folder" in capsys.readouterr().err
    assert run(data, "add", str(data)) == 2
    assert "own data folder" in capsys.readouterr().err
    assert folders(data) == [os.path.realpath(docs)]

    write_watch_status(open_paths(data), [FolderStatus(path=os.path.realpath(docs), mode="polling", message="why")])
    assert run(data, "list", "--json") == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["path"] == os.path.realpath(docs) and row["mode"] == "polling" and row["exists"] is True
    assert run(data, "list") == 0
    out = capsys.readouterr().out
    assert "polling" in out and os.path.realpath(docs) in out


def test_adding_a_parent_absorbs_nested_folders(tmp_path: Path, data: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert run(data, "add", str(tmp_path / "a" / "b")) == 0
    assert run(data, "add", str(tmp_path / "a")) == 0
    assert folders(data) == [os.path.realpath(tmp_path / "a")]


def test_remove_drops_entries_when_we_are_the_writer(
    tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    removed: list[str] = []
    monkeypatch.setattr("indexer.library.runtime.open_runtime", lambda *a, **k: FakeRuntime(removed))
    (tmp_path / "docs").mkdir()
    run(data, "add", str(tmp_path / "docs"))
    assert run(data, "remove", str(tmp_path / "docs")) == 0
    assert folders(data) == []
    assert removed == [os.path.realpath(tmp_path / "docs")]
    assert "Removed 7 entries" in capsys.readouterr().out
    assert run(data, "remove", str(tmp_path / "docs")) == 2
    assert "not a watched folder" in capsys.readouterr().err


def test_remove_while_another_writer_runs_defers_to_it(
    tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    removed: list[str] = []
    monkeypatch.setattr("indexer.library.runtime.open_runtime", lambda *a, **k: FakeRuntime(removed))
    (tmp_path / "docs").mkdir()
    run(data, "add", str(tmp_path / "docs"))
    with WriterLock(open_paths(data), command="lodestar watch"):
        assert run(data, "remove", str(tmp_path / "docs")) == 0
    out = capsys.readouterr().out
    assert "lodestar watch" in out and f"pid {os.getpid()}" in out and "next check" in out
    assert removed == []  # left to the writer, which drops noted folders
    assert folders(data) == []
    from indexer.watch.watcher import read_pending_removals

    assert read_pending_removals(open_paths(data)) == [os.path.realpath(tmp_path / "docs")]
