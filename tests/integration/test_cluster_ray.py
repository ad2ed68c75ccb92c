"""Bulk indexing on Ray (indexer/cluster, issue 19) against a real local Ray instance.

One Ray instance (2 CPUs) for the module: it takes seconds to start. Its workers import
this repository from the working folder and build the same models as the tests do
(tests/support/ray_models.py): the real all-MiniLM-L6-v2 and the tiny CLIP.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from indexer.cluster.ray_index import RayCluster  # noqa: E402
from indexer.ingest import pipeline  # noqa: E402
from indexer.ingest.pipeline import IndexService  # noqa: E402
from indexer.library.settings import Settings, open_paths  # noqa: E402
from indexer.search.ranking import Searcher  # noqa: E402
from indexer.store.tables import Store  # noqa: E402
from tests.support import ray_models  # noqa: E402
from tests.support.fakes import HashImageEmbedder, HashTextEmbedder  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=150 << 20,
        # The actors keep the torch paths: no background ONNX export competing for the 2 CPUs.
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT), "LODESTAR_TEXT_LIGHT": "0", "LODESTAR_CLIP_LIGHT": "0"}},
    )
    try:
        yield ray
    finally:
        ray.shutdown()


def _service(data: Path, root: Path, text: Any, image: Any, **kw: Any) -> IndexService:
    paths = open_paths(data)
    store = Store(paths.store, text_model=(text.model_id, text.dim),
                  image_model=(image.model_id, image.dim) if image is not None else None)
    return IndexService(store, paths, Settings(folders=[str(root)], allow_download=False), text, image, **kw)


def _library(root: Path) -> None:
    """Documents (some of several passages), pictures, a broken picture, a copy, an unknown type."""
    from PIL import Image

    root.mkdir()
    (root / "sub").mkdir()
    topics = ["glaciers carve fjords over thousands of years", "sourdough needs a lively starter and time",
              "the tax return is due at the end of april", "our cat sleeps on the warm radiator"]
    for i, topic in enumerate(topics):
        body = "\n\n".join(f"{topic}. Paragraph {j} says more about it, sentence after sentence." * 6 for j in range(4))
        (root / ("sub" if i % 2 else ".") / f"doc{i}.md").write_text(f"# Note {i}\n\n{body}\n", encoding="utf-8")
    (root / "short.txt").write_text("a tiny note about lighthouses", encoding="utf-8")
    (root / "copy.txt").write_text("a tiny note about lighthouses", encoding="utf-8")
    rng = np.random.default_rng(7)
    for i, size in enumerate([(64, 48), (300, 200), (40, 90)]):
        pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels, "RGB").save(root / f"photo{i}.{'png' if i == 1 else 'jpg'}")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg" * 10)
    (root / "data.bin").write_bytes(b"\x00\x01 nothing to read")


def _snapshot(store: Store, text_id: str) -> dict[str, Any]:
    files = {r.path: r for r in store.files().values()}
    chunks = {p: store.chunk_rows(r.fid, r.content_hash, model_id=text_id) for p, r in files.items() if r.kind == "text"}
    images = store.image_rows_of({r.fid: r.content_hash for r in files.values() if r.kind == "image"})
    return {"files": files, "chunks": chunks, "images": {files_path: images.get(r.fid) for files_path, r in files.items()
                                                           if r.kind == "image"}}


def test_ray_index_gives_the_local_index_vectors_and_search(
    local_ray: Any, tmp_path: Path, text_embedder: Any, tiny_clip: Any, tiny_clip_checkpoint: Path
) -> None:
    root = tmp_path / "library"
    _library(root)
    doc0 = (root / "doc0.md").read_text(encoding="utf-8")
    local = _service(tmp_path / "local", root, text_embedder, tiny_clip)
    local_summary = local.index_roots([str(root)])

    events: list[Any] = []
    remote = _service(tmp_path / "remote", root, text_embedder, tiny_clip, progress=events.append)
    cluster = RayCluster("auto", ray_models.minilm, functools.partial(ray_models.tiny_clip, str(tiny_clip_checkpoint)))
    with cluster:
        placement = cluster.start((text_embedder.model_id, text_embedder.dim), (tiny_clip.model_id, tiny_clip.dim))
        assert placement.workers == 1 and placement.gpus == 0 and placement.readers >= 1
        remote.source = cluster.source()
        summary = remote.index_roots([str(root)])
        assert cluster._started_ray is False  # `auto` used this process's Ray and leaves it running
        # A second run reads only what changed; unchanged passages keep their vectors (the
        # worker is told to skip them), and back to the first text, all match the local index.
        (root / "doc0.md").write_text(doc0 + "\n\nA new closing paragraph about volcanoes.\n", encoding="utf-8")
        again = remote.index_roots([str(root)])
        (root / "doc0.md").write_text(doc0, encoding="utf-8")
        remote.index_roots([str(root)])
    assert (again.updated, again.new, again.unchanged) == (1, 0, summary.new - 1)
    assert (summary.new, summary.failed, summary.name_only) == (local_summary.new, local_summary.failed, local_summary.name_only)
    assert summary.model_calls == 0  # the models ran on the cluster only
    # Progress as for a local index: N of M, then the summary line.
    assert any(e.phase == "embedding" and e.total == summary.new and e.done for e in events)
    assert any(e.phase == "idle" and f"{summary.new} new" in e.message for e in events)

    a, b = _snapshot(local.store, text_embedder.model_id), _snapshot(remote.store, text_embedder.model_id)
    assert a["files"].keys() == b["files"].keys()
    for path, ra in a["files"].items():
        rb = b["files"][path]
        assert (rb.state, rb.reason, rb.kind, rb.content_hash, rb.n_chunks, rb.title, rb.text_model, rb.image_model) == (
            ra.state, ra.reason, ra.kind, ra.content_hash, ra.n_chunks, ra.title, ra.text_model, ra.image_model), path
    broken = b["files"][str(root / "broken.jpg")]
    assert broken.state == "failed" and broken.reason  # read on a worker, recorded with its reason
    assert b["files"][str(root / "data.bin")].state == "name_only"
    for path, rows in a["chunks"].items():
        other = b["chunks"][path]
        assert [(r.ord, r.text, r.start, r.end, r.chunk_hash) for r in other] == [
            (r.ord, r.text, r.start, r.end, r.chunk_hash) for r in rows], path
        if rows:
            np.testing.assert_allclose(np.stack([r.vector for r in other]), np.stack([r.vector for r in rows]), atol=1e-5)
    assert sum(len(r) for r in b["chunks"].values()) > len(b["chunks"])  # documents of several passages
    for path, row in a["images"].items():
        if a["files"][path].state != "indexed":
            continue
        other = b["images"][path]
        assert other is not None and (other.width, other.height, other.thumb) == (row.width, row.height, row.thumb)
        np.testing.assert_allclose(other.vector, row.vector, atol=1e-5)
        assert (remote.paths.thumbnails / other.thumb).is_file()  # written by the writer, from the worker's bytes

    for query, kind in (("how fjords are made", "text"), ("sourdough starter", "text"), ("photo", "image")):
        la = Searcher(local.store, text_embedder, tiny_clip).search(query, kind=kind).results
        lb = Searcher(remote.store, text_embedder, tiny_clip).search(query, kind=kind).results
        assert [r.path for r in lb] == [r.path for r in la] and la, query
        np.testing.assert_allclose([r.score for r in lb], [r.score for r in la], atol=1e-4)



def test_a_stopped_ray_run_commits_as_it_goes_and_the_rerun_reads_only_the_rest(
    local_ray: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from indexer.cluster import ray_index

    monkeypatch.setattr(pipeline, "FILES_PER_COMMIT", 4)
    monkeypatch.setattr(ray_index, "BATCH_FILES", 3)
    root = tmp_path / "notes"
    root.mkdir()
    for i in range(30):
        (root / f"note{i:02d}.txt").write_text(f"note {i}: " + "about the harbour and its boats " * (i + 1), encoding="utf-8")
    text = HashTextEmbedder()
    stop = threading.Event()

    def progress(event: Any) -> None:
        if event.phase == "embedding" and event.done >= 10:
            stop.set()  # as the window's stop button or a SIGTERM would

    svc = _service(tmp_path / "data", root, text, None, progress=progress)
    with RayCluster("auto", HashTextEmbedder) as cluster:
        cluster.start((text.model_id, text.dim), None)
        svc.source = cluster.source()
        first = svc.index_roots([str(root)], cancel=stop)
        kept = {r.path for r in svc.store.files().values() if r.state == "indexed"}
        assert 8 <= len(kept) < 30 and first.new >= len(kept)
        svc._progress_cb = None
        rest = svc.index_roots([str(root)])
    assert rest.unchanged == len(kept) and rest.new == 30 - len(kept) and rest.failed == 0
    records = svc.store.files().values()
    assert len(records) == 30 and all(r.state == "indexed" for r in records)
    assert svc.store.counts()["chunks"] >= 30
    assert Searcher(svc.store, text, None).search("note 29: about the harbour", kind="text").results


def test_a_file_that_kills_its_worker_is_recorded_failed_and_the_rest_of_its_batch_indexed(
    local_ray: Any, tmp_path: Path
) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    for i in range(5):
        (root / f"doc{i}.txt").write_text(f"document {i} about rivers and bridges", encoding="utf-8")
    (root / f"{ray_models.POISON}.txt").write_text("this one crashes the reader", encoding="utf-8")
    from PIL import Image

    Image.new("RGB", (40, 30), (200, 30, 30)).save(root / "red.png")
    text = HashTextEmbedder()
    svc = _service(tmp_path / "data", root, text, HashImageEmbedder())
    with RayCluster("auto", HashTextEmbedder) as cluster:  # started without an image model
        cluster.start((text.model_id, text.dim), None)
        svc.source = cluster.source(reader=ray_models.read_or_die, retries=0)
        summary = svc.index_roots([str(root)])
    assert summary.new == 7 and summary.failed == 1 and summary.pending == 1
    red = svc.store.get_file(str(root / "red.png"))
    assert red is not None and red.state == "pending" and "without the image model" in red.reason
    (path, reason), = summary.failures
    assert path.endswith("poison.txt") and "cluster worker failed while reading it" in reason
    rec = svc.store.get_file(path)
    assert rec is not None and rec.state == "failed" and rec.reason == reason  # kept, with why, not lost
    others = [r for r in svc.store.files().values() if r.kind == "text" and r.path != path]
    assert len(others) == 5 and all(r.state == "indexed" for r in others)


def test_lodestar_index_ray_auto_indexes_and_searches(local_ray: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from indexer.cli.main import main

    root = tmp_path / "folder"
    root.mkdir()
    for name, body in {"volcano.txt": "lava flows from the volcano after an eruption",
                       "garden.md": "# Garden\n\ntomatoes need sun and water every day",
                       "trip.txt": "our train journey through the alps in winter"}.items():
        (root / name).write_text(body, encoding="utf-8")
    data = tmp_path / "data"
    assert main(["--data-dir", str(data), "index", "--json", "--ray", "auto", "--ray-workers", "1", str(root)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["new"] == 3 and summary["failed"] == 0, summary
    assert ray.is_initialized()  # `auto` used the Ray this process had, and left it up
    assert main(["--data-dir", str(data), "search", "--json", "hot molten rock"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert results and results[0]["path"] == str(root / "volcano.txt")
