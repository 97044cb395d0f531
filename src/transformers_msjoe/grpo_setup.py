"""What `MSJoEGRPOTrainer` checks and prepares before any GPU time is spent: the datasets, the frame settings
written into the model config, the LoRA config, and trainer settings that need the model or the PEFT config.

Every error names the problem (row, field, value) and the fix.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import torch
from datasets import Dataset, Video
from huggingface_hub.errors import StrictDataclassError
from transformers.utils import logging

from .configuration_msjoe import MSJoEConfig
from .grpo_config import MSJoEGRPOConfig
from .modeling_msjoe import MSJoEForVideoQA
from .rewards import QA_COLUMNS, check_qa_row

logger = logging.get_logger(__name__)

__all__ = [
    "LORA_ATTENTION_PROJECTIONS",
    "apply_frame_overrides",
    "check_trainer_setup",
    "default_lora_target_modules",
    "peft_config_for_msjoe",
    "prepare_qa_dataset",
]

# Default LoRA targets (`--use_peft` without `lora_target_modules`): the attention projections of the MLLM's
# language model, which every supported family names this way.
LORA_ATTENTION_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj")


def check_trainer_setup(args: MSJoEGRPOConfig, peft_config: Any | None) -> None:
    """Settings the MSJoE trainer refuses that depend on the PEFT config (the others: `MSJoEGRPOConfig`)."""
    if args.beta != 0.0 and peft_config is None:
        raise ValueError(
            f"beta={args.beta} needs a reference model: MSJoEGRPOTrainer uses the LoRA-disabled MLLM as the reference, "
            "so pass a peft_config (--use_peft), or set beta=0.0 (the paper's objective has no KL term)."
        )
    if args.training_stage == "sampler_pretrain" and peft_config is not None:
        raise ValueError(
            "training_stage='sampler_pretrain' freezes the MLLM, so a LoRA adapter would never train: drop "
            "peft_config (--use_peft) for stage 1."
        )
    if peft_config is not None and args.push_to_hub and args.hub_strategy != "end":
        raise ValueError(
            f"push_to_hub with LoRA and hub_strategy={args.hub_strategy!r} would upload adapter-only checkpoints "
            "during training next to the final merged MSJoE checkpoint (a repo with both does not load): set "
            "hub_strategy='end'."
        )


def apply_frame_overrides(config: MSJoEConfig, overrides: Mapping[str, Any]) -> None:
    """Write the training config's frame settings into the model config and validate them with it.

    On error the model config is left as it was, and the message names the offending field.
    """
    previous = {name: getattr(config, name) for name in overrides}
    try:
        for name, value in overrides.items():
            setattr(config, name, value)
        config.validate()
    except (ValueError, TypeError, StrictDataclassError) as err:
        for name, value in previous.items():
            setattr(config, name, value)
        raise ValueError(
            f"The MSJoEGRPOConfig frame settings {dict(overrides)} do not fit the model's config: {err} "
            "Change those fields (or unset them to keep the model's values)."
        ) from err


def default_lora_target_modules(model: MSJoEForVideoQA) -> str:
    """A PEFT `target_modules` regex selecting the attention projections of the MLLM's language model only (not
    the vision tower, not the sampler), e.g. `mllm\\.model\\.language_model\\..*\\.(q_proj|k_proj|v_proj|o_proj)`."""
    decoder = model.mllm.get_decoder()
    prefix = next((name for name, module in model.named_modules() if module is decoder), None)
    found = {
        name.rsplit(".", 1)[-1]
        for name, module in decoder.named_modules()
        if isinstance(module, torch.nn.Linear) and name.rsplit(".", 1)[-1] in LORA_ATTENTION_PROJECTIONS
    }
    if not prefix or not found:
        raise ValueError(
            f"Could not find the attention projections {LORA_ATTENTION_PROJECTIONS} of the language model of "
            f"{type(model.mllm).__name__}; pass `lora_target_modules` (e.g. --lora_target_modules q_proj v_proj)."
        )
    names = "|".join(p for p in LORA_ATTENTION_PROJECTIONS if p in found)
    return rf"{re.escape(prefix)}\..*\.({names})"


def peft_config_for_msjoe(peft_config: Any | None, model: MSJoEForVideoQA) -> Any | None:
    """The LoRA config as MSJoE needs it: no `task_type` (MSJoE is no causal LM: PEFT's CAUSAL_LM wrapper needs
    `prepare_inputs_for_generation`), the sampler in `modules_to_save` (it trains fully next to the adapter), and
    the language model's attention projections as the default `target_modules`."""
    if peft_config is None:
        return None
    modules = list(peft_config.modules_to_save or [])
    if "sampler" not in modules:
        modules.append("sampler")
    if peft_config.task_type is not None:
        logger.info(
            f"LoRA task_type={peft_config.task_type} ignored: MSJoE wraps the MLLM; the adapter targets its layers."
        )
    targets = peft_config.target_modules
    if targets is None:
        targets = default_lora_target_modules(model)
        logger.info(f"LoRA targets the language model's attention projections: {targets!r}.")
    return dataclasses.replace(peft_config, task_type=None, modules_to_save=modules, target_modules=targets)


