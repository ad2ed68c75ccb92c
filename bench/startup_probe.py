"""`lodestar` with start-up timestamps, for bench/bench_startup.py.

    python bench/startup_probe.py --data-dir DIR

runs the `lodestar` command as usual, with the window's parts hooked from outside
(the product carries no probe): it prints to stderr, as wall-clock seconds
(``time.time()``), ``window-shown <t>`` when the main window receives its first
show event and ``first-query <t>`` when the first answer to
``LODESTAR_STARTUP_PROBE_QUERY`` (typed at once, as a person would) arrives, then
quits.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication


class _ShowWatcher(QObject):
    def __init__(self, on_show: Any, parent: QObject) -> None:
        super().__init__(parent)
        self._on_show = on_show
        self._done = False

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if not self._done and event.type() == QEvent.Type.Show:
            self._done = True
            self._on_show()
        return False


def install(window: Any, controller: Any, app: Any) -> None:
    """Hook the window and the search controller; call before ``window.show()``."""
    query = os.environ.get("LODESTAR_STARTUP_PROBE_QUERY", "how do I read a file")

    def shown() -> None:
        print(f"window-shown {time.time():.6f}", file=sys.stderr, flush=True)
        if query:
            controller.set_text(query)

    def answered(_response: Any) -> None:
        if getattr(answered, "done", False):
            return
        answered.done = True  # type: ignore[attr-defined]
        print(f"first-query {time.time():.6f}", file=sys.stderr, flush=True)
        QTimer.singleShot(0, app.quit)

    watcher = _ShowWatcher(shown, window)
    window.installEventFilter(watcher)
    controller.responseReady.connect(answered)


def main(argv: list[str]) -> int:
    import desktop.app
    from indexer.cli.main import main as lodestar

    build_window = desktop.app.build_window

    def probed_build_window(*args: Any, **kwargs: Any) -> Any:
        parts = build_window(*args, **kwargs)
        install(parts.window, parts.controller, QApplication.instance())  # run_app shows the window next
        return parts

    desktop.app.build_window = probed_build_window
    return lodestar(argv)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
