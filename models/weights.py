"""Where CLIP weights come from: local checkpoint → Hugging Face cache → download.

Order: (a) a local checkpoint file (explicit argument, ``LODESTAR_CLIP_CHECKPOINT``,
or ``Settings.clip_checkpoint``); (b) the open_clip file already in the Hugging Face
cache; (c) a download on first use, only when allowed, announced before the first
connection (every attempt) and with progress reported.
Only safetensors files, or ``.pt/.bin/.pth`` read with ``torch.load(weights_only=True)``,
are ever loaded (RELIABILITY S1). ``weights_status`` never imports torch and never
touches the network, so ``lodestar status`` stays instant.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from models.errors import ModelUnavailable

if TYPE_CHECKING:
    from indexer.library.settings import Settings

log = logging.getLogger(__name__)

CHECKPOINT_ENV = "LODESTAR_CLIP_CHECKPOINT"
SAFE_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".pt", ".pth", ".bin")
HF_SAFE_WEIGHTS_NAME = "open_clip_model.safetensors"
HF_PICKLE_WEIGHTS_NAME = "open_clip_pytorch_model.bin"
# open_clip's registry lives in a module that imports torch; the default is copied
# here so status checks stay torch-free (a test keeps it in sync with open_clip).
KNOWN_HF: dict[tuple[str, str], tuple[str, str]] = {
    ("ViT-B-32", "laion2b_s34b_b79k"): ("laion/CLIP-ViT-B-32-laion2B-s34B-b79K", HF_SAFE_WEIGHTS_NAME),
}
DOWNLOAD_STALL_S = 60.0  # give up when no byte arrived for this long
NETWORK_TIMEOUT_S = 10.0

# Download sizes known without asking the network (for the announcement).
KNOWN_SIZES_MB: dict[tuple[str, str], int] = {("ViT-B-32", "laion2b_s34b_b79k"): 600}
HUB_HOST = "huggingface.co"

Source = Literal["checkpoint", "hf-cache", "download"]
ProgressFn = Callable[[int, int], None]
AnnounceFn = Callable[[str], None]

FIX = (
    "run `lodestar models download` on a connected machine, or set a local checkpoint: "
    "`lodestar --clip-checkpoint FILE` / LODESTAR_CLIP_CHECKPOINT / settings"
)


@dataclasses.dataclass(frozen=True)
class ResolvedWeights:
    path: Path
    source: Source


def _unavailable(model: str, pretrained: str, why: str) -> ModelUnavailable:
    return ModelUnavailable(
        f"CLIP weights for {model} ({pretrained or 'no pretrained tag'}) are not on this machine "
        f"and downloading is turned off / failed: {why}",
        FIX,
    )


# -- (a) local checkpoint ---------------------------------------------------------------
def configured_checkpoint(explicit: str | os.PathLike[str] | None = None, settings: Settings | None = None) -> str:
    """The checkpoint the person asked for: argument, then env, then settings ("" if none)."""
    for candidate in (explicit, os.environ.get(CHECKPOINT_ENV), getattr(settings, "clip_checkpoint", None)):
        if candidate:
            return os.path.expanduser(os.fspath(candidate))
    return ""


def check_checkpoint(path: str | os.PathLike[str]) -> Path:
    """Validate a configured checkpoint path (exists, regular file, allowed suffix)."""
    p = Path(path).expanduser()
    fix = "set LODESTAR_CLIP_CHECKPOINT / --clip-checkpoint / settings to an existing .safetensors file"
    if not p.exists():
        raise ModelUnavailable(f"the CLIP checkpoint {p} does not exist", fix)
    if not p.is_file():
        raise ModelUnavailable(f"the CLIP checkpoint {p} is not a file", fix)
    if p.suffix.lower() not in SAFE_SUFFIXES + PICKLE_SUFFIXES:
        raise ModelUnavailable(
            f"the CLIP checkpoint {p} has an unsupported type {p.suffix or '(none)'!r}",
            "use a .safetensors file (or a .pt/.bin/.pth holding only tensors)",
        )
    return p


_hash_cache: dict[tuple[str, int, int], str] = {}
_hash_lock = threading.Lock()


def sha256_of(path: str | os.PathLike[str]) -> str:
    """sha256 of a file, read now (checksums that must see the bytes on disk)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file, cached per (path, size, mtime) for this process."""
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    with _hash_lock:
        if key in _hash_cache:
            return _hash_cache[key]
    digest = sha256_of(path)
    with _hash_lock:
        _hash_cache[key] = digest
    return digest


# -- (b) Hugging Face cache -------------------------------------------------------------
def hf_location(model: str, pretrained: str, *, allow_import: bool = True) -> tuple[str, str] | None:
    """(repo_id, filename) of the open_clip weights on the Hub, or None if unknown.

    Known defaults come from a copy of the registry; other tags need open_clip
    (which imports torch), so ``allow_import=False`` only uses it if already loaded.
    """
    if not pretrained:
        return None
    key = (model, pretrained.lower())
    if key in KNOWN_HF:
        return KNOWN_HF[key]
    if not allow_import and "open_clip" not in sys.modules:
        return None
    import open_clip

    cfg = open_clip.get_pretrained_cfg(model, pretrained) or {}
    hub = str(cfg.get("hf_hub") or "")
    if not hub:
        return None
    if hub.endswith("/"):
        # "org/repo/" means open_clip's default file; prefer its safetensors twin.
        return hub.rstrip("/"), HF_SAFE_WEIGHTS_NAME
    repo_id, filename = os.path.split(hub)
    return repo_id, filename


def _cache_candidates(filename: str) -> list[str]:
    """Safetensors first, then the pickled name (loaded with weights_only only)."""
    names: list[str] = []
    if filename == HF_SAFE_WEIGHTS_NAME:
        return [HF_SAFE_WEIGHTS_NAME, HF_PICKLE_WEIGHTS_NAME]
    if filename.endswith(PICKLE_SUFFIXES):
        stem = filename.rsplit(".", 1)[0]
        names.append(HF_SAFE_WEIGHTS_NAME if filename == HF_PICKLE_WEIGHTS_NAME else stem + ".safetensors")
    names.append(filename)
    return list(dict.fromkeys(names))


def find_in_hf_cache(model: str, pretrained: str, *, allow_import: bool = True) -> Path | None:
    loc = hf_location(model, pretrained, allow_import=allow_import)
    if loc is None:
        return None
    repo_id, filename = loc
    from huggingface_hub import try_to_load_from_cache  # no torch, no network

    for name in _cache_candidates(filename):
        try:
            hit = try_to_load_from_cache(repo_id, name)
        except (OSError, ValueError) as exc:
            log.debug("HF cache lookup for %s/%s failed: %s", repo_id, name, exc)
            continue
        if isinstance(hit, str) and os.path.isfile(hit):  # may be a "known missing" sentinel
            return Path(hit)
    return None


# -- (c) download -----------------------------------------------------------------------
def _progress_tqdm(on_progress: ProgressFn | None, total_hint: int, touched: list[float]) -> type:
    """A silent tqdm class that forwards byte counts to ``on_progress``."""
    from tqdm.auto import tqdm as base_tqdm

    class _Progress(base_tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True  # no terminal bar; the caller renders progress
            super().__init__(*args, **kwargs)
            self._done = int(kwargs.get("initial") or 0)
            self._total = int(kwargs.get("total") or total_hint or 0)

        def update(self, n: float | None = 1) -> bool | None:
            self._done += int(n or 0)
            touched[0] = time.monotonic()
            if on_progress is not None:
                on_progress(self._done, self._total)
            return None

    return _Progress


def _probe_hub(model: str, pretrained: str, host: str = HUB_HOST, timeout: float = 3.0) -> None:
    """Fail in seconds when offline, instead of the hub client's minute of retries."""
    import socket

    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return  # behind a proxy a direct connection proves nothing; the client's timeouts apply
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            pass
    except (OSError, RuntimeError) as exc:  # RuntimeError: a test's network guard
        raise _unavailable(model, pretrained, f"{host} cannot be reached (offline?)") from exc


