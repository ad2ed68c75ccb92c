"""The image model's state has one source (Runtime.image_ready → image_state) and says
what really happened: not downloaded yet, downloading turned off, or a download that
failed (offline: "No internet connection"), never "turned off / failed" or a promise
that cannot come true (issue 14.6)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


def _runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, allow: bool) -> Any:
    from indexer.library.runtime import Runtime
    from indexer.library.settings import Settings, open_paths
    from models import weights

    monkeypatch.delenv("LODESTAR_CLIP_CHECKPOINT", raising=False)
    monkeypatch.setattr(weights, "find_in_hf_cache", lambda *a, **k: None)  # nothing cached here
    return Runtime(open_paths(tmp_path / "data"), Settings(allow_download=allow))


def test_not_downloaded_yet_is_said_plainly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rt = _runtime(tmp_path, monkeypatch, allow=True)
    ok, why = rt.image_ready(load=False)
    assert not ok
    st = rt.image_state
    assert st.download_allowed and not st.download_failed and not st.offline
    assert st.reason == "the image model is not downloaded yet"
    assert "fetched when indexing starts" not in why and "turned off" not in why


def test_download_turned_off_is_said_plainly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rt = _runtime(tmp_path, monkeypatch, allow=False)
    ok, why = rt.image_ready(load=True)
    assert not ok
    assert not rt.image_state.download_allowed
    assert "downloading it is turned off" in rt.image_state.reason
    assert "/ failed" not in why


def test_offline_download_says_no_internet_and_is_remembered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rt = _runtime(tmp_path, monkeypatch, allow=True)
    monkeypatch.setattr(rt.image_embedder, "_light_fits", lambda: False)
    ok, why = rt.image_ready(load=True, download=True)  # the network is blocked in tests: offline
    assert not ok
    st = rt.image_state
    assert st.download_failed and st.offline
    assert st.reason.startswith("No internet connection: ")
    assert "turned off" not in why
    # A later check (the searcher, the window) reads the same state, without trying again.
    ok, _ = rt.image_ready(load=False)
    assert not ok and rt.image_state.reason == st.reason and rt.image_state.offline
    # Pressing Download again (retry) really tries again instead of answering from memory.
    calls: list[int] = []
    monkeypatch.setattr(rt.image_embedder, "load", lambda: calls.append(1))
    assert rt.image_ready(load=True, download=True, retry=True) == (True, "")
    assert calls == [1] and rt.image_state.ready
