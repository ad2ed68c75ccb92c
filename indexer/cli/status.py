"""`lodestar status`: what is indexed, what failed and why, models, where data lives."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from indexer.cli._common import add_clip_flag, print_json, runtime_from_args, say, shorten_home
from indexer.paths import display_path


def register(sub: Any, common: Any) -> None:
    p = sub.add_parser("status", parents=[common], help="show folders, counts, models and problems")
    p.add_argument("--json", action="store_true")
    p.add_argument("--problems", type=int, default=10, metavar="N", help="list up to N problem files (default 10)")
    add_clip_flag(p)
    p.set_defaults(func=run)


def collect(rt: Any, problems: int = 10) -> dict[str, Any]:
    from indexer.ingest.scan import Exclusions
    from models.weights import weights_status

    store = rt.store
    counts = store.counts()
    clip = weights_status(rt.settings, checkpoint=rt.clip_checkpoint)
    folder_modes = {}
    try:
        from indexer.watch.watcher import read_watch_status

        folder_modes = {f.path: f for f in read_watch_status(rt.paths)}
    except ImportError:
        pass
    files = store.files().values()
    folders = []
    from indexer.ingest.pipeline import FOLDER_KIND
    from indexer.ingest.scan import refusal_reason, unlistable_reason

    for root in rt.settings.folders:
        n = sum(1 for r in files if r.root == root and r.kind != FOLDER_KIND)
        failed = sum(1 for r in files if r.root == root and r.state == "failed")
        st = folder_modes.get(root)
        mode = st.mode if st else ("unavailable" if not os.path.isdir(root) else "not watched")
        message = st.message if st else ""
        # Checked now, whatever a watcher last said: Lodestar's own data, or no permission to list.
        why = refusal_reason(root, rt.paths.data_dir)
        if not why and os.path.isdir(root):
            why = unlistable_reason(root)
            if why:
                why = f"{why}; its {n} entries are kept, hidden from results, until it can be read again"
        if why:
            mode, message = "unavailable", why
        folders.append(
            {
                "path": root,
                "files": n,
                "failed": failed,
                "mode": mode,
                "last_reconcile": st.last_reconcile if st else None,
                "message": message,
            }
        )
    probs = store.problems()
    return {
        "data_dir": str(rt.paths.data_dir),
        "store_bytes": store.size_bytes(),
        "folders": folders,
        "counts": counts,
        "text_model": {"id": rt.text_embedder.model_id, "dim": rt.text_embedder.dim, "available": True},
        "image_model": _image_model_status(rt, clip),
        "exclusions": Exclusions(rt.settings, rt.paths.data_dir).describe(),
        "problems": [
            {"path": display_path(r.path), "state": r.state, "reason": r.reason}
            for r in probs[:problems]
        ],
        "problem_count": len(probs),
        "index_health": _health(rt),
        "words_in_pictures": _words(rt),
        "settings_problems": list(getattr(rt.settings, "problems", [])),  # what load_settings repaired
    }


def _image_model_status(rt: Any, clip: dict[str, Any]) -> dict[str, Any]:
    """Plainly: are the CLIP weights on this machine, and if not, how to get them."""
    out = {
        "id": rt.image_embedder.model_id,
        "available": bool(clip.get("available")) and clip.get("source") != "download",
        "source": clip.get("source"),
        "message": clip.get("message", ""),
        "fix": clip.get("fix", ""),
    }
    if clip.get("source") == "download":
        out["message"] = "the CLIP weights are not on this machine yet (about 600 MB; downloaded when indexing meets the first picture, as allowed by the settings)"
        out["fix"] = (
            "run `lodestar models download` while online, or use a local checkpoint: "
            "--clip-checkpoint FILE / LODESTAR_CLIP_CHECKPOINT / settings"
        )
        from indexer.library.runtime import last_download_failure

        failed = last_download_failure(rt.paths)
        if failed is not None:
            out["message"] += f"; the last download attempt failed: {failed.get('reason', '')}"
    return out


def run(args: Any) -> int:
    rt = runtime_from_args(args, create=False)  # reads only: never makes a data directory
    try:
        data = collect(rt, args.problems)
    finally:
        rt.close()
    if args.json:
        print_json(data)
        return 0
    say(f"Data directory: {shorten_home(data['data_dir'])} ({_size(data['store_bytes'])} index)")
    if data["index_health"]:
        say(f"Index check: {data['index_health']}")
    for line in data["settings_problems"]:
        say(f"Settings: {line}")
    c = data["counts"]
    kinds = ", ".join(f"{v} {k}" for k, v in sorted(c["by_kind"].items())) or "none"
    states = ", ".join(f"{v} {k}" for k, v in sorted(c["by_state"].items())) or "none"
    say(f"Files: {c['files']} ({kinds}); states: {states}; {c['chunks']} passages, {c['images']} image vectors")
    words = data["words_in_pictures"]
    say(f"Words in pictures and scans: {words['message']}"
        + (f"; {words['failed']} could not be read" if words["failed"] else ""))
    if not data["folders"]:
        say("Folders: none yet — add one with `lodestar folders add PATH` or `lodestar index PATH`")
    else:
        say("Folders:")
        for f in data["folders"]:
            when = dt.datetime.fromtimestamp(f["last_reconcile"]).strftime("%Y-%m-%d %H:%M") if f["last_reconcile"] else "never"
            say(f"  {shorten_home(f['path'])}: {f['files']} files, {f['failed']} failed, {f['mode']}, last full check {when}")
            if f["message"]:
                say(f"    {f['message']}")
    tm = data["text_model"]
    say(f"Text model: {tm['id']} ({tm['dim']} dimensions)")
    im = data["image_model"]
    if im["available"]:
        say(f"Image model: {im['id']} (weights: {im['source']})")
    else:
        say(f"Image model: {im['id']} — NOT AVAILABLE: {im['message']}")
        if im["fix"]:
            say(f"  To fix: {im['fix']}")
        say("  Text search works meanwhile; images are kept as pending and indexed once the weights are there.")
    say("Exclusions: " + "; ".join(data["exclusions"]))
    if data["problems"]:
        say(f"Problems ({data['problem_count']}):")
        for p in data["problems"]:
            say(f"  {p['state']}: {shorten_home(p['path'])}: {p['reason']}")
    return 0


def _words(rt: Any) -> dict[str, Any]:
    """How far reading the words in pictures and scans has come (issue 16)."""
    import dataclasses

    from indexer.ingest.recognise import progress

    return dataclasses.asdict(progress(rt.store, rt.settings))


def _health(rt: Any) -> str:
    """This start's repair message, else the last one any process recorded (promise 2)."""
    from indexer.store.health import last_report

    if rt.health is not None and rt.health.message:
        return str(rt.health.message)
    last = last_report(rt.paths) or {}
    checked = float(last.get("checked_at") or 0)
    if not last.get("message") or dt.datetime.now().timestamp() - checked > 7 * 86400:
        return ""  # old news after a week of healthy starts
    return f"{last['message']} ({dt.datetime.fromtimestamp(checked).strftime('%Y-%m-%d %H:%M')})"


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)
