"""`MSJoEProcessor`: the wrapped MLLM's own processor + MSJoE's prompt templates + frame packing.

This is the one place that knows how each MLLM family takes frames: as one video (with `VideoMetadata`, so
Qwen3-VL and SmolVLM print true timestamps and Qwen2.5-VL gets the true sampling rate) when the processor
has a video processor, else as a list of images; and how each family's resizer reads a pixel budget, so the
low-res preview and the high-res key frames get the token counts the config asks for.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import torch
from transformers import AutoProcessor, BatchFeature, ProcessorMixin
from transformers.utils import PushToHubMixin, logging
from transformers.video_utils import VideoMetadata

from .hub_utils import find_optional_file
from .prompts import (
    ANSWER_TEMPLATE,
    ANSWER_TEMPLATE_OPEN,
    QUERY_TEMPLATE,
    LetteredOption,
    format_options,
)
from .video_io import VideoInfo

logger = logging.get_logger(__name__)

__all__ = ["MSJoEProcessor", "PROCESSOR_CONFIG_NAME"]

PROCESSOR_CONFIG_NAME = "msjoe_processor_config.json"

# How a sub-processor's `size` reads a pixel budget. Processors not listed resize to a fixed size of their
# own (LLaVA-OneVision 384 px, SmolVLM's longest edge): for them the budget only bounds the decoded frames.
_PER_FRAME_PIXEL_BUDGET = ("Qwen2VLVideoProcessor", "Qwen2VLImageProcessor")
_PER_VIDEO_PIXEL_BUDGET = ("Qwen3VLVideoProcessor",)


def _pixel_budget_kwargs(sub_processor: Any, max_pixels: int, num_frames: int) -> dict[str, Any]:
    """`size` override so that a pixel-budget resizer neither upscales past nor exceeds `max_pixels` per frame."""
    name = type(sub_processor).__name__
    default_min = getattr(getattr(sub_processor, "size", None), "shortest_edge", None) or 0
    if name.startswith(_PER_FRAME_PIXEL_BUDGET):
        return {"size": {"shortest_edge": min(default_min, max_pixels), "longest_edge": max_pixels}}
    if name.startswith(_PER_VIDEO_PIXEL_BUDGET):
        total = max_pixels * max(num_frames, 1)
        return {"size": {"shortest_edge": min(default_min, total), "longest_edge": total}}
    return {}


class MSJoEProcessor(PushToHubMixin):
    """Builds the inputs of MSJoE's two MLLM turns and decodes their outputs.

    Args:
        mllm_processor: the wrapped MLLM's processor (`AutoProcessor.from_pretrained(mllm_id)`).
        query_template / answer_template / open_answer_template: `str.format` templates with the fields
            `{num_frames}`, `{question}`, `{options_block}` (and `{num_queries}` for the query turn).
        frames_as_video: feed frames as one video (`True`) or a list of images (`False`); `None` = video
            when the processor has a video processor.
    """

    def __init__(
        self,
        mllm_processor: ProcessorMixin,
        *,
        query_template: str = QUERY_TEMPLATE,
        answer_template: str = ANSWER_TEMPLATE,
        open_answer_template: str = ANSWER_TEMPLATE_OPEN,
        frames_as_video: bool | None = None,
    ):
        self.mllm_processor = mllm_processor
        self.query_template = query_template
        self.answer_template = answer_template
        self.open_answer_template = open_answer_template
        has_video = getattr(mllm_processor, "video_processor", None) is not None
        has_image = getattr(mllm_processor, "image_processor", None) is not None
        if not (has_video or has_image):
            raise ValueError(
                f"{type(mllm_processor).__name__} has neither a video nor an image processor: MSJoE needs an MLLM "
                "that takes visual input (an image-text-to-text model)."
            )
        if frames_as_video and not has_video:
            raise ValueError(f"frames_as_video=True but {type(mllm_processor).__name__} has no video processor.")
        self.frames_as_video = has_video if frames_as_video is None else frames_as_video
        if self.tokenizer.pad_token is None:  # batched prompts need one; EOS is the usual stand-in
            self.tokenizer.pad_token = self.tokenizer.eos_token

    @property
    def tokenizer(self):
        return self.mllm_processor.tokenizer

    # ------------------------------------------------------------------ prompts
    def query_prompt(self, question: str, options: Sequence[LetteredOption], num_frames: int, num_queries: int) -> str:
        """User text of the query turn (paper §3.1): reason on the preview, write visual queries."""
        return self.query_template.format(
            num_frames=num_frames, question=question, options_block=format_options(options), num_queries=num_queries
        )

    def answer_prompt(self, question: str, options: Sequence[LetteredOption], num_frames: int) -> str:
        """User text of the answer turn (paper §3.4): answer from the K key frames only."""
        template = self.answer_template if options else self.open_answer_template
        return template.format(num_frames=num_frames, question=question, options_block=format_options(options))

    # ------------------------------------------------------------------ inputs
    def _messages(self, prompt: str, num_frames: int) -> list[dict[str, Any]]:
        if num_frames == 0:  # e.g. a query turn with no preview (paper Fig. 7, N_init = 0)
            visual = []
        elif self.frames_as_video:
            visual = [{"type": "video"}]
        else:
            visual = [{"type": "image"} for _ in range(num_frames)]
        return [{"role": "user", "content": visual + [{"type": "text", "text": prompt}]}]

    def build_inputs(
        self,
        prompts: Sequence[str],
        frames: Sequence[torch.Tensor],
        timestamps: Sequence[torch.Tensor],
        videos: Sequence[VideoInfo],
        max_pixels: int,
    ) -> BatchFeature:
        """Tokenised chat prompts with their frames, left-padded, ready for `mllm.generate` or a forward.

        Args:
            prompts: user texts, one per row.
            frames: uint8 `(N_i, 3, H, W)` per row (rows of one batch should share N for LLaVA-style models).
            timestamps: `(N_i,)` seconds of those frames in the source video.
            videos: the source video of each row (fps and length, for `VideoMetadata`).
            max_pixels: per-frame pixel budget (preview or key frames).
        """
        texts = [
            self.mllm_processor.apply_chat_template(
                self._messages(p, len(f)), tokenize=False, add_generation_prompt=True
            )
            for p, f in zip(prompts, frames)
        ]
        num_frames = max(len(f) for f in frames)
        if num_frames == 0:
            return self.mllm_processor(text=texts, padding=True, padding_side="left", return_tensors="pt")
        if self.frames_as_video:
            metadata = [self._metadata(info, ts, f) for info, ts, f in zip(videos, timestamps, frames)]
            budget = _pixel_budget_kwargs(self.mllm_processor.video_processor, max_pixels, num_frames)
            return self.mllm_processor(
                text=texts,
                videos=list(frames),
                video_metadata=metadata,
                videos_kwargs=budget,
                padding=True,
                padding_side="left",  # batched generation continues every row from its last prompt token
                return_tensors="pt",
            )
        budget = _pixel_budget_kwargs(self.mllm_processor.image_processor, max_pixels, 1)
        return self.mllm_processor(
            text=texts,
            images=[list(f) for f in frames],
            images_kwargs=budget,
            padding=True,
            padding_side="left",
            return_tensors="pt",
        )

    @staticmethod
    def _metadata(info: VideoInfo, timestamps: torch.Tensor, frames: torch.Tensor) -> VideoMetadata:
        indices = [int(round(float(t) * info.average_fps)) for t in timestamps]
        return VideoMetadata(
            total_num_frames=info.num_frames,
            fps=info.average_fps,
            width=int(frames.shape[-1]),
            height=int(frames.shape[-2]),
            duration=info.duration_seconds,
            frames_indices=indices,
        )

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "query_template": self.query_template,
            "answer_template": self.answer_template,
            "open_answer_template": self.open_answer_template,
            "frames_as_video": self.frames_as_video,
        }

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs: Any) -> None:
        """Save the MLLM processor files (loadable on their own with `AutoProcessor`) plus MSJoE's templates.

        `push_to_hub` (from `PushToHubMixin`) calls this on a temporary folder and uploads it.
        """
        os.makedirs(save_directory, exist_ok=True)
        self.mllm_processor.save_pretrained(save_directory)
        with open(os.path.join(save_directory, PROCESSOR_CONFIG_NAME), "w") as handle:
            json.dump(self.to_dict(), handle, indent=2)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any) -> MSJoEProcessor:
        """Load from an MSJoE checkpoint, or from a plain MLLM repo (default templates). `frames_as_video` (if
        given) overrides the saved choice."""
        frames_as_video = kwargs.pop("frames_as_video", None)
        hub_kwargs = {k: kwargs.pop(k) for k in ("revision", "token", "cache_dir", "local_files_only") if k in kwargs}
        mllm_processor = AutoProcessor.from_pretrained(pretrained_model_name_or_path, **hub_kwargs, **kwargs)
        config_file = find_optional_file(pretrained_model_name_or_path, PROCESSOR_CONFIG_NAME, **hub_kwargs)
        settings: dict[str, Any] = {}
        if config_file is not None:
            with open(config_file) as handle:
                settings = json.load(handle)
        if frames_as_video is not None:
            settings["frames_as_video"] = frames_as_video
        return cls(mllm_processor, **settings)
