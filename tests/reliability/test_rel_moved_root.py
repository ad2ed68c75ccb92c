"""A watched folder renamed or moved as a whole while Lodestar was closed is followed
(issue 13.1's acceptance): the index takes its records to the new place with no reading
and no model call, the settings name the new folder, and the person is told. A folder
that turns up nowhere stays an unplugged drive; one that turns up twice is not guessed.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from indexer.ingest.pipeline import followed_line
from indexer.ingest.relocated import find_new_home
from indexer.library.settings import load_settings
from indexer.store.tables import FileRecord, file_id
from tests.support.gui_fakes import FakeLock, FakeWatch
from tests.support.rel_checks import committed_intact
from tests.support.rel_stack import Stack, make_stack

WORDS = ("harbour", "ledger", "quartz", "meadow", "falcon", "cinder", "orchid", "tundra", "violet", "walnut")


def _notes(folder: Path, n: int) -> None:
    for i in range(n):
        sub = folder / f"part{i % 3}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"note{i:04d}.txt").write_text(f"note {i}: the {WORDS[i % 10]} of {WORDS[(i // 10) % 10]}", encoding="utf-8")


def _records(root: Path) -> list[FileRecord]:
    """What the index would know of ``root``'s files: path, size and mtime."""
    out = []
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            p = os.path.join(dirpath, name)
            st = os.stat(p)
            out.append(FileRecord(fid=file_id(p), path=p, root=str(root), kind="text", size=st.st_size,
                                  mtime_ns=st.st_mtime_ns, state="indexed"))
    return out


# ------------------------------------------------------------------ where did it go
def test_a_renamed_folder_is_found_beside_the_old_name(tmp_path: Path) -> None:
    old = tmp_path / "Photos"
    _notes(old, 40)
    known = _records(old)
    (tmp_path / "Unrelated").mkdir()
    _notes(tmp_path / "Other notes", 40)  # same names, other bytes: never taken
    assert find_new_home(str(old), known) is None  # still there: nothing to follow
    os.rename(old, tmp_path / "Photos 2019")
    assert find_new_home(str(old), known) == str(tmp_path / "Photos 2019")


def test_a_folder_moved_into_a_sibling_or_under_a_renamed_parent_is_found(tmp_path: Path) -> None:
    old = tmp_path / "home" / "Docs"
    _notes(old, 30)
    known = _records(old)
    (tmp_path / "home" / "Archive").mkdir()
    os.rename(old, tmp_path / "home" / "Archive" / "Docs")  # one level deeper
    assert find_new_home(str(old), known) == str(tmp_path / "home" / "Archive" / "Docs")

    inner = tmp_path / "home" / "Archive" / "Docs"
    known = _records(inner)
    os.rename(tmp_path / "home" / "Archive", tmp_path / "home" / "Old stuff")  # its parent renamed
    assert find_new_home(str(inner), known) == str(tmp_path / "home" / "Old stuff" / "Docs")


def test_a_folder_moved_into_another_branch_is_found(tmp_path: Path) -> None:
    """~/Documents/Work moved to ~/Archive/2024/Work: found from one level above its parent."""
    home = tmp_path / "home"
    old = home / "Documents" / "Work"
    _notes(old, 25)
    known = _records(old)
    (home / "Archive" / "2024").mkdir(parents=True)
    (home / "Music" / "albums").mkdir(parents=True)
    os.rename(old, home / "Archive" / "2024" / "Work")
    assert find_new_home(str(old), known) == str(home / "Archive" / "2024" / "Work")


def test_an_unplugged_drive_a_changed_folder_and_two_copies_are_not_followed(tmp_path: Path) -> None:
    old = tmp_path / "media" / "usb" / "Pictures"
    _notes(old, 30)
    known = _records(old)
    shutil.rmtree(tmp_path / "media" / "usb")  # unmounted: its mount point is gone too
    assert find_new_home(str(old), known) is None

    old = tmp_path / "Notes"
    _notes(old, 30)
    known = _records(old)
    os.rename(old, tmp_path / "Notes edited")
    later = time.time_ns() + 10**9
    for path in sorted((tmp_path / "Notes edited").rglob("*.txt"))[:10]:  # a third edited since
        os.utime(path, ns=(later, later))
    assert find_new_home(str(old), known) is None

    old = tmp_path / "Work"
    _notes(old, 30)
    known = _records(old)
    shutil.copytree(old, tmp_path / "Work copy")  # copy2 keeps the mtimes
    os.rename(old, tmp_path / "Work renamed")
    assert find_new_home(str(old), known) is None  # which one was meant is the person's to say


