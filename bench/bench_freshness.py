"""Save → searchable latency of `lodestar watch` with the real text model.

Runs WatchService over a temporary folder with the real runtime (bundled
all-MiniLM-L6-v2, no CLIP so nothing is downloaded), writes one small text file
every ``--interval`` seconds, and for each polls ``searcher.search`` until the file
shows up in the top results. Reports p50/p95/max as a table, optionally as JSON.

    .venv/bin/python bench/bench_freshness.py --files 20 --interval 0.5 --json bench/out/freshness.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

TOPICS = [
    "sourdough starter feeding schedule", "replacing a bicycle chain", "tax deduction for home office",
    "migratory routes of arctic terns", "tuning a twelve string guitar", "volcanic soil and vineyards",
    "debugging a memory leak in C", "knitting a cable pattern scarf", "orbital mechanics of comets",
    "repotting an orchid safely", "medieval castle siege engines", "brewing oolong tea properly",
    "fixing a leaking kitchen faucet", "training a puppy to heel", "coral reef bleaching events",
    "restoring an antique oak dresser", "marathon pacing strategy", "origami crane folding steps",
    "honey bee colony collapse", "solar panel inverter sizing", "chess endgame with rook and king",
    "fermenting kimchi at home", "glacier retreat measurements", "watercolour wet on wet technique",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--interval", type=float, default=0.5, help="seconds between saves")
    ap.add_argument("--timeout", type=float, default=30.0, help="give up on one file after this long")
    ap.add_argument("--debounce", type=float, default=0.3)
    ap.add_argument("--max-delay", type=float, default=2.0)
    ap.add_argument("--json", dest="json_out", help="also write the figures here")
    args = ap.parse_args(argv)

    from indexer.library.runtime import open_runtime
    from indexer.library.settings import Settings, open_paths, save_settings
    from indexer.watch.watcher import WatchService

    with tempfile.TemporaryDirectory(prefix="lodestar-fresh-") as tmp:
        root = Path(tmp) / "docs"
        root.mkdir()
        paths = open_paths(Path(tmp) / "data")
        save_settings(
            paths,
            Settings(
                folders=[os.path.realpath(root)],
                allow_download=False,
                clip_checkpoint=str(Path(tmp) / "no-clip.safetensors"),  # text only: no download
            ),
        )
        t_load = time.perf_counter()
        rt = open_runtime(paths.data_dir)
        service = rt.service()
        searcher = rt.searcher()
        load_s = time.perf_counter() - t_load
        ws = WatchService(service, rt.settings, rt.paths, debounce_s=args.debounce, max_delay_s=args.max_delay)
        ws.start()
        ws.wait_idle(60)
        latencies: list[float] = []
        missed = 0
        try:
            for i in range(args.files):
                slot = time.monotonic() + args.interval
                topic = TOPICS[i % len(TOPICS)]
                code = f"qx{i:03d}vel"
                path = root / f"note_{i:03d}.txt"
                text = f"Notes on {topic}. Reference {code}. " + f"This page is only about {topic}. " * 3
                path.write_text(text, encoding="utf-8")
                saved = time.perf_counter()
                found = None
                while time.perf_counter() - saved < args.timeout:
                    hits = searcher.search(f"{topic} {code}", kind="text", limit=3).results
                    if any(h.path == str(path) for h in hits):
                        found = time.perf_counter() - saved
                        break
                    time.sleep(0.02)
                if found is None:
                    missed += 1
                else:
                    latencies.append(found)
                time.sleep(max(0.0, slot - time.monotonic()))
        finally:
            ws.stop(30)
            rt.close()

    result = {
        "files": args.files,
        "found": len(latencies),
        "missed": missed,
        "interval_s": args.interval,
        "debounce_s": args.debounce,
        "max_delay_s": args.max_delay,
        "p50_s": round(percentile(latencies, 0.5), 3),
        "p95_s": round(percentile(latencies, 0.95), 3),
        "max_s": round(max(latencies), 3) if latencies else None,
        "mean_s": round(statistics.fmean(latencies), 3) if latencies else None,
        "model_load_s": round(load_s, 2),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(f"{'metric':<14}{'value':>10}")
    for key in ("files", "found", "missed", "p50_s", "p95_s", "max_s", "mean_s", "debounce_s", "model_load_s"):
        print(f"{key:<14}{result[key]!s:>10}")
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0 if missed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
