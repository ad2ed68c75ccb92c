"""Walk watched folders: regular files only, never following symlinks, honouring exclusions.

The walk is iterative (``os.scandir`` + an explicit stack) so deep trees cannot hit
the recursion limit, and uses ``lstat`` only: a symlink is reported and skipped,
never followed, so nothing outside a watched root can leak into the index
(RELIABILITY W11/S2, fail closed). FIFOs, sockets and devices are reported and
never opened (X9). Permission errors are reported and the walk goes on (D6);
what could not be listed is handed back as unreadable, never mistaken for deleted.
Lodestar's own folders (data directory, model cache) are never walked into.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import logging
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator

from indexer.errors import LodestarError
from indexer.ingest.extract import kind_for_name, kind_for_path
from indexer.library.settings import DEFAULT_EXCLUDES, IGNORE_MARKER, Settings
from indexer.paths import is_under, root_of
from indexer.types import FileInfo

log = logging.getLogger(__name__)

SkipCallback = Callable[[str, str], None]
"""``on_skip(path, reason)``: a path the walk saw but will not index, and why."""


# --------------------------------------------------------------------------- Lodestar's own folders


class FolderRefused(LodestarError):
    """A folder (or file) that must never be indexed or watched: Lodestar's own data."""


def own_folders(data_dir: str | os.PathLike[str] | None) -> list[tuple[str, str]]:
    """``(folder, what it is)`` for every folder Lodestar writes itself: never indexed.

    The data directory (index, thumbnails, settings, logs, models) and the ONNX model
    cache (``LODESTAR_ONNX_CACHE``), each both as given and with symlinks resolved.
    """
    named: list[tuple[str, str]] = []
    if data_dir is not None:
        named.append((os.fspath(data_dir), "Lodestar's own data folder"))
    try:
        from models.onnx_text import default_cache_dir

        named.append((os.fspath(default_cache_dir()), "Lodestar's model cache"))
    except ImportError:  # pragma: no cover - models is part of the package
        pass
    out: list[tuple[str, str]] = []
    for folder, what in named:
        folder = os.path.expanduser(folder)
        for variant in (os.path.abspath(folder), os.path.realpath(folder)):
            if (variant, what) not in out:
                out.append((variant, what))
    return out


def refusal_reason(path: str | os.PathLike[str], data_dir: str | os.PathLike[str] | None) -> str:
    """Why ``path`` must not be indexed or watched ("" when it may be).

    Lodestar's data directory, its model cache and anything inside them are refused
    (indexing the index feeds on itself). A folder that *contains* them is fine: the
    walk always skips them (`Exclusions`). One rule for every way a folder is added:
    `lodestar index`, `lodestar folders add`, `lodestar watch` and the window.
    """
    raw = os.path.expanduser(os.fspath(path))
    candidates = {os.path.abspath(raw), os.path.realpath(raw)}
    for folder, what in own_folders(data_dir):
        for p in candidates:
            if p == folder:
                return f"{p} is {what}; it is never indexed or watched (choose a folder of your own files)"
            if is_under(p, folder):
                return f"{p} is inside {what} ({folder}); it is never indexed or watched"
    return ""


def check_indexable(path: str | os.PathLike[str], data_dir: str | os.PathLike[str] | None) -> None:
    """Raise `FolderRefused` (one clear line) if ``path`` is Lodestar's own data."""
    reason = refusal_reason(path, data_dir)
    if reason:
        raise FolderRefused(reason)


def unlistable_reason(folder: str) -> str:
    """Why ``folder`` cannot be listed right now ("" when it can): missing, not a folder, no permission."""
    try:
        with os.scandir(folder) as it:
            next(it, None)
    except OSError as exc:
        return f"cannot list folder: {exc.strerror or exc}"
    return ""

GITIGNORE = ".gitignore"
_MAX_GITIGNORE_BYTES = 256 * 1024  # a bigger .gitignore is certainly not hand-written
_FILE_ATTRIBUTE_HIDDEN = 0x2  # Windows; st_file_attributes only exists there
_IS_WINDOWS = os.name == "nt"


# --------------------------------------------------------------------------- gitignore


