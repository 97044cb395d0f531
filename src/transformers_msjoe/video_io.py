"""Video decoding for MSJoE: plan timestamps, decode only those frames, in bounded batches (torchcodec).

Every stage that needs pixels (candidates for CLIP, the low-res preview, the high-res key frames) goes
through `VideoReader.iter_frames_at` / `frames_at`, which seek to the requested timestamps instead of
decoding the whole stream, and resize inside FFmpeg when the reader owns the source.

Candidate times come from `plan_candidate_timestamps` (bin centres at `candidate_fps`, capped). In the
approximate candidate mode they are snapped onto the video's key frames (`snap_to_key_frames`, key frames read
by demuxing only), so that every decode is one seek plus one frame instead of a walk through a GOP.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Union

import torch
import torch.nn.functional as F
from torchcodec.decoders import VideoDecoder
from torchcodec.transforms import Resize

from ._compat import datasets_video_source, probe_video_container, scan_key_frame_seconds
from .fingerprints import FileState, file_state, fingerprint_video

__all__ = [
    "KeyFrameSnap",
    "VideoDecodeError",
    "VideoInfo",
    "VideoInput",
    "VideoReader",
    "fit_to_pixel_budget",
    "open_video",
    "plan_candidate_timestamps",
    "plan_uniform_timestamps",
    "resize_frames",
    "snap_to_key_frames",
]

VideoInput = Union[str, os.PathLike, bytes, VideoDecoder, Mapping[str, Any], "VideoReader"]
SeekMode = Literal["exact", "approximate"]


class VideoDecodeError(ValueError):
    """A video could not be used: the message names the file, the problem and the fix."""


@dataclass(frozen=True)
class VideoInfo:
    """What the pipeline needs to know about a video before decoding any frame."""

    source_name: str  # a path, or "<bytes: N B, sha256:...>" / "<bytes: N B, sampled1:...>" for in-memory videos
    duration_seconds: float
    average_fps: float
    num_frames: int
    width: int
    height: int
    begin_seconds: float = 0.0  # when the stream's first frame is shown (timestamps are on the stream's clock)


def _source_label(source: Any, bytes_fingerprint: str | None = None) -> str:
    """A name for messages: the path, the length and content fingerprint of bytes, or the input's type."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if bytes_fingerprint is not None:
        scheme, digest = bytes_fingerprint.split(":", 1)
        return f"<bytes: {len(source)} B, {scheme}:{digest[:16]}>"
    return f"<{type(source).__name__}>"


def _first_line(err: BaseException) -> str:
    """torchcodec errors read "function, file.cpp:line, reason"; keep only the reason's first line."""
    lines = str(err).strip().splitlines()
    if not lines:
        return type(err).__name__
    parts = lines[0].split(", ", 2)
    return parts[2] if len(parts) == 3 and re.search(r":\d+$", parts[1]) else lines[0]


def _diagnose_open_failure(source: str | bytes, label: str, err: BaseException) -> VideoDecodeError:
    """Turn a decoder-construction failure into the error that names the actual problem and its fix."""
    probe = probe_video_container(source)
    if probe is not None and probe["readable"] and probe["video_streams"] == 0:
        if not probe["media_types"]:
            return VideoDecodeError(
                f"{label} is an empty container with no streams at all (a zero-length video: no frame was ever "
                "written, e.g. a recording stopped before its first frame). Pass a video with at least one frame."
            )
        return VideoDecodeError(
            f"{label} has no video stream (it holds only {', '.join(probe['media_types'])}). Pass a file with a "
            "video track."
        )
    if probe is not None and probe["readable"]:
        return VideoDecodeError(
            f"{label} has a video stream but no decodable frames (a zero-length or damaged video: "
            f"{_first_line(err)}). Pass a video with at least one frame, or re-encode it, e.g. "
            "`ffmpeg -i in -c:v libx264 out.mp4`."
        )
    if probe is None and "video stream" in str(err):
        return VideoDecodeError(
            f"{label} has no video stream (audio-only or a non-video file). Pass a file with a video track."
        )
    return VideoDecodeError(
        f"{label} is not a readable video (corrupt, truncated, or not a video file at all): {_first_line(err)}. "
        "Check the file, or re-encode it, e.g. `ffmpeg -i in -c:v libx264 out.mp4`."
    )


