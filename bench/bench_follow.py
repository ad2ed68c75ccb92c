"""A watched folder renamed while Lodestar was closed: how long the index takes to follow it,
and what searches cost until LanceDB's index upkeep is done (issue 13.1's acceptance).

Works on an indexed data folder (for example the one `bench/bench_library.py` leaves in
its scratch folder). In one process, as the window does it: renames the watched folder
``--folder`` to ``--to`` (a sibling name), opens the library, times
`IndexService.follow_moved_roots`, runs a few searches, then the index upkeep
(`IndexService.optimize`) on a thread while a search runs every second, then searches
again (``--rounds`` rounds of six queries: median and p95). The settings are saved with
the new folder, as the window saves them.

    .venv/bin/python bench/bench_follow.py --data-dir $SCRATCH/library-5000-2000/data \\
        --folder "$SCRATCH/library-5000-2000/Library" --to "Library (renamed)"
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

QUERIES = ("quarterly budget", "how to parse dates", "meeting notes", "iterator protocol", "license terms",
           "sunset photo")


def _timed_search(searcher: object, query: str) -> float:
    started = time.perf_counter()
    searcher.search(query, limit=20)  # type: ignore[attr-defined]
    return (time.perf_counter() - started) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--folder", required=True, help="a watched folder of that data folder")
    ap.add_argument("--to", required=True, help="its new name, beside it")
    ap.add_argument("--rounds", type=int, default=10, help="rounds of the queries after the upkeep")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    from indexer.library.runtime import open_runtime
    from indexer.library.settings import save_settings

    folder = os.path.abspath(args.folder)
    new = os.path.join(os.path.dirname(folder), args.to)
    load_before = os.getloadavg()
    os.rename(folder, new)
    rt = open_runtime(args.data_dir)
    try:
        service = rt.service()
        searcher = rt.searcher()
        _timed_search(searcher, "warm up")
        started = time.perf_counter()
        followed = service.follow_moved_roots()
        follow_s = time.perf_counter() - started
        save_settings(rt.paths, rt.settings)
        right_after = [_timed_search(searcher, q) for q in QUERIES[:3]]
        done = threading.Event()
        upkeep: dict[str, float] = {}

        def run_upkeep() -> None:
            t = time.perf_counter()
            service.optimize()
            upkeep["s"] = time.perf_counter() - t
            done.set()

        threading.Thread(target=run_upkeep, daemon=True).start()
        during: list[float] = []
        while not done.is_set():
            during.append(_timed_search(searcher, QUERIES[len(during) % len(QUERIES)]))
            done.wait(1.0)
        after = sorted(_timed_search(searcher, q) for _ in range(args.rounds) for q in QUERIES)
    finally:
        rt.close()
    load_after = os.getloadavg()
    result = {
        "followed": followed, "follow_s": round(follow_s, 2), "upkeep_s": round(upkeep.get("s", 0.0), 1),
        "query_ms_right_after": [round(x) for x in right_after],
        "query_ms_during_upkeep": {"n": len(during), "min": round(min(during, default=0)),
                                   "median": round(statistics.median(during)) if during else 0,
                                   "max": round(max(during, default=0))},
        "query_ms_after_upkeep": {"n": len(after), "median": round(statistics.median(after), 1),
                                  "p95": round(after[int(0.95 * (len(after) - 1))], 1)},
        "load_before": load_before, "load_after": load_after,
    }
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
