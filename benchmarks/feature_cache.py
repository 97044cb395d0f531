"""Second question on the same video vs the first (cold) question's CLIP stage (issue 6, figure 5; goal >= 50x).

CLIP stage of a question (the `candidate_decode`, `clip_encode`, `feature_cache` and `clip_text` stages of
`answer()`'s timings; opening the video is its own stage and is not timed) = candidate features (decode + encode 1 fps candidates, or read them from the feature
cache) + encoding that question's queries + the query x frame similarity. The cold question starts from an empty
cache folder (so it also pays the fingerprint and the entry write); the second question asks other queries about
the same video and finds its candidate features in the cache. Wall time (the warm path is mostly file I/O, which
CPU time would not count). Default CLIP: ViT-B-32 with random weights; `--clip ViT-L-14/openai --device cuda`
on a GPU box.

Run: python benchmarks/feature_cache.py [--clip ViT-B-32] [--duration 600] [--repeats 5]
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
    args = parser(__doc__, clip="ViT-B-32", repeats=5).parse_args()
    setup(args)
    from transformers_msjoe.clip_scoring import MSJoECLIPScorer
    from transformers_msjoe.feature_cache import MSJoEFeatureCache
    from transformers_msjoe.frame_features import extract_candidate_features
    from transformers_msjoe.video_io import open_video

    scorer = MSJoECLIPScorer.from_identity(args.clip, device=args.device)
    path = video(args.workdir, duration=args.duration)

    def clip_stage(cache: MSJoEFeatureCache, queries: list[str]) -> tuple[torch.Tensor, str, float]:
        reader = open_video(path)  # the "open" stage of answer(), needed for the key frames either way: not timed
        sync(args.device)
        start = time.perf_counter()
        features = extract_candidate_features(reader, scorer, candidate_fps=1.0, max_candidate_frames=1024, cache=cache)
        similarity = scorer.similarity(scorer.encode_texts(queries), features.embeddings)  # (Q, T)
        sync(args.device)
        return similarity, features.cache_status, time.perf_counter() - start

    scorer.encode_texts(FIRST)  # warm-up of the text tower, outside both measurements
    print(f"before: {load_note()}")
    with tempfile.TemporaryDirectory() as folder:
        cache = MSJoEFeatureCache(folder)
        _, first_status, cold = clip_stage(cache, FIRST)
        warm_runs = [clip_stage(cache, SECOND) for _ in range(args.repeats)]
        entry_bytes = cache.report().total_bytes
    print(f"after: {load_note()}")
    assert first_status == "miss" and all(status == "hit" for _, status, _ in warm_runs), "cache did not behave"
    warm = [seconds for _, _, seconds in warm_runs]
    candidates = warm_runs[0][0].shape[1]
    print(f"CLIP {args.clip} on {args.device}; video {path}: {candidates} candidates, cache entry {entry_bytes / 1024:.0f} KiB")
    print(f"first question (cold: decode + encode {candidates} frames + write the entry): {cold:.3f} s")
    print(f"second question (cache hit): min {min(warm):.4f} s, median {statistics.median(warm):.4f} s over {len(warm)} runs")
    ratio = cold / min(warm)
    print(f"second question's CLIP stage speed-up over the first (cold) question's (same run): {ratio:.0f}x {verdict(ratio, 50.0, at_least=True)}")


if __name__ == "__main__":
    main()
