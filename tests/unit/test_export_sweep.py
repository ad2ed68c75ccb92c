"""Half-written export files left by a killed process are swept (models/exports.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from models.errors import ModelUnavailable
from models.exports import STALE_TMP_S, drop_stale_tmp


def _aged(path: Path, seconds: float) -> Path:
    path.write_bytes(b"\0" * 256)
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def test_only_old_hidden_matches_go(tmp_path: Path) -> None:
    stale = _aged(tmp_path / ".image.onnx.11.22.tmp", STALE_TMP_S + 60)
    young = _aged(tmp_path / ".text.onnx.33.44.tmp", 5)  # another process may be writing it
    real = _aged(tmp_path / "image.onnx", STALE_TMP_S * 10)
    side = _aged(tmp_path / "image.onnx.sha256", STALE_TMP_S * 10)
    assert drop_stale_tmp(tmp_path, ".*.tmp", ".*.sha256.*") == 1
    assert not stale.exists()
    assert young.is_file() and real.is_file() and side.is_file()
    assert drop_stale_tmp(tmp_path / "missing", ".*.tmp") == 0  # no folder: nothing to do, no error


def test_the_clip_loader_sweeps_its_folder_even_when_the_export_is_unusable(tmp_path: Path) -> None:
    """A ViT-B-32 tower cut short is 350 MB: the next start removes it, before anything else."""
    from models.onnx_clip import QUERY_COPY, OnnxClip

    tower = _aged(tmp_path / ".image.onnx.4242.1.tmp", STALE_TMP_S + 60)
    copy = _aged(tmp_path / f".{Path(QUERY_COPY).stem}.4242.1.onnx", STALE_TMP_S + 60)
    sidecar = _aged(tmp_path / ".text.onnx.sha256.4242.1", STALE_TMP_S + 60)
    with pytest.raises(ModelUnavailable, match="no readable config"):
        OnnxClip(tmp_path)
    assert not tower.exists() and not copy.exists() and not sidecar.exists()
