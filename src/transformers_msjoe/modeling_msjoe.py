"""`MSJoEForVideoQA`: any Hugging Face MLLM + a frozen CLIP scorer + the learned U-Net frame sampler.

Paper: https://huggingface.co/papers/2602.22932. The four inference stages (§3):

    video ──uniform K/2, low-res──► MLLM turn 1 ──► ≤4 visual queries
      │                                                │ CLIP text
      └─ candidates (1 fps) ──► CLIP image ──► S = cos(queries, frames)  (Q x T)
                                                       │
                                   U-Net sampler ──► weights (T) ──► top-K, time-ordered
                                                       │
      key frames (high-res, only those K) ──► MLLM turn 2 ──► answer

The MLLM is reached only through the Auto classes and its own processor (`MSJoEProcessor` adapts frames to
each family), so one class serves every image-text-to-text model. The stages of `answer()` live in
`pipeline_msjoe.MSJoEVideoQAPipelineMixin`; this module builds, saves and loads the model.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from huggingface_hub import ModelCard
from transformers import AutoConfig, AutoModelForImageTextToText, GenerationConfig, PreTrainedModel
from transformers.utils import GENERATION_CONFIG_NAME, ModelOutput, logging

from .clip_scoring import MSJoECLIPScorer
from .configuration_msjoe import MSJoEConfig, MSJoESamplerConfig
from .feature_cache import MSJoEFeatureCache, default_feature_cache, resolve_feature_cache
from .hub_utils import find_optional_file, hub_kwargs, upload_folder_to_repo
from .model_card import render_model_card
from .modeling_outputs import MSJoESamplerOutput
from .modeling_sampler import MSJoEFrameSampler
from .pipeline_msjoe import MSJoEVideoQAPipelineMixin
from .processing_msjoe import MSJoEProcessor
from .selection import check_selection_name

logger = logging.get_logger(__name__)

__all__ = ["MSJoEForVideoQA", "MSJoEPreTrainedModel"]


class MSJoEPreTrainedModel(PreTrainedModel):
    """Base class wiring MSJoE into transformers (config class, attention backends, fp32 sampler)."""

    config_class = MSJoEConfig
    base_model_prefix = "msjoe"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    # The sampler's z-scores, masked GroupNorm and top-K are precision-sensitive and tiny: keep them fp32 even
    # when the MLLM is loaded in bf16, so a reloaded checkpoint picks the same frames.
    _keep_in_fp32_modules_strict = ["sampler"]


class MSJoEForVideoQA(MSJoEVideoQAPipelineMixin, MSJoEPreTrainedModel):
    """MSJoE for multiple-choice (or open) question answering over long videos.

    Build from a Hub MLLM with [`~MSJoEForVideoQA.from_mllm`], or load a saved checkpoint with `from_pretrained`
    (CLIP comes from open_clip as named in the config, the processor from the checkpoint folder).

    Args:
        config: the MSJoE config.
        mllm: an already-built MLLM matching `config.mllm_config` (else one is built from the config).
        processor: the `MSJoEProcessor` used by `answer()` (set by `from_mllm` / `from_pretrained`); it follows
            `config.frames_as_video`.
    """

    def __init__(
        self, config: MSJoEConfig, mllm: PreTrainedModel | None = None, processor: MSJoEProcessor | None = None
    ):
        super().__init__(config)
        check_selection_name(config.selection)  # a typo fails here, not at the first answer()
        if mllm is None:
            mllm = AutoModelForImageTextToText.from_config(config.mllm_config)
        config.mllm_config = mllm.config  # one config object: edits to either are seen by both
        self.mllm = mllm
        self.sampler = MSJoEFrameSampler(config.sampler_config)
        self.processor = processor
        self._clip_scorer: MSJoECLIPScorer | None = None
        self._owns_clip_scorer = True  # loaded by this model from the config (so it follows the model's device)
        self._feature_cache: MSJoEFeatureCache | None = default_feature_cache()
        self.post_init()

    @property
    def processor(self) -> MSJoEProcessor | None:
        """The `MSJoEProcessor` of `answer()`; a plain MLLM processor assigned here is wrapped in one."""
        return self._processor

    @processor.setter
    def processor(self, processor: MSJoEProcessor | Any | None) -> None:
        if processor is not None and not isinstance(processor, MSJoEProcessor):
            processor = MSJoEProcessor(processor)
        if processor is not None:  # `config.frames_as_video` is the one setting; the processor follows it
            processor.frames_as_video = self.config.frames_as_video
        self._processor = processor

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_mllm(
        cls,
        mllm: str | os.PathLike | PreTrainedModel,
        *,
        processor: MSJoEProcessor | Any | None = None,
        clip: str = "ViT-L-14/openai",
        sampler: str | os.PathLike | MSJoEFrameSampler | None = None,
        mllm_kwargs: Mapping[str, Any] | None = None,
        **config_kwargs: Any,
    ) -> MSJoEForVideoQA:
        """Wrap an image-text-to-text MLLM (Hub id, local folder or model object) into MSJoE, in eval mode.

        Args:
            mllm: e.g. `"Qwen/Qwen2.5-VL-7B-Instruct"`.
            processor: the MLLM's processor (loaded from `mllm` when it is a path or id).
            clip: CLIP identity, `"ViT-L-14/openai"`, `"hf-hub:org/repo"` or a local open_clip folder.
            sampler: trained sampler weights (a folder saved by `MSJoEFrameSampler.save_pretrained`, or the
                sampler itself). Without them the sampler is random: use a training-free `selection` until it is
                trained (stage 1).
            mllm_kwargs: passed to `AutoModelForImageTextToText.from_pretrained` (`dtype`, `device_map`, ...).
            **config_kwargs: any `MSJoEConfig` field, e.g. `num_key_frames=32`; a `sampler_config` (dict or
                `MSJoESamplerConfig`) given with `sampler` updates the sampler's own config.
        """
        mllm_kwargs = dict(mllm_kwargs or {})
        if isinstance(mllm, PreTrainedModel) and processor is None:
            raise ValueError("Pass `processor=` (the MLLM's processor) together with an MLLM model object.")
        if isinstance(sampler, (str, os.PathLike)):
            sampler = MSJoEFrameSampler.from_pretrained(sampler)
        config_kwargs["sampler_config"] = _merged_sampler_config(sampler, config_kwargs.get("sampler_config"))
        config_kwargs.setdefault("sampler_is_trained", sampler is not None)
        if isinstance(processor, MSJoEProcessor):  # a processor built with a choice keeps it unless the call says
            config_kwargs.setdefault("frames_as_video", processor.frames_as_video)
        is_model = isinstance(mllm, PreTrainedModel)
        mllm_config = mllm.config if is_model else AutoConfig.from_pretrained(mllm, **hub_kwargs(mllm_kwargs))
        config = MSJoEConfig(mllm_config=mllm_config, clip=clip, **config_kwargs)
        check_selection_name(config.selection)  # fail fast, before loading weights
        if not is_model:
            if processor is None:
                processor = MSJoEProcessor.from_pretrained(mllm, **hub_kwargs(mllm_kwargs))
            mllm = AutoModelForImageTextToText.from_pretrained(mllm, **mllm_kwargs)
        model = cls(config, mllm=mllm, processor=processor)
        if sampler is not None:
            _load_sampler_weights(model.sampler, sampler)
        # Only the (new, small) sampler moves: the MLLM stays where from_pretrained / device_map put it.
        model.sampler.to(mllm.get_input_embeddings().weight.device)
        if getattr(mllm, "hf_device_map", None) is not None:
            model.hf_device_map = {f"mllm.{name}".rstrip("."): dev for name, dev in mllm.hf_device_map.items()}
        return model.eval()  # inference by default, as `from_pretrained`: no sampler dropout in `answer()`

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike, *model_args: Any, **kwargs: Any
    ) -> MSJoEForVideoQA:
        """Load weights and config (transformers), then the processor saved in the same folder or repo."""
        processor = kwargs.pop("processor", None)
        try:
            model = super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        except RuntimeError as err:
            if "mismatched_sizes" not in str(err):
                raise
            raise ValueError(
                f"The config does not fit the checkpoint {pretrained_model_name_or_path!s}: some weights have other "
                "shapes (see the load report above). Do not override architecture fields (`mllm_config`, "
                "`sampler_config`) when loading, or pass `ignore_mismatched_sizes=True` to re-initialise them."
            ) from err
        if processor is None:
            try:
                processor = MSJoEProcessor.from_pretrained(pretrained_model_name_or_path, **hub_kwargs(kwargs))
            except (OSError, ValueError) as err:
                logger.warning(
                    f"No processor found with {pretrained_model_name_or_path!s} ({err}); `answer()` needs one: "
                    "set `model.processor = MSJoEProcessor.from_pretrained(<the MLLM id>)`."
                )
        model.processor = processor  # follows the loaded config's `frames_as_video`
        generation_file = find_optional_file(
            pretrained_model_name_or_path, GENERATION_CONFIG_NAME, **hub_kwargs(kwargs)
        )
        if generation_file is not None:  # the MLLM's eos list, repetition penalty, ... survive the round trip
            model.mllm.generation_config = GenerationConfig.from_pretrained(os.path.dirname(generation_file))
        return model

    def save_pretrained(
        self, save_directory: str | os.PathLike, *, push_to_hub: bool = False, repo_id: str | None = None, **kwargs: Any
    ) -> None:
        """Weights (safetensors) and config via transformers, plus the MLLM's generation config, the processor and
        the MSJoE model card; with `push_to_hub=True` the complete folder is uploaded afterwards."""
        commit_kwargs = {k: kwargs.pop(k) for k in ("commit_message", "commit_description", "private", "token", "revision", "create_pr") if k in kwargs}  # fmt: skip
        super().save_pretrained(save_directory, **kwargs)
        self.mllm.generation_config.save_pretrained(save_directory)
        if self.processor is not None:
            self.processor.save_pretrained(save_directory)
        repo_id = repo_id or os.path.basename(os.path.abspath(save_directory))
        card = render_model_card(self.config, repo_id=repo_id, sampler_params=self.sampler.num_parameters())
        card.save(os.path.join(save_directory, "README.md"))
        if push_to_hub:
            upload_folder_to_repo(save_directory, repo_id, **commit_kwargs)

    def push_to_hub(
        self,
        repo_id: str,
        *,
        commit_message: str | None = None,
        commit_description: str | None = None,
        private: bool | None = None,
        token: str | bool | None = None,
        revision: str | None = None,
        create_pr: bool = False,
        max_shard_size: int | str | None = "50GB",
        tags: list[str] | None = None,
    ) -> Any:
        """Upload weights, config, processor and the MSJoE model card (which names the MLLM, CLIP and settings)."""
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            self.save_pretrained(folder, repo_id=repo_id, max_shard_size=max_shard_size)
            if tags:
                card = ModelCard.load(os.path.join(folder, "README.md"))
                card.data.tags = sorted(set(card.data.tags or []) | set(tags))
                card.save(os.path.join(folder, "README.md"))
            return upload_folder_to_repo(
                folder, repo_id, commit_message=commit_message, commit_description=commit_description,
                private=private, token=token, revision=revision, create_pr=create_pr,
            )  # fmt: skip

    # ------------------------------------------------------------------ the frozen CLIP
    @property
    def clip_scorer(self) -> MSJoECLIPScorer:
        """The frozen CLIP named by the config, loaded on first use and kept out of the state dict.

        It is not a sub-module (so neither saved nor trained), hence `model.to(...)` does not move it: it follows
        the sampler's device here, on use. It runs in fp32; pass a half-precision or shared copy with
        `set_clip_scorer`, which then stays where you put it.
        """
        device = self.sampler.head.weight.device
        if self._clip_scorer is None:
            self._clip_scorer = MSJoECLIPScorer(self.config.clip_model_name, self.config.clip_pretrained, device=device)
            self._owns_clip_scorer = True
        elif self._owns_clip_scorer and self._clip_scorer.device != device:
            self._clip_scorer.to(device)
        return self._clip_scorer

    @property
    def feature_cache(self) -> MSJoEFeatureCache | None:
        """The CLIP-feature cache `candidate_features` reads and fills (on by default, under the HF cache or
        `$MSJOE_FEATURE_CACHE`; `$MSJOE_DISABLE_FEATURE_CACHE=1` turns the default off). `None` when off."""
        return self._feature_cache

    def set_feature_cache(self, cache: MSJoEFeatureCache | str | os.PathLike | bool | None) -> None:
        """Point the feature cache at a folder or an `MSJoEFeatureCache`, `True` for the default, `False` to turn it off."""
        self._feature_cache = resolve_feature_cache(cache)

    def set_clip_scorer(self, scorer: MSJoECLIPScorer) -> None:
        """Use an already-loaded CLIP (e.g. shared between several models, or a half-precision copy); the model
        never moves it."""
        self._clip_scorer = scorer
        self._owns_clip_scorer = False

    # ------------------------------------------------------------------ training forward
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        pixel_values_videos: torch.Tensor | None = None,
        image_grid_thw: torch.LongTensor | None = None,
        video_grid_thw: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        sampler_similarity: torch.Tensor | None = None,
        sampler_frame_mask: torch.Tensor | None = None,
        sampler_query_mask: torch.Tensor | None = None,
        **family_inputs: Any,
    ) -> ModelOutput:
        """The wrapped MLLM's forward (used for the GRPO loss of both turns), or the sampler's.

        `family_inputs` are the extra tensors a family's processor emits (`second_per_grid_ts`,
        `pixel_attention_mask`, `image_sizes`, `mm_token_type_ids`, ...), passed through unchanged.

        Given `sampler_similarity` `(B, Q, T)` (and `sampler_frame_mask` `(B, T)`, `sampler_query_mask` `(B, Q)`),
        only the sampler runs, in fp32 even under autocast, and `MSJoESamplerOutput.frame_logits` `(B, T)` is
        returned: the trainer's REINFORCE term goes through the (DDP/FSDP-)wrapped model's forward like the MLLM's
        loss, so the sampler's gradients are reduced across processes.
        """
        if sampler_similarity is not None:
            with torch.autocast(sampler_similarity.device.type, enabled=False):
                logits = self.sampler(
                    sampler_similarity.float(), frame_mask=sampler_frame_mask, query_mask=sampler_query_mask
                )
            return MSJoESamplerOutput(frame_logits=logits)
        named = dict(
            input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixel_values,
            pixel_values_videos=pixel_values_videos, image_grid_thw=image_grid_thw, video_grid_thw=video_grid_thw,
            labels=labels,
        )  # fmt: skip
        return self.mllm(**{k: v for k, v in named.items() if v is not None}, **family_inputs)

    def generate(self, *args: Any, **kwargs: Any) -> torch.LongTensor:
        """Delegates to the wrapped MLLM's `generate` (same inputs as `forward`)."""
        return self.mllm.generate(*args, **kwargs)

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.mllm.get_input_embeddings()

    def set_input_embeddings(self, value: torch.nn.Module) -> None:
        self.mllm.set_input_embeddings(value)

    def get_output_embeddings(self) -> torch.nn.Module:
        """The MLLM's LM head (PEFT's `all-linear` and TRL's LoRA checks exclude it by this)."""
        return self.mllm.get_output_embeddings()

    @property
    def generation_config(self) -> GenerationConfig:
        """The wrapped MLLM's generation config: `generate` delegates to the MLLM (TRL reads eos/pad from here)."""
        return self.mllm.generation_config

    @generation_config.setter
    def generation_config(self, value: GenerationConfig) -> None:
        self.mllm.generation_config = value


