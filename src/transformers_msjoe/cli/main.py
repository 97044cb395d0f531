"""Entry point of the `msjoe` command (`[project.scripts]`); `main(argv)` is importable for tests."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from huggingface_hub.errors import StrictDataclassError
from transformers.utils import logging

# Command groups, each a module of this package with `register(subparsers)`.
COMMAND_MODULES = ("inference", "cache", "lmms_eval_tasks", "data")


def build_parser() -> argparse.ArgumentParser:
    """The `msjoe` parser with every command group's sub-commands."""
    parser = argparse.ArgumentParser(
        prog="msjoe",
        description="MSJoE (arXiv 2602.22932): query-guided key-frame selection + MLLM answering for long videos.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="Log at INFO level.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__package__}.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `msjoe` command; bad input exits with status 2 and one line naming the problem and the fix."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.set_verbosity_info() if args.verbose else logging.set_verbosity_warning()
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError, StrictDataclassError) as err:
        # Bad input: one clear line naming the problem and the fix, no traceback.
        parser.exit(2, f"msjoe {args.command}: error: {err}\n")


if __name__ == "__main__":
    sys.exit(main())
