"""Sampler + selection vs the whole `answer()` with tiny models (issue 6, figure 7; goal <= 1 %).

`answer()` times its stages itself (`MSJoEVideoQAOutput.timings`); the `sampler` stage is the learned U-Net's
forward over the T candidates' similarity rows plus the top-K selection (`selection="msjoe"`). The video is the
10-minute 30 fps synthetic one (600 candidates), the models the tiny random ones with the generation budgets of
`msjoe demo`. Two settings, each `--repeats` times (median share):
  - first question of a video (feature cache off: candidates decoded and encoded) - the figure;
  - a later question (feature cache hit: decoding and CLIP encoding skipped), where the rest of `answer()` is
    smallest and the sampler's share largest.

Run: python benchmarks/sampler_overhead.py [--clip tiny|ViT-B-32] [--device cpu] [--repeats 3]
"""

from __future__ import annotations

import statistics
import tempfile

from _common import load_note, parser, setup, tiny_model, verdict, video

QUESTION = "What colour is the square that appears in the middle of the video?"
OPTIONS = ["A. red", "B. blue", "C. yellow", "D. green"]


def shares(model, path: str, repeats: int) -> tuple[list[float], dict[str, float]]:
    """Sampler share of the total per run, and the stage timings of the median run."""
    runs = [model.answer(path, QUESTION, OPTIONS, selection="msjoe").timings for _ in range(repeats)]
    ratios = [t["sampler"] / t["total"] for t in runs]
    return ratios, runs[sorted(range(repeats), key=ratios.__getitem__)[repeats // 2]]


def main() -> None:
    args = parser(__doc__, clip="tiny").parse_args()
    setup(args)
    path = video(args.workdir, duration=args.duration)
    model = tiny_model(args.workdir, args.clip, args.device)
    model.answer(path, QUESTION, OPTIONS, queries=["warm-up"])  # first-call costs (kernels, tokenizer) out of the way
    print(f"before: {load_note()}")
    model.set_feature_cache(False)
    cold, cold_timings = shares(model, path, args.repeats)
    with tempfile.TemporaryDirectory() as folder:
        model.set_feature_cache(folder)
        model.answer(path, QUESTION, OPTIONS)  # fills the cache
        warm, warm_timings = shares(model, path, args.repeats)
    print(f"after: {load_note()}")
    for name, timings in (("first question", cold_timings), ("later question", warm_timings)):
        print(f"{name} (median run): " + ", ".join(f"{k} {v:.3f}s" for k, v in timings.items()))
    warm_share = statistics.median(warm)
    print(
        f"later question (feature cache hit): sampler + selection = {100 * warm_share:.2f} % of answer() {verdict(100 * warm_share, 1.0, at_least=False).replace('x:', ' %:')}"
    )
    share = statistics.median(cold)
    print(
        f"sampler + selection share of the whole answer(), first question, tiny models (same run): {100 * share:.2f} % {verdict(100 * share, 1.0, at_least=False).replace('x:', ' %:')}"
    )


if __name__ == "__main__":
    main()
