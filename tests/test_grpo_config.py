"""`MSJoEGRPOConfig`: documented fields (docstring == --help), validation, refused settings, loss types tracking
TRL, the example YAML configs, and the TRL default shim."""

import dataclasses
import importlib.util
import inspect
import os
import re
import warnings

import pytest
import yaml
from trl import GRPOConfig, GRPOTrainer

from transformers_msjoe.grpo_config import LOSS_AGGREGATION, MSJoEGRPOConfig, field_help_from_docstring

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE = dict(output_dir="unused-out", use_cpu=True, report_to="none")


# Fields MSJoEGRPOConfig redeclares with TRL's own help text (version shim, see _compat.grpo_checkpointing_field).
TRL_HELP_REUSED = {"gradient_checkpointing", "activation_checkpointing"}


def _msjoe_fields():
    """The fields MSJoEGRPOConfig declares itself (new ones, and TRL's whose default it changes), documented by it."""
    own = set(MSJoEGRPOConfig.__annotations__) - TRL_HELP_REUSED
    return [f for f in dataclasses.fields(MSJoEGRPOConfig) if f.name in own]


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
    # §2.3's per-sequence GRPO objective, not TRL's default token-level "dapo"
    assert args.loss_type == "grpo" and GRPOConfig.__dataclass_fields__["loss_type"].default == "dapo"
    assert "paper's objective" in args.__dataclass_fields__["loss_type"].metadata["help"]


def test_best_model_metric_defaults_to_the_accuracy():
    """transformers would default to `loss`, which MSJoE's evaluation never reports (the first evaluation would
    crash); the accuracy is the default, higher is better, and an explicit loss metric is refused with the fix."""
    best = dict(load_best_model_at_end=True, eval_strategy="steps", save_strategy="steps")
    args = MSJoEGRPOConfig(**BASE, **best)
    assert (args.metric_for_best_model, args.greater_is_better) == ("eval_msjoe/accuracy", True)
    assert (
        MSJoEGRPOConfig(**BASE, lr_scheduler_type="reduce_lr_on_plateau", eval_strategy="steps").metric_for_best_model
        == "eval_msjoe/accuracy"
    )
    assert MSJoEGRPOConfig(**BASE).metric_for_best_model is None  # not needed: not set
    chosen = MSJoEGRPOConfig(**BASE, **best, metric_for_best_model="eval_uniform/accuracy", greater_is_better=False)
    assert (chosen.metric_for_best_model, chosen.greater_is_better) == ("eval_uniform/accuracy", False)
    with pytest.raises(ValueError, match=r"`metric_for_best_model`='loss'.*use 'eval_msjoe/accuracy'"):
        MSJoEGRPOConfig(**BASE, **best, metric_for_best_model="loss")


def test_overrides_only_what_is_set():
    args = MSJoEGRPOConfig(**BASE, num_key_frames=64, key_frame_max_pixels=1000, answer_max_new_tokens=16)
    assert args.model_config_overrides() == {
        "num_key_frames": 64,
        "key_frame_max_pixels": 1000,
        "answer_max_new_tokens": 16,
    }


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


def test_compat_trl_still_sets_deprecated_gradient_checkpointing():
    """Drift test for `_compat.grpo_checkpointing_field`: TRL 1.16's GRPOConfig still defaults
    `gradient_checkpointing=True`, which makes transformers warn. When this fails, upstream is fixed: drop the two
    fields MSJoEGRPOConfig declares with it."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        GRPOConfig(**BASE)
    assert any("`gradient_checkpointing` is deprecated" in str(w.message) for w in caught)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        args = MSJoEGRPOConfig(**BASE)  # ours does not warn and keeps TRL's default (checkpointing on)
    assert args.activation_checkpointing is True and args.gradient_checkpointing is True
    fields = {f.name: f for f in dataclasses.fields(MSJoEGRPOConfig)}
    assert (
        fields["activation_checkpointing"].metadata["help"]
        == GRPOConfig.__dataclass_fields__["activation_checkpointing"].metadata["help"]
    )


# ---------------------------------------------------------------------------------------------- loss types
def _trl_loss_types() -> set[str]:
    """Every loss type TRL's installed `_compute_loss` branches on (`self.loss_type == "x"` / `in ["x", ...]`)."""
    source = inspect.getsource(GRPOTrainer._compute_loss)
    found = set(re.findall(r'self\.loss_type == "(\w+)"', source))
    for group in re.findall(r"self\.loss_type in \[([^\]]*)\]", source):
        found |= set(re.findall(r'"(\w+)"', group))
    return found


