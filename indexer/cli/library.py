"""`lodestar library share|status|sync|leave`: a library shared between computers on S3 storage.

Credentials and the endpoint come from the standard AWS variables and files
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws, AWS_ENDPOINT_URL); Lodestar
never stores them.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

from indexer.cli._common import print_json, say
from indexer.wording import plural


def register(sub: Any, common: Any) -> None:
    p = sub.add_parser("library", parents=[common], help="share this library with other computers (S3 storage)",
                       description="Share this library with other computers through S3-compatible storage. "
                       "Credentials and endpoint come from the standard AWS variables (AWS_ACCESS_KEY_ID, "
                       "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, AWS_ENDPOINT_URL); Lodestar never stores them.")
    actions = p.add_subparsers(dest="library_action", metavar="ACTION", required=True)
    s = actions.add_parser("share", parents=[common], help="make this data folder a part of a shared library")
    s.add_argument("uri", metavar="s3://BUCKET/PREFIX", help="where the shared library lives (created if new)")
    s.add_argument("--computer", metavar="NAME", help="how this computer is named to the others (default: host name)")
    s.set_defaults(func=run_share)
    st = actions.add_parser("status", parents=[common], help="list the parts of the shared library")
    st.add_argument("--json", action="store_true", help="print the status as one JSON object")
    st.set_defaults(func=run_status)
    sy = actions.add_parser("sync", parents=[common], help="publish this computer's part now")
    sy.set_defaults(func=run_sync)
    lv = actions.add_parser("leave", parents=[common], help="stop sharing and remove this computer's part")
    lv.add_argument("--keep-remote", action="store_true", help="stop sharing but leave this computer's part on the storage")
    lv.add_argument("--yes", action="store_true", help="do not ask before removing this computer's part")
    lv.set_defaults(func=run_leave)


def _data_dir(args: Any) -> Any:
    from indexer.library.settings import open_paths

    return open_paths(getattr(args, "data_dir", None)).data_dir


def run_share(args: Any) -> int:
    from indexer.shared.library import PRIVACY, share, sync

    data_dir = _data_dir(args)
    say(f"Privacy: {PRIVACY}")
    cfg, new = share(data_dir, args.uri, computer=args.computer)
    say(f"{'Created' if new else 'Joined'} the shared library {cfg.uri} as {cfg.computer!r}.")
    say("Publishing this computer's part…")
    report = sync(data_dir)
    if report.problem:
        say(f"lodestar: not published yet: {report.problem}; it is retried by `lodestar library sync`, "
            "`lodestar watch` or the window", file=sys.stderr)
        return 1
    if report.files:
        say(f"Published {plural(report.files, 'file')}. `lodestar search` on any computer of the library now finds them.")
    else:
        say("Nothing is indexed here yet: what `lodestar index`, `lodestar watch` or the window index from now "
            "on is published.")
    return 0


def run_sync(args: Any) -> int:
    from indexer.shared.library import sync

    report = sync(_data_dir(args))
    if report.busy:
        say("Another Lodestar on this computer is publishing its part right now.")
        return 0
    if report.problem:
        say(f"lodestar: {report.problem}", file=sys.stderr)
        return 2
    if report.unchanged:
        say(f"Up to date: {plural(report.files, 'file')} published.")
    else:
        say(f"Published: {plural(report.published, 'file')} sent, {report.removed} removed, "
            f"{plural(report.files, 'file')} in this part.")
    return 0


def run_status(args: Any) -> int:
    from indexer.shared.library import describe_age, status

    st = status(_data_dir(args))
    if args.json:
        print_json(st.to_json())
        return 0
    if not st.shared:
        say("This data folder is not part of a shared library (`lodestar library share s3://BUCKET/PREFIX`).")
        return 0
    say(f"Shared library: {st.uri}  (this computer: {st.computer})")
    if st.problem:
        say(f"Not reachable now: {st.problem}")
    if st.publish_problem:
        say(f"Last publish failed: {st.publish_problem} (retried in the background)")
    else:
        say(f"Last published: {describe_age(st.last_published)}")
    for p in st.parts:
        when = dt.datetime.fromtimestamp(p.updated_at).strftime("%Y-%m-%d %H:%M") if p.updated_at else "never"
        mark = " (this computer)" if p.this_computer else ""
        reach = "reachable" if p.reachable else "not reachable"
        extra = f" — {p.problem}" if p.problem else ""
        say(f"  {p.computer}{mark}: {plural(p.files, 'file')}, updated {when}, {reach}{extra}")
    return 0


def run_leave(args: Any) -> int:
    from indexer.shared.config import load_config
    from indexer.shared.library import leave
    from indexer.shared.target import ShareError

    data_dir = _data_dir(args)
    cfg = load_config(data_dir)
    if cfg is None:
        raise ShareError("this data folder is not part of a shared library")
    if not args.keep_remote and not args.yes:
        if not sys.stdin.isatty():
            raise ShareError("leaving removes this computer's part from the storage: add --yes to confirm, "
                             "or --keep-remote to leave it there")
        answer = input(f"Remove this computer's part ({cfg.computer}) from {cfg.uri}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            say("Nothing changed.")
            return 1
    removed = leave(data_dir, keep_remote=args.keep_remote)
    if args.keep_remote:
        say(f"Stopped sharing; this computer's part stays on {cfg.uri}.")
    else:
        say(f"Stopped sharing; this computer's part was removed from {cfg.uri} ({removed} objects).")
    return 0
