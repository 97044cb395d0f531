"""`MSJoEProcessor`: the wrapped MLLM's own processor + MSJoE's prompt templates + frame packing.

This is the one place that knows how each MLLM family takes frames: as one video (with `VideoMetadata`, so
Qwen3-VL and SmolVLM print true timestamps and Qwen2.5-VL gets the true sampling rate) when the processor
has a video processor, else as a list of images; and how each family's resizer reads a pixel budget, so the
low-res preview and the high-res key frames get the token counts the config asks for.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from typing import Any

import torch
from transformers import (
    AutoProcessor,
    BatchFeature,
    LlavaOnevisionVideoProcessor,
    ProcessorMixin,
    Qwen2VLImageProcessor,
    Qwen2VLVideoProcessor,
    Qwen3VLVideoProcessor,
    SmolVLMImageProcessor,
    SmolVLMVideoProcessor,
)
from transformers.utils import PushToHubMixin, logging
from transformers.video_utils import VideoMetadata

from .hub_utils import find_optional_file, hub_kwargs
from .prompts import (
    ANSWER_TEMPLATE,
    ANSWER_TEMPLATE_OPEN,
    QUERY_TEMPLATE,
    LetteredOption,
    format_options,
)
from .video_io import VideoInfo

logger = logging.get_logger(__name__)

__all__ = ["MSJoEProcessor", "PROCESSOR_CONFIG_NAME", "frame_indices"]

PROCESSOR_CONFIG_NAME = "msjoe_processor_config.json"

# Resizers that read `size` as a pixel budget per frame, or per clip (Qwen3-VL video: the budget of all frames).
_PER_FRAME_PIXEL_BUDGET = (Qwen2VLImageProcessor, Qwen2VLVideoProcessor)
_PER_CLIP_PIXEL_BUDGET = (Qwen3VLVideoProcessor,)
# Video processors that resize every frame to one fixed size (a fixed-size vision tower): a frame costs the same
# tokens whatever the budget, so the budgets only bound the decoded frames.
_FIXED_SIZE_VIDEO = (LlavaOnevisionVideoProcessor, SmolVLMVideoProcessor)
# Seconds of slack when mapping a timestamp to the frame shown then (float round-off at frame boundaries).
_FRAME_BOUNDARY_TOLERANCE = 1e-6


def _pixel_budget_kwargs(sub_processor: Any, max_pixels: int, frames: Sequence[torch.Tensor]) -> dict[str, Any]:
    """Per-call `size` override so that the family's resizer spends about `max_pixels` per frame (rows of frames
    `(N_i, 3, H, W)` decoded within that budget).

    The override only ever lowers the processor's own setting (it neither upscales past the decoded frames nor
    goes past the checkpoint's maximum), so the low-res preview really costs fewer visual tokens than key frames.
    """
    if isinstance(sub_processor, _PER_FRAME_PIXEL_BUDGET + _PER_CLIP_PIXEL_BUDGET):
        num_frames = max(len(f) for f in frames) if isinstance(sub_processor, _PER_CLIP_PIXEL_BUDGET) else 1
        budget = max_pixels * max(num_frames, 1)
        return {"size": {"shortest_edge": min(sub_processor.size.shortest_edge or 0, budget), "longest_edge": budget}}
    if isinstance(sub_processor, SmolVLMImageProcessor):
        # it resizes the longest edge to `size` and tiles by `max_image_size`: tiles follow the decoded frame size
        longest = min(max(max(f.shape[-2:]) for f in frames), sub_processor.size.longest_edge)
        return {"size": {"longest_edge": int(longest)}}
    if isinstance(sub_processor, _FIXED_SIZE_VIDEO):
        logger.warning_once(
            f"{type(sub_processor).__name__} resizes every frame to one fixed size, so `preview_max_pixels` and "
            "`key_frame_max_pixels` only bound the decoded frames: a preview frame costs as many visual tokens as a "
            "key frame. Lower `num_preview_frames` to shorten the query turn."
        )
    return {}


def _video_kwargs(video_processor: Any, max_pixels: int, frames: Sequence[torch.Tensor]) -> dict[str, Any]:
    """`videos_kwargs` for one turn: the pixel budget, and no re-sampling of the frames MSJoE already chose."""
    kwargs = {"do_sample_frames": False, **_pixel_budget_kwargs(video_processor, max_pixels, frames)}
    if "cap_pixels_per_frame" in video_processor.valid_kwargs.__annotations__:
        # Qwen's optional per-frame cap would override the config's budget (Qwen2-VL shares ~600 tokens over the
        # clip); it is declared only while transformers keeps the option (deprecated in 5.22), so it goes with it.
        kwargs["cap_pixels_per_frame"] = False
    return kwargs


def frame_indices(
    timestamps: torch.Tensor | Sequence[float], fps: float, num_frames: int, begin_seconds: float = 0.0
) -> list[int]:
    """Index of the frame shown at each timestamp (seconds on the stream's clock, like `VideoReader.frames_at`).

    Frame `i` is shown over `[begin + i / fps, begin + (i + 1) / fps)`, so the index is `floor((t - begin) * fps)`
    (not `round(t * fps)`, which picks the next frame in the second half of each interval and ignores a
    stream that does not start at 0); clamped to the video's frames.
    """
    return [
        min(max(math.floor((float(t) - begin_seconds) * fps + _FRAME_BOUNDARY_TOLERANCE), 0), num_frames - 1)
        for t in timestamps
    ]


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
        attributes = mllm_processor.get_attributes() if isinstance(mllm_processor, ProcessorMixin) else []
        has_video = "video_processor" in attributes and mllm_processor.video_processor is not None
        has_image = "image_processor" in attributes and mllm_processor.image_processor is not None
        if not (has_video or has_image):
            raise ValueError(
                f"{type(mllm_processor).__name__} has neither a video nor an image processor: MSJoE needs an MLLM "
                "that takes visual input (an image-text-to-text model)."
            )
        self.has_video_processor = has_video
        self.frames_as_video = frames_as_video
        if self.tokenizer.pad_token is None:  # batched prompts need one; EOS is the usual stand-in
            self.tokenizer.pad_token = self.tokenizer.eos_token

    @property
    def tokenizer(self):
        return self.mllm_processor.tokenizer

    @property
    def frames_as_video(self) -> bool:
        """Frames go to the MLLM as one video (`True`) or as a list of images (`False`).

        Inside `MSJoEForVideoQA` this follows `config.frames_as_video`, the one setting users change.
        """
        return self._frames_as_video

    @frames_as_video.setter
    def frames_as_video(self, value: bool | None) -> None:
        """`None` picks video when the MLLM's processor has a video processor."""
        if value and not self.has_video_processor:
            raise ValueError(
                f"frames_as_video=True but {type(self.mllm_processor).__name__} has no video processor: set "
                "frames_as_video=False (frames as a list of images) or None (automatic)."
            )
        self._frames_as_video = self.has_video_processor if value is None else bool(value)

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
            timestamps: `(N_i,)` seconds of those frames on the video stream's clock (as `VideoReader` takes them).
            videos: the source video of each row (fps, length and stream start, for `VideoMetadata`: frame indices
                and the times the MLLM reads count from the stream's first frame).
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
            metadata = [self._metadata(*row) for row in zip(videos, timestamps, frames)]
            return self.mllm_processor(
                text=texts,
                videos=list(frames),
                video_metadata=metadata,
                videos_kwargs=_video_kwargs(self.mllm_processor.video_processor, max_pixels, frames),
                padding=True,
                padding_side="left",  # batched generation continues every row from its last prompt token
                return_tensors="pt",
            )
        return self.mllm_processor(
            text=texts,
            images=[list(f) for f in frames],
            images_kwargs=_pixel_budget_kwargs(self.mllm_processor.image_processor, max_pixels, frames),
            padding=True,
            padding_side="left",
            return_tensors="pt",
        )

    @staticmethod
    def _metadata(info: VideoInfo, timestamps: torch.Tensor, frames: torch.Tensor) -> VideoMetadata:
        """The frames' source positions: families print their times or derive the sampling rate from them."""
        indices = frame_indices(timestamps, info.average_fps, info.num_frames, info.begin_seconds)
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
        mllm_processor = AutoProcessor.from_pretrained(pretrained_model_name_or_path, **kwargs)
        config_file = find_optional_file(pretrained_model_name_or_path, PROCESSOR_CONFIG_NAME, **hub_kwargs(kwargs))
        settings: dict[str, Any] = {}
        if config_file is not None:
            with open(config_file) as handle:
                settings = json.load(handle)
        if frames_as_video is not None:
            settings["frames_as_video"] = frames_as_video
        return cls(mllm_processor, **settings)
