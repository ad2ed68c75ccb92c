"""Misbehaving tasks for the document sandbox: `sandbox.run` sends them to its worker by name."""

from __future__ import annotations

import os
import time


def sleep(seconds: float) -> str:
    time.sleep(seconds)
    return "slept"


def alloc(mb: int) -> int:
    return len(bytearray(mb * 1024 * 1024))  # a bomb-sized allocation


def crash() -> None:
    os._exit(70)  # as a segfault in a C decoder would
