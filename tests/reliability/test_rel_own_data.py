"""Lodestar never indexes or watches its own data (issue 11, item 11).

The data directory, the ONNX model cache and anything inside them are refused with
one line and a non-zero exit, whichever way a folder is added (`lodestar index`,
`lodestar folders add`, `lodestar watch`, the window: one rule, `refusal_reason`).
A folder that contains them is indexed with them left out.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from indexer.library.settings import Settings, load_settings, open_paths, save_settings
from tests.support.fakes import HashImageEmbedder, HashTextEmbedder
from tests.support.rel_stack import make_stack


def _fake_runtime(args: Any, **_kw: Any) -> Any:
    from indexer.library.runtime import Runtime

    paths = open_paths(args.data_dir)
    rt = Runtime(paths, load_settings(paths))
    rt._text, rt._image = HashTextEmbedder(), HashImageEmbedder()
    return rt


def _one_refusal(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("lodestar: ") and "never indexed" in lines[0], err
    return lines[0]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    open_paths(d)
    (d / "index.lance").mkdir(exist_ok=True)
    (d / "settings.json").write_text("{}", encoding="utf-8")
    return d


def test_cli_index_refuses_the_data_dir_and_anything_inside(
    data: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import indexer.cli.main as cli
    from indexer.cli import index as index_cmd

    monkeypatch.setattr(index_cmd, "runtime_from_args", _fake_runtime)
    for target in (data, data / "index.lance", data / "settings.json", Path(str(data) + "/")):
        assert cli.main(["index", str(target), "--data-dir", str(data)]) == 2
        line = _one_refusal(capsys.readouterr().err)
        assert os.path.realpath(data) in line
    assert load_settings(open_paths(data)).folders == []  # nothing became a watched folder


def test_folders_add_refuses_inside_the_data_dir(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import indexer.cli.main as cli

    assert cli.main(["folders", "add", str(data / "index.lance"), "--data-dir", str(data)]) == 2
    _one_refusal(capsys.readouterr().err)
    assert load_settings(open_paths(data)).folders == []


def test_onnx_cache_is_refused_too(tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    import indexer.cli.main as cli

    cache = tmp_path / "onnx-cache"
    cache.mkdir()
    monkeypatch.setenv("LODESTAR_ONNX_CACHE", str(cache))
    assert cli.main(["folders", "add", str(cache), "--data-dir", str(data)]) == 2
    assert "model cache" in _one_refusal(capsys.readouterr().err)


def test_watch_refuses_a_data_dir_found_in_the_settings(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """settings.json may list the data dir (edited by hand, or written by an older version)."""
    import indexer.cli.main as cli

    paths = open_paths(data)
    save_settings(paths, Settings(folders=[os.path.realpath(data)]))
    assert cli.main(["watch", "--once", "--data-dir", str(data)]) == 2
    err = capsys.readouterr().err
    assert "not watching" in err and "own data folder" in err


def test_a_folder_holding_the_data_dir_and_model_cache_is_indexed_without_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    cache = home / "models-cache"
    (cache / "clip-1234").mkdir(parents=True)
    (cache / "clip-1234" / "notes.txt").write_text("exported graph notes", encoding="utf-8")
    monkeypatch.setenv("LODESTAR_ONNX_CACHE", str(cache))
    s = make_stack(tmp_path, data_dir=home / "root" / "lodestar-data")  # data dir inside the root
    try:
        (home / "root" / "mine.txt").write_text("my own notes", encoding="utf-8")
        s.settings.folders = [str(home)]
        s.service.index_roots([str(home)])
        paths = sorted(os.path.relpath(r.path, home) for r in s.store.files().values())
        assert paths == [os.path.join("root", "mine.txt")]
        # The data dir really holds files the walk would have found (settings, the store).
        assert any(p.is_file() for p in s.paths.data_dir.rglob("*"))
        # A watcher event from inside them is excluded as well.
        s.service.sync_paths([str(cache / "clip-1234" / "notes.txt"), str(s.paths.settings)])
        assert len(s.store.files()) == 1
    finally:
        s.store.close()


def test_window_add_folder_uses_the_same_rule(data: Path) -> None:
    pytest.importorskip("PySide6")
    from desktop.backend import Backend
    from indexer.library.session import LibrarySession

    class Paths:
        data_dir = data

    class Runtime:
        paths = Paths()
        settings = Settings()

    backend = Backend(LibrarySession(Runtime()))
    said: list[str] = []
    backend.failed.connect(said.append)
    try:
        assert backend.add_folder(str(data / "thumbnails")) is False
        assert backend.settings.folders == []
        assert said and "own data folder" in said[0]
    finally:
        backend.pool.wait()
