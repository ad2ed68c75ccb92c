"""CPU time of one call, for the tests that bound how work grows with input size."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any


def cpu_seconds(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
    """This thread's CPU seconds for ``fn(*args, **kwargs)``.

    Neither other work on the machine nor other threads of the test run count, and the
    garbage collector is run first and held off during the call: a full collection of
    the heap that hundreds of earlier tests left behind took seconds in CI and made a
    linear parse look quadratic.
    """
    gc.collect()
    gc.disable()
    try:
        t = time.thread_time()
        fn(*args, **kwargs)
        return time.thread_time() - t
    finally:
        gc.enable()
