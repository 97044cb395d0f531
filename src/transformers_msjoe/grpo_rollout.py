"""MSJoE's training rollout (paper §2, Fig. 3) and the batches its loss re-scores.

For every dataset row (one of the G generations of a prompt):

    preview (uniform K/2, low-res) ──► MLLM query turn (sampled) ──► queries ──► CLIP text
    candidates (CLIP image, once per video) ───────────────────────────────────► S (Q x T)
    S ──► U-Net sampler logits ──► K frames drawn without replacement (Gumbel top-K)
    K key frames (high-res) ──► MLLM answer turn (sampled) ──► answer

Each generation differs in its queries, frames and answer. A row keeps what the loss needs to re-score both
turns with the visual inputs they were generated from (prompt text, frames, timestamps, completion ids) and
to recompute the sampler's log-probability (S and the draw order). Rows whose video fails to decode are kept
but flagged invalid: they get no reward, no advantage and no loss, so one bad file never poisons a batch.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from transformers.utils import logging

from .frame_features import CandidateFeatures
from .modeling_msjoe import MSJoEForVideoQA
from .modeling_sampler import frame_log_prob, sample_frames
from .processing_msjoe import MSJoEProcessor
from .prompts import LetteredOption, letter_options, parse_queries
from .video_io import (
    VideoDecodeError,
    VideoInfo,
    VideoReader,
    open_video,
    plan_uniform_timestamps,
)

logger = logging.get_logger(__name__)

__all__ = [
    "MSJoERollout",
    "RolloutRow",
    "Turn",
    "WithVisualInputs",
    "build_turn_batch",
    "frame_weight_entropy",
    "sampler_log_probs",
    "selected_spread",
]

@dataclass
class Turn:
    """One MLLM turn of one rollout: enough to rebuild its exact inputs and re-score its completion."""

    prompt: str
    frames: torch.Tensor  # (N, 3, H, W) uint8, as fed to the processor
    timestamps: torch.Tensor  # (N,) seconds
    video: VideoInfo
    max_pixels: int  # the per-frame pixel budget the processor resizes to (preview or key frames)
    completion_ids: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.long))  # (C,)
    text: str = ""


@dataclass
class RolloutRow:
    """One generation of one prompt. `error` is set (and the turns `None`) when the video could not be used."""

    question: str
    options: list[LetteredOption]
    error: str | None = None
    query: Turn | None = None
    answer: Turn | None = None
    queries: list[str] = field(default_factory=list)
    queries_fallback: bool = False  # nothing parsable in the query turn: the question was used as the query
    similarity: torch.Tensor | None = None  # (Q, T) cosine
    logits: torch.Tensor | None = None  # (T,) sampler logits at rollout time (no grad)
    draw_order: torch.Tensor | None = None  # (K,) candidates as drawn
    key_indices: torch.Tensor | None = None  # (K,) ascending

    @property
    def valid(self) -> bool:
        return self.error is None and self.answer is not None


class WithVisualInputs:
    """Calls a model with one turn's visual inputs added to every call.

    TRL 1.16's loss path (`_get_per_token_logps_and_entropies`) forwards only image kwargs, so video inputs would be
    silently dropped (ENV.md §6); wrapping the model lets TRL's own loss code score each turn with its frames.
    """

    def __init__(self, model: Any, visual_inputs: Mapping[str, torch.Tensor]):
        self.model = model
        self.visual_inputs = dict(visual_inputs)

    def __call__(self, **kwargs: Any) -> Any:
        return self.model(**kwargs, **self.visual_inputs)


def build_turn_batch(
    processor: MSJoEProcessor,
    turns: Sequence[Turn],
    *,
    pad_token_id: int,
    device: torch.device,
    dtype: torch.dtype,
) -> dict[str, Any]:
    """Inputs to re-score `turns`: left-padded prompts (with frames), right-padded completions, visual kwargs.

    Returns `prompt_ids`/`prompt_mask` `(B, P)`, `completion_ids`/`completion_mask` `(B, C)` and `visual_inputs`,
    whose per-token fields (e.g. `mm_token_type_ids`) are zero-extended over the completion.
    """
    if len({t.max_pixels for t in turns}) != 1:
        raise ValueError("build_turn_batch needs turns of one kind (one pixel budget); batch query and answer turns apart.")
    inputs = processor.build_inputs(
        [t.prompt for t in turns], [t.frames for t in turns], [t.timestamps for t in turns], [t.video for t in turns],
        max_pixels=turns[0].max_pixels,
    )  # fmt: skip
    prompt_ids, prompt_mask = inputs.pop("input_ids"), inputs.pop("attention_mask")  # (B, P)
    completions = [t.completion_ids for t in turns]
    length = max(1, max(len(c) for c in completions))
    completion_ids = torch.full((len(turns), length), pad_token_id, dtype=torch.long)  # (B, C)
    completion_mask = torch.zeros(len(turns), length, dtype=torch.long)
    for row, ids in enumerate(completions):
        completion_ids[row, : len(ids)] = ids
        completion_mask[row, : len(ids)] = 1
    visual: dict[str, torch.Tensor] = {}
    for key, value in inputs.items():
        if value.dim() >= 2 and tuple(value.shape[:2]) == tuple(prompt_ids.shape):  # per-token field
            value = torch.cat([value, value.new_zeros(len(turns), length, *value.shape[2:])], dim=1)
        value = value.to(device)
        visual[key] = value.to(dtype) if torch.is_floating_point(value) else value
    return {
        "prompt_ids": prompt_ids.to(device), "prompt_mask": prompt_mask.to(device),
        "completion_ids": completion_ids.to(device), "completion_mask": completion_mask.to(device),
        "visual_inputs": visual,
    }  # fmt: skip


def pad_similarities(similarities: Sequence[torch.Tensor], device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack `(Q_i, T_i)` matrices into `(B, Q, T)` with frame `(B, T)` and query `(B, Q)` masks for the U-Net."""
    num_q = max(s.shape[0] for s in similarities)
    num_t = max(s.shape[1] for s in similarities)
    batch = torch.zeros(len(similarities), num_q, num_t, device=device)
    frame_mask = torch.zeros(len(similarities), num_t, dtype=torch.bool, device=device)
    query_mask = torch.zeros(len(similarities), num_q, dtype=torch.bool, device=device)
    for row, matrix in enumerate(similarities):
        q, t = matrix.shape
        batch[row, :q, :t] = matrix.to(device)
        frame_mask[row, :t] = True
        query_mask[row, :q] = True
    return batch, frame_mask, query_mask


