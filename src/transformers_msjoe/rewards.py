"""MSJoE's rewards (paper §2.2) as plain functions with TRL's reward-function signature.

TRL calls each reward function as `f(prompts=..., completions=..., completion_ids=..., **columns)` where the
extra keyword arguments are the dataset columns (and, in `MSJoEGRPOTrainer`, the rollout's fields), one list
entry per completion, and expects one float (or `None`: "not applicable") per completion. The functions return
unweighted values in [0, 1]; the weights (0.8 / 0.1 / 0.1 by default) are TRL's `reward_weights`.

Parsing reuses `prompts.py`, the one home of the output tags, so the rewards check exactly what the prompts ask.
The advantages live here too: GRPO's group-normalised one and the sampler's difficulty-aware one of stage 1
("DR"), which is reward shaping.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from trl.trainer.utils import nanstd

from .prompts import letter_options, parse_answer, parse_queries

if TYPE_CHECKING:
    from .grpo_config import MSJoEGRPOConfig

__all__ = [
    "QA_COLUMNS",
    "accuracy_reward",
    "answer_is_correct",
    "check_qa_row",
    "completion_text",
    "default_reward_funcs",
    "difficulty_aware_advantage",
    "format_reward",
    "group_advantages",
    "informativeness_reward",
    "make_informativeness_reward",
    "query_peak_ratios",
]

RewardFunc = Callable[..., list[float | None]]


QA_COLUMNS = ("video", "question", "options", "answer")  # what a training/evaluation row must have


def check_qa_row(row: Mapping[str, Any], index: int | str, *, pass_rate_column: str | None = None) -> str | None:
    """What is wrong with one multiple-choice row (None if usable), naming the row (position and `id`) and field.

    Checks the fields present in `row`: a null `video`, a missing or empty `question`, missing or malformed
    `options` (plain texts, lettered A, B, C ... by position), a missing `answer` or one that is not among the
    option letters, and (stage 1) a missing or out-of-range pass rate.
    """
    label = f"row {index}" + (f" (id {row['id']!r})" if row.get("id") is not None else "")
    if "video" in row and _is_missing_video(row["video"]):
        return f"{label} has no video (`video` is {row['video']!r})"
    if "question" in row and (row["question"] is None or not str(row["question"]).strip()):
        return f"{label} has no question (`question` is {row['question']!r})"
    options = row.get("options")
    if not options:
        return f"{label} has no options"
    try:
        letters = _letters(options)
    except ValueError as err:
        return f"{label} has malformed options ({err})"
    answer = row.get("answer")
    if not answer or not str(answer).strip():
        return f"{label} has no answer"
    if str(answer).strip().upper() not in letters:
        return f"{label} has answer {answer!r}, which is not one of its option letters {letters}"
    if pass_rate_column is not None:
        rate = row.get(pass_rate_column)
        if rate is None or not 0.0 <= float(rate) <= 1.0:
            return (
                f"{label} has {pass_rate_column}={rate!r}; stage 1 needs the base MLLM's pass rate in [0, 1]: label "
                "the dataset with `msjoe data label-difficulty`, or point `pass_rate_column` at the column holding it"
            )
    return None


def _is_missing_video(video: Any) -> bool:
    """None, an empty path, or a `datasets` `Video(decode=False)` value with neither path nor bytes."""
    if isinstance(video, Mapping):
        return not video.get("path") and not video.get("bytes")
    return video is None or (isinstance(video, (str, bytes)) and not video)


def completion_text(completion: str | Sequence[dict[str, Any]]) -> str:
    """The text of one completion, standard (`str`) or conversational (`[{"role": "assistant", "content": ...}]`)."""
    if isinstance(completion, str):
        return completion
    return "".join(str(message.get("content", "")) for message in completion if message.get("role") == "assistant")


def _letters(options: Any) -> list[str]:
    """Letters of a row's options, stored as plain texts (never parsed as "A. ..." labels; see data/schema.py)."""
    return [option.letter for option in letter_options(options, lettered=False)]


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
        raise ValueError(
            "format_reward got `query_completion` without `num_queries` (how many queries were asked for)."
        )
    rewards = []
    for i, (completion, opts) in enumerate(zip(completions, options)):
        parsed = parse_answer(completion_text(completion), _letters(opts))
        ok = parsed.well_formed and parsed.option is not None
        if query_completion is not None:
            queries = parse_queries(query_completion[i], num_queries[i])
            ok = ok and queries.well_formed and bool(queries.queries)
        rewards.append(float(ok))
    return rewards


