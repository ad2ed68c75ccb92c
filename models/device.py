"""Pick the torch device and CPU thread count for inference."""

from __future__ import annotations

import logging
import os
import platform
import sys

log = logging.getLogger(__name__)

THREADS_ENV = "LODESTAR_TORCH_THREADS"
_VALID = ("auto", "cpu", "cuda", "mps")


def pick_device(setting: str = "auto") -> str:
    """``cuda`` if available, then ``mps``, else ``cpu``; an explicit setting is honoured
    when that device exists, otherwise we fall back to CPU with a warning."""
    setting = (setting or "auto").strip().lower()
    if setting not in _VALID and not setting.startswith("cuda:"):
        log.warning("unknown device setting %r; using auto", setting)
        setting = "auto"
    import torch  # lazy: keeps `import models.*` light

    apply_thread_setting()
    cuda = torch.cuda.is_available()
    mps_backend = getattr(torch.backends, "mps", None)
    mps = bool(mps_backend is not None and mps_backend.is_available())
    if setting == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if setting.startswith("cuda") and not cuda:
        log.warning("device %r requested but CUDA is not available; using cpu", setting)
        return "cpu"
    if setting == "mps" and not mps:
        log.warning("device 'mps' requested but it is not available; using cpu")
        return "cpu"
    return setting


def surely_cpu(setting: str = "auto") -> bool:
    """True when ``pick_device(setting)`` is certain to return ``cpu``, decided without
    importing torch (the light text path must not load it). Conservative: any sign of a
    GPU torch might use (an NVIDIA driver, ROCm's /dev/kfd, Apple silicon's MPS, an
    explicit cuda/mps setting) answers False, and the caller asks torch."""
    setting = (setting or "auto").strip().lower()
    if setting == "cpu":
        return True
    if setting != "auto" and (setting in _VALID or setting.startswith("cuda:")):
        return False  # pick_device may still fall back to cpu, but only torch knows
    # "auto", and unknown settings (auto in pick_device too)
    if sys.platform == "darwin":
        return platform.machine() != "arm64"  # Intel Macs have no MPS
    if sys.platform.startswith("linux"):
        return not (os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/kfd"))
    if sys.platform == "win32":
        system32 = os.path.join(os.environ.get("SystemRoot", r"C:\Windows"), "System32")
        return not os.path.exists(os.path.join(system32, "nvcuda.dll"))
    return False


def apply_thread_setting() -> None:
    """Use LODESTAR_TORCH_THREADS for intra-op threads if set; else keep torch's default."""
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return
    try:
        n = int(raw)
    except ValueError:
        log.warning("%s=%r is not an integer; ignoring it", THREADS_ENV, raw)
        return
    if n < 1:
        log.warning("%s=%d must be >= 1; ignoring it", THREADS_ENV, n)
        return
    import torch

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
        log.info("torch intra-op threads set to %d", n)
