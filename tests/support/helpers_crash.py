"""Child-process indexer for the crash loop (tests/reliability/test_rel_crash.py).

``python tests/support/helpers_crash.py DATA_DIR ROOT LOG`` builds the real Runtime and
IndexService (the same start-up path as ``lodestar index``, including the store
check) with the hash text embedder, then reconciles ROOT. It appends one line per
event to LOG so the parent, which SIGKILLs it at random moments, can tell what
happened: ``health <json>``, ``start``, ``embed <n texts>`` (written *before* the
model call, so a kill never hides work) and ``done <summary json>``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.fakes import HashImageEmbedder, HashTextEmbedder


class CountingTextEmbedder(HashTextEmbedder):
    """The hash embedder, logging how many texts each call embeds."""

    def __init__(self, log_fd: int) -> None:
        super().__init__()
        self._log_fd = log_fd

    def embed_documents(self, items: Sequence[str]) -> Any:
        _log(self._log_fd, f"embed {len(items)}")
        return super().embed_documents(items)


def _log(fd: int, line: str) -> None:
    # One write(2) per line on an O_APPEND descriptor: a kill never leaves half a line.
    os.write(fd, (line + "\n").encode("utf-8"))


def main(argv: list[str]) -> int:
    from indexer.library.runtime import Runtime
    from indexer.library.settings import Settings, open_paths
    from indexer.library.writer_lock import WriterLock

    data_dir, root, log_path = argv
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    paths = open_paths(data_dir)
    rt = Runtime(paths, Settings(folders=[root], reconcile_interval_s=3600))
    rt._text = CountingTextEmbedder(fd)
    rt._image = HashImageEmbedder()
    lock = WriterLock(paths, command="crash-child")
    lock.acquire(wait=True, timeout=60)  # the killed predecessor's flock is already gone
    try:
        service = rt.service()
        _log(fd, "health " + json.dumps(rt.health.to_dict() if rt.health else None))
        _log(fd, "start")
        summary = service.index_roots([root])
        _log(fd, "done " + json.dumps({"new": summary.new, "updated": summary.updated, "unchanged": summary.unchanged}))
    finally:
        lock.release()
        rt.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
