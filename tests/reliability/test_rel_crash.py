"""Promise 1: kill -9 at any moment loses nothing committed; the next run resumes.

A child process (tests/support/helpers_crash.py: the real Runtime, IndexService and store,
with the hash text embedder) indexes a generated tree and is SIGKILLed after a
seeded random delay, again and again, while files keep being added and edited
between runs. After every kill the store must open without repair, every file
marked indexed must have all its rows for its content hash, search must only
return whole files, and no run may embed more texts than there were unfinished
files. A final uninterrupted run must embed exactly the unfinished ones.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from indexer.search.ranking import Searcher
from indexer.store.tables import Store, file_id
from tests.support.fakes import HashImageEmbedder, HashTextEmbedder
from tests.support.health_probe import all_tables_readable
from tests.support.rel_checks import committed_intact, content_hash, results_whole

HELPER = Path(__file__).resolve().parents[1] / "support" / "helpers_crash.py"
SEED = 20261127
FILES = 2000
KILLS = 20


HASHES: dict[str, set[str]] = {}  # path -> hashes of every version written (what "intact" may show)


def _write(root: Path, i: int, version: int = 0) -> None:
    d = root / f"d{i % 25}"
    d.mkdir(exist_ok=True)
    # Unique words per file and version: one chunk each, never shared with another file.
    p = d / f"f{i}.txt"
    p.write_text(f"file {i} v{version} alpha{i} bravo{i * 7 + version} charlie{i * 13} delta\n", encoding="utf-8")
    HASHES.setdefault(str(p), set()).add(content_hash(str(p)))


def _open_store(data: Path) -> Store:
    text, image = HashTextEmbedder(), HashImageEmbedder()
    return Store(data / "index.lance", text_model=(text.model_id, text.dim), image_model=(image.model_id, image.dim))


def _unfinished(store: Store, root: Path) -> set[str]:
    """Files on disk whose current bytes are not committed as indexed."""
    files = store.files()
    out = set()
    for dirpath, _dirs, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            rec = files.get(file_id(p))
            if rec is None or rec.state != "indexed" or rec.content_hash != content_hash(p):
                out.add(p)
    return out


def _run_child(
    data: Path, root: Path, log: Path, kill_after: float | None, *, after_start: bool = True
) -> tuple[bool, list[str]]:
    """Run the child; SIGKILL it ``kill_after`` s after it logs ``start`` (or after spawn).

    Returns (was killed, its log lines).
    """
    log.write_text("")
    proc = subprocess.Popen([sys.executable, str(HELPER), str(data), str(root), str(log)], stdin=subprocess.DEVNULL)
    killed = False
    if kill_after is not None and after_start:
        # Imports take seconds on a busy machine; time the kill from when indexing begins.
        deadline = time.monotonic() + 120
        while "start" not in log.read_text().split() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    try:
        proc.wait(timeout=kill_after if kill_after is not None else 300)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        killed = True
    if not killed:
        assert proc.returncode == 0, f"child failed with {proc.returncode}"
    return killed, log.read_text().splitlines()


def _embedded(lines: list[str]) -> int:
    return sum(int(line.split()[1]) for line in lines if line.startswith("embed "))


@pytest.mark.slow
def test_sigkill_loop_loses_nothing_and_resumes(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    root, data, log = tmp_path / "root", tmp_path / "data", tmp_path / "child.log"
    root.mkdir()
    root = Path(os.path.realpath(root))
    versions = {i: 0 for i in range(FILES)}
    for i in versions:
        _write(root, i)
    kills = runs = 0
    phases: dict[str, int] = {}
    duplicates = 0
    queries = ["alpha5 delta", "charlie130", "file 17 bravo", "delta"]
    while kills < KILLS:
        runs += 1
        assert runs <= 3 * KILLS, "the child kept finishing before the kill; raise the work per run"
        store = _open_store(data) if (data / "index.lance").exists() else None
        todo = _unfinished(store, root) if store is not None else {str(p) for p in root.rglob("*.txt")}
        if store is not None:
            store.close()
        # One kill in five lands during start-up (imports, store check, open); the rest mid-run.
        during_boot = rng.random() < 0.2
        delay = rng.uniform(0.2, 3.0) if during_boot else rng.uniform(0.0, 2.0)
        killed, lines = _run_child(data, root, log, kill_after=delay, after_start=not during_boot)
        kills += killed
        last = lines[-1].split()[0] if lines else "boot"
        phases[last] = phases.get(last, 0) + 1
        # A kill never damages the store: it opens as-is and every table reads fully.
        assert all_tables_readable(data / "index.lance")
        for line in lines:
            if line.startswith("health "):
                report = json.loads(line[len("health "):])
                assert report is None or report["ok"], f"a previous kill left damage: {report}"
        store = _open_store(data)
        try:
            # The disk may be newer (edited since); the store must show a version that existed.
            stats = committed_intact(store, check_disk=False)
            duplicates += stats["duplicates"]
            for rec in store.files().values():
                assert rec.state != "indexed" or rec.content_hash in HASHES[rec.path], rec.path
            searcher = Searcher(store, HashTextEmbedder(), None)
            for q in queries:
                results_whole(store, searcher.search(q, limit=20).results)
        finally:
            store.close()
        # Finished files are never embedded again: a run embeds at most what was unfinished.
        assert _embedded(lines) <= len(todo), (_embedded(lines), len(todo))
        # Keep work coming so later kills land mid-indexing too: new files and edits.
        for i in range(len(versions), len(versions) + 200):
            versions[i] = 0
            _write(root, i)
        for i in rng.sample(sorted(versions), 100):
            versions[i] += 1
            _write(root, i, versions[i])

    store = _open_store(data)
    todo = _unfinished(store, root)
    store.close()
    killed, lines = _run_child(data, root, log, kill_after=None)
    assert not killed and lines[-1].startswith("done ")
    store = _open_store(data)
    try:
        assert not _unfinished(store, root), "the final run left files unindexed"
        committed_intact(store)
        files = store.files()
        assert all(r.n_chunks == 1 for r in files.values())
        # Exactly the files that were not finished were embedded (one chunk each), nothing else.
        assert _embedded(lines) == len(todo), (_embedded(lines), len(todo))
        assert len(files) == len(versions)
    finally:
        store.close()
    print(f"\ncrash loop: {kills} kills in {runs} runs; last log line per run: {phases}; "
          f"files with duplicate rows seen: {duplicates}; final run embedded {len(todo)} of {len(versions)}")
