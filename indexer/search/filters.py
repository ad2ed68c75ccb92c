"""Which files may appear in results: the window's or CLI's filters merged with query operators.

`FileFilter` is a plain description with its acceptance rule on file records; it is
the `indexer.store.read.FileScope` search hands the store reader, which turns a
narrow one into a prefilter.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from typing import Any

from indexer.paths import is_under
from indexer.search.names import NAME_WORDS
from indexer.search.query import ParsedQuery, contains_phrase
from indexer.store.tables import FileRecord


@dataclasses.dataclass
class FileFilter:
    """Which files may appear: filters from the window/CLI merged with query operators."""

    folder: str = ""  # absolute folder prefix (window / --in)
    fragments: list[str] = dataclasses.field(default_factory=list)  # in:Name or in:a/b
    exts: list[str] = dataclasses.field(default_factory=list)
    after: float | None = None  # unix time, inclusive
    before: float | None = None  # unix time, exclusive
    kind: str = "all"
    exclude_fids: set[str] = dataclasses.field(default_factory=set)
    excludes: list[str] = dataclasses.field(default_factory=list)  # -word / -"phrase": never in the name or title

    @classmethod
    def build(cls, parsed: ParsedQuery, filters: dict[str, Any] | None, kind: str) -> FileFilter:
        f = filters or {}
        out = cls(kind=kind)
        if f.get("folder"):
            out.folder = os.path.abspath(os.path.expanduser(str(f["folder"])))
        out.fragments = [x for x in parsed.folders if x]
        exts = f.get("ext") or []
        if isinstance(exts, str):
            exts = [exts]
        out.exts = sorted({e.lower().lstrip(".") for e in [*exts, *parsed.exts] if e})
        after = [d for d in (f.get("after"), parsed.after) if d]
        before = [d for d in (f.get("before"), parsed.before) if d]
        if after:
            out.after = _day_start(max(after))
        if before:
            out.before = _day_start(min(before))
        out.excludes = list(parsed.excludes)
        return out

    @property
    def narrows(self) -> bool:
        """Folder, type or date: may leave few files (the store reader then prefilters by fid)."""
        return bool(self.folder or self.fragments or self.exts or self.after is not None or self.before is not None)

    @property
    def active(self) -> bool:
        """Whether any file is refused (a per-row check is needed)."""
        return self.narrows or bool(self.exclude_fids or self.excludes)

    def key(self) -> tuple[Any, ...]:
        return (self.folder, tuple(self.fragments), tuple(self.exts), self.after, self.before,
                tuple(sorted(self.exclude_fids)), tuple(self.excludes))

    def accepts(self, rec: FileRecord) -> bool:
        """Whether this file may appear (plain Python on its record; no store access)."""
        if rec.fid in self.exclude_fids:
            return False
        if self.excludes:
            # As name matching reads names: quarterly_forecast_model.bin and
            # QuarterlyForecast.xlsx both have the word "forecast".
            name_text = rec.name + " " + rec.title
            name_words = " ".join(NAME_WORDS.findall(name_text))
            if any(contains_phrase(name_text, x) or contains_phrase(name_words, x) for x in self.excludes):
                return False
        if self.folder and not is_under(rec.path, self.folder):
            return False
        if self.fragments and not all(_in_folder(rec.path, frag) for frag in self.fragments):
            return False
        if self.exts and rec.ext not in self.exts:
            return False
        mtime = rec.mtime_ns / 1e9
        if self.after is not None and mtime < self.after:
            return False
        if self.before is not None and mtime >= self.before:
            return False
        return True


def _in_folder(path: str, fragment: str) -> bool:
    """``in:Projects`` matches a folder named so; ``in:work/2025`` a run of folder names."""
    folder = os.path.dirname(path).lower()
    frag = fragment.strip().strip("/\\").lower().replace("\\", "/")
    if not frag:
        return True
    parts = folder.replace("\\", "/").split("/")
    want = frag.split("/")
    n = len(want)
    return any(parts[i : i + n] == want for i in range(len(parts) - n + 1))


def _day_start(day: dt.date) -> float:
    """Local midnight of ``day`` as unix time, for any date Python has (0001-01-01 included)."""
    try:
        return dt.datetime.combine(day, dt.time.min).timestamp()
    except (OverflowError, OSError, ValueError):
        # Past what the platform's local-time functions handle (year 1, 9999-12-31 east
        # of UTC, before 1970 on Windows): ignoring the time zone there moves the bound
        # by hours, centuries from any file's modification time.
        return (day - dt.date(1970, 1, 1)).days * 86400.0
