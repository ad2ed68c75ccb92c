"""Optional ONNX Runtime path for the text model (fp32 or int8 dynamic quantisation).

The transformer of a loaded sentence-transformers model is exported once, locally,
from the weights already on disk (``torch.onnx.export``, legacy TorchScript
exporter: no optimum, no onnxscript, no download) into a cache folder keyed by the
weights' hash, optionally quantised with ``onnxruntime.quantization.quantize_dynamic``.
Encoding then tokenises with the model's own fast tokenizer, runs the ONNX graph
on length-sorted batches, mean-pools with the attention mask and L2-normalises,
exactly as the torch Pooling + Normalize modules of all-MiniLM-L6-v2 do.

Only mean-pooling models are supported (the ``1_Pooling`` config is checked);
anything else raises ``ModelUnavailable`` and the caller keeps the torch path.
Figures (throughput ratio, MRR@10 difference) are in docs/PERFORMANCE.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from models.errors import ModelUnavailable

log = logging.getLogger(__name__)

OnnxVariant = Literal["onnx", "onnx-int8"]
_FIX = "`pip install 'lodestar[onnx]'` (onnxruntime, onnx) or set text_backend to torch"
EXPORT_VERSION = 1  # bump when the export recipe changes: cached graphs are rebuilt


def default_cache_dir() -> Path:
    env = os.environ.get("LODESTAR_ONNX_CACHE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("lodestar", appauthor=False)) / "onnx"


def _weights_digest(folder: Path) -> str:
    h = hashlib.sha256(f"v{EXPORT_VERSION}".encode())
    for name in ("model.safetensors", "config.json", "tokenizer.json"):
        p = folder / name
        if p.is_file():
            with open(p, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()[:16]


def _check_mean_pooling(folder: Path) -> None:
    cfg = folder / "1_Pooling" / "config.json"
    if not cfg.is_file():
        return
    data = json.loads(cfg.read_text(encoding="utf-8"))
    if not data.get("pooling_mode_mean_tokens") or any(
        data.get(k) for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_lasttoken")
    ):
        raise ModelUnavailable("the ONNX text path supports mean-pooling models only", "set text_backend to torch")


def export(st_model: Any, folder: Path, variant: OnnxVariant, cache_dir: Path | None = None) -> Path:
    """Export (once) the transformer of ``st_model`` loaded from ``folder``; returns the .onnx path."""
    try:
        import onnxruntime  # noqa: F401 - fail early with a clear message
    except ImportError as exc:
        raise ModelUnavailable(f"onnxruntime is not installed ({exc})", _FIX) from exc
    import torch

    _check_mean_pooling(folder)
    out_dir = (cache_dir or default_cache_dir()) / _weights_digest(folder)
    fp32 = out_dir / "model.onnx"
    int8 = out_dir / "model_int8.onnx"
    target = int8 if variant == "onnx-int8" else fp32
    if target.is_file():
        return target
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not fp32.is_file():
        hf = st_model[0].auto_model  # transformers model inside the first ST module
        hf = hf.to("cpu").float().eval()
        ids = torch.ones((2, 16), dtype=torch.long)
        mask = torch.ones((2, 16), dtype=torch.long)
        types = torch.zeros((2, 16), dtype=torch.long)

        class _Wrap(torch.nn.Module):
            def __init__(self, m: Any) -> None:
                super().__init__()
                self.m = m

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
                return self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[0]

        tmp = fp32.with_name(f".model.{os.getpid()}.onnx")
        with torch.inference_mode():
            torch.onnx.export(
                _Wrap(hf), (ids, mask, types), str(tmp),
                input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["token_embeddings"],
                dynamic_axes={n: {0: "batch", 1: "seq"} for n in ("input_ids", "attention_mask", "token_type_ids", "token_embeddings")},
                opset_version=17, do_constant_folding=True, dynamo=False,
            )
        os.replace(tmp, fp32)
        log.info("exported text model to %s", fp32)
    if variant == "onnx-int8" and not int8.is_file():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp = int8.with_name(f".model_int8.{os.getpid()}.onnx")
        # Per-channel weights keep all-MiniLM-L6-v2 much closer to fp32 than per-tensor.
        quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
        os.replace(tmp, int8)
        log.info("quantised text model to %s", int8)
    return target


class OnnxTextEncoder:
    """Tokenise → ONNX transformer → mean pooling → L2 normalise, in length-sorted batches."""

    def __init__(self, onnx_path: Path, tokenizer: Any, max_seq_length: int, threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or _default_threads()
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.tokenizer = tokenizer
        self.max_seq_length = int(max_seq_length)
        self.path = onnx_path
        self._lock = threading.Lock()  # one run at a time: a session's threads are the CPU budget

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out: list[np.ndarray] = [np.empty(0)] * len(texts)
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            enc = self.tokenizer(
                [texts[i] for i in idx], padding=True, truncation=True,
                max_length=self.max_seq_length, return_tensors="np",
            )
            feeds = {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids") if k in self.input_names}
            if "token_type_ids" in self.input_names and "token_type_ids" not in feeds:
                feeds["token_type_ids"] = np.zeros_like(feeds["input_ids"])
            with self._lock:
                tok = self.session.run(None, feeds)[0]
            mask = feeds["attention_mask"][..., None].astype(np.float32)
            pooled = (tok * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
            pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            for j, i in enumerate(idx):
                out[i] = pooled[j]
        return np.ascontiguousarray(np.stack(out), dtype=np.float32)


def _default_threads() -> int:
    try:
        import torch

        return max(1, torch.get_num_threads())
    except ImportError:
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def build_encoder(st_model: Any, folder: str | Path, variant: OnnxVariant, cache_dir: Path | None = None) -> OnnxTextEncoder:
    """Export if needed and open an ONNX Runtime session for ``st_model`` (loaded from ``folder``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelUnavailable(f"the ONNX text path needs a local model folder (got {folder})", "set text_backend to torch")
    path = export(st_model, folder, variant, cache_dir)
    return OnnxTextEncoder(path, st_model.tokenizer, st_model.max_seq_length)
