"""MSJoE's U-Sampler: a 1-D temporal U-Net from the query x frame similarity matrix to per-frame logits.

Paper §3.3 (hf.co/papers/2602.22932): "a lightweight 1D U-Net" (~2M parameters) does dense prediction along
time, with multi-scale receptive fields and skip connections, so it can trade off several queries and avoid
the redundant adjacent frames that a naive top-k picks. The layer layout is not published; ours is documented
in `MSJoESamplerConfig`.

    similarity (B, Q, T) ──zscore per row──► [Q query channels | frame mask] (B, Q+1, T')
        │ enc0 ─────────────────────────────────────────────► dec0 ─► 1x1 conv ─► logits (B, T)
        │   └ pool ─ enc1 ─────────────────────────────► dec1 ┘
        │              └ pool ─ enc2 ─────────────► dec2 ┘
        │                         └ pool ─ bottleneck ┘

Padding (fewer queries, shorter videos in a batch, T' rounded up to 2^depth) is masked everywhere: masked
GroupNorm statistics, zeroed padded features, `-inf` logits. So a sample's logits do not depend on what it
was batched with.

Selection (top-K in time order, Gumbel top-K sampling without replacement) and the REINFORCE log-probability
are plain functions below, shared by every front end; `MSJoEFrameSampler.select` / `.log_prob` apply them to
the sampler's own logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import logging

from .configuration_msjoe import MSJoESamplerConfig

logger = logging.get_logger(__name__)

__all__ = [
    "MSJoEFrameSampler",
    "SampledFrames",
    "choose_frames",
    "clamp_budget",
    "frame_log_prob",
    "sample_frames",
    "topk_frames",
]


class MSJoEMaskedGroupNorm(nn.GroupNorm):
    """GroupNorm whose statistics use only the valid (unpadded) time steps."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, channels, length = x.shape
        m = mask[:, None, None, :].to(x.dtype)  # (B, 1, 1, T)
        grouped = x.view(batch, self.num_groups, channels // self.num_groups, length)  # (B, G, C/G, T)
        count = (m.sum(dim=-1, keepdim=True) * grouped.shape[2]).clamp_min(1.0)  # (B, 1, 1, 1)
        mean = (grouped * m).sum(dim=(2, 3), keepdim=True) / count
        var = (((grouped - mean) * m) ** 2).sum(dim=(2, 3), keepdim=True) / count
        normed = ((grouped - mean) / torch.sqrt(var + self.eps)).view(batch, channels, length)
        return normed * self.weight[None, :, None] + self.bias[None, :, None]


class MSJoEConvBlock(nn.Module):
    """Two (conv -> masked GroupNorm -> SiLU) layers with a residual projection; padded steps stay zero."""

    def __init__(self, in_channels: int, out_channels: int, config: MSJoESamplerConfig):
        super().__init__()
        pad = config.kernel_size // 2
        self.conv1 = nn.Conv1d(in_channels, out_channels, config.kernel_size, padding=pad)
        self.norm1 = MSJoEMaskedGroupNorm(config.num_groups, out_channels)
        self.conv2 = nn.Conv1d(out_channels, out_channels, config.kernel_size, padding=pad)
        self.norm2 = MSJoEMaskedGroupNorm(config.num_groups, out_channels)
        self.skip = nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask[:, None, :].to(x.dtype)  # (B, 1, T)
        h = F.silu(self.norm1(self.conv1(x), mask)) * m
        h = self.dropout(h)
        h = F.silu(self.norm2(self.conv2(h), mask)) * m
        return (h + self.skip(x)) * m  # (B, C_out, T)


class MSJoEFramePreTrainedModel(PreTrainedModel):
    config_class = MSJoESamplerConfig
    base_model_prefix = "sampler"
    main_input_name = "similarity"

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Conv1d):
            nn.init.kaiming_normal_(module.weight, nonlinearity="linear")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.GroupNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        if isinstance(module, MSJoEFrameSampler):
            # Start near-uniform (small logits) so early REINFORCE explores, but not exactly flat: a flat
            # top-K would silently return the first K frames.
            nn.init.normal_(module.head.weight, std=1e-2)
            nn.init.zeros_(module.head.bias)


