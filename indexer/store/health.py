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

Damage that leaves every file readable is caught later (issue 11, items 6 and 13):

- *Damaged vectors* (bytes overwritten inside a data file: NaN, 1e37, non-unit rows).
  Searches never rank such rows and note their files (`Store.note_damaged`);
  `verify_vectors` reads every row of the vector tables in batches (0.3-1.2 s per
  100k 384-d rows with their text on a busy 2-core machine), run by the writer at its first reconcile
  (`repair_live`). Noted files are marked ``pending`` with a zero mtime so the
  reconcile re-embeds them instead of calling them unchanged; a fragment that cannot
  be read at all is dropped and its files re-indexed, as after a rollback.
- *A missing or unreadable keyword or ANN index* (its ``_indices`` folder deleted):
  the start-up check reports it, searches leave that lane out (keyword matches off;
  exact vector ranking instead of the ANN index) and the writer rebuilds it.
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

from indexer.library.settings import AppPaths, as_number, read_json
from indexer.wording import plural

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
    damaged_files: int = 0  # files whose stored vectors are damaged (NaN, huge, not unit length)
    damaged_queued: bool = False  # ...and they were marked for re-indexing (by the writer)
    index_problems: list[str] = dataclasses.field(default_factory=list)  # unusable keyword/ANN indexes
    indexes_rebuilt: bool = False  # ...and the writer rebuilt them
    elapsed_s: float = 0.0
    checked_at: float = 0.0

    @property
    def message(self) -> str:
        if self.ok:
            return ""
        extra = self._later_damage()
        if extra and not (self.rebuilt or self.repaired or self.repair_deferred):
            return extra
        main = self._store_message()
        return f"{main} {extra}" if extra else main

    def _later_damage(self) -> str:
        """Damaged vectors and unusable indexes: what was found and what happens about it."""
        parts = []
        if self.damaged_files:
            n = self.damaged_files
            files = f"{n} file{'s' if n != 1 else ''}"
            if self.damaged_queued:
                parts.append(f"Damaged vectors were found for {files} in the index; they were queued for re-indexing and are left out of search until then.")
            else:
                parts.append(
                    f"Damaged vectors were found for {files} in the index; they are left out of search and "
                    "re-indexed by the process that writes the index."
                )
        if self.index_problems:
            what = "; ".join(self.index_problems[:2])
            if self.indexes_rebuilt:
                parts.append(f"An index could not be used ({what}) and was rebuilt.")
            else:
                parts.append(
                    f"An index could not be used ({what}); searches work without it (keyword matches are off "
                    "if it is the keyword index) until the process that writes the index rebuilds it."
                )
        return " ".join(parts)

    def _store_message(self) -> str:
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


def _written_by_newer(store: Path) -> bool:
    import lance

    from indexer.store.tables import SCHEMA_VERSION, schema_version_of

    try:
        return schema_version_of(lance.dataset(str(store / f"{_FILES_TABLE}.lance"))) > SCHEMA_VERSION
    except Exception:  # noqa: BLE001 - unreadable: the probes below judge it
        return False


def _table_dirs(store: Path) -> list[Path]:
    try:
        return sorted(p for p in store.iterdir() if p.is_dir() and p.name.endswith(".lance"))
    except OSError:
        return []


# ---------------------------------------------------------------------- repairing


def _can_repair(paths: AppPaths) -> bool:
    """Whether this process may change the store: it holds, or can take, the writer lock."""
    from indexer.errors import WriterBusy
    from indexer.library.writer_lock import WriterLock

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

    from indexer.store.tables import _hex_list  # the only place predicates are built (hex ids only)

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
    except Exception as exc:
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
    if not store.exists() or _written_by_newer(store):
        return  # a newer Lodestar's index is never "repaired": opening it says so (StoreTooNew)
    tables = _table_dirs(store)
    broken = {t: why for t in tables if (why := probe_table(t)) is not None}
    if not broken:
        _later_damage(paths, tables, report)
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


# ------------------------------------------------- damage inside readable files


REINDEX_REASON = "re-indexing: its stored vectors were damaged"
DEEP_BATCH_ROWS = 16_384
"""Rows per batch of the deep check: ~25 MB of 384-d vectors at a time."""


