"""Run benchmarks on two commits in one sitting: is a refactor "no worse"?

    .venv/bin/python bench/before_after.py --before REV [--rounds 2] [--only text,query,startup,memory]

REV is checked out into a temporary git worktree; this tree is "after". Each round
runs every chosen benchmark on before, then after (the order alternates between
rounds so drift on a shared machine falls on both), with `PYTHONPATH` pointing at the
tree being measured, and records the 1-minute load average around each run. The
result is a JSON file and a markdown table of the headline figures side by side.
Run it alone: figures taken while other work runs are not figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

# name -> (arguments, how to read the headline figures from its JSON)
# Extra environment per benchmark: the text-index ratio is the torch path's (its raw
# baseline is SentenceTransformer.encode), whatever export the user cache holds.
ENV: dict[str, dict[str, str]] = {"text": {"LODESTAR_TEXT_LIGHT": "0"}}
BENCHES: dict[str, list[str]] = {
    "text": ["bench/bench_text_index.py", "--gen-files", "0", "--pyfaq-files", "40"],
    "query": ["bench/bench_query.py", "--sizes", "100000", "--reps", "3", "--json"],
    "startup": ["bench/bench_startup.py", "--runs", "3", "--text-path", "light"],
    "memory": ["bench/bench_memory.py", "--path", "light", "--size-docs", "0", "--size-images", "0"],
}


def _load() -> float:
    return os.getloadavg()[0]


def _run(tree: Path, name: str, out_dir: Path, label: str) -> dict[str, Any]:
    args = list(BENCHES[name])
    json_out = out_dir / f"{name}-{label}.json"
    if name != "query":
        args += ["--json", str(json_out)]
    env = dict(os.environ, PYTHONPATH=str(tree), LODESTAR_BENCH_KEEP="1", **ENV.get(name, {}))
    before = _load()
    started = time.monotonic()
    proc = subprocess.run([sys.executable, *args], cwd=tree, env=env, capture_output=True, text=True, timeout=3600)
    record: dict[str, Any] = {
        "bench": name, "tree": label, "rc": proc.returncode, "seconds": round(time.monotonic() - started, 1),
        "load_before": round(before, 2), "load_after": round(_load(), 2),
    }
    if name == "query":
        record["stdout_tail"] = proc.stdout[-4000:]
    elif json_out.exists():
        record["result"] = json.loads(json_out.read_text())
    if proc.returncode != 0:
        record["stderr_tail"] = proc.stderr[-3000:]
    (out_dir / f"{name}-{label}.log").write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    print(f"{name:8s} {label:6s} rc={proc.returncode} {record['seconds']:7.1f}s load {before:.2f}→{record['load_after']:.2f}",
          flush=True)
    return record


def _run_module_not_entry_point(tree: Path) -> None:
    """The venv's `lodestar` script imports this tree's entry point; an older tree must
    be launched as `python -m` so that PYTHONPATH picks its own code."""
    startup = tree / "bench" / "bench_startup.py"
    text = startup.read_text(encoding="utf-8")
    old = 'app_cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "indexer.cli"]'
    if old in text:
        startup.write_text(text.replace(old, 'app_cmd = [sys.executable, "-m", "indexer.cli"]'), encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True, help="commit to compare against (checked out in a worktree)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--only", default=",".join(BENCHES), help="comma-separated subset of " + ", ".join(BENCHES))
    ap.add_argument("--out", default=str(REPO / "bench" / "out" / "before_after"))
    args = ap.parse_args()
    out_dir = Path(args.out).resolve()  # the benchmarks run with each tree as their working folder
    out_dir.mkdir(parents=True, exist_ok=True)
    chosen = [b for b in args.only.split(",") if b]
    with tempfile.TemporaryDirectory(prefix="lodestar-before-") as tmp:
        before = Path(tmp) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(before), args.before], cwd=REPO, check=True)
        _run_module_not_entry_point(before)
        try:
            records = []
            for r in range(args.rounds):
                order = [("before", before), ("after", REPO)]
                if r % 2:
                    order.reverse()
                for name in chosen:
                    for label, tree in order:
                        records.append(_run(tree, name, out_dir, f"{label}{r}"))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=REPO, check=False)
    summary = {"before": args.before, "after": "working tree", "records": records}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"wrote {out_dir / 'summary.json'}")
    return 0 if all(r["rc"] == 0 for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