def query_peak_ratios(
    similarity: torch.Tensor, normalization: str = "softmax", softmax_scale: float = 100.0
) -> torch.Tensor:
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
        return torch.where(
            high <= 0, torch.zeros_like(ratio), torch.where(low <= 0, torch.full_like(ratio, math.inf), ratio)
        )
    raise ValueError(f"`normalization` must be 'softmax', 'raw' or 'peak_over_mean', got {normalization!r}.")


def make_informativeness_reward(
    threshold: float = 10.0, normalization: str = "softmax", softmax_scale: float = 100.0
) -> RewardFunc:
    """r_info with the given settings: the fraction of the MLLM's queries whose similarity curve has a clear peak.

    `threshold` is the paper's tau_info: a query is informative when its peak ratio (`query_peak_ratios` with
    `normalization` and `softmax_scale`) exceeds it. With the softmax normalisation at scale 100 the ratio is
    exp(100 * (max s - min s)) over the candidate frames, so tau = 10 asks for a cosine spread above 0.023.

    The returned function reads the `similarity` column (one `(Q, T)` tensor per completion, as the trainer's
    rollout provides) and, when present, `num_written_queries`: only the first that many rows are the MLLM's
    queries (rows after them, e.g. the question appended with `use_question_as_query`, do not count), and 0 means
    the query turn fell back to the question, which earns 0. Completions without a similarity get `None`
    (no rollout: e.g. a video that failed to decode).
    """
    query_peak_ratios(torch.zeros(1, 2), normalization, softmax_scale)  # fail fast on a bad normalization

    def informativeness(
        completions: list[Any],
        similarity: list[torch.Tensor | None],
        num_written_queries: list[int] | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        written = num_written_queries if num_written_queries is not None else [None] * len(similarity)
        rewards: list[float | None] = []
        for matrix, count in zip(similarity, written):
            if matrix is None or matrix.numel() == 0:
                rewards.append(None)
            elif count == 0:
                rewards.append(0.0)  # no query of the MLLM's own: nothing informative was asked
            else:
                peaked = query_peak_ratios(matrix[:count], normalization, softmax_scale) > threshold  # (Q,)
                rewards.append(peaked.double().mean().item())
        return rewards

    informativeness.__doc__ = (
        f"r_info: fraction of the MLLM's queries whose {normalization} peak ratio exceeds {threshold} "
        f"(scale {softmax_scale})."
    )
    return informativeness


informativeness_reward = make_informativeness_reward()
informativeness_reward.__doc__ = (
    "r_info with the paper's threshold 10 and the softmax normalisation (see make_informativeness_reward)."
)


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


def default_reward_funcs(args: MSJoEGRPOConfig) -> list[RewardFunc]:
    """The paper's three rewards (§2.2): accuracy, format, informativeness (weights come from `args`)."""
    info = make_informativeness_reward(args.info_threshold, args.info_normalization, args.info_softmax_scale)
    return [accuracy_reward, format_reward, info]


def group_advantages(
    rewards_per_func: torch.Tensor, reward_weights: torch.Tensor, num_generations: int, scale_rewards: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """GRPO advantages `(N,)` of the weighted reward sum, normalised per group of `num_generations` (paper §2.3:
    A_i = (r_i - mean) / std) following `scale_rewards`; rows whose rewards are all NaN get advantage 0.

    Copied from TRL 1.16's `_generate_and_score_completions` (`multi_objective_aggregation="sum_then_normalize"`,
    inline there, so it cannot be called); tests/test_grpo_trainer.py::test_group_advantages_match_trl runs TRL's
    own source on random rewards against this. Returns the advantages, the summed rewards `(N,)` and the std used.
    """
    unscorable = torch.isnan(rewards_per_func).all(dim=1)
    rewards = (rewards_per_func * reward_weights.to(rewards_per_func.device).unsqueeze(0)).nansum(dim=1)  # (N,)
    rewards[unscorable] = torch.nan
    grouped = rewards.view(-1, num_generations)  # (N / G, G)
    mean = torch.nanmean(grouped, dim=1).repeat_interleave(num_generations, dim=0)
    if scale_rewards == "batch":
        std = nanstd(rewards).expand_as(rewards) if rewards.numel() > 1 else torch.zeros_like(rewards)
    else:
        std = nanstd(grouped, dim=1).repeat_interleave(num_generations, dim=0)
    advantages = rewards - mean
    if scale_rewards != "none":
        advantages = advantages / (std + 1e-4)
    return torch.nan_to_num(advantages, nan=0.0), rewards, std
