"""The map's pure parts (issue 17): label levels never overlap, distinctive words, placement,
regions of a layout, the kept file's round trip and scale."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from indexer.map import keep, layout, regions


def test_labels_shown_at_a_level_never_overlap() -> None:
    rng = random.Random(3)
    n = 80
    xs = [rng.random() for _ in range(n)]
    ys = [rng.random() for _ in range(n)]
    labels = [" · ".join(rng.choice(["harbour", "tax", "recipes", "invoice", "cats"]) for _ in range(3)) for _ in range(n)]
    sizes = [rng.randint(5, 500) for _ in range(n)]
    levels = regions.label_levels(xs, ys, labels, sizes)
    assert levels[sizes.index(max(sizes))] == 0  # the largest region is named at once
    for level in range(regions.MAX_LEVEL):
        shown = [i for i in range(n) if levels[i] <= level]
        scale = regions.VIEW_PX * 2 ** level
        for a in shown:
            for b in shown:
                if a < b:
                    assert not regions._overlap(a, b, level, scale, xs, ys, labels), (a, b, level)
    assert max(levels) > 0  # 80 labels cannot all fit on one 800 px view


def test_distinctive_words_beat_words_every_region_uses() -> None:
    counter = regions.TermCounter()
    for i in range(6):
        counter.add(0, "The python tutorial explains loops and python lists", 1.0, f"a{i}")
        counter.add(1, "The python email package parses headers of a message", 1.0, f"b{i}")
    counter.add(1, "A single file about kangaroos", 1.0, "b-odd")
    top = counter.top_words(3)
    assert "python" not in top[0] and "python" not in top[1]  # everywhere: says nothing
    assert {"tutorial", "explains", "loops", "lists"} >= set(top[0])
    assert {"email", "headers", "message", "package", "parses"} >= set(top[1])
    assert "kangaroos" not in top[1]  # one file of seven cannot name a region


def test_tokens_drop_stop_words_numbers_and_punctuation() -> None:
    assert regions.tokens("The 2024 Budget—and the taxes (draft_v2), it's Müller's!") == \
        ["budget", "taxes", "draft", "müller"]
    assert regions.tokens("IMG_2024 screenshot holiday", regions.NAME_STOP_WORDS) == ["holiday"]


def test_regions_of_a_layout_are_numbered_largest_first() -> None:
    rng = np.random.default_rng(0)
    blobs = [rng.normal(c, 0.3, (n, 2)) for c, n in (((0, 0), 30), ((6, 0), 50), ((0, 6), 40))]
    xy = np.vstack(blobs).astype(np.float32)
    ids = regions.find_clusters(xy)
    assert set(ids.tolist()) == {0, 1, 2}
    assert (ids[30:80] == 0).all() and (ids[80:] == 1).all() and (ids[:30] == 2).all()
    assert regions.find_clusters(xy[:5]).tolist() == [0] * 5  # too few for two regions


def test_new_points_land_beside_their_nearest_neighbours() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(16), rng.standard_normal(16)
    old = np.stack([a + 0.1 * rng.standard_normal(16) for _ in range(10)] +
                   [b + 0.1 * rng.standard_normal(16) for _ in range(10)])
    old /= np.linalg.norm(old, axis=1, keepdims=True)
    old_xy = np.array([[0.0, 0.0]] * 10 + [[10.0, 10.0]] * 10, np.float32) + rng.normal(0, 0.1, (20, 2)).astype(np.float32)
    new = np.stack([a, b, old[3]])
    new /= np.linalg.norm(new, axis=1, keepdims=True)
    xy, nearest = layout.place(new, old, old_xy)
    assert np.linalg.norm(xy[0]) < 1.0 and np.linalg.norm(xy[1] - 10) < 1.5
    assert nearest[2] == 3 and np.allclose(xy[2], old_xy[3], atol=0.2)


def test_the_kept_map_round_trips_and_fits_the_unit_square(tmp_path: Path) -> None:
    xy = np.array([[-3.0, 1.0], [5.0, 2.0], [1.0, 3.0]], np.float32)
    origin, span = keep.scale_for(xy)
    unit = (xy - np.array(origin)) / span
    assert unit.min() >= 0 and unit.max() <= 1 and abs((unit[:, 0].max() - unit[:, 0].min()) - 8 / span) < 1e-6
    kept = keep.KeptMap(
        layer="documents", model="m/384", method="umap", fids=["a" * 32, "b" * 32, "c" * 32],
        hashes=["h1", "h2" * 40, "h3"], xy=xy, regions=np.array([0, 0, -1], np.int32),
        clusters=[keep.KeptRegion(0, "tax · invoice", 1.0, 1.5, 2, 0, ["tax", "invoice"])],
        built_at=2.0, laid_out_at=1.0, laid_out_n=3, changed_since=0, origin=origin, span=span,
    )
    path = keep.save(tmp_path, kept)
    assert path == tmp_path / "map" / "documents.npz" and not list(path.parent.glob("*.tmp"))
    back = keep.load(tmp_path, "documents")
    assert back is not None and back.hashes == kept.hashes and back.fids == kept.fids
    assert np.array_equal(back.xy, xy) and back.clusters == kept.clusters and back.origin == origin
    assert keep.load(tmp_path, "images") is None
    path.write_bytes(b"\x00" * 10)
    assert keep.load(tmp_path, "documents") is None


def test_few_points_are_laid_out_without_umap() -> None:
    assert layout.full_layout(np.zeros((0, 8), np.float32))[1] == "empty"
    xy, how = layout.full_layout(np.eye(8, dtype=np.float32)[:1])
    assert how == "single" and xy.shape == (1, 2)
    xy, how = layout.full_layout(np.eye(8, dtype=np.float32)[:5])
    assert how == "pca" and xy.shape == (5, 2) and np.isfinite(xy).all()
