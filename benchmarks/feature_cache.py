"""Second question on the same video vs the first (cold) question's CLIP stage (issue 6, figure 5; goal >= 50x).

CLIP stage of a question (the `candidate_plan`, `candidate_decode`, `clip_encode`, `feature_cache` and
`clip_text` stages of `answer()`'s timings; opening the video is its own stage and is not timed) = candidate
features (plan, decode + encode 1 fps candidates, or read them from the feature cache) + encoding that question's
queries + the query x frame similarity.

Protocol: `--repeats` rounds; each round takes a fresh, empty cache folder, asks the first question (cold: it
also pays the fingerprint and the entry write), then a second question with other queries about the same video
(warm: its candidate features come from the cache). The ratio is min(cold) / min(warm), the same statistic on
both sides; medians are printed too. Wall time (the warm path is mostly file I/O, which CPU time would not
count). The CLIP's one-time weights fingerprint (random weights are identified by their values,
`MSJoECLIPScorer.identity()`) is paid once per process, before the rounds, and printed apart. Default CLIP:
ViT-B-32 with random weights; `--clip ViT-L-14/openai --device cuda` on a GPU box.

Run: python benchmarks/feature_cache.py [--clip ViT-B-32] [--duration 600] [--repeats 3]
"""

from __future__ import annotations

import statistics
import tempfile
import time

import torch
from _common import load_note, parser, setup, sync, verdict, video

FIRST = ["a red square in the middle", "a person opens a door"]
SECOND = ["a blue square", "text on a screen", "a yellow square"]


def main() -> None:
    args = parser(__doc__, clip="ViT-B-32", repeats=3).parse_args()
    setup(args)
    from transformers_msjoe.clip_scoring import MSJoECLIPScorer
    from transformers_msjoe.configuration_msjoe import MSJoEConfig
    from transformers_msjoe.feature_cache import MSJoEFeatureCache
    from transformers_msjoe.frame_features import extract_candidate_features
    from transformers_msjoe.video_io import open_video

    scorer = MSJoECLIPScorer.from_identity(args.clip, device=args.device)
    path = video(args.workdir, duration=args.duration)

    def clip_stage(cache: MSJoEFeatureCache, queries: list[str]) -> tuple[torch.Tensor, str, float]:
        reader = open_video(path)  # the "open" stage of answer(), needed for the key frames either way: not timed
        sync(args.device)
        start = time.perf_counter()
        features = extract_candidate_features(  # with answer()'s defaults (MSJoEConfig)
            reader, scorer, candidate_fps=MSJoEConfig.candidate_fps, max_candidate_frames=MSJoEConfig.max_candidate_frames,
            seek_mode=MSJoEConfig.candidate_seek_mode, batch_size=MSJoEConfig.clip_batch_size, cache=cache,
        )  # fmt: skip
        similarity = scorer.similarity(scorer.encode_texts(queries), features.embeddings)  # (Q, T)
        sync(args.device)
        return similarity, features.cache_status, time.perf_counter() - start

    start = time.perf_counter()
    weights = scorer.identity()["weights"]
    identity_seconds = time.perf_counter() - start
    scorer.encode_texts(FIRST)  # warm-up of the text tower, outside both measurements
    print(f"before: {load_note()}")
    cold, warm, entry_bytes, candidates = [], [], 0, 0
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as folder:  # a fresh, empty cache per round
            cache = MSJoEFeatureCache(folder)
            _, status, seconds = clip_stage(cache, FIRST)
            if status != "miss":  # not `assert`: `python -O` would skip it and time something else
                raise SystemExit(f"the cold question found cache status {status!r} in a fresh cache, not 'miss'")
            cold.append(seconds)
            similarity, status, seconds = clip_stage(cache, SECOND)
            if status != "hit":
                raise SystemExit(f"the second question found cache status {status!r}, not 'hit': nothing to compare")
            warm.append(seconds)
            entry_bytes, candidates = cache.report().total_bytes, similarity.shape[1]
    print(f"after: {load_note()}")
    print(
        f"CLIP {args.clip} on {args.device}; video {path}: {candidates} candidates, cache entry {entry_bytes / 1024:.0f} KiB"
    )
    print(
        f"one-time CLIP weights identity ({weights.split(':')[0]}), paid by a process's first question: {identity_seconds:.3f} s"
    )
    print(
        f"first question (cold: decode + encode {candidates} frames + write the entry): min {min(cold):.3f} s, median {statistics.median(cold):.3f} s over {len(cold)} fresh caches"
    )
    print(
        f"second question (cache hit): min {min(warm):.4f} s, median {statistics.median(warm):.4f} s over {len(warm)} runs"
    )
    print(f"median-to-median speed-up: {statistics.median(cold) / statistics.median(warm):.0f}x")
    ratio = min(cold) / min(warm)
    print(
        f"second question's CLIP stage speed-up over the first (cold) question's, min / min (same run): {ratio:.0f}x {verdict(ratio, 50.0, at_least=True)}"
    )


if __name__ == "__main__":
    main()
