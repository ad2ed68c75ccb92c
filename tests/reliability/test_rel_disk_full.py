"""Promise 12 (full disk): indexing pauses with a clear message, the store stays
intact, and indexing resumes once space is freed. The CLI says so in one line.

The data directory lives on a size-limited tmpfs (root only; skipped otherwise).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from indexer.store.tables import Store
from indexer.types import Progress
from tests.support.fakes import HashImageEmbedder, HashTextEmbedder
from tests.support.rel_checks import committed_intact
from tests.support.rel_stack import make_stack

TMPFS_MB = 8
HEADROOM = 256 * 1024  # free bytes left beside the ballast: enough to start, not to finish
FILES = 1500


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_MB}m,mode=0700", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount tmpfs: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)  # a straggler still has a file open


def _ballast(disk: Path, leave: int) -> Path:
    st = os.statvfs(disk)
    free = st.f_bavail * st.f_frsize
    path = disk / "ballast.bin"
    with open(path, "wb") as fh:
        fh.write(b"\0" * max(0, free - leave))
    return path


def _tree(root: Path) -> None:
    for i in range(FILES):
        d = root / f"d{i % 10}"
        d.mkdir(exist_ok=True)
        (d / f"n{i}.txt").write_text(f"note {i} about alpha{i} and bravo{i * 3} " * 4, encoding="utf-8")


def test_full_disk_pauses_keeps_store_intact_and_resumes(tmp_path: Path, small_disk: Path) -> None:
    events: list[Progress] = []
    s = make_stack(tmp_path, data_dir=small_disk / "data", wait_when_disk_full=True, progress=events.append)
    _tree(s.root)
    ballast = _ballast(small_disk, HEADROOM)
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["summary"] = s.service.index_roots([str(s.root)])
        except Exception as exc:
            result["error"] = exc

    worker = threading.Thread(target=run, name="test-indexer", daemon=True)  # never hangs pytest on failure
    worker.start()
    deadline = time.monotonic() + 120
    while not any(e.phase == "paused" for e in events) and worker.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    paused = [e for e in events if e.phase == "paused"]
    assert paused, f"indexing never paused (result: {result})"
    assert "disk" in paused[0].message and "full" in paused[0].message, paused[0].message

    # While paused: a second connection opens the store and finds it consistent.
    reader = Store(s.paths.store, text_model=(s.text.model_id, s.text.dim), image_model=(s.image.model_id, s.image.dim))
    try:
        stats = committed_intact(reader)
        counts = reader.counts()
        assert counts["by_state"].get("indexed", 0) == stats["indexed"] < FILES
        assert counts["chunks"] >= stats["indexed"]
    finally:
        reader.close()
    committed_before = stats["indexed"]

    ballast.unlink()  # the person frees space
    worker.join(timeout=240)
    assert not worker.is_alive(), "indexing did not resume after space was freed"
    assert "error" not in result, result
    states = [r.state for r in s.store.files().values()]
    assert states.count("indexed") == FILES
    committed_intact(s.store)
    assert s.searcher().search("alpha1234 bravo3702").results[0].path.endswith("n1234.txt")
    print(f"\nfull disk: paused after {committed_before} of {FILES} files committed; "
          f"{len(paused)} paused events; resumed and finished")
    s.store.close()


def test_cli_full_disk_is_one_line_and_nonzero(tmp_path: Path, small_disk: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import indexer.cli.main as cli
    from indexer.cli import index as index_cmd
    from indexer.library.runtime import Runtime
    from indexer.library.settings import open_paths

    root = tmp_path / "root"
    root.mkdir()
    _tree(root)
    data = small_disk / "data"

    def fake_runtime(args: Any) -> Runtime:  # the real Runtime, with the hash embedders
        from indexer.library.settings import load_settings

        paths = open_paths(args.data_dir)
        rt = Runtime(paths, load_settings(paths))
        rt._text, rt._image = HashTextEmbedder(), HashImageEmbedder()
        return rt

    monkeypatch.setattr(index_cmd, "runtime_from_args", fake_runtime)
    old_umask = os.umask(0o077)
    try:
        open_paths(data)
        _ballast(small_disk, HEADROOM)
        rc = cli.main(["index", str(root), "--data-dir", str(data), "--json"])
    finally:
        os.umask(old_umask)
    err = capsys.readouterr().err
    assert rc != 0
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("lodestar:")]
    assert len(lines) == 1 and "disk" in lines[0] and "full" in lines[0], err
    assert "run again" in lines[0]  # not "paused": the command has stopped
    print(f"\ncli full disk: rc={rc}: {lines[0]}")