def _merged_sampler_config(
    sampler: MSJoEFrameSampler | None, sampler_config: MSJoESamplerConfig | Mapping[str, Any] | None
) -> MSJoESamplerConfig | Mapping[str, Any] | None:
    """The one sampler config of `from_mllm`: the given sampler's, updated with the fields of a `sampler_config`."""
    if sampler is None or sampler_config is None:
        return sampler.config if sampler is not None else sampler_config
    fields = MSJoESamplerConfig.__annotations__  # the sampler's own fields (not PreTrainedConfig's bookkeeping)
    given = sampler_config.to_dict() if isinstance(sampler_config, MSJoESamplerConfig) else dict(sampler_config)
    merged = {k: v for k, v in sampler.config.to_dict().items() if k in fields}
    return MSJoESamplerConfig(**{**merged, **{k: v for k, v in given.items() if k in fields}})


def _load_sampler_weights(target: MSJoEFrameSampler, source: MSJoEFrameSampler) -> None:
    """Copy the given sampler's weights into the model's, with a clear error when `sampler_config` changed a shape."""
    try:
        target.load_state_dict(source.state_dict())
    except RuntimeError as err:
        raise ValueError(
            f"The `sampler_config` passed to from_mllm ({target.config.to_diff_dict()}) does not fit the weights of "
            "the given `sampler`: change only non-architecture fields (e.g. `dropout`), or drop `sampler_config`."
        ) from err
