"""Where CLIP weights come from, and every way that can fail without a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from indexer.library.settings import Settings
from models import weights
from models.errors import ModelUnavailable

REPO = Path(__file__).resolve().parents[2]
LAION_REPO = "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"


@pytest.fixture(autouse=True)
def no_network(strict_network: list[Any]) -> list[Any]:
    """Every test here fails on any network attempt, even one the loaders catch."""
    return strict_network


@pytest.fixture(autouse=True)
def open_clip_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests compare embedders of the same weights from different files bit for
    bit; a cached ONNX export of one file (another test's first load) would serve it on
    the light CLIP path, equal only within float rounding (tests/integration/test_clip_light.py)."""
    monkeypatch.setenv("LODESTAR_CLIP_LIGHT", "0")


@pytest.fixture()
def hf_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty Hugging Face cache for this test."""
    import huggingface_hub.constants as hfc

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(hfc, "HF_HUB_CACHE", str(cache))
    return cache


def _put_in_cache(cache: Path, repo_id: str, filename: str, data: bytes) -> Path:
    folder = cache / ("models--" + repo_id.replace("/", "--"))
    rev = "0123456789abcdef0123456789abcdef01234567"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(rev)
    snap = folder / "snapshots" / rev
    snap.mkdir(parents=True)
    (snap / filename).write_bytes(data)
    return snap / filename


class Payload:
    """Unpickling this would create a file: proof that pickle code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (Path(self.marker),))


# -- local checkpoints ----------------------------------------------------------------------
def test_checkpoint_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(clip_checkpoint="/from/settings.safetensors")
    assert weights.configured_checkpoint(None, settings) == "/from/settings.safetensors"
    monkeypatch.setenv(weights.CHECKPOINT_ENV, "/from/env.safetensors")
    assert weights.configured_checkpoint(None, settings) == "/from/env.safetensors"
    assert weights.configured_checkpoint("/explicit.safetensors", settings) == "/explicit.safetensors"
    assert weights.configured_checkpoint(None, None) == "/from/env.safetensors"


def test_missing_checkpoint_is_unavailable(tmp_path: Path, hf_cache: Path) -> None:
    from models.clip import ClipEmbedder

    missing = tmp_path / "nope.safetensors"
    emb = ClipEmbedder(checkpoint=str(missing))
    ok, msg = emb.available()
    assert not ok and "does not exist" in msg
    with pytest.raises(ModelUnavailable, match="does not exist") as info:
        emb.load()
    assert str(missing) in info.value.reason and "LODESTAR_CLIP_CHECKPOINT" in info.value.fix


def test_unsupported_checkpoint_type_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "weights.pkl"
    bad.write_bytes(b"x")
    with pytest.raises(ModelUnavailable, match="unsupported type"):
        weights.check_checkpoint(bad)


def test_pickled_object_is_refused_without_running_it(tmp_path: Path) -> None:
    import torch

    from models.clip import ClipEmbedder
    from tests.support.tiny_clip import register_tiny_clip

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"visual.proj": Payload(str(marker))}, str(evil))
    with pytest.raises(ModelUnavailable, match="refused to load") as info:
        ClipEmbedder(model_name=register_tiny_clip(), checkpoint=str(evil)).load()
    assert "safetensors" in info.value.fix
    assert not marker.exists()


