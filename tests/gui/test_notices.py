"""The window's notice banner: repaired settings at start, announced downloads when
they happen (said from a worker thread), until dismissed."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from tests.support.gui_fakes import FakeRuntime, FakeSearcher

REPAIRED = "settings.json: `folders` must be a list of absolute folder paths, not \"/x\"; using the default ([])"
ANNOUNCED = "Downloading the CLIP image model ViT-B-32 (laion2b_s34b_b79k, about 600 MB) from Hugging Face"


@pytest.fixture
def fake_runtime(tmp_path: Path, docs_dir: Path, fake_searcher: FakeSearcher) -> FakeRuntime:
    rt = FakeRuntime(tmp_path / "data", [str(docs_dir)], fake_searcher)
    rt.settings.problems = [REPAIRED]
    rt.on_notice = None  # type: ignore[attr-defined]  # the real Runtime's hook
    return rt


def test_banner_shows_repaired_settings_and_announced_downloads(window: Any, fake_runtime: FakeRuntime,
                                                                 qtbot: Any) -> None:
    bar = window.notices
    qtbot.waitUntil(bar.isVisible, timeout=5000)
    assert bar.label.text() == REPAIRED
    worker = threading.Thread(target=fake_runtime.on_notice, args=(ANNOUNCED,))  # type: ignore[attr-defined]
    worker.start()
    worker.join()
    qtbot.waitUntil(lambda: ANNOUNCED in bar.label.text(), timeout=5000)
    assert bar.label.text().splitlines() == [REPAIRED, ANNOUNCED]
    bar.close_button.click()
    assert not bar.isVisible() and bar.label.text() == ""
    # A second attempt is announced again.
    fake_runtime.on_notice(ANNOUNCED)  # type: ignore[attr-defined]
    qtbot.waitUntil(bar.isVisible, timeout=5000)
    assert bar.label.text() == ANNOUNCED


def test_a_failed_download_is_said_in_place_of_its_announcement(window: Any, fake_runtime: FakeRuntime,
                                                                 qtbot: Any) -> None:
    from indexer.library.session import ClipState

    bar = window.notices
    qtbot.waitUntil(bar.isVisible, timeout=5000)
    fake_runtime.on_notice(ANNOUNCED)  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: ANNOUNCED in bar.label.text(), timeout=5000)
    window.backend._on_downloaded(ClipState("missing", "No internet connection: huggingface.co cannot be reached",
                                            fix="Connect and press Download again."))
    # The repaired settings stay; "Downloading …" does not stand above its own failure.
    assert bar.label.text().splitlines() == [
        REPAIRED, "No internet connection: huggingface.co cannot be reached. Connect and press Download again."]


def test_a_download_that_worked_withdraws_its_announcement(window: Any, fake_runtime: FakeRuntime, qtbot: Any,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtWidgets import QMessageBox

    from indexer.library.session import ClipState

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.No)
    bar = window.notices
    qtbot.waitUntil(bar.isVisible, timeout=5000)
    fake_runtime.on_notice(ANNOUNCED)  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: ANNOUNCED in bar.label.text(), timeout=5000)
    window.backend._on_downloaded(ClipState("ready", "Image search ready"))
    assert bar.label.text() == REPAIRED and bar.isVisible()
    bar.dismiss()
    fake_runtime.on_notice(ANNOUNCED)  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: ANNOUNCED in bar.label.text(), timeout=5000)
    window.backend._on_downloaded(ClipState("ready", "Image search ready"))
    assert not bar.isVisible()  # nothing else to say: the banner goes
