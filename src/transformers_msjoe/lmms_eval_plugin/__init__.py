"""lmms-eval plugin: the `msjoe` model and the msjoe_* tasks (Video-MME, LongVideoBench, LVBench, MLVU).

The model is registered through the `lmms_eval.models` entry point (`lmms_eval_models` below returns its
`ModelManifest`); the tasks live in `tasks/`, which `lmms-eval --include_path "$(msjoe lmms-eval-tasks-path)"`
adds to lmms-eval's task index. See docs/evaluation.md.

Importing this package does not import lmms-eval (it is the optional `[eval]` extra); `model` does.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lmms_eval.models.registry_v2 import ModelManifest

__all__ = ["MODEL_ID", "TASK_NAMES", "lmms_eval_models", "tasks_path"]

MODEL_ID = "msjoe"
TASK_NAMES = ("msjoe_videomme", "msjoe_videomme_long", "msjoe_longvideobench", "msjoe_lvbench", "msjoe_mlvu")


def tasks_path() -> str:
    """The folder of the msjoe_* task yamls, for `lmms-eval --include_path` or `TaskManager(include_path=...)`."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "tasks")


def lmms_eval_models() -> list[ModelManifest]:
    """Entry point `lmms_eval.models`: the manifest of `--model msjoe` (called by lmms-eval's model registry)."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return [ModelManifest(model_id=MODEL_ID, simple_class_path=f"{__name__}.model.MSJoELmmsEvalModel")]
