"""Candidate-frame CLIP features: the one place that decodes candidates and embeds them.

Candidates are decoded at CLIP resolution (FFmpeg does the downscale) and encoded batch by batch, so peak
memory is one batch of frames plus T embedding vectors, whatever the video length.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from transformers.utils import logging

from .clip_scoring import MSJoECLIPScorer
from .video_io import VideoReader, plan_candidate_timestamps

logger = logging.get_logger(__name__)

__all__ = ["CandidateFeatures", "extract_candidate_features", "plan_video_candidates"]


@dataclass
class CandidateFeatures:
    """CLIP embeddings of a video's candidate frames."""

    timestamps: torch.Tensor  # (T,) float64 seconds
    embeddings: torch.Tensor  # (T, D) float32, unit norm
    timings: dict[str, float] = field(default_factory=dict)  # seconds spent decoding / encoding (empty if cached)


def plan_video_candidates(reader: VideoReader, candidate_fps: float, max_candidate_frames: int) -> torch.Tensor:
    """Candidate timestamps `(T,)` of an opened video (bin centres at `candidate_fps`, capped)."""
    return plan_candidate_timestamps(
        reader.info.duration_seconds, candidate_fps, max_candidate_frames, start_seconds=reader.begin_seconds
    )


def extract_candidate_features(
    reader: VideoReader,
    scorer: MSJoECLIPScorer,
    *,
    candidate_fps: float,
    max_candidate_frames: int,
    batch_size: int = 64,
    show_progress: bool = False,
) -> CandidateFeatures:
    """Decode the candidates of `reader` in bounded batches and embed them with the frozen CLIP."""
    timestamps = plan_video_candidates(reader, candidate_fps, max_candidate_frames)
    size = scorer.decode_size(reader.info.height, reader.info.width)
    chunks: list[torch.Tensor] = []
    decode_seconds = encode_seconds = 0.0
    batches = reader.iter_frames_at(timestamps, size=size, batch_size=batch_size)
    progress = logging.tqdm(
        total=len(timestamps), desc=f"CLIP {reader.label[-40:]}", unit="frame", disable=not show_progress, leave=False
    )
    with progress:
        while True:
            start = time.perf_counter()
            frames = next(batches, None)  # (n, 3, h, w) uint8
            decode_seconds += time.perf_counter() - start
            if frames is None:
                break
            start = time.perf_counter()
            chunks.append(scorer.encode_frames(frames))  # (n, D)
            encode_seconds += time.perf_counter() - start
            progress.update(len(frames))
    return CandidateFeatures(
        timestamps=timestamps,
        embeddings=torch.cat(chunks),
        timings={"candidate_decode": decode_seconds, "clip_encode": encode_seconds},
    )
