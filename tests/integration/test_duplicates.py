"""Duplicates on a real index of a generated folder (issue 18): tiers kept apart, the CLI,
the move to the trash with the index following, "not duplicates" remembered, and a file
that vanishes between the scan and the action."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from indexer.duplicates.scan import DuplicateScan
from indexer.store.read import StoreReader
from tests.support.duplicate_set import make_duplicate_set, score
from tests.support.fakes import HashImageEmbedder, HashTextEmbedder


def _runtime(data: Path, folder: Path) -> Any:
    from indexer.library.runtime import Runtime
    from indexer.library.settings import Settings, open_paths, save_settings

    paths = open_paths(data)
    settings = Settings(folders=[str(folder)], allow_download=False)
    save_settings(paths, settings)
    rt = Runtime(paths, settings)
    rt._text, rt._image = HashTextEmbedder(), HashImageEmbedder()
    rt.image_ready = lambda *a, **k: (True, "")  # the fake image model is always there
    return rt


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Any:
    base = tmp_path_factory.mktemp("dups")
    truth = make_duplicate_set(base / "files", scenes=2, documents=2)
    rt = _runtime(base / "data", base / "files")
    summary = rt.service().index_roots([str(base / "files")])
    assert summary.failed == 0
    on_disk = [str(p) for p in (base / "files").rglob("*") if p.is_file()]
    assert len(rt.store.files()) == len(on_disk)
    states = {r.path: (r.state, r.reason) for r in rt.store.files().values()}
    assert all(state == "indexed" for state, _ in states.values()), states
    groups = DuplicateScan(rt.store, StoreReader(rt.store), rt.paths.data_dir).run()
    yield rt, truth, groups
    rt.close()


def test_each_tier_finds_its_groups_and_keeps_look_alikes_apart(scanned: Any) -> None:
    _rt, truth, groups = scanned
    figures = score(groups, truth)
    assert figures["identical"]["precision"] == 1.0 and figures["identical"]["recall"] == 1.0
    assert figures["document"]["precision"] == 1.0 and figures["document"]["recall"] == 1.0
    assert figures["resaved"]["recall"] >= 0.5 and figures["resaved"]["precision"] >= 0.8
    assert figures["burst"]["recall"] >= 0.5 and figures["burst"]["precision"] >= 0.8
    assert figures["lookalikes_grouped"]["count"] == 0
    tiers = {g.tier for g in groups}
    assert tiers == {"identical", "resaved", "burst", "document"}
    # Kept apart: a set of identical files shows once, in its own tier.
    for g in groups:
        if g.tier != "identical":
            hashes = [m.content_hash for m in g.members]
            assert len(hashes) == len(set(hashes))
    assert [g.reclaimable for g in groups] == sorted((g.reclaimable for g in groups), reverse=True)


def test_pdf_docx_and_edited_version_show_the_share_of_text(scanned: Any) -> None:
    _rt, _truth, groups = scanned
    docs = [g for g in groups if g.tier == "document"]
    names = {os.path.basename(m.path) for g in docs for m in g.members}
    assert {"doc0.pdf", "doc0.docx", "doc0-edited.txt"} <= names
    edited = next(m for g in docs for m in g.members if m.path.endswith("doc0-edited.txt"))
    assert 0.5 <= edited.similarity < 1.0
    assert all("shared" in g.rule for g in docs)


def test_a_second_scan_reads_the_caches(scanned: Any) -> None:
    rt, _truth, groups = scanned
    cache = Path(rt.paths.data_dir) / "duplicates"
    assert (cache / "pictures.npz").exists()
    again = DuplicateScan(rt.store, StoreReader(rt.store), rt.paths.data_dir).run()
    assert [(g.tier, [m.path for m in g.members]) for g in again] == [(g.tier, [m.path for m in g.members]) for g in groups]


def test_cli_lists_groups_as_json_and_never_deletes(scanned: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from indexer.cli import duplicates as cmd
    from indexer.cli.main import main

    rt, _truth, _groups = scanned
    monkeypatch.setattr(cmd, "runtime_from_args", lambda args, create=True: _runtime(rt.paths.data_dir, Path(rt.settings.folders[0])))
    before = sorted(str(p) for p in Path(rt.settings.folders[0]).rglob("*"))
    assert main(["--data-dir", str(rt.paths.data_dir), "duplicates", "--json", "--tier", "identical"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["groups"] and {g["tier"] for g in out["groups"]} == {"identical"}
    first = out["groups"][0]
    assert first["rule"].startswith("Same bytes") and all(os.path.isabs(f["path"]) for f in first["files"])
    assert main(["--data-dir", str(rt.paths.data_dir), "duplicates"]) == 0
    text = capsys.readouterr().out
    assert "Identical files" in text and "Similar shots" in text and "nothing was moved" in text
    assert sorted(str(p) for p in Path(rt.settings.folders[0]).rglob("*")) == before


# ----------------------------------------------------------------------------- actions
@pytest.fixture
def small_library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A folder with one photo, two byte copies and a re-save, indexed; a private trash."""
    from PIL import Image

    from indexer.library.session import LibrarySession

    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "home" / ".local" / "share"))
    folder = tmp_path / "photos"
    folder.mkdir()
    img = Image.effect_mandelbrot((320, 240), (-2, -1.2, 1, 1.2), 60).convert("RGB")
    img.save(folder / "photo.jpg", quality=90)
    shutil.copy2(folder / "photo.jpg", folder / "photo copy.jpg")
    shutil.copy2(folder / "photo.jpg", folder / "photo copy 2.jpg")
    (folder / "notes.txt").write_text("unrelated notes about the garden")
    rt = _runtime(tmp_path / "data", folder)
    session = LibrarySession(rt, lock_factory=lambda paths: None, watch_factory=lambda *a, **k: _NoWatch())
    assert session.become_writer(lock=_NoLock()) == ""
    summary = rt.service().index_roots([str(folder)])
    assert summary.new == 4 and len(rt.store.files()) == 4
    yield session, folder
    rt.close()


