"""Light CPU path for CLIP: ONNX Runtime + numpy/PIL, without torch or open_clip.

After a normal (torch) load on a CPU machine, ``models.clip`` exports once, in a
background thread, into ``<onnx cache>/clip-<key>/`` (key: sha256 of the weights
file, model name, pretrained tag and ``CLIP_EXPORT_VERSION``):

- ``image.onnx``: float32 [N, 3, H, W] → image embedding (not normalised);
- ``text.onnx``: int64 [N, L] tokens (L dynamic, cut after the end-of-text token,
  as ``encode_text_trimmed`` does) → text embedding (not normalised);
- ``bpe_simple_vocab_16e6.txt.gz``: open_clip's BPE merges, copied;
- ``config.json`` (written last: a folder without it is incomplete): dim, input size,
  resize/crop/normalise settings, context length, the files' sha256.

The next start reads those files only: ``ClipTokenizer`` mirrors open_clip's
``SimpleTokenizer`` (ftfy + regex + BPE, "lower" cleaning, truncation keeping the
end-of-text token) and ``preprocess_image`` mirrors its eval transform (PIL resize
of the shortest side, centre crop, RGB, /255, normalise). Vectors equal the torch
path's within float32 rounding, so ``model_id`` and the stored vectors stay valid.
Only models whose text tower pools at the end-of-text token behind a causal mask,
with the default tokenizer and a shortest-side or squash transform, get exported.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import json
import logging
import os
import shutil
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import ModelUnavailable
from models.exports import TORCH_EXPORT, drop_stale_tmp
from models.onnx_text import _default_threads, _sha256, _sidecar, _write_sidecar, default_cache_dir

log = logging.getLogger(__name__)

CLIP_EXPORT_VERSION = 1  # bump when the recipe (graphs, config, preprocessing) changes
VOCAB_NAME = "bpe_simple_vocab_16e6.txt.gz"
_FILES = ("image.onnx", "text.onnx", VOCAB_NAME)
_FIX = "it is re-exported from the torch model"
QUERY_COPY = "text_query_w8.onnx"  # the text tower's weight-int8 copy (models/query_int8.py)


# -- cache ------------------------------------------------------------------------------
def weights_digest(path: str | os.PathLike[str]) -> str:
    """sha256 of the weights file. A Hugging Face cache snapshot links to
    ``blobs/<sha256>`` (LFS files are stored under their hash), so that name is used
    instead of reading 600 MB at every start; anything else is hashed (and cached)."""
    real = Path(os.path.realpath(path))
    name = real.name
    if real.parent.name == "blobs" and len(name) == 64 and all(c in "0123456789abcdef" for c in name):
        return name
    from models.weights import file_sha256

    return file_sha256(path)


def clip_export_dir(weights: str | os.PathLike[str], model_name: str, pretrained: str,
                    cache_dir: Path | None = None) -> Path:
    key = f"clip-v{CLIP_EXPORT_VERSION}|{model_name}|{pretrained}|{weights_digest(weights)}"
    return (cache_dir or default_cache_dir()) / ("clip-" + hashlib.sha256(key.encode()).hexdigest()[:16])


def export_complete(out_dir: Path) -> bool:
    return (out_dir / "config.json").is_file()


# -- what can be reproduced without torch -----------------------------------------------
def light_spec(model: Any, preprocess: Any, tokenizer: Any) -> dict[str, Any]:
    """The settings the light path needs, read from the loaded open_clip objects;
    ``ModelUnavailable`` (with the reason) when something would not be reproduced exactly."""
    import torch
    from open_clip.tokenizer import SimpleTokenizer, _clean_lower
    from torchvision import transforms as T

    def fail(why: str) -> ModelUnavailable:
        return ModelUnavailable(f"the light CLIP path does not fit this model: {why}", "it keeps the torch path")

    if (getattr(model, "text_pool_type", None) != "argmax" or getattr(model, "attn_mask", None) is None
            or not hasattr(model, "token_embedding") or not hasattr(model, "positional_embedding")):
        raise fail("the text tower does not pool at end-of-text behind a causal mask")
    if not isinstance(tokenizer, SimpleTokenizer) or tokenizer.reduction_fn is not None or tokenizer.clean_fn is not _clean_lower:
        raise fail(f"tokenizer {type(tokenizer).__name__} is not the default SimpleTokenizer")
    if len(tokenizer.all_special_ids) != 2 or tokenizer.eot_token_id != max(tokenizer.encoder.values()):
        raise fail("extra special tokens")
    steps = list(getattr(preprocess, "transforms", []))
    spec: dict[str, Any] = {"context_length": int(tokenizer.context_length), "vocab_size": len(tokenizer.encoder)}
    if len(steps) != 5:
        raise fail(f"image transform {steps}")
    resize, crop, rgb, to_tensor, norm = steps
    if not isinstance(resize, T.Resize) or resize.max_size is not None or resize.antialias is False:
        raise fail(f"resize step {resize}")
    modes = {T.InterpolationMode.BICUBIC: "bicubic", T.InterpolationMode.BILINEAR: "bilinear"}
    if resize.interpolation not in modes:
        raise fail(f"interpolation {resize.interpolation}")
    size = resize.size if isinstance(resize.size, int) else list(resize.size)
    if isinstance(size, list) and len(size) == 1:
        size = size[0]
    if not isinstance(crop, T.CenterCrop) or crop.size[0] != crop.size[1]:
        raise fail(f"crop step {crop}")
    rgb_ok = getattr(rgb, "__name__", "") == "_convert_to_rgb" or getattr(rgb, "mode", None) == "RGB"
    if not rgb_ok or not isinstance(to_tensor, T.ToTensor):  # open_clip's MaybeToTensor is a ToTensor
        raise fail(f"conversion steps {rgb}, {to_tensor}")
    if not isinstance(norm, T.Normalize):
        raise fail(f"normalise step {norm}")
    crop_px = int(crop.size[0])
    if isinstance(size, int):
        spec["resize"] = {"mode": "shortest", "size": size}
    elif size == [crop_px, crop_px]:
        spec["resize"] = {"mode": "squash", "size": crop_px}
    else:
        raise fail(f"resize size {size}")
    spec["resize"]["interpolation"] = modes[resize.interpolation]
    spec["crop"] = crop_px
    spec["mean"] = [float(x) for x in (norm.mean if len(norm.mean) == 3 else list(norm.mean) * 3)]
    spec["std"] = [float(x) for x in (norm.std if len(norm.std) == 3 else list(norm.std) * 3)]
    with torch.inference_mode():
        spec["dim"] = int(model.encode_image(torch.zeros(1, 3, crop_px, crop_px)).shape[-1])
    return spec


# -- export (torch) ---------------------------------------------------------------------
def _drop_stale_tmp(out_dir: Path) -> None:
    """Half-written towers, vocabulary, config, sidecars and query copies left by a process
    killed mid-write (``.image.onnx.<pid>.<thread>.tmp``: 350 MB for ViT-B-32)."""
    drop_stale_tmp(out_dir, ".*.tmp", ".*.sha256.*", f".{Path(QUERY_COPY).stem}.*.onnx")


def export_clip(model: Any, spec: dict[str, Any], out_dir: Path, *, force: bool = False) -> Path:
    """Write both towers, the vocabulary and config.json into ``out_dir`` (once).
    ``model`` is the caller's private fp32 CPU copy: it is traced."""
    try:
        import onnx  # noqa: F401 - torch.onnx.export (TorchScript exporter) needs it
    except ImportError as exc:
        raise ModelUnavailable(f"onnx is not installed ({exc})", "`pip install onnx`") from exc
    import torch
    from open_clip.tokenizer import default_bpe

    from models.clip import text_tower

    if export_complete(out_dir) and not force:
        return out_dir
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    _drop_stale_tmp(out_dir)
    (out_dir / "config.json").unlink(missing_ok=True)  # incomplete until rewritten last
    model = model.to("cpu").float().eval().requires_grad_(True)
    tag = f"{os.getpid()}.{threading.get_ident()}"

    class _Image(torch.nn.Module):
        def __init__(self, m: Any) -> None:
            super().__init__()
            self.m = m

        def forward(self, pixels: Any) -> Any:
            return self.m.encode_image(pixels)

    class _Text(torch.nn.Module):
        def __init__(self, m: Any) -> None:
            super().__init__()
            self.m = m

        def forward(self, tokens: Any) -> Any:
            return text_tower(self.m, tokens)

    _swap_attention(model)
    px = int(spec["crop"])
    tokens = torch.zeros((2, 9), dtype=torch.long)
    tokens[:, 0] = 49406
    tokens[0, 1:4] = torch.tensor([320, 1929, 49407])
    tokens[1, 1:9] = torch.tensor([320, 736, 3289, 525, 320, 2569, 1600, 49407])
    graphs = (("image.onnx", _Image(model), (torch.zeros(2, 3, px, px),), "pixels", {0: "batch"}),
              ("text.onnx", _Text(model), (tokens,), "tokens", {0: "batch", 1: "seq"}))
    for name, module, args, inp, axes in graphs:
        final = out_dir / name
        tmp = out_dir / f".{name}.{tag}.tmp"
        try:
            # Grad mode on (parameters require grad): MultiheadAttention then takes its
            # traceable path, not the fused inference kernel ONNX has no operator for.
            with TORCH_EXPORT, torch.enable_grad():
                torch.onnx.export(module, args, str(tmp), input_names=[inp], output_names=["embedding"],
                                  dynamic_axes={inp: axes, "embedding": {0: "batch"}},
                                  opset_version=17, do_constant_folding=True, dynamo=False)
            _sidecar(final).unlink(missing_ok=True)  # never a new graph next to an old hash
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        _write_sidecar(final)
    vocab_tmp = out_dir / f".{VOCAB_NAME}.{tag}.tmp"
    shutil.copyfile(default_bpe(), vocab_tmp)
    os.replace(vocab_tmp, out_dir / VOCAB_NAME)
    _write_sidecar(out_dir / VOCAB_NAME)
    config = dict(spec, version=CLIP_EXPORT_VERSION,
                  sha256={n: _sidecar(out_dir / n).read_text(encoding="ascii").strip() for n in _FILES})
    cfg_tmp = out_dir / f".config.json.{tag}.tmp"
    cfg_tmp.write_text(json.dumps(config, indent=1), encoding="utf-8")
    os.replace(cfg_tmp, out_dir / "config.json")
    log.info("exported CLIP towers to %s", out_dir)
    return out_dir


