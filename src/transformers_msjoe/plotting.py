"""The selection figure: queries x time similarity heatmap, sampler weights with the chosen frames, thumbnails."""

from __future__ import annotations

import os
from typing import Any

import torch

from .modeling_outputs import MSJoEVideoQAOutput
from .video_io import VideoInput, open_video

__all__ = ["plot_selection"]


def plot_selection(
    output: MSJoEVideoQAOutput, video: VideoInput, path: str | os.PathLike, *, max_thumbnails: int = 16
) -> str:
    """Write a PNG explaining one selection and return its path.

    Rows: (1) CLIP similarity of each query over time (absent for strategies without CLIP), (2) the selection
    weights over candidates with the chosen key frames marked, (3) thumbnails of the key frames.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    times = output.candidate_timestamps.numpy()
    key_times = output.key_frame_timestamps
    shown = key_times[torch.linspace(0, len(key_times) - 1, min(max_thumbnails, len(key_times))).round().long()]
    thumbs = open_video(video).frames_at(shown, max_pixels=96 * 72)  # (n, 3, h, w) uint8

    has_sim = output.similarity is not None
    heights = ([1.2] if has_sim else []) + [1.0, 0.9]
    fig, axes = plt.subplots(
        len(heights), 1, figsize=(12, 2.3 * sum(heights) + 0.6), gridspec_kw={"height_ratios": heights}
    )
    axes = list(axes)
    span = (float(times[0]), float(times[-1])) if len(times) > 1 else (0.0, float(times[0]) + 1.0)
    if has_sim:
        _plot_similarity(fig, axes.pop(0), output, span)
    _plot_weights(axes.pop(0), output, span)
    _plot_thumbnails(axes.pop(0), thumbs, shown)
    answer = f"   ->   {output.option or output.answer[:60]}" if output.answer is not None else ""
    fig.suptitle(_printable(f"Q: {output.question[:100]}{answer}"), fontsize=11)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return os.fspath(path)


def _plot_similarity(fig: Any, ax: Any, output: MSJoEVideoQAOutput, span: tuple[float, float]) -> None:
    """Row 1: the queries x time similarity heatmap `(Q, T)`, one labelled row per query."""
    sim = output.similarity.numpy()
    image = ax.imshow(sim, aspect="auto", cmap="viridis", interpolation="nearest", extent=(*span, len(sim) - 0.5, -0.5))
    labels = [_printable(q if len(q) < 48 else q[:45] + "...") for q in output.queries]
    ax.set_yticks(range(len(output.queries)), labels, fontsize=8)
    fallback = " (fallback: question)" if output.queries_fallback else ""
    ax.set_title("CLIP similarity of each query to the candidate frames" + fallback, fontsize=10)
    fig.colorbar(image, ax=ax, pad=0.01, fraction=0.02)


def _plot_weights(ax: Any, output: MSJoEVideoQAOutput, span: tuple[float, float]) -> None:
    """Row 2: the strategy's per-candidate weights `(T,)` with the key frames as red lines."""
    times, key_times = output.candidate_timestamps.numpy(), output.key_frame_timestamps
    if output.frame_weights is not None:
        label = f"selection weights ({output.selection})"
        ax.plot(times, output.frame_weights.numpy(), color="tab:blue", lw=1.0, label=label)
    for t in key_times.tolist():
        ax.axvline(t, color="tab:red", alpha=0.6, lw=0.8)
    ax.set_xlim(*span)
    ax.set_xlabel("time (s)")
    ax.set_title(f"{len(key_times)} key frames (red) among {len(times)} candidates", fontsize=10)
    ax.legend(loc="upper right", fontsize=8)


def _plot_thumbnails(ax: Any, thumbs: torch.Tensor, shown: torch.Tensor) -> None:
    """Row 3: key-frame thumbnails `(n, 3, h, w)` side by side, labelled with their times `(n,)`."""
    strip = torch.cat([torch.nn.functional.pad(t, (2, 2, 2, 2), value=255) for t in thumbs], dim=-1)  # (3, h, n*w)
    ax.imshow(strip.permute(1, 2, 0).numpy())
    ticks = [(i + 0.5) * strip.shape[-1] / len(thumbs) for i in range(len(thumbs))]
    ax.set_xticks(ticks, [f"{t:.0f}s" for t in shown.tolist()], fontsize=7)
    ax.set_yticks([])
    ax.set_title("key frames", fontsize=10)


def _printable(text: str) -> str:
    """Model output as literal figure text: control characters (no font has a glyph) become U+FFFD, and `$` is
    escaped, or matplotlib would parse the text between two `$` as mathtext (and fail on random model output)."""
    return "".join(c if c.isprintable() else "\ufffd" for c in text).replace("$", r"\$")
