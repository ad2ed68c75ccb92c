"""Store self-check and self-healing, run once when a process first opens the store.

Promise 2 (RELIABILITY.md §3): an index damaged by power loss or disk trouble is
detected at start, rolled back to its last good version or rebuilt, and the
person is told so. Lodestar never crash-loops on it and never asks anyone to
delete folders by hand.

How it works, per table folder ``index.lance/<name>.lance``:

1. *Probe* the latest version: open it, count rows and scan one column of every
   fragment (a deleted or unreadable data file fails the scan, not only the count).
2. If that fails, probe older versions, newest first. The first good one wins:
   the manifests newer than it are moved aside, so it becomes the latest version
   (a fallback, L3b). Files whose rows were lost in the fallback are marked
   ``pending`` so the next reconcile re-indexes them.
3. If no version of the ``files`` table is readable, the whole store is moved aside
   to ``index.lance.damaged-<timestamp>`` (only the newest such copy is kept) and an
   empty one is created; the next reconcile rebuilds it. An unreadable vector table
   is moved aside alone.

Repairs only happen in the process that is (or can become) the writer; a reader
that finds damage only reports it, so it never pulls a store from under the writer.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from indexer.config import AppPaths

log = logging.getLogger(__name__)

DAMAGED_PREFIX = "index.lance.damaged-"
HEALTH_FILE = "health.json"
_V2_OFFSET = (1 << 64) - 1  # Lance "V2" manifest names are u64::MAX - version
_FILES_TABLE = "files"


@dataclasses.dataclass
class HealthReport:
    """What the start-up check found and did; ``message`` is for the person."""

    ok: bool = True  # the store was healthy as found (or did not exist yet)
    repaired: bool = False  # rolled back to an earlier good version
    rebuilt: bool = False  # moved aside and recreated empty
    repair_deferred: bool = False  # damaged, but another process is the writer
    damaged_copy: str = ""  # where the damaged store or manifests were moved
    problems: list[str] = dataclasses.field(default_factory=list)  # what was wrong (technical)
    actions: list[str] = dataclasses.field(default_factory=list)  # what was done
    reindex: int = 0  # files marked for re-indexing after a fallback
    elapsed_s: float = 0.0
    checked_at: float = 0.0

    @property
    def message(self) -> str:
        if self.ok:
            return ""
        if self.rebuilt:
            return (
                "The index could not be read (" + "; ".join(self.problems[:2]) + "). It was moved aside to "
                f"{self.damaged_copy} and is being rebuilt from your folders; search fills up again as files are re-indexed."
            )
        if self.repaired:
            extra = f" {self.reindex} file{'s' if self.reindex != 1 else ''} will be re-indexed." if self.reindex else ""
            return (
                "The index was damaged (" + "; ".join(self.problems[:2]) + ") and was rolled back to its last good "
                f"version.{extra}"
            )
        if self.repair_deferred:
            return (
                "The index looks damaged (" + "; ".join(self.problems[:2]) + "); the process that writes the index "
                "repairs it when it next starts."
            )
        return "The index had a problem: " + "; ".join(self.problems[:2])

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["message"] = self.message
        return data


# ---------------------------------------------------------------------- probing


def _manifest_versions(table_dir: Path) -> list[int]:
    """Versions that have a manifest file, newest first (works without opening the table)."""
    versions = []
    try:
        entries = list(os.scandir(table_dir / "_versions"))
    except OSError:
        return []
    for entry in entries:
        stem, dot, ext = entry.name.rpartition(".")
        if ext != "manifest" or not stem.isdigit():
            continue
        n = int(stem)
        versions.append(_V2_OFFSET - n if n > (1 << 63) else n)
    return sorted(set(versions), reverse=True)


def _manifest_path(table_dir: Path, version: int) -> Path | None:
    for name in (f"{_V2_OFFSET - version}.manifest", f"{version}.manifest"):
        p = table_dir / "_versions" / name
        if p.exists():
            return p
    return None


def probe_table(table_dir: Path, version: int | None = None) -> str | None:
    """None if the table (at ``version``, default latest) reads fully, else why not."""
    import lance

    try:
        ds = lance.dataset(str(table_dir), version=version)
        n = ds.count_rows()
        cols = ds.schema.names[:1]
        # Reading one column of every fragment opens every data file: a count alone
        # comes from the manifest and would miss a deleted file.
        scanned = ds.to_table(columns=cols).num_rows if cols else n
        if scanned != n:
            return f"{table_dir.name}: {scanned} rows readable of {n}"
    except Exception as exc:  # noqa: BLE001 - lance reports damage as RuntimeError/ValueError/OSError alike
        return f"{table_dir.stem}: {_short(exc)}"
    return None


def _table_dirs(store: Path) -> list[Path]:
    try:
        return sorted(p for p in store.iterdir() if p.is_dir() and p.name.endswith(".lance"))
    except OSError:
        return []


# ---------------------------------------------------------------------- repairing


def _can_repair(paths: AppPaths) -> bool:
    """Whether this process may change the store: it holds, or can take, the writer lock."""
    from indexer.errors import WriterBusy
    from indexer.writer_lock import WriterLock

    lock = WriterLock(paths, command="lodestar (index check)")
    try:
        lock.acquire(wait=False)
    except WriterBusy as exc:
        holder = getattr(exc, "holder", None) or {}
        # flock conflicts with our own other descriptor too: this process may be the writer.
        return holder.get("pid") == os.getpid()
    except OSError as exc:
        log.warning("cannot check the writer lock (%s); repairing anyway", exc)
        return True
    lock.release()
    return True


def _damaged_dir(paths: AppPaths) -> Path:
    """A fresh ``index.lance.damaged-<timestamp>`` folder; older ones are deleted (keep one)."""
    for old in paths.data_dir.glob(DAMAGED_PREFIX + "*"):
        shutil.rmtree(old, ignore_errors=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = paths.data_dir / f"{DAMAGED_PREFIX}{stamp}"
    n = 1
    while target.exists():
        n += 1
        target = paths.data_dir / f"{DAMAGED_PREFIX}{stamp}-{n}"
    return target


def _roll_back(table_dir: Path, report: HealthReport, aside: Path) -> bool:
    """Make the newest readable version the latest one; False if there is none."""
    versions = _manifest_versions(table_dir)
    for good in versions[1:] if versions else []:
        if probe_table(table_dir, good) is not None:
            continue
        quarantine = aside / table_dir.name / "_versions"
        quarantine.mkdir(parents=True, exist_ok=True)
        for v in versions:
            if v <= good:
                break
            mp = _manifest_path(table_dir, v)
            if mp is not None:
                shutil.move(str(mp), str(quarantine / mp.name))
        hint = table_dir / "_versions" / "latest_version_hint.json"
        if hint.exists():
            shutil.move(str(hint), str(quarantine / hint.name))
        if probe_table(table_dir) is None:
            report.actions.append(f"{table_dir.stem}: rolled back from version {versions[0]} to {good}")
            return True
    return False


def _mark_lost_files(store: Path, report: HealthReport) -> None:
    """After a fallback: files marked indexed whose rows are missing go back to pending."""
    import lance

    files_dir = store / f"{_FILES_TABLE}.lance"
    files = lance.dataset(str(files_dir)).to_table(columns=["fid", "kind", "state", "content_hash", "n_chunks"]).to_pylist()
    text_rows: dict[tuple[str, str], set[int]] = {}
    image_rows: set[tuple[str, str]] = set()
    for tdir in _table_dirs(store):
        name = tdir.stem
        if name.startswith("chunks__"):
            for r in lance.dataset(str(tdir)).to_table(columns=["fid", "file_hash", "ord"]).to_pylist():
                text_rows.setdefault((r["fid"], r["file_hash"]), set()).add(r["ord"])
        elif name.startswith("images__"):
            for r in lance.dataset(str(tdir)).to_table(columns=["fid", "file_hash"]).to_pylist():
                image_rows.add((r["fid"], r["file_hash"]))
    lost = []
    for f in files:
        if f["state"] != "indexed":
            continue
        key = (f["fid"], f["content_hash"])
        if f["kind"] == "text" and text_rows.get(key, set()) != set(range(f["n_chunks"] or 0)):
            lost.append(f["fid"])
        elif f["kind"] == "image" and key not in image_rows:
            lost.append(f["fid"])
    if not lost:
        return
    import lancedb

    from indexer.store import _hex_list  # the only place predicates are built (hex ids only)

    table = lancedb.connect(str(store)).open_table(_FILES_TABLE)
    for i in range(0, len(lost), 500):
        table.update(
            where=f"fid IN ({_hex_list(lost[i:i + 500])})",
            values={"state": "pending", "reason": "re-indexing after the index was repaired", "mtime_ns": 0},
        )
    report.reindex = len(lost)
    report.actions.append(f"marked {len(lost)} files for re-indexing")


def _move_store_aside(paths: AppPaths, report: HealthReport) -> None:
    aside = _damaged_dir(paths)
    shutil.move(str(paths.store), str(aside))
    paths.store.mkdir(mode=0o700)
    report.rebuilt = True
    report.damaged_copy = str(aside)
    report.actions.append(f"moved the damaged index to {aside}; it will be rebuilt")


def check_and_heal(paths: AppPaths, *, repair: bool | None = None) -> HealthReport:
    """Check the store under ``paths``; roll back or rebuild it if damaged. Never raises.

    ``repair``: None = repair only if this process is or can become the writer.
    """
    started = time.monotonic()
    report = HealthReport(checked_at=time.time())
    store = paths.store
    try:
        _check(paths, store, report, repair)
    except Exception as exc:  # noqa: BLE001 - a failed check must never stop the app; rebuild instead
        log.exception("index check failed")
        report.ok = False
        report.problems.append(f"check failed: {_short(exc)}")
        if repair is not False and store.exists() and not report.rebuilt:
            try:
                _move_store_aside(paths, report)
            except OSError as move_exc:
                report.problems.append(f"cannot move the index aside: {move_exc}")
    report.elapsed_s = time.monotonic() - started
    if not report.ok:
        log.warning("index check: %s (%s)", report.message, "; ".join(report.actions) or "no action")
        _save(paths, report)
    else:
        log.debug("index check: healthy (%.2fs)", report.elapsed_s)
    return report


def _check(paths: AppPaths, store: Path, report: HealthReport, repair: bool | None) -> None:
    if not store.exists():
        return
    tables = _table_dirs(store)
    broken = {t: why for t in tables if (why := probe_table(t)) is not None}
    if not broken:
        return
    report.ok = False
    report.problems.extend(broken.values())
    if repair is None:
        repair = _can_repair(paths)
    if not repair:
        report.repair_deferred = True
        return
    aside = _damaged_dir(paths)
    rolled_back = False
    for table_dir in broken:
        if _roll_back(table_dir, report, aside):
            rolled_back = True
            continue
        if table_dir.stem == _FILES_TABLE:
            shutil.rmtree(aside, ignore_errors=True)  # the whole store goes aside instead
            _move_store_aside(paths, report)
            return
        # A vector table with no readable version: move it alone; its files are re-indexed.
        aside.mkdir(parents=True, exist_ok=True)
        shutil.move(str(table_dir), str(aside / table_dir.name))
        report.actions.append(f"moved unreadable table {table_dir.stem} aside")
        rolled_back = True
    if aside.exists():
        report.damaged_copy = str(aside)
    # A table that still fails after all this means something we do not understand: rebuild.
    still = [why for t in _table_dirs(store) if (why := probe_table(t)) is not None]
    if still:
        report.problems.extend(still)
        shutil.rmtree(aside, ignore_errors=True)
        _move_store_aside(paths, report)
        return
    report.repaired = rolled_back
    _mark_lost_files(store, report)


def last_report(paths: AppPaths) -> dict[str, Any] | None:
    """The last repair (or deferred repair) recorded by any process, for `lodestar status`."""
    try:
        data = json.loads((paths.data_dir / HEALTH_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _save(paths: AppPaths, report: HealthReport) -> None:
    target = paths.data_dir / HEALTH_FILE
    tmp = target.with_name(f".{HEALTH_FILE}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(report.to_dict(), fh)
        os.replace(tmp, target)
    except OSError as exc:
        log.warning("cannot record the index check in %s: %s", target, exc)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
