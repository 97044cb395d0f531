"""Video decoding for MSJoE: plan timestamps, decode only those frames, in bounded batches (torchcodec).

Every stage that needs pixels (candidates for CLIP, the low-res preview, the high-res key frames) goes
through `VideoReader.iter_frames_at` / `frames_at`, which seek to the requested timestamps instead of
decoding the whole stream, and resize inside FFmpeg when the reader owns the source.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Union

import torch
import torch.nn.functional as F
from torchcodec.decoders import VideoDecoder
from torchcodec.transforms import Resize

__all__ = [
    "VideoDecodeError",
    "VideoInfo",
    "VideoInput",
    "VideoReader",
    "fit_to_pixel_budget",
    "open_video",
    "plan_candidate_timestamps",
    "plan_uniform_timestamps",
    "resize_frames",
]

VideoInput = Union[str, os.PathLike, bytes, VideoDecoder, Mapping[str, Any], "VideoReader"]
SeekMode = Literal["exact", "approximate"]


class VideoDecodeError(ValueError):
    """A video could not be used: the message names the file, the problem and the fix."""


@dataclass(frozen=True)
class VideoInfo:
    """What the pipeline needs to know about a video before decoding any frame."""

    source_name: str  # a path, or "<bytes sha256:...>" for in-memory videos
    duration_seconds: float
    average_fps: float
    num_frames: int
    width: int
    height: int


def _source_label(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, (bytes, bytearray)):
        return f"<bytes sha256:{hashlib.sha256(source).hexdigest()[:16]}>"
    return f"<{type(source).__name__}>"


def _open_decoder(source: str | bytes, label: str, **decoder_kwargs: Any) -> VideoDecoder:
    """Open a torchcodec decoder and turn its low-level failures into errors a user can act on."""
    if isinstance(source, str) and not os.path.exists(source):
        raise VideoDecodeError(f"Video file not found: {source!r}. Check the path (relative paths resolve against {os.getcwd()!r}).")
    try:
        return VideoDecoder(source, **decoder_kwargs)
    except ValueError as err:
        if "video stream" in str(err):
            raise VideoDecodeError(
                f"{label} has no video stream (audio-only or a non-video file). Pass a file with a video track."
            ) from err
        raise VideoDecodeError(f"{label} could not be opened as a video: {err}") from err
    except RuntimeError as err:
        raise VideoDecodeError(
            f"{label} is not a readable video (corrupt, truncated or an unsupported container): "
            f"{str(err).splitlines()[0].rsplit(', ', 1)[-1]}. Re-encode it, e.g. `ffmpeg -i in -c:v libx264 out.mp4`."
        ) from err


class VideoReader:
    """One opened video. Decodes frames at given timestamps, in batches, optionally downscaled.

    Args:
        source: a file path, the file's bytes, a `datasets` `Video` value (`{"path": ..., "bytes": ...}` with
            `decode=False`, or the torchcodec `VideoDecoder` it yields with `decode=True`), or a `VideoDecoder`.
        seek_mode: torchcodec's seek mode. `"approximate"` skips the initial index scan (faster to open long
            videos); timestamps are still honoured frame-exactly by `get_frames_played_at`.
        num_ffmpeg_threads: FFmpeg decoding threads per decoder.
    """

    def __init__(self, source: VideoInput, *, seek_mode: SeekMode = "exact", num_ffmpeg_threads: int = 1):
        self._seek_mode = seek_mode
        self._threads = num_ffmpeg_threads
        self._decoders: dict[tuple[int, int] | None, VideoDecoder] = {}
        self._owned_source: str | bytes | None = None
        if isinstance(source, VideoReader):
            source = source._owned_source if source._owned_source is not None else source._decoders[None]
        if isinstance(source, Mapping):
            source = self._from_datasets_value(source)
        if isinstance(source, os.PathLike):
            source = os.fspath(source)
        if isinstance(source, bytearray):
            source = bytes(source)
        self.label = _source_label(source)
        if isinstance(source, VideoDecoder):
            self._decoders[None] = source
        elif isinstance(source, (str, bytes)):
            self._owned_source = source
            self._decoders[None] = _open_decoder(
                source, self.label, seek_mode=seek_mode, num_ffmpeg_threads=num_ffmpeg_threads
            )
        else:
            raise TypeError(
                f"Unsupported video input of type {type(source).__name__}. Pass a path, bytes, a datasets `Video` "
                "value or a torchcodec `VideoDecoder`."
            )
        self.info = self._read_info()

    @staticmethod
    def _from_datasets_value(value: Mapping[str, Any]) -> str | bytes:
        if value.get("bytes"):
            return value["bytes"]
        if value.get("path"):
            return value["path"]
        raise VideoDecodeError(f"A datasets Video value needs 'path' or 'bytes', got keys {sorted(value)}.")

    def _read_info(self) -> VideoInfo:
        meta = self._decoders[None].metadata
        duration = meta.duration_seconds or 0.0
        num_frames = meta.num_frames or 0
        if num_frames <= 0 or duration <= 0:
            raise VideoDecodeError(
                f"{self.label} has a video stream with no frames (duration {duration}s, {num_frames} frames). "
                "Pass a non-empty video."
            )
        fps = meta.average_fps or num_frames / duration
        return VideoInfo(self.label, float(duration), float(fps), int(num_frames), int(meta.width), int(meta.height))

    @property
    def content_source(self) -> str | bytes | VideoDecoder:
        """The underlying path or bytes (or the foreign decoder), for content hashing by the feature cache."""
        return self._owned_source if self._owned_source is not None else self._decoders[None]

    @property
    def begin_seconds(self) -> float:
        return float(self._decoders[None].metadata.begin_stream_seconds or 0.0)

    def _decoder_for(self, size: tuple[int, int] | None) -> VideoDecoder:
        """A decoder that resizes inside FFmpeg to `size`; foreign decoders are reused at native size."""
        if size is None or self._owned_source is None:
            return self._decoders[None]
        if size not in self._decoders:
            self._decoders[size] = _open_decoder(
                self._owned_source,
                self.label,
                seek_mode=self._seek_mode,
                num_ffmpeg_threads=self._threads,
                transforms=[Resize(size)],
            )
        return self._decoders[size]

    def clamp_timestamps(self, timestamps: torch.Tensor | Sequence[float]) -> list[float]:
        """Keep timestamps inside the playable range [begin, end) that torchcodec accepts."""
        meta = self._decoders[None].metadata
        begin = float(meta.begin_stream_seconds or 0.0)
        end = float(meta.end_stream_seconds or self.info.duration_seconds)
        last = max(begin, end - 1e-3)
        return [min(max(float(t), begin), last) for t in torch.as_tensor(timestamps, dtype=torch.float64).tolist()]

    def iter_frames_at(
        self,
        timestamps: torch.Tensor | Sequence[float],
        *,
        max_pixels: int | None = None,
        size: tuple[int, int] | None = None,
        batch_size: int = 64,
    ) -> Iterator[torch.Tensor]:
        """Yield uint8 frames `(n, 3, H, W)` shown at `timestamps`, at most `batch_size` at a time.

        `size=(H, W)` resizes exactly; `max_pixels` downscales (aspect kept) so that H * W <= max_pixels.
        Peak memory is bounded by one batch, whatever the video length.
        """
        if size is None and max_pixels is not None:
            size = fit_to_pixel_budget(self.info.height, self.info.width, max_pixels)
            if size == (self.info.height, self.info.width):
                size = None
        decoder = self._decoder_for(size)
        seconds = self.clamp_timestamps(timestamps)
        for start in range(0, len(seconds), batch_size):
            try:
                frames = decoder.get_frames_played_at(seconds=seconds[start : start + batch_size]).data
            except RuntimeError as err:
                raise VideoDecodeError(
                    f"{self.label} failed to decode frames near {seconds[start]:.2f}s: "
                    f"{str(err).splitlines()[0].rsplit(', ', 1)[-1]}. The file may be damaged; re-encode it."
                ) from err
            if size is not None and tuple(frames.shape[-2:]) != tuple(size):
                frames = resize_frames(frames, size)  # foreign decoder: resize in torch instead of FFmpeg
            yield frames  # (n, 3, H, W) uint8

    def frames_at(self, timestamps: torch.Tensor | Sequence[float], **kwargs: Any) -> torch.Tensor:
        """All frames at `timestamps` as one uint8 tensor `(N, 3, H, W)`; use for small N (preview, key frames)."""
        batches = list(self.iter_frames_at(timestamps, **kwargs))
        if not batches:
            return torch.empty(0, 3, self.info.height, self.info.width, dtype=torch.uint8)
        return torch.cat(batches)


def open_video(source: VideoInput, **kwargs: Any) -> VideoReader:
    """Open `source` (path, bytes, datasets Video value, torchcodec decoder or reader) as a `VideoReader`."""
    if isinstance(source, VideoReader) and not kwargs:
        return source
    return VideoReader(source, **kwargs)


def plan_uniform_timestamps(duration_seconds: float, num_frames: int, start_seconds: float = 0.0) -> torch.Tensor:
    """`num_frames` timestamps at the centres of equal bins over the video: `(num_frames,)` float64."""
    if num_frames <= 0:
        return torch.empty(0, dtype=torch.float64)
    step = duration_seconds / num_frames
    return start_seconds + (torch.arange(num_frames, dtype=torch.float64) + 0.5) * step


def plan_candidate_timestamps(
    duration_seconds: float, candidate_fps: float, max_candidate_frames: int, start_seconds: float = 0.0
) -> torch.Tensor:
    """Dense candidates at `candidate_fps` (bin centres), or `max_candidate_frames` evenly spaced if more."""
    num = max(1, math.floor(duration_seconds * candidate_fps))
    return plan_uniform_timestamps(duration_seconds, min(num, max_candidate_frames), start_seconds)


def fit_to_pixel_budget(height: int, width: int, max_pixels: int, multiple: int = 2) -> tuple[int, int]:
    """Largest (H, W) with the same aspect ratio, H * W <= max_pixels, never upscaled, even-sized for FFmpeg."""
    if height * width <= max_pixels:
        return height, width
    scale = math.sqrt(max_pixels / (height * width))
    new_h = max(multiple, int(height * scale) // multiple * multiple)
    new_w = max(multiple, int(width * scale) // multiple * multiple)
    return new_h, new_w


def resize_frames(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bilinear resize of uint8 frames `(N, 3, H, W)` to `size`, staying uint8."""
    out = F.interpolate(frames.float(), size=size, mode="bilinear", antialias=True, align_corners=False)
    return out.round_().clamp_(0, 255).to(torch.uint8)

