"""User flows through the real MainWindow on a fake runtime."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QColor, QDropEvent, QGuiApplication, QImage
from PySide6.QtWidgets import QApplication

from desktop.results_model import PathRole

pytestmark = pytest.mark.gui


def _search(qtbot: Any, window: Any, text: str) -> None:
    qtbot.keyClicks(window.search_bar.field, text)
    qtbot.waitUntil(lambda: window.results.showing_results() and window.model.rowCount() > 0, timeout=3000)


def test_field_focused_and_shortcuts(qtbot: Any, window: Any) -> None:
    qtbot.waitUntil(lambda: window.search_bar.field.hasFocus() or not window.isActiveWindow(), timeout=2000)
    window.results.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.search_bar.field, timeout=2000)
    window.search_bar.field.setText("bread")
    qtbot.keyClick(window.search_bar.field, Qt.Key.Key_Escape)
    assert window.search_bar.text() == ""


def test_type_query_shows_results(qtbot: Any, window: Any, fake_searcher: Any) -> None:
    _search(qtbot, window, "tax")
    assert window.model.rowCount() == 1
    assert window.model.index(0, 0).data() == "tax-return-2023.pdf"
    assert window.results.tabs.tabText(0) == "All (1)"
    # Debounced: one search for the whole burst of keystrokes.
    assert [c for c in fake_searcher.calls if c[0] == "search"] == [("search", ("tax", None))]
    # The preview follows the current result and shows the passage as plain text.
    qtbot.waitUntil(lambda: window.preview.current() is not None, timeout=2000)
    assert "income tax" in window.preview.passage.toPlainText()


def test_no_match_shows_message(qtbot: Any, window: Any) -> None:
    qtbot.keyClicks(window.search_bar.field, "zzzz")
    qtbot.waitUntil(lambda: window.results.empty.title.text() == "No good match", timeout=3000)
    assert window.results.empty.text.text() == "Try other words, or check the filters."  # not the title again


def test_stale_responses_are_dropped(qtbot: Any, window: Any, fake_searcher: Any) -> None:
    gate = threading.Event()
    fake_searcher.gates["tax"] = gate  # the first query hangs until we release it
    c = window.controller
    c.set_text("tax")
    c.run_now()
    qtbot.waitUntil(lambda: ("search", ("tax", None)) in fake_searcher.calls, timeout=2000)
    with qtbot.waitSignal(c.responseReady, timeout=3000) as blocker:
        c.set_text("bread")
        c.run_now()
    assert blocker.args[0].query == "bread"
    seen: list[str] = []
    c.responseReady.connect(lambda r: seen.append(r.query))
    gate.set()
    qtbot.waitUntil(lambda: not c.is_busy(), timeout=3000)
    assert seen == []  # the late "tax" answer never reached the window
    assert window.model.index(0, 0).data() == "recipe.txt"


def test_enter_opens_and_ctrl_enter_reveals(qtbot: Any, window: Any, opened: list, docs_dir: Path) -> None:
    _search(qtbot, window, "bread")
    qtbot.keyClick(window.search_bar.field, Qt.Key.Key_Return)
    assert opened == [("open", str(docs_dir / "recipe.txt"))]
    qtbot.keyClick(window.search_bar.field, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert opened[-1] == ("run", str(docs_dir))  # xdg-open of the parent folder
    view = window.results.current_view()
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Return)
    assert opened[-1] == ("open", str(docs_dir / "recipe.txt"))


def test_open_refuses_path_outside_roots(qtbot: Any, window: Any, opened: list, tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("x")
    window.open_path(str(outside))
    assert opened == []
    assert "outside your watched folders" in window.statusBar().currentMessage()
    # A symlink inside a root that points outside is refused too (realpath check).
    link = Path(window.backend.folders()[0]) / "leak.txt"
    link.symlink_to(outside)
    window.reveal_path(str(link))
    assert opened == []


def test_drop_image_file_searches_similar(qtbot: Any, window: Any, fake_searcher: Any,
                                          docs_dir: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(docs_dir / "sunset.jpg"))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.controller.responseReady, timeout=3000):
        window.dropEvent(event)
    assert ("similar_image", (str(docs_dir / "sunset.jpg"), None)) in fake_searcher.calls
    assert window.search_bar.chip.isVisible()
    assert window.results.current_tab() == "images"
    assert window.results.current_view().model().rowCount() == 1
    # × removes the image query.
    window.search_bar.chip.close_button.click()
    assert not window.search_bar.chip.isVisible()


def test_paste_image_data(qtbot: Any, window: Any, fake_searcher: Any) -> None:
    img = QImage(8, 8, QImage.Format.Format_RGB32)
    img.fill(QColor("blue"))
    QGuiApplication.clipboard().setImage(img)
    window.search_bar.field.setFocus()
    with qtbot.waitSignal(window.controller.responseReady, timeout=3000):
        qtbot.keyClick(window.search_bar.field, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    kinds = [c for c in fake_searcher.calls if c[0] == "similar_image"]
    assert kinds and isinstance(kinds[0][1][0], bytes) and kinds[0][1][0].startswith(b"\x89PNG")
    assert window.search_bar.text() == ""  # the image was not pasted as text


def test_image_thumbnail_loaded_in_grid(qtbot: Any, window: Any) -> None:
    window.controller.set_text("sunset")
    qtbot.waitUntil(lambda: window.model.rowCount() == 1, timeout=3000)
    idx = window.model.index(0, 0)
    idx.data(Qt.ItemDataRole.DecorationRole)  # triggers the background load
    qtbot.waitUntil(lambda: window.thumbnails.pixmap(idx.data(PathRole) and window.model.result(0).thumbnail)
                    is not None, timeout=3000)
    window.results.select_tab("images")
    assert window.results.current_view().model().rowCount() == 1


def test_context_menu_actions(qtbot: Any, window: Any, fake_searcher: Any, docs_dir: Path) -> None:
    _search(qtbot, window, "hiking")
    path = str(docs_dir / "holiday-notes.md")
    actions = {a.text(): a for a in window.results.context_actions(path)}
    assert list(actions) == ["Open", "Reveal in folder", "Copy path", "Find similar"]
    actions["Copy path"].trigger()
    assert QGuiApplication.clipboard().text() == path
    with qtbot.waitSignal(window.controller.responseReady, timeout=3000):
        actions["Find similar"].trigger()
    assert ("similar_to", path) in fake_searcher.calls


def test_filters_passed_to_searcher(qtbot: Any, window: Any, fake_searcher: Any) -> None:
    window.search_bar.field.setText("tax")
    qtbot.waitUntil(lambda: window.model.rowCount() == 1, timeout=3000)
    fb = window.filter_bar
    with qtbot.waitSignal(window.controller.responseReady, timeout=3000):
        fb.type_combo.setCurrentIndex(fb.type_combo.findText("PDF"))
    last = [c for c in fake_searcher.calls if c[0] == "search"][-1]
    assert last[1][1] == {"ext": [".pdf"]}
    with qtbot.waitSignal(window.controller.responseReady, timeout=3000):
        fb.date_combo.setCurrentIndex(fb.date_combo.findText("Past year"))
    last = [c for c in fake_searcher.calls if c[0] == "search"][-1]
    assert set(last[1][1]) == {"ext", "after"}


def test_sort_by_date(qtbot: Any, window: Any) -> None:
    window.controller.set_text("tax hiking sunset")
    qtbot.waitUntil(lambda: window.model.rowCount() == 3, timeout=3000)
    window.filter_bar.sort_combo.setCurrentIndex(1)
    proxy = window.results.proxies["all"]
    names = [proxy.index(i, 0).data() for i in range(proxy.rowCount())]
    assert names[-1] == "sunset.jpg"  # oldest last
    window.filter_bar.sort_combo.setCurrentIndex(0)
    names = [proxy.index(i, 0).data() for i in range(proxy.rowCount())]
    assert names == ["tax-return-2023.pdf", "holiday-notes.md", "sunset.jpg"]


def test_empty_state_no_folders(qtbot: Any, window: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    window.backend.remove_folder(window.backend.folders()[0])
    assert window.results.empty.title.text() == "No folders yet"
    new = tmp_path / "more"
    new.mkdir()
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(new))
    window.results.empty.click("Add folder…")
    assert window.backend.folders() == [str(new)]
    assert window.results.empty.title.text() != "No folders yet"


def test_progress_shown_in_status_bar(qtbot: Any, window: Any) -> None:
    from indexer.types import Progress

    window.backend._bridge(Progress("embedding", done=5, total=10, rate=2.5, eta_s=2.0, failed=1))
    qtbot.waitUntil(lambda: "5/10 files" in window.status.progress_label.text(), timeout=2000)
    # The Problems count is the store's (the same list the dialog shows), not the run's.
    assert window.status.problems_button.text() == "Problems"
    assert window.status.pause_button.isVisible()


def test_close_keeps_running_in_tray(qtbot: Any, window: Any) -> None:
    quits: list[int] = []
    window.quitRequested.connect(lambda: quits.append(1))
    window.tray_available = True
    window.backend.settings.keep_running_in_tray = True
    window.close()
    assert not window.isVisible() and quits == []
    assert window.backend.watch is not None and not window.backend.watch.stopped  # still watching
    window.show()
    window.backend.settings.keep_running_in_tray = False
    with qtbot.waitSignal(window.quitRequested, timeout=2000):
        window.close()


def test_pause_and_resume(qtbot: Any, window: Any) -> None:
    watch = window.backend.watch
    window.status.pause_button.show()
    window.status.pause_button.click()
    qtbot.waitUntil(lambda: watch.stopped, timeout=2000)
    assert window.status.pause_button.text() == "Resume"
    window.status.pause_button.click()
    qtbot.waitUntil(lambda: window.backend.watch is not None and window.backend.watch.started, timeout=2000)
    assert window.backend.watch is not watch


RUN_APP_SCRIPT = """
import os, sys, threading, time
sys.path[:0] = [{gui!r}, {root!r}]
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from pathlib import Path
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
import indexer.library.runtime
from tests.support.gui_fakes import FakeRuntime, FakeSearcher, make_docs
from desktop.main_window import MainWindow
docs = Path({tmp!r}) / "docs"
docs.mkdir()
rt = FakeRuntime(Path({tmp!r}) / "data", [str(docs)], FakeSearcher(make_docs(docs)))
indexer.library.runtime.open_runtime = lambda data_dir=None: rt
app = QApplication(sys.argv[:1])
started = time.monotonic()
seen = {{}}
def check():
    wins = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
    if wins and "shown" not in seen:
        seen["shown"] = time.monotonic() - started
    if "shown" in seen and wins[0].controller.has_searcher():
        app.quit()
    else:
        QTimer.singleShot(10, check)
