"""`lodestar eval QUERIES.jsonl --root DIR`: retrieval quality of the current index."""

from __future__ import annotations

import os
from typing import Any

from indexer.cli._common import print_json, runtime_from_args, say
from indexer.errors import UserError


def register(sub: Any, common: Any) -> None:
    p = sub.add_parser(
        "eval",
        parents=[common],
        help="score the index on labelled queries (MRR@10, Recall@10, nDCG@10, latency)",
        description="Each line of QUERIES.jsonl: {\"query\": ..., \"relevant\": [paths relative to --root], "
        "\"span\": [start, end] (optional)}. Index the folder first with `lodestar index DIR`.",
    )
    p.add_argument("queries", metavar="QUERIES.jsonl")
    p.add_argument("--root", required=True, metavar="DIR", help="folder the relevant paths are relative to")
    p.add_argument("--json", action="store_true", help="print the figures (and every query) as JSON")
    p.add_argument("--misses", action="store_true", help="list the queries whose relevant file was not first")
    p.add_argument("--kind", choices=("text", "all"), default="text",
                   help="what may answer: documents (text, the default) or every file, pictures found by "
                        "their names and the words recognised in them included (all; the image model is "
                        "not loaded)")
    p.set_defaults(func=run)


def run(args: Any) -> int:
    from indexer.search.eval import evaluate, load_queries
    from indexer.search.ranking import Searcher

    if os.path.isdir(args.queries):
        raise UserError(f"{args.queries} is a folder, not a query file (JSON lines)")
    if not os.path.isfile(args.queries):
        raise UserError(f"no such query file: {args.queries}")
    if os.path.exists(args.root) and not os.path.isdir(args.root):
        raise UserError(f"--root {args.root} is a file, not a folder")
    if not os.path.isdir(args.root):
        raise UserError(f"no such folder: {args.root}")
    try:
        queries = load_queries(args.queries)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    rt = runtime_from_args(args, create=False)  # reads only: never makes a data directory
    try:
        if not rt.store.files():
            raise UserError(f"the index is empty; run `lodestar index {args.root}` first")
        # CLIP need not be loaded: the labelled sets are text, or pictures found by their words.
        searcher = Searcher(rt.store, rt.text_embedder, None, paths=rt.paths, settings=rt.settings)
        kind = args.kind
        try:
            searcher.search("warm up", kind=kind, limit=10)  # load the model and caches first
            report = evaluate(lambda q: searcher.search(q, kind=kind, limit=10), queries, os.path.realpath(args.root))
        finally:
            searcher.close()  # its side threads
    finally:
        rt.close()
    if args.json:
        data = report.summary()
        data["queries"] = [o.__dict__ for o in report.outcomes]
        print_json(data)
        return 0
    say(f"queries      {report.n}")
    say(f"MRR@10       {report.mrr:.3f}")
    say(f"Recall@10    {report.recall:.3f}")
    say(f"nDCG@10      {report.ndcg:.3f}")
    say(f"latency      p50 {report.p50_ms:.1f} ms, p95 {report.p95_ms:.1f} ms")
    if report.span_overlap is not None:
        say(f"passage      {report.span_overlap:.3f} of {report.span_queries} shown passages overlap the answer")
    if args.misses:
        for o in report.outcomes:
            if o.rank != 1:
                say(f"  rank {o.rank or '-':>2}  {o.query}  →  {o.top[:3]}")
    return 0
