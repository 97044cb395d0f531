"""Configuration of MSJoE: the wrapped MLLM, the frozen CLIP scorer, frame budgets and the U-Net sampler.

Reference: Tan et al., "MSJoE: Jointly Evolving MLLM and Sampler for Efficient Long-Form Video
Understanding", CVPR 2026, https://huggingface.co/papers/2602.22932. Where the paper is silent the
field still exists, carries the inferred default, and says "(inferred)".

No torch import here: configs must load anywhere.
"""

from typing import Literal

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

__all__ = ["MSJoEConfig", "MSJoESamplerConfig", "parse_clip_identity"]

SELECTION_MODES = ("topk", "sample")


@strict
class MSJoESamplerConfig(PreTrainedConfig):
    r"""
    Configuration of [`MSJoEFrameSampler`], the 1-D temporal U-Net ("U-Sampler", paper §3.3) that turns the
    query x frame similarity matrix into one selection logit per candidate frame.

    The paper gives "a lightweight 1D U-Net, about 2M parameters" and nothing more; every architectural
    value below is (inferred) and sized to land near 2M parameters with the defaults (1.85M).

    > Parameters that control the input

    max_num_queries (`int`, *optional*, defaults to 4):
        Number of query rows the U-Net accepts as input channels. Fewer queries are zero-padded and
        flagged in a query-mask channel; more is an error. The paper uses "up to four" queries.

    > Parameters that control the architecture (all inferred)

    base_channels (`int`, *optional*, defaults to 64):
        Width of the first U-Net level. Each level multiplies it by `channel_multipliers[level]`.
    channel_multipliers (`list[int]`, *optional*, defaults to `[1, 2, 4, 4]`):
        One entry per level; `len(channel_multipliers) - 1` down-samplings by 2 along time. Candidate sequences
        are padded to a multiple of `2 ** (len - 1)` and the padding is masked.
    kernel_size (`int`, *optional*, defaults to 3):
        Temporal kernel of every convolution (odd, so that padding keeps the length).
    num_groups (`int`, *optional*, defaults to 8):
        Groups of the GroupNorm after each convolution; must divide every level's width.
    dropout (`float`, *optional*, defaults to 0.0):
        Dropout inside the convolution blocks.

    > Parameters that control how similarities are fed to the network

    input_normalization (`str`, *optional*, defaults to `"zscore"`):
        `"zscore"` standardises each query row over its valid frames (raw CLIP cosines live in a narrow band,
        about 0.1-0.35 for ViT-L/14, and shift from video to video); `"none"` feeds raw cosines. (inferred)
    """

    model_type = "msjoe_sampler"

    max_num_queries: int = 4
    base_channels: int = 64
    channel_multipliers: list[int] | tuple[int, ...] = (1, 2, 4, 4)
    kernel_size: int = 3
    num_groups: int = 8
    dropout: float = 0.0
    input_normalization: Literal["zscore", "none"] = "zscore"

    def __post_init__(self, **kwargs):
        self.channel_multipliers = list(self.channel_multipliers)
        super().__post_init__(**kwargs)

    @property
    def level_channels(self) -> list[int]:
        """Width of each U-Net level, from the finest (full time resolution) to the coarsest."""
        return [self.base_channels * m for m in self.channel_multipliers]

    @property
    def time_multiple(self) -> int:
        """Candidate sequences are padded to a multiple of this (one factor of 2 per down-sampling)."""
        return 2 ** (len(self.channel_multipliers) - 1)

    def validate_sampler(self):
        """Called by `@strict` validation: each error names the field, the value and the fix."""
        if self.max_num_queries < 1:
            raise ValueError(
                f"`max_num_queries` must be >= 1, got {self.max_num_queries}; use the default 4 (the paper's "
                "'up to four' queries)."
            )
        if not self.channel_multipliers or any(m < 1 for m in self.channel_multipliers):
            raise ValueError(
                f"`channel_multipliers` must be a non-empty list of positive integers, got "
                f"{self.channel_multipliers}; the default is [1, 2, 4, 4]."
            )
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"`kernel_size` must be a positive odd number, got {self.kernel_size}; try 3 or 5.")
        bad = [c for c in self.level_channels if c % self.num_groups]
        if bad:
            raise ValueError(
                f"`num_groups`={self.num_groups} must divide every level width {self.level_channels} "
                f"(from `base_channels` x `channel_multipliers`); pick a divisor of {self.base_channels}."
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1), got {self.dropout}; the default is 0.0.")


