"""The narrow interface every embedder implements, plus a normalisation helper."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    """Turns documents and queries into comparable L2-normalised float32 vectors."""

    model_id: str
    dim: int

    def embed_documents(self, items: Sequence[Any]) -> np.ndarray:
        """float32 ``[n, dim]``, each row unit length."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """float32 ``[dim]``, unit length."""
        ...


def l2_normalise(arr: np.ndarray) -> np.ndarray:
    """Rows (or a single vector) scaled to unit length, as float32.

    Zero rows stay zero instead of becoming NaN, so a degenerate input can't
    poison a whole batch in the store.
    """
    a = np.asarray(arr, dtype=np.float32)
    norms = np.linalg.norm(a, axis=-1, keepdims=True)
    norms = np.where(norms > 0, norms, 1.0).astype(np.float32)
    return np.ascontiguousarray(a / norms, dtype=np.float32)