class MSJoEFrameSampler(MSJoEFramePreTrainedModel):
    """1-D U-Net over time: similarity `(B, Q, T)` -> selection logits `(B, T)`, `-inf` on padded frames."""

    def __init__(self, config: MSJoESamplerConfig):
        super().__init__(config)
        widths = config.level_channels
        in_channels = config.max_num_queries + 1  # query rows + the frame-validity channel
        self.encoders = nn.ModuleList()
        for width in widths:
            self.encoders.append(MSJoEConvBlock(in_channels, width, config))
            in_channels = width
        self.decoders = nn.ModuleList(
            MSJoEConvBlock(widths[level + 1] + widths[level], widths[level], config)
            for level in reversed(range(len(widths) - 1))
        )
        self.head = nn.Conv1d(widths[0], 1, kernel_size=1)
        self.post_init()

    def normalize_similarity(self, similarity: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """Per-query standardisation over valid frames (config.input_normalization)."""
        if self.config.input_normalization == "none":
            return similarity
        m = frame_mask[:, None, :].to(similarity.dtype)  # (B, 1, T)
        count = m.sum(-1, keepdim=True).clamp_min(1.0)
        mean = (similarity * m).sum(-1, keepdim=True) / count
        std = torch.sqrt((((similarity - mean) * m) ** 2).sum(-1, keepdim=True) / count + 1e-6)
        return (similarity - mean) / std  # (B, Q, T)

    def forward(
        self,
        similarity: torch.Tensor,
        frame_mask: torch.Tensor | None = None,
        query_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """
        Args:
            similarity: `(B, Q, T)` or `(Q, T)` query x frame cosine similarities, Q <= `max_num_queries`.
            frame_mask: `(B, T)` True for real candidate frames (default: all).
            query_mask: `(B, Q)` True for real queries (default: all).

        Returns:
            logits `(B, T)` (or `(T,)` for unbatched input); padded frames are `-inf`.
        """
        unbatched = similarity.dim() == 2
        if unbatched:
            similarity = similarity[None]
            frame_mask = None if frame_mask is None else frame_mask[None]
            query_mask = None if query_mask is None else query_mask[None]
        batch, num_queries, length = similarity.shape
        frame_mask = (
            torch.ones(batch, length, dtype=torch.bool, device=similarity.device)
            if frame_mask is None
            else frame_mask.bool()
        )
        x, mask = self._network_input(similarity, frame_mask, query_mask)  # (B, max_q + 1, T'), (B, T')
        logits = self._unet(x, mask)[:, :length]  # (B, T)
        logits = logits.masked_fill(~frame_mask, float("-inf"))
        return logits[0] if unbatched else logits

    def _network_input(
        self, similarity: torch.Tensor, frame_mask: torch.Tensor, query_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised, zero-padded query channels plus the frame-validity channel `(B, max_q + 1, T')`, and the
        frame mask `(B, T')`, with T' rounded up to a multiple of `time_multiple`."""
        batch, num_queries, length = similarity.shape
        max_q = self.config.max_num_queries
        if num_queries > max_q:
            raise ValueError(
                f"The sampler takes at most {max_q} queries (`max_num_queries`), got {num_queries}. "
                "Keep the first ones or build a sampler with more query channels."
            )
        if num_queries == 0 or length == 0:
            raise ValueError(
                f"The similarity matrix is empty: shape {tuple(similarity.shape)}; need >= 1 query and frame."
            )
        if query_mask is None:
            query_mask = torch.ones(batch, num_queries, dtype=torch.bool, device=similarity.device)
        query_mask = query_mask.bool()
        x = self.normalize_similarity(similarity.to(self.dtype), frame_mask)
        x = x * (query_mask[:, :, None] & frame_mask[:, None, :]).to(x.dtype)  # zero padded rows/frames
        x = F.pad(x, (0, 0, 0, max_q - num_queries))  # (B, max_q, T)
        x = torch.cat([x, frame_mask[:, None, :].to(x.dtype)], dim=1)  # (B, max_q + 1, T)
        padded_length = -(-length // self.config.time_multiple) * self.config.time_multiple
        x = F.pad(x, (0, padded_length - length))  # (B, max_q + 1, T')
        return x, F.pad(frame_mask, (0, padded_length - length))  # (B, T')

    def _unet(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Encoder / decoder with skip connections: `(B, max_q + 1, T')` -> unmasked logits `(B, T')`."""
        skips, masks = [], []
        for level, encoder in enumerate(self.encoders):
            if level > 0:
                x = F.avg_pool1d(x, 2)  # padded steps are zero, so their share of a window only scales it
                mask = F.max_pool1d(mask[:, None].float(), 2)[:, 0].bool()  # (B, T' / 2^level)
            x = encoder(x, mask)
            skips.append(x)
            masks.append(mask)
        for decoder, skip, skip_mask in zip(self.decoders, reversed(skips[:-1]), reversed(masks[:-1])):
            x = F.interpolate(x, scale_factor=2, mode="nearest")  # (B, C, 2 * T_level)
            x = decoder(torch.cat([x, skip], dim=1), skip_mask)
        return self.head(x)[:, 0]  # (B, T')

    def select(
        self,
        similarity: torch.Tensor,
        num_key_frames: int,
        *,
        mode: Literal["topk", "sample"] = "topk",
        generator: torch.Generator | None = None,
    ) -> SampledFrames:
        """K frames of one video from its similarity `(Q, T)` (paper §3.3): top-K in time order (inference) or K
        draws without replacement (training, Gumbel top-K; see `topk_frames` / `sample_frames`).

        `draw_order` is the drawing order, or for top-K the frames by decreasing logit (the greedy draw).
        """
        return choose_frames(self(_one_video(similarity)).detach(), num_key_frames, mode=mode, generator=generator)

    def log_prob(
        self,
        similarity: torch.Tensor,
        indices: torch.Tensor,
        *,
        form: Literal["paper", "plackett_luce"] = "paper",
    ) -> torch.Tensor:
        """Differentiable log-probability that this sampler selects `indices` `(K,)` for one video's similarity
        `(Q, T)` (paper §3.5, see `frame_log_prob`); for `"plackett_luce"` pass `indices` in draw order."""
        return frame_log_prob(self(_one_video(similarity)), indices, form=form)


def choose_frames(
    logits: torch.Tensor,
    num_key_frames: int,
    *,
    mode: Literal["topk", "sample"] = "topk",
    generator: torch.Generator | None = None,
) -> SampledFrames:
    """K frames from one video's logits `(T,)`: top-K in time order (inference) or K Gumbel top-K draws without
    replacement (training). For top-K, `draw_order` is the greedy draw: the frames by decreasing logit."""
    if mode == "sample":
        return sample_frames(logits, num_key_frames, generator=generator)
    if mode != "topk":
        raise ValueError(f"`mode` must be 'topk' or 'sample', got {mode!r}.")
    indices = topk_frames(logits, num_key_frames)  # (K,) ascending
    return SampledFrames(indices=indices, draw_order=indices[logits[indices].argsort(descending=True)])


def _one_video(similarity: torch.Tensor) -> torch.Tensor:
    """Check that `select` / `log_prob` got one video's `(Q, T)` (a batch has no single set of indices)."""
    if similarity.dim() != 2:
        raise ValueError(
            f"Expected one video's similarity `(Q, T)`, got shape {tuple(similarity.shape)}; call the sampler per "
            "video, or `forward` for a batch of logits."
        )
    return similarity


@dataclass
class SampledFrames:
    """K frames drawn without replacement: `indices` in time order, `draw_order` as drawn (for Plackett-Luce)."""

    indices: torch.Tensor  # (K,) long, ascending
    draw_order: torch.Tensor  # (K,) long


def clamp_budget(k: int, num_valid: int) -> int:
    """`min(k, num_valid)`, warning when the video has fewer candidates than the key-frame budget."""
    if num_valid < k:
        logger.warning(f"Only {num_valid} candidate frames for a budget of {k} key frames: using all of them.")
    return min(k, num_valid)


def topk_frames(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Deterministic inference selection: the K highest logits `(T,)`, returned in time order `(K,)`."""
    k = clamp_budget(k, int(torch.isfinite(logits).sum()))
    return torch.topk(logits, k).indices.sort().values


def sample_frames(logits: torch.Tensor, k: int, generator: torch.Generator | None = None) -> SampledFrames:
    """K draws without replacement from softmax(logits) `(T,)` via Gumbel top-K (exactly sequential sampling).

    The noise is drawn on `generator`'s device and moved to the logits (T floats), so one CPU generator
    seeds both the CPU baselines and a sampler on the GPU.
    """
    k = clamp_budget(k, int(torch.isfinite(logits).sum()))
    noise_device = logits.device if generator is None else generator.device
    uniform = torch.rand(logits.shape, generator=generator, device=noise_device, dtype=torch.float32).to(logits.device)
    gumbel = -torch.log(-torch.log(uniform.clamp(1e-10, 1.0 - 1e-7)))
    keys = logits.detach().float() + gumbel  # -inf stays -inf: padded frames are never drawn
    draw_order = torch.topk(keys, k).indices  # (K,) by decreasing key = draw order
    return SampledFrames(indices=draw_order.sort().values, draw_order=draw_order)


def frame_log_prob(
    logits: torch.Tensor,
    draw_order: torch.Tensor,
    form: Literal["paper", "plackett_luce"] = "paper",
) -> torch.Tensor:
    """Log-probability of selected frames, differentiable w.r.t. the logits `(T,)`.

    `"paper"`: sum_k log p(x_k) with p = softmax over all frames, exactly the paper's REINFORCE term (§3.5).
    `"plackett_luce"`: the exact probability of drawing `draw_order` sequentially without replacement,
    sum_k [l_{x_k} - logsumexp(l over frames not yet drawn)].
    """
    log_p = torch.log_softmax(logits.float(), dim=-1)  # (T,)
    if form == "paper":
        return log_p[draw_order].sum()
    if form != "plackett_luce":
        raise ValueError(f"`form` must be 'paper' or 'plackett_luce', got {form!r}.")
    chosen = logits.float()[draw_order]  # (K,)
    # log-sum-exp over the remaining set before draw k = log(total - sum of the k already drawn).
    total = torch.logsumexp(logits.float(), dim=-1)
    drawn_before = torch.cat([chosen.new_full((1,), float("-inf")), torch.logcumsumexp(chosen, dim=0)[:-1]])
    remaining = total + torch.log1p(-torch.exp(drawn_before - total).clamp(max=1 - 1e-6))
    return (chosen - remaining).sum()
