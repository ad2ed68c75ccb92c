"""The `lodestar` command: `main` parses arguments and dispatches to one module per
subcommand (`index`, `search`, …), each exposing `register(subparsers, common)`.

Output for people goes through `_common.say` (control characters neutralised);
`--json` through `_common.print_json`. May import everything in indexer.
"""
