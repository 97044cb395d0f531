"""Candidate-decoding methods compared by candidate_decode*.py and approximate_seek.py, one per process.

Run as `python benchmarks/_decode.py METHOD VIDEO [--fps F] [--cap N] [--size H W]`: decodes the candidate
frames once with METHOD in this fresh process and prints one JSON line (seconds, peak RSS, frame checksum), so
that each method's peak memory is its own. `--fps` / `--cap` default to `MSJoEConfig`'s `candidate_fps` /
`max_candidate_frames`. Decoding is CPU-only, as in the pipeline (torchcodec's CPU decoder), and every method
decodes with one FFmpeg thread, the pipeline's default (`VideoReader(num_ffmpeg_threads=1)`). The peak RSS is
the peak while the method runs (reset before it, see `_common.reset_peak_rss`).

Methods (all return the candidate frames as one uint8 tensor (T, 3, H, W)):
  ours              MSJoE: `open_video` + `plan_candidates(..., "exact")` + `VideoReader.iter_frames_at` batches
  ours_approximate  the same with `candidate_seek_mode="approximate"` (key-frame-aligned candidates)
  decode_all        common practice: decode every frame into one tensor, then index the candidates
  indexed_floor     torchcodec's own batch call, `VideoDecoder.get_frames_at(indices)` with all candidate indices at
                    once: its C++ loop walks the stream once, in order, and converts only the candidates to RGB
  pyav_floor        a bare FFmpeg decode loop (PyAV): one pass that decodes every frame up to the last candidate,
                    converts none of them, and converts only the candidates to RGB (into a preallocated tensor)

The baselines and floors are handed the candidates' frame indices (from the demuxer's index, outside the timing);
ours starts from the video path (opening it and planning the timestamps are timed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time

import torch
from _common import current_rss_mib, peak_rss_mib, peak_rss_since_reset_mib, reset_peak_rss
from torchcodec.decoders import Demuxer, VideoDecoder

from transformers_msjoe.configuration_msjoe import MSJoEConfig
from transformers_msjoe.frame_features import plan_candidates
from transformers_msjoe.video_io import open_video, resize_frames


def candidate_frame_indices(path: str, fps: float, cap: int) -> torch.Tensor:
    """Index `(T,)` of the frame shown at each exact candidate time (what the baselines are handed for free)."""
    stamps = plan_candidates(open_video(path), fps, cap, "exact").timestamps
    return Demuxer(path).streams[0].scan().index_at(stamps)


def ours(path: str, fps: float, cap: int, size, seek_mode: str = "exact") -> torch.Tensor:
    """The pipeline's decode. The pipeline encodes each batch and drops it; here the batches are copied into one
    preallocated tensor (to compare frames), so memory = the candidates + one batch, not a list plus its concat."""
    reader = open_video(path)
    plan = plan_candidates(reader, fps, cap, seek_mode)
    out: torch.Tensor | None = None
    done = 0
    batch_size = MSJoEConfig.clip_batch_size
    for batch in reader.iter_frames_at(plan.timestamps, size=size, batch_size=batch_size):  # (n, 3, H, W)
        if out is None:
            out = torch.empty(len(plan.timestamps), *batch.shape[1:], dtype=batch.dtype)  # (T, 3, H, W)
        out[done : done + len(batch)] = batch
        done += len(batch)
    return out


def decode_all(path: str, indices: torch.Tensor, size) -> torch.Tensor:
    decoder = VideoDecoder(path)
    every = decoder.get_frames_in_range(0, len(decoder)).data  # (N, 3, H, W): the whole video in memory
    frames = every[indices].clone()  # (T, 3, H, W)
    del every
    return resize_frames(frames, size) if size else frames


def indexed_floor(path: str, indices: torch.Tensor, size) -> torch.Tensor:
    frames = VideoDecoder(path).get_frames_at(indices=indices.tolist()).data  # (T, 3, H, W)
    return resize_frames(frames, size) if size else frames


def pyav_floor(path: str, indices: torch.Tensor, size) -> torch.Tensor:
    import av  # imported by main() before the timing; installed with the `eval` extra (lmms-eval, qwen-vl-utils)
    import numpy as np

    wanted = {int(i): n for n, i in enumerate(indices.tolist())}
    last = int(indices.max())
    out: np.ndarray | None = None
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_count = 1  # as the pipeline's decoders
        for index, frame in enumerate(container.decode(stream)):  # decoded frames stay in FFmpeg's YUV buffers
            if index in wanted:
                if out is None:
                    out = np.empty((len(indices), frame.height, frame.width, 3), dtype=np.uint8)  # (T, H, W, 3)
                out[wanted[index]] = frame.to_ndarray(format="rgb24")  # numpy: no torch op (thread pool) per frame
            if index >= last:
                break
    frames = torch.from_numpy(out).permute(0, 3, 1, 2)  # (T, 3, H, W), a view as torchcodec's NCHW output is
    return resize_frames(frames, size) if size else frames


METHODS = {"decode_all": decode_all, "indexed_floor": indexed_floor, "pyav_floor": pyav_floor}


def main() -> None:
    args = argparse.ArgumentParser()
    args.add_argument("method", choices=("ours", "ours_approximate", *METHODS))
    args.add_argument("video")
    args.add_argument("--fps", type=float, default=MSJoEConfig.candidate_fps)
    args.add_argument("--cap", type=int, default=MSJoEConfig.max_candidate_frames)
    args.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"))
    ns = args.parse_args()
    size = tuple(ns.size) if ns.size else None
    indices = None if ns.method.startswith("ours") else candidate_frame_indices(ns.video, ns.fps, ns.cap)
    if ns.method == "pyav_floor":
        import av  # noqa: F401  (its import is not part of the method's time)
    rss_before = current_rss_mib()
    # without the reset, the peak would start at the parent's RSS when it forked this process (e.g. with a CLIP loaded)
    peak_reset = reset_peak_rss()
    start = time.perf_counter()
    if ns.method == "ours":
        frames = ours(ns.video, ns.fps, ns.cap, size)
    elif ns.method == "ours_approximate":
        frames = ours(ns.video, ns.fps, ns.cap, size, seek_mode="approximate")
    else:
        frames = METHODS[ns.method](ns.video, indices, size)
    seconds = time.perf_counter() - start
    result = {
        "method": ns.method,
        "seconds": seconds,
        "frames": list(frames.shape),
        "frames_mib": frames.numel() / 2**20,
        "rss_before_mib": rss_before,
        "peak_rss_mib": peak_rss_since_reset_mib() if peak_reset else peak_rss_mib(),
        "checksum": hashlib.sha256(frames.contiguous().numpy().tobytes()).hexdigest()[:16],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
