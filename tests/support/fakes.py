"""Deterministic fakes with real behaviour (hashlib, not hash()) for orchestration tests.

They satisfy the embedder contracts of models/base.py (tests/unit/test_embedder_contract.py).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from models.weights import ProgressFn


def _unit(seed: bytes, dim: int) -> np.ndarray:
    rng = np.random.default_rng(int.from_bytes(hashlib.blake2b(seed, digest_size=8).digest(), "little"))
    v = rng.standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


class HashTextEmbedder:
    """Bag-of-words hashing embedder: shared words → similar vectors. Counts calls."""

    def __init__(self, dim: int = 64, model_id: str = "fake/hash-text") -> None:
        self.dim = dim
        self.model_id = model_id
        self.device: str | None = "cpu"
        self.calls = 0
        self.texts_embedded = 0
        self._lock = threading.Lock()

    def load(self) -> None:
        pass

    @property
    def loaded(self) -> bool:
        return True

    def _embed(self, text: str) -> np.ndarray:
        words = re.findall(r"\w+", text.lower()) or ["<empty>"]
        v = np.sum([_unit(w.encode(), self.dim) for w in words], axis=0)
        return (v / (np.linalg.norm(v) or 1.0)).astype(np.float32)

    def embed_documents(self, items: Sequence[str]) -> np.ndarray:
        with self._lock:
            self.calls += 1
            self.texts_embedded += len(items)
        return np.stack([self._embed(t) for t in items]) if items else np.zeros((0, self.dim), np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self._embed(text)


class HashImageEmbedder:
    """Embeds an image by its downscaled pixels: identical pictures → identical vectors."""

    def __init__(self, dim: int = 32, model_id: str = "fake/hash-image") -> None:
        self.dim = dim
        self.model_id = model_id
        self.device: str | None = "cpu"
        self.allow_download = False
        self.on_download_progress: ProgressFn | None = None
        self.calls = 0

    def load(self) -> None:
        pass

    @property
    def loaded(self) -> bool:
        return True

    def available(self) -> tuple[bool, str]:
        return True, ""

    def preprocess(self, image: Any) -> np.ndarray:
        """The 8×8 RGB pixels, as the indexer's pool computes them ahead of the batch."""
        return np.asarray(image.convert("RGB").resize((8, 8))).astype(np.float32).reshape(-1)

    def embed_tensors(self, batch: Sequence[Any]) -> np.ndarray:
        self.calls += 1
        out = []
        for small in batch:
            v = small[: self.dim] - small.mean() + 1e-3
            out.append((v / (np.linalg.norm(v) or 1.0)).astype(np.float32))
        return np.stack(out) if out else np.zeros((0, self.dim), np.float32)

    def embed_documents(self, items: Sequence[Any]) -> np.ndarray:
        return self.embed_tensors([self.preprocess(img) for img in items])

    def embed_image(self, image: Any) -> np.ndarray:
        return self.embed_documents([image])[0]

    def embed_query(self, text: str) -> np.ndarray:
        return _unit(text.encode(), self.dim)