def test_another_watched_folder_is_never_taken(tmp_path: Path) -> None:
    old = tmp_path / "Docs"
    _notes(old, 20)
    known = _records(old)
    os.rename(old, tmp_path / "Watched")
    assert find_new_home(str(old), known, avoid=[str(tmp_path / "Watched")]) is None
    assert find_new_home(str(old), known) == str(tmp_path / "Watched")


def test_another_drive_is_never_listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rename never leaves its file system: folders on another device (a mounted drive,
    a network share that may be slow to list) are not looked into."""
    from indexer.ingest import relocated

    old = tmp_path / "Docs"
    _notes(old, 20)
    known = _records(old)
    os.rename(old, tmp_path / "Mounted drive")
    real_scandir = os.scandir

    class OtherDevice:
        def __init__(self, entry: Any) -> None:
            self._entry = entry
            self.path, self.name = entry.path, entry.name

        def is_dir(self, follow_symlinks: bool = True) -> bool:
            return bool(self._entry.is_dir(follow_symlinks=follow_symlinks))

        def stat(self, follow_symlinks: bool = True) -> Any:
            st = self._entry.stat(follow_symlinks=follow_symlinks)
            return SimpleNamespace(st_dev=st.st_dev + 1) if self.name == "Mounted drive" else st

    class Listing:
        def __init__(self, path: Any) -> None:
            self._it = real_scandir(path)

        def __enter__(self) -> Any:
            return (OtherDevice(e) for e in self._it)

        def __exit__(self, *exc: Any) -> None:
            self._it.close()

    assert find_new_home(str(old), known) == str(tmp_path / "Mounted drive")
    monkeypatch.setattr(relocated.os, "scandir", Listing)
    assert find_new_home(str(old), known) is None


# ------------------------------------------------------------------ the index follows
def _whole_and_single(s: Stack) -> None:
    """Every indexed file has its rows once, in every table; no row is left without a file."""
    assert committed_intact(s.store)["duplicates"] == 0
    files = s.store.files()
    table = s.store.images_table()
    images = [] if table is None else table.search().select(["fid"]).limit(None).to_arrow().column("fid").to_pylist()
    assert sorted(images) == sorted(f for f, r in files.items() if r.kind == "image")
    assert s.store.remove_orphans() == 0


def _renamed_stack(tmp_path: Path, n: int) -> tuple[Stack, Path, Path]:
    from PIL import Image

    s = make_stack(tmp_path)
    _notes(s.root / "notes", n)
    (s.root / "camera").mkdir()
    for i in range(6):
        Image.new("RGB", (40, 30), (i * 40, 255 - i * 40, 90)).save(s.root / "camera" / f"img{i}.png")
    first = s.service.index_roots([str(s.root)])
    assert first.new == n + 6 and first.failed == 0
    old = s.root
    new = s.root.parent / "root renamed"
    os.rename(old, new)  # the window is closed: no watcher sees it
    return s, old, new


def test_the_index_follows_a_renamed_watched_folder_with_no_model_call(tmp_path: Path) -> None:
    n = 600
    s, old, new = _renamed_stack(tmp_path, n)
    before = {r.path: r.content_hash for r in s.store.files().values()}
    texts, images = s.text.texts_embedded, s.image.calls

    started = time.monotonic()
    followed = s.service.follow_moved_roots()
    took = time.monotonic() - started
    print(f"\nfollowed {n + 6} files in {took:.2f}s")
    assert followed == [(str(old), str(new))]
    assert s.settings.folders == [str(new)]
    after = {r.path: r.content_hash for r in s.store.files().values()}
    assert after == {str(new) + p[len(str(old)):]: h for p, h in before.items()}
    assert all(r.root == str(new) and r.available for r in s.store.files().values())
    assert not s.store.removed()

    summary = s.service.index_roots([str(new)])  # what the watcher's first check does next
    assert summary.unchanged == n + 6 and summary.new == summary.moved == summary.removed == 0
    assert (s.text.texts_embedded, s.image.calls) == (texts, images), "something was embedded again"
    hits = [r.path for r in s.searcher().search("quartz of falcon", limit=3).results]
    assert hits and hits[0].startswith(str(new) + os.sep)
    for rec in s.store.files().values():
        if rec.kind == "image":
            row = s.store.image_row(rec.fid, rec.content_hash)
            assert row is not None and (s.paths.thumbnails / row.thumb).is_file()
    _whole_and_single(s)
    assert s.service.follow_moved_roots() == []  # nothing missing any more
    s.store.close()


def test_followed_files_keep_their_rows_and_later_changes_land_on_the_same_record(tmp_path: Path) -> None:
    """Followed records keep their ids, so no row is rewritten (no LanceDB index upkeep); an
    edit at the new path updates that record, and a new file where a followed one used to
    be is a file of its own."""
    s, old, new = _renamed_stack(tmp_path, 30)
    rows_before = s.store.chunks_table().count_rows()
    version = s.store.chunks_table().version
    fids = set(s.store.files())
    assert s.service.follow_moved_roots() == [(str(old), str(new))]
    assert set(s.store.files()) == fids, "the records changed ids"
    assert s.store.chunks_table().version == version, "passage rows were rewritten"
    assert s.store.get_file(str(new / "notes" / "part0" / "note0000.txt")) is not None
    assert s.store.get_file(str(old / "notes" / "part0" / "note0000.txt")) is None

    edited = new / "notes" / "part0" / "note0000.txt"
    edited.write_text("note 0: a brand new tale of the walnut orchard", encoding="utf-8")
    s.service.sync_paths([str(edited)])
    rec = s.store.get_file(str(edited))
    assert rec is not None and rec.fid in fids and len(s.store.files()) == 36
    hits = [r.path for r in s.searcher().search("walnut orchard tale", limit=3).results]
    assert hits[0] == str(edited)

    # The old name is a watched folder again, holding a file at a followed file's old path.
    s.settings.folders.append(str(old))
    (old / "notes" / "part0").mkdir(parents=True)
    (old / "notes" / "part0" / "note0000.txt").write_text("a lighthouse keeper's log", encoding="utf-8")
    s.service.index_roots([str(old)])
    fresh = s.store.get_file(str(old / "notes" / "part0" / "note0000.txt"))
    assert fresh is not None and fresh.fid not in fids and len(s.store.files()) == 37
    assert s.store.get_file(str(edited)).fid == rec.fid  # type: ignore[union-attr]
    assert s.store.chunks_table().count_rows() == rows_before + 1
    hits = [r.path for r in s.searcher().search("lighthouse keeper", limit=3).results]
    assert hits[0] == str(old / "notes" / "part0" / "note0000.txt")
    _whole_and_single(s)
    s.store.close()


def test_a_follow_cut_short_before_the_settings_were_saved_is_finished_next_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The records moved, then the process died before the settings named the new place:
    the note left in the data folder makes the next start finish it (the settings would
    otherwise keep naming a folder with no records, and the new place none)."""
    from indexer.ingest import pipeline

    s, old, new = _renamed_stack(tmp_path, 20)

    def power_cut(*_a: Any) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(pipeline, "save_settings", power_cut)
    with pytest.raises(OSError, match="power cut"):
        s.service.follow_moved_roots()
    assert {r.root for r in s.store.files().values()} == {str(new)}  # the records had moved
    assert load_settings(s.paths).folders == [str(old)]  # the saved settings had not
    assert (s.paths.data_dir / pipeline.FOLLOWING_FILE).is_file()
    monkeypatch.undo()

    s.settings.folders[:] = load_settings(s.paths).folders  # the next start reads them again
    s.service.follow_moved_roots()
    assert load_settings(s.paths).folders == [str(new)] and s.settings.folders == [str(new)]
    assert not (s.paths.data_dir / pipeline.FOLLOWING_FILE).exists()
    summary = s.service.index_roots([str(new)])
    assert summary.unchanged == 26 and summary.new == 0
    s.store.close()


