"""Composition root for the CLI (the window has its own in desktop/app.py).

Builds, in order: paths → settings → embedders → store → service / searcher.
Everything heavy is created lazily, so a command pays only for what it uses.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from indexer.config import AppPaths, Settings, load_settings, open_paths
from indexer.pipeline import IndexService, ProgressCallback

log = logging.getLogger(__name__)


class Runtime:
    """Owns the services of one process. `close()` releases them."""

    def __init__(self, paths: AppPaths, settings: Settings, *, clip_checkpoint: str | None = None) -> None:
        # Private by default: whatever this process creates is readable by the user only.
        os.umask(0o077)
        self.paths = paths
        self.settings = settings
        self.clip_checkpoint = clip_checkpoint or os.environ.get("LODESTAR_CLIP_CHECKPOINT") or settings.clip_checkpoint or None
        self._lock = threading.RLock()
        self._store: Any = None
        self._text: Any = None
        self._image: Any = None
        self._image_problem: str | None = None
        self._service: IndexService | None = None
        self._searcher: Any = None
        self.health: Any = None  # indexer.health.HealthReport once the store is opened

    # -------------------------------------------------------------- models
    @property
    def text_embedder(self) -> Any:
        with self._lock:
            if self._text is None:
                from models.text import TextEmbedder

                self._text = TextEmbedder(
                    self.settings.text_model, device=self.settings.device, backend=self.settings.text_backend
                )
            return self._text

    @property
    def image_embedder(self) -> Any:
        """The CLIP embedder object (it may lack weights: see `image_ready`)."""
        with self._lock:
            if self._image is None:
                from models.clip import ClipEmbedder

                self._image = ClipEmbedder(
                    model_name=self.settings.clip_model,
                    pretrained=self.settings.clip_pretrained,
                    checkpoint=self.clip_checkpoint,
                    allow_download=self.settings.allow_download,
                    device=self.settings.device,
                )
            return self._image

    def image_ready(self, load: bool = True, *, download: bool = False) -> tuple[bool, str]:
        """Whether CLIP can be used now; loads it when asked. Never raises.

        A download happens only when ``download`` is asked for (indexing, or the
        person pressing Download) and the settings allow it; a failed attempt is
        remembered for an hour so an offline laptop is not retried on every run.
        """
        import json
        import time

        from models.errors import ModelUnavailable
        from models.weights import weights_status

        status = weights_status(self.settings, checkpoint=self.clip_checkpoint)
        if not status.get("available"):
            self._image_problem = f"{status.get('message', '')}. {status.get('fix', '')}".strip(". ")
            return False, self._image_problem
        memo = self.paths.data_dir / "clip-download-failed.json"
        if status.get("source") == "download":
            if not download:
                why = "CLIP weights are not downloaded yet; they are fetched when indexing starts (or run `lodestar models download`)"
                return False, self._image_problem or why
            try:
                failed = json.loads(memo.read_text(encoding="utf-8"))
                if time.time() - float(failed.get("at", 0)) < 3600:
                    self._image_problem = str(failed.get("reason", "the last download failed"))
                    return False, self._image_problem
            except (OSError, ValueError):
                pass
        if load:
            try:
                self.image_embedder.load()
            except ModelUnavailable as exc:
                self._image_problem = str(exc)
                if status.get("source") == "download":
                    try:
                        memo.write_text(json.dumps({"at": time.time(), "reason": str(exc)}), encoding="utf-8")
                    except OSError:
                        pass
                return False, str(exc)
        try:
            memo.unlink()
        except OSError:
            pass
        self._image_problem = None
        return True, ""

    # --------------------------------------------------------------- store
    @property
    def store(self) -> Any:
        with self._lock:
            if self._store is None:
                from indexer.health import check_and_heal
                from indexer.store import Store

                self.health = check_and_heal(self.paths)  # detect and repair a damaged index before opening it
                text = self.text_embedder
                image = self.image_embedder
                self._store = Store(
                    self.paths.store,
                    text_model=(text.model_id, text.dim),
                    image_model=(image.model_id, image.dim),
                )
            return self._store

    def service(self, progress: ProgressCallback | None = None, *, wait_when_disk_full: bool = False) -> IndexService:
        with self._lock:
            if self._service is None:
                ok, why = self.image_ready(load=True, download=True)
                self._service = IndexService(
                    self.store,
                    self.paths,
                    self.settings,
                    self.text_embedder,
                    self.image_embedder if ok else None,
                    progress,
                    image_unavailable_reason=why,
                    wait_when_disk_full=wait_when_disk_full,
                    threads=extract_threads(self.text_embedder, self.image_embedder if ok else None),
                )
            elif progress is not None:
                self._service._progress_cb = progress
            return self._service

    def searcher(self) -> Any:
        with self._lock:
            if self._searcher is None:
                from indexer.search import Searcher

                ok, _why = self.image_ready(load=True)
                self._searcher = Searcher(self.store, self.text_embedder, self.image_embedder if ok else None, paths=self.paths, settings=self.settings, image_problem=_why)
            return self._searcher

    def close(self) -> None:
        with self._lock:
            if self._service is not None:
                self._service.close()
            if self._searcher is not None:
                self._searcher.close()
            if self._store is not None:
                self._store.close()
            self._store = None
            self._service = None
            self._searcher = None


def extract_threads(*embedders: Any) -> int:
    """Extraction (decode, thumbnails, text) threads for the indexer.

    On a CPU the models need the cores: 2 threads keep the machine responsive and
    already overlap decoding with inference. On a GPU the CPU-side JPEG decode is the
    bottleneck (H100: 27 images/s with 2 threads, 148 with 16, model 7,000+;
    docs/PERFORMANCE.md, GPU), so use the cores, leaving one for the desktop.
    """
    on_gpu = any(str(getattr(e, "device", None) or "cpu").startswith(("cuda", "mps")) for e in embedders if e is not None)
    if not on_gpu:
        return 2
    return max(2, min(16, (os.cpu_count() or 2) - 1))


def open_runtime(data_dir: str | os.PathLike[str] | None = None, *, clip_checkpoint: str | None = None) -> Runtime:
    paths = open_paths(data_dir)
    settings = load_settings(paths)
    return Runtime(paths, settings, clip_checkpoint=clip_checkpoint)
