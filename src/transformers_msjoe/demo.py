"""`msjoe demo`: the whole MSJoE pipeline, offline, on a generated 10-minute video with tiny random models.

The models are built locally from configs and saved in Hub layout, then loaded through exactly the code a
real run uses (`from_mllm` on a folder, open_clip `local-dir:`). Their weights are random, so the queries and
the answer are noise: the demo shows the data path, the timings and the outputs, not accuracy.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from .modeling_msjoe import MSJoEForVideoQA
from .modeling_outputs import MSJoEVideoQAOutput
from .plotting import plot_selection
from .synthetic_video import DEFAULT_EVENTS, make_synthetic_video
from .tiny_models import save_tiny_clip, save_tiny_mllm

__all__ = ["DemoResult", "run_demo"]

DEMO_QUESTION = "What colour is the square that appears in the middle of the video?"
DEMO_OPTIONS = ["A. red", "B. blue", "C. yellow", "D. green"]


@dataclass
class DemoResult:
    output: MSJoEVideoQAOutput
    video_path: str
    plot_path: str
    report_path: str


def run_demo(
    output_dir: str | os.PathLike = "msjoe-demo",
    *,
    family: str = "qwen2_5_vl",
    duration_seconds: float = 600.0,
    num_key_frames: int = 16,
    selection: str = "msjoe",
    show_progress: bool = True,
) -> DemoResult:
    """Build tiny models and a synthetic video under `output_dir`, answer one question, write plot + JSON."""
    output_dir = os.fspath(output_dir)
    mllm_dir = save_tiny_mllm(os.path.join(output_dir, "models", f"tiny-{family}"), family)
    clip_dir = save_tiny_clip(os.path.join(output_dir, "models", "tiny-clip"))
    video = make_synthetic_video(os.path.join(output_dir, "sample_long_video.mp4"), duration_seconds=duration_seconds)
    model = MSJoEForVideoQA.from_mllm(
        mllm_dir,
        clip=clip_dir,
        num_key_frames=num_key_frames,
        query_max_new_tokens=48,
        answer_max_new_tokens=16,
    )
    output = model.answer(video, DEMO_QUESTION, DEMO_OPTIONS, selection=selection, show_progress=show_progress)
    plot_path = plot_selection(output, video, os.path.join(output_dir, "selection.png"))
    report_path = os.path.join(output_dir, "report.json")
    report = {
        "note": "Tiny random models (weights are random): queries and answer are noise; this demo shows the pipeline.",
        "mllm": mllm_dir,
        "clip": clip_dir,
        "planted_events_seconds": [
            {"start": e.start * duration_seconds, "end": e.end * duration_seconds, "what": e.description}
            for e in DEFAULT_EVENTS
        ],
        **output.to_dict(),
    }
    with open(report_path, "w") as handle:
        json.dump(report, handle, indent=2)
    return DemoResult(output=output, video_path=video, plot_path=plot_path, report_path=report_path)