def test_plain_tensor_pt_checkpoint_loads(tiny_clip_checkpoint: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    from models.clip import ClipEmbedder
    from tests.support.tiny_clip import TINY_CLIP_NAME

    pt = tmp_path / "tiny.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in load_file(str(tiny_clip_checkpoint)).items()}}, str(pt))
    a = ClipEmbedder(model_name=TINY_CLIP_NAME, checkpoint=str(pt))
    b = ClipEmbedder(model_name=TINY_CLIP_NAME, checkpoint=str(tiny_clip_checkpoint))
    np.testing.assert_array_equal(a.embed_query("a dog"), b.embed_query("a dog"))


# -- Hugging Face cache ----------------------------------------------------------------------
def test_known_hf_sources_match_open_clip_registry() -> None:
    import open_clip

    for (model, tag), (repo_id, filename) in weights.KNOWN_HF.items():
        hub = open_clip.get_pretrained_cfg(model, tag)["hf_hub"]
        assert hub.rstrip("/") == repo_id
        assert filename == weights.HF_SAFE_WEIGHTS_NAME
    from models.clip import KNOWN_DIMS

    for model, dim in KNOWN_DIMS.items():
        assert open_clip.get_model_config(model)["embed_dim"] == dim, model


def test_weights_found_in_hf_cache(hf_cache: Path) -> None:
    path = _put_in_cache(hf_cache, LAION_REPO, weights.HF_SAFE_WEIGHTS_NAME, b"not really weights")
    resolved = weights.resolve_weights("ViT-B-32", "laion2b_s34b_b79k")
    assert resolved.source == "hf-cache" and resolved.path == path
    status = weights.weights_status(Settings(allow_download=False))
    assert status["available"] and status["source"] == "hf-cache" and status["path"] == str(path)


def test_pickled_file_in_hf_cache_is_a_fallback_only(hf_cache: Path) -> None:
    path = _put_in_cache(hf_cache, LAION_REPO, weights.HF_PICKLE_WEIGHTS_NAME, b"x")
    assert weights.resolve_weights("ViT-B-32", "laion2b_s34b_b79k").path == path


def test_no_weights_and_no_download_is_unavailable(hf_cache: Path) -> None:
    from models.clip import ClipEmbedder

    emb = ClipEmbedder(allow_download=False)
    ok, msg = emb.available()
    assert not ok and "lodestar models download" in msg
    with pytest.raises(ModelUnavailable) as info:
        emb.load()
    assert info.value.reason.startswith(
        "CLIP weights for ViT-B-32 (laion2b_s34b_b79k) are not on this machine and downloading is turned off / failed: "
    )
    assert info.value.fix.startswith("run `lodestar models download` on a connected machine")
    assert "--clip-checkpoint" in info.value.fix


# -- download ---------------------------------------------------------------------------------
class FakeHub:
    """Stands in for huggingface_hub's network calls; behaves like a real download."""

    def __init__(self, data: bytes, dest: Path, chunk: int = 4096) -> None:
        self.data, self.dest, self.chunk = data, dest, chunk
        self.calls: list[tuple[str, str]] = []

    def metadata(self, url: str, timeout: float | None = None, **_: Any) -> Any:
        assert timeout is not None and timeout > 0
        return type("Meta", (), {"size": len(self.data)})()

    def download(self, repo_id: str, filename: str, *, tqdm_class: Any = None, etag_timeout: float = 0, **_: Any) -> str:
        assert etag_timeout > 0
        self.calls.append((repo_id, filename))
        bar = tqdm_class(total=len(self.data), initial=0, unit="B", desc=filename)
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        with open(self.dest, "wb") as fh:
            for i in range(0, len(self.data), self.chunk):
                piece = self.data[i : i + self.chunk]
                fh.write(piece)
                bar.update(len(piece))
        bar.close()
        return str(self.dest)


def _patch_hub(monkeypatch: pytest.MonkeyPatch, hub: FakeHub) -> None:
    import huggingface_hub

    monkeypatch.setattr(weights, "_probe_hub", lambda *a, **k: None)  # "online"
    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", hub.metadata)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hub.download)


def test_download_reports_progress_and_loads(
    monkeypatch: pytest.MonkeyPatch, hf_cache: Path, tiny_clip_checkpoint: Path
) -> None:
    from models.clip import ClipEmbedder
    from tests.support.tiny_clip import TINY_CLIP_NAME

    monkeypatch.setitem(weights.KNOWN_HF, (TINY_CLIP_NAME, "tiny-tag"), ("lodestar/tiny", weights.HF_SAFE_WEIGHTS_NAME))
    data = tiny_clip_checkpoint.read_bytes()
    hub = FakeHub(data, hf_cache / "downloaded" / weights.HF_SAFE_WEIGHTS_NAME, chunk=1 << 20)
    _patch_hub(monkeypatch, hub)
    seen: list[tuple[int, int]] = []

    emb = ClipEmbedder(model_name=TINY_CLIP_NAME, pretrained="tiny-tag", allow_download=True,
                       on_download_progress=lambda done, total: seen.append((done, total)))
    assert emb.available() == (True, f"{TINY_CLIP_NAME} (tiny-tag) will be downloaded on first use")
    q = emb.embed_query("a cat")
    assert emb.weights_source == "download" and emb.model_id == f"open_clip/{TINY_CLIP_NAME}/tiny-tag"
    assert hub.calls == [("lodestar/tiny", weights.HF_SAFE_WEIGHTS_NAME)]
    assert seen[0] == (0, len(data)) and seen[-1] == (len(data), len(data))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert all(total == len(data) for _, total in seen)
    assert len(seen) > 3
    np.testing.assert_array_equal(
        q, ClipEmbedder(model_name=TINY_CLIP_NAME, checkpoint=str(tiny_clip_checkpoint)).embed_query("a cat")
    )


def test_download_failure_is_unavailable(monkeypatch: pytest.MonkeyPatch, hf_cache: Path) -> None:
    hub = FakeHub(b"abc", hf_cache / "x")

    def broken(*_: Any, **__: Any) -> str:
        raise OSError("connection reset by peer")

    _patch_hub(monkeypatch, hub)
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", broken)
    with pytest.raises(ModelUnavailable, match="download failed .*connection reset") as info:
        weights.resolve_weights("ViT-B-32", "laion2b_s34b_b79k", allow_download=True)
    assert info.value.fix == weights.FIX


def test_unreachable_hub_is_unavailable(monkeypatch: pytest.MonkeyPatch, hf_cache: Path) -> None:
    import huggingface_hub

    def unreachable(*_: Any, **__: Any) -> Any:
        raise TimeoutError("timed out")

    monkeypatch.setattr(weights, "_probe_hub", lambda *a, **k: None)
    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", unreachable)
    with pytest.raises(ModelUnavailable, match="cannot reach the Hugging Face Hub"):
        weights.download_weights("ViT-B-32", "laion2b_s34b_b79k")


def test_offline_probe_fails_fast(monkeypatch: pytest.MonkeyPatch, hf_cache: Path) -> None:
    import huggingface_hub

    def no_route(address: Any, timeout: float | None = None, **_: Any) -> Any:
        assert timeout is not None and timeout <= 5
        raise OSError("Network is unreachable")

    def must_not_run(*_: Any, **__: Any) -> Any:
        raise AssertionError("the hub client must not be tried when the probe fails")

    for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(socket, "create_connection", no_route)
    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", must_not_run)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", must_not_run)
    with pytest.raises(ModelUnavailable, match="cannot be reached") as info:
        weights.resolve_weights("ViT-B-32", "laion2b_s34b_b79k", allow_download=True)
    assert info.value.reason.startswith("CLIP weights for ViT-B-32 (laion2b_s34b_b79k) are not on this machine")
    assert info.value.fix == weights.FIX


