"""Frame selectors on synthetic planted-signal similarity curves, at the same budgets K.

Each trial is one CLIP-like cosine curve over T candidates: a 0.20 level, a slow drift, white noise of
std `noise`, and `events` planted spans (4-16 frames each) raised by `signal` = 0.05. Grid: noise
{0.01, 0.025, 0.05} (signal/noise 5, 2, 1) x events {1, 3, 8} x `--seeds` seeds. Every strategy sees the
same curves (qframe draws with a generator seeded per trial), at K in {8, 16, 32, 64}.

Metrics, averaged over trials:
  recall@K   planted frames picked / min(K, planted frames)   (1.0 is reachable at every K)
  events@K   fraction of planted events with at least one pick
  cover@K    fraction of the K equal time bins holding at least one pick (uniform = 1.0)

The learned `msjoe` selector is left out by default: no trained sampler exists here. `--with-untrained-msjoe`
adds `msjoe-untrained`, MSJoE's U-Net at its default size with random initial weights: a floor for what an
untrained sampler does, NOT the trained MSJoE selector (its CPU forward makes the run ~10x slower).

Run: python benchmarks/selector_recall.py [--plot PNG] [--docs-figure PNG] [--with-untrained-msjoe]. The last line
is each strategy's mean recall@32 relative to uniform on the same curves.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict
from dataclasses import dataclass

import torch

from transformers_msjoe import MSJoEFrameSampler, MSJoESamplerConfig
from transformers_msjoe.selection import FrameSelector, build_selector

BUDGETS = (8, 16, 32, 64)
NOISE_LEVELS = (0.01, 0.025, 0.05)
EVENT_COUNTS = (1, 3, 8)
SIGNAL = 0.05
EVENT_LENGTHS = (4, 16)  # shortest and longest planted span, frames
EVENT_GAP = 8  # frames kept clear around each planted span
MAX_PLACEMENT_TRIES = 10_000
BASELINES = ("uniform", "clip_topk", "bolt", "qframe", "aks")
UNTRAINED = "msjoe-untrained"


@dataclass
class Trial:
    similarity: torch.Tensor  # (1, T) cosine-like
    planted: torch.Tensor  # (T,) bool
    events: list[tuple[int, int]]  # [start, end) frame spans
    noise: float
    seed: int


def min_frames(num_events: int) -> int:
    """Fewest candidates T for which `num_events` spans always fit, whatever the earlier ones' positions.

    A placed span of length <= L_max rules out fewer than 2 * L_max + 2 * EVENT_GAP starts of the next one,
    so with T - L_max starts there is always a free one when T exceeds this bound.
    """
    longest = EVENT_LENGTHS[1]
    return (num_events - 1) * (2 * longest + 2 * EVENT_GAP - 1) + longest + 1


def planted_trial(num_frames: int, num_events: int, noise: float, seed: int) -> Trial:
    """One synthetic query-frame similarity curve with `num_events` non-overlapping planted spans."""
    if num_frames < min_frames(num_events):
        raise ValueError(
            f"{num_events} planted events need at least {min_frames(num_events)} frames, got {num_frames}."
        )
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(num_frames, dtype=torch.float64) / num_frames
    phases = torch.rand(3, generator=gen, dtype=torch.float64) * 6.283
    drift = sum(0.004 * torch.sin(6.283 * (f + 1) * t + p) for f, p in enumerate(phases))  # (T,) slow scene drift
    curve = 0.20 + drift + noise * torch.randn(num_frames, generator=gen, dtype=torch.float64)
    planted = torch.zeros(num_frames, dtype=torch.bool)
    events: list[tuple[int, int]] = []
    tries = 0
    while len(events) < num_events:
        tries += 1
        if tries > MAX_PLACEMENT_TRIES:  # unreachable above min_frames (a free start always exists); a guard
            raise RuntimeError(
                f"Placed only {len(events)} of {num_events} events in {num_frames} frames; use more frames."
            )
        length = int(torch.randint(EVENT_LENGTHS[0], EVENT_LENGTHS[1] + 1, (1,), generator=gen))
        start = int(torch.randint(0, num_frames - length, (1,), generator=gen))
        if planted[max(0, start - EVENT_GAP) : start + length + EVENT_GAP].any():
            continue  # keep events apart so "events hit" is well defined
        planted[start : start + length] = True
        events.append((start, start + length))
    curve[planted] += SIGNAL
    return Trial(curve[None].float(), planted, sorted(events), noise, seed)


def trial_grid(num_frames: int, seeds: int) -> list[Trial]:
    return [
        planted_trial(num_frames, events, noise, seed=1000 * i + s)
        for i, (noise, events) in enumerate((n, e) for n in NOISE_LEVELS for e in EVENT_COUNTS)
        for s in range(seeds)
    ]


def metrics(picks: torch.Tensor, trial: Trial, k: int) -> dict[str, float]:
    """recall, events hit and temporal coverage of one selection `(K,)`."""
    num_frames = trial.planted.numel()
    hits = int(trial.planted[picks].sum())
    recall = hits / min(k, int(trial.planted.sum()))
    events = sum(bool(((picks >= s) & (picks < e)).any()) for s, e in trial.events) / len(trial.events)
    bins = torch.div(picks * k, num_frames, rounding_mode="floor").unique()
    return {"recall": recall, "events": events, "cover": len(bins) / k}


class OncePerCurve(torch.nn.Module):
    """Runs the wrapped U-Net once per curve: its logits do not depend on K, and a forward costs ~0.1 s on CPU."""

    def __init__(self, sampler: MSJoEFrameSampler):
        super().__init__()
        self.sampler = sampler
        self._last: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None)

    def forward(self, similarity: torch.Tensor) -> torch.Tensor:
        if self._last[0] is not similarity:  # the selector passes the same tensor object for every K
            self._last = (similarity, self.sampler(similarity))
        return self._last[1]


def build_strategies(with_untrained: bool) -> dict[str, FrameSelector]:
    strategies = {name: build_selector(name) for name in BASELINES}
    if with_untrained:
        torch.manual_seed(0)
        sampler = MSJoEFrameSampler(MSJoESamplerConfig()).eval()  # default size, random init: the floor, not MSJoE
        strategies[UNTRAINED] = build_selector("msjoe", sampler=OncePerCurve(sampler))
    return strategies


@torch.no_grad()
def run(trials: list[Trial], strategies: dict[str, FrameSelector]) -> tuple[dict, dict]:
    """scores[(strategy, k, metric)] -> list over trials; seconds[strategy] -> total select() time."""
    scores: dict[tuple[str, int, str], list[float]] = defaultdict(list)
    seconds: dict[str, float] = defaultdict(float)
    for trial in trials:
        for name, selector in strategies.items():
            for k in BUDGETS:
                gen = torch.Generator().manual_seed(trial.seed)
                start = time.perf_counter()
                picks = selector.select(trial.similarity, trial.planted.numel(), k, generator=gen).indices
                seconds[name] += time.perf_counter() - start
                for metric, value in metrics(picks, trial, k).items():
                    scores[(name, k, metric)].append(value)
                scores[(name, k, f"recall_noise{trial.noise}")].append(scores[(name, k, "recall")][-1])
    return scores, seconds


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def print_tables(scores: dict, seconds: dict, strategies: list[str], num_trials: int) -> None:
    cols = [(m, k) for m in ("recall", "events", "cover") for k in BUDGETS]
    header = f"{'strategy':<16}" + "".join(f"{m + '@' + str(k):>11}" for m, k in cols) + f"{'ms/curve':>10}"
    print(header)
    print("-" * len(header))
    for name in strategies:
        row = "".join(f"{mean(scores[(name, k, m)]):>11.3f}" for m, k in cols)
        print(f"{name:<16}{row}{1000 * seconds[name] / num_trials:>10.2f}")
    print(f"(ms/curve: select() time for all {len(BUDGETS)} budgets on one curve of T candidates, CPU)")
    print()
    print("recall@32 by noise level (signal 0.05):")
    print(f"{'strategy':<16}" + "".join(f"{'noise ' + str(n):>14}" for n in NOISE_LEVELS))
    for name in strategies:
        print(f"{name:<16}" + "".join(f"{mean(scores[(name, 32, f'recall_noise{n}')]):>14.3f}" for n in NOISE_LEVELS))


def plot_curves(scores: dict, strategies: list[str], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    titles = {
        "recall": "recall@K of planted frames",
        "events": "planted events hit",
        "cover": "temporal coverage (K bins)",
    }
    for ax, metric in zip(axes, titles):
        for name in strategies:
            style = ":" if name == UNTRAINED else "-"
            ax.plot(BUDGETS, [mean(scores[(name, k, metric)]) for k in BUDGETS], style, marker="o", label=name)
        ax.set_xscale("log", base=2)
        ax.set_xticks(BUDGETS, [str(k) for k in BUDGETS])
        ax.set_xlabel("K (key frames)")
        ax.set_ylim(0, 1.02)
        ax.set_title(titles[metric], fontsize=10)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(strategies), fontsize=9, frameon=False)
    fig.suptitle("Frame selectors on synthetic planted-signal similarity curves (same curves, same K)", fontsize=11)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_example(path: str, k: int = 16) -> None:
    """The docs figure: one planted curve and what each training-free strategy picks from it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trial = planted_trial(300, 3, 0.02, seed=7)
    strategies = {name: build_selector(name) for name in BASELINES}
    fig, axes = plt.subplots(2, 1, figsize=(11, 5.2), gridspec_kw={"height_ratios": [1.3, 1.6]}, sharex=True)
    frames = torch.arange(trial.planted.numel())
    axes[0].plot(frames, trial.similarity[0], lw=0.9, color="tab:gray", label="query-frame similarity")
    for s, e in trial.events:
        for ax in axes:
            ax.axvspan(s - 0.5, e - 0.5, color="tab:green", alpha=0.18, lw=0)
    axes[0].set_ylabel("cosine")
    axes[0].set_title(
        f"One synthetic similarity curve (T={trial.planted.numel()}, 3 planted events in green), K={k}", fontsize=10
    )
    axes[0].legend(loc="upper right", fontsize=8)
    for row, selector in enumerate(strategies.values()):
        picks = selector.select(
            trial.similarity, trial.planted.numel(), k, generator=torch.Generator().manual_seed(0)
        ).indices
        hits = trial.planted[picks]
        axes[1].scatter(picks[~hits], [row] * int((~hits).sum()), marker="|", s=160, color="tab:blue")
        axes[1].scatter(picks[hits], [row] * int(hits.sum()), marker="|", s=160, color="tab:red")
    axes[1].set_yticks(range(len(strategies)), list(strategies))
    axes[1].set_ylim(len(strategies) - 0.5, -0.5)
    axes[1].set_xlabel("candidate frame")
    axes[1].set_title("picks per strategy (red: inside a planted event)", fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--frames", type=int, default=512, help="Candidates T per curve (default 512, ~8.5 min at 1 fps)."
    )
    parser.add_argument("--seeds", type=int, default=12, help="Curves per (noise, events) cell (default 12).")
    parser.add_argument("--plot", default="benchmarks/results/selectors.png", help="Where the metric-vs-K plot goes.")
    parser.add_argument("--docs-figure", default=None, metavar="PNG", help="Also write the docs example figure here.")
    parser.add_argument(
        "--with-untrained-msjoe",
        action="store_true",
        help=f"Add {UNTRAINED}: the U-Net with random weights, as a floor.",
    )
    args = parser.parse_args()
    needed = min_frames(max(EVENT_COUNTS))
    if args.frames < needed:
        parser.error(
            f"--frames {args.frames} is too few for {max(EVENT_COUNTS)} planted events; use --frames {needed} or more."
        )
    if args.seeds < 1:
        parser.error(f"--seeds must be at least 1, got {args.seeds}.")

    start = time.perf_counter()
    trials = trial_grid(args.frames, args.seeds)
    strategies = build_strategies(with_untrained=args.with_untrained_msjoe)
    scores, seconds = run(trials, strategies)
    print(
        f"{len(trials)} curves (T={args.frames}; noise {NOISE_LEVELS} x events {EVENT_COUNTS} x {args.seeds} seeds), "
        f"signal {SIGNAL}, K in {BUDGETS}"
    )
    if args.with_untrained_msjoe:
        print(
            f"{UNTRAINED}: MSJoE's U-Net with RANDOM weights (no trained sampler here) -- a floor, not MSJoE's result."
        )
    else:
        print(
            "msjoe: left out, no trained sampler here (--with-untrained-msjoe adds the random-weight U-Net as a floor)."
        )
    print()
    print_tables(scores, seconds, list(strategies), len(trials))
    plot_curves(scores, list(strategies), args.plot)
    print(f"\nplot: {args.plot}")
    if args.docs_figure:
        plot_example(args.docs_figure)
        print(f"docs figure: {args.docs_figure}")
    print(f"total {time.perf_counter() - start:.1f} s")
    base = mean(scores[("uniform", 32, "recall")])
    ratios = ", ".join(
        f"{name} {mean(scores[(name, 32, 'recall')]) / base:.2f}x" for name in strategies if name != "uniform"
    )
    print(f"mean recall@32 relative to uniform ({base:.3f}), same curves: {ratios}")


if __name__ == "__main__":
    main()
