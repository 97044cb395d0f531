"""Candidate-frame CLIP features: the one place that decodes candidates, embeds them, and caches the result.

Candidates are decoded in bounded batches (small frames natively, large ones downscaled inside FFmpeg to the
CLIP's decode size: `candidate_decode_size`) and encoded batch by batch, so peak memory is one batch of frames
plus T embedding vectors, whatever the video length. With a feature cache
(`feature_cache.MSJoEFeatureCache`) a video's features are computed once per CLIP and candidate setting and
read back (milliseconds) for every later question.

Candidate seek modes (`MSJoEConfig.candidate_seek_mode`):
  - `"exact"`: the frame shown at each planned time (bin centres at `candidate_fps`, capped).
  - `"approximate"`: each planned time moves to its nearest key frame, so each decode is one seek + one frame
    and no GOP walk; the mean / max distance to the planned times is reported in `timestamp_error`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import torch
from transformers.utils import logging

from .clip_scoring import MSJoECLIPScorer
from .feature_cache import MSJoEFeatureCache
from .video_io import VideoReader, plan_candidate_timestamps, snap_to_key_frames

logger = logging.get_logger(__name__)

__all__ = [
    "CandidateFeatures",
    "CandidatePlan",
    "candidate_decode_size",
    "candidate_feature_settings",
    "extract_candidate_features",
    "plan_candidates",
    "plan_video_candidates",
]

# Bump when decoding or preprocessing changes what embeddings come out: old cache entries then stop matching.
# 2: frames up to NATIVE_DECODE_MAX_AREA x the CLIP decode area are decoded natively (see candidate_decode_size).
PIPELINE_VERSION = 2

# Frames at most this many times the CLIP decode area are decoded at native size and resized by the CLIP
# preprocessing (on the CLIP device). Measured with torchcodec 0.17 / FFmpeg 5.1: its in-decoder Resize costs
# 1 to 20 ms per frame depending on the exact output size (20 ms for 320x240 -> 224x299, 20x the decode
# itself), while the decoded batch of a small frame is cheap to hold. Larger frames are downscaled inside
# FFmpeg, so that a 4K batch never exists in memory.
NATIVE_DECODE_MAX_AREA = 4

CandidateSeekMode = Literal["exact", "approximate"]
CacheStatus = Literal["hit", "miss", "off", "uncacheable"]


@dataclass
class CandidateFeatures:
    """CLIP embeddings of a video's candidate frames."""

    timestamps: torch.Tensor  # (T,) float64 seconds of the frames that were embedded
    embeddings: torch.Tensor  # (T, D) float32, unit norm
    timings: dict[str, float] = field(default_factory=dict)  # seconds: candidate_decode, clip_encode, feature_cache
    seek_mode: str = "exact"
    timestamp_error: dict[str, float] = field(default_factory=dict)  # approximate mode: mean / max seconds off plan
    cache_status: CacheStatus = "off"  # "hit": read from the cache; "miss": computed and stored; "off"; "uncacheable"


@dataclass(frozen=True)
class CandidatePlan:
    """Which times to decode for a video's candidates, and what that costs in timestamp accuracy."""

    timestamps: torch.Tensor  # (T,) float64, the times that will be decoded
    planned: torch.Tensor  # (T0,) float64, the exact grid at candidate_fps (T == T0 in exact mode)
    seek_mode: str
    error_seconds: torch.Tensor  # (T0,) |planned - decoded time|; zeros in exact mode

    @property
    def timestamp_error(self) -> dict[str, float]:
        if self.seek_mode == "exact":
            return {}
        return {
            "mean_seconds": float(self.error_seconds.mean()),
            "max_seconds": float(self.error_seconds.max()),
            "planned_candidates": float(len(self.planned)),
        }


def plan_candidates(
    reader: VideoReader, candidate_fps: float, max_candidate_frames: int, seek_mode: CandidateSeekMode = "exact"
) -> CandidatePlan:
    """The candidate times of an opened video: bin centres at `candidate_fps` (capped), snapped to key frames
    in the approximate mode."""
    planned = plan_candidate_timestamps(
        reader.info.duration_seconds, candidate_fps, max_candidate_frames, start_seconds=reader.begin_seconds
    )  # (T0,)
    if seek_mode == "exact":
        return CandidatePlan(planned, planned, seek_mode, torch.zeros_like(planned))
    if seek_mode != "approximate":
        raise ValueError(f"`candidate_seek_mode` must be 'exact' or 'approximate', got {seek_mode!r}.")
    snap = snap_to_key_frames(planned, reader.key_frame_timestamps())
    return CandidatePlan(snap.timestamps, planned, seek_mode, snap.error_seconds)


def plan_video_candidates(
    reader: VideoReader, candidate_fps: float, max_candidate_frames: int, seek_mode: CandidateSeekMode = "exact"
) -> torch.Tensor:
    """Candidate timestamps `(T,)` of an opened video (see `plan_candidates`)."""
    return plan_candidates(reader, candidate_fps, max_candidate_frames, seek_mode).timestamps


