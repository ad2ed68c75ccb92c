"""Path questions every room asks: which watched folder holds a path, and how to show one.

Paths are absolute strings as `os.fsdecode` returns them (undecodable bytes are
surrogate escapes); nothing here touches the disk.
"""

from __future__ import annotations

import os
from collections.abc import Iterable


def is_under(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` itself or anything below it (by name, not by disk)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def root_of(path: str, roots: Iterable[str]) -> str | None:
    """The innermost of ``roots`` that holds ``path`` (nested roots pick the deepest), or None."""
    best = None
    for root in roots:
        if is_under(path, root) and (best is None or len(root) > len(best)):
            best = root
    return best


def display_path(path: str) -> str:
    """A printable form of a path; undecodable bytes are shown as escapes (``\\xff``)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")