def _open_decoder(source: str | bytes, label: str, **decoder_kwargs: Any) -> VideoDecoder:
    """Open a torchcodec decoder and turn its low-level failures into errors a user can act on."""
    if isinstance(source, str) and not os.path.exists(source):
        raise VideoDecodeError(
            f"Video file not found: {source!r}. Check the path (relative paths resolve against {os.getcwd()!r})."
        )
    if isinstance(source, str) and os.path.isdir(source):
        raise VideoDecodeError(f"{source!r} is a folder, not a video file. Pass the path of one video file.")
    if isinstance(source, bytes) and not source:
        raise VideoDecodeError("The video bytes are empty (0 bytes). Pass the bytes of a whole video file.")
    try:
        return VideoDecoder(source, **decoder_kwargs)
    except (ValueError, RuntimeError) as err:
        raise _diagnose_open_failure(source, label, err) from err


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
        # sampled content fingerprint of a bytes input: names it in messages and keys it in the feature cache
        self.bytes_fingerprint: str | None = None
        if isinstance(source, VideoReader):
            self.bytes_fingerprint = source.bytes_fingerprint
            source = source._owned_source if source._owned_source is not None else source._decoders[None]
        if isinstance(source, Mapping):
            source = self._from_datasets_value(source)
        if isinstance(source, os.PathLike):
            source = os.fspath(source)
        if isinstance(source, (bytearray, memoryview)):
            source = bytes(source)
        if isinstance(source, VideoDecoder):
            # reopen from the file a `datasets` decoder came from: resized decoders, key frames, fingerprints
            source = datasets_video_source(source) or source
        if isinstance(source, bytes) and self.bytes_fingerprint is None:
            # bounded cost (at most 16 MiB hashed, 4 MiB for large inputs), unlike a sha256 of every byte
            self.bytes_fingerprint = fingerprint_video(source, "sampled")
        self.label = _source_label(source, self.bytes_fingerprint)
        self._key_frame_seconds: torch.Tensor | None = None
        self._file_state: FileState | None = None
        if isinstance(source, VideoDecoder):
            self._decoders[None] = source
        elif isinstance(source, (str, bytes)):
            self._owned_source = source
            if isinstance(source, str):
                self._file_state = file_state(source)  # before opening: a later change is then always noticed
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
                f"{self.label} is a zero-length video: its video stream has no frames (duration {duration}s, "
                f"{num_frames} frames). Pass a video with at least one frame."
            )
        fps = meta.average_fps or num_frames / duration
        begin = float(meta.begin_stream_seconds or 0.0)
        return VideoInfo(
            self.label, float(duration), float(fps), int(num_frames), int(meta.width), int(meta.height), begin
        )

    @property
    def content_source(self) -> str | bytes | VideoDecoder:
        """The underlying path or bytes (or the foreign decoder), for content hashing by the feature cache."""
        return self._owned_source if self._owned_source is not None else self._decoders[None]

    def source_unchanged(self) -> bool:
        """Whether the file this reader opened still has the (device, inode, size, mtime) it had before opening.

        `False` once the path was replaced (a new file renamed onto it) or edited in place: frames decoded by this
        reader then may not belong to the file's current content, so the feature cache must neither serve nor store
        features for it. Always `True` for bytes and decoders (their content cannot change under the reader).
        """
        if not isinstance(self._owned_source, str):
            return True
        return self._file_state is not None and file_state(self._owned_source) == self._file_state

    def key_frame_timestamps(self) -> torch.Tensor:
        """Presentation times `(K,)` float64 of the video's key frames (read once by demuxing, no decoding).

        A key frame decodes on its own, so seeking to one costs a single frame decode, whereas any other frame
        needs the GOP walk from the key frame before it.
        """
        if self._key_frame_seconds is None:
            if self._owned_source is None:
                raise VideoDecodeError(
                    f"{self.label}: key frames can only be read from a path or bytes, not from a bare torchcodec "
                    "decoder. Pass the video's path (or bytes, or a `datasets` Video value), or use "
                    "candidate_seek_mode='exact'."
                )
            try:
                self._key_frame_seconds = scan_key_frame_seconds(self._owned_source)
            except (ValueError, RuntimeError) as err:
                raise VideoDecodeError(
                    f"{self.label}: could not read the key-frame index: {_first_line(err)}."
                ) from err
            if self._key_frame_seconds.numel() == 0:
                raise VideoDecodeError(
                    f"{self.label} has no key frame in its video stream; use candidate_seek_mode='exact'."
                )
        return self._key_frame_seconds

    @property
    def begin_seconds(self) -> float:
        return self.info.begin_seconds

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
                    f"{self.label} failed to decode frames near {seconds[start]:.2f}s: {_first_line(err)}. "
                    "The file may be damaged; re-encode it, e.g. `ffmpeg -i in -c:v libx264 out.mp4`."
                ) from err
            if frames.shape[1] != 3 and frames.shape[-1] == 3:
                frames = frames.permute(0, 3, 1, 2)  # a foreign decoder built with dimension_order="NHWC"
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


@dataclass(frozen=True)
class KeyFrameSnap:
    """Candidate times moved onto key frames (`candidate_seek_mode="approximate"`)."""

    timestamps: torch.Tensor  # (T',) float64 distinct key-frame times, ascending; T' <= T
    error_seconds: torch.Tensor  # (T,) float64 |planned - key frame used| for every planned candidate

    @property
    def mean_error(self) -> float:
        return float(self.error_seconds.mean()) if self.error_seconds.numel() else 0.0

    @property
    def max_error(self) -> float:
        return float(self.error_seconds.max()) if self.error_seconds.numel() else 0.0


def snap_to_key_frames(planned: torch.Tensor, key_frame_seconds: torch.Tensor) -> KeyFrameSnap:
    """Move each planned time `(T,)` to its nearest key frame `(K,)`; duplicates collapse to one candidate.

    Each candidate then decodes with one seek and one frame decode, with no walk through its GOP. Where key
    frames are sparser than candidates (GOP longer than 1 / candidate_fps), fewer distinct candidates remain.
    """
    keys = torch.as_tensor(key_frame_seconds, dtype=torch.float64).sort().values  # (K,)
    planned = torch.as_tensor(planned, dtype=torch.float64)  # (T,)
    right = torch.searchsorted(keys, planned).clamp(max=len(keys) - 1)  # (T,) first key >= t (or the last)
    left = (right - 1).clamp(min=0)  # (T,)
    use_left = (planned - keys[left]).abs() <= (keys[right] - planned).abs()
    nearest = torch.where(use_left, keys[left], keys[right])  # (T,)
    return KeyFrameSnap(timestamps=torch.unique(nearest), error_seconds=(nearest - planned).abs())


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
