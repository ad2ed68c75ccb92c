"""Invariant checks shared by the reliability tests (read the store, never write it)."""

from __future__ import annotations

import collections
import hashlib
import os
from typing import Any

from indexer.store.tables import Store


def content_hash(path: str) -> str:
    """The pipeline's content hash (blake2b-128 of the bytes)."""
    with open(path, "rb") as fh:
        return hashlib.blake2b(fh.read(), digest_size=16).hexdigest()


def text_rows(store: Store) -> dict[tuple[str, str], list[int]]:
    """(fid, file_hash) -> ords of the committed chunk rows."""
    table = store.chunks_table()
    out: dict[tuple[str, str], list[int]] = collections.defaultdict(list)
    if table is None:
        return out
    arrow = table.search().select(["fid", "file_hash", "ord"]).limit(None).to_arrow()
    for fid, fh, o in zip(arrow.column("fid").to_pylist(), arrow.column("file_hash").to_pylist(), arrow.column("ord").to_pylist()):
        out[(fid, fh)].append(o)
    return out


def committed_intact(store: Store, *, check_disk: bool = True) -> dict[str, int]:
    """Every file marked indexed has all its chunk rows for its content hash.

    Returns counters (indexed files, files with duplicate rows) for the report.
    """
    rows = text_rows(store)
    stats = {"indexed": 0, "duplicates": 0}
    for rec in store.files().values():
        if rec.state != "indexed" or rec.kind != "text":
            continue
        stats["indexed"] += 1
        ords = rows.get((rec.fid, rec.content_hash), [])
        assert sorted(set(ords)) == list(range(rec.n_chunks)), f"{rec.path}: rows {sorted(ords)} for {rec.n_chunks} chunks"
        if len(ords) != rec.n_chunks:
            stats["duplicates"] += 1
        if check_disk and os.path.exists(rec.path):
            assert content_hash(rec.path) == rec.content_hash, f"{rec.path}: indexed hash differs from disk"
    return stats


def results_whole(store: Store, results: list[Any]) -> None:
    """Search results only name indexed files whose rows match their content hash."""
    rows = text_rows(store)
    files = store.files()
    for r in results:
        rec = store.get_file(r.path) or files.get(r.path)
        assert rec is not None, f"result for unknown file {r.path}"
        assert rec.state == "indexed", f"result for a {rec.state} file {r.path}"
        if rec.kind == "text":
            assert sorted(set(rows.get((rec.fid, rec.content_hash), []))) == list(range(rec.n_chunks)), r.path