def test_loss_types_track_trl():
    """LOSS_AGGREGATION (how the trainer combines its per-turn TRL loss calls) knows exactly TRL's loss types; when
    TRL adds or removes one, this fails: classify the new type by how TRL's `_compute_loss` normalises it. What each
    class means is pinned by running TRL's loss: test_grpo_trainer.py::test_loss_aggregation_table_matches_trls_loss_types."""
    assert set(LOSS_AGGREGATION) == _trl_loss_types()
    documented = re.search(
        r"Supported values are ([^.]*)\.", GRPOConfig.__dataclass_fields__["loss_type"].metadata["help"]
    )
    assert set(re.findall(r"'(\w+)'", documented.group(1))) == set(LOSS_AGGREGATION)


def test_unknown_loss_type_is_refused():
    with pytest.raises(ValueError, match=r"`loss_type` must be one of .*'grpo'.*got 'ppo'"):
        MSJoEGRPOConfig(**BASE, loss_type="ppo")
    assert MSJoEGRPOConfig(**BASE, loss_type="dr_grpo").loss_type == "dr_grpo"


# ---------------------------------------------------------------------------------------------- refused settings
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(use_transformers_continuous_batching=True),
        dict(mask_truncated_completions=True),
        dict(chat_template_kwargs={"enable_thinking": False}),
        dict(num_generations_eval=4),
        dict(multi_objective_aggregation="normalize_then_sum"),
        dict(cast_lm_head_to_fp32=True),
        dict(ds3_gather_for_generation=False),
        dict(ddp_find_unused_parameters=True),
        dict(pad_to_multiple_of=8),
        dict(max_tool_calling_iterations=2),
        dict(trust_remote_code=True),
        dict(use_adaptive_entropy=True),
    ],
    ids=lambda kwargs: next(iter(kwargs)),
)
def test_settings_the_rollout_would_ignore_are_refused(kwargs):
    ((name, value),) = kwargs.items()
    with pytest.raises(
        ValueError, match=rf"`{name}`={re.escape(repr(value))} is not supported by MSJoEGRPOTrainer: .*"
    ):
        MSJoEGRPOConfig(**BASE, **kwargs)


# ---------------------------------------------------------------------------------------------- example configs
def _train_grpo_module():
    spec = importlib.util.spec_from_file_location("train_grpo_example", os.path.join(ROOT, "examples", "train_grpo.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(os.listdir(os.path.join(ROOT, "examples", "configs"))))
def test_every_example_config_parses(name):
    """Each YAML parses with the example's TrlParser (unknown keys are errors) and every key lands in a field."""
    from trl import ModelConfig, TrlParser

    path = os.path.join(ROOT, "examples", "configs", name)
    with open(path) as handle:
        values = yaml.safe_load(handle)
    # use_cpu: the GPU configs ask for bf16, which a CPU-only machine accepts only when told to run on the CPU
    extra = ["--use_cpu", "true"] + ([] if "output_dir" in values else ["--output_dir", "unused-out"])
    parser = TrlParser((_train_grpo_module().MSJoEScriptArguments, MSJoEGRPOConfig, ModelConfig))
    parsed = parser.parse_args_and_config(args=["--config", path, *extra])
    assert isinstance(parsed[1], MSJoEGRPOConfig)
    for key, value in values.items():
        owners = [p for p in parsed if key in {f.name for f in dataclasses.fields(p)}]
        assert owners, key
        expected = [] if (key, value) == ("report_to", "none") else value  # TrainingArguments' normal form
        assert getattr(owners[0], key) == expected, key