def parse_clip_identity(clip: str) -> tuple[str, str | None]:
    """Split a CLIP identity into open_clip's `(model_name, pretrained)`.

    Accepted forms: `"ViT-L-14/openai"` (architecture + pretrained tag), `"ViT-L-14"` (random weights),
    `"hf-hub:org/repo"` and `"local-dir:/path"` (open_clip schemas, weights inside), or a path to a
    local folder laid out like an open_clip Hub repo (`open_clip_config.json` + weights).
    """
    import os

    if not clip or not isinstance(clip, str):
        raise ValueError(f"`clip` must be a non-empty string such as 'ViT-L-14/openai', got {clip!r}.")
    if clip.startswith(("hf-hub:", "local-dir:")):
        return clip, None
    if os.path.isdir(clip):
        return f"local-dir:{os.path.abspath(clip)}", None
    if "/" in clip:  # open_clip architecture names have no "/": the rest is a tag or a weights-file path
        name, _, tag = clip.partition("/")
        return name, tag or None
    return clip, None


@strict
class MSJoEConfig(PreTrainedConfig):
    r"""
    Configuration of [`MSJoEForVideoQA`]: any image-text-to-text MLLM, a frozen CLIP scorer and the U-Net sampler.

    The fields most users change are `num_key_frames` (the answer budget K), `clip_model_name` /
    `clip_pretrained`, and the two pixel budgets. Paper: https://huggingface.co/papers/2602.22932.

    > The composed models

    mllm_config (`dict` or [`PreTrainedConfig`], *optional*):
        Config of the wrapped MLLM; any model type that `AutoModelForImageTextToText` knows (Qwen2.5-VL,
        Qwen3-VL, LLaVA-OneVision, SmolVLM, ...). Defaults to a Qwen2.5-VL config, the paper's base model.
    sampler_config (`dict` or [`MSJoESamplerConfig`], *optional*):
        Config of the U-Net sampler (paper §3.3).
    clip_model_name (`str`, *optional*, defaults to `"ViT-L-14"`):
        open_clip architecture name, or an open_clip schema (`"hf-hub:org/repo"`, `"local-dir:/path"`). The paper
        uses a frozen "CLIP-ViT-Large-Patch14". CLIP is never part of the saved weights: it is loaded from here.
    clip_pretrained (`str`, *optional*, defaults to `"openai"`):
        open_clip pretrained tag for `clip_model_name` (ignored for schemas). `None` means random weights.
    sampler_is_trained (`bool`, *optional*, defaults to `False`):
        Whether the sampler weights come from training (`MSJoEGRPOTrainer` sets it when it updates the sampler;
        `from_mllm(sampler=...)` sets it for given weights). While `False`, the learned selection warns that its
        picks are arbitrary and the model card says the sampler is untrained.

    > Parameters that control the candidate frames (paper §3.2)

    candidate_fps (`float`, *optional*, defaults to 1.0):
        Rate at which dense candidate frames are taken for CLIP scoring. The paper's 1 fps (single source).
    max_candidate_frames (`int`, *optional*, defaults to 1024):
        Cap on the number of candidates; longer videos get this many evenly spaced candidates instead of
        `candidate_fps`. (inferred: the paper gives no cap; 1024 covers 17 minutes at 1 fps)
    candidate_seek_mode (`str`, *optional*, defaults to `"exact"`):
        `"exact"` decodes the frame shown at each candidate time; `"approximate"` moves each candidate to its
        nearest key frame and decodes only key frames: much faster on long-GOP videos, at the cost of a timestamp
        error (up to half the key-frame interval, reported in the outputs). Candidates that land on the same key
        frame are merged, so where key frames are sparser than `candidate_fps` the number of candidates T
        shrinks to the number of key frames. (not in the paper, which samples candidates at 1 fps: a speed option)

    > Parameters that control the two MLLM turns (paper §3.1, §3.4)

    num_key_frames (`int`, *optional*, defaults to 32):
        K, the frames the answer turn sees (32 and 64 in the paper's main table).
    num_preview_frames (`int`, *optional*):
        Uniform low-resolution preview frames the query turn sees. `None` means `num_key_frames // 2`, the paper's
        best setting (Fig. 7).
    num_queries (`int`, *optional*, defaults to 4):
        Visual queries the query turn is asked for ("up to four"); at most `sampler_config.max_num_queries`.
    use_question_as_query (`bool`, *optional*, defaults to `False`):
        Also score frames against the question itself. The paper uses it only as an ablation baseline.
    preview_max_pixels (`int`, *optional*, defaults to 25088):
        Pixel budget per preview frame; frames are downscaled (aspect kept) to fit. 25088 = 32 x 28 x 28, about
        32 Qwen2.5-VL visual tokens per frame, the paper's "low resolution" preview (inferred). It sets the token
        count where the family's resizer allows: Qwen2-VL / Qwen2.5-VL / Qwen3-VL, and SmolVLM's tiling when frames
        go in as images. LLaVA-OneVision video and SmolVLM video resize every frame to one fixed size (a
        fixed-size vision tower): there the budget only bounds the decoded frames, a preview frame costs as many
        tokens as a key frame (a one-time warning says so), and `num_preview_frames` is the lever.
    key_frame_max_pixels (`int`, *optional*, defaults to 235200):
        Pixel budget per key frame, about 300 Qwen2.5-VL tokens (TSPO's evaluation setting; inferred, the paper
        says only "high resolution").
    query_max_new_tokens (`int`, *optional*, defaults to 256):
        Generation budget of the query turn (it may reason before writing the queries). (inferred)
    answer_max_new_tokens (`int`, *optional*, defaults to 64):
        Generation budget of the answer turn. (inferred)
    frames_as_video (`bool`, *optional*):
        Feed frames to the MLLM as one video (`True`) or as a list of images (`False`). `None` picks video when
        the MLLM's processor has a video processor. The one source of this choice: the model's processor follows
        it, also after `from_pretrained(..., frames_as_video=...)` or a later edit of the config.

    > Parameters that control frame selection at inference

    selection (`str`, *optional*, defaults to `"msjoe"`):
        Frame-selection strategy used by `answer()`: `"msjoe"` (the learned sampler) or a training-free baseline
        (see `transformers_msjoe.selection.available_selectors()`). Checked when the model is built (the config
        itself stays torch-free, and strategies registered with `register_selector` count).
    sampler_selection_mode (`str`, *optional*, defaults to `"topk"`):
        How the learned sampler picks frames at inference: `"topk"` (deterministic, then sorted by time; the
        paper does not say, TSPO does this) or `"sample"` (K draws without replacement, as in training).

    > Parameters that control throughput

    clip_batch_size (`int`, *optional*, defaults to 64):
        Frames decoded and encoded per CLIP batch. Peak memory grows with it, not with the video length.
    """

    model_type = "msjoe"
    sub_configs_defaults = {
        "mllm_config": SubConfigSpec(config_class=AutoConfig, model_type="qwen2_5_vl"),
        "sampler_config": MSJoESamplerConfig,
    }

    mllm_config: dict | PreTrainedConfig | None = None
    sampler_config: dict | PreTrainedConfig | None = None
    clip_model_name: str = "ViT-L-14"
    clip_pretrained: str | None = "openai"
    sampler_is_trained: bool = False
    candidate_fps: float = 1.0
    max_candidate_frames: int = 1024
    candidate_seek_mode: Literal["exact", "approximate"] = "exact"
    num_key_frames: int = 32
    num_preview_frames: int | None = None
    num_queries: int = 4
    use_question_as_query: bool = False
    preview_max_pixels: int = 25088
    key_frame_max_pixels: int = 235200
    query_max_new_tokens: int = 256
    answer_max_new_tokens: int = 64
    frames_as_video: bool | None = None
    selection: str = "msjoe"
    sampler_selection_mode: Literal["topk", "sample"] = "topk"
    clip_batch_size: int = 64
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        # `clip="ViT-L-14/openai"` is the short form users type; resolve it into the two stored fields.
        clip = kwargs.pop("clip", None)
        if clip is not None:
            self.clip_model_name, self.clip_pretrained = parse_clip_identity(clip)
        # PreTrainedConfig pushes `attn_implementation` (None by default) down into every sub-config; a dict
        # without sub-config keys leaves the wrapped MLLM's own choice (sdpa, flash, ...) untouched.
        kwargs.setdefault("attn_implementation", {})
        super().__post_init__(**kwargs)

    @property
    def clip(self) -> str:
        """The CLIP identity in the short form accepted by `from_mllm(clip=...)`."""
        if self.clip_pretrained:
            return f"{self.clip_model_name}/{self.clip_pretrained}"
        return self.clip_model_name

    @property
    def effective_num_preview_frames(self) -> int:
        """`num_preview_frames`, or the paper's K // 2 when unset (kept dynamic so it follows K)."""
        if self.num_preview_frames is not None:
            return self.num_preview_frames
        return max(1, self.num_key_frames // 2)

    def get_text_config(self, decoder=None, encoder=None) -> PreTrainedConfig:
        """Generation and TRL read the text config through this; it belongs to the wrapped MLLM."""
        return self.mllm_config.get_text_config(decoder=decoder, encoder=encoder)

    def validate_msjoe(self):
        """Called by `@strict` validation: each error names the field, the value and the fix."""
        positive = {
            "num_key_frames": self.num_key_frames,
            "num_queries": self.num_queries,
            "max_candidate_frames": self.max_candidate_frames,
            "preview_max_pixels": self.preview_max_pixels,
            "key_frame_max_pixels": self.key_frame_max_pixels,
            "query_max_new_tokens": self.query_max_new_tokens,
            "answer_max_new_tokens": self.answer_max_new_tokens,
            "clip_batch_size": self.clip_batch_size,
        }
        for name, value in positive.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                default = type(self).__dataclass_fields__[name].default
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}; the default is {default}.")
        if not self.candidate_fps > 0:
            raise ValueError(f"`candidate_fps` must be > 0, got {self.candidate_fps}; the paper uses 1.0.")
        if self.num_preview_frames is not None and self.num_preview_frames < 0:
            raise ValueError(
                f"`num_preview_frames` must be >= 0 or None (= num_key_frames // 2), got {self.num_preview_frames}; "
                "pass None for the paper's setting, or 0 for a query turn without preview."
            )
        if self.num_key_frames > self.max_candidate_frames:
            raise ValueError(
                f"`num_key_frames`={self.num_key_frames} exceeds `max_candidate_frames`={self.max_candidate_frames}: "
                "the sampler picks key frames among the candidates. Raise `max_candidate_frames` or lower K."
            )
        max_q = self.sampler_config.max_num_queries
        if self.num_queries > max_q:
            raise ValueError(
                f"`num_queries`={self.num_queries} exceeds `sampler_config.max_num_queries`={max_q}, the number of "
                "input channels of the U-Net. Lower `num_queries` or build a sampler with more channels."
            )
        if self.use_question_as_query and self.num_queries + 1 > max_q:
            raise ValueError(
                f"`use_question_as_query=True` adds the question to up to `num_queries`={self.num_queries} visual "
                f"queries, more than the sampler's `max_num_queries`={max_q} input channels. Set num_queries={max_q - 1} "
                "or build a sampler with more query channels."
            )
        if self.sampler_selection_mode not in SELECTION_MODES:
            raise ValueError(
                f"`sampler_selection_mode` must be one of {SELECTION_MODES}, got {self.sampler_selection_mode!r}: use "
                "'topk' (deterministic, the default) or 'sample' (K draws, as in training)."
            )
        self._validate_mllm_has_vision()
        if not self.clip_model_name:
            raise ValueError("`clip_model_name` is empty; use e.g. 'ViT-L-14' with clip_pretrained='openai'.")

    def _validate_mllm_has_vision(self) -> None:
        from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING

        if type(self.mllm_config) not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING:
            raise ValueError(
                f"`mllm_config` is a {type(self.mllm_config).__name__} (model_type {self.mllm_config.model_type!r}), "
                "which has no vision input: MSJoE wraps an image-text-to-text MLLM such as Qwen2.5-VL, Qwen3-VL, "
                "LLaVA-OneVision or SmolVLM (anything `AutoModelForImageTextToText` can load)."
            )