QTimer.singleShot(0, check)
from desktop.app import run_app
code = run_app()
print("SHOWN_AFTER", seen["shown"], "CLOSED", rt.closed, "THREADS", sorted(
    t.name for t in threading.enumerate() if t.name.startswith("lodestar")), flush=True)
sys.exit(code)
"""


def test_run_app_shows_window_fast_and_exits_cleanly(tmp_path: Path) -> None:
    """The real composition root in its own process: window within a second, clean exit."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    script = RUN_APP_SCRIPT.format(gui=str(Path(__file__).parent), root=str(root), tmp=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=root, env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("SHOWN_AFTER"))
    parts = line.split()
    assert float(parts[1]) < 1.0
    assert parts[3] == "True"  # the runtime was closed on the way out
    assert line.endswith("THREADS []")  # the watcher's threads were stopped


def test_reader_mode_with_real_writer_lock(qtbot: Any, fake_runtime: Any, no_leaks: None) -> None:
    import os

    from desktop.app import build_window
    from indexer.library.session import LibrarySession
    from indexer.library.writer_lock import WriterLock
    from tests.support.gui_fakes import FakeWatch

    held = WriterLock(fake_runtime.paths, command="lodestar watch")
    held.acquire()
    parts = build_window(LibrarySession(fake_runtime, watch_factory=FakeWatch))  # the real lock factory
    qtbot.addWidget(parts.window)
    try:
        expected = f"Indexing is done by another Lodestar process (pid {os.getpid()})"
        qtbot.waitUntil(lambda: parts.window.status.progress_label.text() == expected, timeout=5000)

        assert parts.backend.service is None and parts.backend.lock is None
    finally:
        parts.shutdown()
        held.release()
    # Once the other writer is gone, a new window becomes the writer.
    parts = build_window(LibrarySession(fake_runtime, watch_factory=FakeWatch))
    qtbot.addWidget(parts.window)
    try:
        qtbot.waitUntil(lambda: parts.backend.service is not None, timeout=5000)
        assert parts.backend.lock is not None and parts.backend.lock.held
    finally:
        parts.shutdown()
    assert parts.backend.lock is None


