"""End to end: real watchdog + real IndexService + LanceDB store, hash-based fake embedders.

Asserts what a person sees: a saved file becomes searchable, an atomic save updates
the target without indexing the temp name, a rename re-uses vectors, a delete
disappears, and an offline folder is hidden (kept), then comes back.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from indexer.ingest.pipeline import IndexService
from indexer.library.settings import Settings, open_paths, save_settings
from indexer.search.ranking import Searcher
from indexer.store.tables import Store
from indexer.watch.watcher import WatchService
from tests.support.fakes import HashImageEmbedder, HashTextEmbedder
from tests.unit.test_watch import wait_until

TIMEOUT = 20.0  # a LanceDB commit per batch on a loaded 2-core machine


@pytest.fixture
def stack(tmp_path: Path) -> Any:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "start.txt").write_text("the lighthouse keeper logs every passing ship", encoding="utf-8")
    paths = open_paths(tmp_path / "data")
    settings = Settings(folders=[os.path.realpath(root)], reconcile_interval_s=3600)
    save_settings(paths, settings)
    text, image = HashTextEmbedder(), HashImageEmbedder()
    store = Store(paths.store, text_model=(text.model_id, text.dim), image_model=(image.model_id, image.dim))
    service = IndexService(store, paths, settings, text, image)
    ws = WatchService(service, settings, paths, debounce_s=0.1, max_delay_s=1.0, supervise_interval_s=0.2)
    searcher = Searcher(store, text, image, paths=paths, settings=settings)
    ws.start()

    class Stack:
        pass

    s = Stack()
    s.root, s.store, s.service, s.ws, s.text, s.searcher = Path(os.path.realpath(root)), store, service, ws, text, searcher  # type: ignore[attr-defined]
    yield s
    assert ws.stop(timeout=30)
    store.close()


def record(s: Any, path: Path) -> Any:
    with s.service._lock:  # read between batches, like the window's refresh
        return s.store.get_file(str(path))


def indexed_paths(s: Any) -> set[str]:
    with s.service._lock:
        return {r.path for r in s.store.files().values()}


def test_watch_keeps_real_index_equal_to_disk(stack: Any) -> None:
    s = stack
    assert wait_until(lambda: (r := record(s, s.root / "start.txt")) is not None and r.state == "indexed", TIMEOUT)

    new = s.root / "note.md"
    new.write_text("# Zanzibar\n\nthe zanzibar spice market opens at dawn", encoding="utf-8")
    assert wait_until(lambda: (r := record(s, new)) is not None and r.state == "indexed", TIMEOUT)
    hits = s.searcher.search("zanzibar spice market").results
    assert hits and hits[0].path == str(new)

    # gedit-style atomic save: temp file renamed over the target.
    tmp = s.root / ".goutputstream-Q1W2E3"
    tmp.write_text("# Zanzibar\n\nrewritten: the harbour ferry timetable", encoding="utf-8")
    old_hash = record(s, new).content_hash
    os.replace(tmp, new)
    assert wait_until(lambda: (r := record(s, new)) is not None and r.content_hash != old_hash, TIMEOUT)
    assert str(tmp) not in indexed_paths(s)

    # Pure rename: the path changes, no model call is needed.
    assert s.ws.wait_idle(TIMEOUT)
    calls = s.text.calls
    renamed = s.root / "renamed.md"
    os.rename(new, renamed)
    assert wait_until(lambda: str(renamed) in indexed_paths(s) and str(new) not in indexed_paths(s), TIMEOUT)
    assert s.text.calls == calls, "a rename re-embedded the file"

    os.unlink(renamed)
    assert wait_until(lambda: indexed_paths(s) == {str(s.root / "start.txt")}, TIMEOUT)


def test_offline_folder_is_hidden_then_returns(stack: Any) -> None:
    s = stack
    start = s.root / "start.txt"
    assert wait_until(lambda: (r := record(s, start)) is not None and r.state == "indexed", TIMEOUT)
    # Out of the follow's reach (it looks beside and one level below the old place, where a
    # renamed folder would be): this is a drive taken away, not a folder renamed.
    aside = s.root.parent / "shelf" / "drawer" / "unplugged"
    aside.parent.mkdir(parents=True)
    os.rename(s.root, aside)
    assert wait_until(lambda: s.ws.folder_status()[0].mode == "unavailable", TIMEOUT)
    assert wait_until(lambda: (r := record(s, start)) is not None and r.available is False, TIMEOUT)
    (aside / "added_offline.txt").write_text("written while the drive was elsewhere", encoding="utf-8")
    os.rename(aside, s.root)
    assert wait_until(lambda: (r := record(s, start)) is not None and r.available is True, TIMEOUT)
    assert wait_until(lambda: record(s, s.root / "added_offline.txt") is not None, TIMEOUT)
    assert s.ws.folder_status()[0].mode == "live"
