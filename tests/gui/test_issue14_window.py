"""Issue 14, items 6-13: the window says the real state once, refreshes after commits,
groups problems, floors and shows what a query is (chip), and keeps its size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from indexer.types import Progress, SearchResponse


def _parts(window: Any) -> Any:
    from desktop.app import Parts

    return Parts(window, window.controller, window.backend, window.thumbnails, window.opener)


# -- 6: the image model's state, once, from one source -------------------------------
def test_image_state_is_shown_once_in_the_status_bar_never_per_query(qtbot: Any, window: Any,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from desktop.backend import clip_state_from
    from indexer.library.runtime import ImageModelState

    rt = window.backend.runtime
    rt.image_state = ImageModelState(False, "No internet connection: huggingface.co cannot be reached",
                                     "connect to the internet and press Download again", download_allowed=True,
                                     download_failed=True, offline=True)
    window.backend._on_clip(clip_state_from(rt, False, "x"))
    assert "no internet" in window.status.models_label.text()
    assert "No internet connection" in window.status.models_label.toolTip()
    shown: list[str] = []
    monkeypatch.setattr(window.statusBar(), "showMessage", lambda m, *a: shown.append(m))
    note = "Images were not searched: the image model is not downloaded yet"
    window.show_response(SearchResponse(results=list(window.controller._searcher.docs[:1]), note=note))
    window.show_response(SearchResponse(message="No good match.", note=note))
    assert shown == []  # nothing per query
    assert window.results.empty.title.text() == "No good match"
    assert "image" not in window.results.empty.text.text().lower()  # the image state is not the reason


# -- 7: download in the background, with a clear outcome -----------------------------
def test_download_failure_is_announced_and_offers_no_restart(qtbot: Any, window: Any,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtWidgets import QMessageBox

    from indexer.library.runtime import ImageModelState

    rt = window.backend.runtime

    def offline(load: bool = True, *, download: bool = False, retry: bool = False) -> tuple[bool, str]:
        rt.ready_calls.append((load, download, retry))
        emb = rt.image_embedder
        if getattr(emb, "on_download_progress", None):
            emb.on_download_progress(0, 100)
        rt.image_state = ImageModelState(False, "No internet connection: huggingface.co cannot be reached",
                                         "connect and press Download again", download_allowed=True,
                                         download_failed=True, offline=True)
        return False, "offline"

    monkeypatch.setattr(rt, "image_ready", offline)
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.No)
    window.status.clipDownloadRequested.emit()
    assert window.backend.clip.state == "downloading"  # said at once, before any result
    qtbot.waitUntil(lambda: window.backend.clip.state == "missing", timeout=3000)
    assert rt.ready_calls[-1] == (True, True, True)  # a real attempt, not the remembered failure
    assert asked == []  # no restart after a failure
    assert "no internet" in window.status.models_label.text()
    notices = getattr(window, "notices", None)
    if notices is not None:
        assert any("No internet connection" in line for line in notices.lines)


def test_download_success_offers_to_use_the_model(qtbot: Any, window: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    rt = window.backend.runtime
    monkeypatch.setattr(rt, "image_ready", lambda load=True, **k: (True, ""))
    window.backend.clip.state = "missing"
    reloads: list[int] = []
    monkeypatch.setattr(window.backend, "load_clip", lambda: reloads.append(1))
    window.status.clipDownloadRequested.emit()
    qtbot.waitUntil(lambda: reloads == [1], timeout=3000)  # the fake runtime reloads in place


# -- 8: results follow the index; plurals ----------------------------------------------
def test_a_commit_reruns_the_query_and_keeps_the_selection(qtbot: Any, window: Any) -> None:
    searcher = window.controller._searcher
    window.search_bar.field.setText("tax bread hiking")
    qtbot.waitUntil(lambda: window.results.showing_results(), timeout=3000)
    view = window.results.current_view()
    view.setCurrentIndex(view.model().index(1, 0))
    kept = window.results.current_result().path
    searcher.docs = [d for d in searcher.docs if not d.name.startswith("tax")]  # deleted on disk
    calls = len(searcher.calls)
    window.backend._bridge(Progress("idle", message="0 new", index_changed=True))
    qtbot.waitUntil(lambda: len(searcher.calls) > calls and window.model.rowCount() == 2, timeout=3000)
    assert all(not r.name.startswith("tax") for r in window.model.results())
    assert window.results.current_result().path == kept


def test_counts_are_plural_correct() -> None:
    from desktop.status_panel import describe

    assert describe(Progress("embedding", done=1, total=1, failed=1)) == "Indexing · 1/1 file · 1 file failed"
    assert "1 files" not in describe(Progress("writing", done=1))


# -- 9: problems: one count, grouped reasons, Close -------------------------------------
def test_problems_group_identical_reasons_with_one_count(qtbot: Any, window: Any, docs_dir: Path) -> None:
    from desktop.app import show_problems
    from tests.support.gui_fakes import FakeRecord

    reason = "image model failed: " + "a very long reason that goes on " * 10
    rows = [FakeRecord(str(docs_dir / f"p{i}.jpg"), "pending", reason) for i in range(21)]
    rows.append(FakeRecord(str(docs_dir / "x.pdf"), "failed", "PDF is damaged"))
    window.backend.runtime.store.problem_rows = rows
    window.backend._bridge(Progress("idle", index_changed=True))
    qtbot.waitUntil(lambda: window.status.problems_button.text() == "Problems (22)", timeout=3000)
    parts = _parts(window)
    show_problems(parts)
    dlg = parts.dialogs["problems"]
    qtbot.addWidget(dlg)
    qtbot.waitUntil(lambda: dlg.tree.topLevelItemCount() == 2, timeout=3000)
    top = dlg.tree.topLevelItem(0)
    assert top.childCount() == 21 and "(21 files)" in top.text(0)
    assert " ".join(top.text(0).split()) == f"Waiting: {' '.join(reason.split())} (21 files)"  # whole, not cut
    width = dlg.tree.fontMetrics().horizontalAdvance
    assert all(width(line) < dlg.width() for line in top.text(0).splitlines())  # wrapped to fit
    assert "22 files need attention" == dlg.summary.text()
    from PySide6.QtWidgets import QDialogButtonBox

    close = dlg.buttons.button(QDialogButtonBox.StandardButton.Close)
    assert close is not None
    close.click()
    assert not dlg.isVisible()


# -- 11: a listing shows no relevance ------------------------------------------------------
def test_a_listing_by_filter_shows_no_scores(qtbot: Any, window: Any) -> None:
    from desktop.results_model import ShowScoreRole

    docs = window.controller._searcher.docs
    window.show_response(SearchResponse(results=[d for d in docs if d.kind == "image"], ranked=False))
    assert window.model.index(0, 0).data(ShowScoreRole) is False
    window.results.select_tab("images")
    window.preview.show_result(window.model.result(0))
    assert window.preview.score_label.text() == "—"


# -- 12: the chip says what a query is; drops; the window keeps its size ------------------------
def test_find_similar_shows_a_chip_and_clears_the_text(qtbot: Any, window: Any) -> None:
    docs = window.controller._searcher.docs
    window.search_bar.field.setText("tax")
    window.find_similar(docs[1].path)
    assert window.search_bar.text() == ""
    assert window.search_bar.chip.isVisible()
    assert "holiday-notes.md" in window.search_bar.chip.label.text()
    window.search_bar.chip.close_button.click()
    assert not window.search_bar.chip.isVisible()
    assert window.controller.state.similar_to == ""


def test_paste_clears_the_old_words(qtbot: Any, window: Any, docs_dir: Path) -> None:
    window.search_bar.field.setText("tax")
    window.controller.set_image_data(b"\x89PNG fake", "Pasted image")
    assert window.search_bar.text() == "" and window.controller.state.text == ""
    assert window.search_bar.chip.isVisible()


def test_drag_highlight_on_and_off(qtbot: Any, window: Any, docs_dir: Path) -> None:
    from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDragLeaveEvent

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(docs_dir / "sunset.jpg"))])
    ev = QDragEnterEvent(QPoint(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                         Qt.KeyboardModifier.NoModifier)
    window.dragEnterEvent(ev)
    assert window.drop_highlighted()
    window.dragLeaveEvent(QDragLeaveEvent())
    assert not window.drop_highlighted()


def test_a_long_message_never_widens_the_window(qtbot: Any, window: Any) -> None:
    long = "Image search unavailable: " + "the image model download failed for a long reason " * 20
    before = window.width()
    window.results.show_empty(long, long)
    window.status.set_models_text(long)
    qtbot.wait(50)
    assert window.minimumSizeHint().width() < 900
    assert window.width() == before


def test_restored_geometry_is_clamped_to_the_screen(qtbot: Any, window: Any) -> None:
    from desktop.app import clamp_to_screen

    avail = window.screen().availableGeometry()
    window.resize(avail.width() + 900, avail.height() + 400)
    window.move(avail.right() + 50, avail.top())
    clamp_to_screen(window)
    assert window.width() <= avail.width() and window.height() <= avail.height()
    assert avail.contains(window.frameGeometry().topLeft()) or avail.contains(window.geometry().topLeft())


# -- 13: typed filters, reflow, Ctrl+, -----------------------------------------------------------
def test_typed_filters_show_in_the_dropdowns(qtbot: Any, window: Any) -> None:
    window.search_bar.field.setText("notes type:txt")
    assert window.filter_bar.type_combo.currentText() == "Text & Markdown"
    window.search_bar.field.setText("notes type:xyz")
    assert window.filter_bar.type_combo.currentText() == "Type: .xyz"
    window.search_bar.field.setText("notes")
    assert window.filter_bar.type_combo.currentText() == "Any type"


def test_preview_reflows_hard_wrapped_prose_but_keeps_structure() -> None:
    from desktop.preview import reflow

    text = "A paragraph that was\nwrapped by hand.\n\n    code stays\n    as is\n- one\n- two"
    out = reflow(text)
    assert len(out) == len(text)  # highlight offsets stay valid
    assert out.startswith("A paragraph that was wrapped by hand.\n\n    code stays\n    as is\n- one\n- two")


def test_settings_shortcut_includes_ctrl_comma(window: Any) -> None:
    from PySide6.QtGui import QKeySequence

    assert QKeySequence("Ctrl+,") in window.settings_action.shortcuts()


def test_a_problems_reload_keeps_the_selection(qtbot: Any, window: Any, docs_dir: Path) -> None:
    from desktop.app import show_problems
    from tests.support.gui_fakes import FakeRecord

    window.backend.runtime.store.problem_rows = [FakeRecord(str(docs_dir / "a.pdf"), "failed", "damaged"),
                                                 FakeRecord(str(docs_dir / "b.pdf"), "failed", "damaged")]
    parts = _parts(window)
    show_problems(parts)
    dlg = parts.dialogs["problems"]
    qtbot.addWidget(dlg)
    qtbot.waitUntil(lambda: dlg.tree.topLevelItemCount() == 1, timeout=3000)
    dlg.tree.topLevelItem(0).child(1).setSelected(True)
    dlg.show_problems(list(dlg.problems))  # what Retry's reload does
    assert dlg.selected_paths() == [str(docs_dir / "b.pdf")]


def test_a_failed_automatic_download_is_said_where_it_was_announced(qtbot: Any, window: Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer's start tries the download; its failure must not leave "Downloading…" as the last word."""
    from indexer.library.runtime import ImageModelState

    rt = window.backend.runtime
    told: list[str] = []
    window.backend.downloadOutcome.connect(told.append)
    window.backend.clip.state = "missing"

    def failed(load: bool = True, **_k: Any) -> tuple[bool, str]:
        rt.image_state = ImageModelState(False, "No internet connection: huggingface.co cannot be reached",
                                         "connect and try again", download_allowed=True, download_failed=True,
                                         offline=True)
        return False, "offline"

    monkeypatch.setattr(rt, "image_ready", failed)
    window.backend.refresh_clip_state()
    qtbot.waitUntil(lambda: bool(told), timeout=3000)
    assert told == ["No internet connection: huggingface.co cannot be reached. Connect and try again."]
    assert window.notices.lines[-1] == told[0]
    window.backend.refresh_clip_state()  # the same state again: said once
    qtbot.wait(200)
    assert len(told) == 1


@pytest.mark.parametrize("platform", ["linux", "darwin"])
def test_add_folder_opens_in_the_home_folder(qtbot: Any, window: Any, monkeypatch: pytest.MonkeyPatch,
                                             platform: str) -> None:
    """Every "Add folder" starts at home; on Linux in Qt's own dialog (a native one may open at /)."""
    from PySide6.QtCore import QDir
    from PySide6.QtWidgets import QFileDialog

    import desktop.folder_dialog as fd

    asked: list[tuple[str, Any]] = []
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        lambda _parent, _caption, start, options: asked.append((start, options)) or "")
    monkeypatch.setattr(fd.sys, "platform", platform)
    monkeypatch.setattr(fd.choose_folder, "__kwdefaults__", {"platform": platform})
    window.add_folder()
    start, options = asked[-1]
    assert start == QDir.homePath()
    native_off = bool(options & QFileDialog.Option.DontUseNativeDialog)
    assert native_off == (platform == "linux")
