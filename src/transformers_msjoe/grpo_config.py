"""`MSJoEGRPOConfig`: TRL's `GRPOConfig` plus only what MSJoE's two-stage RL needs (paper §2).

Every field added here is documented once, in the class docstring (TRL's format); its `--help` text
(`metadata["help"]`) is read from that docstring, so the two cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from transformers import SchedulerType
from trl import GRPOConfig

from ._compat import grpo_checkpointing_field

__all__ = [
    "DEFAULT_BEST_MODEL_METRIC",
    "INFO_NORMALIZATIONS",
    "LOSS_AGGREGATION",
    "TRAINING_STAGES",
    "MSJoEGRPOConfig",
    "field_help_from_docstring",
]

TRAINING_STAGES = ("sampler_pretrain", "joint")

# How TRL 1.16's `GRPOTrainer._compute_loss` aggregates a loss over the rows of one call, which is how the trainer
# combines its per-turn calls: "sequence" (a mean over rows of per-row values: combine by row counts), "local_token"
# (a token mean of the call: combine by token counts), "global_token" (a token sum over the generation batch's
# `num_items_in_batch`: add). Pinned to TRL's loss types by tests/test_grpo_config.py::test_loss_types_track_trl.
LOSS_AGGREGATION = {
    "grpo": "sequence", "sapo": "sequence", "luspo": "sequence", "dr_grpo": "sequence",
    "bnpo": "local_token",
    "dapo": "global_token", "cispo": "global_token", "vespo": "global_token",
}  # fmt: skip
INFO_NORMALIZATIONS = ("softmax", "raw", "peak_over_mean")
LOG_PROB_FORMS = ("paper", "plackett_luce")


def _is_true(value: Any) -> bool:
    return value is True


def _is_set(value: Any) -> bool:
    return value is not None


# GRPOConfig settings the MSJoE rollout (two `generate` turns with frames chosen in between) or loss would ignore:
# (field, whether the value asks for the unsupported behaviour, why + the fix).
_UNHONOURED_SETTINGS: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("use_vllm", _is_true, "the two-turn rollout (preview -> queries -> sampled frames -> answer) generates with "
     "transformers; set use_vllm=False."),
    ("use_transformers_continuous_batching", _is_true, "the rollout calls `generate` per turn; set "
     "use_transformers_continuous_batching=False (and use_transformers_paged=False, its deprecated alias)."),
    ("mask_truncated_completions", _is_true, "truncation is per turn in MSJoE and not masked; set it to False and "
     "raise `query_max_new_tokens` / `answer_max_new_tokens` instead."),
    ("chat_template_kwargs", _is_set, "MSJoE's prompts are built by MSJoEProcessor from its templates; unset it and "
     "edit the processor's `query_template` / `answer_template`."),
    ("num_generations_eval", _is_set, "evaluation answers each question once with the inference pipeline (greedy); "
     "unset it."),
    ("multi_objective_aggregation", lambda v: v != "sum_then_normalize", "MSJoE's reward is the weighted sum "
     "r = r_acc + r_format + r_info (paper §2.2); use 'sum_then_normalize'."),
    ("cast_lm_head_to_fp32", _is_true, "TRL casts `model.lm_head`, which belongs to the wrapped MLLM; set it to "
     "False."),
    ("ds3_gather_for_generation", lambda v: v is False, "processes generate different numbers of turns per step, "
     "which ZeRO-3's per-layer gathers cannot match; set it to True."),
    ("ddp_find_unused_parameters", _is_true, "every process runs the same forwards and gives every trained weight "
     "a gradient each step, and DDP's unused-parameter search breaks with the sampler's separate forward; leave it "
     "unset."),
    ("pad_to_multiple_of", _is_set, "prompts are padded by the MLLM's processor together with their frames; unset "
     "it."),
    ("max_tool_calling_iterations", _is_set, "MSJoE's rollout calls no tools; unset it."),
    ("trust_remote_code", _is_true, "MSJoE loads every MLLM through the transformers Auto classes without remote "
     "code; set it to False."),
    ("use_adaptive_entropy", _is_true, "TRL's controller updates `entropy_coef` once per TRL loss call, and MSJoE "
     "makes one call per turn chunk (two or more per micro-batch), so it would step several times per optimizer step; "
     "use a fixed `entropy_coef` instead."),
)  # fmt: skip

# `metric_for_best_model` when `load_best_model_at_end` (or a metric-driven scheduler) needs one and none is given:
# transformers would pick "loss", but evaluation reports accuracies and no `eval_loss` (`MSJoEGRPOTrainer.evaluate`).
DEFAULT_BEST_MODEL_METRIC = "eval_msjoe/accuracy"
_METRIC_SCHEDULERS = (SchedulerType.REDUCE_ON_PLATEAU, SchedulerType.GREEDY)  # they read metric_for_best_model


def field_help_from_docstring(doc: str, name: str) -> str:
    """The text documenting `name` in a TRL-style docstring (`name (`type`, ...):` then an indented paragraph)."""
    match = re.search(rf"^(\s*){re.escape(name)} \(`[^\n]*\):\n((?:\1\s+\S[^\n]*\n?)+)", doc, flags=re.MULTILINE)
    if match is None:
        raise ValueError(f"MSJoEGRPOConfig's docstring does not document the field {name!r}.")
    return " ".join(line.strip() for line in match.group(2).splitlines())


@dataclass
class MSJoEGRPOConfig(GRPOConfig):
    r"""
    Configuration of [`MSJoEGRPOTrainer`]: everything of TRL's [`~trl.GRPOConfig`] plus the MSJoE fields below.
    Paper: https://huggingface.co/papers/2602.22932 (§2: sampler pre-training, then joint RL of MLLM and sampler).

    > Parameters that control the training stage

    training_stage (`str`, *optional*, defaults to `"joint"`):
        `"sampler_pretrain"` (stage 1): the MLLM is frozen and only the U-Net sampler learns, with REINFORCE and
        the difficulty-aware advantage; the MLLM's GRPO loss is skipped entirely. `"joint"` (stage 2): GRPO on the
        MLLM's two turns and REINFORCE on the sampler, both from the same rollouts and group-normalised advantage.

    > Parameters that control the sampler's optimisation

    sampler_learning_rate (`float`, *optional*, defaults to `1e-4`):
        Learning rate of the sampler's own optimizer parameter group (the MLLM uses `learning_rate`); it follows
        the same schedule. The paper gives no value (inferred).
    sampler_loss_weight (`float`, *optional*, defaults to `1.0`):
        Weight of the sampler's REINFORCE term -A * sum_k log p(x_k) added to the MLLM's GRPO loss. On draws reused
        after an update (`steps_per_generation` > `gradient_accumulation_steps`, `num_iterations` > 1) the term is
        PPO-clipped like the MLLM's, with the draw's rollout-time probability and `epsilon` / `epsilon_high`.
    sampler_log_prob_form (`str`, *optional*, defaults to `"paper"`):
        `"paper"`: log p(x_k) under the softmax over all frames, summed over the K draws, as the paper writes it;
        `"plackett_luce"`: the exact probability of the draw order without replacement.

    > Parameters that control the rewards (paper §2.2)

    accuracy_reward_weight (`float`, *optional*, defaults to `0.8`):
        Weight of the option-letter accuracy reward. The sources conflict (1.0 in one note, 0.8 in another);
        0.8 makes the best total reward 0.8 + 0.1 + 0.1 = 1.
    format_reward_weight (`float`, *optional*, defaults to `0.1`):
        Weight of the format reward (both turns tagged as the prompts ask: `<query>` lines, one `<answer>`).
    info_reward_weight (`float`, *optional*, defaults to `0.1`):
        Weight of the informativeness reward: the fraction of queries whose similarity curve has a clear peak.
    info_threshold (`float`, *optional*, defaults to `10.0`):
        tau_info (paper, 10): a query counts as informative when the peak ratio of its similarity curve over the
        candidate frames exceeds it. Under the default softmax normalisation the ratio is
        exp(info_softmax_scale * (max s - min s)), so 10 means a cosine spread above ln(10) / 100 = 0.023.
        Only queries the MLLM wrote count: a query turn that fell back to the question scores 0.
    info_normalization (`str`, *optional*, defaults to `"softmax"`):
        How the similarity row is turned into the peak ratio (the paper does not say, §1.3): `"softmax"` =
        max/min of softmax(info_softmax_scale * s) over frames; `"raw"` = max/min of the raw cosines (infinite
        when the minimum is <= 0 and the maximum > 0); `"peak_over_mean"` = max/mean of that softmax.
    info_softmax_scale (`float`, *optional*, defaults to `100.0`):
        Temperature-inverse of the softmax used by `info_normalization` (100 is CLIP's logit scale).

    > Parameters that control the difficulty-aware advantage of stage 1 (paper §2.2, "DR")

    pass_rate_column (`str`, *optional*, defaults to `"pass_rate"`):
        Dataset column holding the base MLLM's pass rate c in [0, 1]; required in stage 1. The sampler's
        advantage is 1/c for a correct answer and -1/(1-c) for a wrong one.
    difficulty_advantage_cap (`float`, *optional*, defaults to `10.0`):
        The difficulty-aware advantage is clipped to [-cap, cap]; c = 0 answered correctly gives +cap.

    > Parameters that override the model's frame and generation settings (`None` keeps the model config's value)

    num_key_frames (`int`, *optional*):
        K, the frames the sampler draws for the answer turn (the paper trains with 32 or 64). Written into the
        model config, so the saved checkpoint answers with the K it was trained with.
    num_preview_frames (`int`, *optional*):
        Uniform preview frames of the query turn; the model config's `None` means K // 2.
    preview_max_pixels (`int`, *optional*):
        Pixel budget per preview frame (low resolution, about 32 Qwen2.5-VL tokens by default).
    key_frame_max_pixels (`int`, *optional*):
        Pixel budget per key frame of the answer turn (high resolution).
    candidate_fps (`float`, *optional*):
        Rate of the dense candidate frames scored by CLIP (1 fps in the paper).
    max_candidate_frames (`int`, *optional*):
        Cap on the candidate frames per video.
    query_max_new_tokens (`int`, *optional*):
        Token budget of the query turn's completion (TRL's `max_completion_length` is only used by
        `loss_type="dr_grpo"`'s normalisation: MSJoE has one budget per turn).
    answer_max_new_tokens (`int`, *optional*):
        Token budget of the answer turn's completion.

    > Parameters that control evaluation during training

    eval_duration_buckets (`list[float]`, *optional*, defaults to `[180.0, 900.0, 1800.0]`):
        Edges in seconds of the video-duration buckets the evaluation accuracy is broken down by.
    eval_uniform_baseline (`bool`, *optional*, defaults to `True`):
        Also evaluate the same model with uniformly sampled frames, so the sampler's gain is visible. With
        `load_best_model_at_end` and no `metric_for_best_model`, the best checkpoint is the one with the highest
        `eval_msjoe/accuracy` (evaluation reports no `eval_loss`).

    > Parameters of TRL's `GRPOConfig` whose default MSJoE changes

    loss_type (`str`, *optional*, defaults to `"grpo"`):
        How the MLLM's clipped surrogate is aggregated (TRL's default is `"dapo"`). `"grpo"` is the paper's objective
        (§2.3): each rollout's per-token surrogate averaged over its tokens, then over the rollouts, both turns
        counting as rollout sequences. Every TRL loss type is accepted; `grpo_config.LOSS_AGGREGATION` says how the
        trainer combines its per-turn TRL loss calls for each.
    """

    # TRL's checkpointing default without transformers' deprecation warning (version shim, see _compat.py).
    gradient_checkpointing: bool | None = grpo_checkpointing_field("gradient_checkpointing")
    activation_checkpointing: bool | None = grpo_checkpointing_field("activation_checkpointing")

    training_stage: Literal["sampler_pretrain", "joint"] = field(
        default="joint", metadata={"help": field_help_from_docstring(__doc__, "training_stage")}
    )
    sampler_learning_rate: float = field(
        default=1e-4, metadata={"help": field_help_from_docstring(__doc__, "sampler_learning_rate")}
    )
    sampler_loss_weight: float = field(
        default=1.0, metadata={"help": field_help_from_docstring(__doc__, "sampler_loss_weight")}
    )
    sampler_log_prob_form: Literal["paper", "plackett_luce"] = field(
        default="paper", metadata={"help": field_help_from_docstring(__doc__, "sampler_log_prob_form")}
    )
    accuracy_reward_weight: float = field(
        default=0.8, metadata={"help": field_help_from_docstring(__doc__, "accuracy_reward_weight")}
    )
    format_reward_weight: float = field(
        default=0.1, metadata={"help": field_help_from_docstring(__doc__, "format_reward_weight")}
    )
    info_reward_weight: float = field(
        default=0.1, metadata={"help": field_help_from_docstring(__doc__, "info_reward_weight")}
    )
    info_threshold: float = field(default=10.0, metadata={"help": field_help_from_docstring(__doc__, "info_threshold")})
    info_normalization: Literal["softmax", "raw", "peak_over_mean"] = field(
        default="softmax", metadata={"help": field_help_from_docstring(__doc__, "info_normalization")}
    )
    info_softmax_scale: float = field(
        default=100.0, metadata={"help": field_help_from_docstring(__doc__, "info_softmax_scale")}
    )
    pass_rate_column: str = field(
        default="pass_rate", metadata={"help": field_help_from_docstring(__doc__, "pass_rate_column")}
    )
    difficulty_advantage_cap: float = field(
        default=10.0, metadata={"help": field_help_from_docstring(__doc__, "difficulty_advantage_cap")}
    )
    num_key_frames: int | None = field(
        default=None, metadata={"help": field_help_from_docstring(__doc__, "num_key_frames")}
    )
    num_preview_frames: int | None = field(
        default=None, metadata={"help": field_help_from_docstring(__doc__, "num_preview_frames")}
    )
    preview_max_pixels: int | None = field(
        default=None, metadata={"help": field_help_from_docstring(__doc__, "preview_max_pixels")}
    )
    key_frame_max_pixels: int | None = field(
        default=None, metadata={"help": field_help_from_docstring(__doc__, "key_frame_max_pixels")}
    )
    candidate_fps: float | None = field(
        default=None, metadata={"help": field_help_from_docstring(__doc__, "candidate_fps")}
    )
    max_candidate_frames: int | None = field(
        default=None, metadata={"help": field_help_from_docstring(__doc__, "max_candidate_frames")}
    )
    query_max_new_tokens: int | None = field(
        default=None, metadata={"help": field_help_from_docstring(__doc__, "query_max_new_tokens")}
    )
    answer_max_new_tokens: int | None = field(
        default=None, metadata={"help": field_help_from_docstring(__doc__, "answer_max_new_tokens")}
    )
    eval_duration_buckets: list[float] = field(
        default_factory=lambda: [180.0, 900.0, 1800.0],
        metadata={"help": field_help_from_docstring(__doc__, "eval_duration_buckets")},
    )
    eval_uniform_baseline: bool = field(
        default=True, metadata={"help": field_help_from_docstring(__doc__, "eval_uniform_baseline")}
    )
    loss_type: str = field(default="grpo", metadata={"help": field_help_from_docstring(__doc__, "loss_type")})

    def __post_init__(self):
        self._default_best_model_metric()
        super().__post_init__()
        self._validate_msjoe()
        self._refuse_unhonoured_settings()

    def _default_best_model_metric(self) -> None:
        """Pick the accuracy as the best-model metric before transformers would pick `loss`, which MSJoE's evaluation
        never reports (the first evaluation would then crash); an explicit `loss` is refused with the fix."""
        needs_metric = self.load_best_model_at_end or SchedulerType(self.lr_scheduler_type) in _METRIC_SCHEDULERS
        if needs_metric and self.metric_for_best_model is None:
            self.metric_for_best_model = DEFAULT_BEST_MODEL_METRIC  # transformers then sets greater_is_better=True
        elif self.metric_for_best_model in ("loss", "eval_loss"):
            raise ValueError(
                f"`metric_for_best_model`={self.metric_for_best_model!r}: MSJoE's evaluation reports accuracies, no "
                f"loss; use {DEFAULT_BEST_MODEL_METRIC!r} (the default) or another `eval_*` key it logs."
            )

    def _validate_msjoe(self) -> None:
        """Each error names the field, the value and the fix."""
        choices = {
            "training_stage": TRAINING_STAGES,
            "info_normalization": INFO_NORMALIZATIONS,
            "sampler_log_prob_form": LOG_PROB_FORMS,
            "loss_type": tuple(LOSS_AGGREGATION),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"`{name}` must be one of {allowed}, got {getattr(self, name)!r}.")
        non_negative = ("sampler_loss_weight", "accuracy_reward_weight", "format_reward_weight", "info_reward_weight")
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ValueError(f"`{name}` must be >= 0, got {getattr(self, name)}.")
        for name in ("sampler_learning_rate", "info_threshold", "info_softmax_scale", "difficulty_advantage_cap"):
            if not getattr(self, name) > 0:
                raise ValueError(f"`{name}` must be > 0, got {getattr(self, name)}.")
        positive = (
            "num_key_frames", "preview_max_pixels", "key_frame_max_pixels", "max_candidate_frames",
            "query_max_new_tokens", "answer_max_new_tokens",
        )  # fmt: skip
        for name in positive:
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"`{name}` must be a positive integer or unset (keep the model's), got {value}.")
        edges = list(self.eval_duration_buckets)
        if edges != sorted(edges) or len(set(edges)) != len(edges) or any(e <= 0 for e in edges):
            raise ValueError(f"`eval_duration_buckets` must be strictly increasing positive seconds, got {edges}.")
        if self.training_stage == "sampler_pretrain" and self.beta != 0.0:
            raise ValueError(
                f"`beta`={self.beta} has no effect in training_stage='sampler_pretrain' (the MLLM is frozen and its "
                "loss skipped): set beta=0.0."
            )

    def _refuse_unhonoured_settings(self) -> None:
        """`GRPOConfig` settings that MSJoE's two-turn rollout or loss would silently ignore are refused."""
        for name, is_set, reason in _UNHONOURED_SETTINGS:
            value = getattr(self, name)
            if is_set(value):
                raise ValueError(f"`{name}`={value!r} is not supported by MSJoEGRPOTrainer: {reason}")

    def model_config_overrides(self) -> dict[str, Any]:
        """The frame settings this config overrides in the model's `MSJoEConfig` (only the ones set)."""
        names = (
            "num_key_frames", "num_preview_frames", "preview_max_pixels", "key_frame_max_pixels", "candidate_fps",
            "max_candidate_frames", "query_max_new_tokens", "answer_max_new_tokens",
        )  # fmt: skip
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}