def test_stalled_download_gives_up(monkeypatch: pytest.MonkeyPatch, hf_cache: Path) -> None:
    release = threading.Event()
    hub = FakeHub(b"abc", hf_cache / "x")

    def stuck(*_: Any, **__: Any) -> str:
        release.wait(10)
        raise OSError("cancelled")

    _patch_hub(monkeypatch, hub)
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", stuck)
    try:
        with pytest.raises(ModelUnavailable, match="stalled"):
            weights.download_weights("ViT-B-32", "laion2b_s34b_b79k", stall_s=0.3)
    finally:
        release.set()


# -- status -------------------------------------------------------------------------------------
def test_weights_status_shapes(tmp_path: Path, hf_cache: Path, tiny_clip_checkpoint: Path) -> None:
    off = weights.weights_status(Settings(allow_download=False))
    assert off == {"available": False, "source": None, "path": None, "message": off["message"], "fix": weights.FIX}
    assert off["message"].startswith("CLIP weights for ViT-B-32 (laion2b_s34b_b79k) are not on this machine")
    on = weights.weights_status(Settings(allow_download=True))
    assert on["available"] and on["source"] == "download" and on["path"] is None
    ck = weights.weights_status(Settings(clip_checkpoint=str(tiny_clip_checkpoint)))
    assert ck["available"] and ck["source"] == "checkpoint" and ck["path"] == str(tiny_clip_checkpoint)
    gone = weights.weights_status(Settings(clip_checkpoint=str(tmp_path / "gone.safetensors")))
    assert not gone["available"] and "does not exist" in gone["message"] and gone["fix"]


def test_weights_status_without_torch(tmp_path: Path) -> None:
    code = (
        "import sys, json; from indexer.library.settings import Settings; from models.weights import weights_status; "
        "s = weights_status(Settings(allow_download=False)); "
        "assert 'torch' not in sys.modules and 'open_clip' not in sys.modules, 'heavy import'; "
        "print(json.dumps(s))"
    )
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    env.pop(weights.CHECKPOINT_ENV, None)
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert '"available": false' in proc.stdout and "lodestar models download" in proc.stdout


def test_models_never_unpickle_or_trust_remote_code() -> None:
    """Static check (RELIABILITY S1): every torch.load passes weights_only=True, and
    trust_remote_code is never set to anything but False."""
    import ast

    for path in sorted((REPO / "models").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            kwargs = {k.arg: k.value for k in node.keywords if k.arg}
            if name == "load" and isinstance(func, ast.Attribute) and getattr(func.value, "id", "") == "torch":
                wo = kwargs.get("weights_only")
                assert isinstance(wo, ast.Constant) and wo.value is True, f"{path}:{node.lineno} torch.load"
            if "trust_remote_code" in kwargs:
                trc = kwargs["trust_remote_code"]
                assert isinstance(trc, ast.Constant) and trc.value is False, f"{path}:{node.lineno}"
