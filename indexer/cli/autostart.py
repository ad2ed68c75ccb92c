"""`lodestar autostart on|off|status`: opt-in start of `lodestar watch` at login."""

from __future__ import annotations

import argparse
import logging

from indexer.cli._common import say
from indexer.library.settings import load_settings, open_paths, save_settings

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "autostart",
        parents=[common],
        help="start `lodestar watch` when you log in (on), stop doing so (off), or show it (status)",
    )
    p.add_argument("action", choices=["on", "off", "status"], nargs="?", default="status")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from indexer.library import autostart

    paths = open_paths(args.data_dir)
    if args.action == "status":
        st = autostart.status()
        if st.enabled:
            say(f"Starts at login: yes ({st.location})")
            say(f"Runs: {st.command}")
        else:
            say("Starts at login: no. Turn it on with `lodestar autostart on`.")
        return 0
    settings = load_settings(paths)
    if args.action == "on":
        # A non-default data dir must travel with the login command.
        cmd = autostart.watch_command(args.data_dir)
        st = autostart.enable(cmd)
        launcher = autostart.install_launcher()
        settings.start_at_login = True
        save_settings(paths, settings)
        say(f"Lodestar will keep your index up to date from login ({st.location}).")
        if launcher:
            say(f"Added Lodestar to the applications menu ({launcher[0]}).")
        return 0
    st = autostart.disable()
    settings.start_at_login = False
    save_settings(paths, settings)
    say(f"Lodestar no longer starts at login (removed {st.location}).")
    return 0
