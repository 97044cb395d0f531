"""Output types of `MSJoEForVideoQA` (kept apart from the model so the front ends can import them cheaply)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers.utils import ModelOutput

__all__ = ["MSJoESamplerOutput", "MSJoEVideoQAOutput", "timed"]


@dataclass
class MSJoEVideoQAOutput:
    """Everything one question produced, stage by stage.

    Tensors are on the CPU. `similarity` is `None` and `queries` empty for strategies that use no CLIP
    (`selection="uniform"`); `answer`/`option` are `None` for `select_frames`.
    """

    question: str
    options: list[str]  # lettered, "A. ..."
    selection: str  # the frame-selection strategy used
    queries: list[str] = field(default_factory=list)  # the CLIP queries frames were scored against
    queries_fallback: bool = False  # the query turn gave nothing parsable: the question was used instead
    query_turn_text: str | None = None  # raw output of the query turn
    preview_timestamps: torch.Tensor | None = None  # (N_init,) seconds
    candidate_timestamps: torch.Tensor | None = None  # (T,) seconds
    similarity: torch.Tensor | None = None  # (Q, T) cosine similarity
    frame_weights: torch.Tensor | None = None  # (T,) selection distribution (sampler softmax for "msjoe")
    key_frame_indices: torch.Tensor | None = None  # (K,) positions among the candidates, ascending
    key_frame_timestamps: torch.Tensor | None = None  # (K,) seconds
    answer_turn_text: str | None = None  # raw output of the answer turn
    answer: str | None = None  # the answer (content of <answer> tags when present)
    option: str | None = None  # the parsed option letter, if any
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage (batch wall time for batches)
    feature_cache: str | None = None  # candidate features: "hit" (from the cache), "miss", "off" or "uncacheable"
    video: str | None = None  # the video's path or a label for in-memory videos

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tensors become lists)."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            out[name] = value.tolist() if isinstance(value, torch.Tensor) else value
        return out


@dataclass
class MSJoESamplerOutput(ModelOutput):
    """What `MSJoEForVideoQA.forward(sampler_similarity=...)` returns: the sampler's `frame_logits` `(B, T)`
    (padded frames are `-inf`)."""

    frame_logits: torch.FloatTensor | None = None


@contextmanager
def timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    """Add the seconds spent in the `with` block to `timings[stage]` (stages may be entered more than once)."""
    start = time.perf_counter()
    yield
    timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start
