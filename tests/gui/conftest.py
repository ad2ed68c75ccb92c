"""GUI test fixtures: offscreen Qt, the window on a fake runtime, leak checks."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


import pytest

from tests.support.gui_fakes import FakeLock, FakeRuntime, FakeSearcher, FakeWatch, make_docs

pytestmark = pytest.mark.gui


@pytest.fixture(autouse=True, scope="session")
def _qt_test_paths(qapp: Any) -> None:
    """QSettings (geometry) go to Qt's test locations, never the real user config."""
    from PySide6.QtCore import QStandardPaths

    from desktop.pyside_none import keep_none_alive

    keep_none_alive()  # every void Qt call of the whole run would otherwise wear None down
    QStandardPaths.setTestModeEnabled(True)
    qapp.setOrganizationName("LodestarTests")
    qapp.setApplicationName("LodestarTests")


@pytest.fixture
def no_leaks() -> Iterator[None]:
    """Fail when a test leaves pool threads running or Python threads behind."""
    from PySide6.QtCore import QThreadPool

    before = {t.ident for t in threading.enumerate()}
    yield
    assert QThreadPool.globalInstance().activeThreadCount() == 0
    leftover = [t for t in threading.enumerate() if t.ident not in before and t.is_alive()
                and not t.name.startswith(("Dummy", "QThread"))]
    assert not leftover, f"threads left running: {leftover}"


@pytest.fixture
def docs_dir(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    d.mkdir()
    return d


@pytest.fixture
def fake_searcher(docs_dir: Path, tmp_path: Path) -> FakeSearcher:
    data = tmp_path / "data"
    return FakeSearcher(make_docs(docs_dir, data / "thumbnails"))


@pytest.fixture
def fake_runtime(tmp_path: Path, docs_dir: Path, fake_searcher: FakeSearcher) -> FakeRuntime:
    return FakeRuntime(tmp_path / "data", [str(docs_dir)], fake_searcher)


@pytest.fixture
def opened() -> list[tuple[str, str]]:
    return []


@pytest.fixture
def window(qtbot: Any, fake_runtime: FakeRuntime, opened: list[tuple[str, str]], no_leaks: None) -> Iterator[Any]:
    """The real MainWindow on a fake runtime; OS open/reveal calls are recorded, never run."""
    from desktop.app import build_window
    from indexer.library.session import LibrarySession

    parts = build_window(
        LibrarySession(fake_runtime, lock_factory=lambda paths: FakeLock(), watch_factory=FakeWatch),
        open_url=lambda url: opened.append(("open", url.toLocalFile())) or True,
        run=lambda argv: opened.append(("run", argv[-1])),
        platform="linux",
    )
    win = parts.window
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: parts.controller.has_searcher(), timeout=5000)
    qtbot.waitUntil(lambda: parts.backend.service is not None, timeout=5000)
    yield win
    parts.shutdown()
    # Every pool awaited, the debounce timer stopped, the watcher stopped, the runtime closed.
    for pool in (parts.controller.pool, parts.backend.pool, parts.thumbnails.pool):
        assert pool.active() == 0
    assert not parts.controller._timer.isActive()
    assert parts.backend.watch is None or parts.backend.watch.stopped
    assert fake_runtime.closed
