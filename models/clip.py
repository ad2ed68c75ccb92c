"""CLIP image and text embeddings with open_clip, loaded from a local weights file.

The architecture comes from open_clip's config registry; the weights always come
from ``models.weights`` (local checkpoint → HF cache → download if allowed) and are
read as safetensors or weights_only tensors, never through open_clip's own
``pretrained=`` download path.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np

from models.errors import ModelUnavailable
from models.weights import (
    ProgressFn,
    configured_checkpoint,
    file_sha256,
    load_state_dict,
    resolve_weights,
    weights_status,
)

log = logging.getLogger(__name__)

DEFAULT_CLIP_MODEL = "ViT-B-32"
DEFAULT_CLIP_PRETRAINED = "laion2b_s34b_b79k"


def _drop_random_init_warning(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("No pretrained weights loaded for model")


KNOWN_DIMS = {"ViT-B-32": 512, "ViT-B-16": 512, "ViT-L-14": 768, "ViT-H-14": 1024, "RN50": 1024}


class ClipEmbedder:
    """open_clip model behind the Embedder protocol: documents are RGB PIL images."""

    def __init__(
        self,
        model_name: str = DEFAULT_CLIP_MODEL,
        pretrained: str | None = DEFAULT_CLIP_PRETRAINED,
        checkpoint: str | None = None,
        allow_download: bool = False,
        device: str = "auto",
        batch_size: int = 32,
        on_download_progress: ProgressFn | None = None,
    ) -> None:
        self.model_name = model_name
        self.pretrained = pretrained or ""
        self.checkpoint = configured_checkpoint(checkpoint)  # argument, then LODESTAR_CLIP_CHECKPOINT
        self.allow_download = allow_download
        self.device_setting = device
        self.batch_size = max(1, int(batch_size))
        self.on_download_progress = on_download_progress
        self.device: str | None = None
        self.weights_source: str | None = None
        self._model: Any = None
        self._preprocess: Callable[[Any], Any] | None = None
        self._tokenizer: Callable[..., Any] | None = None
        self._dim: int | None = None
        self._model_id: str | None = None
        self._lock = threading.Lock()

    # -- identity -----------------------------------------------------------------
    @property
    def model_id(self) -> str:
        """``open_clip/<model>/<tag>``; a local checkpoint is named by its content hash,
        because the same tag can't vouch for what an arbitrary file contains."""
        if self._model_id is None:
            if self.checkpoint:
                try:
                    ident = "sha256-" + file_sha256(self.checkpoint)[:12]
                except OSError:  # not cached: the file may appear later
                    return f"open_clip/{self.model_name}/missing-checkpoint"
            else:
                ident = self.pretrained or "untrained"
            self._model_id = f"open_clip/{self.model_name}/{ident}"
        return self._model_id

    @property
    def dim(self) -> int:
        """Embedding size from open_clip's config (no weights needed)."""
        if self._dim is None and self.model_name in KNOWN_DIMS:
            # Known without importing torch/open_clip: keeps `status` and start-up light.
            self._dim = KNOWN_DIMS[self.model_name]
        if self._dim is None:
            import open_clip

            cfg = open_clip.get_model_config(self.model_name)
            if not cfg or "embed_dim" not in cfg:
                raise ModelUnavailable(
                    f"unknown open_clip model {self.model_name!r}", "set clip_model to a model open_clip knows"
                )
            self._dim = int(cfg["embed_dim"])
        return self._dim

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def available(self) -> tuple[bool, str]:
        """Can weights be had (cheap: no torch, no network)? Plus a message for people."""
        # weights_status reads Settings-like attributes; the checkpoint is passed explicitly.
        spec = SimpleNamespace(clip_model=self.model_name, clip_pretrained=self.pretrained,
                               allow_download=self.allow_download, clip_checkpoint="")
        st = weights_status(spec, checkpoint=self.checkpoint or None)  # type: ignore[arg-type]
        msg = st["message"] if st["available"] or not st["fix"] else f"{st['message']}. {st['fix']}"
        return bool(st["available"]), msg

    # -- loading --------------------------------------------------------------------
    def load(self) -> None:
        """Build the model and load weights (idempotent, thread-safe, any thread)."""
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            self._load_locked()

    def _load_locked(self) -> None:
        from models.device import pick_device

        resolved = resolve_weights(
            self.model_name,
            self.pretrained,
            checkpoint=self.checkpoint or None,
            allow_download=self.allow_download,
            on_progress=self.on_download_progress,
        )
        try:
            import open_clip
            import torch
        except ImportError as exc:
            raise ModelUnavailable(f"open_clip is not installed ({exc})", "`pip install open_clip_torch`") from exc
        if open_clip.get_model_config(self.model_name) is None:
            raise ModelUnavailable(
                f"unknown open_clip model {self.model_name!r}", "set clip_model to a model open_clip knows"
            )
        # Preprocessing/activation of a tag come from its registry entry; we pass
        # them explicitly because weights are never loaded through pretrained=.
        pcfg = open_clip.get_pretrained_cfg(self.model_name, self.pretrained) if self.pretrained else {}
        kwargs: dict[str, Any] = {}
        for src, dst in (("mean", "image_mean"), ("std", "image_std"),
                         ("interpolation", "image_interpolation"), ("resize_mode", "image_resize_mode")):
            if pcfg.get(src):
                kwargs[dst] = pcfg[src]
        root = logging.getLogger()
        root.addFilter(_drop_random_init_warning)  # we load the weights ourselves, right below
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                self.model_name,
                pretrained=None,
                force_quick_gelu=bool(pcfg.get("quick_gelu", False)),
                pretrained_text=False,
                **kwargs,
            )
        finally:
            root.removeFilter(_drop_random_init_warning)
        state = load_state_dict(resolved.path)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ModelUnavailable(
                f"CLIP weights {resolved.path} don't match model {self.model_name}: {str(exc).splitlines()[0]}",
                "use the checkpoint that belongs to clip_model, or change clip_model in settings",
            ) from exc
        del state
        device = pick_device(self.device_setting)
        model = model.to(device)
        if device.startswith("cuda"):
            model = model.half()  # fp16 on GPU: half the memory, faster matmuls
        model.eval()
        tokenizer = open_clip.get_tokenizer(self.model_name)  # bundled BPE vocab; no network for ViT-*
        self._dim = int(open_clip.get_model_config(self.model_name)["embed_dim"])
        self._preprocess = preprocess
        self._tokenizer = tokenizer
        self.device = device
        self.weights_source = resolved.source
        self._torch = torch
        self._model = model
        log.info("CLIP %s loaded on %s from %s (%s)", self.model_id, device, resolved.path, resolved.source)

    def _ensure(self) -> Any:
        self.load()
        return self._model

    # -- embedding ------------------------------------------------------------------
    def preprocess(self, image: Any) -> Any:
        """PIL image → model input tensor [3, H, W]; safe to call from a thread pool."""
        self.load()
        assert self._preprocess is not None
        if getattr(image, "mode", "RGB") != "RGB":
            image = image.convert("RGB")
        return self._preprocess(image)

    def embed_tensors(self, batch: Any) -> np.ndarray:
        """Embed an already preprocessed batch [n, 3, H, W] → float32 [n, dim], unit rows."""
        model = self._ensure()
        torch = self._torch
        if batch.ndim == 3:
            batch = batch.unsqueeze(0)
        if batch.shape[0] == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        dtype = next(model.parameters()).dtype
        with torch.inference_mode():
            feats = model.encode_image(batch.to(self.device, dtype=dtype))
            feats = torch.nn.functional.normalize(feats.float(), dim=-1)
        return np.ascontiguousarray(feats.cpu().numpy(), dtype=np.float32)

    def embed_documents(self, items: Sequence[Any]) -> np.ndarray:
        images = list(items)
        self.load()
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        torch = self._torch
        out = []
        for i in range(0, len(images), self.batch_size):
            batch = torch.stack([self.preprocess(im) for im in images[i : i + self.batch_size]])
            out.append(self.embed_tensors(batch))
        return np.concatenate(out, axis=0)

    def embed_image(self, image: Any) -> np.ndarray:
        return self.embed_documents([image])[0]

    def embed_query(self, text: str) -> np.ndarray:
        """Text → float32 [dim] through the text tower, comparable with image vectors."""
        model = self._ensure()
        torch = self._torch
        assert self._tokenizer is not None
        tokens = self._tokenizer([text])
        with torch.inference_mode():
            feats = encode_text_trimmed(model, tokens.to(self.device))
            feats = torch.nn.functional.normalize(feats.float(), dim=-1)
        return np.ascontiguousarray(feats[0].cpu().numpy(), dtype=np.float32)

    def close(self) -> None:
        with self._lock:
            self._model = None
            self._preprocess = None
            self._tokenizer = None


def encode_text_trimmed(model: Any, tokens: Any) -> Any:
    """``model.encode_text`` on only the tokens up to the end-of-text token.

    CLIP's text tower is causal and pools at the end-of-text position, so the padding
    after it (77 positions in all; a typed query uses ~10) cannot change the result:
    dropping it is exact and makes a query's text embedding several times cheaper on a
    CPU (measured in bench/bench_clip_cpu.py). Models without that structure (other
    pooling, no causal mask, a custom text tower) take the library's path.
    """
    import torch

    mask = getattr(model, "attn_mask", None)
    if (
        getattr(model, "text_pool_type", None) != "argmax"
        or mask is None
        or not hasattr(model, "token_embedding")
        or not hasattr(model, "positional_embedding")
    ):
        return model.encode_text(tokens)
    n = int(tokens.argmax(dim=-1).max()) + 1  # the end-of-text token has the highest id
    tokens = tokens[:, :n]
    cast = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast) + model.positional_embedding[:n].to(cast)
    x = model.transformer(x, attn_mask=mask[:n, :n])
    x = model.ln_final(x)
    x = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]
    proj = model.text_projection
    if proj is not None:
        x = proj(x) if isinstance(proj, torch.nn.Linear) else x @ proj
    return x
