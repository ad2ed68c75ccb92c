"""Model changes and single-file indexing through the real pipeline (fake models)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from indexer.ingest.pipeline import IndexService
from indexer.library.settings import Settings, open_paths
from indexer.search.ranking import Searcher
from indexer.store.tables import Store
from tests.support.fakes import HashImageEmbedder, HashTextEmbedder

ROOT = Path(__file__).resolve().parents[2]


def _service(data: Path, root: Path, text: Any, image: Any) -> IndexService:
    paths = open_paths(data)
    store = Store(paths.store, text_model=(text.model_id, text.dim), image_model=(image.model_id, image.dim))
    return IndexService(store, paths, Settings(folders=[str(root)]), text, image)


def test_model_change_reembeds_and_never_mixes_models(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    for i in range(5):
        (root / f"note{i}.txt").write_text(f"note {i} about glaciers and fjords number {i}", encoding="utf-8")
    old = HashTextEmbedder(dim=64, model_id="fake/old")
    image = HashImageEmbedder()
    svc = _service(tmp_path / "data", root, old, image)
    svc.index_roots([str(root)])
    assert any(n.startswith("chunks__fake_old") for n in svc.store.table_names())

    new = HashTextEmbedder(dim=48, model_id="fake/new")
    svc2 = _service(tmp_path / "data", root, new, image)
    summary = svc2.index_roots([str(root)])
    assert summary.updated == 5 and new.texts_embedded >= 5
    names = svc2.store.table_names()
    assert not any(n.startswith("chunks__fake_old") for n in names), names
    assert all(r.text_model == "fake/new" for r in svc2.store.files().values())
    results = Searcher(svc2.store, new, image).search("glaciers fjords", kind="text").results
    assert len(results) == 5
    # A third run is a no-op: nothing re-embedded.
    before = new.texts_embedded
    assert svc2.index_roots([str(root)]).unchanged == 5
    assert new.texts_embedded == before


def test_index_single_files_outside_watched_folders(tmp_path: Path) -> None:
    loose = tmp_path / "loose"
    loose.mkdir()
    doc = loose / "recipe.txt"
    doc.write_text("slow cooked lentil soup with cumin", encoding="utf-8")
    text = HashTextEmbedder()
    svc = _service(tmp_path / "data", tmp_path / "elsewhere", text, HashImageEmbedder())
    summary = svc.index_files([str(doc)])
    assert summary.new == 1
    rec = svc.store.get_file(str(doc))
    assert rec is not None and rec.state == "indexed" and rec.root == str(loose)


def test_retry_rereads_a_failed_file_and_stop_abandons_embedding(tmp_path: Path) -> None:
    import threading

    root = tmp_path / "docs"
    root.mkdir()
    bad = root / "bad.pdf"
    bad.write_bytes(b"%PDF-1.4 not really a pdf")
    text = HashTextEmbedder()
    svc = _service(tmp_path / "data", root, text, HashImageEmbedder())
    svc.index_roots([str(root)])
    rec = svc.store.get_file(str(bad))
    assert rec is not None and rec.state == "failed"
    # Unchanged: a plain sync does nothing, a forced one (Retry) reads it again.
    assert svc.sync_paths([str(bad)]).unchanged == 1
    assert svc.sync_paths([str(bad)], force=True).updated == 1

    # A stop request during embedding abandons the batch and writes nothing half-done.
    for i in range(30):
        (root / f"n{i}.txt").write_text(f"note {i} " + "words " * 50, encoding="utf-8")
    cancel = threading.Event()
    real = text.embed_documents

    def slow(items: Any) -> Any:
        cancel.set()  # the stop arrives while the first slice is being embedded
        return real(items)

    text.embed_documents = slow  # type: ignore[method-assign]
    svc.sync_paths([str(root)], cancel=cancel)
    indexed = [r for r in svc.store.files().values() if r.state == "indexed"]
    for r in indexed:
        assert svc.store.chunk_rows(r.fid, r.content_hash), r.path
    text.embed_documents = real  # type: ignore[method-assign]
    svc.index_roots([str(root)])
    assert sum(1 for r in svc.store.files().values() if r.state == "indexed") == 30


def test_extraction_threads_follow_the_device() -> None:
    """CPU: two threads (the models need the cores). GPU: the JPEG decode is the
    bottleneck, so the indexer uses the cores (docs/PERFORMANCE.md, GPU)."""
    import types
    from unittest import mock

    from indexer.library.runtime import extract_threads

    cpu, gpu = types.SimpleNamespace(device="cpu"), types.SimpleNamespace(device="cuda:0")
    assert extract_threads(cpu, None) == 2
    assert extract_threads(types.SimpleNamespace(device=None), cpu) == 2
    with mock.patch("os.cpu_count", return_value=16):
        assert extract_threads(cpu, gpu) == 15
    with mock.patch("os.cpu_count", return_value=64):
        assert extract_threads(gpu, None) == 16
    with mock.patch("os.cpu_count", return_value=2):
        assert extract_threads(gpu, None) == 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc_trim is glibc's")
def test_a_finished_run_hands_freed_heap_back_to_the_os() -> None:
    """Freed-but-fragmented heap (what a reconcile leaves) is returned by release_memory;
    with LODESTAR_MALLOC_TRIM=0 it stays resident."""
    code = textwrap.dedent(
        """
        import os
        def rss():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 2**20
        blocks = [bytes(1500) for _ in range(200_000)]
        keep = blocks[::50]  # pins the heap: plain free() cannot shrink it
        del blocks
        before = rss()
        from indexer.ingest.pipeline import release_memory
        release_memory()
        print(before, rss())
        """
    )
    def run(trim: str) -> tuple[int, int]:
        env = {**os.environ, "LODESTAR_MALLOC_TRIM": trim}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True)
        before, after = (int(x) for x in out.stdout.split())
        return before, after

    before, after = run("1")
    assert after < before - 150, (before, after)
    before, after = run("0")
    assert after > before - 50, (before, after)
