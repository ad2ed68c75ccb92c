"""The map's bookkeeping on the hashing fake embedders (fast): an empty library, one file,
a big change laid out afresh, changed and removed files, a map of another model or a
damaged map file never shown, a cancelled build writing nothing, the images layer named
by its file names and the vocabulary. Meaning on a real corpus: tests/integration/test_map.py.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from indexer.map import keep
from indexer.map.build import EMPTY_MESSAGE, ONE_MESSAGE, load_map, update_map
from tests.support.fakes import HashImageEmbedder, HashTextEmbedder

TOPIC_WORDS = {
    "garden": "tomato soil compost seedling prune mulch watering hedge roses spade greenhouse weeds".split(),
    "space": "telescope galaxy orbit comet nebula planet rocket astronaut lunar crater eclipse asteroid".split(),
    "kitchen": "recipe dough oven simmer garlic saucepan knead butter roast skillet flour pepper".split(),
}


def _runtime(data: Path, folder: Path) -> Any:
    from indexer.library.runtime import Runtime
    from indexer.library.settings import Settings, open_paths, save_settings

    paths = open_paths(data)
    settings = Settings(folders=[str(folder)], allow_download=False, recognise_text=False)
    save_settings(paths, settings)
    rt = Runtime(paths, settings)
    rt._text, rt._image = HashTextEmbedder(), HashImageEmbedder()
    rt.image_ready = lambda *a, **k: (True, "")  # the fake image model is always there
    return rt


@pytest.fixture
def lib(tmp_path: Path) -> Any:
    folder = tmp_path / "files"
    folder.mkdir()
    rt = _runtime(tmp_path / "data", folder)
    rt.folder = folder
    yield rt
    rt.close()


@pytest.fixture
def cli_runtime(lib: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """`lodestar map` opens the library with the same fake models (its own runtime, closed by it)."""
    import indexer.cli.map as cli_map

    monkeypatch.setattr(cli_map, "runtime_from_args", lambda args, create=True: _runtime(lib.paths.data_dir, lib.folder))


def _write_docs(rt: Any, count: int, start: int = 0, topics: tuple[str, ...] = tuple(TOPIC_WORDS)) -> list[str]:
    made = []
    for i in range(start, start + count):
        topic = topics[i % len(topics)]
        rng = random.Random(i)
        words = [rng.choice(TOPIC_WORDS[topic]) for _ in range(40)]
        path = rt.folder / topic / f"note-{i:03d}.txt"
        path.parent.mkdir(exist_ok=True)
        path.write_text(" ".join(words) + ".\n", encoding="utf-8")
        made.append(str(path))
    rt.service().sync_paths(made)
    return made


def _clock(t: float) -> Any:
    return lambda: t


def test_an_empty_library_says_so(lib: Any, cli_runtime: None, tmp_path: Path, capsys: Any) -> None:
    from indexer.cli.main import main as cli_main

    m = update_map(lib.store, lib.paths.data_dir, "documents")
    assert m.points == [] and m.clusters == [] and m.message == EMPTY_MESSAGE["documents"] and not m.stale
    loaded = load_map(lib.store, lib.paths.data_dir, "documents")
    assert loaded is not None and loaded.message == EMPTY_MESSAGE["documents"]  # kept: not asked again
    png, js = tmp_path / "empty.png", tmp_path / "empty.json"
    assert cli_main(["map", "--data-dir", str(lib.paths.data_dir), "--png", str(png), "--json", str(js)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == EMPTY_MESSAGE["documents"]
    assert json.loads(js.read_text())["files"] == [] and Image.open(png).size == (1600, 1200)


def test_one_file_sits_in_the_middle(lib: Any, cli_runtime: None, capsys: Any) -> None:
    from indexer.cli.main import main as cli_main

    _write_docs(lib, 1)
    m = update_map(lib.store, lib.paths.data_dir, "documents")
    assert len(m.points) == 1 and m.method == "single" and m.message == ONE_MESSAGE["documents"]
    assert (m.points[0].x, m.points[0].y) == (0.5, 0.5)
    assert cli_main(["map", "--data-dir", str(lib.paths.data_dir), "--json", "-"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["files"][0]["x"] == 0.5  # standard output holds the JSON alone
    assert ONE_MESSAGE["documents"] in captured.err


def test_a_big_change_lays_the_map_out_afresh(lib: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import indexer.map.build as build

    data = lib.paths.data_dir
    _write_docs(lib, 24)
    first = update_map(lib.store, data, "documents", now=_clock(1000.0))
    assert len(first.points) == 24 and first.method == "tsne" and len(first.clusters) >= 2
    where = {p.fid: (p.x, p.y) for p in first.points}

    _write_docs(lib, 2, start=24)  # 2 of 24: placed, reading only their vectors (the others are kept)
    with monkeypatch.context() as mp:
        mp.setattr(build, "read_vectors", lambda *a, **k: pytest.fail("placing read every vector"))
        m = update_map(lib.store, data, "documents", now=_clock(2000.0))
    kept = keep.load(data, "documents")
    assert kept is not None and kept.laid_out_at == 1000.0 and kept.built_at == 2000.0 and kept.changed_since == 2
    assert all((p.x, p.y) == where[p.fid] for p in m.points if p.fid in where) and len(m.points) == 26

    _write_docs(lib, 6, start=26)  # 2 + 6 of 24 came since the layout: more than 30 %, laid out afresh
    m = update_map(lib.store, data, "documents", now=_clock(3000.0))
    kept = keep.load(data, "documents")
    assert kept is not None and kept.laid_out_at == 3000.0 and kept.changed_since == 0 and kept.laid_out_n == 32
    assert len(m.points) == 32 and not m.stale
    xy = np.array([[p.x, p.y] for p in m.points])
    assert xy.min() >= -1e-6 and xy.max() <= 1 + 1e-6


def test_a_changed_file_is_placed_again_and_a_removed_one_drops(lib: Any) -> None:
    data = lib.paths.data_dir
    made = _write_docs(lib, 24)
    first = update_map(lib.store, data, "documents")
    where = {p.fid: (p.x, p.y, p.cluster) for p in first.points}
    Path(made[0]).write_text(" ".join(TOPIC_WORDS["space"]) + " and more stars.\n", encoding="utf-8")
    Path(made[1]).unlink()
    lib.service().sync_paths(made[:2])
    stale = load_map(lib.store, data, "documents")
    assert stale is not None and stale.stale and len(stale.points) == 22  # the changed and the removed hidden
    m = update_map(lib.store, data, "documents")
    assert len(m.points) == 23 and not m.stale
    assert made[1] not in {p.path for p in m.points}
    assert all((p.x, p.y, p.cluster) == where[p.fid] for p in m.points if p.path != made[0])


def test_a_map_of_another_model_or_a_damaged_file_is_never_shown(lib: Any) -> None:
    data = lib.paths.data_dir
    _write_docs(lib, 14)
    update_map(lib.store, data, "documents", now=_clock(1000.0))
    kept = keep.load(data, "documents")
    assert kept is not None
    kept.model = "another/model/384"
    keep.save(data, kept)
    assert load_map(lib.store, data, "documents") is None
    m = update_map(lib.store, data, "documents", now=_clock(2000.0))
    assert len(m.points) == 14 and m.model == "fake/hash-text/64"
    assert keep.load(data, "documents").laid_out_at == 2000.0  # laid out afresh in its own space

    keep.map_file(data, "documents").write_bytes(b"PK\x03\x04 not really a zip")
    assert load_map(lib.store, data, "documents") is None
    assert len(update_map(lib.store, data, "documents").points) == 14


def test_a_cancelled_build_writes_nothing(lib: Any) -> None:
    _write_docs(lib, 14)
    asked: list[str] = []
    m = update_map(lib.store, lib.paths.data_dir, "documents", cancel=lambda: True,
                   progress=lambda line, f: asked.append(line))
    assert m.points == [] and m.stale and "stopped" in m.message
    assert not keep.map_file(lib.paths.data_dir, "documents").exists()
    assert asked and asked[0] == "Reading the index"


def _picture(path: Path, base: tuple[int, int, int], seed: int) -> str:
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(base, np.float64) + rng.normal(0, 12, (48, 64, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels, "RGB").save(path)
    return str(path)


def test_the_images_layer_is_named_by_file_names_and_the_vocabulary(lib: Any) -> None:
    from indexer.map.vocabulary import NOUNS

    made = []
    for i in range(8):
        made.append(_picture(lib.folder / f"beach-{i:02d}.png", (230, 200, 120), i))
        made.append(_picture(lib.folder / f"IMG_{i:04d}.jpg", (20, 30, 90), 100 + i))
    lib.service().sync_paths(made)
    asked: list[int] = []

    def word_vectors(words: Any) -> np.ndarray:
        asked.append(len(words))
        return np.stack([lib._image.embed_query(f"a photo of a {w}") for w in words])

    m = update_map(lib.store, lib.paths.data_dir, "images", word_vectors=word_vectors)
    assert len(m.points) == 16 and all(p.kind == "image" for p in m.points)
    assert all(p.thumbnail and Path(p.thumbnail).is_file() for p in m.points)
    assert asked == [len(NOUNS)]
    beach = {p.cluster for p in m.points if p.name.startswith("beach")}
    assert len(beach) == 1 and -1 not in beach
    label = next(c for c in m.clusters if c.id in beach)
    assert label.words[0] == "beach", label  # the name most of its files share comes first
    vocabulary = {w.replace("-", " ") for w in NOUNS}
    assert all(set(c.words[1:] if c.id in beach else c.words) <= vocabulary for c in m.clusters)
    assert not any("img" in c.words for c in m.clusters)  # camera names say nothing
    assert load_map(lib.store, lib.paths.data_dir, "documents") is None  # the other layer is its own map


def test_pictures_waiting_for_the_image_model_are_said_so(tmp_path: Path) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    rt = _runtime(tmp_path / "data", folder)
    try:
        rt.image_ready = lambda *a, **k: (False, "the image model is not downloaded")
        rt.service().sync_paths([_picture(folder / f"p{i}.png", (200, 10, 10), i) for i in range(3)])
        m = update_map(rt.store, rt.paths.data_dir, "images")
        assert m.points == [] and m.message.startswith("3 pictures wait for the image model")
    finally:
        rt.close()