@dataclasses.dataclass(frozen=True)
class _Rule:
    """One gitignore pattern as per-folder-name regexes; None is a ``**`` segment."""

    segments: tuple[re.Pattern[str] | None, ...]
    negate: bool
    dir_only: bool
    last_any: int = dataclasses.field(init=False)  # index of the last "**" segment, -1 if none
    name_match: Callable[[str], re.Match[str] | None] | None = dataclasses.field(init=False)  # "*.log": the last name decides

    def __post_init__(self) -> None:
        last = max((i for i, seg in enumerate(self.segments) if seg is None), default=-1)
        object.__setattr__(self, "last_any", last)
        simple = last == 0 and len(self.segments) == 2
        object.__setattr__(self, "name_match", self.segments[1].fullmatch if simple else None)  # type: ignore[union-attr]

    def matches(self, parts: list[str]) -> bool:
        """Whether a relative path, split on ``/``, matches: at most one regex call per
        (segment, folder name) pair, so a hostile pattern cannot make it backtrack."""
        segs = self.segments
        n = len(parts)
        last_any = self.last_any
        if self.name_match is not None:
            return self.name_match(parts[-1]) is not None
        if last_any < 0:  # no "**": one name per segment
            return n == len(segs) and all(seg.fullmatch(name) for seg, name in zip(segs, parts))  # type: ignore[union-attr]
        states = {0}  # how many leading names the segments so far can have matched
        for i, seg in enumerate(segs):
            if seg is None:
                # "**/": zero or more folders; a trailing "/**": something inside.
                low = min(states) + (1 if i == len(segs) - 1 else 0)
                states = set(range(low, n + 1))
            else:
                # Past the last "**" every name is fixed: only one position can still end at n.
                want = n - (len(segs) - i) if i > last_any else None
                states = {
                    j + 1 for j in states if j < n and (want is None or j == want) and seg.fullmatch(parts[j])
                }
            if not states:
                return False
        return n in states


def _segment_regex(glob: str) -> re.Pattern[str]:
    """One folder or file name's glob (``*``, ``?``, ``[...]``, ``\\x``) as a linear regex.

    Each ``*`` but the last becomes ``(?>.*?CHUNK)``: the earliest match of what
    follows it, never revisited (as fnmatch does). Within one name, a later match of
    CHUNK could only leave less for the rest, so this finds every match there is,
    without the exponential backtracking of ``a*a*a*a*b`` against a long name.
    """
    pieces: list[str | None] = []  # None is a star
    i, n = 0, len(glob)
    while i < n:
        c = glob[i]
        if c == "*":
            if not pieces or pieces[-1] is not None:
                pieces.append(None)  # "**" inside a name is a plain "*" (as in git)
        elif c == "?":
            pieces.append(".")
        elif c == "[":
            j = glob.find("]", i + 2)
            if j == -1:
                pieces.append(re.escape(c))
            else:
                body = glob[i + 1 : j].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                pieces.append(f"[{body}]")
                i = j
        elif c == "\\" and i + 1 < n:
            i += 1
            pieces.append(re.escape(glob[i]))
        else:
            pieces.append(re.escape(c))
        i += 1
    last_star = max((k for k, piece in enumerate(pieces) if piece is None), default=-1)
    out: list[str] = []
    k = 0
    while k < len(pieces):
        piece = pieces[k]
        if piece is None and k != last_star:
            m = k + 1
            while pieces[m] is not None:
                m += 1
            out.append("(?>.*?" + "".join(p for p in pieces[k + 1 : m] if p is not None) + ")")
            k = m
            continue
        out.append(".*" if piece is None else piece)
        k += 1
    return re.compile("".join(out), re.DOTALL)


def _glob_segments(glob: str, anchored: bool) -> tuple[re.Pattern[str] | None, ...]:
    """A gitignore glob split into names; ``**`` alone is any number of folders.
    An unanchored pattern (no ``/``) matches at any depth: a leading ``**``."""
    segs = tuple(None if part == "**" else _segment_regex(part) for part in glob.split("/"))
    return segs if anchored else (None, *segs)


