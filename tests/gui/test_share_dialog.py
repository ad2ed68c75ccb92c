"""The Sharing page (issue 19): share, the parts, stop sharing; against moto's S3 server.

And a result of another computer opens only there.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lancedb  # noqa: F401 - its event loop thread starts at import: before the window's leak check looks
import pytest
from PySide6.QtWidgets import QMessageBox

from indexer.types import SearchResponse, SearchResult
from tests.support.s3_server import BUCKET, S3, s3_server

pytestmark = pytest.mark.gui


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[S3]:
    server = s3_server(monkeypatch, tmp_path)
    try:
        yield server
    finally:
        server.stop()


def _shown(qtbot: Any, dialog: Any, act: Any) -> Any:
    with qtbot.waitSignal(dialog.statusShown, timeout=30_000) as blocker:
        act()
    return blocker.args[0]


def test_share_see_parts_and_stop_sharing(qtbot: Any, window: Any, s3: S3, monkeypatch: pytest.MonkeyPatch) -> None:
    from desktop.share_dialog import ShareDialog
    from indexer.library.session import SHARE_PRIVACY

    dialog = ShareDialog(window.backend, window)
    qtbot.addWidget(dialog)
    dialog.show()
    status = _shown(qtbot, dialog, dialog.refresh)
    assert not status.shared
    # The privacy statement is where sharing is chosen, and sharing waits for the person to agree.
    assert dialog.privacy.text() == SHARE_PRIVACY and dialog.privacy.isVisible()
    assert "passages" in SHARE_PRIVACY and "vectors" in SHARE_PRIVACY and "thumbnails" in SHARE_PRIVACY
    assert dialog.join_box.isVisible() and not dialog.parts_box.isVisible()
    dialog.uri.setText(f"s3://{BUCKET}/team")
    dialog.computer.setText("desk-1")
    assert not dialog.share_button.isEnabled()
    dialog.agree.setChecked(True)
    assert dialog.share_button.isEnabled()

    status = _shown(qtbot, dialog, dialog.share_button.click)
    assert status.shared and status.reachable, status
    assert dialog.parts_box.isVisible() and not dialog.join_box.isVisible()
    assert dialog.table.rowCount() == 1
    assert dialog.table.item(0, 0).text() == "desk-1 (this computer)"
    assert dialog.table.item(0, 3).text() == "yes"
    part = f"team/parts/{status.part_id}/"
    # The part is published in the background right after sharing.
    qtbot.waitUntil(lambda: f"{part}part.json" in s3.keys(part), timeout=30_000)

    # Stop sharing, removing this computer's part (the default in the question).
    monkeypatch.setattr(QMessageBox, "exec", lambda self: QMessageBox.StandardButton.Yes)
    status = _shown(qtbot, dialog, dialog.leave_button.click)
    assert not status.shared and dialog.join_box.isVisible()
    assert s3.keys(part) == []

    # A bucket that is not there: one line, nothing remembered.
    dialog.uri.setText("s3://no-such-bucket/team")
    dialog.share_button.click()
    qtbot.waitUntil(lambda: "there is no bucket 'no-such-bucket'" in dialog.message.text(), timeout=30_000)
    assert "\n" not in dialog.message.text()
    assert not (Path(window.backend.data_dir()) / "shared.json").exists()


def test_a_result_of_another_computer_opens_only_there(qtbot: Any, window: Any, fake_searcher: Any,
                                                       opened: list) -> None:
    elsewhere = SearchResult(path="/home/bo/notes/bread.txt", kind="text", score=0.9, name="bread.txt",
                             folder="on kitchen-pc · /home/bo/notes", ext="txt", passage="knead the dough",
                             computer="kitchen-pc")
    fake_searcher.search = lambda *a, **k: SearchResponse(results=[elsewhere], query="dough",
                                                          counts={"text": 1, "image": 0, "other": 0})
    qtbot.keyClicks(window.search_bar.field, "dough")
    qtbot.waitUntil(lambda: window.model.rowCount() == 1, timeout=3000)
    window.results.focus_results()
    qtbot.waitUntil(lambda: window.results.current_result() is not None, timeout=3000)
    window.open_path(elsewhere.path)
    window.reveal_path(elsewhere.path)
    assert opened == []
    assert window.statusBar().currentMessage() == (
        "bread.txt is on kitchen-pc: open it there. Its passage or picture is shown here.")