class _NoWatch:
    def __init__(self) -> None:
        self.cancel = threading.Event()

    def start(self) -> None: ...
    def stop(self, timeout: float = 0) -> bool: return True


class _NoLock:
    def release(self) -> None: ...


def _identical(session: Any) -> Any:
    groups = session.find_duplicates(["identical"])
    assert len(groups) == 1
    return groups[0]


def test_trash_moves_only_the_extra_copies_and_the_index_follows(small_library: Any, tmp_path: Path) -> None:
    from indexer.duplicates.actions import trash_plan

    session, folder = small_library
    group = _identical(session)
    keeper = group.members[group.keeper].path
    extra = [m.path for i, m in enumerate(group.members) if i != group.keeper]
    files, size = trash_plan(group, extra)
    assert (files, size) == (2, group.reclaimable)
    outcome = session.trash_duplicates(group, extra)
    assert not outcome.refused and sorted(outcome.moved) == sorted(extra) and outcome.freed == size
    assert os.path.exists(keeper) and all(not os.path.exists(p) for p in extra)
    assert (folder / "notes.txt").exists()
    trashed = sorted(os.listdir(tmp_path / "home" / ".local" / "share" / "Trash" / "files"))
    assert sorted(os.path.basename(p) for p in extra) == trashed  # in the trash, not deleted
    indexed = {r.path for r in session.runtime.store.files().values()}
    assert keeper in indexed and not (set(extra) & indexed)  # the index followed at once
    assert session.find_duplicates(["identical"]) == []


def test_a_file_gone_since_the_scan_moves_nothing(small_library: Any) -> None:
    session, _folder = small_library
    group = _identical(session)
    extra = [m.path for i, m in enumerate(group.members) if i != group.keeper]
    os.unlink(extra[0])
    outcome = session.trash_duplicates(group, extra)
    assert outcome.moved == [] and "no longer there" in outcome.refused and "Nothing was moved" in outcome.refused
    assert os.path.exists(extra[1])


def test_the_whole_group_is_never_trashed(small_library: Any) -> None:
    session, _folder = small_library
    group = _identical(session)
    outcome = session.trash_duplicates(group, [m.path for m in group.members])
    assert outcome.moved == [] and "keep at least one" in outcome.refused
    assert all(os.path.exists(m.path) for m in group.members)


def test_not_duplicates_is_remembered(small_library: Any) -> None:
    session, folder = small_library
    group = _identical(session)
    session.not_duplicates(group)
    assert session.find_duplicates(["identical"]) == []
    # A new copy makes a different group: shown again.
    shutil.copy2(folder / "photo.jpg", folder / "photo copy 3.jpg")
    session.service.sync_paths([str(folder / "photo copy 3.jpg")])
    assert len(session.find_duplicates(["identical"])[0].members) == 4


def test_preferred_folder_chooses_the_keeper(small_library: Any) -> None:
    session, folder = small_library
    keep = folder / "keep"
    keep.mkdir()
    shutil.copy2(folder / "photo.jpg", keep / "zz-photo.jpg")
    session.service.sync_paths([str(keep / "zz-photo.jpg")])
    session.set_preferred_folders([str(keep)])
    group = _identical(session)
    assert group.members[group.keeper].path == str(keep / "zz-photo.jpg")
    assert "preferred" in group.keeper_why


def test_an_edited_version_shows_its_rewritten_sentences(scanned: Any) -> None:
    from indexer.duplicates.scan import differing_passages

    rt, _truth, groups = scanned
    group = next(g for g in groups if g.tier == "document" and any(m.path.endswith("doc0-edited.txt") for m in g.members))
    keeper = rt.store.get_file(group.members[group.keeper].path)
    edited = rt.store.get_file(next(m.path for m in group.members if m.path.endswith("doc0-edited.txt")))
    pdf = rt.store.get_file(next(m.path for m in group.members if m.path.endswith("doc0.pdf")))
    changed = differing_passages(rt.store, keeper, edited)
    assert 1 <= len(changed) <= 4  # one sentence in ten was rewritten
    assert all(s not in Path(keeper.path).read_text() for s in changed)
    assert differing_passages(rt.store, keeper, pdf) == []


def test_copies_of_one_picture_read_side_by_side_are_all_indexed(tmp_path: Path) -> None:
    # Their thumbnails are one file: written under one temporary name, a rename failed and
    # that copy was taken for vanished, left out of the index (2 or 3 runs in 8 did).
    from PIL import Image

    for run in range(4):
        folder = tmp_path / f"run{run}"
        folder.mkdir()
        Image.effect_mandelbrot((320, 240), (-2, -1.2, 1, 1.2), 60).convert("RGB").save(folder / "a.jpg")
        for i in range(5):
            shutil.copy2(folder / "a.jpg", folder / f"a copy {i}.jpg")
        rt = _runtime(tmp_path / f"data{run}", folder)
        try:
            summary = rt.service().index_roots([str(folder)])
            assert summary.new == 6 and len(rt.store.files()) == 6
        finally:
            rt.close()
