"""Approximate (key-frame-aligned) vs exact candidates on a long-GOP video (issue 6, figure 3; goal >= 3x
faster, with the timestamp error it costs reported).

The video: 30 fps, 10 minutes, a key frame every 300 frames (10 s), so an exact 1 fps candidate needs a walk
through up to 299 frames of its GOP, while a key frame decodes on its own. `candidate_seek_mode="approximate"`
moves each planned candidate to its nearest key frame (duplicates collapse), so it decodes fewer, cheaper
frames; the cost is the distance between the planned and the decoded times, printed below.

Each mode runs the real pipeline code (`open_video` + `plan_candidates` + `iter_frames_at`) in its own fresh
process, alternating, `--repeats` times. `--clip NAME` decodes as the pipeline would for that CLIP.

Run: python benchmarks/approximate_seek.py [--duration 600] [--gop 300] [--repeats 3] [--clip ViT-B-32]
"""

from __future__ import annotations

import os
import statistics

from _common import load_note, parser, run_isolated, setup, verdict, video
from candidate_decode import decode_size

_HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> None:
    p = parser(__doc__, clip=None)
    p.add_argument("--gop", type=int, default=300, help="Key-frame interval of the test video, in frames.")
    args = p.parse_args()
    setup(args)
    path = video(args.workdir, duration=args.duration, gop=args.gop)
    from transformers_msjoe.frame_features import plan_candidates
    from transformers_msjoe.video_io import open_video

    plan = plan_candidates(open_video(path), 1.0, 1024, "approximate")
    print(f"before: {load_note()}")
    runs: dict[str, list[dict]] = {"ours": [], "ours_approximate": []}
    for _ in range(args.repeats):
        for method, results in runs.items():
            results.append(run_isolated(os.path.join(_HERE, "_decode.py"), method, path, *decode_size(args.clip)))
    print(f"after: {load_note()}")
    for method, results in runs.items():
        seconds = [r["seconds"] for r in results]
        print(
            f"{method}: {results[0]['frames'][0]} frames decoded, min {min(seconds):.3f} s, median {statistics.median(seconds):.3f} s"
        )
    error = plan.timestamp_error
    print(
        f"video: {path} (GOP {args.gop} frames = {args.gop / 30:.1f} s); approximate mode keeps {len(plan.timestamps)} "
        f"distinct key-frame candidates for {plan.planned_candidates} planned 1 fps candidates"
    )
    print(
        f"timestamp error of the approximate mode: mean {error['mean_seconds']:.2f} s, max {error['max_seconds']:.2f} s"
    )
    ratio = min(r["seconds"] for r in runs["ours"]) / min(r["seconds"] for r in runs["ours_approximate"])
    print(
        f"approximate (key-frame-aligned) candidates, speed-up over exact, GOP {args.gop} frames (same run): {ratio:.1f}x {verdict(ratio, 3.0, at_least=True)}"
    )


if __name__ == "__main__":
    main()