def candidate_feature_settings(
    scorer: MSJoECLIPScorer, candidate_fps: float, max_candidate_frames: int, seek_mode: CandidateSeekMode
) -> dict:
    """Everything besides the video content that changes the candidate features: the feature cache's key."""
    import torchcodec

    return {
        "clip": scorer.identity(),
        "candidate_fps": float(candidate_fps),
        "max_candidate_frames": int(max_candidate_frames),
        "seek_mode": seek_mode,
        "pipeline": PIPELINE_VERSION,
        "decoder": "torchcodec-" + ".".join(torchcodec.__version__.split(".")[:2]),
    }


def candidate_decode_size(height: int, width: int, clip_decode_size: tuple[int, int]) -> tuple[int, int] | None:
    """Size to decode candidates at: `None` (native; the CLIP preprocessing resizes) for frames up to
    `NATIVE_DECODE_MAX_AREA` x the CLIP decode area, else the CLIP decode size (FFmpeg downscales)."""
    if height * width <= NATIVE_DECODE_MAX_AREA * clip_decode_size[0] * clip_decode_size[1]:
        return None
    return clip_decode_size


def _encode_plan(
    reader: VideoReader, scorer: MSJoECLIPScorer, timestamps: torch.Tensor, batch_size: int, show_progress: bool
) -> tuple[torch.Tensor, dict[str, float]]:
    """Decode `timestamps` in batches of `batch_size` (see `candidate_decode_size`) and embed them: `(T, D)` + timings."""
    size = candidate_decode_size(reader.info.height, reader.info.width, scorer.decode_size(reader.info.height, reader.info.width))
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
    return torch.cat(chunks), {"candidate_decode": decode_seconds, "clip_encode": encode_seconds}


@dataclass
class _CacheLookup:
    key: str | None = None  # None: no cache, or a source that cannot be fingerprinted
    fingerprint: str | None = None
    seconds: float = 0.0
    hit: CandidateFeatures | None = None


def _lookup(cache: MSJoEFeatureCache, reader: VideoReader, settings: dict, embed_dim: int, seek_mode: str) -> _CacheLookup:
    """Fingerprint the video and read its entry; a hit comes back as finished `CandidateFeatures`."""
    start = time.perf_counter()
    lookup = _CacheLookup(fingerprint=cache.fingerprint(reader))
    if lookup.fingerprint is not None:
        lookup.key = cache.entry_key(lookup.fingerprint, settings)
        entry = cache.load(lookup.key, settings=settings, embed_dim=embed_dim)
        if entry is not None:
            error = {k[len("error_") :]: float(v) for k, v in entry.metadata.items() if k.startswith("error_")}
            lookup.hit = CandidateFeatures(
                timestamps=entry.timestamps, embeddings=entry.embeddings, seek_mode=seek_mode, timestamp_error=error,
                timings={"candidate_decode": 0.0, "clip_encode": 0.0, "feature_cache": time.perf_counter() - start},
                cache_status="hit",
            )  # fmt: skip
    lookup.seconds = time.perf_counter() - start
    return lookup


def _store(cache: MSJoEFeatureCache, lookup: _CacheLookup, plan: CandidatePlan, embeddings: torch.Tensor, settings: dict, label: str) -> CacheStatus:  # fmt: skip
    """Write the computed features; a failed write is logged and leaves the features uncached."""
    if lookup.key is None:
        return "uncacheable"
    start = time.perf_counter()
    try:
        cache.save(
            lookup.key, plan.timestamps, embeddings, settings=settings, fingerprint=lookup.fingerprint, video_label=label,
            extra={f"error_{k}": repr(v) for k, v in plan.timestamp_error.items()},
        )  # fmt: skip
        return "miss"
    except OSError as err:
        logger.warning(f"Could not write the feature cache entry under {cache.root} ({err}); features are not cached.")
        return "uncacheable"
    finally:
        lookup.seconds += time.perf_counter() - start


def extract_candidate_features(
    reader: VideoReader,
    scorer: MSJoECLIPScorer,
    *,
    candidate_fps: float,
    max_candidate_frames: int,
    seek_mode: CandidateSeekMode = "exact",
    batch_size: int = 64,
    show_progress: bool = False,
    cache: MSJoEFeatureCache | None = None,
) -> CandidateFeatures:
    """Candidate CLIP features of `reader`: read from `cache` when there, else decoded + encoded in bounded
    batches (and stored in `cache`)."""
    settings = candidate_feature_settings(scorer, candidate_fps, max_candidate_frames, seek_mode)
    lookup = _lookup(cache, reader, settings, scorer.embed_dim, seek_mode) if cache is not None else None
    if lookup is not None and lookup.hit is not None:
        return lookup.hit
    plan = plan_candidates(reader, candidate_fps, max_candidate_frames, seek_mode)
    embeddings, timings = _encode_plan(reader, scorer, plan.timestamps, batch_size, show_progress)  # (T, D)
    status: CacheStatus = "off"
    if lookup is not None:
        status = _store(cache, lookup, plan, embeddings, settings, reader.label)
        timings["feature_cache"] = lookup.seconds
    return CandidateFeatures(
        timestamps=plan.timestamps, embeddings=embeddings, timings=timings, seek_mode=seek_mode,
        timestamp_error=plan.timestamp_error, cache_status=status,
    )  # fmt: skip
