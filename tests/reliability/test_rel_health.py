"""Promise 2: a damaged index is detected at start, rolled back or rebuilt, and said so."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from indexer.store.health import DAMAGED_PREFIX, check_and_heal, probe_table
from tests.support.rel_checks import committed_intact
from tests.support.rel_stack import Stack, make_stack


def _fill(s: Stack, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        (s.root / f"note{i}.txt").write_text(f"note {i} about topic{i} and things", encoding="utf-8")
    s.service.index_roots([str(s.root)])


def _latest_manifest(table_dir: Path) -> Path:
    # V2 names are u64::MAX - version: the newest version has the smallest name.
    return Path(sorted(glob.glob(str(table_dir / "_versions" / "*.manifest")))[0])


def _reopen(s: Stack) -> Stack:
    s.store.close()
    return make_stack(s.root.parent, data_dir=s.paths.data_dir)


def test_healthy_store_is_left_alone(stack: Stack) -> None:
    _fill(stack, 5)
    before = sorted(os.listdir(stack.paths.store))
    report = check_and_heal(stack.paths)
    assert report.ok and not report.message and not report.actions
    assert sorted(os.listdir(stack.paths.store)) == before
    assert not list(stack.paths.data_dir.glob(DAMAGED_PREFIX + "*"))


def test_truncated_latest_manifest_rolls_back_to_previous_version(stack: Stack) -> None:
    _fill(stack, 5)
    _fill(stack, 3, start=5)  # a second commit: the one the damage will take away
    files_dir = stack.paths.store / "files.lance"
    manifest = _latest_manifest(files_dir)
    manifest.write_bytes(b"")  # power loss after create, before the data reached the disk
    assert probe_table(files_dir) is not None
    stack.store.close()

    report = check_and_heal(stack.paths)
    assert not report.ok and report.repaired and not report.rebuilt
    assert "rolled back" in report.message
    assert probe_table(files_dir) is None
    s = make_stack(stack.root.parent, data_dir=stack.paths.data_dir)
    committed_intact(s.store)  # what the older version says indexed is whole
    assert len(s.store.files()) >= 5
    # The next reconcile brings the rolled-back files back, without touching the rest.
    summary = s.service.index_roots([str(s.root)])
    assert summary.unchanged >= 5
    assert {os.path.basename(r.path) for r in s.store.files().values() if r.state == "indexed"} == {f"note{i}.txt" for i in range(8)}
    committed_intact(s.store)
    assert check_and_heal(s.paths).ok  # and it stays healthy


def test_deleted_data_file_is_detected_and_store_recovered(stack: Stack) -> None:
    _fill(stack, 6)
    chunks_dir = stack.paths.store / stack.store.chunks_table_name()
    chunks_dir = chunks_dir.with_name(chunks_dir.name + ".lance")
    data_files = sorted(glob.glob(str(chunks_dir / "data" / "*.lance")))
    assert data_files
    os.unlink(data_files[-1])
    stack.store.close()
    # A count alone would not notice: it comes from the manifest.
    assert probe_table(chunks_dir) is not None

    report = check_and_heal(stack.paths)
    assert not report.ok and (report.repaired or report.rebuilt), report
    assert report.message
    s = make_stack(stack.root.parent, data_dir=stack.paths.data_dir)
    committed_intact(s.store)  # nothing claims to be indexed without its rows
    s.service.index_roots([str(s.root)])
    committed_intact(s.store)
    assert sum(r.state == "indexed" for r in s.store.files().values()) == 6
    assert s.searcher().search("topic3").results[0].path.endswith("note3.txt")


@pytest.mark.parametrize("where", ["all-manifests", "data-files", "junk-table"])
def test_random_garbage_is_recovered(stack: Stack, where: str) -> None:
    _fill(stack, 4)
    stack.store.close()
    rng = __import__("random").Random(7)
    store = stack.paths.store
    if where == "all-manifests":
        for p in glob.glob(str(store / "*.lance" / "_versions" / "*")):
            Path(p).write_bytes(rng.randbytes(rng.randint(0, 300)))
    elif where == "data-files":
        for p in glob.glob(str(store / "*.lance" / "data" / "*.lance")):
            Path(p).write_bytes(rng.randbytes(200))
    else:
        junk = store / "junk.lance"
        (junk / "_versions").mkdir(parents=True)
        (junk / "_versions" / "1.manifest").write_bytes(rng.randbytes(64))
        (store / "stray.bin").write_bytes(rng.randbytes(64))

    report = check_and_heal(stack.paths)
    assert not report.ok and report.message
    if where == "all-manifests":  # no version readable: moved aside and rebuilt
        assert report.rebuilt and Path(report.damaged_copy).is_dir()
        assert "rebuilt" in report.message
    elif where == "data-files":  # every data file bad: back to the (empty) first version, or rebuilt
        assert report.repaired or report.rebuilt
    s = make_stack(stack.root.parent, data_dir=stack.paths.data_dir)
    s.service.index_roots([str(s.root)])
    assert sum(r.state == "indexed" for r in s.store.files().values()) == 4
    committed_intact(s.store)
    assert check_and_heal(s.paths).ok


def test_only_one_damaged_copy_is_kept(stack: Stack) -> None:
    _fill(stack, 2)
    stack.store.close()
    for _ in range(3):
        for p in glob.glob(str(stack.paths.store / "files.lance" / "_versions" / "*.manifest")):
            Path(p).write_bytes(b"garbage")
        assert check_and_heal(stack.paths).rebuilt
        s = make_stack(stack.root.parent, data_dir=stack.paths.data_dir)
        s.service.index_roots([str(s.root)])
        s.store.close()
    assert len(list(stack.paths.data_dir.glob(DAMAGED_PREFIX + "*"))) == 1


def test_reader_process_does_not_repair_under_a_writer(stack: Stack) -> None:
    from indexer.library.writer_lock import WriterLock

    _fill(stack, 2)
    stack.store.close()
    manifest = _latest_manifest(stack.paths.store / "files.lance")
    manifest.write_bytes(b"")
    # Another process is the writer: we only report (it repairs at its next start).
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys,time,fcntl,os; fd=os.open(sys.argv[1], os.O_RDWR|os.O_CREAT); "
         "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, b'{\"pid\": 1}'); print('locked', flush=True); time.sleep(60)",
         str(stack.paths.writer_lock)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        report = check_and_heal(stack.paths)
        assert report.repair_deferred and not report.repaired and not report.rebuilt
        assert manifest.exists() and manifest.stat().st_size == 0
    finally:
        holder.kill()
        holder.wait()
    # The writer we are now (we hold the lock ourselves) repairs.
    lock = WriterLock(stack.paths)
    lock.acquire()
    try:
        assert check_and_heal(stack.paths).repaired
    finally:
        lock.release()


def test_runtime_heals_on_open_and_status_says_so(stack: Stack, capsys: Any) -> None:
    from indexer.cli import status
    from indexer.library.runtime import Runtime
    from tests.support.fakes import HashImageEmbedder, HashTextEmbedder

    _fill(stack, 3)
    stack.store.close()
    for p in glob.glob(str(stack.paths.store / "files.lance" / "_versions" / "*.manifest")):
        Path(p).write_bytes(b"\0" * 10)
    rt = Runtime(stack.paths, stack.settings)
    rt._text, rt._image = HashTextEmbedder(), HashImageEmbedder()
    try:
        rt.store.counts()  # opens without raising: the hook healed it first
        assert rt.health is not None and rt.health.rebuilt
        data = status.collect(rt)
        assert "rebuilt" in data["index_health"]
    finally:
        rt.close()
    # A later process (e.g. `lodestar status` after the watcher repaired) still says so.
    rt2 = Runtime(stack.paths, stack.settings)
    rt2._text, rt2._image = HashTextEmbedder(), HashImageEmbedder()
    try:
        rt2.store.counts()
        assert rt2.health.ok
        assert "rebuilt" in status._health(rt2)
    finally:
        rt2.close()


def test_lost_image_rows_are_reindexed_after_rollback(stack: Stack) -> None:
    from tests.support import nasty

    s = stack
    (s.root / "first.txt").write_text("keeps the table history longer", encoding="utf-8")
    s.service.index_roots([str(s.root)])
    (s.root / "photo.jpg").write_bytes(nasty.rotated_photo())
    s.service.index_roots([str(s.root)])
    images_dir = s.paths.store / f"{s.store.images_table_name()}.lance"
    data_files = sorted(glob.glob(str(images_dir / "data" / "*.lance")))
    assert len(data_files) == 1
    os.unlink(data_files[0])
    s.store.close()

    report = check_and_heal(s.paths)
    assert report.repaired and report.reindex == 1, report  # images table rolled back; the text stays
    assert "1 file will be re-indexed" in report.message
    s2 = make_stack(s.root.parent, data_dir=s.paths.data_dir)
    assert s2.store.get_file(str(s.root / "first.txt")).state == "indexed"  # type: ignore[union-attr]
    rec = s2.store.get_file(str(s.root / "photo.jpg"))
    # Its vector is gone, so it must not claim to be indexed: it is queued again...
    assert rec is None or rec.state == "pending", rec
    s2.service.index_roots([str(s2.root)])
    rec = s2.store.get_file(str(s.root / "photo.jpg"))
    # ...and the next reconcile indexes it again, with its vector.
    assert rec is not None and rec.state == "indexed"
    assert s2.store.image_row(rec.fid, rec.content_hash) is not None
    s2.store.close()
