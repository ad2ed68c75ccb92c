"""The `lodestar` command.

Arguments are parsed before anything heavy is imported, so `--help` is instant.
Each subcommand lives in `indexer/cli/<name>.py`, is named in `COMMANDS`, and
exposes `register(subparsers, common)`, which adds its parser and sets `func(args) -> int`.
`lodestar` with no subcommand opens the desktop window.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from indexer.errors import UserError

log = logging.getLogger(__name__)

COMMANDS = ["index", "search", "similar", "duplicates", "status", "folders", "watch", "eval", "autostart", "models",
            "library", "map"]


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        default=argparse.SUPPRESS,
        help="where the index, thumbnails and settings live (env LODESTAR_DATA_DIR; "
        "default: the platform's user data directory)",
    )
    common.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more log output")

    parser = argparse.ArgumentParser(
        prog="lodestar",
        description="Find your files by meaning. Without a command, opens the window.",
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"indexer.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"indexer.cli.{name}":
                continue  # command not built into this version
            raise
        module.register(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "data_dir"):
        args.data_dir = None
    if not hasattr(args, "verbose"):
        args.verbose = 0
    _setup_logging(args.verbose)
    from indexer.library.settings import set_reporter

    # Repaired settings and announced downloads: one stderr line each, before anything else happens.
    set_reporter(_tell)
    try:
        return _run(args)
    finally:
        set_reporter(None)


def _tell(line: str) -> None:
    from indexer.cli._common import say

    say(f"lodestar: {line}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    # Private by default: derived files are created readable by the user only.
    os.umask(0o077)
    if args.command is None:
        from desktop.preflight import check_display  # before Qt loads: name missing packages

        problem = check_display()
        if problem is not None:
            from indexer.cli._common import say

            say(f"lodestar: {problem}", file=sys.stderr)
            return 2
        from desktop.app import run_app  # the only place the CLI reaches into Qt

        return run_app(data_dir=args.data_dir)
    from indexer.cli._common import say  # messages quote paths: neutralise them

    try:
        from indexer.library.logs import cli_logging
        from indexer.library.settings import default_data_dir

        # Details (tracebacks, library warnings) go to the data directory's log file.
        with cli_logging(args.data_dir or default_data_dir(), args.verbose):
            return int(args.func(args) or 0)
    except UserError as exc:
        say(f"lodestar: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        say("lodestar: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        from indexer.errors import user_message

        message = user_message(exc)
        if message is None:
            raise
        say(f"lodestar: {message}", file=sys.stderr)
        return 2


def _setup_logging(verbose: int) -> None:
    from indexer.cli._common import SafeLogFormatter

    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    # Log messages quote paths and file contents, and they reach the terminal too.
    handler = logging.StreamHandler()
    handler.setFormatter(SafeLogFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])  # no-op when logging is already set up


if __name__ == "__main__":
    sys.exit(main())
