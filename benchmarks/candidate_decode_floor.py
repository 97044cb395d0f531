"""Exact 1 fps candidates of a 30 fps, 10-minute video: MSJoE's seek-based batched decode vs the floor for
exact timestamps (issue 6, figure 2; goal <= 1.0x the floor's time).

The floor is the cheapest way measured to get the exact candidate frames in one in-order pass over the stream.
Where key frames are further apart than candidates (x264's default GOP is 250 frames, candidates are 30 frames
apart), every frame up to the last candidate has to be decoded; what a method can save is everything else: colour
conversion and copies of the frames it does not keep, and per-frame overhead. Two candidates for the floor, both
handed the candidates' frame indices for free (ours starts from the path), both with one FFmpeg thread as ours:
  - `indexed_floor`: torchcodec's own batch call, `VideoDecoder.get_frames_at(indices)` with every candidate
    index at once (its C++ loop walks the stream once and converts only the candidates to RGB);
  - `pyav_floor`: a bare FFmpeg decode loop through PyAV that keeps the decoded frames in YUV and converts only
    the candidates (skipped, and said so, when PyAV is not installed).
The ratio line uses the faster of the two in this run. Ours is `get_frames_played_at` in batches of
`clip_batch_size` from timestamps; when it misses the goal, the line before the ratio says how much of the gap is
ours vs `get_frames_at` (batching, timestamp lookup, opening the video and planning) and how much is torchcodec's
decode path vs the bare loop.

Same protocol as candidate_decode.py (fresh process per run, alternating, frames checked identical at native
resolution; `--clip NAME` decodes as the pipeline would for that CLIP). `--device` is ignored: decoding is
CPU-only.

Run: python benchmarks/candidate_decode_floor.py [--duration 600] [--repeats 3] [--clip ViT-B-32]
"""

from __future__ import annotations

import importlib.util

from _common import verdict
from candidate_decode import compare

FLOOR_NAMES = {"indexed_floor": "torchcodec get_frames_at(indices)", "pyav_floor": "PyAV decode loop"}


def main() -> None:
    floors = ["indexed_floor"]
    if importlib.util.find_spec("av") is not None:
        floors.append("pyav_floor")
    else:
        print("PyAV is not installed (`pip install av`): the floor is get_frames_at alone, and may not be the cheapest")
    results = compare(["ours", *floors], __doc__)
    t_ours, m_ours = results["ours"]
    for name in floors:
        t_floor, m_floor = results[name]
        print(
            f"{FLOOR_NAMES[name]}: {t_floor:.3f} s, peak memory growth {m_floor:.0f} MiB (ours {m_ours:.0f} MiB); "
            f"ours takes {t_ours / t_floor:.2f}x its time"
        )
    floor = min(floors, key=lambda name: results[name][0])
    ratio = t_ours / results[floor][0]
    if ratio > 1.0:
        why = f"ours is {t_ours / results['indexed_floor'][0]:.2f}x torchcodec's get_frames_at on the same frames"
        if "pyav_floor" in floors:
            why += (
                f", and get_frames_at is {results['indexed_floor'][0] / results['pyav_floor'][0]:.2f}x the bare PyAV "
                "decode loop"
            )
        print(f"goal missed: {why}")
    print(
        f"exact 1 fps candidates, time relative to the cheapest one-pass floor ({FLOOR_NAMES[floor]}, same run): "
        f"{ratio:.2f}x {verdict(ratio, 1.0, at_least=False)}"
    )


if __name__ == "__main__":
    main()
