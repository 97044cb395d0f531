"""`load_msjoe_model`: what every front end's `--model` means (an MSJoE checkpoint or a plain MLLM)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from transformers import AutoConfig

from .configuration_msjoe import MSJoEConfig, parse_clip_identity
from .hub_utils import hub_kwargs
from .modeling_msjoe import MSJoEForVideoQA

__all__ = ["load_msjoe_model"]


def load_msjoe_model(
    name_or_path: str | os.PathLike,
    *,
    clip: str | None = None,
    sampler: str | os.PathLike | None = None,
    mllm_kwargs: Mapping[str, Any] | None = None,
    **config_overrides: Any,
) -> MSJoEForVideoQA:
    """Load an MSJoE checkpoint, or wrap a plain MLLM, from one name: what every front end's `--model` means.

    Args:
        name_or_path: an MSJoE checkpoint (config `model_type == "msjoe"`) or an image-text-to-text MLLM.
        clip: CLIP identity; for a checkpoint it overrides the saved one (default for an MLLM: ViT-L-14/openai).
        sampler: trained sampler weights, only when wrapping a plain MLLM.
        mllm_kwargs: `from_pretrained` arguments (`dtype`, `device_map`, `revision`, ...).
        **config_overrides: `MSJoEConfig` fields (`num_key_frames=64`, `selection="uniform"`, ...).
    """
    load_kwargs = dict(mllm_kwargs or {})
    if AutoConfig.from_pretrained(name_or_path, **hub_kwargs(load_kwargs)).model_type != MSJoEConfig.model_type:
        return MSJoEForVideoQA.from_mllm(name_or_path, clip=clip or "ViT-L-14/openai", sampler=sampler, mllm_kwargs=load_kwargs, **config_overrides)  # fmt: skip
    if sampler is not None:
        raise ValueError(
            f"{name_or_path!s} is an MSJoE checkpoint with its own sampler; `sampler=` is only for plain MLLMs."
        )
    if clip is not None:
        config_overrides["clip_model_name"], config_overrides["clip_pretrained"] = parse_clip_identity(clip)
    return MSJoEForVideoQA.from_pretrained(name_or_path, **load_kwargs, **config_overrides)