def test_the_session_follows_before_watching_saves_the_settings_and_says_so(tmp_path: Path) -> None:
    from indexer.library.session import LibrarySession

    s, old, new = _renamed_stack(tmp_path, 30)
    notices: list[str] = []
    runtime: Any = SimpleNamespace(
        paths=s.paths, settings=s.settings, notice=notices.append,
        service=lambda progress=None, wait_when_disk_full=False: s.service,
    )
    s.service.after_follow = lambda old, new: notices.append(followed_line([(old, new)]))  # as Runtime does
    session = LibrarySession(runtime, lock_factory=lambda paths: FakeLock(), watch_factory=FakeWatch)
    assert session.become_writer() == ""
    assert load_settings(s.paths).folders == [str(new)]
    assert session.watch.roots == [str(new)]  # the watcher starts on the new place
    assert notices == [f"{old} was moved to {new}: its index followed, nothing was read again"]
    assert {r.root for r in s.store.files().values()} == {str(new)}
    s.store.close()


def test_a_watched_folder_renamed_while_watching_is_followed_and_watched_there(tmp_path: Path) -> None:
    from indexer.watch.watcher import WatchService
    from tests.unit.test_watch import wait_until

    s = make_stack(tmp_path)
    _notes(s.root / "notes", 60)
    ws = WatchService(s.service, s.settings, s.paths, debounce_s=0.05, max_delay_s=0.5, supervise_interval_s=0.2)
    ws.start()
    try:
        assert ws.wait_idle(30) and len(s.store.files()) == 60
        texts = s.text.texts_embedded
        old, new = s.root, s.root.parent / "root moved"
        os.rename(old, new)
        assert wait_until(lambda: [f.path for f in ws.folder_status()] == [str(new)], 30)
        assert ws.wait_idle(30)
        assert load_settings(s.paths).folders == [str(new)]
        assert {r.root for r in s.store.files().values()} == {str(new)} and len(s.store.files()) == 60
        assert s.text.texts_embedded == texts, "the moved folder was embedded again"
        (new / "later.txt").write_text("a lighthouse keeper's log", encoding="utf-8")  # watched in its new place
        assert wait_until(lambda: s.store.get_file(str(new / "later.txt")) is not None, 30)
    finally:
        assert ws.stop(timeout=30)
    _whole_and_single(s)
    s.store.close()


