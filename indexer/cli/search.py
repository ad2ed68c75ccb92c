"""`lodestar search QUERY`: ranked files with the passage that matched."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
from typing import Any

from indexer.cli._common import add_clip_flag, print_json, runtime_from_args, say, shorten_home
from indexer.errors import UserError
from indexer.paths import display_path

CLI_PART_TIMEOUT_S = 30.0
"""How long `lodestar search` waits for each other computer of a shared library (docs/SHARED.md)."""


def register(sub: Any, common: Any) -> None:
    p = sub.add_parser("search", parents=[common], help="search the index")
    p.add_argument("query", nargs="+", help="words, a question, or an exact phrase in quotes")
    p.add_argument("--kind", choices=["text", "image", "all"], default="all", help="documents, images or both")
    p.add_argument("--limit", type=limit_arg, default=10, help="how many files (default 10, at most 1000)")
    p.add_argument("--json", action="store_true", help="print results as JSON")
    add_filter_flags(p)
    add_clip_flag(p)
    p.set_defaults(func=run)


def add_filter_flags(p: Any) -> None:
    p.add_argument("--in", dest="folder", metavar="FOLDER", help="only files under this folder")
    p.add_argument("--type", dest="ext", action="append", metavar="EXT", help="only this extension (repeatable)")
    p.add_argument("--after", type=date_arg, metavar="YYYY-MM-DD", help="modified on or after this date")
    p.add_argument("--before", type=date_arg, metavar="YYYY-MM-DD", help="modified before this date")
    p.add_argument("--sort", choices=["relevance", "date"], default="relevance")


def limit_arg(text: str) -> int:
    """``--limit``: a whole number from 1 to RESULTS_MAX, else argparse's one-line error."""
    import argparse

    from indexer.search.query import RESULTS_MAX

    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= RESULTS_MAX:
        raise argparse.ArgumentTypeError(f"wants a whole number from 1 to {RESULTS_MAX}, not {text!r}")
    return n


def date_arg(text: str) -> dt.date:
    """``--after`` / ``--before``: 2025-01-31, 2025-01 or 2025, as the query's after:/before: read them."""
    import argparse

    from indexer.search.query import parse_day

    day = parse_day(text)
    if day is None:
        raise argparse.ArgumentTypeError(f"wants a date like 2025-01-31, 2025-01 or 2025, not {text[:40]!r}")
    return day


def filters_from_args(args: Any) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    if getattr(args, "folder", None):
        import os

        filters["folder"] = os.path.realpath(os.path.expanduser(args.folder))
    if getattr(args, "ext", None):
        filters["ext"] = [e.lower().lstrip(".") for e in args.ext]
    for key in ("after", "before"):
        value = getattr(args, key, None)
        if value:
            filters[key] = value if isinstance(value, dt.date) else date_arg(value)
    if getattr(args, "sort", "relevance") != "relevance":
        filters["sort"] = args.sort
    return filters


def run(args: Any) -> int:
    from indexer.search.query import too_long_message

    query = " ".join(args.query)
    too_long = too_long_message(query)
    if too_long:
        raise UserError(too_long)  # before the models load: nothing would be searched
    filters = filters_from_args(args)
    _refuse_empty(query, filters)
    rt = runtime_from_args(args, create=False)  # reads only: never makes a data directory
    try:
        searcher = rt.searcher()
        if getattr(searcher, "part_timeout_s", None) is not None:
            # One answer, no typing to keep up with: wait for the other computers of a shared
            # library (their parts open cold in a new process); an unreachable one still fails fast.
            searcher.part_timeout_s = CLI_PART_TIMEOUT_S
        resp = searcher.search(query, kind=args.kind, limit=args.limit, filters=filters or None)
    finally:
        rt.close()
    print_response(resp, args.json)
    return 0


def _refuse_empty(query: str, filters: dict[str, Any]) -> None:
    """No words, phrase or filter: say so rather than print nothing and succeed."""
    from indexer.search.query import parse_query

    parsed = parse_query(query)
    if parsed.text or parsed.has_filters() or any(k != "sort" for k in filters):
        return  # operators or flags alone list the matching files
    ignored = f" (ignored: {'; '.join(parsed.problems)})" if parsed.problems else ""
    raise UserError(
        f"nothing to search for{ignored}: give some words, a \"phrase\", or a filter such as type:pdf or --in FOLDER"
    )


def print_response(resp: Any, as_json: bool) -> None:
    if as_json:
        print_json(
            {
                "query": resp.query,
                "message": resp.message,
                "note": resp.note,
                "elapsed_ms": round(resp.elapsed_ms, 1),
                "counts": resp.counts,
                "results": [_public(r) for r in resp.results],
            }
        )
        return
    # `say` neutralises control characters: a file name or passage cannot drive the terminal.
    if resp.note:
        # A side note (e.g. images not searched), never the answer itself.
        say(f"({resp.note.rstrip('.')} — see `lodestar status`)", file=sys.stderr)
    if resp.message:
        say(resp.message)
    for i, r in enumerate(resp.results, 1):
        when = dt.datetime.fromtimestamp(r.mtime).strftime("%Y-%m-%d") if r.mtime else ""
        where = f"  (on {r.computer})" if r.computer else ""  # a file of another computer (shared library)
        say(f"{i:>2}. {shorten_home(display_path(r.path))}  [{r.kind}, {r.score:.3f}, {when}]{where}")
        if r.passage:
            text = " ".join(r.passage.split())
            if len(text) > 300:
                text = text[:297] + "…"
            say(f"      {text}")
        elif r.kind == "image" and r.width:
            say(f"      {r.width}×{r.height} image")


def _public(r: Any) -> dict[str, Any]:
    d = dataclasses.asdict(r)
    d["path"] = display_path(r.path)
    return d
