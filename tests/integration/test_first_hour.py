"""The first index as a newcomer lives it (issue 14.3–14.4, 13.3): honest progress,
changes jump the queue, recent and small files first."""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path
from typing import Any

from indexer.ingest.pipeline import IndexService
from indexer.library.settings import Settings, open_paths
from indexer.store.tables import Store, file_id
from indexer.types import Progress
from indexer.watch.watcher import WatchService
from tests.support.fakes import HashImageEmbedder, HashTextEmbedder


class SlowTextEmbedder(HashTextEmbedder):
    """The hash embedder at a laptop's pace: a long first index in a few seconds."""

    def __init__(self, per_text_s: float) -> None:
        super().__init__()
        self.per_text_s = per_text_s

    def embed_documents(self, items: Any) -> Any:
        time.sleep(self.per_text_s * len(items))
        return super().embed_documents(items)


def _service(tmp_path: Path, root: Path, text: Any, events: list[Progress] | None = None) -> IndexService:
    paths = open_paths(tmp_path / "data")
    image = HashImageEmbedder()
    store = Store(paths.store, text_model=(text.model_id, text.dim), image_model=(image.model_id, image.dim))
    return IndexService(store, paths, Settings(folders=[str(root)]), text, image, progress=events.append if events is not None else None)


def _write_docs(root: Path, n: int, paragraphs: int = 1) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        body = "\n\n".join(
            f"Part {p} of document {i}. " + "Harbours, lighthouses and tides shape the coast. " * 16
            for p in range(paragraphs)
        )
        (root / f"doc{i:04d}.txt").write_text(body, encoding="utf-8")


