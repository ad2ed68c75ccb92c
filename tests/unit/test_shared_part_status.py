"""A part's row in `lodestar library status`: reachable means the bucket answered."""

from __future__ import annotations

from typing import Any

from indexer.shared.library import _part_status
from indexer.shared.remote import PartInfo


class _Db:
    def __init__(self, tables: list[str], broken: bool = False) -> None:
        self.tables, self.broken = tables, broken

    def list_tables(self) -> Any:
        return type("Listed", (), {"tables": self.tables})()

    def open_table(self, name: str) -> Any:
        if self.broken:
            raise OSError("object store error: 403 Forbidden")
        return type("Table", (), {"count_rows": lambda self: 3})()


class _Bucket:
    def __init__(self, db: _Db) -> None:
        self.db = db

    def connect(self, part_id: str, **_kw: Any) -> _Db:
        return self.db


def test_a_part_listed_before_its_first_publish_landed_is_reachable_and_says_so() -> None:
    part = _part_status(_Bucket(_Db([])), PartInfo("p1", "desk-1"))  # type: ignore[arg-type]
    assert part.reachable and part.problem == "nothing published yet"


def test_a_part_whose_tables_cannot_be_read_is_unreachable_with_why() -> None:
    ok = _part_status(_Bucket(_Db(["files"])), PartInfo("p1", "desk-1"))  # type: ignore[arg-type]
    assert ok.reachable and not ok.problem
    bad = _part_status(_Bucket(_Db(["files"], broken=True)), PartInfo("p2", "desk-2"))  # type: ignore[arg-type]
    assert not bad.reachable and "403" in bad.problem
