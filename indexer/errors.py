"""Known environment problems, turned into one clear line for the person.

Two kinds of error (house style): these known ones become messages; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno


class LodestarError(Exception):
    """Base for expected, user-facing problems; ``str(exc)`` is the message."""


class UserError(LodestarError):
    """A command given something it cannot use (missing path, a folder for a file, empty index)."""


class StoreError(LodestarError):
    """The index cannot be opened or written (and why)."""


class StoreTooNew(StoreError):
    """The index was written by a newer Lodestar; it is left untouched."""


class WriterBusy(LodestarError):
    """Another Lodestar process is the writer for this data directory."""


class DiskFull(LodestarError):
    """The data directory's disk is full; indexing pauses until space is freed."""


def user_message(exc: BaseException) -> str | None:
    """A one-line message for a known problem, or None for a bug."""
    if isinstance(exc, LodestarError):
        return str(exc)
    from indexer.library.settings import ConfigError

    if isinstance(exc, ConfigError):
        return str(exc)
    from models.errors import ModelUnavailable

    if isinstance(exc, ModelUnavailable):
        return str(exc)
    if isinstance(exc, OSError):
        if exc.errno == errno.ENOSPC:
            return "the disk holding the index is full; free some space and run again"
        if exc.errno in (errno.EACCES, errno.EPERM):
            return f"permission denied: {exc.filename or exc}"
        if exc.errno == errno.ENOENT:
            return f"no such file or folder: {exc.filename or exc}"
        return f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
    return None


def is_disk_full(exc: BaseException) -> bool:
    """LanceDB surfaces ENOSPC inside its own error text, so look at both."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    text = str(exc).lower()
    return "no space left on device" in text or "os error 28" in text
