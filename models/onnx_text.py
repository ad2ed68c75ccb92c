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

Light path (``open_light``): once the fp32 graph is cached, a model folder can be
served from ``tokenizer.json`` (the ``tokenizers`` package) + ONNX Runtime alone,
without importing torch, transformers or sentence-transformers — which is most of
a cold start's time and ~0.4 GB of memory. Its vectors equal the torch path's.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from models.errors import ModelUnavailable
from models.exports import TORCH_EXPORT, drop_stale_tmp
from models.weights import sha256_of

log = logging.getLogger(__name__)

OnnxVariant = Literal["onnx", "onnx-int8"]
_FIX = "`pip install onnxruntime onnx` or set text_backend to torch"
EXPORT_VERSION = 1  # bump when the export recipe changes: cached graphs are rebuilt


def default_cache_dir() -> Path:
    env = os.environ.get("LODESTAR_ONNX_CACHE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("lodestar", appauthor=False)) / "onnx"


def _weights_digest(folder: Path, known: dict[str, str] | None = None) -> str:
    """Cache key: the export recipe's version and the sha256 of each file the graph
    and tokenizer come from. ``known`` holds sha256s the caller already computed
    (the bundled weights' pin check), so a start reads the 90 MB weights once."""
    h = hashlib.sha256(f"v{EXPORT_VERSION}".encode())
    for name in ("model.safetensors", "config.json", "tokenizer.json"):
        p = folder / name
        if p.is_file():
            digest = (known or {}).get(name) or _sha256(p)
            h.update(f"{name}:{digest}\n".encode())
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


def export_dir(folder: Path, cache_dir: Path | None = None, known: dict[str, str] | None = None) -> Path:
    """Cache folder for the exports of the model in ``folder`` (keyed by its weights' hash)."""
    return (cache_dir or default_cache_dir()) / _weights_digest(folder, known)


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _write_sidecar(path: Path) -> None:
    side = _sidecar(path)
    tmp = side.with_name(f".{side.name}.{os.getpid()}.{threading.get_ident()}")
    tmp.write_text(_sha256(path) + "\n", encoding="ascii")
    os.replace(tmp, side)


def _sha256(path: Path) -> str:
    return sha256_of(path)


def _drop_stale_tmp(out_dir: Path) -> None:
    """Half-written exports and query copies left by a process that exited mid-write
    (``.model.<pid>.<thread>.onnx``, ``.model_query_w8.<pid>.<thread>.onnx``)."""
    drop_stale_tmp(out_dir, ".model*.onnx", ".*.sha256.*")


def export_fp32(hf_model: Any, folder: Path, cache_dir: Path | None = None, *, force: bool = False,
                known: dict[str, str] | None = None) -> Path:
    """Export a transformers model (the first module of a sentence-transformers model
    loaded from ``folder``) to ``<cache>/<digest>/model.onnx`` plus a sha256 sidecar.

    ``force`` replaces an existing file (one the light path found unusable). The caller
    owns ``hf_model`` for the duration: it is moved to CPU fp32 and traced.
    """
    try:
        import onnx  # noqa: F401 - torch.onnx.export (TorchScript exporter) needs it
    except ImportError as exc:
        raise ModelUnavailable(f"onnx is not installed ({exc})", _FIX) from exc
    import torch

    _check_mean_pooling(folder)
    out_dir = export_dir(folder, cache_dir, known)
    fp32 = out_dir / "model.onnx"
    if out_dir.is_dir():
        _drop_stale_tmp(out_dir)  # also after the export exists: a query copy can be cut short later
    if fp32.is_file() and not force:
        if not _sidecar(fp32).is_file():
            _write_sidecar(fp32)
        return fp32
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    hf = hf_model.to("cpu").float().eval()
    ids = torch.ones((2, 16), dtype=torch.long)
    mask = torch.ones((2, 16), dtype=torch.long)
    types = torch.zeros((2, 16), dtype=torch.long)

    class _Wrap(torch.nn.Module):
        def __init__(self, m: Any) -> None:
            super().__init__()
            self.m = m

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[0]

    tmp = fp32.with_name(f".model.{os.getpid()}.{threading.get_ident()}.onnx")
    try:
        with TORCH_EXPORT, torch.inference_mode():
            torch.onnx.export(
                _Wrap(hf), (ids, mask, types), str(tmp),
                input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["token_embeddings"],
                dynamic_axes={n: {0: "batch", 1: "seq"} for n in ("input_ids", "attention_mask", "token_type_ids", "token_embeddings")},
                opset_version=17, do_constant_folding=True, dynamo=False,
            )
        _sidecar(fp32).unlink(missing_ok=True)  # never a new graph next to an old hash
        os.replace(tmp, fp32)
    finally:
        tmp.unlink(missing_ok=True)
    _write_sidecar(fp32)
    log.info("exported text model to %s", fp32)
    return fp32


def export(st_model: Any, folder: Path, variant: OnnxVariant, cache_dir: Path | None = None) -> Path:
    """Export (once) the transformer of ``st_model`` loaded from ``folder``; returns the .onnx path."""
    try:
        import onnxruntime  # noqa: F401 - fail early with a clear message
    except ImportError as exc:
        raise ModelUnavailable(f"onnxruntime is not installed ({exc})", _FIX) from exc

    _check_mean_pooling(folder)
    out_dir = export_dir(folder, cache_dir)
    fp32 = out_dir / "model.onnx"
    int8 = out_dir / "model_int8.onnx"
    target = int8 if variant == "onnx-int8" else fp32
    if target.is_file():
        return target
    if not fp32.is_file():
        export_fp32(st_model[0].auto_model, folder, cache_dir)
    if variant == "onnx-int8" and not int8.is_file():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp = int8.with_name(f".model_int8.{os.getpid()}.onnx")
        # Per-channel weights keep all-MiniLM-L6-v2 much closer to fp32 than per-tensor.
        quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
        os.replace(tmp, int8)
        log.info("quantised text model to %s", int8)
    return target


class JsonTokenizer:
    """``tokenizers.Tokenizer`` from a model's tokenizer.json, called the way
    sentence-transformers calls the HF fast tokenizer: each text stripped, special
    tokens added, right-truncated to ``max_length`` (special tokens included); no
    padding, since every text runs alone. The file's own truncation/padding (128,
    fixed, for all-MiniLM-L6-v2) is overridden. Not safe to share across threads:
    callers serialise ``ids`` (TextEmbedder's infer lock) and use ``counter()`` copies.
    """

    def __init__(self, path: Path, max_length: int) -> None:
        from tokenizers import Tokenizer

        self.path = Path(path)
        self.max_length = int(max_length)
        self._json = self.path.read_text(encoding="utf-8")
        tok = Tokenizer.from_str(self._json)
        tok.enable_truncation(self.max_length)
        tok.no_padding()
        self._tok = tok

    def ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's ids with special tokens, truncated, unpadded."""
        return [e.ids for e in self._tok.encode_batch([str(t).strip() for t in texts], add_special_tokens=True)]

    def counter(self) -> Any:
        """A private ``tokenizers.Tokenizer`` without truncation or padding, for counting."""
        from tokenizers import Tokenizer

        tok = Tokenizer.from_str(self._json)
        tok.no_truncation()
        tok.no_padding()
        return tok


class OnnxTextEncoder:
    """Tokenise → ONNX transformer → mean pooling → L2 normalise, one text per run.

    Each text runs alone, unpadded, on one core, and ``workers`` texts run at once (one
    shared session with a single intra-op thread is safe to run from several threads).
    On a 2-core CPU this embedded 1.7-1.9× the passages per second of sentence-transformers'
    padded batches of 64, and 1.7× one two-threaded run of padded batches of 32, with the
    same vectors (docs/PERFORMANCE.md, "Measured alone, 2026-11-30 night"): padding and splitting small
    matrices across cores cost more than batching saved. Alone, a text's vector depends
    on its text only, never on the texts beside it (it did with int8, whose activation
    scales are per forward pass).
    """

    def __init__(self, onnx_path: Path, tokenizer: Any, max_seq_length: int, threads: int | None = None) -> None:
        import onnxruntime as ort

        self.workers = max(1, int(threads or _default_threads()))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1  # the parallelism is across texts (self.workers)
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        # Give the arena back after every run, so a long passage's buffers do not stay
        # resident while the app idles.
        self._run_options = ort.RunOptions()
        self._run_options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.tokenizer = tokenizer  # HF fast tokenizer, or a JsonTokenizer (light path)
        self.max_seq_length = int(max_seq_length)
        self.path = onnx_path
        self._pool: Any = None  # ThreadPoolExecutor of workers - 1 threads, made on first use
        self._pool_lock = threading.Lock()

    def _token_ids(self, texts: list[str]) -> list[list[int]]:
        """Each text's ids with special tokens, truncated to max_seq_length, unpadded."""
        if isinstance(self.tokenizer, JsonTokenizer):
            return self.tokenizer.ids(texts)
        enc = self.tokenizer([t.strip() for t in texts], padding=False, truncation=True, max_length=self.max_seq_length)
        return [list(ids) for ids in enc["input_ids"]]

    def _embed_one(self, ids: list[int]) -> np.ndarray:
        input_ids = np.asarray([ids], dtype=np.int64)
        feeds = {"input_ids": input_ids}
        if "attention_mask" in self.input_names:
            feeds["attention_mask"] = np.ones_like(input_ids)
        if "token_type_ids" in self.input_names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        tokens = self.session.run(None, feeds, self._run_options)[0][0]
        pooled = tokens.mean(axis=0, dtype=np.float32)  # no padding: every token counts
        return pooled / max(float(np.linalg.norm(pooled)), 1e-12)

    def _executor(self) -> Any:
        with self._pool_lock:
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(self.workers - 1, thread_name_prefix="lodestar-text-run")
            return self._pool

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Unit vectors for ``texts``, in order. ``batch_size`` is accepted for the
        callers' sake: texts run one at a time, ``workers`` at once."""
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        ids = self._token_ids(texts)
        out: list[np.ndarray | None] = [None] * len(texts)
        # Longest first, so the workers finish together.
        pending = iter(sorted(range(len(texts)), key=lambda i: -len(ids[i])))
        take = threading.Lock()

        def work() -> None:
            while True:
                with take:
                    i = next(pending, None)
                if i is None:
                    return
                out[i] = self._embed_one(ids[i])

        helpers = min(self.workers, len(texts)) - 1
        futures = [self._executor().submit(work) for _ in range(helpers)] if helpers > 0 else []
        try:
            work()  # the calling thread is a worker too: a single text never changes thread
        finally:
            for f in futures:
                f.result()
        return np.ascontiguousarray(np.stack(out), dtype=np.float32)  # type: ignore[arg-type]

    def close(self) -> None:
        """Let the worker threads go (TextEmbedder.close); a later encode makes new ones."""
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False)
                self._pool = None


