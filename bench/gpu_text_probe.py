"""Where the time goes in one text encode on the GPU: tokenization vs forward vs the rest.

Written after the first GPU run of bench/gpu_check.py showed the text model at only
~900 passages/s on an H100 (the GPU should do tens of thousands). Same model folder
(MiniLM architecture, random weights) and the same generated corpus as gpu_check.py.

    PYTHONPATH=. python bench/gpu_text_probe.py [--device cuda] [--files 100]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import make_text_corpus
from gpu_check import BENCH_DIR, index_with_memstore, random_minilm_dir, sync


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--n", type=int, default=2048, help="passages to time")
    args = ap.parse_args(argv)
    import torch
    from bench_text_index import RecordingEmbedder

    from models.text import TextEmbedder

    dev = args.device
    emb = TextEmbedder(str(random_minilm_dir()), device=dev)
    emb.load()
    model = emb._backend.model
    tok = model.tokenizer
    print(f"tokenizer: {type(tok).__module__}.{type(tok).__name__} is_fast={getattr(tok, 'is_fast', '?')} "
          f"max_seq_length={model.max_seq_length} torch_threads={torch.get_num_threads()}", flush=True)
    corpus = make_text_corpus(BENCH_DIR / f"textgen/{args.files}x6k", args.files, 6)
    rec = RecordingEmbedder(emb)
    index_with_memstore(corpus, rec, None, 2)
    texts = (rec.texts * (1 + args.n // max(1, len(rec.texts))))[: args.n]
    print(f"{len(texts)} passages, mean {sum(map(len, texts)) / len(texts):.0f} chars", flush=True)
    out: dict[str, Any] = {}

    def timed(name: str, fn: Any) -> None:
        fn()
        sync(dev)
        t = time.perf_counter()
        fn()
        sync(dev)
        out[name] = len(texts) / (time.perf_counter() - t)
        print(f"{name:<44} {out[name]:>10.0f} passages/s", flush=True)

    def tokenize(b: int) -> list[Any]:
        return [model.tokenize(texts[i : i + b]) for i in range(0, len(texts), b)]

    for b in (64, 256):
        timed(f"tokenize only, batch {b}", lambda b=b: tokenize(b))
        feats = [{k: (v.to(dev) if hasattr(v, "to") else v) for k, v in f.items()} for f in tokenize(b)]

        def fwd(feats: list[Any] = feats) -> None:
            with torch.inference_mode():
                for f in feats:
                    model(dict(f))

        timed(f"forward only fp16 (tokens on device), b {b}", fwd)
        timed(f"encode fp16, batch {b}", lambda b=b: model.encode(texts, batch_size=b, convert_to_numpy=True,
                                                                   normalize_embeddings=True, show_progress_bar=False))
    timed("TextEmbedder.embed_documents fp16", lambda: emb.embed_documents(texts))
    model.float()
    for b in (64, 256):
        timed(f"encode fp32, batch {b}", lambda b=b: model.encode(texts, batch_size=b, convert_to_numpy=True,
                                                                   normalize_embeddings=True, show_progress_bar=False))
    model.half()
    prof = cProfile.Profile()
    prof.enable()
    model.encode(texts[:512], batch_size=64, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
    sync(dev)
    prof.disable()
    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(14)
    print(s.getvalue()[-4000:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