def prepare_qa_dataset(dataset: Any, name: str, pass_rate_column: str | None) -> Any:
    """Check the columns (and, for map-style datasets, every row) up front; keep videos as paths/bytes."""
    if dataset is None:
        return None
    columns = dataset.column_names  # None for a stream of unknown features: its rows are checked batch by batch
    missing = [c for c in (*QA_COLUMNS, *([pass_rate_column] if pass_rate_column else [])) if c not in (columns or [])]
    if columns is not None and missing:
        hint = (
            " Stage 1 needs the base MLLM's pass rate per question (see `pass_rate_column`)."
            if pass_rate_column in missing
            else ""
        )
        raise ValueError(f"{name} lacks the column(s) {missing}; MSJoE training rows need {list(QA_COLUMNS)}.{hint}")
    features = dataset.features or {}
    if isinstance(features.get("video"), Video) and features["video"].decode:
        dataset = dataset.cast_column("video", Video(decode=False))  # paths/bytes: cacheable, cheap to batch
    if isinstance(dataset, Dataset):
        _check_rows(dataset, name, pass_rate_column)
    return dataset


def _check_rows(dataset: Dataset, name: str, pass_rate_column: str | None) -> None:
    """Every row's fields (the videos' presence read from Arrow, without loading video bytes)."""
    fields = [c for c in ("id", "question", "options", "answer", pass_rate_column) if c and c in dataset.column_names]
    checked = dataset.select_columns(fields)
    no_video = set(_rows_without_video(dataset))
    problems = []
    for i, row in enumerate(checked):
        problem = check_qa_row({**row, "video": None} if i in no_video else row, i, pass_rate_column=pass_rate_column)
        if problem:
            problems.append(problem)
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise ValueError(
            f"{name}: {'; '.join(problems[:5])}{more}. Fix or filter these rows, e.g. `dataset.filter(...)`."
        )


def _rows_without_video(dataset: Dataset, batch_size: int = 8192) -> list[int]:
    """Positions whose `video` is null or empty (for a `Video` value: neither path nor bytes)."""
    positions, offset = [], 0
    for table in dataset.select_columns(["video"]).with_format("arrow").iter(batch_size=batch_size):
        empty = _is_empty(table.column("video")).fill_null(True).to_pylist()
        positions += [offset + i for i, flag in enumerate(empty) if flag]
        offset += table.num_rows
    return positions


_TEXT_TYPES = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary, pa.types.is_large_binary)


def _is_empty(values: pa.ChunkedArray | pa.Array) -> Any:
    """Boolean Arrow array: null, zero-length strings/bytes, or a struct whose `path` and `bytes` are both empty."""
    value_type = values.type
    missing = pc.is_null(values)
    if pa.types.is_struct(value_type):
        names = {value_type.field(i).name for i in range(value_type.num_fields)}
        parts = [_is_empty(pc.struct_field(values, [name])) for name in ("path", "bytes") if name in names]
        return pc.or_kleene(missing, functools.reduce(pc.and_kleene, parts)) if parts else missing
    if any(check(value_type) for check in _TEXT_TYPES):
        return pc.or_kleene(missing, pc.equal(pc.binary_length(values), 0))
    return missing