def test_every_busy_event_says_files_n_of_m_and_the_run_ends_idle(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    _write_docs(root, 40)
    events: list[Progress] = []
    svc = _service(tmp_path, root, HashTextEmbedder(), events)
    svc.index_roots([str(root)])
    busy = [e for e in events if e.phase in ("extracting", "embedding", "writing")]
    assert busy, events
    # No indeterminate "Embedding 344 passages" / "Saving 0 files": every busy event has totals.
    assert all(e.total == 40 for e in busy), [e for e in busy if e.total != 40][:3]
    assert not any(re.search(r"(?<![\d,])[01] files", e.message) for e in events), [e.message for e in events]
    assert events[-1].phase == "idle" and events[-1].message == "40 new"
    # A second run changes nothing and says so in words.
    events.clear()
    svc.index_roots([str(root)])
    assert events[-1].message == "no changes in 40 files"


def test_a_watcher_sync_ends_with_idle(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    _write_docs(root, 3)
    events: list[Progress] = []
    svc = _service(tmp_path, root, HashTextEmbedder(), events)
    svc.index_roots([str(root)])
    (root / "new.txt").write_text("a new note about ferries", encoding="utf-8")
    events.clear()
    svc.sync_paths([str(root / "new.txt")])
    # Without the closing idle the window kept showing "Saving" with a busy bar.
    assert events and events[-1].phase == "idle" and events[-1].message == "1 new"


def test_recent_and_small_files_go_first(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    old = time.time() - 400 * 24 * 3600
    sizes = {"big-old.txt": 4000, "small-old.txt": 40, "mid-old.txt": 400, "big-recent.txt": 4000}
    for name, size in sizes.items():
        (root / name).write_text(("tide " * size)[:size], encoding="utf-8")
        if "old" in name:
            os.utime(root / name, (old, old))
    events: list[Progress] = []
    svc = _service(tmp_path, root, HashTextEmbedder(), events)
    svc.index_roots([str(root)])
    order = list(dict.fromkeys(os.path.basename(e.current) for e in events if e.current))
    assert order == ["big-recent.txt", "small-old.txt", "mid-old.txt", "big-old.txt"]


def test_a_file_saved_during_a_first_index_jumps_the_queue(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    n = 240
    _write_docs(root, n, paragraphs=4)  # about 4 passages a file: several commits in a run
    text = SlowTextEmbedder(per_text_s=0.01)  # about 10 s for the whole first index
    svc = _service(tmp_path, root, text)
    settings = svc.settings
    watch = WatchService(svc, settings, svc.paths, debounce_s=0.2, max_delay_s=0.5, supervise_interval_s=0.5)
    urgent = root / "saved-now.txt"
    seen: dict[str, int] = {}
    stop = threading.Event()

    def observe() -> None:
        while not stop.is_set():
            files = svc.store.files()
            rec = files.get(file_id(str(urgent)))
            if rec is not None and rec.state == "indexed" and "at" not in seen:
                seen["at"] = sum(1 for r in files.values() if r.state == "indexed")
            time.sleep(0.05)

    watcher = threading.Thread(target=observe, daemon=True)
    watch.start()
    watcher.start()
    try:
        deadline = time.monotonic() + 30
        while not any(r.state == "indexed" for r in svc.store.files().values()):
            assert time.monotonic() < deadline, "the first index never committed"
            time.sleep(0.05)
        urgent.write_text("meeting notes about the harbour master", encoding="utf-8")
        while "at" not in seen:
            assert time.monotonic() < deadline, "the saved file was never indexed"
            time.sleep(0.05)
    finally:
        stop.set()
        watch.stop()
        watcher.join(5)
    # It was searchable while most of the first index was still waiting.
    assert seen["at"] < n * 0.8, seen


def _images_without_model(tmp_path: Path) -> tuple[IndexService, Path]:
    from PIL import Image

    root = tmp_path / "pics"
    root.mkdir()
    Image.new("RGB", (64, 48), (220, 20, 20)).save(root / "red-circle.jpg")
    Image.new("RGB", (64, 48), (20, 20, 220)).save(root / "blue square.png")
    (root / "circle notes.txt").write_text("the circle of fifths in music theory", encoding="utf-8")
    paths = open_paths(tmp_path / "data")
    text = HashTextEmbedder()
    store = Store(paths.store, text_model=(text.model_id, text.dim), image_model=None)
    svc = IndexService(store, paths, Settings(folders=[str(root)]), text, None, image_unavailable_reason="no weights")
    svc.index_roots([str(root)])
    return svc, root


def test_images_waiting_for_the_image_model_are_found_by_name(tmp_path: Path) -> None:
    from indexer.search.ranking import Searcher

    svc, root = _images_without_model(tmp_path)
    assert {r.name: r.state for r in svc.store.files().values()}["red-circle.jpg"] == "pending"
    searcher = Searcher(svc.store, svc.text_embedder, None)
    try:
        resp = searcher.search("red circle")
        images = [r for r in resp.results if r.kind == "image"]
        assert [r.name for r in images] == ["red-circle.jpg"]
        assert images[0].state == "pending"
        assert [r.name for r in searcher.search("blue square", kind="image").results] == ["blue square.png"]
        # Listing by operator shows them too.
        listed = searcher.search("kind:image").results
        assert sorted(r.name for r in listed) == ["blue square.png", "red-circle.jpg"]
        # A sentence is not a file name.
        assert not [r for r in searcher.search("a red circle drawn on a white page by hand").results if r.kind == "image"]
    finally:
        searcher.close()


def test_time_left_follows_the_work_not_the_file_count() -> None:
    """Small files go first, so the last files are the long ones: after two small files
    of three, "1 s left" would be a lie when the third is fifty times larger."""
    from indexer.ingest.pipeline import _RunProgress
    from indexer.types import FileInfo

    def text(name: str, size: int) -> FileInfo:
        return FileInfo(path=f"/r/{name}", root="/r", size=size, mtime_ns=0, kind="text")

    files = [text("a.txt", 1_000), text("b.txt", 1_000), text("big.txt", 100_000)]
    run = _RunProgress(3, total_work=102_000)
    run.started -= 2.0  # two seconds in
    run.add(files[0])
    run.add(files[1])
    event = run.event("embedding")
    assert event.done == 2 and event.total == 3
    assert event.eta_s is not None and 90 < event.eta_s < 110, event.eta_s
