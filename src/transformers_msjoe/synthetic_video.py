"""Generated long videos with planted events, for the demo, tests and benchmarks (FFmpeg, no Python frames).

FFmpeg's `testsrc2` gives a moving, codec-realistic background; each planted event is a filled box of a
given colour shown during [start, end] (FFmpeg's `between` includes both ends). Rendering streams inside
FFmpeg, so an hour of video costs no memory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["DEFAULT_EVENTS", "PlantedEvent", "make_synthetic_video"]


@dataclass(frozen=True)
class PlantedEvent:
    """A coloured box on screen from `start` to `end` seconds (the "needle" a question can be about)."""

    start: float
    end: float
    color: str = "red"
    description: str = "a red square"


DEFAULT_EVENTS = (
    PlantedEvent(0.15, 0.18, "red", "a red square"),
    PlantedEvent(0.52, 0.55, "blue", "a blue square"),
    PlantedEvent(0.81, 0.84, "yellow", "a yellow square"),
)  # start/end as fractions of the duration when `relative=True`


def make_synthetic_video(
    path: str | os.PathLike,
    *,
    duration_seconds: float = 600.0,
    fps: float = 2.0,
    size: tuple[int, int] = (160, 120),
    events: Sequence[PlantedEvent] = DEFAULT_EVENTS,
    relative: bool = True,
    gop: int | None = None,
    crf: int = 35,
) -> str:
    """Render an H.264 MP4 of `duration_seconds` at `fps` with the planted `events`; returns the path.

    Args:
        size: (width, height).
        relative: event times are fractions of the duration (else seconds).
        gop: key-frame interval in frames (default: x264's 250); long GOPs make seeking expensive.
    """
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("The `ffmpeg` command is needed to render synthetic videos: `apt-get install ffmpeg`.")
    width, height = size
    boxes = []
    for event in events:
        start, end = (
            (event.start * duration_seconds, event.end * duration_seconds) if relative else (event.start, event.end)
        )
        boxes.append(
            f"drawbox=x={width // 4}:y={height // 4}:w={width // 2}:h={height // 2}:color={event.color}@1.0:t=fill:"
            f"enable='between(t,{start:.3f},{end:.3f})'"
        )
    filters = ",".join(boxes) or "null"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp_path = f"{os.fspath(path)}.tmp.mp4"
    command = [
        ffmpeg, "-loglevel", "error", "-y", "-f", "lavfi",
        "-i", f"testsrc2=size={width}x{height}:rate={fps}:duration={duration_seconds}",
        "-vf", filters, "-c:v", "libx264", "-preset", "ultrafast", "-crf", str(crf), "-pix_fmt", "yuv420p",
    ]  # fmt: skip
    if gop is not None:
        command += ["-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0"]
    subprocess.run(command + [tmp_path], check=True)
    os.replace(tmp_path, path)  # a crash never leaves a half-written video under the final name
    return os.fspath(path)
