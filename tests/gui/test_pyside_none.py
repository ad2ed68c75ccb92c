"""The guard for PySide6 wheels that drop a reference to None on every void call (a
Python 3.11 interpreter aborts once None's count reaches zero): after it, a long run of
void calls leaves None with as many references as a process could ever need."""

from __future__ import annotations

import sys

import pytest

pytestmark = pytest.mark.gui


def test_void_calls_never_wear_none_down(qapp: object) -> None:
    from PySide6.QtCore import QPointF

    from desktop.pyside_none import keep_none_alive, void_calls_drop_none

    keep_none_alive()
    keep_none_alive()  # once per process, however often it is asked
    p = QPointF()
    for _ in range(20_000):  # more void calls than None has references in a fresh interpreter
        p.setX(1.0)
    if sys.version_info < (3, 12) and void_calls_drop_none():
        assert sys.getrefcount(None) > 1 << 39
    else:
        assert sys.getrefcount(None) > 1_000
