"""`lodestar similar IMAGE`: indexed images that look like the given one."""

from __future__ import annotations

import os
from typing import Any

from indexer.cli._common import add_clip_flag, runtime_from_args
from indexer.cli.search import limit_arg, print_response
from indexer.errors import UserError


def register(sub: Any, common: Any) -> None:
    p = sub.add_parser("similar", parents=[common], help="find images similar to an image file")
    p.add_argument("image", metavar="IMAGE_FILE", help="any image file (it need not be indexed)")
    p.add_argument("--text", metavar="WORDS", help="words that steer the result (e.g. 'in winter')")
    p.add_argument("--limit", type=limit_arg, default=10, help="how many images (default 10, at most 1000)")
    p.add_argument("--json", action="store_true")
    add_clip_flag(p)
    p.set_defaults(func=run)


def run(args: Any) -> int:
    from indexer.types import ExtractionError, NameOnly

    if os.path.isdir(args.image):
        raise UserError(f"{args.image} is a folder, not an image file; give one image from it")
    if not os.path.exists(args.image):
        raise UserError(f"no such image file: {args.image}")
    if not os.path.isfile(args.image):
        raise UserError(f"{args.image} is not a regular file; give an image file")
    rt = runtime_from_args(args, create=False)  # reads only: never makes a data directory
    try:
        ok, why = rt.image_ready(load=True)
        if not ok:
            raise UserError(f"image search is unavailable: {why}")
        try:
            resp = rt.searcher().similar_image(os.path.abspath(args.image), text=args.text, limit=args.limit)
        except (ExtractionError, NameOnly) as exc:
            raise UserError(f"cannot read {args.image}: {exc}") from exc
    finally:
        rt.close()
    print_response(resp, args.json)
    return 0
