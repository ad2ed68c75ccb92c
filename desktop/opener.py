"""Open / reveal a result in the OS, refusing anything outside the watched folders.

The index could be stale or tampered with (RELIABILITY S2): before handing a path
to the OS we resolve it and require it to sit inside a watched folder. Anything
else fails closed with a message.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable, Sequence

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices

log = logging.getLogger(__name__)


class OpenRefused(Exception):
    """``str(exc)`` is the message shown to the person."""


def is_inside(path: str, roots: Sequence[str]) -> bool:
    """True when ``realpath(path)`` is a watched folder or lies under one."""
    try:
        real = os.path.realpath(path)
    except (OSError, ValueError):
        return False
    for root in roots:
        try:
            real_root = os.path.realpath(root)
        except (OSError, ValueError):
            continue
        try:
            if os.path.commonpath([real, real_root]) == real_root:
                return True
        except ValueError:  # different drives on Windows
            continue
    return False


def _default_open(url: QUrl) -> bool:
    return QDesktopServices.openUrl(url)


def _default_run(argv: list[str]) -> None:
    # Detached and without a shell: the path is an argument, never parsed.
    subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True)


class Opener:
    """``open(path)`` / ``reveal(path)``; the OS calls are injectable for tests."""

    def __init__(
        self,
        roots: Callable[[], Sequence[str]],
        open_url: Callable[[QUrl], bool] = _default_open,
        run: Callable[[list[str]], None] = _default_run,
        platform: str = sys.platform,
    ) -> None:
        self._roots = roots
        self._open_url = open_url
        self._run = run
        self._platform = platform

    def check(self, path: str) -> str:
        """The resolved path, or :class:`OpenRefused`."""
        if not path:
            raise OpenRefused("No file selected.")
        if not is_inside(path, self._roots()):
            log.warning("refused to open %r: outside the watched folders", path)
            raise OpenRefused(f"Not opening {path}: it is outside your watched folders.")
        real = os.path.realpath(path)
        if not os.path.exists(real):
            raise OpenRefused(f"{path} no longer exists.")
        return real

    def open(self, path: str) -> None:
        real = self.check(path)
        if not self._open_url(QUrl.fromLocalFile(real)):
            raise OpenRefused(f"No application could open {real}.")

    def reveal(self, path: str) -> None:
        real = self.check(path)
        if self._platform == "darwin":
            self._run(["open", "-R", real])
        elif self._platform.startswith("win"):
            self._run(["explorer", f"/select,{real}"])
        else:
            # xdg-open has no "select this file"; open its folder instead.
            self._run(["xdg-open", os.path.dirname(real)])
