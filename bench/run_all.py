"""Run every benchmark with modest defaults; JSON results go to bench/out/*.json.

    .venv/bin/python bench/run_all.py                 # all (≈20-30 min on 2 busy cores)
    .venv/bin/python bench/run_all.py text rescan     # a subset, by name
    .venv/bin/python bench/run_all.py --list

Each benchmark runs in its own process (fresh memory, fresh thread pools), one
after the other; a failure is reported and the rest still run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"

BENCHES: dict[str, list[str]] = {
    "text": ["bench_text_index.py"],
    "text_onnx_int8": ["bench_text_index.py", "--backend", "onnx-int8"],
    "image": ["bench_image_index.py"],
    "rescan": ["bench_rescan.py"],
    "memory": ["bench_memory.py"],
    "startup": ["bench_startup.py"],
    "onnx": ["bench_onnx_text.py"],
    "clip_cpu": ["bench_clip_cpu.py"],
    # owned by the search and watch engineers; run as they ship them
    "query": ["bench_query.py"],
    "freshness": ["bench_freshness.py"],
}
JSON_NAMES = {"text": "text_index", "image": "image_index", "onnx": "onnx_text"}
STDOUT_JSON = {"query"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help=f"subset of: {', '.join(BENCHES)}")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args(argv)
    if args.list:
        print("\n".join(BENCHES))
        return 0
    names = args.names or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        ap.error(f"unknown benchmark(s): {', '.join(unknown)}")
    OUT.mkdir(exist_ok=True)
    failed: list[str] = []
    for name in names:
        script, *extra = BENCHES[name]
        if not (HERE / script).exists():
            print(f"== {name}: {script} not in this checkout, skipped")
            continue
        out = OUT / f"{JSON_NAMES.get(name, name)}.json"
        t = time.perf_counter()
        if name in STDOUT_JSON:  # `--json` is a flag there: the JSON goes to stdout
            cmd = [sys.executable, str(HERE / script), *extra, "--json"]
            print(f"== {name}: {' '.join(cmd[1:])} > {out}", flush=True)
            with open(out, "w", encoding="utf-8") as fh:
                rc = subprocess.call(cmd, cwd=HERE.parent, stdout=fh)
        else:
            cmd = [sys.executable, str(HERE / script), *extra, "--json", str(out)]
            print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
            rc = subprocess.call(cmd, cwd=HERE.parent)
        print(f"== {name}: rc={rc} in {time.perf_counter() - t:.0f}s\n", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
