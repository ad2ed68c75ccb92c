"""End to end: the real window on a real Runtime (real text model, tiny CLIP, LanceDB, watcher)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtGui import QColor, QImage

pytestmark = pytest.mark.gui


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "files"
    root.mkdir()
    (root / "sourdough.md").write_text(
        "# Sourdough\n\nFeed the starter with flour and water, let the dough rise overnight, "
        "then bake the bread in a hot oven.\n")
    (root / "taxes.txt").write_text(
        "Income tax return: deductions, refunds and the deadline for filing with the revenue office.\n")
    (root / "hiking.txt").write_text(
        "Trail notes: we climbed the mountain pass, camped by the lake and hiked down at dawn.\n")
    img = QImage(64, 64, QImage.Format.Format_RGB32)
    img.fill(QColor("red"))
    img.save(str(root / "red.png"), "PNG")
    return root


def test_type_query_on_real_index(qtbot: Any, make_runtime: Any, corpus: Path, opened: list) -> None:
    from desktop.app import build_window
    from indexer.library.session import LibrarySession

    rt = make_runtime([str(corpus)])
    parts = build_window(LibrarySession(rt), open_url=lambda url: opened.append(("open", url.toLocalFile())) or True,
                         run=lambda argv: opened.append(("run", argv[-1])), platform="linux")
    win = parts.window
    qtbot.addWidget(win)
    win.show()
    try:
        qtbot.waitUntil(lambda: parts.controller.has_searcher(), timeout=60_000)
        qtbot.waitUntil(lambda: parts.backend.watch is not None, timeout=60_000)
        # The watcher's first reconcile indexes the folder in the background.
        qtbot.waitUntil(lambda: parts.backend.last_progress is not None
                        and parts.backend.last_progress.phase == "idle", timeout=120_000)
        qtbot.keyClicks(win.search_bar.field, "baking bread")
        qtbot.waitUntil(lambda: win.model.rowCount() > 0, timeout=30_000)
        top = win.model.result(0)
        assert top is not None and os.path.basename(top.path) == "sourdough.md"
        assert top.passage
        qtbot.waitUntil(lambda: win.preview.current() is not None, timeout=5000)
        win.open_path(top.path)
        assert opened == [("open", os.path.realpath(top.path))]
        # Drop the red image: similar images come back from tiny CLIP.
        with qtbot.waitSignal(parts.controller.responseReady, timeout=30_000) as blocker:
            parts.controller.set_image_path(str(corpus / "red.png"))
        resp = blocker.args[0]
        assert any(r.kind == "image" for r in resp.results), resp.message
    finally:
        parts.shutdown()
    assert parts.backend.watch is None and parts.backend.lock is None
