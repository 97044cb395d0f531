"""Memory of a whole `answer()` on a 60-minute vs a 10-minute synthetic video (issue 6, figure 6; goal <= 1.2x).

The figure is the memory attributable to the video: the growth of the process's RSS during `answer()`, from
the RSS after the models are loaded to the peak during the call (the peak is reset just before the call, through
`/proc/self/clear_refs`, so that loading does not count). The whole-process peak, about a GiB of torch and models
that no video changes, is printed too, but a ratio of those would hide a pipeline that holds every candidate.

Each run is a fresh process: it builds the tiny random models (the feature cache off, so the candidates are really
decoded and encoded), records its RSS, answers one question and reports its peak. Both videos are H.264 with
planted events, `--size` (default 640x360) at `--video-fps` (default 30). `--max-candidate-frames` (default
4096) is above both videos' candidate counts at 1 fps (600 and 3600), so the long video really has 6x the
candidates: a pipeline whose memory grows with the number of candidates fails the goal.

Negative check: `--unbounded-batch` sets `clip_batch_size` to the frame cap (>= T), so every candidate is decoded
in one call and encoded as one batch, which is what a non-streaming implementation does; the ratio must then
miss the goal. `--video-fps 2` keeps that check cheap (the same candidates, 15x fewer frames to decode).

Run: python benchmarks/memory.py [--clip tiny|ViT-B-32|ViT-L-14/openai] [--device cpu] [--repeats 1]
     python benchmarks/memory.py --unbounded-batch --video-fps 2    # must print "MISSED"
"""

from __future__ import annotations

import argparse
import json
import time

from _common import (
    current_rss_mib,
    load_note,
    parser,
    peak_rss_mib,
    peak_rss_since_reset_mib,
    reset_peak_rss,
    run_isolated,
    setup,
    verdict,
    video,
)

PREPARE = "prepare"  # `--worker prepare`: only save the tiny models, so that no measured run pays for it
QUESTION = "What colour is the square that appears in the middle of the video?"
OPTIONS = ["A. red", "B. blue", "C. yellow", "D. green"]


def worker(args: argparse.Namespace) -> None:
    """One measurement, in this fresh process; prints one JSON line."""
    from _common import tiny_model

    batch_size = args.max_candidate_frames if args.unbounded_batch else args.batch_size
    model = tiny_model(
        args.workdir, args.clip, args.device, max_candidate_frames=args.max_candidate_frames, clip_batch_size=batch_size
    )
    if args.worker == PREPARE:  # the first call writes the tiny models to the workdir: not part of any measurement
        return print(json.dumps({"prepared": args.workdir}))
    model.set_feature_cache(False)
    rss_before = current_rss_mib()
    peak_reset = reset_peak_rss()
    start = time.perf_counter()
    out = model.answer(args.worker, QUESTION, OPTIONS)
    seconds = time.perf_counter() - start
    peak_during = peak_rss_since_reset_mib() if peak_reset else peak_rss_mib()
    print(json.dumps({
        "seconds": seconds, "rss_before_mib": rss_before, "peak_during_mib": peak_during, "peak_reset": peak_reset,
        "peak_rss_mib": peak_rss_mib(), "candidates": int(out.candidate_timestamps.numel()),
        "batch_size": batch_size, "timings": out.timings,
    }))  # fmt: skip


def main() -> None:
    from transformers_msjoe.configuration_msjoe import MSJoEConfig

    p = parser(__doc__, clip="tiny", repeats=1)
    p.add_argument("--short", type=float, default=600.0, help="Length of the short video (s).")
    p.add_argument("--long", type=float, default=3600.0, help="Length of the long video (s).")
    p.add_argument("--size", default="640x360", help="Frame size of both videos, WIDTHxHEIGHT (default 640x360).")
    p.add_argument("--video-fps", type=float, default=30.0, help="Frame rate of both videos (default 30).")
    p.add_argument(
        "--max-candidate-frames", type=int, default=4096,
        help="MSJoEConfig.max_candidate_frames: keep it above the long video's candidate count (3600 at 1 fps).",
    )  # fmt: skip
    p.add_argument("--batch-size", type=int, default=MSJoEConfig.clip_batch_size, help="MSJoEConfig.clip_batch_size.")
    p.add_argument(
        "--unbounded-batch", action="store_true",
        help="Negative check: clip_batch_size = the frame cap, i.e. all candidates decoded and encoded at once.",
    )  # fmt: skip
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    setup(args)
    if args.worker:
        return worker(args)
    width, height = (int(n) for n in args.size.lower().split("x"))
    paths = {
        name: video(args.workdir, duration=seconds, fps=args.video_fps, size=(width, height))
        for name, seconds in (("short", args.short), ("long", args.long))
    }
    passed = ["--workdir", args.workdir, "--clip", args.clip, "--device", args.device]
    passed += ["--max-candidate-frames", str(args.max_candidate_frames), "--batch-size", str(args.batch_size)]
    passed += ["--threads", str(args.threads)] if args.threads else []
    passed += ["--unbounded-batch"] if args.unbounded_batch else []
    run_isolated(__file__, "--worker", PREPARE, *passed)
    print(f"before: {load_note()}")
    runs: dict[str, list[dict]] = {"short": [], "long": []}
    for _ in range(args.repeats):
        for name, path in paths.items():
            runs[name].append(run_isolated(__file__, "--worker", path, *passed))
    print(f"after: {load_note()}")
    if not all(r["peak_reset"] for results in runs.values() for r in results):
        print("warning: /proc/self/clear_refs is not writable here: the peak includes model loading")
    growth = {name: max(r["peak_during_mib"] - r["rss_before_mib"] for r in results) for name, results in runs.items()}
    for name, results in runs.items():
        print(
            f"{name} video {paths[name]} ({results[0]['candidates']} candidates, CLIP batch {results[0]['batch_size']}): "
            f"answer() {min(r['seconds'] for r in results):.1f} s, RSS after loading the models "
            f"{results[0]['rss_before_mib']:.0f} MiB, whole-process peak {max(r['peak_rss_mib'] for r in results):.0f} MiB, "
            f"growth during answer() {growth[name]:.0f} MiB"
        )
    if runs["long"][0]["candidates"] <= runs["short"][0]["candidates"]:
        print("warning: the frame cap gives both videos the same number of candidates: raise --max-candidate-frames")
    mode = "all candidates at once (--unbounded-batch)" if args.unbounded_batch else "streaming"
    ratio = growth["long"] / max(growth["short"], 1.0)
    print(
        f"memory growth during answer(), {args.long / 60:g}-min vs {args.short / 60:g}-min video, {mode} "
        f"(same run): {ratio:.2f}x {verdict(ratio, 1.2, at_least=False)}"
    )


if __name__ == "__main__":
    main()
