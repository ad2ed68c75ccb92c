"""A shared library (issue 19): query latency against the local store vs an S3 server, same data, same run.

One folder of N generated text files (topics mixed so every query has real answers) is
indexed once with the real text model. Its part is published to an S3 server started on
127.0.0.1 (moto's server mode: the S3 API in Python, so slower than MinIO or AWS on a
LAN; an upper bound for the storage's share of a query). Then the same queries run:

- ``local``: the `Searcher` over this computer's index (what every query pays today);
- ``part on S3``: a `Searcher` over the part on the bucket (`indexer.shared.remote.RemoteStore`),
  as another computer reads it: the first query (opens the tables, loads the vectors) and
  the warm ones;
- ``shared (merged)``: another computer's `SharedSearcher` (its empty local index + this
  part), the whole answer a person sees there.

Also the publish itself: time and bytes on the bucket for the first publish, and an
incremental one after touching 1 % of the files. Prints markdown tables with the load
average before and after; ``--json`` writes the figures.

    .venv/bin/python bench/bench_shared.py --files 200 --queries 10          # smoke (~1-2 min)
    .venv/bin/python bench/bench_shared.py --files 5000 --queries 40 --json /tmp/shared.json   # idle machine
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from _common import SCRATCH, machine, table, write_json

TOPICS = {
    "baking": ["sourdough starter", "rye flour", "proofing basket", "oven spring", "crumb structure"],
    "volcano": ["lava flow", "magma chamber", "ash cloud", "eruption warning", "pyroclastic surge"],
    "taxes": ["tax return", "deductible expenses", "receipts folder", "quarterly estimate", "audit letter"],
    "garden": ["tomato seedlings", "compost heap", "drip irrigation", "pruning shears", "aphid problem"],
    "travel": ["train timetable", "hotel booking", "passport renewal", "luggage allowance", "museum tickets"],
    "code": ["database migration", "unit test failure", "memory leak", "release checklist", "code review"],
}
QUERIES = ["how do I feed a sourdough starter", "lava flowing toward the village", "where are the receipts for taxes",
           "tomatoes need watering", "book a hotel near the station", "why does the test fail after the migration",
           "ash cloud over the airport", "renew my passport", "compost for the garden", "review the release"]


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "uptime unavailable"


def make_corpus(folder: Path, n: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    names = list(TOPICS)
    for i in range(n):
        topic = names[i % len(names)]
        phrases = TOPICS[topic]
        lines = []
        for _ in range(rng.randint(4, 12)):
            a, b = rng.sample(phrases, 2)
            lines.append(f"Note {i}: the {a} and the {b} came up again; see the {rng.choice(phrases)} list.")
        (folder / f"{topic}-{i:05d}.txt").write_text("\n".join(lines), encoding="utf-8")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def runtime(data: Path, folder: Path | None) -> Any:
    from indexer.library.runtime import Runtime
    from indexer.library.settings import Settings, open_paths, save_settings

    paths = open_paths(data)
    settings = Settings(folders=[str(folder)] if folder else [], allow_download=False,
                        clip_checkpoint=str(data / "no-image-model.safetensors"))
    save_settings(paths, settings)
    return Runtime(paths, settings)


def latencies(fn: Any, queries: list[str]) -> list[float]:
    out = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        out.append((time.perf_counter() - t) * 1000)
    return out


def summary(ms: list[float]) -> tuple[float, float, float]:
    ordered = sorted(ms)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return statistics.median(ordered), p95, statistics.mean(ordered)


def bucket_bytes(client: Any, bucket: str) -> tuple[int, int]:
    n = size = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            n += 1
            size += int(o["Size"])
    return n, size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--queries", type=int, default=30)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    before = uptime()
    print(f"load before: {before}")

    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1",
                      AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}")
    os.environ.pop("AWS_PROFILE", None)
    import boto3

    client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1")
    client.create_bucket(Bucket="bench")

    from indexer.shared.library import share, sync
    from indexer.shared.remote import RemoteStore
    from indexer.shared.search import SharedSearcher
    from indexer.shared.target import Bucket, parse_uri

    root = SCRATCH / "shared"
    if root.exists():
        shutil.rmtree(root)
    folder = root / "files"
    make_corpus(folder, args.files)
    a = runtime(root / "computer-a", folder)
    t = time.perf_counter()
    summary_ = a.service().index_roots([str(folder)])
    index_s = time.perf_counter() - t
    print(f"indexed {summary_.new} files in {index_s:.1f}s")

    cfg, _new = share(a.paths.data_dir, "s3://bench/lib", computer="computer-a")
    t = time.perf_counter()
    first = sync(a.paths.data_dir)
    first_s = time.perf_counter() - t
    assert not first.problem, first.problem
    objects, size = bucket_bytes(client, "bench")
    touched = sorted(folder.iterdir())[: max(1, args.files // 100)]
    for p in touched:
        p.write_text(p.read_text(encoding="utf-8") + "\nEdited: one more line about the oven spring.", encoding="utf-8")
    a.service().index_roots([str(folder)])
    t = time.perf_counter()
    again = sync(a.paths.data_dir)
    again_s = time.perf_counter() - t
    assert not again.problem, again.problem

    queries = [QUERIES[i % len(QUERIES)] + ("" if i < len(QUERIES) else f" {i}") for i in range(args.queries)]
    local = getattr(a.searcher(), "local", a.searcher())
    local.search("warm up")
    local_ms = latencies(lambda q: local.search(q, limit=20), queries)

    text = a.text_embedder
    remote_store = RemoteStore(Bucket(parse_uri("s3://bench/lib")), cfg.part_id, text_model=(text.model_id, text.dim),
                               image_model=None)
    from indexer.search.ranking import Searcher

    remote = Searcher(remote_store, text, None)
    t = time.perf_counter()
    remote.search(queries[0], limit=20)
    cold_ms = (time.perf_counter() - t) * 1000
    remote_ms = latencies(lambda q: remote.search(q, limit=20), queries)
    compared = min(10, len(queries))
    same = sum(1 for q in queries[:compared] if [r.path for r in local.search(q, limit=10).results]
               == [r.path for r in remote.search(q, limit=10).results])

    b = runtime(root / "computer-b", None)
    share(b.paths.data_dir, "s3://bench/lib", computer="computer-b")
    sync(b.paths.data_dir)
    merged = b.searcher()
    assert isinstance(merged, SharedSearcher)
    merged.part_timeout_s = 60.0  # measure it, do not cut it off
    t = time.perf_counter()
    merged.search(queries[0], limit=20)
    merged_cold_ms = (time.perf_counter() - t) * 1000
    merged_ms = latencies(lambda q: merged.search(q, limit=20), queries)
    found = sum(1 for q in queries if any(r.computer == "computer-a" for r in merged.search(q, limit=20).results))

    rows = [
        ["local store", *summary(local_ms), "-"],
        ["part on S3 (warm)", *summary(remote_ms), f"{cold_ms:.0f}"],
        ["shared, merged (warm)", *summary(merged_ms), f"{merged_cold_ms:.0f}"],
    ]
    after = uptime()
    md = table(f"Query latency, {args.files} files, {args.queries} queries (ms)",
               ["reader", "p50", "p95", "mean", "first query"], rows)
    md2 = table("Publishing", ["step", "seconds", "files sent", "objects", "MB on bucket"], [
        ["first publish", round(first_s, 2), first.published, objects, round(size / 1e6, 2)],
        [f"after editing {len(touched)} files", round(again_s, 2), again.published, "-", "-"],
    ])
    print()
    print(md)
    print(f"same top-10 local vs part on S3: {same}/{compared} queries; merged answers with computer-a's files: {found}/{len(queries)}")
    print()
    print(md2)
    print(f"\nload before: {before}\nload after:  {after}")
    write_json(args.json, {"files": args.files, "queries": args.queries, "index_s": index_s,
                           "local_ms": local_ms, "remote_ms": remote_ms, "remote_cold_ms": cold_ms,
                           "merged_ms": merged_ms, "merged_cold_ms": merged_cold_ms, "same_top10": same,
                           "first_publish_s": first_s, "objects": objects, "bucket_bytes": size,
                           "incremental_publish_s": again_s, "incremental_files": again.published,
                           "load_before": before, "load_after": after, "machine": machine()})
    merged.close()
    remote.close()
    a.close()
    b.close()
    server.stop()


if __name__ == "__main__":
    main()
