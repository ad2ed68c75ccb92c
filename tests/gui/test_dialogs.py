"""Folders & settings, problems, first-run welcome, and the empty states that offer fixes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QFileDialog, QMessageBox

from desktop.app import show_problems, show_settings

pytestmark = pytest.mark.gui


def _parts(window: Any) -> Any:
    # build_window's Parts are reachable through the signal closures; rebuild the tuple we need.
    from desktop.app import Parts

    return Parts(window, window.controller, window.backend, window.thumbnails, window.opener)


def test_folders_dialog_adds_and_removes(qtbot: Any, window: Any, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    parts = _parts(window)
    show_settings(parts)
    dlg = parts.dialogs["settings"]
    qtbot.addWidget(dlg)
    assert dlg.table.rowCount() == 1
    qtbot.waitUntil(lambda: dlg.table.item(0, 1) is not None and dlg.table.item(0, 1).text() == "Live",
                    timeout=2000)
    new = tmp_path / "Pictures"
    new.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(new))
    dlg.add_button.click()
    assert dlg.table.rowCount() == 2
    assert str(new) in window.backend.folders()
    saved = json.loads(window.backend.runtime.paths.settings.read_text())
    assert str(new) in saved["folders"]
    assert window.backend.watch.roots == window.backend.folders()  # the watcher follows
    assert window.filter_bar.folder_combo.findData(str(new)) >= 0
    dlg.table.selectRow(1)
    dlg.remove_button.click()
    assert dlg.table.rowCount() == 1
    assert str(new) not in json.loads(window.backend.runtime.paths.settings.read_text())["folders"]


def test_folders_dialog_refuses_data_dir(qtbot: Any, window: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    parts = _parts(window)
    show_settings(parts)
    dlg = parts.dialogs["settings"]
    qtbot.addWidget(dlg)
    warned: list[str] = []
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: window.backend.data_dir())
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: warned.append(a[2]))
    dlg.add_button.click()
    assert warned and dlg.table.rowCount() == 1


def test_settings_saved(qtbot: Any, window: Any) -> None:
    parts = _parts(window)
    show_settings(parts)
    dlg = parts.dialogs["settings"]
    qtbot.addWidget(dlg)
    dlg.excludes.setPlainText("*.log\n\nArchive\n")
    dlg.keep_in_tray.setChecked(False)
    dlg.save()
    saved = json.loads(window.backend.runtime.paths.settings.read_text())
    assert saved["excludes"] == ["*.log", "Archive"]
    assert saved["keep_running_in_tray"] is False


def test_clear_index_asks_first(qtbot: Any, window: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    parts = _parts(window)
    show_settings(parts)
    dlg = parts.dialogs["settings"]
    qtbot.addWidget(dlg)
    store = window.backend.runtime.store
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.No)
    dlg.clear_button.click()
    assert store.cleared == 0
    old_watch = window.backend.watch
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    dlg.clear_button.click()
    qtbot.waitUntil(lambda: store.cleared == 1, timeout=2000)
    assert old_watch.stopped  # nothing was writing while the store was cleared
    qtbot.waitUntil(lambda: window.backend.watch is not None and window.backend.watch.started, timeout=2000)


def test_problems_lists_corrupt_file_and_retries(qtbot: Any, window: Any, docs_dir: Path,
                                                 opened: list) -> None:
    corrupt = docs_dir / "broken.pdf"
    corrupt.write_bytes(b"%PDF-1.4 garbage")
    from tests.support.gui_fakes import FakeRecord

    window.backend.runtime.store.problem_rows = [
        FakeRecord(str(corrupt), "failed", "PDF is damaged: no trailer <b>found</b>")]
    parts = _parts(window)
    show_problems(parts)
    dlg = parts.dialogs["problems"]
    qtbot.addWidget(dlg)
    qtbot.waitUntil(lambda: dlg.tree.topLevelItemCount() == 1, timeout=2000)
    group = dlg.tree.topLevelItem(0)
    # literal, not markup; grouped by reason with its files beneath
    assert group.text(0) == "Failed: PDF is damaged: no trailer <b>found</b> (1 file)"
    assert group.child(0).text(0) == str(corrupt)
    group.child(0).setSelected(True)
    service = window.backend.service
    dlg.retry_button.click()
    qtbot.waitUntil(lambda: service.synced == [[str(corrupt)]], timeout=2000)
    dlg.open_button.click()
    assert opened == [("open", str(corrupt))]


def test_welcome_suggests_existing_folders(qtbot: Any, tmp_path: Path) -> None:
    from desktop.welcome_dialog import WelcomeDialog

    (tmp_path / "Documents").mkdir()
    dlg = WelcomeDialog("/data/dir", home=str(tmp_path))
    qtbot.addWidget(dlg)
    assert dlg.chosen_folders() == [str(tmp_path / "Documents")]  # no ~/Pictures here
    from PySide6.QtWidgets import QLabel

    texts = " ".join(lbl.text() for lbl in dlg.findChildren(QLabel))
    assert "/data/dir" in texts and "Nothing leaves this computer" in texts


def test_welcome_lists_the_folders_already_watched_ticked_and_fixed(qtbot: Any, tmp_path: Path) -> None:
    """A library set up with `lodestar index` before the window was first opened: the
    welcome shows its folders (not an empty list), and unticking cannot drop one."""
    from PySide6.QtCore import Qt

    from desktop.welcome_dialog import WelcomeDialog

    (tmp_path / "Documents" / "notes").mkdir(parents=True)
    (tmp_path / "Pictures").mkdir()
    watched = [str(tmp_path / "Documents")]
    dlg = WelcomeDialog("/data/dir", home=str(tmp_path), watched=watched)
    qtbot.addWidget(dlg)
    assert [dlg.folders.item(i).text() for i in range(dlg.folders.count())] == [
        str(tmp_path / "Documents"), str(tmp_path / "Pictures")]  # ~/Documents not suggested twice
    first = dlg.folders.item(0)
    assert not first.flags() & Qt.ItemFlag.ItemIsUserCheckable and first.checkState() == Qt.CheckState.Checked
    dlg.folders.item(1).setCheckState(Qt.CheckState.Unchecked)
    assert dlg.chosen_folders() == watched


def test_clip_missing_empty_state_offers_fix(qtbot: Any, window: Any, docs_dir: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from desktop.backend import ClipState
    from indexer.types import SearchResponse

    window.backend._on_clip(ClipState("missing", "Image search unavailable: CLIP weights missing", "Download"))
    window.controller.set_image_path(str(docs_dir / "sunset.jpg"))
    window.show_response(SearchResponse(message="Image search is unavailable: no weights"))
    assert window.results.empty.title.text() == "Image search unavailable"
    assert "CLIP weights missing" in window.results.empty.text.text()
    assert window.results.empty.button_labels() == ["Download", "Choose file…"]
    reloads: list[int] = []
    monkeypatch.setattr(window.backend, "load_clip", lambda: reloads.append(1))
    window.results.empty.click("Download")  # downloads in the background; success offers the model
    qtbot.waitUntil(lambda: reloads == [1], timeout=3000)
    assert window.backend.settings.allow_download is True
    assert "image search ready" in window.status.models_label.text()


def test_reader_mode_when_another_process_writes(qtbot: Any, fake_runtime: Any, no_leaks: None) -> None:
    from desktop.app import build_window
    from indexer.errors import WriterBusy
    from indexer.library.session import LibrarySession

    def busy(paths: Any) -> Any:
        exc = WriterBusy("lodestar watch (pid 4242, since today) is already indexing")
        exc.holder = {"pid": 4242}  # type: ignore[attr-defined]
        raise exc

    parts = build_window(LibrarySession(fake_runtime, lock_factory=busy))
    qtbot.addWidget(parts.window)
    try:
        qtbot.waitUntil(lambda: "pid 4242" in parts.window.status.progress_label.text(), timeout=3000)
        assert parts.window.status.progress_label.text() == \
            "Indexing is done by another Lodestar process (pid 4242)"
        assert parts.backend.service is None and parts.controller.has_searcher()
    finally:
        parts.shutdown()


def test_clip_fix_in_status_bar_asks_restart_without_reload(qtbot: Any, window: Any,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from desktop.backend import ClipState

    window.backend._on_clip(ClipState("missing", "Image search unavailable: CLIP weights missing"))
    assert window.status.clip_button.isVisibleTo(window)
    monkeypatch.setattr(window.backend, "can_reload_clip", lambda: False)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(window.restartRequested, timeout=2000):
        window.status.clip_button.menu().actions()[0].trigger()  # Download
    assert window.backend.settings.allow_download is True
    window.backend._on_clip(ClipState("ready", "Image search ready"))
    assert not window.status.clip_button.isVisibleTo(window)


def test_start_at_login_uses_autostart(qtbot: Any, window: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from indexer.library import autostart

    calls: list[Any] = []
    monkeypatch.setattr(autostart, "enable", lambda cmd=None, **k: calls.append(("enable", cmd)))
    monkeypatch.setattr(autostart, "disable", lambda **k: calls.append(("disable",)))
    parts = _parts(window)
    show_settings(parts)
    dlg = parts.dialogs["settings"]
    qtbot.addWidget(dlg)
    dlg.start_at_login.setChecked(True)
    dlg.save()
    assert calls[0][0] == "enable" and window.backend.data_dir() in calls[0][1]
    assert json.loads(window.backend.runtime.paths.settings.read_text())["start_at_login"] is True
    dlg.refresh()
    dlg.start_at_login.setChecked(False)
    dlg.save()
    assert calls[-1] == ("disable",)