@dataclasses.dataclass
class VectorCheck:
    """What `verify_vectors` found."""

    rows: int = 0
    damaged: dict[str, str] = dataclasses.field(default_factory=dict)  # fid -> table with a damaged row of it
    unreadable: dict[str, list[int]] = dataclasses.field(default_factory=dict)  # table -> fragment ids
    problems: list[str] = dataclasses.field(default_factory=list)
    elapsed_s: float = 0.0


def verify_vectors(store: Path, *, batch_rows: int = DEEP_BATCH_ROWS) -> VectorCheck:
    """Read every row of every vector table, a batch at a time (the deep check).

    A row whose vector is not finite or not of unit length was damaged on disk
    (vectors are L2-normalised at write); a fragment that fails to decode is
    unreadable. Every column is read, so a damaged text page is caught too.
    Measured on 100k 384-d rows with ~400 bytes of text each (2-core machine shared with
    other work, warm cache): 0.3-1.2 s, nearly all of it reading; the vector test itself
    (`sane_rows`) takes ~20 ms.
    """
    import lance
    import numpy as np

    from indexer.store.tables import sane_rows

    started = time.monotonic()
    check = VectorCheck()
    for tdir in _table_dirs(store):
        name = tdir.stem
        if not name.startswith(("chunks__", "images__")):
            continue
        try:
            fragments = lance.dataset(str(tdir)).get_fragments()
        except Exception as exc:  # noqa: BLE001 - the start-up probe repairs an unopenable table
            check.problems.append(f"{name}: {_short(exc)}")
            continue
        bad = 0
        for frag in fragments:
            try:
                for rb in frag.to_batches(batch_size=batch_rows):
                    n = rb.num_rows
                    if not n:
                        continue
                    check.rows += n
                    flat = np.asarray(rb.column("vector").flatten().to_numpy(zero_copy_only=False), np.float32)
                    ok = sane_rows(flat.reshape(n, -1))
                    if not ok.all():
                        fids = rb.column("fid").to_pylist()
                        for i in np.flatnonzero(~ok):
                            check.damaged.setdefault(str(fids[i]), name)
                        bad += int((~ok).sum())
            except Exception as exc:  # noqa: BLE001 - lance reports undecodable pages as RuntimeError/OSError alike
                check.unreadable.setdefault(name, []).append(frag.fragment_id)
                check.problems.append(f"{name}: a data file cannot be read ({_short(exc)})")
        if bad:
            check.problems.append(f"{name}: {bad} damaged vector{'s' if bad != 1 else ''}")
    check.elapsed_s = time.monotonic() - started
    log.info("deep index check: %d rows in %.2fs, %d damaged files, %d unreadable fragments",
             check.rows, check.elapsed_s, len(check.damaged), sum(map(len, check.unreadable.values())))
    return check


def _index_problems(tables: list[Path]) -> list[str]:
    """Indexes that a vector table's manifest lists but whose files are gone (cheap: no index is opened)."""
    import lance

    out = []
    for tdir in tables:
        if not tdir.stem.startswith(("chunks__", "images__")):
            continue
        try:
            listed = lance.dataset(str(tdir)).describe_indices()
        except Exception as exc:  # noqa: BLE001 - the table probe already judged the table itself
            log.debug("cannot list indices of %s: %s", tdir, exc)
            continue
        for ix in listed:
            for segment in ix.segments:
                folder = tdir / "_indices" / str(segment.uuid)
                try:
                    present = any(folder.iterdir())
                except OSError:
                    present = False
                if not present:
                    kind = "keyword index" if str(ix.index_type).lower() in ("inverted", "fts") else "vector index"
                    out.append(f"{kind} of {tdir.stem}: its files are missing")
                    break
    return out


def _later_damage(paths: AppPaths, tables: list[Path], report: HealthReport) -> None:
    """Start-up: report damaged vectors noted by searches and unusable indexes (the writer repairs)."""
    from indexer.store.tables import read_damaged_notes

    fids = {f for _p, data in read_damaged_notes(paths.data_dir) for f in data["fids"]}
    if fids:
        report.ok = False
        report.damaged_files = len(fids)
        report.problems.append(f"damaged vectors for {len(fids)} files")
    problems = _index_problems(tables)
    if problems:
        report.ok = False
        report.index_problems.extend(problems)
        report.problems.extend(problems)