class GitIgnore:
    """The common subset of one ``.gitignore``, scoped to the folder that holds it.

    Supported: comments, blank lines, ``!`` negation (last match wins), trailing
    ``/`` (folders only), leading or inner ``/`` (anchored to this folder), ``*``,
    ``?``, ``[...]`` and ``**``. Not supported: re-including a file below an
    excluded folder (git does not either), trailing-space escapes.
    """

    def __init__(self, base: str, lines: Iterable[str]) -> None:
        self.base = base
        self.rules: list[_Rule] = []
        for raw in lines:
            line = raw.rstrip("\n\r")
            if not line.strip() or line.startswith("#"):
                continue
            line = line.rstrip(" \t")
            negate = line.startswith("!")
            if negate:
                line = line[1:]
            elif line.startswith("\\"):
                line = line[1:]  # "\#file" / "\!file": literal first character
            dir_only = line.endswith("/")
            line = line.rstrip("/")
            if not line:
                continue
            anchored = "/" in line
            line = line.lstrip("/")
            try:
                self.rules.append(_Rule(_glob_segments(line, anchored), negate, dir_only))
            except re.error as exc:  # e.g. "[z-a]": git ignores such a line too
                log.debug("ignoring bad .gitignore pattern %r in %s: %s", line, base, exc)

    @classmethod
    def load(cls, folder: str) -> GitIgnore | None:
        """Read ``folder/.gitignore``; None if absent, unreadable or empty."""
        path = os.path.join(folder, GITIGNORE)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            return None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            data = os.read(fd, _MAX_GITIGNORE_BYTES)
        except OSError as exc:
            log.debug("cannot read %r: %s", path, exc)
            return None
        finally:
            os.close(fd)
        rules = cls(folder, data.decode("utf-8", errors="surrogateescape").splitlines())
        return rules if rules.rules else None

    def match(self, path: str, is_dir: bool) -> bool | None:
        """True = ignored, False = re-included by ``!``, None = no rule applies."""
        rel = os.path.relpath(path, self.base)
        if os.sep != "/":
            rel = rel.replace(os.sep, "/")
        parts = rel.split("/")
        name = parts[-1]
        for rule in reversed(self.rules):
            if rule.dir_only and not is_dir:
                continue
            if rule.name_match(name) is not None if rule.name_match is not None else rule.matches(parts):
                return not rule.negate
        return None


def _gitignored(chain: list[GitIgnore], path: str, is_dir: bool) -> bool:
    # Deeper .gitignore files take precedence over shallower ones.
    for gi in reversed(chain):
        verdict = gi.match(path, is_dir)
        if verdict is not None:
            return verdict
    return False


# --------------------------------------------------------------------------- exclusions


def _compile_globs(globs: Iterable[str]) -> re.Pattern[str] | None:
    parts = [fnmatch.translate(g) for g in globs if g]
    return re.compile("|".join(parts)) if parts else None


