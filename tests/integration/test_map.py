"""The map (issue 17) on a small real corpus with the real text model.

Forty documents in three clear topics (tests/data/map_corpus: FAQ entries, tutorial
chapters, `email` reference pages) are indexed once for the module; the map laid out
from them must keep same-topic files together, name its regions with words that belong
to them, be kept with the index, take new files without moving anyone and drop removed
ones. `lodestar map` draws and writes it. The mechanics that need no real meaning
(empty and one-file libraries, a big change, a damaged map file, cancelling) run on the
hashing fake embedder in tests/integration/test_map_mechanics.py.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from indexer.map import keep, regions
from indexer.map.build import load_map, update_map

DATA = Path(__file__).resolve().parents[1] / "data"
CORPUS = DATA / "map_corpus"
MORE = DATA / "map_corpus_extra"
TOPICS = ("faq", "tutorial", "library")


@pytest.fixture(scope="module")
def mapped(tmp_path_factory: pytest.TempPathFactory, text_embedder: Any) -> Any:
    """The corpus indexed with the real text model and its documents map built once."""
    from indexer.library.runtime import Runtime
    from indexer.library.settings import Settings, open_paths, save_settings

    base = tmp_path_factory.mktemp("map")
    root = base / "docs"
    for topic in TOPICS:
        shutil.copytree(CORPUS / topic, root / topic)
    paths = open_paths(base / "data")
    settings = Settings(folders=[str(root)], allow_download=False, recognise_text=False,
                        clip_checkpoint=str(base / "no-clip.safetensors"))
    save_settings(paths, settings)
    rt = Runtime(paths, settings)
    rt._text = text_embedder
    summary = rt.service().index_roots([str(root)])
    assert summary.failed == 0 and summary.new == 40
    rt.root = root
    rt.first_map = update_map(rt.store, paths.data_dir, "documents")
    yield rt
    rt.close()


def _topic(path: str) -> str:
    return Path(path).parent.name


def _xy(m: Any) -> np.ndarray:
    return np.array([[p.x, p.y] for p in m.points], np.float64)


def test_same_topic_files_are_neighbours_on_the_map(mapped: Any) -> None:
    m = mapped.first_map
    assert len(m.points) == 40 and m.method == "tsne" and not m.stale and not m.message
    xy = _xy(m)
    assert xy.min() >= -1e-6 and xy.max() <= 1 + 1e-6, "the full layout fills [0, 1]"
    topics = [_topic(p.path) for p in m.points]
    d = ((xy[:, None] - xy[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    nearest5 = np.argsort(d, axis=1)[:, :5]
    share = np.array([[topics[j] == topics[i] for j in row] for i, row in enumerate(nearest5)]).mean(axis=1)
    chance = sum((topics.count(t) - 1) * topics.count(t) for t in TOPICS) / (40 * 39)  # ~0.33
    assert share.mean() >= max(0.65, 2 * chance), (share.mean(), chance)
    # Most files have a same-topic majority among their five nearest on the map.
    assert (share >= 0.6).mean() >= 0.7
    by_topic = {t: share[[i for i, x in enumerate(topics) if x == t]].mean() for t in TOPICS}
    assert by_topic["library"] >= 0.8, by_topic


def test_regions_are_named_with_their_distinctive_words(mapped: Any) -> None:
    m = mapped.first_map
    assert len(m.clusters) >= 2
    members = {c.id: Counter(_topic(p.path) for p in m.points if p.cluster == c.id) for c in m.clusters}
    assert all(c.label and c.size == sum(members[c.id].values()) for c in m.clusters)
    for c in m.clusters:
        assert c.label == " · ".join(c.words[:3])
        assert not set(c.words) & regions.STOP_WORDS
    email = [c for c in m.clusters if members[c.id].most_common(1)[0][0] == "library"]
    assert email, members
    assert {"email", "message", "header", "headers", "mime"} & set(email[0].words[:3]), email[0]
    # The other regions are not named by the email pages' words.
    others = [c for c in m.clusters if c not in email]
    assert all("email" not in c.words[:3] for c in others), others
    # Labels show from the zoom level where they fit; the largest region's name at once.
    biggest = max(m.clusters, key=lambda c: c.size)
    assert biggest.level == 0 and all(0 <= c.level <= regions.MAX_LEVEL for c in m.clusters)


def test_the_map_is_kept_with_the_index_and_loads_as_built(mapped: Any) -> None:
    from indexer.library.session import LibrarySession

    path = keep.map_file(mapped.paths.data_dir, "documents")
    assert path.is_file() and path.stat().st_mode & 0o077 == 0
    session = LibrarySession(mapped)
    loaded = session.load_map("documents")
    assert loaded is not None and not loaded.stale
    assert [(p.fid, p.x, p.y, p.cluster) for p in loaded.points] == \
           [(p.fid, p.x, p.y, p.cluster) for p in mapped.first_map.points]
    assert loaded.clusters == mapped.first_map.clusters
    assert session.load_map("images") is None  # never built
    before = path.stat().st_mtime_ns
    again = session.build_map("documents")  # nothing changed: read, not laid out or written
    assert path.stat().st_mtime_ns == before and again.built_at == loaded.built_at
    # The lasso's list and the preview: result rows in the order asked, unknown ids left out.
    fids = [p.fid for p in loaded.points[:3]]
    rows = session.files_in([*fids, "0" * 32])
    assert [r.path for r in rows] == [p.path for p in loaded.points[:3]]
    assert all(r.kind == "text" and r.name and r.folder and r.size > 0 for r in rows)
    opening = Path(rows[0].path).read_text(encoding="utf-8")[:40].split()[0]
    assert rows[0].passage and rows[0].passage_start >= 0 and opening in rows[0].passage  # for the preview


def test_a_query_lights_up_its_topic(mapped: Any) -> None:
    from indexer.library.session import LibrarySession

    hits = LibrarySession(mapped).map_query("parse the headers of an email message", "documents", limit=10)
    assert hits.scores and not hits.message
    by_fid = {p.fid: p for p in mapped.first_map.points}
    top = sorted(hits.scores, key=lambda f: -hits.scores[f])[:5]
    assert all(f in by_fid for f in hits.scores)
    assert Counter(_topic(by_fid[f].path) for f in top).most_common(1)[0][0] == "library"


def test_lodestar_map_draws_and_writes_the_map(mapped: Any, tmp_path: Path, capsys: Any) -> None:
    from indexer.cli.main import main as cli_main

    png, js = tmp_path / "map.png", tmp_path / "map.json"
    code = cli_main(["map", "--data-dir", str(mapped.paths.data_dir), "--png", str(png), "--json", str(js),
                     "--size", "900x700"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Map of 40 documents" in out and f"Wrote {png}" in out
    with Image.open(png) as img:
        assert img.size == (900, 700)
        colours = {c for _n, c in img.convert("RGB").getcolors(maxcolors=1 << 20)}
    from indexer.map.render import BACKGROUND, PALETTE

    assert BACKGROUND in colours and PALETTE[0] in colours  # points drawn in their region's colour
    data = json.loads(js.read_text(encoding="utf-8"))
    assert {f["path"] for f in data["files"]} == {p.path for p in mapped.first_map.points}
    assert all(set(f) == {"path", "x", "y", "cluster"} for f in data["files"])
    assert [c["label"] for c in data["clusters"]] == [c.label for c in mapped.first_map.clusters]
    assert data["layer"] == "documents" and data["stale"] is False


def test_new_files_are_placed_and_nobody_moves(mapped: Any) -> None:
    """Runs last in this module: it changes the library."""
    data_dir = mapped.paths.data_dir
    before = {p.fid: (p.x, p.y, p.cluster) for p in mapped.first_map.points}
    kept_before = keep.load(data_dir, "documents")
    assert kept_before is not None
    added = []
    for f in sorted(MORE.iterdir()):
        dst = mapped.root / "library" / f.name
        shutil.copyfile(f, dst)
        added.append(str(dst))
    service = mapped.service()
    service.sync_paths(added)
    stale = load_map(mapped.store, data_dir, "documents")
    assert stale is not None and stale.stale and len(stale.points) == 40  # the kept map, said to be stale

    m = update_map(mapped.store, data_dir, "documents")
    assert not m.stale and len(m.points) == 43
    now = {p.fid: (p.x, p.y, p.cluster) for p in m.points}
    assert all(now[f] == before[f] for f in before), "old points keep their exact place and region"
    kept = keep.load(data_dir, "documents")
    assert kept is not None
    assert kept.laid_out_at == kept_before.laid_out_at and kept.changed_since == 3  # placed, not laid out
    # Each new email page lands among the email pages: its nearest neighbours on the map.
    xy = {p.fid: np.array([p.x, p.y]) for p in m.points}
    topic = {p.fid: _topic(p.path) for p in m.points}
    new = [p.fid for p in m.points if p.fid not in before]
    for fid in new:
        near = sorted(before, key=lambda f: float(((xy[f] - xy[fid]) ** 2).sum()))[:3]
        assert Counter(topic[f] for f in near).most_common(1)[0][0] == "library", fid
    # A removed file drops; the rest stay where they were.
    gone = mapped.root / "faq" / "general-entry-000.txt"
    os.unlink(gone)
    service.sync_paths([str(gone)])
    m2 = update_map(mapped.store, data_dir, "documents")
    assert len(m2.points) == 42 and str(gone) not in {p.path for p in m2.points}
    assert all((p.x, p.y, p.cluster) == now[p.fid] for p in m2.points)


def test_the_images_map_is_named_through_clips_text_tower(make_runtime: Any, tmp_path: Path) -> None:
    """The session's build on the tiny real CLIP: vocabulary words embedded once and kept."""
    from indexer.library.session import LibrarySession
    from indexer.map.vocabulary import NOUNS

    folder = tmp_path / "pictures"
    folder.mkdir()
    rng = np.random.default_rng(5)
    for i in range(14):
        base = (200, 40, 40) if i % 2 else (40, 60, 200)
        pixels = np.clip(np.array(base) + rng.normal(0, 20, (40, 56, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels, "RGB").save(folder / f"{'sunset' if i % 2 else 'harbour'}-{i:02d}.png")
    rt = make_runtime([str(folder)], recognise_text=False)
    assert rt.service().index_roots([str(folder)]).new == 14
    session = LibrarySession(rt)
    m = session.build_map("images")
    assert len(m.points) == 14 and m.model.endswith(f"/{rt.image_embedder.dim}") and m.clusters
    vocabulary = {w.replace("-", " ") for w in NOUNS}
    assert all(c.label and set(c.words) <= vocabulary | {"sunset", "harbour"} for c in m.clusters)
    assert any(set(c.words) & vocabulary for c in m.clusters)  # CLIP's words, not only the names
    cached = list((rt.paths.data_dir / "map").glob("vocabulary-*.npy"))
    assert len(cached) == 1 and np.load(cached[0]).shape == (len(NOUNS), rt.image_embedder.dim)
    hits = session.map_query("a red picture", "images", limit=5)
    assert set(hits.scores) <= {p.fid for p in m.points}