DOWNLOAD_ANNOUNCED = "Downloading the "
"""How every announced download's line begins (the window replaces it with the outcome)."""


def download_announcement(model: str, pretrained: str, repo_id: str) -> str:
    """The one line said before any connection is made for the CLIP weights."""
    size = KNOWN_SIZES_MB.get((model, pretrained.lower()))
    about = f", about {size} MB" if size else ""
    return (f"{DOWNLOAD_ANNOUNCED}CLIP image model {model} ({pretrained}{about}) from Hugging Face "
            f"({HUB_HOST}/{repo_id}); to stop this, set \"allow_download\": false in the settings "
            "(or untick it in the window's Settings) or use a local file with --clip-checkpoint FILE")


def _announce_default(line: str) -> None:
    log.warning("%s", line)


def download_weights(
    model: str,
    pretrained: str,
    on_progress: ProgressFn | None = None,
    *,
    on_announce: AnnounceFn | None = None,
    stall_s: float = DOWNLOAD_STALL_S,
) -> Path:
    """Fetch the weights into the HF cache, reporting (done, total) bytes. Never hangs:
    every request has a timeout and a download that stalls for ``stall_s`` is abandoned.

    Every attempt is announced (``on_announce``, else a logged warning) before the
    first name lookup or connection, the offline probe included."""
    loc = hf_location(model, pretrained)
    if loc is None:
        raise _unavailable(model, pretrained, "no Hugging Face source is known for this pretrained tag")
    repo_id, filename = loc
    (on_announce or _announce_default)(download_announcement(model, pretrained, repo_id))
    _probe_hub(model, pretrained)
    import huggingface_hub

    total = 0
    try:
        meta = huggingface_hub.get_hf_file_metadata(
            huggingface_hub.hf_hub_url(repo_id, filename), timeout=NETWORK_TIMEOUT_S
        )
        total = int(meta.size or 0)
    except Exception as exc:  # network boundary: any failure becomes a user-facing reason
        raise _unavailable(model, pretrained, f"cannot reach the Hugging Face Hub ({type(exc).__name__}: {exc})") from exc
    log.info("downloading CLIP weights %s/%s (%.0f MB)", repo_id, filename, total / 1e6)
    if on_progress is not None:
        on_progress(0, total)

    touched = [time.monotonic()]
    result: dict[str, Any] = {}

    def worker() -> None:
        try:
            result["path"] = huggingface_hub.hf_hub_download(
                repo_id,
                filename,
                etag_timeout=NETWORK_TIMEOUT_S,
                tqdm_class=_progress_tqdm(on_progress, total, touched),
            )
        except Exception as exc:  # noqa: BLE001 - network boundary; re-raised as ModelUnavailable below
            result["error"] = exc

    thread = threading.Thread(target=worker, name="clip-weights-download", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(timeout=0.5)
        if thread.is_alive() and time.monotonic() - touched[0] > stall_s:
            raise _unavailable(model, pretrained, f"the download stalled for {stall_s:.0f} s")
    if "error" in result:
        failure = result["error"]
        raise _unavailable(model, pretrained, f"download failed ({type(failure).__name__}: {failure})") from failure
    path = Path(result["path"])
    if on_progress is not None and total:
        on_progress(total, total)
    return path


# -- resolution -------------------------------------------------------------------------
def resolve_weights(
    model: str,
    pretrained: str,
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    settings: Settings | None = None,
    allow_download: bool = False,
    on_progress: ProgressFn | None = None,
    on_announce: AnnounceFn | None = None,
) -> ResolvedWeights:
    """Find (or fetch, if allowed) the weights file; ModelUnavailable when impossible."""
    configured = configured_checkpoint(checkpoint, settings)
    if configured:
        # An explicit checkpoint is never silently replaced by something else.
        return ResolvedWeights(check_checkpoint(configured), "checkpoint")
    cached = find_in_hf_cache(model, pretrained)
    if cached is not None:
        return ResolvedWeights(cached, "hf-cache")
    if not allow_download:
        raise _unavailable(model, pretrained, "not in the Hugging Face cache and downloads are not allowed")
    return ResolvedWeights(download_weights(model, pretrained, on_progress, on_announce=on_announce), "download")


def load_state_dict(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Tensors from a weights file: safetensors, or weights_only torch.load (never pickle code)."""
    p = Path(path)
    fix = "use a .safetensors checkpoint (e.g. the open_clip_model.safetensors from the Hugging Face Hub)"
    if p.suffix.lower() in SAFE_SUFFIXES:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(p), device="cpu")
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise ModelUnavailable(f"cannot read CLIP weights {p}: {exc}", fix) from exc
    if p.suffix.lower() in PICKLE_SUFFIXES:
        import pickle

        import torch

        try:
            obj = torch.load(str(p), map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, OSError, EOFError, ValueError, AttributeError) as exc:
            # weights_only refused or the file is broken: never retry without it.
            raise ModelUnavailable(f"refused to load CLIP weights {p}: not a plain tensor file ({exc})", fix) from exc
        if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
            obj = obj["state_dict"]
        if not isinstance(obj, dict):
            raise ModelUnavailable(f"CLIP weights {p} do not hold a state dict", fix)
        # Checkpoints saved from DataParallel prefix every key with "module.".
        if obj and all(isinstance(k, str) and k.startswith("module.") for k in obj):
            obj = {k[len("module."):]: v for k, v in obj.items()}
        return obj
    raise ModelUnavailable(f"unsupported CLIP weights file type {p.suffix!r} ({p})", fix)


def weights_status(settings: Settings | None = None, *, checkpoint: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Where CLIP weights would come from, without torch and without network.

    Keys: available, source ("checkpoint" | "hf-cache" | "download" | None), path,
    message, fix.
    """
    model = getattr(settings, "clip_model", None) or "ViT-B-32"
    pretrained = getattr(settings, "clip_pretrained", "laion2b_s34b_b79k") or ""  # "" = no tag
    allow = bool(getattr(settings, "allow_download", False))
    status: dict[str, Any] = {"available": False, "source": None, "path": None, "message": "", "fix": ""}
    configured = configured_checkpoint(checkpoint, settings)
    if configured:
        try:
            p = check_checkpoint(configured)
        except ModelUnavailable as exc:
            status.update(message=exc.reason, fix=exc.fix, path=configured)
            return status
        status.update(available=True, source="checkpoint", path=str(p), message=f"local checkpoint {p}")
        return status
    cached = find_in_hf_cache(model, pretrained, allow_import=False)
    if cached is not None:
        status.update(available=True, source="hf-cache", path=str(cached),
                      message=f"{model} ({pretrained}) in the Hugging Face cache")
        return status
    known = hf_location(model, pretrained, allow_import=False) is not None
    if allow and known:
        status.update(available=True, source="download",
                      message=f"{model} ({pretrained}) will be downloaded on first use")
        return status
    why = ("downloads are not allowed" if not allow else
           "its Hugging Face source can't be determined without loading open_clip")
    err = _unavailable(model, pretrained, f"not in the Hugging Face cache and {why}")
    status.update(message=err.reason, fix=err.fix)
    return status
