"""A deterministic tiny open_clip model for tests, saved as a safetensors checkpoint.

It loads through exactly the same local-checkpoint path as real weights:
``ClipEmbedder(model_name=TINY_CLIP_NAME, checkpoint=path)``.
"""

from __future__ import annotations

import json
import tempfile
import threading
from pathlib import Path
from typing import Any

TINY_CLIP_NAME = "lodestar-tiny-clip"
TINY_CLIP_DIM = 32
TINY_CLIP_CONFIG: dict[str, Any] = {
    "embed_dim": TINY_CLIP_DIM,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    # vocab_size/context_length must match open_clip's default SimpleTokenizer.
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}

_lock = threading.Lock()
_registered = False


def register_tiny_clip() -> str:
    """Add the tiny config to open_clip's registry (idempotent); returns its name."""
    global _registered
    with _lock:
        import open_clip

        if not _registered or open_clip.get_model_config(TINY_CLIP_NAME) is None:
            folder = Path(tempfile.mkdtemp(prefix="lodestar-tiny-clip-"))
            (folder / f"{TINY_CLIP_NAME}.json").write_text(json.dumps(TINY_CLIP_CONFIG), encoding="utf-8")
            open_clip.add_model_config(folder)
            _registered = True
    return TINY_CLIP_NAME


def make_tiny_clip_checkpoint(path: str | Path) -> Path:
    """Build the tiny model with seed 0 and write its state dict as safetensors."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    register_tiny_clip()
    path = Path(path)
    if path.is_dir():
        path = path / f"{TINY_CLIP_NAME}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = open_clip.create_model(TINY_CLIP_NAME, pretrained=None)
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(path))
    return path