def _swap_attention(model: Any) -> None:
    """Replace every ``nn.MultiheadAttention`` of ``model`` (a private copy) by the same
    computation written with shape-agnostic ops: torch's own implementation bakes the
    traced batch size and sequence length into its reshapes, so the graph would only
    run at the example's shapes."""
    import torch

    class _Attention(torch.nn.Module):
        def __init__(self, mha: Any) -> None:
            super().__init__()
            if mha.in_proj_weight is None or mha.bias_k is not None or mha.add_zero_attn:
                raise ModelUnavailable("the light CLIP path does not fit this model: unusual attention",
                                       "it keeps the torch path")
            self.w, self.b = mha.in_proj_weight, mha.in_proj_bias
            self.out = mha.out_proj
            self.heads = int(mha.num_heads)
            self.hd = int(mha.embed_dim) // self.heads
            self.batch_first = bool(mha.batch_first)

        def forward(self, query: Any, key: Any, value: Any, need_weights: bool = False,
                    attn_mask: Any = None) -> tuple[Any, None]:
            x = query if self.batch_first else query.transpose(0, 1)  # self-attention: key is value is query
            q, k, v = torch.nn.functional.linear(x, self.w, self.b).chunk(3, dim=-1)
            hd = self.hd
            q, k, v = (t.unflatten(-1, (self.heads, hd)).transpose(1, 2) for t in (q, k, v))
            scores = (q * (float(hd) ** -0.5)) @ k.transpose(-1, -2)
            if attn_mask is not None:
                scores = scores + attn_mask
            y = (scores.softmax(dim=-1) @ v).transpose(1, 2).flatten(2)
            y = self.out(y)
            return (y if self.batch_first else y.transpose(0, 1)), None

    for _name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, torch.nn.MultiheadAttention):
                setattr(module, child_name, _Attention(child))


