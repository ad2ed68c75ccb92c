"""`lodestar duplicates`: groups of duplicate and near-duplicate files, for people and scripts.

It only lists: nothing is moved or deleted (the window's Duplicates view moves extra
copies to the trash when asked). ``--json`` prints one object on standard output:
``{"groups": [{tier, title, rule, reclaimable_bytes, keeper, keeper_why, files: [...]}]}``.
"""

from __future__ import annotations

from typing import Any

from indexer.cli._common import print_json, runtime_from_args, say, shorten_home
from indexer.wording import human_bytes

TIER_CHOICES = ("identical", "resaved", "burst", "document")


def register(sub: Any, common: Any) -> None:
    p = sub.add_parser("duplicates", parents=[common],
                       help="list duplicate and near-duplicate files (never deletes)",
                       description="List groups of identical files, pictures saved again, similar shots "
                                   "and documents in another form, largest reclaimable space first. "
                                   "Nothing is moved or deleted.")
    p.add_argument("--tier", action="append", choices=TIER_CHOICES, metavar="TIER",
                   help=f"only this kind of group (repeatable): {', '.join(TIER_CHOICES)}")
    p.add_argument("--json", action="store_true", help="one JSON object on standard output")
    p.set_defaults(func=run)


def run(args: Any) -> int:
    from indexer.duplicates.actions import load_decisions
    from indexer.duplicates.scan import DuplicateScan
    from indexer.duplicates.tiers import TIER_TITLES, TIERS
    from indexer.store.read import StoreReader

    tiers = tuple(t for t in TIERS if t in (args.tier or TIERS))
    rt = runtime_from_args(args, create=False)  # reads only: never makes a data directory
    try:
        decisions = load_decisions(rt.paths.data_dir)
        scan = DuplicateScan(rt.store, StoreReader(rt.store), rt.paths.data_dir)
        groups = scan.run(tiers, preferred=decisions.preferred, dismissed=decisions.dismissed)
    finally:
        rt.close()
    if args.json:
        print_json({"groups": [g.to_json() for g in groups]})
        return 0
    if not groups:
        say("No duplicates found.")
        return 0
    total = sum(g.reclaimable for g in groups)
    say(f"{len(groups)} group{'s' if len(groups) != 1 else ''}; {human_bytes(total)} could be reclaimed "
        "(nothing was moved; the window's Duplicates view moves extra copies to the trash).")
    for g in groups:
        say("")
        say(f"{TIER_TITLES[g.tier]}: {human_bytes(g.reclaimable)} reclaimable")
        say(f"  rule: {g.rule}")
        for i, m in enumerate(g.members):
            mark = "keep" if i == g.keeper else "    "
            say(f"  {mark} {shorten_home(m.path)}  ({human_bytes(m.size)})")
        say(f"  keeper: {g.keeper_why}")
    return 0

