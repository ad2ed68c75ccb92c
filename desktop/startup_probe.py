"""Start-up timestamps for bench/bench_startup.py (off unless LODESTAR_STARTUP_PROBE is set).

With ``LODESTAR_STARTUP_PROBE=1`` the app prints to stderr, as wall-clock seconds
(``time.time()``), ``window-shown <t>`` when the main window receives its first
show event and ``first-query <t>`` when the first answer to
``LODESTAR_STARTUP_PROBE_QUERY`` (typed at once, as a person would) arrives.
With ``LODESTAR_STARTUP_PROBE=quit`` the app quits after the first answer.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from PySide6.QtCore import QEvent, QObject, QTimer

ENV = "LODESTAR_STARTUP_PROBE"


def enabled() -> bool:
    return bool(os.environ.get(ENV))


class _ShowWatcher(QObject):
    def __init__(self, on_show: Any, parent: QObject) -> None:
        super().__init__(parent)
        self._on_show = on_show
        self._done = False

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if not self._done and event.type() == QEvent.Type.Show:
            self._done = True
            self._on_show()
        return False


def install(window: Any, controller: Any, app: Any) -> None:
    """Hook the window and the search controller; call before ``window.show()``."""
    if not enabled():
        return
    query = os.environ.get("LODESTAR_STARTUP_PROBE_QUERY", "how do I read a file")
    quit_after = os.environ.get(ENV) == "quit"

    def shown() -> None:
        print(f"window-shown {time.time():.6f}", file=sys.stderr, flush=True)
        if query:
            controller.set_text(query)

    def answered(_response: Any) -> None:
        if getattr(answered, "done", False):
            return
        answered.done = True  # type: ignore[attr-defined]
        print(f"first-query {time.time():.6f}", file=sys.stderr, flush=True)
        if quit_after:
            QTimer.singleShot(0, app.quit)

    watcher = _ShowWatcher(shown, window)
    window.installEventFilter(watcher)
    controller.responseReady.connect(answered)