def test_the_kept_map_and_the_preferred_folders_follow_too(tmp_path: Path) -> None:
    """The map keeps every point's place (records keep their ids: nothing is laid out
    again), duplicates keep their preferred folders."""
    import numpy as np

    from indexer.duplicates.actions import follow_folder, load_decisions, set_preferred
    from indexer.map import keep

    s = make_stack(tmp_path)
    s.service.after_follow = lambda old, new: follow_folder(s.paths.data_dir, old, new)  # as Runtime._after_follow
    _notes(s.root / "notes", 12)
    s.service.index_roots([str(s.root)])
    fids = sorted(s.store.files())
    xy = np.arange(2 * len(fids), dtype=np.float32).reshape(-1, 2)
    keep.save(s.paths.data_dir, keep.KeptMap(
        layer="documents", model="m", method="umap", fids=fids, hashes=["h"] * len(fids), xy=xy,
        regions=np.zeros(len(fids), np.int32), clusters=[], built_at=1.0, laid_out_at=1.0,
        laid_out_n=len(fids), changed_since=0, origin=(0.0, 0.0), span=1.0, vectors=np.ones((len(fids), 4), np.float16)))
    set_preferred(s.paths.data_dir, [str(s.root / "notes"), str(tmp_path / "elsewhere")])
    old, new = s.root, s.root.parent / "root renamed"
    paths_before = {fid: s.store.files()[fid].path for fid in fids}
    os.rename(old, new)

    assert s.service.follow_moved_roots() == [(str(old), str(new))]
    kept = keep.load(s.paths.data_dir, "documents")
    assert kept is not None and kept.fids == fids and np.array_equal(kept.xy, xy)
    now = s.store.files()
    assert [now[f].path for f in kept.fids] == [str(new) + paths_before[f][len(str(old)):] for f in fids]
    assert load_decisions(s.paths.data_dir).preferred == [str(new / "notes"), str(tmp_path / "elsewhere")]
    s.store.close()
