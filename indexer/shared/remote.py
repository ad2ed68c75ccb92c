"""Other computers' parts, read-only: their manifests and a `Store` over each part's tables.

`RemoteStore` is the local `Store` opened on the part's LanceDB database on the bucket
(same tables, same live rule), so a `Searcher` over it ranks exactly as the local one
does and scores of both are on one scale. It never writes: damaged vectors met in a part
are only logged (its own computer repairs them), and nothing is noted in this data
directory.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

from indexer.shared.target import Bucket
from indexer.store.tables import FILES, Store, schema_version_of

log = logging.getLogger(__name__)

READ_CONSISTENCY_S = 10.0
"""A part's table versions are looked up at most this often (each look is a request)."""


@dataclasses.dataclass
class PartInfo:
    """One part of a shared library, as its ``part.json`` says."""

    part_id: str
    computer: str = "?"
    files: int = 0
    updated_at: float = 0.0
    models: dict[str, str] = dataclasses.field(default_factory=dict)
    generation: str = ""

    @staticmethod
    def from_manifest(part_id: str, data: dict[str, Any] | None) -> PartInfo:
        if not data:
            return PartInfo(part_id)
        models = data.get("models") if isinstance(data.get("models"), dict) else {}
        try:
            files = int(data.get("files", 0))
            updated = float(data.get("updated_at", 0.0))
        except (TypeError, ValueError):
            files, updated = 0, 0.0
        return PartInfo(part_id=part_id, computer=str(data.get("computer", "?"))[:64] or "?", files=files,
                        updated_at=updated, models={str(k): str(v) for k, v in (models or {}).items()},
                        generation=str(data.get("generation", "")))


def list_parts(bucket: Bucket) -> list[PartInfo]:
    """Every part with a manifest, by computer name."""
    out = []
    for part_id in bucket.list_part_ids():
        data = bucket.get_json(bucket.target.part_key(part_id, "part.json"))
        if data is not None:
            out.append(PartInfo.from_manifest(part_id, data))
    return sorted(out, key=lambda p: (p.computer.lower(), p.part_id))


class RemoteStore(Store):
    """A read-only `Store` over one part on the bucket."""

    def __init__(self, bucket: Bucket, part_id: str, *, text_model: tuple[str, int] | None,
                 image_model: tuple[str, int] | None, read_consistency_s: float = READ_CONSISTENCY_S) -> None:
        import threading

        self.path = Path(f"/nonexistent/lodestar-shared/{part_id}")  # never a local folder: nothing is written
        self.uri = bucket.target.part_db_uri(part_id)
        self.text_model = text_model
        self.text_models = dict([text_model] if text_model else [])
        self.image_model = image_model
        self._write_lock = threading.RLock()
        self._cache_lock = threading.Lock()
        self._files_cache = None
        self._removed_cache = {}
        self._files_cache_version = None
        self._hash_index = None
        self._hash_index_of = None
        self._tables = {}
        self._absent = {}  # tables found missing (Store._table): listing a bucket is slow
        self._damaged = {}
        self._db = bucket.connect(part_id, read_consistency_s=read_consistency_s)
        self._files = self._db.open_table(FILES)  # raises when the part has no files yet
        self.schema_found = schema_version_of(self._files)
        self.opened_at = time.time()

    def _open_or_create(self, name: str, schema: Any) -> Any:
        return self._db.open_table(name)

    def _table(self, name: str, schema: Any, create: bool) -> Any | None:
        return super()._table(name, schema, False)

    def note_damaged(self, fids: Iterable[str], why: str) -> int:
        fids = list(fids)
        if fids:
            log.info("%d file(s) of a shared part have %s; their computer repairs them", len(fids), why)
        return 0

    def _read_notes(self) -> list[tuple[Path, dict[str, Any]]]:
        return []

    def write(self, batch: Any) -> None:
        raise PermissionError("a shared part is read-only here")


def connect_read_consistency(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)
