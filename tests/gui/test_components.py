"""Components in isolation: the results model, the controller, workers, thumbnails, opener."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QThreadPool
from PySide6.QtGui import QColor, QImage, QImageReader

from desktop.opener import Opener, OpenRefused, is_inside
from desktop.results_delegate import trim_passage
from desktop.results_model import ResultsModel, ResultsProxy
from desktop.search_controller import SearchController
from desktop.thumbnails import ThumbnailCache, read_thumbnail
from desktop.workers import ProgressBridge, Worker, WorkerPool
from indexer.types import Progress, SearchResult

pytestmark = pytest.mark.gui


def test_results_model_passes_modeltester(qtmodeltester: Any, fake_searcher: Any) -> None:
    model = ResultsModel()
    model.set_results(fake_searcher.docs)
    qtmodeltester.check(model)
    for tab in ("all", "documents", "images"):
        proxy = ResultsProxy(tab)
        proxy.setSourceModel(model)
        qtmodeltester.check(proxy)
    assert ResultsProxy("images", None).tab == "images"


def test_model_text_is_plain(fake_searcher: Any) -> None:
    evil = SearchResult(path="/x/<img src=file:///etc/passwd>.txt", kind="text", score=0.5,
                        name="<img src=file:///etc/passwd>.txt")
    model = ResultsModel()
    model.set_results([evil])
    assert model.index(0, 0).data() == "<img src=file:///etc/passwd>.txt"


def test_preview_renders_metadata_literally(qtbot: Any) -> None:
    from PySide6.QtCore import Qt

    from desktop.preview import PreviewPane

    pane = PreviewPane(None)
    qtbot.addWidget(pane)
    r = SearchResult(path="/x/<b>bold</b>.md", kind="text", score=0.5, name="<b>bold</b>.md",
                     passage="see <img src=x> here", highlights=[(4, 14)])
    pane.show_result(r)
    assert pane.title.textFormat() == Qt.TextFormat.PlainText
    assert pane.title.text() == "<b>bold</b>.md"
    assert pane.passage.toPlainText() == "see <img src=x> here"


def test_trim_passage_keeps_first_highlight_visible() -> None:
    text = "word " * 100 + "needle and more"
    start = text.index("needle")
    out, spans = trim_passage(text, [(start, start + 6)])
    assert out.startswith("…") and len(out) < len(text)
    s, e = spans[0]
    assert out[s:e] == "needle"


def test_controller_debounces_and_ignores_empty(qtbot: Any, fake_searcher: Any) -> None:
    c = SearchController(fake_searcher, debounce_ms=50)
    try:
        for prefix in ("t", "ta", "tax"):
            c.set_text(prefix)
        with qtbot.waitSignal(c.responseReady, timeout=2000) as blocker:
            pass
        assert blocker.args[0].query == "tax"
        assert [call for call in fake_searcher.calls if call[0] == "search"] == [("search", ("tax", None))]
        with qtbot.waitSignal(c.cleared, timeout=2000):
            c.set_text("   ")
    finally:
        c.close()


def test_controller_replays_query_typed_before_models_loaded(qtbot: Any, fake_searcher: Any) -> None:
    c = SearchController(None, debounce_ms=10)
    try:
        c.set_text("bread")
        c.run_now()
        assert fake_searcher.calls == []
        with qtbot.waitSignal(c.responseReady, timeout=2000) as blocker:
            c.set_searcher(fake_searcher)
        assert blocker.args[0].results[0].name == "recipe.txt"
    finally:
        c.close()


def test_controller_image_plus_text(qtbot: Any, fake_searcher: Any) -> None:
    c = SearchController(fake_searcher)
    try:
        with qtbot.waitSignal(c.responseReady, timeout=2000):
            c.set_image_path("/pics/a.jpg")  # the chip replaces old words (issue 14.12) ...
        with qtbot.waitSignal(c.responseReady, timeout=2000):
            c.set_text("beach")  # ... and words typed now steer the image
        assert ("similar_image", ("/pics/a.jpg", "beach")) in fake_searcher.calls
    finally:
        c.close()


def test_worker_signals_and_cancel(qtbot: Any) -> None:
    pool = WorkerPool(max_threads=1)
    gate = threading.Event()

    def job(cancel: threading.Event, progress: Any) -> int:
        progress(1)
        gate.wait(5)
        return 0 if cancel.is_set() else 42

    w = Worker(job, pass_cancel=True, pass_progress=True)
    got: list[Any] = []
    w.signals.progress.connect(got.append)
    w.signals.result.connect(got.append)
    with qtbot.waitSignal(w.signals.finished, timeout=3000):
        pool.start(w)
        gate.set()
    assert got == [1, 42]

    def boom() -> None:
        raise KeyError("bug")

    w2 = Worker(boom)
    with qtbot.waitSignal(w2.signals.error, timeout=3000) as blocker:
        pool.start(w2)
    assert isinstance(blocker.args[0], KeyError)

    gate.clear()
    w3 = pool.start(Worker(job, pass_cancel=True, pass_progress=True))
    results: list[Any] = []
    w3.signals.result.connect(results.append)
    qtbot.waitUntil(lambda: pool.active() == 1, timeout=2000)
    w3.cancel()
    gate.set()
    assert pool.wait(3000)
    assert results == []  # a cancelled job's result is not delivered
    assert pool.active() == 0


def test_progress_bridge_from_another_thread(qtbot: Any) -> None:
    bridge = ProgressBridge()
    with qtbot.waitSignal(bridge.progress, timeout=2000) as blocker:
        t = threading.Thread(target=bridge, args=(Progress("embedding", done=1, total=3),))
        t.start()
        t.join()
    assert blocker.args[0].done == 1


def test_thumbnails_only_from_thumbnail_dir(qtbot: Any, tmp_path: Path) -> None:
    thumbs = tmp_path / "thumbnails"
    thumbs.mkdir()
    img = QImage(10, 10, QImage.Format.Format_RGB32)
    img.fill(QColor("red"))
    ok = thumbs / "a.png"
    img.save(str(ok), "PNG")
    user = tmp_path / "user.png"
    img.save(str(user), "PNG")
    assert not read_thumbnail(str(ok), str(thumbs)).isNull()
    assert read_thumbnail(str(user), str(thumbs)).isNull()  # a user file is never decoded
    assert read_thumbnail(str(thumbs / ".." / "user.png"), str(thumbs)).isNull()
    # A JPEG wearing a .png thumbnail name is not sniffed into the JPEG plugin.
    fake = thumbs / "b.png"
    img.save(str(fake), "JPG")
    assert read_thumbnail(str(fake), str(thumbs)).isNull()
    assert QImageReader.allocationLimit() > 0
    cache = ThumbnailCache(str(thumbs))
    try:
        assert cache.pixmap(str(ok)) is None
        qtbot.waitUntil(lambda: cache.pixmap(str(ok)) is not None, timeout=2000)
    finally:
        cache.close()


def test_thumbnail_bomb_rejected(tmp_path: Path) -> None:
    thumbs = tmp_path / "thumbnails"
    thumbs.mkdir()
    big = QImage(20000, 20000, QImage.Format.Format_Mono)  # tiny file, ~1.6 GB as RGB32
    big.fill(0)
    path = thumbs / "bomb.png"
    assert big.save(str(path), "PNG")
    assert read_thumbnail(str(path), str(thumbs)).isNull()


def test_opener_containment(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    inside = root / "a.txt"
    inside.write_text("x")
    assert is_inside(str(inside), [str(root)])
    assert not is_inside(str(tmp_path / "rootish"), [str(root)])  # prefix is not containment
    calls: list[Any] = []
    op = Opener(lambda: [str(root)], open_url=lambda u: calls.append(u.toLocalFile()) or True,
                run=lambda argv: calls.append(argv), platform="darwin")
    op.reveal(str(inside))
    assert calls == [["open", "-R", str(inside)]]
    win = Opener(lambda: [str(root)], open_url=lambda u: True, run=lambda argv: calls.append(argv), platform="win32")
    win.reveal(str(inside))
    assert calls[-1] == ["explorer", f"/select,{inside}"]
    with pytest.raises(OpenRefused):
        op.open(str(root / "missing.txt"))
    with pytest.raises(OpenRefused):
        Opener(lambda: []).open(str(inside))  # no roots: fail closed


def test_no_global_pool_threads_left(window: Any) -> None:
    # The window fixture's teardown checks our pools; the global pool is never used.
    assert QThreadPool.globalInstance().activeThreadCount() == 0


def test_models_load_off_the_gui_thread(qtbot: Any, fake_runtime: Any, no_leaks: None) -> None:
    from desktop.app import build_window
    from indexer.library.session import LibrarySession
    from tests.support.gui_fakes import FakeLock, FakeWatch

    threads: list[str] = []
    fake_runtime.text_embedder.load = lambda: threads.append(threading.current_thread().name)
    orig = fake_runtime.image_ready
    fake_runtime.image_ready = lambda load=True: (threads.append(threading.current_thread().name), orig(load))[1]
    parts = build_window(LibrarySession(fake_runtime, lock_factory=lambda p: FakeLock(), watch_factory=FakeWatch))
    qtbot.addWidget(parts.window)
    try:
        assert threads == []  # nothing loaded while building the window
        qtbot.waitUntil(lambda: parts.controller.has_searcher(), timeout=3000)
        assert len(threads) == 2 and threading.main_thread().name not in threads
    finally:
        parts.shutdown()


def test_excepthooks_surface_thread_bugs(qtbot: Any) -> None:
    import sys

    from desktop.app import _BugReporter, install_excepthooks

    saved = (sys.excepthook, threading.excepthook)
    reporter = _BugReporter()
    reporter.bug.disconnect()  # no modal dialog in tests; we only check it is reported
    try:
        install_excepthooks(reporter)
        with qtbot.waitSignal(reporter.bug, timeout=2000) as blocker:
            t = threading.Thread(target=lambda: 1 / 0)
            t.start()
            t.join()
        assert "ZeroDivisionError" in blocker.args[0]
    finally:
        sys.excepthook, threading.excepthook = saved