def sampler_log_probs(
    sampler: torch.nn.Module, similarities: Sequence[torch.Tensor], draw_orders: Sequence[torch.Tensor], form: str
) -> torch.Tensor:
    """`(B,)` differentiable log-probability of each row's drawn frames under the sampler (one batched forward)."""
    param = next(sampler.parameters())
    batch, frame_mask, query_mask = pad_similarities(similarities, param.device)
    logits = sampler(batch.to(param.dtype), frame_mask=frame_mask, query_mask=query_mask)  # (B, T)
    rows = zip(similarities, draw_orders)
    return torch.stack([frame_log_prob(logits[i, : s.shape[1]], order.to(param.device), form=form) for i, (s, order) in enumerate(rows)])


@dataclass
class _VideoState:
    reader: VideoReader
    features: CandidateFeatures
    preview_timestamps: torch.Tensor
    preview_frames: torch.Tensor


class MSJoERollout:
    """Runs the two-turn rollout of `MSJoEForVideoQA` for a batch of dataset rows (no gradients).

    Args:
        model: the (unwrapped) MSJoE model.
        generation_config: sampling settings of both turns (TRL's, from `GRPOConfig`).
        eos_token_ids: tokens that end a completion.
    """

    def __init__(self, model: MSJoEForVideoQA, generation_config: Any, eos_token_ids: Sequence[int]):
        self.model = model
        # A sampled visual placeholder token would no longer match the frames' features when the turn is re-scored.
        self.generation_config = copy.deepcopy(generation_config)
        self.generation_config.suppress_tokens = sorted(
            {*(generation_config.suppress_tokens or []), *visual_placeholder_token_ids(model.mllm.config)}
        )
        self.eos_token_ids = list(eos_token_ids)

    def _generation_config(self, max_new_tokens: int) -> Any:
        """The sampling config with one turn's token budget (a copy: transformers rejects config + overrides)."""
        config = copy.deepcopy(self.generation_config)
        config.max_new_tokens = max_new_tokens
        return config

    # ------------------------------------------------------------------ per-video work, shared by its generations
    def _video_state(self, video: Any) -> _VideoState:
        config = self.model.config
        reader = open_video(video)
        features = self.model.candidate_features(reader)  # the feature cache reuses them across epochs
        stamps = plan_uniform_timestamps(reader.info.duration_seconds, config.effective_num_preview_frames, reader.begin_seconds)
        frames = reader.frames_at(stamps, max_pixels=config.preview_max_pixels)
        return _VideoState(reader, features, stamps, frames)

    # ------------------------------------------------------------------ the rollout
    @torch.no_grad()
    def __call__(self, examples: Sequence[Mapping[str, Any]]) -> list[RolloutRow]:
        """Roll out every example (each a dataset row: `video`, `question`, `options`)."""
        rows = [RolloutRow(question=str(ex["question"]).strip(), options=letter_options(ex["options"])) for ex in examples]
        states: dict[int, _VideoState] = {}
        by_video: dict[str, _VideoState | str] = {}  # a video shared by several generations is opened once
        for i, example in enumerate(examples):
            key = _video_key(example["video"])
            if key not in by_video:
                try:
                    by_video[key] = self._video_state(example["video"])
                except VideoDecodeError as err:
                    by_video[key] = str(err)
            if isinstance(by_video[key], str):
                rows[i].error = by_video[key]
            else:
                states[i] = by_video[key]
        active = [i for i in range(len(rows)) if rows[i].error is None]
        if active:
            self._query_turn(rows, states, active)
            self._select_frames(rows, states, active)
            active = [i for i in active if rows[i].error is None]
        if active:
            self._answer_turn(rows, active)
        return rows

    def _query_turn(self, rows: list[RolloutRow], states: dict[int, _VideoState], active: list[int]) -> None:
        """Turn 1 (paper §1.2): queries from the preview; a fallback to the question counts as a parse failure."""
        config, processor = self.model.config, self.model.processor
        for i in active:
            state = states[i]
            prompt = processor.query_prompt(rows[i].question, rows[i].options, len(state.preview_frames), config.num_queries)
            rows[i].query = Turn(prompt, state.preview_frames, state.preview_timestamps, state.reader.info, config.preview_max_pixels)  # fmt: skip
        self.generate([rows[i].query for i in active], max_new_tokens=config.query_max_new_tokens)
        for i in active:
            parsed = parse_queries(rows[i].query.text, config.num_queries)
            rows[i].queries = list(parsed.queries) or [rows[i].question]
            rows[i].queries_fallback = not parsed.queries
            if not rows[i].queries_fallback and config.use_question_as_query and rows[i].question not in rows[i].queries:
                rows[i].queries.append(rows[i].question)

    def _select_frames(self, rows: list[RolloutRow], states: dict[int, _VideoState], active: list[int]) -> None:
        """CLIP similarity of each row's queries (§1.3), then K candidates drawn without replacement (§1.4)."""
        scorer, sampler, config = self.model.clip_scorer, self.model.sampler, self.model.config
        query_embeddings = scorer.encode_texts([q for i in active for q in rows[i].queries])  # (sum Q, D)
        offset = 0
        for i in active:
            count = len(rows[i].queries)
            rows[i].similarity = scorer.similarity(query_embeddings[offset : offset + count], states[i].features.embeddings)
            offset += count
        param = next(sampler.parameters())
        batch, frame_mask, query_mask = pad_similarities([rows[i].similarity for i in active], param.device)
        logits = sampler(batch.to(param.dtype), frame_mask=frame_mask, query_mask=query_mask).float().cpu()  # (B, T)
        for row_logits, i in zip(logits, active):
            row = rows[i]
            row.logits = row_logits[: row.similarity.shape[1]]
            drawn = sample_frames(row.logits, config.num_key_frames)
            row.draw_order, row.key_indices = drawn.draw_order, drawn.indices
        by_video: dict[int, list[int]] = {}
        for i in active:
            by_video.setdefault(id(states[i]), []).append(i)
        for members in by_video.values():  # one decode per video for the frames of all its generations
            state = states[members[0]]
            union = torch.unique(torch.cat([rows[i].key_indices for i in members]))  # (U,) ascending
            try:
                frames = state.reader.frames_at(state.features.timestamps[union], max_pixels=config.key_frame_max_pixels)
            except VideoDecodeError as err:
                for i in members:
                    rows[i].error = str(err)
                continue
            for i in members:
                row = rows[i]
                positions = torch.searchsorted(union, row.key_indices)  # (K,)
                prompt = self.model.processor.answer_prompt(row.question, row.options, len(positions))
                stamps = state.features.timestamps[row.key_indices]
                row.answer = Turn(prompt, frames[positions], stamps, state.reader.info, config.key_frame_max_pixels)

    def _answer_turn(self, rows: list[RolloutRow], active: list[int]) -> None:
        """Turn 2 (paper §1.5): the answer from the K key frames only."""
        config = self.model.config
        self.generate([rows[i].answer for i in active], max_new_tokens=config.answer_max_new_tokens)

    def generate(self, turns: Sequence[Turn], *, max_new_tokens: int) -> None:
        """Sample one completion per turn (rows grouped by frame shape); fills `completion_ids` (up to EOS) and `text`."""
        processor, mllm = self.model.processor, self.model.mllm
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, turn in enumerate(turns):
            groups.setdefault((turn.max_pixels, *turn.frames.shape), []).append(index)
        eos = torch.tensor(self.eos_token_ids)
        for members in groups.values():
            inputs = processor.build_inputs(
                [turns[m].prompt for m in members], [turns[m].frames for m in members],
                [turns[m].timestamps for m in members], [turns[m].video for m in members], max_pixels=turns[members[0]].max_pixels,
            ).to(mllm.device)  # fmt: skip
            inputs = {k: v.to(mllm.dtype) if torch.is_floating_point(v) else v for k, v in inputs.items()}
            sequences = mllm.generate(**inputs, generation_config=self._generation_config(max_new_tokens))
            completions = sequences[:, inputs["input_ids"].shape[1] :].cpu()  # (b, C)
            for member, ids in zip(members, completions):
                ends = torch.isin(ids, eos).nonzero()
                ids = ids[: int(ends[0]) + 1] if len(ends) else ids
                turns[member].completion_ids = ids
                turns[member].text = processor.tokenizer.decode(ids, skip_special_tokens=True)


