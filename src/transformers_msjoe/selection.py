"""Frame-selection strategies behind one interface: similarity + budget K -> K candidate indices in time order.

The learned MSJoE sampler and the training-free baselines are interchangeable everywhere (`answer()`, the
CLI, the trainer's evaluation, the lmms-eval plugin): pick one by name with `build_selector(name, ...)`.

Each strategy declares where its queries come from (`query_source`):
  - `"reasoned"`: MSJoE's visual queries written by the MLLM from the preview (query turn runs);
  - `"question"`: the question text itself is the only CLIP query (no query turn);
  - `"none"`: no CLIP scoring at all (e.g. uniform sampling).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch

from .modeling_sampler import MSJoEFrameSampler, clamp_budget, sample_frames, topk_frames

__all__ = [
    "FrameSelection",
    "FrameSelector",
    "MSJoESamplerSelector",
    "UniformSelector",
    "available_selectors",
    "build_selector",
    "clamp_budget",
    "register_selector",
]

QuerySource = Literal["reasoned", "question", "none"]


@dataclass
class FrameSelection:
    """The output of every strategy."""

    indices: torch.Tensor  # (K,) long, ascending positions among the candidates
    weights: torch.Tensor | None = None  # (T,) the per-candidate distribution the strategy used, sums to 1
    logits: torch.Tensor | None = None  # (T,) differentiable sampler logits (learned sampler only)
    draw_order: torch.Tensor | None = None  # (K,) sampling order when frames were drawn stochastically


class FrameSelector(ABC):
    """A frame-selection strategy. Subclasses set `name`, `query_source` and implement `select`."""

    name: ClassVar[str]
    query_source: ClassVar[QuerySource]

    @abstractmethod
    def select(
        self,
        similarity: torch.Tensor | None,
        num_candidates: int,
        k: int,
        *,
        generator: torch.Generator | None = None,
    ) -> FrameSelection:
        """Pick `min(k, num_candidates)` distinct candidates from `similarity` `(Q, T)` (None if query_source is "none")."""


_SELECTORS: dict[str, type[FrameSelector]] = {}


def register_selector(cls: type[FrameSelector]) -> type[FrameSelector]:
    """Class decorator adding a strategy to the registry under `cls.name`."""
    if cls.name in _SELECTORS and _SELECTORS[cls.name] is not cls:
        raise ValueError(f"A frame selector named {cls.name!r} is already registered ({_SELECTORS[cls.name].__name__}).")
    _SELECTORS[cls.name] = cls
    return cls


def available_selectors() -> list[str]:
    """Names accepted by `build_selector`, `answer(selection=...)` and `msjoe answer --selection`."""
    return sorted(_SELECTORS)


def build_selector(name: str, *, sampler: MSJoEFrameSampler | None = None, **options: Any) -> FrameSelector:
    """Instantiate a strategy by name. The learned `"msjoe"` strategy needs the model's `sampler`."""
    if name not in _SELECTORS:
        raise ValueError(f"Unknown frame selection {name!r}; choose one of {available_selectors()}.")
    cls = _SELECTORS[name]
    if cls is MSJoESamplerSelector:
        if sampler is None:
            raise ValueError("The 'msjoe' selection needs the learned sampler: call it through MSJoEForVideoQA.")
        return cls(sampler, **options)
    return cls(**options)


@register_selector
class UniformSelector(FrameSelector):
    """K evenly spaced candidates (the base-model setting of every paper in this field)."""

    name = "uniform"
    query_source = "none"

    def select(self, similarity, num_candidates, k, *, generator=None) -> FrameSelection:
        k = clamp_budget(k, num_candidates)
        indices = ((torch.arange(k, dtype=torch.float64) + 0.5) * num_candidates / k).floor().long()
        weights = torch.full((num_candidates,), 1.0 / num_candidates)
        return FrameSelection(indices=indices, weights=weights)


@register_selector
class MSJoESamplerSelector(FrameSelector):
    """The learned U-Net sampler (paper §3.3): top-K of its weights at inference, or K draws without replacement.

    Args:
        sampler: the model's `MSJoEFrameSampler`.
        mode: `"topk"` (deterministic, time-ordered) or `"sample"` (Gumbel top-K, as in training).
    """

    name = "msjoe"
    query_source = "reasoned"

    def __init__(self, sampler: MSJoEFrameSampler, mode: Literal["topk", "sample"] = "topk"):
        if mode not in ("topk", "sample"):
            raise ValueError(f"`mode` must be 'topk' or 'sample', got {mode!r}.")
        self.sampler = sampler
        self.mode = mode

    def select(self, similarity, num_candidates, k, *, generator=None) -> FrameSelection:
        if similarity is None:
            raise ValueError("The 'msjoe' selection needs a similarity matrix (queries x candidates).")
        param = next(self.sampler.parameters())
        logits = self.sampler(similarity.to(device=param.device, dtype=param.dtype))  # (T,)
        weights = torch.softmax(logits.detach().float(), dim=-1).cpu()
        if self.mode == "topk":
            return FrameSelection(indices=topk_frames(logits.detach(), k).cpu(), weights=weights, logits=logits)
        drawn = sample_frames(logits, k, generator=generator)
        return FrameSelection(
            indices=drawn.indices.cpu(), weights=weights, logits=logits, draw_order=drawn.draw_order.cpu()
        )
