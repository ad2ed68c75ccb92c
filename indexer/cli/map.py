"""`lodestar map`: the library laid out by meaning, as a picture or as data.

Brings the layer's kept map up to date first (new files placed, removed ones dropped,
laid out afresh after a big change: `indexer.map.build`), then ``--png FILE`` draws it
with its region names and ``--json FILE`` (``-``: standard output) writes
``{"layer", "model", "built_at", "stale", "files": [{"path", "x", "y", "cluster"}],
"clusters": [{"id", "label", "x", "y", "size", "level", "words"}]}``; coordinates are in
[0, 1], y downwards (as the window draws it). Without either it lists the regions.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from indexer.cli._common import add_clip_flag, json_text, runtime_from_args, say


def register(sub: Any, common: Any) -> None:
    p = sub.add_parser("map", parents=[common], help="lay the library out by meaning (a picture or JSON)",
                       description="Lay the indexed files out on a map by meaning, with named regions. "
                                   "The map is kept with the index and updated as files arrive.")
    p.add_argument("--layer", choices=("documents", "images"), default="documents",
                   help="documents (text model) or images (CLIP): two maps, the vectors differ (default documents)")
    p.add_argument("--png", metavar="FILE", help="draw the map with its region names into this PNG")
    p.add_argument("--json", metavar="FILE", help="write every file's place and region, and the regions' names "
                                                  "(- for standard output)")
    p.add_argument("--fresh", action="store_true", help="lay the whole map out again, even if little changed")
    p.add_argument("--size", default="1600x1200", metavar="WxH", help="size of the PNG (default 1600x1200)")
    add_clip_flag(p)
    p.set_defaults(func=run)


def _size(text: str) -> tuple[int, int]:
    from indexer.errors import UserError

    try:
        w, h = (int(v) for v in text.lower().split("x", 1))
    except ValueError:
        raise UserError(f"--size must look like 1600x1200, not {text!r}") from None
    if not (200 <= w <= 16000 and 200 <= h <= 16000):
        raise UserError("--size must be between 200x200 and 16000x16000")
    return w, h


def to_json(m: Any) -> dict[str, Any]:
    return {
        "layer": m.layer, "model": m.model, "method": m.method, "built_at": m.built_at, "stale": m.stale,
        "files": [{"path": p.path, "x": round(p.x, 6), "y": round(p.y, 6), "cluster": p.cluster} for p in m.points],
        "clusters": [{"id": c.id, "label": c.label, "x": round(c.x, 6), "y": round(c.y, 6), "size": c.size,
                      "level": c.level, "words": list(c.words)} for c in m.clusters],
    }


def run(args: Any) -> int:
    from indexer.map.build import build_library_map
    from indexer.map.render import render_png

    size = _size(args.size)
    rt = runtime_from_args(args, create=False)  # a missing data directory is an error, never made here
    try:
        last = [""]

        def progress(line: str, _fraction: float) -> None:
            if sys.stderr.isatty() and line != last[0]:
                last[0] = line
                say(f"  {line}…", file=sys.stderr)

        m = build_library_map(rt, args.layer, progress=progress, fresh=args.fresh)
    finally:
        rt.close()
    what = "document" if args.layer == "documents" else "picture"
    note = sys.stderr if args.json == "-" else None  # standard output holds the JSON alone
    if m.message:
        say(m.message, file=note)
    if m.points and len(m.points) > 1:
        regions = f"{len(m.clusters)} region{'s' if len(m.clusters) != 1 else ''}"
        say(f"Map of {len(m.points):,} {what}s: {regions}.", file=note)
    if args.png:
        render_png(m, args.png, *size)
        say(f"Wrote {args.png}", file=note)
    if args.json:
        text = json_text(to_json(m)) + "\n"
        if args.json == "-":
            sys.stdout.write(text)
        else:
            tmp = f"{args.json}.tmp-{os.getpid()}"
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, args.json)
            say(f"Wrote {args.json}")
    if not args.png and not args.json:
        for c in sorted(m.clusters, key=lambda c: -c.size)[:20]:
            say(f"  {c.size:>7,}  {c.label}")
    return 0
