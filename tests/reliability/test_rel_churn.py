"""Promise 12 (bounded disk): 1,000 edit cycles through sync_paths keep the store small.

A watcher never calls ``index_roots`` (which optimizes after every run), so the
service compacts and prunes on its own every ``OPTIMIZE_EVERY_COMMITS`` commits.
Lance keeps old versions for ``CLEANUP_OLDER_THAN`` (2 minutes) so a slow reader
never loses the version it reads; this test compresses that window to 1 s so that
1,000 cycles (about a minute) show the steady state a person reaches after hours.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from indexer.ingest import pipeline
from indexer.store.tables import Store
from tests.support.rel_checks import committed_intact
from tests.support.rel_stack import make_stack

CYCLES = 1000
FILES = 4


def data_file_count(store: Store) -> int:
    return sum(len(files) for _d, _s, files in os.walk(store.path))


@pytest.mark.slow
def test_churn_keeps_store_size_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Store.optimize, "__defaults__", (timedelta(seconds=1),))
    s = make_stack(tmp_path)
    paths = [s.root / f"note{i}.txt" for i in range(FILES)]
    for p in paths:
        p.write_text(f"first draft of {p.name}", encoding="utf-8")
    s.service.index_roots([str(s.root)])
    start_files, start_bytes = data_file_count(s.store), s.store.size_bytes()
    peak_files = peak_bytes = 0
    for c in range(CYCLES):
        p = paths[c % FILES]
        p.write_text(f"draft {c} of {p.name}: words{c} and more{c * 3}", encoding="utf-8")
        s.service.sync_paths([str(p)])
        if c % 10 == 0:
            peak_files = max(peak_files, data_file_count(s.store))
            peak_bytes = max(peak_bytes, s.store.size_bytes())
    end_files, end_bytes = data_file_count(s.store), s.store.size_bytes()
    print(f"\nchurn: {CYCLES} cycles on {FILES} files: start {start_files} files/{start_bytes} B, "
          f"peak {peak_files} files/{peak_bytes} B, end {end_files} files/{end_bytes} B")
    # Without compaction this grows ~8 files and ~10 KB per cycle (8,000 files, 10 MB here).
    per_window = 10 * pipeline.OPTIMIZE_EVERY_COMMITS  # files a window of commits adds, with slack
    assert peak_files < per_window + 200, peak_files
    assert peak_bytes < 2 * 1024 * 1024, peak_bytes
    assert end_files < per_window + 200 and end_bytes < 2 * 1024 * 1024
    # And the index is still right: the last edit of every file is what is indexed.
    committed_intact(s.store)
    assert len(s.store.files()) == FILES
    assert s.searcher().search(f"words{CYCLES - 1}").results[0].path == str(paths[(CYCLES - 1) % FILES])
    s.store.close()


def test_sync_only_workload_triggers_optimize(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fast check of the trigger itself (the slow test above shows its effect)."""
    monkeypatch.setattr(pipeline, "OPTIMIZE_EVERY_COMMITS", 5)
    s = make_stack(tmp_path)
    calls: list[int] = []
    real = s.store.optimize
    monkeypatch.setattr(s.store, "optimize", lambda *a, **k: (calls.append(1), real(*a, **k)))
    p = s.root / "a.txt"
    for c in range(12):
        p.write_text(f"edit {c}", encoding="utf-8")
        s.service.sync_paths([str(p)])
    assert len(calls) == 2  # after commit 5 and 10
    s.store.close()
