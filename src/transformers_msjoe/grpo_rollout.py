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

Both MLLM turns go through `MSJoEForVideoQA.generate_completions` and the queries through
`MSJoEForVideoQA.visual_queries`, the inference pipeline's own steps, with TRL's sampling settings.
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
from .prompts import LetteredOption, letter_options
from .video_io import VideoDecodeError, VideoInfo, VideoReader, open_video, plan_uniform_timestamps

logger = logging.get_logger(__name__)

__all__ = [
    "TURNS",
    "MSJoERollout",
    "RolloutRow",
    "Turn",
    "WithVisualInputs",
    "build_turn_batch",
    "draw_log_probs",
    "frame_weight_entropy",
    "group_by_shape",
    "pad_similarities",
    "placeholder_turn",
    "selected_spread",
]


TURNS = ("query", "answer")  # the two MLLM turns of a rollout, as named in batches (`<turn>_turns`) and metrics


@dataclass
class Turn:
    """One MLLM turn of one rollout: enough to rebuild its exact inputs and re-score its completion."""

    prompt: str
    frames: torch.Tensor  # (N, 3, H, W) uint8, as fed to the processor
    timestamps: torch.Tensor  # (N,) seconds
    video: VideoInfo | None  # None only for frameless turns
    max_pixels: int  # the per-frame pixel budget the processor resizes to (preview or key frames)
    completion_ids: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.long))  # (C,)
    text: str = ""
    prompt_length: int = 0  # prompt tokens, visual tokens included (for `num_input_tokens_seen`)

    @property
    def shape_key(self) -> tuple[int, ...]:
        """Turns with equal keys can share one forward (some families need equal frame counts and sizes)."""
        return (self.max_pixels, *self.frames.shape)


