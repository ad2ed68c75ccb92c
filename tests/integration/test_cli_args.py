"""Wrong or empty arguments get one clear line and a non-zero exit (issue 14.14).

`search ""` printed nothing and succeeded; `similar FOLDER` said "no such image
file" about a folder that exists; `status` (and `search`) on a missing data
directory created it. Read-only commands now never make a data directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from indexer.cli.main import main as cli_main


def one_error_line(capsys: Any) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("lodestar: "), captured.err
    return captured.err


@pytest.mark.parametrize("words", [[""], ["   "], ["", "\t"], ['""'], ["kind:nonsense"], ["sort:date"]])
def test_empty_search_says_so_and_fails(words: list[str], tmp_path: Path, capsys: Any) -> None:
    data = tmp_path / "d"
    assert cli_main(["search", *words, "--data-dir", str(data)]) == 2
    err = one_error_line(capsys)
    assert "nothing to search for" in err
    if words == ["kind:nonsense"]:
        assert "(ignored: " in err and "nonsense" in err  # what was ignored, said
    assert not data.exists()


def test_filters_alone_list_files_instead(make_runtime: Any, tmp_path: Path, capsys: Any) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "notes.txt").write_text("Notes about the harbour and its boats.", encoding="utf-8")
    (root / "plan.md").write_text("# Plan\n\nA plan for the garden in spring.", encoding="utf-8")
    rt = make_runtime([str(root)])
    rt.service().index_roots([str(root)])
    data_dir = str(rt.paths.data_dir)
    rt.close()
    for argv in (["search", "", "--type", "md"], ["search", "type:md"], ["search", " ", "--in", str(root), "--type", "md"]):
        assert cli_main([*argv, "--json", "--data-dir", data_dir]) == 0, argv
        names = [Path(r["path"]).name for r in json.loads(capsys.readouterr().out)["results"]]
        assert names == ["plan.md"], argv


def test_similar_on_a_folder_says_it_is_a_folder(tmp_path: Path, capsys: Any) -> None:
    folder = tmp_path / "pictures"
    folder.mkdir()
    assert cli_main(["similar", str(folder), "--data-dir", str(tmp_path / "d")]) == 2
    assert "is a folder, not an image file" in one_error_line(capsys)
    assert cli_main(["similar", str(tmp_path / "missing.png"), "--data-dir", str(tmp_path / "d")]) == 2
    assert "no such image file" in one_error_line(capsys)
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    assert cli_main(["similar", str(fifo), "--data-dir", str(tmp_path / "d")]) == 2
    assert "not a regular file" in one_error_line(capsys)


@pytest.mark.parametrize("command", [["status"], ["status", "--json"], ["search", "harbour boats"], ["eval", "Q", "--root", "R"]])
@pytest.mark.parametrize("how", ["flag", "env"])
def test_read_only_commands_never_create_the_data_dir(
    command: list[str], how: str, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "typo" / "lodestar"
    queries = tmp_path / "q.jsonl"
    queries.write_text(json.dumps({"query": "q", "relevant": "a.txt"}) + "\n", encoding="utf-8")
    command = [str(queries) if a == "Q" else str(tmp_path) if a == "R" else a for a in command]
    if how == "flag":
        argv = [*command, "--data-dir", str(missing)]
    else:
        monkeypatch.setenv("LODESTAR_DATA_DIR", str(missing))
        argv = command
    assert cli_main(argv) == 2
    err = one_error_line(capsys)
    assert f"there is no index at {missing} yet" in err and "lodestar index" in err
    assert not missing.exists() and not missing.parent.exists()


def test_open_paths_read_only(tmp_path: Path) -> None:
    from indexer.library.settings import ConfigError, NoIndexYet, open_paths

    with pytest.raises(NoIndexYet):
        open_paths(tmp_path / "nope", create=False)
    assert not (tmp_path / "nope").exists()
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a folder"):
        open_paths(tmp_path / "file", create=False)
    existing = tmp_path / "data"
    existing.mkdir()
    assert open_paths(existing, create=False).data_dir == existing
