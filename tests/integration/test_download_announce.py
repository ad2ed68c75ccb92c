"""Every download is announced before the first name lookup or connection, on every
attempt; with downloading turned off nothing touches the network at all."""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Any

import pytest

import indexer.cli.main as cli
from indexer.library.settings import Settings, open_paths, save_settings

ANNOUNCED = "Downloading the CLIP image model ViT-B-32 (laion2b_s34b_b79k, about 600 MB) from Hugging Face"


class Recorder:
    """Stands in for stderr and the network: one ordered list of what happened."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.monkeypatch: pytest.MonkeyPatch | None = None

    def run(self, argv: list[str]) -> int:
        """``lodestar ARGV`` with stderr recorded (set here: pytest's capture re-sets
        sys.stderr between a fixture and the test body)."""
        assert self.monkeypatch is not None
        before = sys.stderr
        self.monkeypatch.setattr(sys, "stderr", self)
        try:
            return cli.main(argv)
        finally:
            sys.stderr = before

    # stderr
    def write(self, text: str) -> int:
        if text.strip():
            self.events.append(("said", text))
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    # network
    def said(self) -> list[str]:
        return [t for k, t in self.events if k == "said"]

    def network(self) -> list[str]:
        return [t for k, t in self.events if k == "net"]

    def assert_announced_first(self) -> None:
        kinds = [k for k, _ in self.events]
        assert "net" in kinds, "the test expected a download attempt"
        first = kinds.index("net")
        before = [t for k, t in self.events[:first] if k == "said"]
        assert any(ANNOUNCED in t for t in before), f"not announced before connecting: {self.events[:first + 1]}"
        # One announcement per attempt: each attempt starts with a lookup of the hub.
        attempts = sum(1 for k, t in self.events if k == "net" and t.startswith("lookup huggingface.co"))
        assert sum(ANNOUNCED in t for t in self.said()) == attempts


@pytest.fixture()
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Recorder:
    """No HF cache, no proxy, a machine without network; stderr and sockets recorded in order."""
    import huggingface_hub.constants as hfc

    rec = Recorder()
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(hfc, "HF_HUB_CACHE", str(cache))
    for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "LODESTAR_CLIP_CHECKPOINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LODESTAR_CLIP_LIGHT", "0")

    def lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        rec.events.append(("net", f"lookup {host}"))
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    def connect(self: socket.socket, address: Any, *args: Any) -> Any:
        rec.events.append(("net", f"connect {address}"))
        raise OSError("Network is unreachable")

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    monkeypatch.setattr(socket.socket, "connect", connect)
    rec.monkeypatch = monkeypatch
    return rec


def _folder(tmp_path: Path, *, picture: bool = True) -> Path:
    from PIL import Image

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "note.txt").write_text("a note about lighthouses", encoding="utf-8")
    if picture:
        Image.new("RGB", (40, 30), (200, 40, 40)).save(docs / "red.png")
    return docs


def test_index_announces_the_download_before_connecting(tmp_path: Path, offline: Recorder) -> None:
    data = tmp_path / "data"
    assert offline.run(["index", str(_folder(tmp_path)), "--data-dir", str(data)]) == 0
    offline.assert_announced_first()
    line = next(t for t in offline.said() if ANNOUNCED in t)
    assert line.startswith("lodestar: ") and line.count("\n") == 1
    assert '"allow_download": false' in line and "--clip-checkpoint" in line  # how to turn it off


def test_index_of_a_folder_without_pictures_downloads_nothing(tmp_path: Path, offline: Recorder) -> None:
    """The image model is fetched on first use: a run that meets no picture never touches
    the network; the next run that meets one does (announced first)."""
    data = tmp_path / "data"
    docs = _folder(tmp_path, picture=False)
    assert offline.run(["index", str(docs), "--data-dir", str(data)]) == 0
    assert offline.network() == []
    assert not any(ANNOUNCED in t for t in offline.said())
    from PIL import Image

    Image.new("RGB", (40, 30), (40, 40, 200)).save(docs / "blue.png")
    assert offline.run(["index", str(docs), "--data-dir", str(data)]) == 0
    offline.assert_announced_first()


def test_models_download_announces_before_connecting(tmp_path: Path, offline: Recorder) -> None:
    assert offline.run(["models", "download", "--data-dir", str(tmp_path / "data")]) == 2  # offline: fails
    offline.assert_announced_first()


def test_no_network_at_all_when_downloading_is_off(tmp_path: Path, offline: Recorder) -> None:
    data = tmp_path / "data"
    save_settings(open_paths(data), Settings(allow_download=False))
    assert offline.run(["index", str(_folder(tmp_path)), "--data-dir", str(data)]) == 0
    assert offline.network() == []
    assert not any(ANNOUNCED in t for t in offline.said())


def test_every_attempt_is_announced(tmp_path: Path, offline: Recorder) -> None:
    """The window's path: the runtime hands announcements to whoever shows them (the
    backend's notice signal), once per attempt, each before its first lookup."""
    from indexer.library.runtime import Runtime

    rt = Runtime(open_paths(tmp_path / "data"), Settings())
    rt.on_notice = lambda line: offline.events.append(("said", line))
    for _ in range(2):
        ok, why = rt.image_ready(load=True, download=True, retry=True)
        assert not ok and why
        rt._image = None  # a fresh embedder, as after Download is pressed again
    offline.assert_announced_first()
    assert len(offline.network()) >= 2


def test_architectures_that_fetch_hub_files_are_announced_or_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as hfc

    from models.clip import ClipEmbedder
    from models.errors import ModelUnavailable

    monkeypatch.setattr(hfc, "HF_HUB_OFFLINE", False)
    cfg = {"text_cfg": {"hf_tokenizer_name": "xlm-roberta-base", "hf_model_name": "xlm-roberta-base"}}
    with pytest.raises(ModelUnavailable, match="fetches xlm-roberta-base from Hugging Face"):
        ClipEmbedder("xlm-roberta-base-ViT-B-32", allow_download=False)._check_hub_parts(cfg)
    said: list[str] = []
    ClipEmbedder("xlm-roberta-base-ViT-B-32", allow_download=True, on_download_announce=said.append)._check_hub_parts(cfg)
    assert len(said) == 1 and "xlm-roberta-base" in said[0] and "Hugging Face" in said[0]
    ClipEmbedder("ViT-B-32", allow_download=False)._check_hub_parts({"text_cfg": {"width": 512}})  # nothing to fetch
    monkeypatch.setattr(hfc, "HF_HUB_OFFLINE", True)
    ClipEmbedder("xlm-roberta-base-ViT-B-32", allow_download=False)._check_hub_parts(cfg)  # cache only
