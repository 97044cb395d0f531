"""Candidate-frame CLIP features: the one place that decodes candidates, embeds them, and caches the result.

Candidates are decoded in bounded batches (small frames natively, large ones downscaled inside FFmpeg to the
CLIP's decode size: `candidate_decode_size`) and encoded batch by batch, so peak memory is one batch of frames
plus T embedding vectors, whatever the video length. With a feature cache
(`feature_cache.MSJoEFeatureCache`) a video's features are computed once per CLIP and candidate setting and
read back (milliseconds) for every later question.

Candidate seek modes (`MSJoEConfig.candidate_seek_mode`):
  - `"exact"`: the frame shown at each planned time (bin centres at `candidate_fps`, capped).
  - `"approximate"`: each planned time moves to its nearest key frame, so each decode is one seek + one frame
    and no GOP walk; planned times that share a key frame collapse into one candidate (T can shrink to the number
    of key frames). The mean / max distance to the planned times is reported in `timestamp_error`, and the number
    of planned times in `planned_candidates`.

The cache never pairs one file's features with another file's fingerprint: the reader records the file's
(device, inode, size, mtime) before opening it, and features are neither read nor stored once that changed
(`VideoReader.source_unchanged`).
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
    # seconds: candidate_plan, candidate_decode, clip_encode, feature_cache (with a cache)
    timings: dict[str, float] = field(default_factory=dict)
    seek_mode: str = "exact"
    timestamp_error: dict[str, float] = field(default_factory=dict)  # approximate mode: mean / max seconds off plan
    planned_candidates: int | None = None  # T0, the candidate times planned at candidate_fps (T <= T0)
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
        """Seconds between the planned and the decoded times (`mean_seconds`, `max_seconds`); empty in exact mode."""
        if self.seek_mode == "exact":
            return {}
        return {"mean_seconds": float(self.error_seconds.mean()), "max_seconds": float(self.error_seconds.max())}

    @property
    def planned_candidates(self) -> int:
        """T0, the number of candidate times planned at `candidate_fps` (before key-frame snapping merged any)."""
        return len(self.planned)


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
    size = candidate_decode_size(
        reader.info.height, reader.info.width, scorer.decode_size(reader.info.height, reader.info.width)
    )
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
    settings: dict  # `candidate_feature_settings`: part of the key, stored in the entry
    key: str | None = None  # None: a source that cannot be fingerprinted, or a file changed since it was opened
    fingerprint: str | None = None
    seconds: float = 0.0
    hit: CandidateFeatures | None = None


def _source_unchanged(reader: VideoReader, action: str) -> bool:
    """`reader.source_unchanged()`, logging why the cache is skipped when the file changed since it was opened."""
    if reader.source_unchanged():
        return True
    logger.warning(
        f"{reader.label} changed on disk after it was opened (replaced or edited): its candidate features are not "
        f"{action} the feature cache. Open the video again to cache its new content."
    )
    return False


def _lookup(
    cache: MSJoEFeatureCache, reader: VideoReader, scorer: MSJoECLIPScorer, candidate_fps: float,
    max_candidate_frames: int, seek_mode: CandidateSeekMode,
) -> _CacheLookup:  # fmt: skip
    """Key the video (settings + content fingerprint) and read its entry; a hit comes back as finished
    `CandidateFeatures`. Timed as the `feature_cache` stage, the CLIP's one-time weights fingerprint included."""
    start = time.perf_counter()
    lookup = _CacheLookup(candidate_feature_settings(scorer, candidate_fps, max_candidate_frames, seek_mode))
    fingerprint = cache.fingerprint(reader)
    if fingerprint is not None and _source_unchanged(reader, "read from"):  # checked after hashing the file
        lookup.fingerprint, lookup.key = fingerprint, cache.entry_key(fingerprint, lookup.settings)
        entry = cache.load(lookup.key, settings=lookup.settings, embed_dim=scorer.embed_dim)
        if entry is not None:
            meta = entry.metadata
            lookup.hit = CandidateFeatures(
                timestamps=entry.timestamps, embeddings=entry.embeddings, seek_mode=seek_mode, cache_status="hit",
                timestamp_error={k[len("error_") :]: float(v) for k, v in meta.items() if k.startswith("error_")},
                planned_candidates=int(meta["planned_candidates"]) if "planned_candidates" in meta else None,
                timings={
                    "candidate_plan": 0.0, "candidate_decode": 0.0, "clip_encode": 0.0,
                    "feature_cache": time.perf_counter() - start,
                },
            )  # fmt: skip
    lookup.seconds = time.perf_counter() - start
    return lookup


def _store(
    cache: MSJoEFeatureCache, lookup: _CacheLookup, plan: CandidatePlan, embeddings: torch.Tensor, reader: VideoReader
) -> CacheStatus:
    """Write the computed features; a failed write, or a file changed while it was decoded, is logged and leaves
    the features uncached."""
    if lookup.key is None:
        return "uncacheable"
    start = time.perf_counter()
    try:
        if not _source_unchanged(reader, "stored in"):
            return "uncacheable"
        extra = {f"error_{k}": repr(v) for k, v in plan.timestamp_error.items()}
        extra["planned_candidates"] = str(plan.planned_candidates)
        # `save` keeps only the label's file name: entries get shared, the local folder is private
        cache.save(
            lookup.key, plan.timestamps, embeddings, settings=lookup.settings, fingerprint=lookup.fingerprint,
            video_label=reader.label, extra=extra,
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
    """Candidate CLIP features of `reader`: read from `cache` when there, else planned, decoded and encoded in
    bounded batches (and stored in `cache`). `timings` covers every step: planning (the key-frame scan in the
    approximate mode), decoding, encoding and the cache."""
    lookup = None
    if cache is not None:
        lookup = _lookup(cache, reader, scorer, candidate_fps, max_candidate_frames, seek_mode)
        if lookup.hit is not None:
            return lookup.hit
    start = time.perf_counter()
    plan = plan_candidates(reader, candidate_fps, max_candidate_frames, seek_mode)
    plan_seconds = time.perf_counter() - start
    embeddings, timings = _encode_plan(reader, scorer, plan.timestamps, batch_size, show_progress)  # (T, D)
    timings = {"candidate_plan": plan_seconds, **timings}
    status: CacheStatus = "off"
    if lookup is not None:
        status = _store(cache, lookup, plan, embeddings, reader)
        timings["feature_cache"] = lookup.seconds
    return CandidateFeatures(
        timestamps=plan.timestamps, embeddings=embeddings, timings=timings, seek_mode=seek_mode,
        timestamp_error=plan.timestamp_error, planned_candidates=plan.planned_candidates, cache_status=status,
    )  # fmt: skip
