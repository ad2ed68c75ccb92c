"""Profile one full index run (pyfaq docs, real text model) with pyinstrument.

Writes a trimmed text profile (frames under 1% hidden) for docs/profile-index.txt.

    .venv/bin/python bench/profile_index.py --files 60 --out docs/profile-index.txt
    .venv/bin/python bench/profile_index.py --files 0      # all 472 files (~26k passages; slow on 2 cores)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PYFAQ_DOCS, machine


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=60, help="pyfaq sample size (0: all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="-")
    args = ap.parse_args(argv)

    from bench_text_index import pyfaq_sample
    from pyinstrument import Profiler

    from indexer.ingest.pipeline import IndexService
    from indexer.library.settings import Settings, open_paths
    from indexer.store.tables import Store
    from models.text import TextEmbedder

    name, root = pyfaq_sample(PYFAQ_DOCS, args.files)
    emb = TextEmbedder(device="cpu")
    emb.load()
    emb.embed_documents(["warm up"] * 8)
    with tempfile.TemporaryDirectory(prefix="lodestar-prof-") as tmp:
        paths = open_paths(Path(tmp) / "data")
        store = Store(paths.store, text_model=(emb.model_id, emb.dim))
        svc = IndexService(store, paths, Settings(folders=[str(root)]), emb, None, threads=args.threads)
        prof = Profiler(interval=0.005)
        t = time.perf_counter()
        prof.start()
        s = svc.index_roots([str(root)])
        prof.stop()
        elapsed = time.perf_counter() - t
        chunks = store.counts()["chunks"]
        store.close()
    m = machine()
    head = (f"# profile of IndexService.index_roots on {name}: {s.new} files, {chunks} chunks, {elapsed:.1f}s\n"
            f"# {m['date']}  {m['cpu']}  nproc={m['nproc']}  torch threads={m.get('torch_threads')}\n"
            f"# command: .venv/bin/python bench/profile_index.py --files {args.files}\n")
    text = head + prof.output_text(unicode=False, color=False, show_all=False, timeline=False)
    # Trim: drop frames below 1% of the total to keep the file readable.
    lines = text.splitlines()
    total = elapsed
    kept = []
    for line in lines:
        stripped = line.lstrip(" |`-")
        try:
            sec = float(stripped.split()[0])
            if sec < total * 0.01:
                continue
        except (ValueError, IndexError):
            pass
        kept.append(line)
    out = "\n".join(kept) + "\n"
    if args.out == "-":
        print(out)
    else:
        Path(args.out).write_text(out, encoding="utf-8")
        print(f"wrote {args.out} ({elapsed:.1f}s run)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
