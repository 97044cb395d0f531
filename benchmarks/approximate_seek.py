"""Approximate (key-frame-aligned) vs exact candidates on a long-GOP video (issue 6, figure 3; goal >= 3x
faster, with the timestamp error it costs reported).

The video: 30 fps, 10 minutes, a key frame every 300 frames (10 s), so an exact 1 fps candidate needs a walk
through up to 299 frames of its GOP, while a key frame decodes on its own. `candidate_seek_mode="approximate"`
moves each planned candidate to its nearest key frame (duplicates collapse), so it decodes fewer, cheaper
frames; the cost is the distance between the planned and the decoded times, printed below.

The headline ratio (the issue's figure, printed last) compares the two modes as a user meets them: exact mode's
T0 planned candidates (`MSJoEConfig.candidate_fps`, capped at `max_candidate_frames`) vs the approximate mode's
T' <= T0 distinct key frames. Most of it can come from decoding fewer candidates rather than from cheaper ones, so
two lines before it separate the two: seconds per candidate in each mode, and exact mode run with the same number
T' of candidates (evenly spaced; `--cap T'`).

Each run is the real pipeline code (`open_video` + `plan_candidates` + `iter_frames_at`) in its own fresh process,
alternating, `--repeats` times. `--clip NAME` decodes as the pipeline would for that CLIP. `--device` is ignored:
decoding is CPU-only.

Run: python benchmarks/approximate_seek.py [--duration 600] [--gop 300] [--repeats 3] [--clip ViT-B-32]
"""

from __future__ import annotations

import os
import statistics

from _common import load_note, parser, run_isolated, setup, verdict, video
from candidate_decode import decode_size, describe_video, note_cpu_only

_HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> None:
    p = parser(__doc__, clip=None)
    p.add_argument("--gop", type=int, default=300, help="Key-frame interval of the test video, in frames.")
    args = p.parse_args()
    setup(args)
    note_cpu_only(args)
    path = video(args.workdir, duration=args.duration, gop=args.gop)
    from transformers_msjoe.configuration_msjoe import MSJoEConfig
    from transformers_msjoe.frame_features import plan_candidates
    from transformers_msjoe.video_io import open_video

    reader = open_video(path)
    fps, cap = MSJoEConfig.candidate_fps, MSJoEConfig.max_candidate_frames
    plan = plan_candidates(reader, fps, cap, "approximate")
    same_count = len(plan.timestamps)
    size = decode_size(args.clip, path)
    worker = os.path.join(_HERE, "_decode.py")
    commands = {
        "exact": ("ours", "--fps", str(fps), "--cap", str(cap)),
        "approximate": ("ours_approximate", "--fps", str(fps), "--cap", str(cap)),
        f"exact, {same_count} candidates": ("ours", "--fps", str(fps), "--cap", str(same_count)),
    }
    print(f"before: {load_note()}")
    runs: dict[str, list[dict]] = {name: [] for name in commands}
    for _ in range(args.repeats):
        for name, (method, *options) in commands.items():
            runs[name].append(run_isolated(worker, method, path, *options, *size))
    print(f"after: {load_note()}")
    best: dict[str, float] = {}
    for name, results in runs.items():
        seconds = [r["seconds"] for r in results]
        best[name], candidates = min(seconds), results[0]["frames"][0]
        print(
            f"{name}: {candidates} candidates decoded, min {min(seconds):.3f} s, median {statistics.median(seconds):.3f} s, "
            f"{1000 * min(seconds) / candidates:.1f} ms per candidate"
        )
    error, gop_seconds = plan.timestamp_error, args.gop / reader.info.average_fps
    print(
        f"video: {describe_video(path)}, GOP {args.gop} frames = {gop_seconds:.1f} s; the approximate mode keeps "
        f"{same_count} distinct key-frame candidates for {plan.planned_candidates} planned candidates"
    )
    print(
        f"timestamp error of the approximate mode: mean {error['mean_seconds']:.2f} s, max {error['max_seconds']:.2f} s"
    )
    exact_per = best["exact"] / runs["exact"][0]["frames"][0]
    approximate_per = best["approximate"] / same_count
    print(
        f"per candidate: exact {1000 * exact_per:.1f} ms vs approximate {1000 * approximate_per:.1f} ms "
        f"({exact_per / approximate_per:.1f}x); same number of candidates ({same_count}): exact "
        f"{best[f'exact, {same_count} candidates']:.3f} s vs approximate {best['approximate']:.3f} s "
        f"({best[f'exact, {same_count} candidates'] / best['approximate']:.1f}x)"
    )
    ratio = best["exact"] / best["approximate"]
    print(
        f"approximate (key-frame-aligned) candidates, speed-up over exact ({runs['exact'][0]['frames'][0]} vs "
        f"{same_count} candidates), GOP {args.gop} frames (same run): {ratio:.1f}x {verdict(ratio, 3.0, at_least=True)}"
    )


if __name__ == "__main__":
    main()
