"""What runs on the cluster's workers: the scan of a root, the reading of a batch of files,
and the two model actors. Plain functions and classes; `ray_index` wraps them with
``ray.remote`` (this module never imports ray, so it loads anywhere).

Reading is the pipeline's own code (`IndexService._extract`: the safe open under the
watched folder, the hash, the extraction, the chunks, the image decode), run by
`ReadingService`, an `IndexService` that asks nothing of the store: a file with the same
bytes elsewhere and passages whose text is unchanged are found by the writer
(`IndexService.settle`, `RaySource`), and thumbnails travel back as bytes.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from indexer.ingest.pipeline import IMAGE_BATCH, TEXT_BATCH, IndexService, Work
from indexer.library.settings import AppPaths, Settings
from indexer.store.tables import FileRecord
from indexer.types import FileInfo

EmbedderFactory = Callable[[], Any]
"""A picklable callable that builds an embedder (``functools.partial(TextEmbedder, name)``)."""


@dataclasses.dataclass(frozen=True)
class ReadSpec:
    """What a reading task needs to read files as the writer's service would."""

    settings: Settings
    text_model: str
    image_model: str  # "" when the writer has no image model: images wait (state pending)
    image_unavailable_reason: str = ""


@dataclasses.dataclass
class ReadBatch:
    """A reading task's answer, in three parts so each goes only where it is needed: the
    works (to the writer), the passages to embed (to a text actor), the pictures (to a
    CLIP actor, never through the writer)."""

    works: list[Work]
    image_of: list[int]  # index in ``works`` of each picture, in order
    n_texts: int = 0  # passages sent to the text actor


class _Named:
    """A model's name on a reading worker, where no model is loaded. As an image model it
    hands the decoded picture on as pixels: the CLIP actor preprocesses it (the same
    transform the local pipeline applies on its pool)."""

    def __init__(self, model_id: str) -> None:
        self.model_id = model_id

    def preprocess(self, image: Any) -> np.ndarray:
        if getattr(image, "mode", "RGB") != "RGB":
            image = image.convert("RGB")
        return np.asarray(image, dtype=np.uint8)


class ReadingService(IndexService):
    """`IndexService`'s reading code on a worker: no store, no data directory of the library."""

    def __init__(self, spec: ReadSpec) -> None:
        scratch = AppPaths(Path(tempfile.gettempdir()) / f"lodestar-ray-{os.getuid()}")
        image = cast(Any, _Named(spec.image_model)) if spec.image_model else None
        super().__init__(
            cast(Any, None), scratch, spec.settings, cast(Any, _Named(spec.text_model)), image,
            image_unavailable_reason=spec.image_unavailable_reason, threads=1,
        )

    def _twin(self, rec: FileRecord) -> FileRecord | None:
        return None  # the writer looks (settle)

    def _old_chunk_vectors(self, old: FileRecord | None, model: str) -> dict[str, np.ndarray]:
        return {}  # the writer has them; it said which passages to skip

    def _save_thumbnail(self, work: Work, name: str, png: bytes) -> None:
        work.thumb_png = png  # written by the writer, in its data directory


def read_batch(
    spec: ReadSpec, works: Sequence[Work], skip: Sequence[Sequence[str]]
) -> tuple[ReadBatch, list[tuple[str, str]], list[np.ndarray]]:
    """Read ``works`` (each never raises: a file that cannot be read is recorded as
    failed, with its reason). ``skip[i]``: chunk hashes of ``works[i]`` the writer already
    has vectors for. Returns the batch, the (chunk hash, input) pairs to embed (each hash
    once) and the pictures as RGB arrays."""
    service = ReadingService(spec)
    texts: list[tuple[str, str]] = []
    seen: set[str] = set()
    images: list[np.ndarray] = []
    image_of: list[int] = []
    out: list[Work] = []
    # The document reader's child process (ingest/extract/sandbox) stays up for the next
    # batch on this worker; it ends with the worker.
    for i, (work, known) in enumerate(zip(works, skip)):
        service._extract(work)
        rec = work.record
        if rec is not None and rec.state == "indexed" and not (work.touched_only or work.unsafe or work.vanished):
            if rec.kind == "text":
                have = set(known)
                for h, t in zip(work.chunk_hashes, work.inputs):
                    if h not in have and h not in seen:
                        seen.add(h)
                        texts.append((h, t))
            elif rec.kind == "image" and work.image is not None:
                images.append(work.image)
                image_of.append(i)
        work.inputs = []  # they travel to the text actor only
        work.image = None  # ... and the pixels to the CLIP actor only
        out.append(work)
    return ReadBatch(out, image_of, len(texts)), texts, images


def scan(root: str, settings: Settings, data_dir: str) -> tuple[list[FileInfo], dict[str, str]]:
    """`scan_root` on a worker: the files under ``root`` and the folders it could not list."""
    from indexer.ingest.scan import scan_root

    unreadable: dict[str, str] = {}
    infos = list(scan_root(root, settings, data_dir, unreadable=unreadable))
    return infos, unreadable


def _threads(threads: int) -> None:
    if threads > 0:
        os.environ["LODESTAR_TORCH_THREADS"] = str(threads)  # models.device.apply_thread_setting


class TextActor:
    """One text model on a worker: passages in, unit vectors out."""

    def __init__(self, factory: EmbedderFactory, threads: int = 0) -> None:
        _threads(threads)
        self.embedder = factory()
        self.embedder.load()

    def identity(self) -> tuple[str, int, str]:
        return self.embedder.model_id, int(self.embedder.dim), str(self.embedder.device)

    def embed(self, texts: Sequence[tuple[str, str]]) -> dict[str, np.ndarray]:
        """``texts``: (chunk hash, input) pairs → vector by chunk hash, in the pipeline's slices."""
        out: dict[str, np.ndarray] = {}
        for i in range(0, len(texts), TEXT_BATCH):
            part = texts[i : i + TEXT_BATCH]
            vectors = self.embedder.embed_documents([t for _h, t in part])
            out.update({h: np.asarray(v, dtype=np.float32) for (h, _t), v in zip(part, vectors)})
        return out


class ImageActor:
    """One CLIP model on a worker: decoded pictures in, unit vectors out."""

    def __init__(self, factory: EmbedderFactory, threads: int = 0) -> None:
        _threads(threads)
        self.embedder = factory()
        self.embedder.load()

    def identity(self) -> tuple[str, int, str]:
        return self.embedder.model_id, int(self.embedder.dim), str(self.embedder.device)

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """RGB arrays → float32 [n, dim]: preprocessed as the pipeline does, embedded in its batches."""
        from PIL import Image

        out = [np.zeros((0, int(self.embedder.dim)), dtype=np.float32)]
        for i in range(0, len(images), IMAGE_BATCH):
            tensors = [self.embedder.preprocess(Image.fromarray(a, "RGB")) for a in images[i : i + IMAGE_BATCH]]
            out.append(np.asarray(self.embedder.embed_tensors(tensors), dtype=np.float32))
        return np.concatenate(out, axis=0)
