"""Helpers shared by the subcommands: runtime from arguments, output, progress.

Every human-readable line a command prints goes through `say` (or `safe`), so a
file name or passage holding terminal escape sequences (``ESC ]0;title BEL``,
``ESC [2J``), a carriage return, a newline or a bidi override is shown as a
visible escape (``\\x1b``, ``\\r``, ``\\n``, ``\\u202e``) and never reaches the
terminal raw. JSON output goes through `print_json`, which escapes the same
characters the JSON way.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from typing import Any, TextIO

from indexer.types import Progress


def runtime_from_args(args: Any, *, create: bool = True) -> Any:
    """``create=False`` for commands that only read: a missing data directory is an error, not made."""
    from indexer.library.runtime import open_runtime

    return open_runtime(
        getattr(args, "data_dir", None), clip_checkpoint=getattr(args, "clip_checkpoint", None), create=create
    )


def add_clip_flag(parser: Any) -> None:
    parser.add_argument(
        "--clip-checkpoint",
        metavar="FILE",
        help="a local CLIP weights file (.safetensors) to use instead of downloading "
        "(env LODESTAR_CLIP_CHECKPOINT)",
    )


# C0 controls (tab, newline and carriage return included), DEL, C1 controls (U+009B is
# CSI on 8-bit terminals), the bidi embeddings/overrides/isolates that reorder what is
# shown, the Unicode line and paragraph separators, and lone surrogates (undecodable
# bytes of a file name; printing one raw would fail).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# What json.dumps(ensure_ascii=False) leaves raw: it escapes only C0, quote and backslash.
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(m: re.Match[str]) -> str:
    ch = m.group(0)
    named = _NAMED.get(ch)
    if named is not None:
        return named
    cp = ord(ch)
    if 0xDC80 <= cp <= 0xDCFF:  # an undecodable byte of a file name (surrogateescape)
        return f"\\x{cp - 0xDC00:02x}"
    return f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}"


def safe(text: object) -> str:
    """``text`` with every control, bidi-override and separator character made a visible escape.

    The result is one line that prints as it reads: nothing in it moves the cursor,
    clears the screen, retitles the window, reorders the text or starts a new line.
    """
    return _UNSAFE.sub(_escape, str(text))


def say(line: object = "", *, file: TextIO | None = None) -> None:
    """Print one human-readable line, neutralised (see `safe`); the only newline is the line's end."""
    stream = file if file is not None else sys.stdout
    stream.write(safe(line) + "\n")
    stream.flush()  # a long-running command's lines show up as they happen


def json_text(data: Any) -> str:
    """JSON for people and programs alike: valid JSON, readable non-ASCII, no raw control characters.

    ``json.dumps`` escapes C0 controls already; DEL, C1 controls, bidi overrides,
    U+2028/U+2029 and lone surrogates are escaped here as ``\\uXXXX`` (they can only
    occur inside strings, where that escape means the same character).
    """
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


def print_json(data: Any) -> None:
    sys.stdout.write(json_text(data) + "\n")


class SafeLogFormatter(logging.Formatter):
    """Log lines on stderr are output too: a path in a message must not drive the terminal."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = safe(record.message)  # one line, whatever the message quotes
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:
        # A traceback keeps its lines; each is neutralised on its own.
        return "\n".join(safe(line) for line in super().formatException(ei).split("\n"))

    def formatStack(self, stack_info: str) -> str:
        return "\n".join(safe(line) for line in super().formatStack(stack_info).split("\n"))


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
        text = safe(text)  # a file name in the message must not drive the terminal
        if self.tty:
            pad = max(0, self._width - len(text))
            self.stream.write("\r" + text + " " * pad)
            self._width = len(text)
            if final:
                self.stream.write("\r" + " " * self._width + "\r")
        elif not final:
            self.stream.write(text + "\n")
        self.stream.flush()
