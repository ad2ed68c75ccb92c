"""Share, status, leave: what `lodestar library` and the window's Sharing page do.

Plain functions over a data directory; each storage failure is a `ShareError` with one
line (credentials, bucket, endpoint), and nothing here ever touches the local index.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path
from typing import Any

from indexer.shared.config import (
    CACHE_DIR,
    PRIVACY,
    ShareConfig,
    forget_config,
    load_config,
    load_state,
    save_config,
)
from indexer.shared.publish import PublishReport, ensure_library, publish, publish_lock
from indexer.shared.remote import PartInfo, list_parts
from indexer.shared.target import Bucket, ShareError, parse_uri
from indexer.store.tables import FILES

__all__ = ["PRIVACY", "ShareError", "SharedStatus", "leave", "share", "status", "sync"]


@dataclasses.dataclass
class PartStatus:
    part_id: str
    computer: str
    files: int
    updated_at: float
    reachable: bool
    this_computer: bool = False
    models: dict[str, str] = dataclasses.field(default_factory=dict)
    problem: str = ""


@dataclasses.dataclass
class SharedStatus:
    """Where this data directory's shared library stands (``shared`` False: not part of one)."""

    shared: bool
    uri: str = ""
    computer: str = ""
    part_id: str = ""
    reachable: bool = False
    problem: str = ""  # why the library cannot be reached now ("" when it can)
    last_published: float = 0.0
    publish_problem: str = ""  # why the last publish failed ("" after a success)
    parts: list[PartStatus] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def share(data_dir: str | Path, uri: str, *, computer: str | None = None) -> tuple[ShareConfig, bool]:
    """Make this data directory a part of the library at ``uri`` (creating the library when new).

    Returns the config and whether the library was new. The bucket is checked first:
    wrong credentials, a missing bucket or an unreachable endpoint raise ShareError.
    """
    data_dir = Path(data_dir)
    target = parse_uri(uri)
    current = load_config(data_dir)
    if current is not None and parse_uri(current.uri) != target:
        raise ShareError(f"this data folder is already part of {current.uri}: run `lodestar library leave` first")
    bucket = Bucket(target)
    bucket.check()
    existed = bucket.get_json(target.key("library.json")) is not None
    ensure_library(bucket)
    cfg = current or ShareConfig.new(target.uri, computer)
    if computer and cfg.computer != computer[:64]:
        cfg = dataclasses.replace(cfg, computer=computer[:64])
    save_config(data_dir, cfg)
    return cfg, not existed


def sync(data_dir: str | Path) -> PublishReport:
    """Publish this computer's part now (what changed since the last publish)."""
    return publish(Path(data_dir))


def status(data_dir: str | Path) -> SharedStatus:
    """The library's parts (computer, files, updated, reachable), asked of the bucket now."""
    data_dir = Path(data_dir)
    cfg = load_config(data_dir)
    if cfg is None:
        return SharedStatus(shared=False)
    state = load_state(data_dir)
    out = SharedStatus(shared=True, uri=cfg.uri, computer=cfg.computer, part_id=cfg.part_id,
                       last_published=state.last_ok, publish_problem=state.problem)
    mine = PartStatus(cfg.part_id, cfg.computer, state.files, state.last_ok, False, this_computer=True)
    try:
        bucket = Bucket(parse_uri(cfg.uri))
        parts = list_parts(bucket)
    except ShareError as exc:
        out.problem = str(exc)
        out.parts = [mine]
        return out
    out.reachable = True
    found_mine = False
    for info in parts:
        part = _part_status(bucket, info)
        if info.part_id == cfg.part_id:
            part.this_computer, found_mine = True, True
        out.parts.append(part)
    if not found_mine:
        # The bucket answered: this computer's part is reachable, it just is not there yet
        # (its first publish runs in the background right after `share`).
        mine.reachable = True
        mine.problem = "not published yet" if not state.last_ok else "not on the bucket now: published again at the next sync"
        out.parts.append(mine)
    return out


def _part_status(bucket: Bucket, info: PartInfo) -> PartStatus:
    part = PartStatus(info.part_id, info.computer, info.files, info.updated_at, True, models=dict(info.models))
    try:
        db = bucket.connect(info.part_id, read_consistency_s=60.0)
        if FILES not in _table_names(db):
            # Listed (part.json written at share) but its first publish has not landed yet:
            # the bucket answered, so the part is reachable; it just holds nothing yet.
            part.problem = "nothing published yet"
            return part
        db.open_table(FILES).count_rows()
    except Exception as exc:  # noqa: BLE001 - a part whose tables cannot be read is listed as unreachable
        part.reachable = False
        part.problem = " ".join(str(exc).split())[:160] or type(exc).__name__
    return part


def _table_names(db: Any) -> list[str]:
    listed = db.list_tables()
    return list(getattr(listed, "tables", listed))


def leave(data_dir: str | Path, *, keep_remote: bool = False) -> int:
    """Stop sharing; unless ``keep_remote``, first remove this computer's part from the bucket.

    Returns how many objects were removed. When the bucket cannot be reached the part
    cannot be removed: ShareError says so and nothing changes (``keep_remote`` stops
    sharing anyway, leaving the part for later removal).
    """
    data_dir = Path(data_dir)
    cfg = load_config(data_dir)
    if cfg is None:
        raise ShareError("this data folder is not part of a shared library")
    removed = 0
    with publish_lock(data_dir, wait_s=60.0) as held:
        if not held:
            raise ShareError("this computer is publishing its part right now; try again in a minute")
        if not keep_remote:
            bucket = Bucket(parse_uri(cfg.uri))
            removed = bucket.delete_prefix(bucket.target.part_key(cfg.part_id) + "/")
        forget_config(data_dir)
    shutil.rmtree(data_dir / CACHE_DIR, ignore_errors=True)
    return removed


def describe_age(when: float, now: float | None = None) -> str:
    """"3 min ago" for status lines."""
    if not when:
        return "never"
    s = max(0.0, (now or time.time()) - when)
    if s < 90:
        return f"{int(s)} s ago"
    if s < 5400:
        return f"{int(s // 60)} min ago"
    if s < 172800:
        return f"{int(s // 3600)} h ago"
    return f"{int(s // 86400)} days ago"
