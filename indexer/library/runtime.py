"""The composition root: where the concrete services of a process are built.

Builds, in order: paths → settings → embedders → store → service / searcher.
Everything heavy is created lazily, so a command pays only for what it uses. CLI
commands use a `Runtime` directly (indexer/cli/_common.py); the window and `lodestar
watch` use it through the library session (`indexer.library.session`), which adds
the writer lock, the watcher and the folder rules on top.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading
from collections.abc import Callable
from typing import Any

from indexer.ingest.pipeline import IndexService, ProgressCallback
from indexer.library.settings import AppPaths, Settings, load_settings, open_paths, report
from models.base import ImageEmbedder, TextEmbedder

log = logging.getLogger(__name__)


DOWNLOAD_FIX = "press Download in the window, or run `lodestar models download`"
OFF_FIX = "allow downloading in the settings (or run `lodestar models download`), or choose a local .safetensors file"


@dataclasses.dataclass(frozen=True)
class ImageModelState:
    """Can images be searched, and if not: why, and what to do. Built in one place
    (``Runtime.image_ready``) and shown as-is by the CLI and the window."""

    ready: bool
    reason: str = ""  # one line, without the fix
    fix: str = ""
    download_allowed: bool = False  # the settings allow fetching the weights
    download_failed: bool = False  # a download was tried and failed (see reason)
    offline: bool = False  # ... because the network could not be reached

    def line(self) -> str:
        """The reason and the fix as one sentence pair."""
        if self.ready:
            return ""
        fix = self.fix[:1].upper() + self.fix[1:]
        return f"{self.reason}. {fix}." if fix else f"{self.reason}."


def _read_memo(memo: Any) -> dict[str, Any] | None:
    import json

    try:
        data = json.loads(memo.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    at = data.get("at")
    if isinstance(at, bool) or not isinstance(at, (int, float)) or not math.isfinite(at):
        return None  # a damaged memo is no memo: the download may be tried again
    return data


def last_download_failure(paths: AppPaths) -> dict[str, Any] | None:
    """The memo of the last failed CLIP download ("at", "reason", ...), if a sound one exists."""
    return _read_memo(paths.data_dir / "clip-download-failed.json")


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
        self._text: TextEmbedder | None = None
        self._image: ImageEmbedder | None = None
        self._image_problem: str | None = None
        self.image_state: ImageModelState | None = None  # set by image_ready: the one source for messages
        self._service: IndexService | None = None
        self._searcher: Any = None
        self.health: Any = None  # indexer.store.health.HealthReport once the store is opened
        # Lines for the person (an announced download): the window sets this to show
        # them; otherwise they go to indexer.library.settings.report (the CLI: one stderr line).
        self.on_notice: Callable[[str], None] | None = None

    def notice(self, line: str) -> None:
        """Tell the person ``line`` now (from any thread)."""
        handler = self.on_notice
        if handler is not None:
            handler(line)
        else:
            report(line)

    # -------------------------------------------------------------- models
    @property
    def text_embedder(self) -> TextEmbedder:
        with self._lock:
            if self._text is None:
                from models.text import TextEmbedder as SentenceTextEmbedder

                self._text = SentenceTextEmbedder(
                    self.settings.text_model, device=self.settings.device, backend=self.settings.text_backend
                )
            return self._text

    @property
    def image_embedder(self) -> ImageEmbedder:
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
                    on_download_announce=self.notice,  # before any connection, every attempt
                )
            return self._image

    def image_ready(self, load: bool = True, *, download: bool = False, retry: bool = False) -> tuple[bool, str]:
        """Whether CLIP can be used now; loads it when asked. Never raises.

        A download happens only when ``download`` is asked for (indexing, or the
        person pressing Download) and the settings allow it; a failed attempt is
        remembered for an hour so an offline laptop is not retried on every run
        (``retry`` forgets it: the person asked again). The outcome, with its reason,
        is kept in :attr:`image_state` for whoever shows it.
        """
        import json
        import time

        from models.errors import ModelUnavailable
        from models.weights import weights_status

        allowed = bool(self.settings.allow_download)
        status = weights_status(self.settings, checkpoint=self.clip_checkpoint)
        if not status.get("available"):
            reason, fix = str(status.get("message", "")), str(status.get("fix", ""))
            if not allowed and not status.get("path"):  # no checkpoint configured, nothing cached
                reason, fix = "the image model is not on this machine and downloading it is turned off", OFF_FIX
            self._set_image_state(ImageModelState(False, reason, fix, download_allowed=allowed))
            return False, self._image_problem or ""
        memo = self.paths.data_dir / "clip-download-failed.json"
        if status.get("source") == "download":
            if retry:
                memo.unlink(missing_ok=True)
            failed = _read_memo(memo)
            if failed is not None and time.time() - float(failed.get("at", 0)) < 3600:
                self._set_image_state(ImageModelState(
                    False, str(failed.get("reason") or "the image model download failed"),
                    str(failed.get("fix", "")) or DOWNLOAD_FIX, download_allowed=True, download_failed=True,
                    offline=bool(failed.get("offline"))))
                return False, self._image_problem or ""
            if not download:
                self._set_image_state(ImageModelState(False, "the image model is not downloaded yet", DOWNLOAD_FIX,
                                                      download_allowed=True))
                return False, self._image_problem or ""
        if load:
            try:
                emb = self.image_embedder
                if status.get("source") == "download":
                    emb.allow_download = allowed  # the settings may have changed since it was built
                emb.load()
            except ModelUnavailable as exc:
                fetching = status.get("source") == "download"
                # The pre-connection probe (or the first request) could not reach the host.
                offline = fetching and (isinstance(exc.__cause__, OSError) or "cannot be reached" in exc.reason)
                reason, fix = exc.reason, exc.fix
                if fetching:
                    # weights' "... not on this machine and downloading is turned off / failed: <why>"
                    detail = reason.split(" failed: ", 1)[-1].replace(" (offline?)", "")
                    reason = f"No internet connection: {detail}" if offline else \
                        f"the image model download failed: {detail}"
                    fix = "connect to the internet and try again (Download in the window, or `lodestar models " \
                        "download`), or choose a local .safetensors file" if offline else (fix or DOWNLOAD_FIX)
                    try:
                        memo.write_text(json.dumps({"at": time.time(), "reason": reason, "fix": fix,
                                                    "offline": offline}), encoding="utf-8")
                    except OSError:
                        pass
                self._set_image_state(ImageModelState(False, reason, fix, download_allowed=allowed,
                                                      download_failed=fetching, offline=offline))
                return False, self._image_problem or ""
        try:
            memo.unlink()
        except OSError:
            pass
        self._set_image_state(ImageModelState(True, download_allowed=allowed))
        return True, ""

    def _set_image_state(self, state: ImageModelState) -> None:
        self.image_state = state
        self._image_problem = None if state.ready else state.line()

    # --------------------------------------------------------------- store
    @property
    def store(self) -> Any:
        with self._lock:
            if self._store is None:
                from indexer.store.health import check_and_heal
                from indexer.store.tables import Store

                self.health = check_and_heal(self.paths)  # detect and repair a damaged index before opening it
                text = self.text_embedder
                image = self.image_embedder
                self._store = Store(
                    self.paths.store,
                    text_model=(text.model_id, text.dim),
                    image_model=(image.model_id, image.dim),
                )
            return self._store

    def service(self, progress: ProgressCallback | None = None, *, wait_when_disk_full: bool = False,
                images_expected: bool = True) -> IndexService:
        """The writer's pipeline. The image model is fetched (announced first) only when
        ``images_expected``: a run that will meet no picture uses weights already on this
        machine, or none, and never downloads 600 MB for nothing."""
        with self._lock:
            if self._service is None:
                ok, why = self.image_ready(load=True, download=images_expected)
                from indexer.ingest.ocr import Recogniser  # light: the engine loads on first use

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
                    recogniser=Recogniser(),  # words in pictures and scans (Settings.recognise_text)
                )
                self._service.after_follow = self._after_follow
            elif progress is not None:
                self._service._progress_cb = progress
            return self._service

    def _after_follow(self, old: str, new: str) -> None:
        """Every follow, at start or while watching: what is kept beside the index follows,
        and the person is told (the window's notice bar; the CLI's stderr)."""
        from indexer.duplicates.actions import follow_folder
        from indexer.ingest.pipeline import followed_line

        try:
            follow_folder(self.paths.data_dir, old, new)  # the kept maps need nothing: ids are kept
        finally:
            self.notice(followed_line([(old, new)]))

    def searcher(self) -> Any:
        with self._lock:
            if self._searcher is None:
                from indexer.search.ranking import Searcher

                ok, _why = self.image_ready(load=True)
                searcher = Searcher(self.store, self.text_embedder, self.image_embedder if ok else None, paths=self.paths, settings=self.settings, image_problem=_why)
                self._searcher = self.shared_searcher(searcher)
            return self._searcher

    def shared_searcher(self, searcher: Any) -> Any:
        """``searcher``, also asking the other computers' parts when this data directory shares
        a library (indexer/shared; docs/SHARED.md)."""
        from indexer.shared.search import shared_searcher

        return shared_searcher(searcher, self.paths.data_dir)

    def reshare_searcher(self) -> Any:
        """The searcher, wrapped or unwrapped again after this data directory joined or left a
        shared library; None when none was built yet."""
        with self._lock:
            current = self._searcher
            if current is None:
                return None
            local = getattr(current, "local", None) or current
            if local is not current:
                current.detach()  # its pool and parts; this computer's searcher lives on
            self._searcher = self.shared_searcher(local)
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


def extract_threads(*embedders: TextEmbedder | ImageEmbedder | None) -> int:
    """Extraction (decode, thumbnails, text) threads for the indexer.

    On a CPU the models need the cores: 2 threads keep the machine responsive and
    already overlap decoding with inference. On a GPU the CPU-side JPEG decode is the
    bottleneck (H100: 27 images/s with 2 threads, 148 with 16, model 7,000+;
    docs/PERFORMANCE.md, GPU), so use the cores, leaving one for the desktop.
    """
    on_gpu = any((e.device or "cpu").startswith(("cuda", "mps")) for e in embedders if e is not None)
    if not on_gpu:
        return 2
    return max(2, min(16, (os.cpu_count() or 2) - 1))


def open_runtime(
    data_dir: str | os.PathLike[str] | None = None, *, clip_checkpoint: str | None = None, create: bool = True
) -> Runtime:
    """``create=False``: never make the data directory (see `indexer.library.settings.open_paths`)."""
    paths = open_paths(data_dir, create=create)
    settings = load_settings(paths)
    return Runtime(paths, settings, clip_checkpoint=clip_checkpoint)