def repair_live(
    store: Any, paths: AppPaths, *, deep: bool = False, open_indexes: bool = False
) -> tuple[HealthReport, list[str]]:
    """Writer only, before a sync or reconcile: queue damaged files, rebuild unusable indexes.

    ``deep`` also runs `verify_vectors`; ``open_indexes`` runs a tiny query through
    each index (otherwise only their files are looked for: a sync stays cheap). Returns the report (saved for `lodestar
    status` when something was found) and the paths of the files queued for
    re-indexing. Never raises: a failed check must not stop indexing.
    """
    started = time.monotonic()
    report = HealthReport(checked_at=time.time())
    resync: list[str] = []
    try:
        resync = _repair_live(store, report, deep, open_indexes)
    except Exception as exc:
        log.exception("index check during indexing failed")
        report.ok = False
        report.problems.append(f"check failed: {_short(exc)}")
    report.elapsed_s = time.monotonic() - started
    if not report.ok:
        log.warning("index check: %s (%s)", report.message, "; ".join(report.actions) or "no action")
        _save(paths, report)
    return report, resync


def _repair_live(store: Any, report: HealthReport, deep: bool, open_indexes: bool) -> list[str]:
    from indexer.store.ann import ensure_indexes, vector_index_problem
    from indexer.store.fts import fts_problem

    if store.schema_outdated:  # written by an older Lodestar: migrated, or rebuilt from here on
        report.actions.append(store.upgrade_schema())
    damaged: dict[str, str] = {}
    if deep:
        check = verify_vectors(store.path)
        damaged.update(check.damaged)
        report.problems.extend(check.problems)
        for name, fragments in check.unreadable.items():
            store.drop_fragments(name, fragments)
            report.actions.append(f"{name}: dropped {plural(len(fragments), 'unreadable data file')}")
        if check.unreadable:
            _mark_lost_files(store.path, report)  # their files go back to pending, as after a rollback
            store.refresh()
    damaged.update(store.take_damaged())
    files = store.files()
    known = [f for f in damaged if f in files]
    if known:
        marked = store.mark_for_reindex(known, REINDEX_REASON)
        report.actions.append(f"marked {marked} files with damaged vectors for re-indexing")
    lost = report.reindex
    if known or lost:
        report.ok = False
        report.damaged_files = len(known) + lost
        report.damaged_queued = True
        if not any("damaged" in p for p in report.problems):
            report.problems.append(f"damaged vectors for {len(known)} files")
    resync = [files[f].path for f in known]
    text_tables, images = store.chunk_tables(), store.images_table()  # every text model's
    problems = [f"keyword index of {t.name}: {why}" for t in text_tables if (why := fts_problem(t, open_it=open_indexes))]
    problems += [
        f"vector index of {t.name}: {why}"
        for t in (*text_tables, images)
        if (why := vector_index_problem(t, open_it=open_indexes))
    ]
    if problems:
        report.ok = False
        report.index_problems.extend(problems)
        report.problems.extend(problems)
        built = ensure_indexes(store)
        report.actions.append(f"rebuilt {', '.join(built.fts_built + built.ann_built) or 'nothing'}")
        still = [why for t in text_tables if (why := fts_problem(t, open_it=True))]
        still += [why for t in (*text_tables, images) if (why := vector_index_problem(t, open_it=True))]
        report.indexes_rebuilt = not still
    return resync


def last_report(paths: AppPaths) -> dict[str, Any] | None:
    """The last repair (or deferred repair) recorded by any process, for `lodestar status`."""
    data = read_json(paths.data_dir / HEALTH_FILE)
    if not isinstance(data, dict):
        return None
    # Damaged fields read as absent: status shows no stale or garbled date or message.
    data["checked_at"] = as_number(data.get("checked_at"), 0, 1e11)
    if not isinstance(data.get("message"), str):
        data["message"] = ""
    return data


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