class Exclusions:
    """Which paths are never indexed: defaults, hidden, .gitignore, user globs, marker, data dir.

    ``is_excluded`` is what the watcher calls for event paths; the walk in
    ``scan_root`` applies the same rules incrementally (per folder) for speed.
    """

    def __init__(
        self,
        settings: Settings,
        data_dir: str | os.PathLike[str] | None,
        roots: Iterable[str] | None = None,
    ) -> None:
        self.settings = settings
        self.skip_hidden = settings.skip_hidden
        self.honour_gitignore = settings.honour_gitignore
        self.default_globs = list(DEFAULT_EXCLUDES)
        self.user_globs = [g for g in settings.excludes if g and g.strip()]
        self._default_re = _compile_globs(self.default_globs)
        # User globs without "/" match a name; with "/" they match a full path.
        self._user_name_re = _compile_globs(g for g in self.user_globs if "/" not in g)
        self._user_path_re = _compile_globs(
            os.path.expanduser(g) if g.startswith("~") else g for g in self.user_globs if "/" in g
        )
        # Lodestar's own folders (data directory, model cache): never walked into.
        self.own = own_folders(data_dir)
        self.data_dirs: set[str] = {folder for folder, _what in self.own}
        self.roots = sorted(
            {os.path.abspath(r) for r in (roots if roots is not None else settings.folders)},
            key=len,
            reverse=True,
        )
        self._gitignore_cache: dict[str, tuple[int, GitIgnore | None]] = {}

    # -- name/path rules, shared by the walk and is_excluded

    def name_excluded(self, name: str, path: str, is_dir: bool, hidden_attr: bool = False) -> bool:
        """Rules that look at one entry alone (not at its ancestors' files)."""
        if self.skip_hidden and (name.startswith(".") or hidden_attr):
            return True
        if self._default_re is not None and self._default_re.match(name):
            return True
        if self._user_name_re is not None and self._user_name_re.match(name):
            return True
        if self._user_path_re is not None and self._user_path_re.match(path):
            return True
        return is_dir and path in self.data_dirs

    def _cached_gitignore(self, folder: str) -> GitIgnore | None:
        try:
            mtime = os.lstat(os.path.join(folder, GITIGNORE)).st_mtime_ns
        except OSError:
            self._gitignore_cache.pop(folder, None)
            return None
        hit = self._gitignore_cache.get(folder)
        if hit is not None and hit[0] == mtime:
            return hit[1]
        gi = GitIgnore.load(folder)
        self._gitignore_cache[folder] = (mtime, gi)
        return gi

    def is_excluded(self, path: str, is_dir: bool) -> bool:
        """Whether an (absolute) path, e.g. from a watcher event, must not be indexed.

        Checks every folder between its watched root and the path, so an event
        deep inside ``node_modules`` or under an ignore marker is excluded too.
        Folders above the root do not count (a root may itself be hidden).
        """
        path = os.path.abspath(path)
        if any(is_under(path, d) for d in self.data_dirs):
            return True
        root = root_of(path, self.roots)
        if root is None:
            # Not under a known root: judge the name alone.
            return self.name_excluded(os.path.basename(path), path, is_dir)
        rel_parts = [] if path == root else os.path.relpath(path, root).split(os.sep)
        chain: list[GitIgnore] = []
        current = root
        for i, part in enumerate(rel_parts):
            if os.path.lexists(os.path.join(current, IGNORE_MARKER)):
                return True
            if self.honour_gitignore:
                gi = self._cached_gitignore(current)
                if gi is not None:
                    chain.append(gi)
            child = os.path.join(current, part)
            child_is_dir = is_dir if i == len(rel_parts) - 1 else True
            if self.name_excluded(part, child, child_is_dir):
                return True
            if chain and _gitignored(chain, child, child_is_dir):
                return True
            current = child
        if is_dir and os.path.lexists(os.path.join(path, IGNORE_MARKER)):
            return True
        return False

    def describe(self) -> list[str]:
        """Human-readable summary for ``lodestar status``."""
        lines = [f"default patterns: {', '.join(self.default_globs)}"]
        lines.append("hidden files and folders: skipped" if self.skip_hidden else "hidden files and folders: indexed")
        lines.append(".gitignore files: honoured" if self.honour_gitignore else ".gitignore files: ignored")
        if self.user_globs:
            lines.append(f"your patterns: {', '.join(self.user_globs)}")
        lines.append(f"folders containing a {IGNORE_MARKER} file are skipped with everything inside")
        for d, what in sorted(self.own):
            lines.append(f"{what}: {d}")
        lines.append("symbolic links, FIFOs, sockets and devices are never followed or read")
        return lines


# --------------------------------------------------------------------------- walk


def _report(on_skip: SkipCallback | None, path: str, reason: str) -> None:
    log.debug("skip %r: %s", path, reason)
    if on_skip is not None:
        on_skip(path, reason)