def visual_placeholder_token_ids(mllm_config: Any) -> list[int]:
    """Token ids that stand for visual input in the MLLM's prompts (image/video pads, vision start/end)."""
    names = ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id", "image_token_index", "video_token_index")  # fmt: skip
    return sorted({value for name in names if isinstance(value := getattr(mllm_config, name, None), int)})


def _video_key(video: Any) -> str:
    """An identity of a dataset `video` value: its path, its bytes' hash, or the object for decoders."""
    if isinstance(video, Mapping):
        return f"path:{video['path']}" if video.get("path") else f"bytes:{hash(video.get('bytes'))}"
    if isinstance(video, (bytes, bytearray)):
        return f"bytes:{hash(bytes(video))}"
    if isinstance(video, str):
        return f"path:{video}"
    return f"object:{id(video)}"


def frame_weight_entropy(logits: torch.Tensor) -> float:
    """Entropy (nats) of softmax(logits) over the candidates, divided by log T (1 = uniform, 0 = one frame)."""
    log_p = F.log_softmax(logits.float(), dim=-1)
    entropy = -(log_p.exp() * log_p).sum()
    return float(entropy / math.log(max(len(logits), 2)))


def selected_spread(indices: torch.Tensor, num_candidates: int) -> float:
    """Standard deviation of the selected positions divided by T (about 0.29 for uniformly spread frames)."""
    if len(indices) < 2:
        return 0.0
    return float(indices.double().std(unbiased=False) / max(num_candidates, 1))
