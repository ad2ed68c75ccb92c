"""The embedder contracts the indexer, search and window are written against.

Two Protocols, one per kind of input, so a signature says which model it needs:
``TextEmbedder`` (passages and queries of one text model) and ``ImageEmbedder``
(pictures, plus text queries through the same CLIP model). Every vector either
returns is float32 and L2-normalised, so vectors of one ``model_id`` compare by
dot product. Implementations: models/text.py, models/clip.py; deterministic
fakes for tests: tests/support/fakes.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from models.weights import ProgressFn


@runtime_checkable
class TextEmbedder(Protocol):
    """Passages and queries → comparable unit vectors of one text model."""

    @property
    def model_id(self) -> str:
        """Names the vector space: vectors of different ids are never compared."""
        ...

    @property
    def dim(self) -> int: ...

    @property
    def device(self) -> str | None:
        """Where the forward pass runs ("cpu", "cuda", ...), once loaded; None before."""
        ...

    @property
    def loaded(self) -> bool: ...

    def load(self) -> None:
        """Load the weights (idempotent, thread-safe; slow: call it off the GUI thread)."""
        ...

    def embed_documents(self, items: Sequence[str]) -> np.ndarray:
        """float32 ``[n, dim]``, each row unit length."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """float32 ``[dim]``, unit length."""
        ...


@runtime_checkable
class ImageEmbedder(Protocol):
    """Pictures, and text queries about pictures, → unit vectors of one image model.

    Indexing preprocesses each picture on the extraction pool (``preprocess``) and
    embeds whole batches of the results (``embed_tensors``): only the forward pass
    is serial. The weights may be missing: ``available`` says so without loading.
    """

    allow_download: bool
    """May ``load`` fetch missing weights (the settings can change it between loads)."""

    on_download_progress: ProgressFn | None
    """Called with (bytes done, bytes in all) while ``load`` fetches weights, when it does."""

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def device(self) -> str | None: ...

    @property
    def loaded(self) -> bool: ...

    def available(self) -> tuple[bool, str]:
        """Whether the weights can be had (cheap: no load, no network), and a line for people."""
        ...

    def load(self) -> None: ...

    def preprocess(self, image: Any) -> Any:
        """A PIL image → the model's input for one picture; safe on a thread pool."""
        ...

    def embed_tensors(self, batch: Sequence[Any]) -> np.ndarray:
        """``preprocess`` results → float32 ``[n, dim]``, unit rows."""
        ...

    def embed_documents(self, items: Sequence[Any]) -> np.ndarray:
        """PIL images → float32 ``[n, dim]``, unit rows."""
        ...

    def embed_image(self, image: Any) -> np.ndarray:
        """One PIL image → float32 ``[dim]``, unit length."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """Text → float32 ``[dim]`` in the images' space, unit length."""
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
