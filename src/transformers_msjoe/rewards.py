"""MSJoE's rewards (paper §2.2) as plain functions with TRL's reward-function signature.

TRL calls each reward function as `f(prompts=..., completions=..., completion_ids=..., **columns)` where the
extra keyword arguments are the dataset columns (and, in `MSJoEGRPOTrainer`, the rollout's fields), one list
entry per completion, and expects one float (or `None`: "not applicable") per completion. The functions return
unweighted values in [0, 1]; the weights (0.8 / 0.1 / 0.1 by default) are TRL's `reward_weights`.

Parsing reuses `prompts.py`, the one home of the output tags, so the rewards check exactly what the prompts ask.
The sampler's difficulty-aware advantage of stage 1 ("DR") lives here too: it is reward shaping.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from .prompts import letter_options, parse_answer, parse_queries

__all__ = [
    "QA_COLUMNS",
    "accuracy_reward",
    "answer_is_correct",
    "check_qa_row",
    "completion_text",
    "difficulty_aware_advantage",
    "format_reward",
    "informativeness_reward",
    "make_informativeness_reward",
    "query_peak_ratios",
]

RewardFunc = Callable[..., list[float | None]]


QA_COLUMNS = ("video", "question", "options", "answer")  # what a training/evaluation row must have


def check_qa_row(row: Mapping[str, Any], index: int | str, *, pass_rate_column: str | None = None) -> str | None:
    """What is wrong with one multiple-choice row (None if usable): missing options/answer, a letter not among
    the options, or (stage 1) a missing or out-of-range pass rate."""
    options = row.get("options")
    if not options:
        return f"row {index} has no options"
    try:
        letters = [o.letter for o in letter_options(options)]
    except ValueError as err:
        return f"row {index} has malformed options ({err})"
    answer = row.get("answer")
    if not answer or not str(answer).strip():
        return f"row {index} has no answer"
    if str(answer).strip().upper() not in letters:
        return f"row {index} has answer {answer!r}, which is not one of its option letters {letters}"
    if pass_rate_column is not None:
        rate = row.get(pass_rate_column)
        if rate is None or not 0.0 <= float(rate) <= 1.0:
            return f"row {index} has {pass_rate_column}={rate!r}; stage 1 needs a pass rate in [0, 1]"
    return None


def completion_text(completion: str | Sequence[dict[str, Any]]) -> str:
    """The text of one completion, standard (`str`) or conversational (`[{"role": "assistant", "content": ...}]`)."""
    if isinstance(completion, str):
        return completion
    return "".join(str(message.get("content", "")) for message in completion if message.get("role") == "assistant")


def _letters(options: Any) -> list[str]:
    return [option.letter for option in letter_options(options)]


def answer_is_correct(text: str, answer: str, options: Any) -> bool:
    """Whether the answer turn's `text` picks the option lettered `answer` (parsed like at inference)."""
    return parse_answer(text, _letters(options)).option == str(answer).strip().upper()


def accuracy_reward(completions: list[Any], answer: list[str], options: list[Any], **kwargs: Any) -> list[float]:
    """r_acc: 1.0 when the answer turn picks the correct option letter, else 0.0."""
    return [float(answer_is_correct(completion_text(c), a, o)) for c, a, o in zip(completions, answer, options)]


def format_reward(
    completions: list[Any],
    options: list[Any],
    query_completion: list[str] | None = None,
    num_queries: list[int] | None = None,
    **kwargs: Any,
) -> list[float]:
    """r_format: 1.0 when the output follows the required format, else 0.0.

    The answer turn must hold exactly one `<answer>` block naming an option. When the trainer passes the query
    turn (`query_completion`, with the `num_queries` it asked for), that turn must also hold 1 to `num_queries`
    distinct visual queries, all in `<query>` tags.
    """
    if query_completion is not None and num_queries is None:
        raise ValueError("format_reward got `query_completion` without `num_queries` (how many queries were asked for).")
    rewards = []
    for i, (completion, opts) in enumerate(zip(completions, options)):
        parsed = parse_answer(completion_text(completion), _letters(opts))
        ok = parsed.well_formed and parsed.option is not None
        if query_completion is not None:
            queries = parse_queries(query_completion[i], num_queries[i])
            ok = ok and queries.well_formed and bool(queries.queries)
        rewards.append(float(ok))
    return rewards


