"""Background ONNX exports for the light model paths (models/onnx_text.py, onnx_clip.py).

One registry for every export thread, so that process exit waits for a running one:
a process must not finish while a thread is inside torch, or the C++ runtime aborts
("terminate called without an active exception"). An export takes seconds, once
per machine.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

EXIT_WAIT_S = 120.0
_threads: list[threading.Thread] = []
_lock = threading.Lock()
TORCH_EXPORT = threading.RLock()
"""Held around every ``torch.onnx.export``. The exporter keeps process-wide state
(``GLOBALS.in_onnx_export``): two exports at once fail ("GLOBALS.in_onnx_export must be
False", or "... must be True" in the one that finishes second). A first start with CLIP
weights at hand exports the text model and CLIP on two threads at once, so one of them
failed and that model stayed on its slow torch path for the whole first index."""


STALE_TMP_S = 3600.0
"""A half-written export file older than this belongs to no running export (each takes
seconds to a minute); younger ones may be another process's, still being written."""


def drop_stale_tmp(folder: Path, *patterns: str) -> int:
    """Delete half-written files matching ``patterns`` in ``folder`` that a process left when
    it was killed mid-export (a ViT-B-32 tower is 350 MB): returns how many went."""
    gone = 0
    now = time.time()
    for pattern in patterns:
        for tmp in folder.glob(pattern):
            try:
                if now - tmp.stat().st_mtime > STALE_TMP_S:
                    tmp.unlink()
                    gone += 1
            except OSError:
                pass  # gone already, or not ours to delete: harmless either way
    if gone:
        log.info("removed %d half-written export file(s) from %s", gone, folder)
    return gone


def light_enabled(env: str) -> bool:
    """False when the variable says "0"/"false"/"no"/"off" (keep the torch path)."""
    return os.environ.get(env, "1").strip().lower() not in ("0", "false", "no", "off")


def start_export(name: str, run: Callable[[], None]) -> threading.Thread:
    """Run ``run`` on a daemon thread that process exit waits for."""
    thread = threading.Thread(target=run, name=name, daemon=True)
    with _lock:
        _threads[:] = [t for t in _threads if t.is_alive()]
        _threads.append(thread)
    thread.start()
    return thread


def export_in_background(owner: Any, name: str, what: str, work: Callable[[], None]) -> None:
    """Run ``work`` on an export thread and keep ``owner`` told: its ``export_done``
    (an Event) is set when the thread ends, ``export_error`` holds what went wrong and
    ``export_thread`` the thread. Only the next start's speed depends on an export, so a
    failure is logged (a missing model quietly) and never raised."""
    from models.errors import ModelUnavailable

    def run() -> None:
        try:
            work()
        except ModelUnavailable as exc:
            owner.export_error = exc
            log.info("%s", exc.reason)
        except Exception as exc:  # noqa: BLE001 - only the next start's speed depends on it
            owner.export_error = exc
            log.warning("could not export %s for the light path: %s", what, exc)
        finally:
            owner.export_done.set()

    owner.export_done.clear()
    owner.export_error = None
    owner.export_thread = start_export(name, run)


def wait_export(thread: threading.Thread | None, timeout: float | None = None) -> bool:
    """Wait for an export thread to end; True if none runs now."""
    if thread is None:
        return True
    thread.join(timeout)
    return not thread.is_alive()


def _join_at_exit() -> None:
    with _lock:
        threads = list(_threads)
    for t in threads:
        t.join(EXIT_WAIT_S)


atexit.register(_join_at_exit)