def _default_threads() -> int:
    """LODESTAR_TORCH_THREADS if set, else torch's count if torch is already imported
    (the onnx backends load it anyway), else the CPUs this process may use — never
    importing torch just to ask (the light path must not load it)."""
    raw = os.environ.get("LODESTAR_TORCH_THREADS", "").strip()
    if raw.isdigit() and int(raw) >= 1:
        return int(raw)
    torch = sys.modules.get("torch")
    if torch is not None:
        return max(1, int(torch.get_num_threads()))
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def build_encoder(st_model: Any, folder: str | Path, variant: OnnxVariant, cache_dir: Path | None = None) -> OnnxTextEncoder:
    """Export if needed and open an ONNX Runtime session for ``st_model`` (loaded from ``folder``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelUnavailable(f"the ONNX text path needs a local model folder (got {folder})", "set text_backend to torch")
    path = export(st_model, folder, variant, cache_dir)
    return OnnxTextEncoder(path, st_model.tokenizer, st_model.max_seq_length)


# -- light path: no torch, no transformers, no sentence-transformers ---------------------
_LIGHT_MODULES = ("sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling",
                  "sentence_transformers.models.Normalize")


def light_max_seq_length(folder: Path) -> int:
    """Checks that ``folder`` is a model the light path reproduces exactly, returns its
    max_seq_length; raises ``ModelUnavailable`` (with the reason) otherwise.

    Exactly: modules Transformer → mean Pooling (→ Normalize), no prompts, no
    lower-casing outside the tokenizer, a tokenizer.json and an explicit max_seq_length.
    """
    def fail(why: str) -> ModelUnavailable:
        return ModelUnavailable(f"the light text path does not fit {folder}: {why}", "it uses sentence-transformers")

    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        cfg = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise fail(f"cannot read its sentence-transformers config ({exc})") from exc
    kinds = [str(m.get("type", "")) for m in modules] if isinstance(modules, list) else []
    if kinds[:2] != list(_LIGHT_MODULES[:2]) or any(k not in _LIGHT_MODULES for k in kinds) or len(kinds) > 3:
        raise fail(f"modules {kinds}")
    if modules[0].get("path") not in ("", None):
        raise fail("the transformer is not at the folder's root")
    pool_cfg = folder / str(modules[1].get("path", "1_Pooling")) / "config.json"
    try:
        pool = json.loads(pool_cfg.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise fail(f"no readable pooling config ({exc})") from exc
    others = [k for k, v in pool.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens" and v]
    if not pool.get("pooling_mode_mean_tokens") or others or pool.get("include_prompt") is False:
        raise fail(f"pooling {pool}")
    if cfg.get("do_lower_case"):
        raise fail("do_lower_case")
    st_cfg_path = folder / "config_sentence_transformers.json"
    if st_cfg_path.is_file():
        try:
            st_cfg = json.loads(st_cfg_path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise fail(f"unreadable config_sentence_transformers.json ({exc})") from exc
        if any(st_cfg.get(k) for k in ("prompts", "default_prompt_name", "query_prompt", "document_prompt")):
            raise fail("it uses prompts")
    if not (folder / "tokenizer.json").is_file():
        raise fail("no tokenizer.json")
    max_len = cfg.get("max_seq_length")
    if not isinstance(max_len, int) or max_len < 1:
        raise fail("no max_seq_length in sentence_bert_config.json")
    return max_len


def cached_fp32(folder: Path, cache_dir: Path | None = None, known: dict[str, str] | None = None) -> Path | None:
    """The cached fp32 export for the weights in ``folder``, if one was written."""
    path = export_dir(folder, cache_dir, known) / "model.onnx"
    return path if path.is_file() else None


QUERY_COPY = "model_query_w8.onnx"


def light_query_copy(onnx_path: Path, fp32: OnnxTextEncoder) -> Callable[[str], np.ndarray] | None:
    """Queries' weight-int8 copy of the checked fp32 export (models/query_int8.py), made
    once beside it; None keeps queries on ``fp32``. Documents always use ``fp32``."""
    from models.query_int8 import query_copy

    try:
        src_hash = _sidecar(onnx_path).read_text(encoding="ascii").strip()  # checked by open_light
    except OSError as exc:
        log.warning("no weight-int8 query copy: %s", exc)
        return None

    def open_copy(path: Path) -> Callable[[str], np.ndarray]:
        enc = OnnxTextEncoder(path, fp32.tokenizer, fp32.max_seq_length, threads=1)
        return lambda text: enc.encode([text], 1)[0]

    return query_copy(onnx_path, src_hash, onnx_path.with_name(QUERY_COPY), lambda t: fp32.encode([t], 1)[0],
                      open_copy, "text model")


def open_light(folder: Path, onnx_path: Path, max_seq_length: int, threads: int | None = None) -> OnnxTextEncoder:
    """Encoder from tokenizer.json + the cached fp32 graph (checked against its sidecar
    sha256, so a truncated or altered file is refused). Raises on any problem."""
    side = _sidecar(onnx_path)
    try:
        want = side.read_text(encoding="ascii").strip()
    except OSError as exc:
        raise ModelUnavailable(f"the cached export {onnx_path} has no checksum ({exc})", "it is re-exported") from exc
    got = _sha256(onnx_path)
    if got != want:
        raise ModelUnavailable(f"the cached export {onnx_path} does not match its checksum", "it is re-exported")
    tokenizer = JsonTokenizer(folder / "tokenizer.json", max_seq_length)
    return OnnxTextEncoder(onnx_path, tokenizer, max_seq_length, threads)
