"""One module per `lodestar` subcommand, each with `register(subparsers, common)`."""
