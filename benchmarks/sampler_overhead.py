"""Sampler + selection vs the whole `answer()` with tiny models (issue 6, figure 7; goal <= 1 %).

`answer()` times its stages itself (`MSJoEVideoQAOutput.timings`); the `sampler` stage is the selection strategy
over the T candidates' similarity rows: for `--selection msjoe` (the default) the learned U-Net's forward plus the
top-K; any other strategy (`--selection bolt`, ...) is measured the same way. The video is the
10-minute 30 fps synthetic one (600 candidates), the models the tiny random ones with the generation budgets of
`msjoe demo`. Two settings, each `--repeats` times (median share):
  - first question of a video (feature cache off: candidates decoded and encoded) - the figure;
  - a later question (feature cache hit: decoding and CLIP encoding skipped), where the rest of `answer()` is
    smallest and the sampler's share largest.

The user's feature cache is never touched: the model starts with it off, and the later-question setting uses a
temporary folder.

Run: python benchmarks/sampler_overhead.py [--selection msjoe|uniform|clip_topk|bolt|qframe|aks]
     [--clip tiny|ViT-B-32] [--device cpu] [--repeats 3]
"""

from __future__ import annotations

import statistics
import tempfile

from _common import load_note, parser, setup, tiny_model, verdict, video

QUESTION = "What colour is the square that appears in the middle of the video?"
OPTIONS = ["A. red", "B. blue", "C. yellow", "D. green"]


def shares(model, path: str, repeats: int, selection: str) -> tuple[list[float], dict[str, float]]:
    """Selection share of the total per run, and the stage timings of the median run."""
    runs = [model.answer(path, QUESTION, OPTIONS, selection=selection).timings for _ in range(repeats)]
    ratios = [t["sampler"] / t["total"] for t in runs]
    return ratios, runs[sorted(range(repeats), key=ratios.__getitem__)[repeats // 2]]


def main() -> None:
    cli = parser(__doc__, clip="tiny")
    cli.add_argument("--selection", default="msjoe", help="Frame-selection strategy to measure (default: msjoe).")
    args = cli.parse_args()
    setup(args)
    path = video(args.workdir, duration=args.duration)
    model = tiny_model(args.workdir, args.clip, args.device)
    model.set_feature_cache(False)  # before any answer(): the warm-up must not fill (or hit) the user's cache
    # first-call costs (kernels, tokenizer) out of the way
    model.answer(path, QUESTION, OPTIONS, queries=["warm-up"], selection=args.selection)
    print(f"before: {load_note()}; selection {args.selection}")
    cold, cold_timings = shares(model, path, args.repeats, args.selection)
    with tempfile.TemporaryDirectory() as folder:
        model.set_feature_cache(folder)
        model.answer(path, QUESTION, OPTIONS, selection=args.selection)  # fills the cache
        warm, warm_timings = shares(model, path, args.repeats, args.selection)
    print(f"after: {load_note()}")
    for name, timings in (("first question", cold_timings), ("later question", warm_timings)):
        print(f"{name} (median run): " + ", ".join(f"{k} {v:.3f}s" for k, v in timings.items()))
    warm_share = statistics.median(warm)
    print(
        f"later question (feature cache hit): {args.selection} selection = {100 * warm_share:.2f} % of answer() {verdict(100 * warm_share, 1.0, at_least=False).replace('x:', ' %:')}"
    )
    share = statistics.median(cold)
    print(
        f"{args.selection} selection share of the whole answer(), first question, tiny models (same run): {100 * share:.2f} % {verdict(100 * share, 1.0, at_least=False).replace('x:', ' %:')}"
    )


if __name__ == "__main__":
    main()