# -- tokenizer (open_clip.tokenizer.SimpleTokenizer, "lower" cleaning) ------------------
@lru_cache
def _bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def _pairs(word: tuple[str, ...]) -> set[tuple[str, str]]:
    return set(zip(word, word[1:]))


class ClipTokenizer:
    """open_clip's default tokenizer from its vocabulary file, without torch: same
    ids, same [n, context_length] int64 layout (zero padding, truncation keeps the
    end-of-text token last)."""

    def __init__(self, bpe_path: Path, context_length: int = 77) -> None:
        import ftfy
        import regex

        self._ftfy = ftfy
        merges_text = gzip.open(bpe_path).read().decode("utf-8").split("\n")
        merges = [tuple(m.split()) for m in merges_text[1 : 49152 - 256 - 2 + 1]]
        vocab = list(_bytes_to_unicode().values())
        vocab = vocab + [v + "</w>" for v in vocab]
        vocab += ["".join(m) for m in merges]
        special = ["<start_of_text>", "<end_of_text>"]
        vocab.extend(special)
        self.encoder = {v: i for i, v in enumerate(vocab)}
        self.bpe_ranks = {m: i for i, m in enumerate(merges)}
        self.byte_encoder = _bytes_to_unicode()
        self._cache: dict[str, str] = {t: t for t in special}
        self._lock = threading.Lock()
        self.pat = regex.compile("|".join(special) + r"""|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
                                 regex.IGNORECASE)
        self.sot_token_id = self.encoder["<start_of_text>"]
        self.eot_token_id = self.encoder["<end_of_text>"]
        self.context_length = int(context_length)

    def _clean(self, text: str) -> str:
        text = html.unescape(html.unescape(self._ftfy.fix_text(text))).strip()
        return " ".join(text.split()).strip().lower()

    def _bpe(self, token: str) -> str:
        with self._lock:
            hit = self._cache.get(token)
        if hit is not None:
            return hit
        word: tuple[str, ...] = tuple(token[:-1]) + (token[-1] + "</w>",)
        pairs = _pairs(word)
        if not pairs:
            return token + "</w>"
        while True:
            bigram = min(pairs, key=lambda p: self.bpe_ranks.get(p, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new: list[str] = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                except ValueError:
                    new.extend(word[i:])
                    break
                new.extend(word[i:j])
                i = j
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new.append(first + second)
                    i += 2
                else:
                    new.append(word[i])
                    i += 1
            word = tuple(new)
            if len(word) == 1:
                break
            pairs = _pairs(word)
        out = " ".join(word)
        with self._lock:
            self._cache[token] = out
        return out

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for token in self.pat.findall(self._clean(text)):
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self._bpe(token).split(" "))
        return ids

    def __call__(self, texts: str | Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            texts = [texts]
        out = np.zeros((len(texts), self.context_length), dtype=np.int64)
        for i, text in enumerate(texts):
            tokens = [self.sot_token_id, *self.encode(text), self.eot_token_id]
            if len(tokens) > self.context_length:
                tokens = tokens[: self.context_length]
                tokens[-1] = self.eot_token_id
            out[i, : len(tokens)] = tokens
        return out


# -- image preprocessing (open_clip's eval transform, torchvision on PIL) ---------------
def preprocess_image(image: Any, spec: dict[str, Any]) -> np.ndarray:
    """RGB PIL image → float32 [3, crop, crop], as torchvision's Resize (PIL, antialiased)
    → CenterCrop → RGB → ToTensor → Normalize computes it."""
    from PIL import Image

    rs = spec["resize"]
    resample = Image.Resampling.BICUBIC if rs["interpolation"] == "bicubic" else Image.Resampling.BILINEAR
    w, h = image.size
    size = int(rs["size"])
    if rs["mode"] == "squash":
        new_w, new_h = size, size
    else:  # torchvision _compute_resized_output_size, one int: the shortest side
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = size, int(size * long / short)
        new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    if (new_w, new_h) != (w, h):
        image = image.resize((new_w, new_h), resample)
    crop = int(spec["crop"])
    if new_w < crop or new_h < crop:  # torchvision pads with zeros first (only for odd configs)
        padded = Image.new(image.mode, (max(new_w, crop), max(new_h, crop)))
        padded.paste(image, ((max(new_w, crop) - new_w) // 2, (max(new_h, crop) - new_h) // 2))
        image, new_w, new_h = padded, padded.size[0], padded.size[1]
    top = int(round((new_h - crop) / 2.0))
    left = int(round((new_w - crop) / 2.0))
    image = image.crop((left, top, left + crop, top + crop))
    if image.mode != "RGB":
        image = image.convert("RGB")
    arr = np.asarray(image, dtype=np.uint8).astype(np.float32) / np.float32(255)
    arr = arr.transpose(2, 0, 1)
    mean = np.asarray(spec["mean"], dtype=np.float32)[:, None, None]
    std = np.asarray(spec["std"], dtype=np.float32)[:, None, None]
    return np.ascontiguousarray((arr - mean) / std, dtype=np.float32)


# -- runtime ----------------------------------------------------------------------------
def _normalise(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32, copy=False)
    return np.ascontiguousarray(x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), np.float32(1e-12)),
                                dtype=np.float32)


class OnnxClip:
    """Both towers in ONNX Runtime sessions, the tokenizer and the image settings."""

    def __init__(self, out_dir: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        self.dir = Path(out_dir)
        _drop_stale_tmp(self.dir)
        try:
            cfg = json.loads((self.dir / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelUnavailable(f"the CLIP export in {self.dir} has no readable config ({exc})", _FIX) from exc
        if cfg.get("version") != CLIP_EXPORT_VERSION:
            raise ModelUnavailable(f"the CLIP export in {self.dir} is of another recipe", _FIX)
        for name in _FILES:  # the config's hash, the sidecar's and the file's must agree
            path = self.dir / name
            try:
                side = _sidecar(path).read_text(encoding="ascii").strip()
                got = _sha256(path)
            except OSError as exc:
                raise ModelUnavailable(f"the CLIP export {path} is missing or unreadable ({exc})", _FIX) from exc
            if not (got == side == cfg.get("sha256", {}).get(name)):
                raise ModelUnavailable(f"the CLIP export {path} does not match its checksum", _FIX)
        self.spec = cfg
        self.dim = int(cfg["dim"])
        self.tokenizer = ClipTokenizer(self.dir / VOCAB_NAME, int(cfg["context_length"]))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or _default_threads()
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No busy-waiting after a run: spinning threads starve the other model of a query.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.image = ort.InferenceSession(str(self.dir / "image.onnx"), opts, providers=["CPUExecutionProvider"])
        # Give the arena back after every run: an image batch would otherwise stay resident.
        self._run_options = ort.RunOptions()
        self._run_options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        self.text, self.text_int8 = self._text_session(opts)

    def _text_session(self, opts: Any) -> tuple[Any, bool]:
        """The text tower only embeds queries: its weight-int8 copy (models/query_int8.py)
        when that agrees with fp32, else fp32. The fp32 graph is opened only to make or
        check a copy, or when there is none: a later start with a kept copy never loads it."""
        import onnxruntime as ort

        from models.query_int8 import query_copy

        def session(path: Path) -> Any:
            return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

        fp32: list[Any] = []
        copy: list[Any] = []

        def fp32_session() -> Any:
            if not fp32:
                fp32.append(session(self.dir / "text.onnx"))
            return fp32[0]

        def open_copy(path: Path) -> Any:
            copy[:] = [session(path)]
            return lambda text: self._run_text(copy[0], [text])[0]

        run = query_copy(self.dir / "text.onnx", str(self.spec["sha256"]["text.onnx"]), self.dir / QUERY_COPY,
                         lambda text: self._run_text(fp32_session(), [text])[0], open_copy, "CLIP text tower")
        return (copy[0], True) if run is not None else (fp32_session(), False)

    def preprocess(self, image: Any) -> np.ndarray:
        return preprocess_image(image, self.spec)

    def encode_images(self, batch: np.ndarray) -> np.ndarray:
        """float32 [n, 3, H, W] → unit rows [n, dim]."""
        out = self.image.run(None, {"pixels": np.ascontiguousarray(batch, dtype=np.float32)}, self._run_options)[0]
        return _normalise(out)

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        """Texts → unit rows [n, dim], on the tokens up to the last end-of-text token."""
        return self._run_text(self.text, texts)

    def _run_text(self, session: Any, texts: Sequence[str]) -> np.ndarray:
        tokens = self.tokenizer(list(texts))
        n = int(tokens.argmax(axis=-1).max()) + 1  # the end-of-text token has the highest id
        out = session.run(None, {"tokens": tokens[:, :n]}, self._run_options)[0]
        return _normalise(out)
