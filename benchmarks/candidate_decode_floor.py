"""Exact 1 fps candidates of a 30 fps, 10-minute video: MSJoE's seek-based batched decode vs the floor for
exact timestamps, one streaming pass over every frame keeping only the candidates (issue 6, figure 2; goal
<= 1.0x the floor's time).

Same protocol as candidate_decode.py (fresh process per run, alternating, frames checked identical at native
resolution; `--clip NAME` decodes as the pipeline would for that CLIP).

Run: python benchmarks/candidate_decode_floor.py [--duration 600] [--repeats 3] [--clip ViT-B-32]
"""

from __future__ import annotations

from _common import verdict
from candidate_decode import compare


def main() -> None:
    t_ours, t_floor, m_ours, m_floor = compare("ours", "streaming_floor", __doc__)
    print(f"peak memory growth: ours {m_ours:.0f} MiB vs streaming floor {m_floor:.0f} MiB")
    ratio = t_ours / t_floor
    print(f"exact 1 fps candidates, time relative to the one-pass streaming floor (same run): {ratio:.2f}x {verdict(ratio, 1.0, at_least=False)}")


if __name__ == "__main__":
    main()
