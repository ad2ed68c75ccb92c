"""How to feed the text model on a CPU: batching, threads and int8 variants, same passages, same run.

The exploration behind the encoder in models/onnx_text.py (docs/PERFORMANCE.md, the night
section). Every variant embeds the same passages of pyfaq-long (the product's chunker) and
is compared with fp32 ``SentenceTransformer.encode`` (batch 64) measured first in the same
process: passages per second, the ratio, and the mean / 1st-percentile / min cosine to
the baseline's vectors.

Variants: the fp32 export and int8 quantisations of it (per-channel; with ``reduce_range``;
with the six feed-forward output projections left in fp32), each fed either in padded,
length-sorted batches on one run with every core (the encoder before 2026-11-30 night) or
one text per run, unpadded, with one run per core at once (the encoder now).

    .venv/bin/python bench/text_encoder_variants.py --n 1500
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np
from _common import REPO, SCRATCH

PYFAQ_LONG = REPO.parent / "shared" / "eval" / "pyfaq-long" / "docs"


def sample_passages(n: int, seed: int = 1) -> list[str]:
    from indexer.ingest.chunk import chunk_text

    files = sorted(p for p in PYFAQ_LONG.rglob("*") if p.is_file())
    random.Random(seed).shuffle(files)
    texts: list[str] = []
    for f in files:
        texts += [c.text for c in chunk_text(f.read_text(errors="replace"))]
        if len(texts) >= n:
            break
    return texts[:n]


def quantised(fp32: Path, name: str, **kw: object) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = SCRATCH / "text-variants" / f"{name}.onnx"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, **kw)  # type: ignore[arg-type]
    return out


def session(path: Path, threads: int) -> object:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def padded_batches(path: Path, tok: object, texts: list[str], batch: int, cores: int) -> np.ndarray:
    """The encoder before: length-sorted padded batches, one run at a time on every core."""
    sess = session(path, cores)
    out = np.zeros((len(texts), 384), np.float32)
    order = np.argsort([-len(t) for t in texts], kind="stable")
    for s in range(0, len(texts), batch):
        idx = order[s : s + batch]
        enc = tok.encode_batch([texts[i].strip() for i in idx])  # type: ignore[attr-defined]
        ids = np.array([e.ids for e in enc], np.int64)
        mask = np.array([e.attention_mask for e in enc], np.int64)
        tokens = sess.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]  # type: ignore[attr-defined]
        m = mask[..., None].astype(np.float32)
        pooled = (tokens * m).sum(1) / m.sum(1)
        out[idx] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    return out


def one_per_run(path: Path, folder: Path, texts: list[str], cores: int) -> np.ndarray:
    """The encoder now: the product's own (each text alone, unpadded, one run per core at once)."""
    from models.onnx_text import JsonTokenizer, OnnxTextEncoder

    return OnnxTextEncoder(path, JsonTokenizer(folder / "tokenizer.json", 256), 256, threads=cores).encode(texts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1500, help="passages")
    args = ap.parse_args()
    import onnx
    import torch
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

    from models.onnx_text import cached_fp32
    from models.text import TextEmbedder, bundled_model_dir

    folder = bundled_model_dir()
    fp32 = cached_fp32(folder)
    if fp32 is None:  # the first load writes the export
        emb = TextEmbedder(device="cpu", adopt_export=False)
        emb.load()
        emb.wait_export(600)
        fp32 = cached_fp32(folder)
    assert fp32 is not None, "no fp32 export"
    cores = len(os.sched_getaffinity(0))
    texts = sample_passages(args.n)
    print(f"{len(texts)} passages of pyfaq-long, mean {np.mean([len(t) for t in texts]):.0f} characters; "
          f"{cores} cores; load {os.getloadavg()}")
    torch.set_num_threads(cores)
    st = SentenceTransformer(str(folder), device="cpu")
    st.encode(texts[:64], batch_size=64)
    t0 = time.perf_counter()
    base = np.asarray(st.encode(texts, batch_size=64, normalize_embeddings=True), np.float32)
    base_s = time.perf_counter() - t0
    print(f"{'sentence-transformers fp32, batch 64':58s} {len(texts) / base_s:7.1f}/s   1.00×")

    graph = onnx.load(str(fp32), load_external_data=False)
    ffn_out = [n.name for n in graph.graph.node if n.op_type == "MatMul" and "/output/dense/" in n.name
               and "attention" not in n.name]
    int8 = quantised(fp32, "int8-per-channel", per_channel=True)  # quantised before any timing
    int8_ffn = quantised(fp32, "int8-ffn-out-fp32", per_channel=True, nodes_to_exclude=ffn_out)
    int8_rr = quantised(fp32, "int8-reduce-range", per_channel=True, reduce_range=True)
    variants: list[tuple[str, Callable[[], np.ndarray]]] = []
    padded_tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    padded_tok.enable_truncation(256)
    padded_tok.enable_padding(pad_id=0, pad_token="[PAD]")
    variants += [
        ("fp32, padded batches of 32, one run", lambda: padded_batches(fp32, padded_tok, texts, 32, cores)),
        ("fp32, one text per run, one run per core", lambda: one_per_run(fp32, folder, texts, cores)),
        ("int8 per-channel, padded batches of 32, one run", lambda: padded_batches(int8, padded_tok, texts, 32, cores)),
        ("int8 per-channel, one text per run, one run per core", lambda: one_per_run(int8, folder, texts, cores)),
        ("int8 + FFN outputs fp32, one text per run, one per core", lambda: one_per_run(int8_ffn, folder, texts, cores)),
        ("int8 reduce_range, one text per run, one per core", lambda: one_per_run(int8_rr, folder, texts, cores)),
    ]
    for name, run in variants:
        run_s = time.perf_counter()
        vecs = run()
        dt = time.perf_counter() - run_s
        cos = (vecs * base).sum(1)
        print(f"{name:58s} {len(texts) / dt:7.1f}/s {base_s / dt:5.2f}×  cos mean {cos.mean():.5f} "
              f"p1 {np.percentile(cos, 1):.4f} min {cos.min():.4f}", flush=True)
    print(f"load {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
