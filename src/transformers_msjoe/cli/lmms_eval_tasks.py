"""`msjoe lmms-eval-tasks-path`: the folder of the msjoe_* lmms-eval tasks, for `lmms-eval --include_path`."""

from __future__ import annotations

import argparse

from .output import emit


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `msjoe lmms-eval-tasks-path` (listed in cli/main.py COMMAND_MODULES)."""
    description = (
        "Print the folder holding the msjoe_* lmms-eval tasks (msjoe_videomme, msjoe_videomme_long, "
        'msjoe_longvideobench, msjoe_lvbench, msjoe_mlvu), for `lmms-eval --include_path "$(msjoe '
        'lmms-eval-tasks-path)"`. See docs/evaluation.md.'
    )
    sub = subparsers.add_parser(
        "lmms-eval-tasks-path", help="Print the msjoe_* lmms-eval tasks folder.", description=description
    )
    sub.set_defaults(func=_tasks_path)


def _tasks_path(args: argparse.Namespace) -> int:
    """Print the tasks folder; importing it needs no lmms-eval, so this works before `pip install ...[eval]`."""
    from ..lmms_eval_plugin import tasks_path

    emit(tasks_path())
    return 0
