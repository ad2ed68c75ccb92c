"""Helpers shared by the subcommands: runtime from arguments, output, progress."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from indexer.types import Progress


def runtime_from_args(args: Any) -> Any:
    from indexer.runtime import open_runtime

    return open_runtime(getattr(args, "data_dir", None), clip_checkpoint=getattr(args, "clip_checkpoint", None))


def add_clip_flag(parser: Any) -> None:
    parser.add_argument(
        "--clip-checkpoint",
        metavar="FILE",
        help="a local CLIP weights file (.safetensors) to use instead of downloading "
        "(env LODESTAR_CLIP_CHECKPOINT)",
    )


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2, default=str)
    sys.stdout.write("\n")


def shorten_home(path: str) -> str:
    home = os.path.expanduser("~")
    return "~" + path[len(home):] if home != "/" and path.startswith(home + os.sep) else path


class ProgressPrinter:
    """A one-line progress bar on a terminal; a plain line now and then otherwise."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last = 0.0
        self._width = 0

    def __call__(self, event: Progress) -> None:
        now = time.monotonic()
        final = event.phase == "idle"
        if not final and now - self._last < (0.1 if self.tty else 5.0):
            return
        self._last = now
        if event.total:
            frac = event.done / max(event.total, 1)
            bar = "#" * int(frac * 24)
            eta = f", ETA {int(event.eta_s)}s" if event.eta_s is not None else ""
            text = f"[{bar:<24}] {event.done}/{event.total} files, {event.rate:.1f}/s{eta}, {event.failed} failed"
        else:
            text = event.message or event.phase
        if self.tty:
            pad = max(0, self._width - len(text))
            self.stream.write("\r" + text + " " * pad)
            self._width = len(text)
            if final:
                self.stream.write("\r" + " " * self._width + "\r")
        elif not final:
            self.stream.write(text + "\n")
        self.stream.flush()
