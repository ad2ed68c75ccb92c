"""Keep ``None`` alive under a PySide6 that drops a reference to it on every void call.

PySide6 ships limited-API (abi3) wheels; 6.12.0, built against headers where ``None`` is
immortal (Python 3.12+, PEP 683), returns ``None`` from every method without a result
(``update()``, ``setPen()``, ``drawPoints()``...) without taking the reference Python 3.11
expects. Each such call lowers ``None``'s reference count by one until it reaches zero and
the interpreter aborts ("Fatal Python error: none_dealloc: deallocating None"): a window
that paints for a while, or a long GUI test run, dies. Where that happens (measured, not
assumed from version numbers) ``None`` gets a reference count no run can wear down,
which is what Python 3.12 does for it anyway. Nothing changes elsewhere.
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)

_RESERVE = 1 << 40
_done = False


def void_calls_drop_none() -> bool:
    """True when a void PySide6 method lowers ``None``'s reference count."""
    from PySide6.QtCore import QPointF

    p = QPointF()
    before = sys.getrefcount(None)
    for _ in range(64):
        p.setX(0.0)
    return before - sys.getrefcount(None) >= 60


def keep_none_alive() -> bool:
    """Apply the guard once per process where it is needed; True when it was applied."""
    global _done
    if _done or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    _done = True
    if not void_calls_drop_none():
        return False
    ctypes.c_ssize_t.from_address(id(None)).value += _RESERVE
    log.info("PySide6 drops a reference to None on void calls (abi3 wheel on Python %d.%d): guarded",
             *sys.version_info[:2])
    return True
