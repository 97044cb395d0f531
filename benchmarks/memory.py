"""Peak RSS of a whole `answer()` on a 60-minute vs a 10-minute synthetic video (issue 6, figure 6; goal <= 1.2x).

Each run is a fresh process: it builds the tiny random models (MSJoE defaults: 1 fps candidates capped at
1024, CLIP batches of 64; the feature cache off, so the candidates are really decoded and encoded), records its
RSS, answers one question, and reports its peak RSS. Both videos are 30 fps 320x240 H.264 with planted events.
Printed: the whole-process peaks (the figure) and their growth over the RSS before `answer()` (what the
pipeline itself holds: decoded batches, embeddings, the decoder's frame index).

Run: python benchmarks/memory.py [--clip tiny|ViT-B-32|ViT-L-14/openai] [--device cpu] [--repeats 1]
"""

from __future__ import annotations

import json
import time

from _common import current_rss_mib, load_note, parser, peak_rss_mib, run_isolated, setup, verdict, video

QUESTION = "What colour is the square that appears in the middle of the video?"
OPTIONS = ["A. red", "B. blue", "C. yellow", "D. green"]


def worker(video_path: str, workdir: str, clip: str, device: str) -> None:
    """One measurement, in this fresh process; prints one JSON line."""
    from _common import tiny_model

    model = tiny_model(workdir, clip, device)
    model.set_feature_cache(False)
    rss_before = current_rss_mib()
    start = time.perf_counter()
    out = model.answer(video_path, QUESTION, OPTIONS)
    print(json.dumps({
        "seconds": time.perf_counter() - start, "rss_before_mib": rss_before, "peak_rss_mib": peak_rss_mib(),
        "candidates": int(out.candidate_timestamps.numel()), "timings": out.timings,
    }))  # fmt: skip


def main() -> None:
    p = parser(__doc__, clip="tiny", repeats=1)
    p.add_argument("--short", type=float, default=600.0, help="Length of the short video (s).")
    p.add_argument("--long", type=float, default=3600.0, help="Length of the long video (s).")
    p.add_argument("--worker", default=None, help=argparse_hidden())
    args = p.parse_args()
    setup(args)
    if args.worker:
        return worker(args.worker, args.workdir, args.clip, args.device)
    paths = {"short": video(args.workdir, duration=args.short), "long": video(args.workdir, duration=args.long)}
    print(f"before: {load_note()}")
    runs: dict[str, list[dict]] = {"short": [], "long": []}
    for _ in range(args.repeats):
        for name, path in paths.items():
            threads = ["--threads", str(args.threads)] if args.threads else []
            runs[name].append(
                run_isolated(
                    __file__,
                    "--worker",
                    path,
                    "--workdir",
                    args.workdir,
                    "--clip",
                    args.clip,
                    "--device",
                    args.device,
                    *threads,
                )
            )
    print(f"after: {load_note()}")
    peak = {name: max(r["peak_rss_mib"] for r in results) for name, results in runs.items()}
    growth = {name: max(r["peak_rss_mib"] - r["rss_before_mib"] for r in results) for name, results in runs.items()}
    for name, results in runs.items():
        print(
            f"{name} video {paths[name]} ({results[0]['candidates']} candidates): answer() {min(r['seconds'] for r in results):.1f} s, "
            f"peak RSS {peak[name]:.0f} MiB, growth during answer() {growth[name]:.0f} MiB"
        )
    print(f"growth during answer(), long / short: {growth['long'] / max(growth['short'], 1):.2f}x")
    ratio = peak["long"] / peak["short"]
    print(
        f"peak RSS of answer(), {args.long / 60:.0f}-min vs {args.short / 60:.0f}-min video (same run): {ratio:.2f}x {verdict(ratio, 1.2, at_least=False)}"
    )


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