def group_by_shape(turns: Sequence[Turn]) -> list[list[int]]:
    """Positions of `turns` grouped by `Turn.shape_key`, in order of first appearance: each group can share one
    forward (some families batch only equal frame counts and sizes)."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for position, turn in enumerate(turns):
        groups.setdefault(turn.shape_key, []).append(position)
    return list(groups.values())


def placeholder_turn(max_pixels: int) -> Turn:
    """A frameless turn with an empty prompt and one masked-out completion token: what a process with no valid
    row forwards so that every process runs the same number of forwards (and collectives) per step."""
    return Turn("", torch.zeros(0, 3, 1, 1, dtype=torch.uint8), torch.zeros(0), None, max_pixels)


@dataclass
class RolloutRow:
    """One generation of one prompt. `error` is set (and the turns `None`) when the video could not be used."""

    question: str
    options: list[LetteredOption]
    error: str | None = None
    query: Turn | None = None
    answer: Turn | None = None
    queries: list[str] = field(default_factory=list)  # the queries S was computed for (similarity rows, in order)
    num_written_queries: int = 0  # the first ones, written by the MLLM; 0 = fallback to the question
    similarity: torch.Tensor | None = None  # (Q, T) cosine
    logits: torch.Tensor | None = None  # (T,) sampler logits at rollout time (no grad)
    draw_order: torch.Tensor | None = None  # (K,) candidates as drawn
    key_indices: torch.Tensor | None = None  # (K,) ascending

    @property
    def valid(self) -> bool:
        return self.error is None and self.answer is not None

    @property
    def queries_fallback(self) -> bool:
        """The query turn gave nothing parsable: the question was used as the only query."""
        return self.num_written_queries == 0


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
        raise ValueError("build_turn_batch needs turns of one pixel budget; batch query and answer turns apart.")
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
        # pixels follow the MLLM's dtype; other floats (e.g. second_per_grid_ts) keep their precision
        visual[key] = value.to(dtype) if key.startswith("pixel_values") else value
    return {
        "prompt_ids": prompt_ids.to(device), "prompt_mask": prompt_mask.to(device),
        "completion_ids": completion_ids.to(device), "completion_mask": completion_mask.to(device),
        "visual_inputs": visual,
    }  # fmt: skip


def pad_similarities(
    similarities: Sequence[torch.Tensor], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
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


def draw_log_probs(
    logits: torch.Tensor, similarities: Sequence[torch.Tensor], draw_orders: Sequence[torch.Tensor], form: str
) -> torch.Tensor:
    """`(B,)` differentiable log-probability of each row's drawn frames, from the sampler's padded logits `(B, T)`
    (row i has `similarities[i].shape[1]` real candidates)."""
    rows = zip(similarities, draw_orders)
    return torch.stack(
        [
            frame_log_prob(logits[i, : s.shape[1]], order.to(logits.device), form=form)
            for i, (s, order) in enumerate(rows)
        ]
    )


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
        generation_config: sampling settings of both turns (TRL's, from `GRPOConfig`); each turn gets its own
            token budget from the model config.
    """

    def __init__(self, model: MSJoEForVideoQA, generation_config: Any):
        self.model = model
        # A sampled visual placeholder token would no longer match the frames' features when the turn is re-scored.
        self.generation_config = copy.deepcopy(generation_config)
        self.generation_config.suppress_tokens = sorted(
            {*(generation_config.suppress_tokens or []), *visual_placeholder_token_ids(model.mllm.config)}
        )

    # ------------------------------------------------------------------ per-video work, shared by its generations
    def _video_state(self, video: Any) -> _VideoState:
        config = self.model.config
        reader = open_video(video)
        features = self.model.candidate_features(reader)  # the feature cache reuses them across epochs
        num_preview = config.effective_num_preview_frames
        stamps = plan_uniform_timestamps(reader.info.duration_seconds, num_preview, reader.begin_seconds)
        frames = reader.frames_at(stamps, max_pixels=config.preview_max_pixels)
        return _VideoState(reader, features, stamps, frames)

    # ------------------------------------------------------------------ the rollout
    @torch.no_grad()
    def __call__(self, examples: Sequence[Mapping[str, Any]]) -> list[RolloutRow]:
        """Roll out every example (each a dataset row: `video`, `question`, `options` as plain texts)."""
        rows = [
            RolloutRow(question=str(ex["question"]).strip(), options=letter_options(ex["options"], lettered=False))
            for ex in examples
        ]
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
            self.generate([rows[i].answer for i in active], max_new_tokens=self.model.config.answer_max_new_tokens)
        return rows

    def _query_turn(self, rows: list[RolloutRow], states: dict[int, _VideoState], active: list[int]) -> None:
        """Turn 1 (paper §1.2): queries from the preview; a fallback to the question counts as a parse failure."""
        config, processor = self.model.config, self.model.processor
        for i in active:
            state = states[i]
            prompt = processor.query_prompt(
                rows[i].question, rows[i].options, len(state.preview_frames), config.num_queries
            )
            rows[i].query = Turn(
                prompt, state.preview_frames, state.preview_timestamps, state.reader.info, config.preview_max_pixels
            )
        self.generate([rows[i].query for i in active], max_new_tokens=config.query_max_new_tokens)
        for i in active:
            rows[i].queries, rows[i].num_written_queries = self.model.visual_queries(
                rows[i].query.text, rows[i].question
            )

    def _select_frames(self, rows: list[RolloutRow], states: dict[int, _VideoState], active: list[int]) -> None:
        """CLIP similarity of each row's queries (§1.3), then K candidates drawn without replacement (§1.4)."""
        scorer, sampler, config = self.model.clip_scorer, self.model.sampler, self.model.config
        query_embeddings = scorer.encode_texts([q for i in active for q in rows[i].queries])  # (sum Q, D)
        offset = 0
        for i in active:
            count = len(rows[i].queries)
            embeddings = query_embeddings[offset : offset + count]
            rows[i].similarity = scorer.similarity(embeddings, states[i].features.embeddings)  # (Q, T)
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
            self._answer_turns(rows, states[members[0]], members)

    def _answer_turns(self, rows: list[RolloutRow], state: _VideoState, members: list[int]) -> None:
        """Decode the union of the key frames `members` drew from one video, then build their answer turns."""
        config = self.model.config
        union = torch.unique(torch.cat([rows[i].key_indices for i in members]))  # (U,) ascending
        try:
            frames = state.reader.frames_at(state.features.timestamps[union], max_pixels=config.key_frame_max_pixels)
        except VideoDecodeError as err:
            for i in members:
                rows[i].error = str(err)
            return
        for i in members:
            row = rows[i]
            positions = torch.searchsorted(union, row.key_indices)  # (K,)
            prompt = self.model.processor.answer_prompt(row.question, row.options, len(positions))
            stamps = state.features.timestamps[row.key_indices]
            row.answer = Turn(prompt, frames[positions], stamps, state.reader.info, config.key_frame_max_pixels)

    def generate(self, turns: Sequence[Turn], *, max_new_tokens: int) -> None:
        """Sample one completion per turn with `MSJoEForVideoQA.generate_completions`; fills `completion_ids`
        (up to EOS), `text` and `prompt_length`."""
        if not turns:
            return
        completions, prompt_lengths = self.model.generate_completions(
            [t.prompt for t in turns], [t.frames for t in turns], [t.timestamps for t in turns],
            [t.video for t in turns], max_pixels=turns[0].max_pixels, max_new_tokens=max_new_tokens,
            generation_config=self.generation_config,
        )  # fmt: skip
        tokenizer = self.model.processor.tokenizer
        for turn, ids, length in zip(turns, completions, prompt_lengths):
            turn.completion_ids, turn.prompt_length = ids, length
            turn.text = tokenizer.decode(ids, skip_special_tokens=True)


def visual_placeholder_token_ids(mllm_config: Any) -> list[int]:
    """Token ids that stand for visual input in the MLLM's prompts (image/video pads, vision start/end)."""
    names = (
        "image_token_id",
        "video_token_id",
        "vision_start_token_id",
        "vision_end_token_id",
        "image_token_index",
        "video_token_index",
    )
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
