"""Embedder factories and a reading task for the Ray tests: importable by name, so Ray's
workers (which import this repository: the driver's working folder is on their path)
build the very models the tests build in-process."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any


def tiny_clip(checkpoint: str) -> Any:
    """The tests' tiny CLIP (tests/support/tiny_clip.py), registered in this process first."""
    from models.clip import ClipEmbedder
    from tests.support.tiny_clip import TINY_CLIP_NAME, register_tiny_clip

    register_tiny_clip()
    return ClipEmbedder(model_name=TINY_CLIP_NAME, pretrained="", checkpoint=checkpoint)


def minilm() -> Any:
    """The real bundled all-MiniLM-L6-v2, as the `text_embedder` fixture builds it."""
    from models.text import TextEmbedder

    return TextEmbedder()


POISON = "poison"


def read_or_die(spec: Any, works: Sequence[Any], skip: Sequence[Sequence[str]]) -> Any:
    """`indexer.cluster.worker.read_batch`, except that a batch holding a file named
    ``poison*`` kills its worker process (as a crash in a native decoder would)."""
    from indexer.cluster.worker import read_batch

    if any(os.path.basename(w.info.path).startswith(POISON) for w in works):
        os._exit(3)
    return read_batch(spec, works, skip)