def test_results_paint_in_list_and_grid(qtbot: Any, window: Any) -> None:
    """Exercise the delegate and the grid painting (long names, highlights, thumbnails)."""
    window.controller.set_text("tax hiking bread sunset")
    qtbot.waitUntil(lambda: window.model.rowCount() == 4, timeout=3000)
    window.resize(420, 300)  # narrow: everything must elide, not overflow
    for tab in ("all", "documents", "images"):
        window.results.select_tab(tab)
        shot = window.grab()
        assert not shot.isNull() and shot.width() >= 420
    qtbot.waitUntil(lambda: window.thumbnails.pixmap(window.model.result(3).thumbnail) is not None, timeout=3000)


def test_query_notes_beside_results_and_a_too_long_query(qtbot: Any, window: Any, fake_searcher: Any) -> None:
    """Issue 11.3 / 11.9: what a query ignored shows next to its results; a huge query is named."""
    from indexer.search.query import too_long_message
    from indexer.types import SearchResponse

    note = "Ignored: after:2025-13 (not a date; use 2025-01-31, 2025-01 or 2025)"
    window.show_response(SearchResponse(results=fake_searcher.docs[:1], query="tax after:2025-13", message=note))
    assert window.statusBar().currentMessage() == note
    window.show_response(SearchResponse(query="a" * 5000, message=too_long_message("a" * 5000)))
    assert window.results.empty.title.text() == "Query too long"
    assert "5,000 characters" in window.results.empty.text.text()


def test_custom_date_range_at_the_calendar_ends(qtbot: Any) -> None:
    """Issue 11.9: the last date the picker offers (9999-12-31) is a filter, not an OverflowError."""
    import datetime as dt

    from PySide6.QtCore import QDate

    from desktop.filter_bar import FilterBar

    bar = FilterBar()
    qtbot.addWidget(bar)
    bar.date_combo.setCurrentIndex(bar.date_combo.findData(-1))
    bar.after_edit.setDate(bar.after_edit.minimumDate())
    bar.before_edit.setDate(QDate(9999, 12, 31))
    f = bar.filters()
    assert f["before"] == dt.date.max and f["after"] == bar.after_edit.minimumDate().toPython()
