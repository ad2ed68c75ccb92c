"""The log file, and what of the log reaches the terminal.

Every command writes a rotating log file in the data directory
(``AppPaths.logs / "lodestar.log"``, 0600): full tracebacks, library warnings,
``warnings.warn`` output. The terminal keeps one line per problem from Lodestar's
own modules and never a library's traceback or chatter (pypdf on an odd PDF,
torch's export warnings): those go to the file only. ``-v`` shows everything.

A failure reason may point at the file only if it exists: `log_file` says where
the running process logs, or None.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from logging.handlers import RotatingFileHandler
from pathlib import Path

LOG_NAME = "lodestar.log"
MAX_BYTES = 2_000_000
BACKUPS = 3
OWN_PACKAGES = ("indexer", "models", "desktop", "lodestar", "__main__")
"""Loggers whose warnings people see on the terminal; everything else goes to the file."""
FILE_FORMAT = "%(asctime)s %(levelname)s %(process)d %(threadName)s %(name)s: %(message)s"


def log_file() -> str | None:
    """The file this process logs to (None when it has none, e.g. library use)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, _DataDirLog):
            return handler.baseFilename if handler.usable() else None
        if isinstance(handler, logging.FileHandler) and handler.baseFilename != os.devnull:
            return str(handler.baseFilename)
    return None


class _DataDirLog(RotatingFileHandler):
    """A rotating log inside the data directory, opened at the first record.

    A command that only reads (``lodestar status`` on a fresh machine) must not
    create the data directory just to log: until the directory exists, records are
    not written (the terminal still shows Lodestar's own).
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        super().__init__(data_dir / "logs" / LOG_NAME, maxBytes=MAX_BYTES, backupCount=BACKUPS,
                         encoding="utf-8", delay=True)

    def usable(self) -> bool:
        return self.stream is not None or self.data_dir.is_dir()

    def _open(self):  # the base class's own (untyped) signature
        folder = Path(self.baseFilename).parent
        folder.mkdir(exist_ok=True, mode=0o700)
        os.close(os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))  # 0600 at birth
        return super()._open()

    def emit(self, record: logging.LogRecord) -> None:
        if self.stream is None and not self.data_dir.is_dir():
            return
        super().emit(record)


@contextlib.contextmanager
def cli_logging(data_dir: str | os.PathLike[str], verbose: int = 0) -> Iterator[str]:
    """For one command: a log file in ``data_dir`` and a quiet terminal; undone on exit.

    Everything at INFO and up, from every logger and ``warnings.warn``, goes to
    ``data_dir/logs/lodestar.log``. Unless ``verbose``, the terminal handler shows only
    Lodestar's own records, one line each, with a pointer to the file for the rest.
    Yields the log file's path.
    """
    root = logging.getLogger()
    handler = _DataDirLog(Path(data_dir).expanduser().absolute())
    handler.setFormatter(logging.Formatter(FILE_FORMAT))
    handler.setLevel(logging.INFO)
    old_level = root.level
    touched: list[tuple[logging.Handler, int, logging.Formatter | None, logging.Filter | None]] = []
    for h in list(root.handlers):
        # Only plain terminal handlers (the CLI's own): never a test runner's capture handler.
        if type(h) is not logging.StreamHandler:
            continue
        touched.append((h, h.level, h.formatter, None))
        if h.level == logging.NOTSET:
            h.setLevel(old_level if old_level != logging.NOTSET else logging.WARNING)
        if not verbose:
            flt = _OwnRecords()
            h.addFilter(flt)
            h.setFormatter(_OneLine(h.formatter))
            touched[-1] = (h, touched[-1][1], touched[-1][2], flt)
    if old_level == logging.NOTSET or old_level > logging.INFO:
        root.setLevel(logging.INFO)
    root.addHandler(handler)
    capturing = getattr(logging, "_warnings_showwarning", None) is not None
    logging.captureWarnings(True)  # warnings.warn(...) -> logger "py.warnings" -> the file
    try:
        yield handler.baseFilename
    finally:
        if not capturing:
            logging.captureWarnings(False)
        root.removeHandler(handler)
        handler.close()
        root.setLevel(old_level)
        for h, level, formatter, added in touched:
            h.setLevel(level)
            h.setFormatter(formatter)
            if added is not None:
                h.removeFilter(added)


class _OwnRecords(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        return any(name == p or name.startswith(p + ".") for p in OWN_PACKAGES)


class _OneLine(logging.Formatter):
    """First line of the message, no traceback: the log file has the rest."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter("%(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        first, _, rest = message.partition("\n")
        more = bool(rest.strip() or record.exc_info or record.stack_info)
        # A copy: the file handler formats the same record and keeps the traceback.
        copy = logging.makeLogRecord(record.__dict__)
        copy.msg, copy.args = first, None
        copy.exc_info, copy.exc_text, copy.stack_info = None, None, None
        text = self.inner.format(copy)
        where = log_file()
        if more and where:
            text += f" (details in {where})"
        return text
