"""Read-only damage probe for tests: every table of a store reads fully at its latest version."""

from __future__ import annotations

from pathlib import Path

from indexer.store.health import probe_table


def all_tables_readable(store: Path) -> bool:
    bad = [why for t in sorted(store.glob("*.lance")) if (why := probe_table(t)) is not None]
    assert not bad, bad
    return True
