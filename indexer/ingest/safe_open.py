"""Open a file under a watched folder without following any symlink on the way (RELIABILITY S2).

The scan sees a tree with ``lstat`` only, but a folder can be swapped for a
symlink to somewhere outside every watched folder between the scan and the
read. ``O_NOFOLLOW`` guards only the last path component, so every read of a
user's file goes through ``open_under_root``: it opens the watched folder once
and walks down one component at a time with ``openat``-style directory
descriptors (``O_NOFOLLOW | O_DIRECTORY``), then opens the file itself with
``O_NOFOLLOW``. A symlink (or a non-folder) anywhere below the root refuses the
read with ``PathUnsafe``. The watched folder itself is the person's choice and
is opened as given (the scan refuses one that is itself a symlink).

What is stored about a file (size, mtime, content hash, text, pixels) must come
from ``OpenFile.st`` and ``OpenFile.fd``, never from the earlier scan or a second
open by path. A helper process that needs the file re-opens it with ``reopen``,
which checks it got the very same file (device, inode, size, mtime).

Where ``os.open`` has no ``dir_fd`` support (Windows), every component is
checked with ``lstat`` before and after the open and the opened file's
device/inode must equal what the path names afterwards: this narrows the race
to the time between those checks rather than closing it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import stat
import sys
from collections.abc import Iterator
from types import TracebackType
from typing import Self

from indexer.types import ExtractionError, NameOnly

Identity = tuple[int, int, int, int]
"""(st_dev, st_ino, st_size, st_mtime_ns): the file a helper process must find again."""

_DIR_FD = os.open in os.supports_dir_fd and os.stat in os.supports_dir_fd
"""openat/fstatat available (Linux, macOS, BSDs); tests switch it off to cover the fallback."""
_CHECK_PLACEHOLDERS = os.name == "nt" or sys.platform == "darwin"

_FILE_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)  # a FIFO swapped in after the scan must not block the open (X9)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_BINARY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
# O_PATH (Linux) walks a folder that is searchable but not listable; elsewhere read-only.
_DIR_FLAGS = (
    (getattr(os, "O_PATH", 0) or os.O_RDONLY)
    | getattr(os, "O_DIRECTORY", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
_ROOT_FLAGS = (getattr(os, "O_PATH", 0) or os.O_RDONLY) | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_NOT_A_DIR_ERRNOS = frozenset({errno.ENOTDIR, errno.ELOOP, errno.EMLINK})  # EMLINK: FreeBSD's O_NOFOLLOW
_NAME_SURROGATE = 0x20000000  # Windows reparse tags of symlinks and junctions carry this bit


class PathUnsafe(ExtractionError):
    """The path reaches the file through a symlink (or a non-folder): nothing was read.

    ``str(exc)`` is the user-facing reason. The pipeline stores nothing for such a
    file, as if the scan had not seen it, and a later run reads it again.
    """


class Vanished(ExtractionError):
    """Nothing is at the path any more (the file, or a folder on the way, is gone): nothing was read."""


def _error(exc: OSError) -> ExtractionError:
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return Vanished(os_reason(exc))
    return ExtractionError(os_reason(exc))


# Cloud placeholders (RELIABILITY D7): reading one downloads it, possibly gigabytes
# over a metered link, so they are recorded by name only.
_WIN_PLACEHOLDER = 0x1000 | 0x40000 | 0x400000  # OFFLINE | RECALL_ON_OPEN | RECALL_ON_DATA_ACCESS
_MAC_DATALESS = 0x40000000  # SF_DATALESS (iCloud "optimise storage")


def is_cloud_placeholder(st: os.stat_result) -> bool:
    return bool(
        getattr(st, "st_file_attributes", 0) & _WIN_PLACEHOLDER or getattr(st, "st_flags", 0) & _MAC_DATALESS
    )


def os_reason(exc: OSError) -> str:
    """A one-line reason for an OSError met while opening or reading a file."""
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return "file vanished before it could be read"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.ELOOP:
        return "is a symbolic link (not followed)"
    return f"cannot read file: {exc.strerror or exc}"


@dataclasses.dataclass
class OpenFile:
    """One opened regular file: read ``fd``, describe it by ``st`` (its fstat). Close it."""

    fd: int
    st: os.stat_result
    path: str
    root: str | None  # the watched folder it was reached from; None: opened by path alone

    def identity(self) -> Identity:
        return (self.st.st_dev, self.st.st_ino, self.st.st_size, self.st.st_mtime_ns)

    def rewind(self) -> None:
        os.lseek(self.fd, 0, os.SEEK_SET)

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _parts_below(root: str, path: str) -> list[str]:
    prefix = root.rstrip(os.sep) + os.sep
    if not path.startswith(prefix) or len(path) == len(prefix):
        raise PathUnsafe("is not inside its watched folder; not read")
    parts = path[len(prefix) :].split(os.sep)
    if any(p in ("", ".", "..") for p in parts):
        raise PathUnsafe("has an unusual path; not read")
    return parts


def _component_reason(st: os.stat_result | None, where: str) -> PathUnsafe | None:
    """Why a folder on the way cannot be walked, or None if it is a plain folder."""
    if st is None:
        return None
    if stat.S_ISLNK(st.st_mode) or getattr(st, "st_reparse_tag", 0) & _NAME_SURROGATE:
        return PathUnsafe(f"the folder {where!r} on its path is a symbolic link (not followed); not read")
    if not stat.S_ISDIR(st.st_mode):
        return PathUnsafe(f"{where!r} on its path is no longer a folder; not read")
    return None


def _check_regular(fd: int) -> os.stat_result:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise ExtractionError("not a regular file (pipe, socket or device), not read")
    return st


def _walk(root: str, parts: list[str]) -> int:
    """A descriptor of the folder holding ``parts[-1]``, reached with no symlink below ``root``."""
    try:
        dfd = os.open(root, _ROOT_FLAGS)
    except OSError as exc:
        raise ExtractionError(f"cannot open its watched folder: {exc.strerror or exc}") from exc
    try:
        for i, name in enumerate(parts[:-1]):
            try:
                nfd = os.open(name, _DIR_FLAGS, dir_fd=dfd)
            except OSError as exc:
                if exc.errno not in _NOT_A_DIR_ERRNOS:
                    raise _error(exc) from exc
                try:
                    lst: os.stat_result | None = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                except OSError:
                    lst = None
                where = os.sep.join(parts[: i + 1])
                raise (_component_reason(lst, where) or _error(exc)) from exc
            os.close(dfd)
            dfd = nfd
    except BaseException:
        os.close(dfd)
        raise
    return dfd


def _final_lstat(name: str, dfd: int) -> os.stat_result:
    try:
        return os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except OSError as exc:
        raise _error(exc) from exc


def _refuse_final(lst: os.stat_result) -> None:
    if stat.S_ISLNK(lst.st_mode) or getattr(lst, "st_reparse_tag", 0) & _NAME_SURROGATE:
        raise PathUnsafe("is a symbolic link (not followed); not read")
    if is_cloud_placeholder(lst):
        raise NameOnly("cloud placeholder (not downloaded); indexed by name only")


def _open_at(root: str, path: str, parts: list[str]) -> OpenFile:
    dfd = _walk(root, parts)
    try:
        if _CHECK_PLACEHOLDERS:  # opening (or reading) a placeholder downloads it
            _refuse_final(_final_lstat(parts[-1], dfd))
        try:
            fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=dfd)
        except OSError as exc:
            if exc.errno in _NOT_A_DIR_ERRNOS and exc.errno != errno.ENOTDIR:
                raise PathUnsafe("is a symbolic link (not followed); not read") from exc
            raise _error(exc) from exc
    finally:
        os.close(dfd)
    try:
        st = _check_regular(fd)
    except BaseException:
        os.close(fd)
        raise
    return OpenFile(fd, st, path, root)


def _check_components_by_path(root: str, parts: list[str]) -> None:
    current = root
    for i, name in enumerate(parts[:-1]):
        current = os.path.join(current, name)
        try:
            lst = os.lstat(current)
        except OSError as exc:
            raise _error(exc) from exc
        reason = _component_reason(lst, os.sep.join(parts[: i + 1]))
        if reason is not None:
            raise reason


def _open_by_path_checked(root: str, path: str, parts: list[str]) -> OpenFile:
    """Fallback without dir_fd: lstat every folder before and after, then pin the inode."""
    _check_components_by_path(root, parts)
    try:
        lst = os.lstat(path)
    except OSError as exc:
        raise _error(exc) from exc
    _refuse_final(lst)
    try:
        fd = os.open(path, _FILE_FLAGS)
    except OSError as exc:
        raise _error(exc) from exc
    try:
        st = _check_regular(fd)
        _check_components_by_path(root, parts)
        after = os.lstat(path)
        if (after.st_dev, after.st_ino) != (st.st_dev, st.st_ino) or stat.S_ISLNK(after.st_mode):
            raise PathUnsafe("its path changed while it was being opened; not read")
    except OSError as exc:
        os.close(fd)
        raise _error(exc) from exc
    except BaseException:
        os.close(fd)
        raise
    return OpenFile(fd, st, path, root)


def open_under_root(root: str, path: str) -> OpenFile:
    """Open ``path`` for reading, reached from ``root`` without following any symlink.

    Raises ``PathUnsafe`` (a symlink or non-folder on the way, or the file itself a
    symlink), ``Vanished`` (nothing there any more), ``NameOnly`` (a cloud placeholder)
    or ``ExtractionError`` (permission denied, not a regular file). Never blocks on a FIFO.
    """
    root = os.path.abspath(os.fsdecode(root))
    path = os.path.abspath(os.fsdecode(path))
    parts = _parts_below(root, path)
    if _DIR_FD:
        return _open_at(root, path, parts)
    return _open_by_path_checked(root, path, parts)


def stat_under_root(root: str, path: str) -> os.stat_result:
    """The ``lstat`` of ``path`` reached from ``root`` without following a symlink; nothing is opened.

    For files recorded by name only: their size and mtime are stored, so they must
    be the inside file's too. Raises like ``open_under_root``.
    """
    root = os.path.abspath(os.fsdecode(root))
    path = os.path.abspath(os.fsdecode(path))
    parts = _parts_below(root, path)
    if _DIR_FD:
        dfd = _walk(root, parts)
        try:
            lst = _final_lstat(parts[-1], dfd)
        finally:
            os.close(dfd)
    else:
        _check_components_by_path(root, parts)
        try:
            lst = os.lstat(path)
        except OSError as exc:
            raise _error(exc) from exc
        _check_components_by_path(root, parts)
    if stat.S_ISLNK(lst.st_mode) or getattr(lst, "st_reparse_tag", 0) & _NAME_SURROGATE:
        raise PathUnsafe("is a symbolic link (not followed); not read")
    return lst


def open_path(path: str) -> OpenFile:
    """Open a file named by the person (not under a watched folder): the last component is not followed."""
    path = os.fsdecode(path)
    if _CHECK_PLACEHOLDERS:
        try:
            _refuse_final(os.lstat(path))
        except OSError as exc:
            raise _error(exc) from exc
    try:
        fd = os.open(path, _FILE_FLAGS)
    except OSError as exc:
        raise _error(exc) from exc
    try:
        st = _check_regular(fd)
    except BaseException:
        os.close(fd)
        raise
    return OpenFile(fd, st, path, None)


@contextlib.contextmanager
def opened(path: str, source: OpenFile | None) -> Iterator[OpenFile]:
    """``source`` if the caller already opened the file (left open), else ``path`` opened here and closed."""
    if source is not None:
        yield source
        return
    f = open_path(path)
    try:
        yield f
    finally:
        f.close()


def reopen(path: str, root: str | None, expect: Identity | None) -> OpenFile:
    """Open the same file again (in a helper process) and make sure it is the very same one.

    ``root`` None opens by path (last component not followed). A different file, or
    the same one changed since, is refused: what is stored must match what was read.
    """
    f = open_under_root(root, path) if root is not None else open_path(path)
    if expect is not None and f.identity() != tuple(expect):
        f.close()
        raise ExtractionError("the file changed while it was being read; it is read again on the next scan")
    return f
