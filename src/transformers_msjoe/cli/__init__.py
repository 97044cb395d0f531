"""The `msjoe` command line: one sub-module per command group, each exposing `register(subparsers)`."""
