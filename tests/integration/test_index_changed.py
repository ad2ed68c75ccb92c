"""Every commit is reported to the progress listener (Progress.index_changed), so the
window can re-run its query when a file is added, changed or deleted (issue 14.8)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def test_each_commit_is_reported_once_with_the_next_event(tmp_path: Path, make_runtime: Any) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "a.txt").write_text("Bake the bread at 220 degrees for forty minutes.", encoding="utf-8")
    (root / "b.txt").write_text("We went hiking in the Alps and ate cheese.", encoding="utf-8")
    events: list[Any] = []
    rt = make_runtime([str(root)], clip=False)
    service = rt.service(progress=events.append)
    service.index_roots([str(root)])
    assert any(e.index_changed for e in events)
    assert events[-1].phase == "idle"
    events.clear()
    (root / "b.txt").unlink()
    service.sync_paths([str(root / "b.txt")])  # a watcher's event: one file deleted
    changed = [e for e in events if e.index_changed]
    assert len(changed) == 1, events
    assert events[-1].phase == "idle"  # the window leaves "Saving"
    events.clear()
    service.sync_paths([str(root / "a.txt")])  # unchanged: nothing committed, nothing to re-run
    assert not any(e.index_changed for e in events)
