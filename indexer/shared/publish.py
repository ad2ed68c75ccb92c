"""Publishing this computer's part of a shared library from its local index.

The part is a LanceDB database on the bucket with the local store's tables (``files``,
``chunks__<model>``, ``images__<model>``, same schemas), the thumbnails of its images,
and ``part.json`` (computer, models, files, updated_at, generation). Only this computer
writes it (one writer per part: no lock across computers); within this computer a
``shared-publish.lock`` keeps two processes from publishing at once.

What changed since the last publish is found per file row (a digest of each ``files``
row, kept in ``shared-state.json``): a changed file's data rows are replaced and then its
file row upserted, so a search of the part never shows passages of content its file row
does not vouch for (the same live rule as the local index, `indexer.store.read.is_live`);
a file gone from the local index loses its file row first, then its rows and thumbnail.
Progress is saved after every batch, so a publish cut off by an unreachable bucket goes
on where it stopped; a part lost from the bucket (its ``part.json`` missing, or of
another generation) is published again whole.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from indexer.shared.config import (
    PublishState,
    ShareConfig,
    load_config,
    load_state,
    save_state,
)
from indexer.shared.target import Bucket, ShareError, ShareTarget, describe, parse_uri
from indexer.store.tables import FILES

log = logging.getLogger(__name__)

FORMAT = 1
"""The layout of a part (tables as `indexer.store.tables.SCHEMA_VERSION`, plus part.json)."""
BATCH_FILES = 500
LOCK_FILE = "shared-publish.lock"
_DIGEST_COLUMNS = ("path_bytes", "root_bytes", "kind", "size", "mtime_ns", "content_hash", "state", "reason",
                   "text_model", "image_model", "truncated", "title", "n_chunks", "available")


@dataclasses.dataclass
class PublishReport:
    published: int = 0  # files whose rows were (re)sent
    removed: int = 0
    files: int = 0  # files in the part now
    whole: bool = False  # the part was (re)started from nothing
    busy: bool = False  # another process of this computer is publishing
    unchanged: bool = False
    problem: str = ""


@contextlib.contextmanager
def publish_lock(data_dir: Path, wait_s: float = 0.0) -> Iterator[bool]:
    """Held while this computer's part is written (publish, leave); yields False when another
    process held it for ``wait_s``."""
    fd = os.open(Path(data_dir) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(0.1)
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def part_manifest(cfg: ShareConfig, state: PublishState, models: dict[str, str]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "part_id": cfg.part_id,
        "computer": cfg.computer,
        "models": models,
        "files": state.files,
        "generation": state.generation,
        "updated_at": time.time(),
    }


def ensure_library(bucket: Bucket) -> dict[str, Any]:
    """The library's ``library.json`` (written when the library is new); parts are listed, not kept here,
    so computers joining at once never overwrite each other."""
    key = bucket.target.key("library.json")
    found = bucket.get_json(key)
    if found is not None:
        return found
    data = {"format": FORMAT, "created_at": time.time(), "kind": "lodestar shared library",
            "parts": bucket.target.key("parts") + "/"}
    bucket.put_json(key, data)
    return data


def _digest(cols: dict[str, list[Any]], i: int) -> str:
    h = hashlib.blake2b(digest_size=12)
    for name in _DIGEST_COLUMNS:
        h.update(repr(cols[name][i]).encode("utf-8", "backslashreplace"))
        h.update(b"\x00")
    return h.hexdigest()


def _hex_in(fids: list[str]) -> str:
    for f in fids:
        if not (f and all(c in "0123456789abcdef" for c in f) and len(f) <= 64):
            raise ValueError(f"not a hex id: {f!r}")
    return "fid IN (" + ", ".join(f"'{f}'" for f in fids) + ")"


def local_models(local: Any, names: list[str]) -> dict[str, str]:
    """The models whose vectors the local tables hold ({"text": id, "image": id})."""
    out: dict[str, str] = {}
    for name in names:
        if name == FILES:
            continue
        meta = local.open_table(name).schema.metadata or {}
        model = meta.get(b"model_id", b"").decode("utf-8", "replace")
        kind = "text" if name.startswith("chunks__") else "image" if name.startswith("images__") else ""
        if kind and model:
            out.setdefault(kind, model)
    return out


def _table_names(db: Any) -> list[str]:
    result = db.list_tables()
    return list(getattr(result, "tables", result))


def publish(data_dir: str | os.PathLike[str], *, bucket: Bucket | None = None,
            batch_files: int = BATCH_FILES, should_stop: Callable[[], bool] | None = None) -> PublishReport:
    """Bring this computer's part up to date with the local index; never raises for the storage.

    A storage problem is returned (``problem``, one line) and kept in the state for
    `library status`; the next call goes on from what was sent.
    """
    data_dir = Path(data_dir)
    with publish_lock(data_dir) as held:
        if not held:
            return PublishReport(busy=True)
        cfg = load_config(data_dir)  # read under the lock: never publish a part being left
        if cfg is None:
            return PublishReport(problem="this data directory is not part of a shared library")
        state = load_state(data_dir)
        state.last_try = time.time()
        try:
            report = _publish(data_dir, cfg, state, bucket, batch_files, should_stop or (lambda: False))
        except Exception as exc:
            target = parse_uri(cfg.uri)
            report = PublishReport(problem=describe(exc, target, getattr(bucket, "endpoint", None)))
            if not isinstance(exc, ShareError):
                log.debug("publishing to %s failed", target.uri, exc_info=True)
            state.problem = report.problem
        else:
            state.problem = ""
            state.last_ok = time.time()
            report.files = state.files
        if load_config(data_dir) is not None:  # not left meanwhile
            save_state(data_dir, state)
        return report


def _publish(data_dir: Path, cfg: ShareConfig, state: PublishState, bucket: Bucket | None, batch_files: int,
             should_stop: Callable[[], bool]) -> PublishReport:
    import lancedb

    report = PublishReport()
    store_path = data_dir / "index.lance"
    if not store_path.exists():
        store_path.mkdir(mode=0o700, parents=True, exist_ok=True)
    local = lancedb.connect(str(store_path))
    names = sorted(n for n in _table_names(local) if n == FILES or n.startswith(("chunks__", "images__")))
    tables = {n: local.open_table(n) for n in names}
    versions = {n: int(t.version) for n, t in tables.items()}
    bucket = bucket or Bucket(parse_uri(cfg.uri))
    part_key = bucket.target.part_key(cfg.part_id, "part.json")
    part = bucket.get_json(part_key)
    remote = bucket.connect(cfg.part_id)
    models = local_models(local, names)
    if part is None or part.get("generation") != state.generation or not state.generation:
        # New, or lost from the bucket (deleted, or a new bucket of that name): start it whole.
        ensure_library(bucket)
        for name in _table_names(remote):
            remote.drop_table(name)
        fresh = PublishState(generation=uuid.uuid4().hex, last_try=state.last_try)
        state.__dict__.update(dataclasses.asdict(fresh))
        bucket.put_json(part_key, part_manifest(cfg, state, models))
        save_state(data_dir, state)
        report.whole = True
    elif versions == state.versions:
        report.unchanged = True
        return report
    if FILES not in tables:  # nothing indexed yet: an empty part, its files table readable
        from indexer.store.tables import _files_schema

        remote.create_table(FILES, schema=_files_schema(), exist_ok=True)
        state.versions = versions
        bucket.put_json(part_key, part_manifest(cfg, state, models))
        return report
    arrow = tables[FILES].to_arrow()
    cols = {name: arrow.column(name).to_pylist() for name in ("fid", "state", *_DIGEST_COLUMNS)}
    keep = [i for i, s in enumerate(cols["state"]) if s != "removed"]
    digests = {cols["fid"][i]: _digest(cols, i) for i in keep}
    row_of = {cols["fid"][i]: i for i in keep}
    live = {cols["fid"][i]: cols["content_hash"][i] or "" for i in keep if cols["state"][i] == "indexed"}
    changed = [f for f, d in digests.items() if state.rows.get(f) != d]
    gone = [f for f in state.rows if f not in digests]
    data_names = [n for n in names if n != FILES]
    remote_tables: dict[str, Any] = {}

    def remote_table(name: str) -> Any:
        if name not in remote_tables:
            remote_tables[name] = remote.create_table(name, schema=tables[name].schema, exist_ok=True)
        return remote_tables[name]

    thumbs_dir = data_dir / "thumbnails"
    for start in range(0, len(changed), batch_files):
        if should_stop():
            raise ShareError("publishing was stopped; it goes on at the next sync")
        batch = changed[start:start + batch_files]
        where = _hex_in(batch)
        new_thumbs: dict[str, str] = {}
        for name in data_names:
            rows = tables[name].search().where(where).limit(None).to_arrow()
            if rows.num_rows:
                ok = [i for i, (f, h) in enumerate(zip(rows.column("fid").to_pylist(), rows.column("file_hash").to_pylist()))
                      if live.get(f) == h]
                rows = rows.take(ok)
            target = remote_table(name)
            target.delete(where)  # old content, and what a cut-off try left
            if rows.num_rows:
                target.add(rows)
            if name.startswith("images__") and rows.num_rows:
                for fid, thumb in zip(rows.column("fid").to_pylist(), rows.column("thumb").to_pylist()):
                    if thumb and state.thumbs.get(fid) != thumb:
                        _upload_thumb(bucket, cfg, thumbs_dir, thumb)
                    if thumb:
                        new_thumbs[fid] = thumb
        idx = [row_of[f] for f in batch]
        remote_table(FILES).merge_insert("fid").when_matched_update_all().when_not_matched_insert_all().execute(
            arrow.take(idx))
        stale = [state.thumbs[f] for f in batch if f in state.thumbs and state.thumbs[f] != new_thumbs.get(f)]
        for f in batch:
            state.rows[f] = digests[f]
            if f in new_thumbs:
                state.thumbs[f] = new_thumbs[f]
            else:
                state.thumbs.pop(f, None)
        _drop_thumbs(bucket, cfg, state, stale)
        state.files = len(state.rows)
        save_state(data_dir, state)
        report.published += len(batch)
    for start in range(0, len(gone), batch_files):
        batch = gone[start:start + batch_files]
        where = _hex_in(batch)
        remote_table(FILES).delete(where)  # the file row first: its rows are never shown after
        for name in data_names:
            remote_table(name).delete(where)
        stale = [state.thumbs.pop(f) for f in batch if f in state.thumbs]
        for f in batch:
            state.rows.pop(f, None)
        _drop_thumbs(bucket, cfg, state, stale)
        state.files = len(state.rows)
        save_state(data_dir, state)
        report.removed += len(batch)
    if changed or gone or report.whole:
        remote_table(FILES)  # an empty library still has its files table
        from indexer.store.ann import ensure_vector_index
        from indexer.store.fts import ensure_fts_index

        for name in data_names:
            if name not in remote_tables:
                continue
            try:
                if name.startswith("chunks__"):
                    ensure_fts_index(remote_tables[name])
                # Past the local store's size for exact ranking, readers query the part's ANN index.
                ensure_vector_index(remote_tables[name])
            except Exception as exc:  # noqa: BLE001 - readers scan the part flat meanwhile
                log.info("an index of the shared part was not built: %s", exc)
    state.versions = versions
    state.files = len(state.rows)
    bucket.put_json(part_key, part_manifest(cfg, state, models))
    return report


def _upload_thumb(bucket: Bucket, cfg: ShareConfig, folder: Path, thumb: str) -> None:
    if "/" in thumb or thumb.startswith("."):
        return
    try:
        body = (folder / thumb).read_bytes()
    except OSError:
        return  # gone since (a re-index): the part's row shows without a picture
    bucket.put_bytes(bucket.target.part_key(cfg.part_id, "thumbnails", thumb), body, "image/png")


def _drop_thumbs(bucket: Bucket, cfg: ShareConfig, state: PublishState, names: list[str]) -> None:
    used = set(state.thumbs.values())
    unused = sorted({n for n in names if n not in used})
    if unused:
        bucket.delete_keys([bucket.target.part_key(cfg.part_id, "thumbnails", n) for n in unused])


def target_of(cfg: ShareConfig) -> ShareTarget:
    return parse_uri(cfg.uri)


class PublishLoop:
    """Publishes in the background: after the index changes (`poke`) and every ``interval_s``;
    after a failure it waits longer each time (up to ``max_backoff_s``) and then catches up."""

    def __init__(self, data_dir: str | os.PathLike[str], *, interval_s: float = 30.0, min_gap_s: float = 2.0,
                 first_backoff_s: float = 5.0, max_backoff_s: float = 300.0,
                 on_report: Callable[[PublishReport], None] | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.interval_s = interval_s
        self.min_gap_s = min_gap_s
        self.first_backoff_s = first_backoff_s
        self.max_backoff_s = max_backoff_s
        self.on_report = on_report
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last: PublishReport | None = None
        self.failures = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="lodestar-share-publish", daemon=True)
            self._thread.start()

    def poke(self) -> None:
        """The local index changed: publish soon."""
        self._wake.set()

    def stop(self, timeout: float = 15.0) -> bool:
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _run(self) -> None:
        wait, backoff = 0.0, False
        while not self._stop.is_set():
            if backoff:
                self._stop.wait(wait)  # the bucket is down: a change does not cut the wait short
            elif wait:
                self._wake.wait(wait)
            self._wake.clear()
            if self._stop.is_set():
                return
            if load_config(self.data_dir) is None:
                wait, backoff = self.interval_s, False  # left the shared library: nothing to publish
                continue
            try:
                report = publish(self.data_dir, should_stop=self._stop.is_set)
            except Exception:  # a bug: logged with its traceback, and the loop goes on
                log.exception("publishing the shared part failed")
                report = PublishReport(problem="publishing failed; see the log")
            if report.problem and not self._stop.is_set():
                self.failures += 1
                wait, backoff = min(self.max_backoff_s, self.first_backoff_s * 2 ** (self.failures - 1)), True
                if self.failures == 1:
                    log.warning("shared library: %s; retrying in the background", report.problem)
            else:
                if self.failures:
                    log.warning("shared library reachable again: this computer's part is caught up")
                self.failures = 0
                wait, backoff = self.interval_s, False
            self.last = report  # after the failure count: whoever reads both sees them agree
            if self.on_report is not None:
                self.on_report(report)
            if not backoff:
                self._stop.wait(self.min_gap_s)  # a change meanwhile is published after the gap