def _special_reason(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "named pipe (FIFO), not read"
    if stat.S_ISSOCK(mode):
        return "socket, not read"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device file, not read"
    return "not a regular file"


def scan_root(
    root: str,
    settings: Settings,
    data_dir: str | os.PathLike[str] | None,
    on_skip: SkipCallback | None = None,
    exclusions: Exclusions | None = None,
    unreadable: dict[str, str] | None = None,
) -> Iterator[FileInfo]:
    """Yield every indexable regular file under ``root`` (depth-first, names sorted).

    Excluded entries are skipped silently (they are the user's intent); symlinks,
    special files and unreadable folders/files are reported via ``on_skip``.

    ``unreadable`` (if given) is filled with ``path -> reason`` for every folder that
    could not be listed and every entry that could not be examined (root included).
    What is below such a path is unknown, not deleted: callers must keep its records.
    A path that merely vanished during the walk is not unreadable: it is gone.
    """
    root = os.path.abspath(os.fsdecode(root))
    excl = exclusions or Exclusions(settings, data_dir, roots=[*settings.folders, root])

    def cannot_read(path: str, what: str, exc: OSError) -> None:
        reason = f"{what}: {exc.strerror or exc}"
        _report(on_skip, path, reason)
        if unreadable is not None and not isinstance(exc, FileNotFoundError):
            unreadable[path] = reason

    try:
        st = os.lstat(root)
    except OSError as exc:
        cannot_read(root, "cannot read folder", exc)
        return
    if not stat.S_ISDIR(st.st_mode):
        _report(on_skip, root, "watched folder is not a folder (or is a symbolic link)")
        return
    if any(is_under(root, d) for d in excl.data_dirs):
        _report(on_skip, root, "Lodestar's own data, never indexed")
        return

    # Each stack entry: (folder, the .gitignore chain that applies inside it).
    stack: list[tuple[str, list[GitIgnore]]] = [(root, _ancestor_gitignores(excl, root))]
    while stack:
        folder, chain = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            cannot_read(folder, "cannot list folder", exc)
            continue
        names = {e.name for e in entries}
        if IGNORE_MARKER in names:
            continue  # the whole tree below is excluded, including this folder's files
        if excl.honour_gitignore and GITIGNORE in names:
            gi = GitIgnore.load(folder)
            if gi is not None:
                chain = [*chain, gi]
        subdirs: list[str] = []
        for entry in entries:
            name = entry.name
            path = entry.path
            try:
                if entry.is_symlink():
                    if not excl.name_excluded(name, path, False):
                        _report(on_skip, path, "symbolic link, not followed")
                    continue
                if entry.is_dir(follow_symlinks=False):
                    # Windows: DirEntry.stat() is free (from FindNextFile) and carries the hidden bit.
                    win_hidden = _IS_WINDOWS and excl.skip_hidden and bool(
                        getattr(entry.stat(follow_symlinks=False), "st_file_attributes", 0) & _FILE_ATTRIBUTE_HIDDEN
                    )
                    if win_hidden or excl.name_excluded(name, path, True) or (chain and _gitignored(chain, path, True)):
                        continue
                    subdirs.append(path)
                    continue
                if excl.name_excluded(name, path, False) or (
                    chain and _gitignored(chain, path, False)
                ):
                    continue
                est = entry.stat(follow_symlinks=False)  # one lstat: size and mtime
            except OSError as exc:
                cannot_read(path, "cannot read", exc)
                continue
            if not stat.S_ISREG(est.st_mode):
                _report(on_skip, path, _special_reason(est.st_mode))
                continue
            if getattr(est, "st_file_attributes", 0) & _FILE_ATTRIBUTE_HIDDEN and excl.skip_hidden:
                continue
            yield FileInfo(path=path, root=root, size=est.st_size, mtime_ns=est.st_mtime_ns, kind=kind_for_name(name))
        # Reverse so that popping visits sub-folders in name order.
        for sub in reversed(subdirs):
            stack.append((sub, chain))


def _ancestor_gitignores(excl: Exclusions, folder: str) -> list[GitIgnore]:
    """.gitignore files between the watched root holding ``folder`` and ``folder``'s parent.

    Rescanning a sub-folder (``sync_paths`` on a folder event) must apply the same
    rules as the full walk, including patterns from .gitignore files above it.
    """
    if not excl.honour_gitignore:
        return []
    # Innermost watched folder that strictly contains ``folder`` (roots are sorted longest first).
    outer = root_of(folder, [r for r in excl.roots if r != folder])
    if outer is None:
        return []
    folders = [outer]
    rel = os.path.relpath(os.path.dirname(folder), outer)
    if rel != ".":
        for part in rel.split(os.sep):
            folders.append(os.path.join(folders[-1], part))
    return [gi for gi in (excl._cached_gitignore(f) for f in folders) if gi is not None]


def stat_file(path: str, root: str) -> FileInfo | None:
    """Stat one path below ``root``; None if missing, not a regular file, or reached via a symlink.

    Every folder between ``root`` and ``path`` is checked with ``lstat`` so a
    symlinked folder inside a root cannot expose files outside it (fail closed).
    """
    path = os.path.abspath(os.fsdecode(path))
    root = os.path.abspath(os.fsdecode(root))
    if path == root or not is_under(path, root):
        return None
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode):
            return None
        parent = os.path.dirname(path)
        while parent != root and len(parent) > len(root):
            if not stat.S_ISDIR(os.lstat(parent).st_mode):
                return None  # a symlinked (or vanished) folder on the way
            parent = os.path.dirname(parent)
    except OSError:
        return None
    return FileInfo(path=path, root=root, size=st.st_size, mtime_ns=st.st_mtime_ns, kind=kind_for_path(path))