def query_peak_ratios(similarity: torch.Tensor, normalization: str = "softmax", softmax_scale: float = 100.0) -> torch.Tensor:
    """Peak ratio of each query's similarity curve `(Q, T)` -> `(Q,)`, normalised as the paper leaves open (§1.3).

    `"softmax"`: max/min of p = softmax(scale * s) over frames, i.e. exp(scale * (max s - min s)).
    `"raw"`: max s / min s of the raw cosines; +inf when min s <= 0 < max s (the ratio's limit), 0 when max s <= 0.
    `"peak_over_mean"`: max p / mean p of that softmax (T * max p).
    """
    s = similarity.double()  # (Q, T)
    if normalization == "softmax":
        return torch.exp(softmax_scale * (s.max(-1).values - s.min(-1).values))
    if normalization == "peak_over_mean":
        return torch.softmax(softmax_scale * s, dim=-1).max(-1).values * s.shape[-1]
    if normalization == "raw":
        high, low = s.max(-1).values, s.min(-1).values
        ratio = high / low.clamp_min(torch.finfo(s.dtype).tiny)
        return torch.where(high <= 0, torch.zeros_like(ratio), torch.where(low <= 0, torch.full_like(ratio, math.inf), ratio))
    raise ValueError(f"`normalization` must be 'softmax', 'raw' or 'peak_over_mean', got {normalization!r}.")


def make_informativeness_reward(
    threshold: float = 10.0, normalization: str = "softmax", softmax_scale: float = 100.0
) -> RewardFunc:
    """r_info with the given settings: the fraction of queries whose peak ratio exceeds `threshold` (tau_info).

    The returned function reads the `similarity` column (one `(Q, T)` tensor per completion, as the trainer's
    rollout provides) and returns `None` for completions without one (no rollout: e.g. a video that failed).
    """
    query_peak_ratios(torch.zeros(1, 2), normalization, softmax_scale)  # fail fast on a bad normalization

    def informativeness(completions: list[Any], similarity: list[torch.Tensor | None], **kwargs: Any) -> list[float | None]:
        rewards: list[float | None] = []
        for matrix in similarity:
            if matrix is None or matrix.numel() == 0:
                rewards.append(None)
                continue
            peaked = query_peak_ratios(matrix, normalization, softmax_scale) > threshold  # (Q,)
            rewards.append(peaked.double().mean().item())
        return rewards

    informativeness.__doc__ = (
        f"r_info: fraction of queries whose {normalization} peak ratio exceeds {threshold} (scale {softmax_scale})."
    )
    return informativeness


informativeness_reward = make_informativeness_reward()
informativeness_reward.__doc__ = "r_info with the paper's threshold 10 and the softmax normalisation (see make_informativeness_reward)."


def difficulty_aware_advantage(correct: torch.Tensor, pass_rate: torch.Tensor, cap: float = 10.0) -> torch.Tensor:
    """The sampler's stage-1 advantage ("DR", paper §2.2): 1/c when correct, -1/(1-c) when wrong, clipped to ±cap.

    `c` is the base MLLM's pass rate: solving a question it rarely solves earns a lot, failing an easy one costs
    a lot. c = 0 answered correctly gives +cap, c = 1 answered wrongly gives -cap.

    Args:
        correct: `(N,)` bool, whether each rollout's answer was right.
        pass_rate: `(N,)` float in [0, 1].
    """
    if ((pass_rate < 0) | (pass_rate > 1) | torch.isnan(pass_rate)).any():
        raise ValueError(f"Pass rates must lie in [0, 1], got {pass_rate.tolist()}.")
    c = pass_rate.double()
    with torch.no_grad():
        positive = torch.where(c > 0, 1.0 / c.clamp_min(1e-12), torch.full_like(c, math.inf))
        negative = torch.where(c < 1, -1.0 / (1.0 - c).clamp_min(1e-12), torch.full_like(c, -math.inf))
    return torch.where(correct.bool(), positive, negative).clamp(-cap, cap).to(torch.float32)
