"""`MSJoEGRPOConfig`: documented fields (docstring == --help), validation, overrides, and the TRL default shim."""

import dataclasses
import re
import warnings

import pytest
from trl import GRPOConfig

from transformers_msjoe.grpo_config import MSJoEGRPOConfig, field_help_from_docstring

BASE = dict(output_dir="unused-out", use_cpu=True, report_to="none")


def _msjoe_fields():
    inherited = {f.name for f in dataclasses.fields(GRPOConfig)}
    return [f for f in dataclasses.fields(MSJoEGRPOConfig) if f.name not in inherited]


def test_docstring_and_fields_agree():
    documented = set(re.findall(r"^    (\w+) \(`", MSJoEGRPOConfig.__doc__, flags=re.MULTILINE))
    fields = {f.name for f in _msjoe_fields()}
    assert documented == fields  # no undocumented field, no stale docs
    for f in _msjoe_fields():
        text = f.metadata["help"]
        assert text == field_help_from_docstring(MSJoEGRPOConfig.__doc__, f.name) and len(text) > 30
        assert " ".join(text.split()[:6]) in " ".join(MSJoEGRPOConfig.__doc__.split())


def test_field_help_raises_for_an_undocumented_field():
    with pytest.raises(ValueError, match="does not document the field 'nope'"):
        field_help_from_docstring(MSJoEGRPOConfig.__doc__, "nope")


def test_defaults_follow_the_paper():
    args = MSJoEGRPOConfig(**BASE)
    assert (args.accuracy_reward_weight, args.format_reward_weight, args.info_reward_weight) == (0.8, 0.1, 0.1)
    assert args.info_threshold == 10.0 and args.difficulty_advantage_cap == 10.0
    assert args.training_stage == "joint" and args.beta == 0.0
    assert args.model_config_overrides() == {}


def test_overrides_only_what_is_set():
    args = MSJoEGRPOConfig(**BASE, num_key_frames=64, key_frame_max_pixels=1000, answer_max_new_tokens=16)
    assert args.model_config_overrides() == {"num_key_frames": 64, "key_frame_max_pixels": 1000, "answer_max_new_tokens": 16}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(training_stage="stage3"), "training_stage"),
        (dict(info_normalization="zscore"), "info_normalization"),
        (dict(sampler_learning_rate=0.0), "sampler_learning_rate"),
        (dict(format_reward_weight=-0.1), "format_reward_weight"),
        (dict(num_key_frames=0), "num_key_frames"),
        (dict(eval_duration_buckets=[900.0, 180.0]), "eval_duration_buckets"),
        (dict(training_stage="sampler_pretrain", beta=0.04), "beta"),
        (dict(num_generations=1), "at least 2 generations"),
    ],
)
def test_bad_values_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MSJoEGRPOConfig(**BASE, **kwargs)


def test_trl_still_sets_deprecated_gradient_checkpointing():
    """Drift test for the shim in MSJoEGRPOConfig: TRL 1.16's GRPOConfig still defaults `gradient_checkpointing=True`,
    which makes transformers warn. When this fails, upstream is fixed: drop the two overridden fields."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        GRPOConfig(**BASE)
    assert any("`gradient_checkpointing` is deprecated" in str(w.message) for w in caught)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        args = MSJoEGRPOConfig(**BASE)  # ours does not warn and keeps TRL's default (checkpointing on)
    assert args.activation_checkpointing is True and args.gradient_checkpointing is True
