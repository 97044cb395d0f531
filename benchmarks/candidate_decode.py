"""Exact 1 fps candidates of a 30 fps, 10-minute video: MSJoE's seek-based batched decode vs the common
practice of decoding every frame into one tensor and then subsampling (issue 6, figure 1; goal >= 5x faster,
memory O(candidates) not O(frames)).

Each method runs in its own fresh process (so that its peak RSS is its own), alternating, `--repeats` times.
Peak memory is reported as the growth of the process's RSS over the run (peak RSS minus RSS before decoding).
Candidates follow `MSJoEConfig`'s defaults (`candidate_fps`, `max_candidate_frames`). By default frames are
decoded at native resolution and the methods' frames are checked to be identical. `--clip NAME` decodes as the
pipeline would for that CLIP (`frame_features.candidate_decode_size`: natively for frames up to 4x the CLIP's
decode area, which is the case for 320x240, else downscaled inside FFmpeg; the baseline then resizes its
subsampled frames in torch).

`--device` is accepted for a uniform command line and ignored: candidate decoding is CPU-only, in the pipeline
(torchcodec's CPU decoder) as here.

Run: python benchmarks/candidate_decode.py [--duration 600] [--repeats 3] [--clip ViT-B-32]
"""

from __future__ import annotations

import argparse
import os
import statistics

from _common import load_note, parser, run_isolated, setup, verdict, video

_HERE = os.path.dirname(os.path.abspath(__file__))
BASELINE = "decode_all"


def note_cpu_only(args: argparse.Namespace) -> None:
    """Say that `--device` does not apply (the shared parser offers it to every benchmark)."""
    if args.device != "cpu":
        print(f"--device {args.device} ignored: candidate decoding is CPU-only (torchcodec's CPU decoder)")


def decode_size(clip: str | None, path: str) -> list[str]:
    """`--size H W` for the worker when the pipeline would downscale the video's frames in FFmpeg for `clip`, else
    nothing (native)."""
    if not clip:
        return []
    from transformers_msjoe.clip_scoring import MSJoECLIPScorer
    from transformers_msjoe.configuration_msjoe import parse_clip_identity
    from transformers_msjoe.frame_features import candidate_decode_size
    from transformers_msjoe.video_io import open_video

    info = open_video(path).info
    name, _ = parse_clip_identity(clip)
    clip_size = MSJoECLIPScorer(name, None).decode_size(info.height, info.width)  # preprocessing: random weights do
    size = candidate_decode_size(info.height, info.width, clip_size)
    print(
        f"--clip {clip}: decode size {clip_size} for {info.width}x{info.height} frames; the pipeline decodes "
        f"{'natively' if size is None else f'at {size}'}"
    )
    return [] if size is None else ["--size", str(size[0]), str(size[1])]


def describe_video(path: str) -> str:
    """The test video as the decoder sees it (frames, fps, size), not as it was asked to be rendered."""
    from transformers_msjoe.video_io import open_video

    info = open_video(path).info
    return f"{path} ({info.num_frames} frames at {info.average_fps:g} fps, {info.width}x{info.height})"


def compare(methods: list[str], description: str) -> dict[str, tuple[float, float]]:
    """Run `methods` (the first is ours) alternating, each in a fresh process; per method (min seconds, max peak
    memory growth MiB). At native resolution every method's frames must be identical to ours."""
    args = parser(description, clip=None).parse_args()
    setup(args)
    note_cpu_only(args)
    path = video(args.workdir, duration=args.duration)
    size = decode_size(args.clip, path)
    print(f"before: {load_note()}")
    runs: dict[str, list[dict]] = {method: [] for method in methods}
    for _ in range(args.repeats):
        for method, results in runs.items():
            results.append(run_isolated(os.path.join(_HERE, "_decode.py"), method, path, *size))
    for method, results in runs.items():
        seconds = [r["seconds"] for r in results]
        growth = [r["peak_rss_mib"] - r["rss_before_mib"] for r in results]
        print(
            f"{method}: min {min(seconds):.3f} s, median {statistics.median(seconds):.3f} s; peak RSS growth "
            f"{max(growth):.0f} MiB (peak RSS {max(r['peak_rss_mib'] for r in results):.0f} MiB); frames "
            f"{results[0]['frames']} = {results[0]['frames_mib']:.0f} MiB"
        )
    if not size:
        same = all(runs[m][0]["checksum"] == runs[methods[0]][0]["checksum"] for m in methods)
        print(f"identical frames: {same}")
        if not same:
            raise SystemExit("the methods decoded different frames: the comparison is void")
    print(f"after: {load_note()}")
    print(f"video: {describe_video(path)}; {runs[methods[0]][0]['frames'][0]} candidates")
    return {
        method: (min(r["seconds"] for r in results), max(r["peak_rss_mib"] - r["rss_before_mib"] for r in results))
        for method, results in runs.items()
    }


def main() -> None:
    results = compare(["ours", BASELINE], __doc__)
    (t_ours, m_ours), (t_base, m_base) = results["ours"], results[BASELINE]
    print(
        f"peak memory growth: ours {m_ours:.0f} MiB vs decode-all {m_base:.0f} MiB ({m_base / max(m_ours, 1):.1f}x less)"
    )
    ratio = t_base / t_ours
    print(
        f"exact 1 fps candidates, speed-up over decode-all-then-subsample (same run): {ratio:.1f}x {verdict(ratio, 5.0, at_least=True)}"
    )


if __name__ == "__main__":
    main()
