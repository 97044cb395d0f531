"""Candidate-decoding methods compared by candidate_decode*.py and approximate_seek.py, one per process.

Run as `python benchmarks/_decode.py METHOD VIDEO [--fps F] [--cap N] [--size H W]`: decodes the candidate
frames once with METHOD in this fresh process and prints one JSON line (seconds, peak RSS, frame checksum), so
that each method's peak memory is its own.

Methods (all return the candidate frames as one uint8 tensor (T, 3, H, W)):
  ours              MSJoE: `open_video` + `plan_candidates(..., "exact")` + `VideoReader.iter_frames_at` batches
  ours_approximate  the same with `candidate_seek_mode="approximate"` (key-frame-aligned candidates)
  decode_all        common practice: decode every frame into one tensor, then index the candidates
  streaming_floor   one pass over every frame (`for frame in VideoDecoder`), keeping only the candidates: every
                    frame is decoded and converted to RGB, in Python's loop
  indexed_floor     torchcodec's own batch call, `VideoDecoder.get_frames_at(indices)` with all candidate indices at
                    once: its C++ loop decodes the stream and converts only the candidates

The baselines are handed the candidates' frame indices (from the demuxer's index, outside the timing); ours
starts from the video path.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time

import torch
from _common import current_rss_mib, peak_rss_mib
from torchcodec.decoders import Demuxer, VideoDecoder

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
    for batch in reader.iter_frames_at(plan.timestamps, size=size, batch_size=64):  # (n, 3, H, W)
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


def streaming_floor(path: str, indices: torch.Tensor, size) -> torch.Tensor:
    wanted = {int(i): n for n, i in enumerate(indices.tolist())}
    kept: list[torch.Tensor | None] = [None] * len(indices)
    last = int(indices.max())
    for index, frame in enumerate(VideoDecoder(path)):  # decodes and converts every frame, in order
        if index in wanted:
            kept[wanted[index]] = frame
        if index >= last:
            break
    frames = torch.stack(kept)  # (T, 3, H, W)
    return resize_frames(frames, size) if size else frames


def indexed_floor(path: str, indices: torch.Tensor, size) -> torch.Tensor:
    frames = VideoDecoder(path).get_frames_at(indices=indices.tolist()).data  # (T, 3, H, W)
    return resize_frames(frames, size) if size else frames


METHODS = {"decode_all": decode_all, "streaming_floor": streaming_floor, "indexed_floor": indexed_floor}


def main() -> None:
    args = argparse.ArgumentParser()
    args.add_argument("method", choices=("ours", "ours_approximate", *METHODS))
    args.add_argument("video")
    args.add_argument("--fps", type=float, default=1.0)
    args.add_argument("--cap", type=int, default=1024)
    args.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"))
    ns = args.parse_args()
    size = tuple(ns.size) if ns.size else None
    indices = None if ns.method.startswith("ours") else candidate_frame_indices(ns.video, ns.fps, ns.cap)
    rss_before = current_rss_mib()
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
        "peak_rss_mib": peak_rss_mib(),
        "checksum": hashlib.sha256(frames.contiguous().numpy().tobytes()).hexdigest()[:16],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
