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
each family), so one class serves every image-text-to-text model.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from huggingface_hub import ModelCard
from transformers import AutoConfig, AutoModelForImageTextToText, GenerationConfig, PreTrainedModel
from transformers.utils import GENERATION_CONFIG_NAME, ModelOutput, logging

from .clip_scoring import MSJoECLIPScorer
from .configuration_msjoe import MSJoEConfig
from .feature_cache import MSJoEFeatureCache, default_feature_cache, resolve_feature_cache
from .frame_features import CandidateFeatures, extract_candidate_features, plan_video_candidates
from .hub_utils import find_optional_file
from .model_card import render_model_card
from .modeling_outputs import MSJoESamplerOutput, MSJoEVideoQAOutput, timed
from .modeling_sampler import MSJoEFrameSampler
from .processing_msjoe import MSJoEProcessor
from .prompts import LetteredOption, letter_options, parse_answer, parse_queries
from .selection import FrameSelection, FrameSelector, build_selector
from .video_io import VideoInfo, VideoInput, VideoReader, open_video, plan_uniform_timestamps

logger = logging.get_logger(__name__)

_HUB_KWARGS = ("revision", "token", "cache_dir", "local_files_only")

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


class MSJoEForVideoQA(MSJoEPreTrainedModel):
    """MSJoE for multiple-choice (or open) question answering over long videos.

    Build from a Hub MLLM with [`~MSJoEForVideoQA.from_mllm`], or load a saved checkpoint with `from_pretrained`
    (CLIP comes from open_clip as named in the config, the processor from the checkpoint folder).

    Args:
        config: the MSJoE config.
        mllm: an already-built MLLM matching `config.mllm_config` (else one is built from the config).
        processor: the `MSJoEProcessor` used by `answer()` (set by `from_mllm` / `from_pretrained`).
    """

    def __init__(
        self, config: MSJoEConfig, mllm: PreTrainedModel | None = None, processor: MSJoEProcessor | None = None
    ):
        super().__init__(config)
        if mllm is None:
            mllm = AutoModelForImageTextToText.from_config(config.mllm_config)
        config.mllm_config = mllm.config  # one config object: edits to either are seen by both
        self.mllm = mllm
        self.sampler = MSJoEFrameSampler(config.sampler_config)
        self.processor = processor
        self._clip_scorer: MSJoECLIPScorer | None = None
        self._feature_cache: MSJoEFeatureCache | None = default_feature_cache()
        self.post_init()

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
        """Wrap an image-text-to-text MLLM (Hub id, local folder or model object) into MSJoE.

        Args:
            mllm: e.g. `"Qwen/Qwen2.5-VL-7B-Instruct"`.
            processor: the MLLM's processor (loaded from `mllm` when it is a path or id).
            clip: CLIP identity, `"ViT-L-14/openai"`, `"hf-hub:org/repo"` or a local open_clip folder.
            sampler: trained sampler weights (a folder saved by `MSJoEFrameSampler.save_pretrained`). Without
                them the sampler is random: use a training-free `selection` until it is trained (stage 1).
            mllm_kwargs: passed to `AutoModelForImageTextToText.from_pretrained` (`dtype`, `device_map`, ...).
            **config_kwargs: any `MSJoEConfig` field, e.g. `num_key_frames=32`.
        """
        if isinstance(mllm, PreTrainedModel):
            if processor is None:
                raise ValueError("Pass `processor=` (the MLLM's processor) together with an MLLM model object.")
            mllm_model = mllm
        else:
            hub_kwargs = {k: v for k, v in (mllm_kwargs or {}).items() if k in _HUB_KWARGS}
            mllm_config = AutoConfig.from_pretrained(mllm, **hub_kwargs)
            MSJoEConfig(mllm_config=mllm_config, clip=clip, **config_kwargs)  # fail fast, before loading weights
            mllm_model = AutoModelForImageTextToText.from_pretrained(mllm, **(mllm_kwargs or {}))
            if processor is None:
                processor = MSJoEProcessor.from_pretrained(
                    mllm, frames_as_video=config_kwargs.get("frames_as_video"), **hub_kwargs
                )
        if not isinstance(processor, MSJoEProcessor):
            processor = MSJoEProcessor(processor, frames_as_video=config_kwargs.get("frames_as_video"))
        sampler_config = sampler.config if isinstance(sampler, MSJoEFrameSampler) else None
        if sampler is not None and not isinstance(sampler, MSJoEFrameSampler):
            sampler = MSJoEFrameSampler.from_pretrained(sampler)
            sampler_config = sampler.config
        config_kwargs.setdefault("sampler_is_trained", sampler is not None)
        config = MSJoEConfig(mllm_config=mllm_model.config, sampler_config=sampler_config, clip=clip, **config_kwargs)
        model = cls(config, mllm=mllm_model, processor=processor)
        if sampler is not None:
            model.sampler.load_state_dict(sampler.state_dict())
        # Only the (new, small) sampler moves: the MLLM stays where from_pretrained / device_map put it.
        model.sampler.to(mllm_model.get_input_embeddings().weight.device)
        if getattr(mllm_model, "hf_device_map", None) is not None:
            model.hf_device_map = {f"mllm.{name}".rstrip("."): dev for name, dev in mllm_model.hf_device_map.items()}
        return model

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
            hub_kwargs = {k: kwargs[k] for k in _HUB_KWARGS if k in kwargs}
            try:
                processor = MSJoEProcessor.from_pretrained(pretrained_model_name_or_path, **hub_kwargs)
            except (OSError, ValueError) as err:
                logger.warning(
                    f"No processor found with {pretrained_model_name_or_path!s} ({err}); `answer()` needs one: "
                    "set `model.processor = MSJoEProcessor.from_pretrained(<the MLLM id>)`."
                )
        elif not isinstance(processor, MSJoEProcessor):
            processor = MSJoEProcessor(processor)
        model.processor = processor
        generation_file = find_optional_file(
            pretrained_model_name_or_path, GENERATION_CONFIG_NAME, **{k: kwargs[k] for k in _HUB_KWARGS if k in kwargs}
        )
        if generation_file is not None:  # the MLLM's eos list, repetition penalty, ... survive the round trip
            model.mllm.generation_config = GenerationConfig.from_pretrained(os.path.dirname(generation_file))
        return model

    def save_pretrained(
        self, save_directory: str | os.PathLike, *, push_to_hub: bool = False, repo_id: str | None = None, **kwargs: Any
    ) -> None:
        """Weights (safetensors) and config via transformers, plus the MLLM's generation config, the processor and
        the MSJoE model card; with `push_to_hub=True` the complete folder is uploaded afterwards."""
        hub_kwargs = {k: kwargs.pop(k) for k in ("commit_message", "commit_description", "private", "token", "revision", "create_pr") if k in kwargs}  # fmt: skip
        super().save_pretrained(save_directory, **kwargs)
        self.mllm.generation_config.save_pretrained(save_directory)
        if self.processor is not None:
            self.processor.save_pretrained(save_directory)
        repo_id = repo_id or os.path.basename(os.path.abspath(save_directory))
        card = render_model_card(self.config, repo_id=repo_id, sampler_params=self.sampler.num_parameters())
        card.save(os.path.join(save_directory, "README.md"))
        if push_to_hub:
            self._upload(save_directory, repo_id, **hub_kwargs)

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
            return self._upload(
                folder, repo_id, commit_message=commit_message, commit_description=commit_description,
                private=private, token=token, revision=revision, create_pr=create_pr,
            )  # fmt: skip

    @staticmethod
    def _upload(folder: str | os.PathLike, repo_id: str, *, private: bool | None = None, token: str | bool | None = None, **commit: Any) -> Any:  # fmt: skip
        from huggingface_hub import HfApi

        api = HfApi(token=token)
        repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
        commit["commit_message"] = commit.get("commit_message") or "Upload MSJoE model"
        return api.upload_folder(repo_id=repo_id, folder_path=os.fspath(folder), **commit)

    # ------------------------------------------------------------------ the frozen CLIP
    @property
    def clip_scorer(self) -> MSJoECLIPScorer:
        """The frozen CLIP named by the config, loaded on first use and kept out of the state dict."""
        if self._clip_scorer is None:
            device = self.sampler.head.weight.device
            self._clip_scorer = MSJoECLIPScorer(self.config.clip_model_name, self.config.clip_pretrained, device=device)
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
        """Use an already-loaded CLIP (e.g. shared between several models, or a half-precision copy)."""
        self._clip_scorer = scorer

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

    # ------------------------------------------------------------------ pipeline stages
    def _require_processor(self) -> MSJoEProcessor:
        if self.processor is None:
            raise ValueError(
                "This model has no processor: load it with `MSJoEForVideoQA.from_pretrained(folder)` from a folder that "
                "holds one, or set `model.processor = MSJoEProcessor.from_pretrained(<the MLLM id>)`."
            )
        return self.processor

    def candidate_features(
        self, video: VideoInput, *, show_progress: bool = False, use_cache: bool = True
    ) -> CandidateFeatures:
        """CLIP embeddings of the video's candidate frames: from the feature cache when there, else decoded and
        encoded in bounded batches (and cached). `use_cache=False` bypasses the cache for this call."""
        reader = open_video(video)
        return extract_candidate_features(
            reader,
            self.clip_scorer,
            candidate_fps=self.config.candidate_fps,
            max_candidate_frames=self.config.max_candidate_frames,
            seek_mode=self.config.candidate_seek_mode,
            batch_size=self.config.clip_batch_size,
            show_progress=show_progress,
            cache=self.feature_cache if use_cache else None,
        )

    @torch.no_grad()
    def generate_completions(
        self,
        prompts: Sequence[str],
        frames: Sequence[torch.Tensor],
        timestamps: Sequence[torch.Tensor],
        videos: Sequence[VideoInfo],
        *,
        max_pixels: int,
        max_new_tokens: int,
        generation_kwargs: Mapping[str, Any] | None = None,
        generation_config: GenerationConfig | None = None,
    ) -> tuple[list[torch.Tensor], list[int]]:
        """One MLLM turn for a batch of rows (greedy unless `generation_kwargs` / `generation_config` say otherwise).

        Rows are grouped by frame count and size (some families need it). Returns each row's completion ids
        `(C_i,)` on the CPU, cut after the first end-of-sequence token, and its prompt length in tokens (visual
        tokens included). The trainer's rollout passes its sampling `generation_config` (a copy gets the budget).
        """
        processor = self._require_processor()
        if generation_config is not None:
            if generation_kwargs:
                raise ValueError("Pass either `generation_config` or `generation_kwargs`, not both.")
            config = copy.deepcopy(generation_config)  # transformers deprecates a config plus overriding kwargs
            config.max_new_tokens = max_new_tokens
            if config.pad_token_id is None:
                config.pad_token_id = processor.tokenizer.pad_token_id
            gen_kwargs: dict[str, Any] = {"generation_config": config}
            eos = config.eos_token_id
        else:
            gen_kwargs = {"do_sample": False, "max_new_tokens": max_new_tokens, **(generation_kwargs or {})}
            gen_kwargs.setdefault("pad_token_id", processor.tokenizer.pad_token_id)
            eos = gen_kwargs.get("eos_token_id", self.mllm.generation_config.eos_token_id)
        eos_ids = torch.tensor([eos] if isinstance(eos, int) else list(eos or []), dtype=torch.long)
        groups: dict[tuple[int, ...], list[int]] = {}
        for row, row_frames in enumerate(frames):
            groups.setdefault(tuple(row_frames.shape), []).append(row)
        completions: list[torch.Tensor] = [torch.empty(0, dtype=torch.long)] * len(prompts)
        prompt_lengths = [0] * len(prompts)
        for rows in groups.values():
            inputs = processor.build_inputs(
                [prompts[r] for r in rows], [frames[r] for r in rows], [timestamps[r] for r in rows],
                [videos[r] for r in rows], max_pixels=max_pixels,
            )  # fmt: skip
            inputs = inputs.to(self.device)
            # pixels follow the MLLM's dtype; other floats (e.g. Qwen2.5-VL's second_per_grid_ts) keep fp32 precision
            inputs = {k: v.to(self.mllm.dtype) if k.startswith("pixel_values") else v for k, v in inputs.items()}
            sequences = self.mllm.generate(**inputs, **gen_kwargs)
            generated = sequences[:, inputs["input_ids"].shape[1] :].cpu()  # (b, C), padded after each row's EOS
            for r, ids, mask in zip(rows, generated, inputs["attention_mask"].cpu()):
                ends = torch.isin(ids, eos_ids).nonzero()
                completions[r] = ids[: int(ends[0]) + 1] if len(ends) else ids
                prompt_lengths[r] = int(mask.sum())
        return completions, prompt_lengths

    @torch.no_grad()
    def generate_texts(
        self,
        prompts: Sequence[str],
        frames: Sequence[torch.Tensor],
        timestamps: Sequence[torch.Tensor],
        videos: Sequence[VideoInfo],
        *,
        max_pixels: int,
        max_new_tokens: int,
        generation_kwargs: Mapping[str, Any] | None = None,
    ) -> list[str]:
        """One MLLM turn for a batch of rows, as texts (special tokens removed); see `generate_completions`."""
        completions, _ = self.generate_completions(
            prompts, frames, timestamps, videos, max_pixels=max_pixels, max_new_tokens=max_new_tokens,
            generation_kwargs=generation_kwargs,
        )  # fmt: skip
        tokenizer = self._require_processor().tokenizer
        return [tokenizer.decode(ids, skip_special_tokens=True) for ids in completions]

    def visual_queries(self, query_turn_text: str, question: str) -> tuple[list[str], int]:
        """The queries CLIP scores frames against, from the query turn's output (paper §3.1), and how many of them
        the MLLM wrote: its parsed `<query>` lines (plus the question with `use_question_as_query`), or, when
        nothing parsed, the question alone with a count of 0 (a fallback)."""
        parsed = parse_queries(query_turn_text, self.config.num_queries)
        if not parsed.queries:
            return [question], 0
        queries = list(parsed.queries)
        if self.config.use_question_as_query and question not in queries:
            queries.append(question)
        return queries, len(parsed.queries)

    def _selection_queries(
        self,
        readers: Sequence[VideoReader],
        questions: Sequence[str],
        options: Sequence[list[LetteredOption]],
        outputs: Sequence[MSJoEVideoQAOutput],
        timings: dict[str, float],
        generation_kwargs: Mapping[str, Any] | None,
    ) -> None:
        """Query turn (paper §3.1): uniform low-res preview -> MLLM -> parsed visual queries, per row."""
        processor = self._require_processor()
        num_preview = self.config.effective_num_preview_frames
        with timed(timings, "preview_decode"):
            stamps = [plan_uniform_timestamps(r.info.duration_seconds, num_preview, r.begin_seconds) for r in readers]
            previews = [r.frames_at(ts, max_pixels=self.config.preview_max_pixels) for r, ts in zip(readers, stamps)]
        prompts = [
            processor.query_prompt(q, o, num_preview, self.config.num_queries) for q, o in zip(questions, options)
        ]
        with timed(timings, "query_turn"):
            texts = self.generate_texts(
                prompts, previews, stamps, [r.info for r in readers], max_pixels=self.config.preview_max_pixels,
                max_new_tokens=self.config.query_max_new_tokens, generation_kwargs=generation_kwargs,
            )  # fmt: skip
        for out, text, ts in zip(outputs, texts, stamps):
            out.query_turn_text, out.preview_timestamps = text, ts
            out.queries, num_written = self.visual_queries(text, out.question)
            out.queries_fallback = num_written == 0
            if out.queries_fallback:
                logger.warning_once(
                    "A query turn gave no parsable <query> tags; such rows score frames with the question and are "
                    "flagged `queries_fallback=True` in their output."
                )
                logger.info(f"Unparsable query turn: {text[:200]!r}")

    def _select(
        self,
        videos: Sequence[VideoInput],
        questions: Sequence[str],
        options: Sequence[Any] | None,
        *,
        selection: str | None,
        selection_options: Mapping[str, Any] | None,
        num_key_frames: int | None,
        queries: Sequence[Sequence[str]] | None,
        generation_kwargs: Mapping[str, Any] | None,
        generator: torch.Generator | Sequence[torch.Generator] | None,
        show_progress: bool,
    ) -> tuple[list[VideoReader], list[list[LetteredOption]], list[MSJoEVideoQAOutput], dict[str, float]]:
        """Stages 1-3 for a batch: queries, CLIP similarity, frame selection."""
        if len(videos) != len(questions) or (options is not None and len(options) != len(questions)):
            raise ValueError(f"Got {len(videos)} videos, {len(questions)} questions and {len(options or [])} option lists; pass one of each per row.")  # fmt: skip
        for question in questions:
            if not isinstance(question, str) or not question.strip():
                raise ValueError(f"The question must be a non-empty string, got {question!r}.")
        timings: dict[str, float] = {}
        name = selection or self.config.selection
        selector_options = dict(selection_options or {})
        if name == "msjoe":
            selector_options.setdefault("mode", self.config.sampler_selection_mode)
        selector = build_selector(name, sampler=self.sampler, **selector_options)
        if name == "msjoe" and not self.config.sampler_is_trained:
            logger.warning_once(
                "The MSJoE sampler is untrained (`config.sampler_is_trained=False`): its picks are arbitrary. "
                "Train it (examples/train_grpo.py, stage 1), pass trained weights, or use e.g. selection='clip_topk'."
            )
        lettered = [letter_options(o) for o in (options or [None] * len(questions))]
        with timed(timings, "open"):
            readers = [open_video(v) for v in videos]
        outputs = [
            MSJoEVideoQAOutput(question=q.strip(), options=[str(o) for o in opts], selection=name, video=r.label)
            for q, opts, r in zip(questions, lettered, readers)
        ]
        if queries is not None:
            for out, row_queries in zip(outputs, queries):
                out.queries = self._given_queries(row_queries)
        elif selector.query_source == "reasoned":
            self._selection_queries(
                readers, [o.question for o in outputs], lettered, outputs, timings, generation_kwargs
            )
        elif selector.query_source == "question":
            for out in outputs:
                out.queries = [out.question]
        k = num_key_frames or self.config.num_key_frames
        generators = list(generator) if isinstance(generator, Sequence) else [generator] * len(readers)
        if len(generators) != len(readers):
            raise ValueError(
                f"Got {len(generators)} generators for {len(readers)} rows; pass one per row or a single one."
            )
        for reader, out, row_generator in zip(readers, outputs, generators):
            self._score_and_select(reader, out, selector, k, timings, row_generator, show_progress)
        return readers, lettered, outputs, timings

    def _given_queries(self, queries: Sequence[str]) -> list[str]:
        """Validate queries passed by the caller (they replace the query turn)."""
        if isinstance(queries, str):
            raise ValueError(
                f"`queries` must be a list of strings, got the string {queries[:60]!r}; wrap it in a list."
            )
        kept = [" ".join(q.split()) for q in queries if q and q.strip()]
        max_queries = self.config.sampler_config.max_num_queries
        if not kept or len(kept) > max_queries:
            raise ValueError(
                f"Pass between 1 and {max_queries} non-empty queries (the sampler's `max_num_queries`), got {list(queries)}."
            )
        return kept

    def _score_and_select(
        self,
        reader: VideoReader,
        out: MSJoEVideoQAOutput,
        selector: FrameSelector,
        k: int,
        timings: dict[str, float],
        generator: torch.Generator | None,
        show_progress: bool,
    ) -> None:
        """CLIP similarity of the row's queries to its candidates (§3.2), then the selector's K frames (§3.3)."""
        similarity = None
        if out.queries and selector.query_source != "none":  # e.g. uniform never needs CLIP, even given queries
            if self._clip_scorer is None:  # the first use loads the frozen CLIP: timed as its own stage
                with timed(timings, "clip_load"):
                    _ = self.clip_scorer
            features = self.candidate_features(reader, show_progress=show_progress)
            out.feature_cache = features.cache_status
            for stage, seconds in features.timings.items():
                timings[stage] = timings.get(stage, 0.0) + seconds
            with timed(timings, "clip_text"):
                similarity = self.clip_scorer.similarity(
                    self.clip_scorer.encode_texts(out.queries), features.embeddings
                )
            candidate_timestamps = features.timestamps
        else:
            candidate_timestamps = plan_video_candidates(
                reader, self.config.candidate_fps, self.config.max_candidate_frames
            )
        with timed(timings, "sampler"):
            chosen: FrameSelection = selector.select(similarity, len(candidate_timestamps), k, generator=generator)
        out.candidate_timestamps, out.similarity = candidate_timestamps, similarity
        out.frame_weights, out.key_frame_indices = chosen.weights, chosen.indices
        out.key_frame_timestamps = candidate_timestamps[chosen.indices]

    # ------------------------------------------------------------------ public API
    @torch.no_grad()
    def select_frames(
        self,
        video: VideoInput,
        question: str,
        options: Any = None,
        *,
        selection: str | None = None,
        selection_options: Mapping[str, Any] | None = None,
        num_key_frames: int | None = None,
        queries: Sequence[str] | None = None,
        generation_kwargs: Mapping[str, Any] | None = None,
        generator: torch.Generator | None = None,
        show_progress: bool = False,
    ) -> MSJoEVideoQAOutput:
        """Stages 1-3 only: queries, similarity matrix, frame weights and the K key frames (no answer turn).

        Arguments as in [`~MSJoEForVideoQA.answer`].
        """
        _, _, outputs, timings = self._select(
            [video], [question], [options], selection=selection, selection_options=selection_options,
            num_key_frames=num_key_frames,
            queries=None if queries is None else [queries], generation_kwargs=generation_kwargs,
            generator=generator, show_progress=show_progress,
        )  # fmt: skip
        outputs[0].timings = {**timings, "total": sum(timings.values())}
        return outputs[0]

    @torch.no_grad()
    def answer(
        self,
        video: VideoInput,
        question: str,
        options: Any = None,
        *,
        selection: str | None = None,
        selection_options: Mapping[str, Any] | None = None,
        num_key_frames: int | None = None,
        queries: Sequence[str] | None = None,
        generation_kwargs: Mapping[str, Any] | None = None,
        generator: torch.Generator | None = None,
        show_progress: bool = False,
    ) -> MSJoEVideoQAOutput:
        """Answer one question about one video with the full MSJoE pipeline.

        Args:
            video: a path, bytes, a `datasets` Video value or a torchcodec decoder.
            question: the question text.
            options: multiple-choice options (`["A. ...", ...]`, plain strings, or `{"A": ...}`); `None` for open QA.
            selection: frame-selection strategy (default `config.selection`), see `available_selectors()`.
            selection_options: the strategy's hyper-parameters, e.g. `{"temperature": 0.5}` for `"qframe"` or
                `{"query_source": "reasoned"}` to feed MSJoE's queries to a baseline (see docs/selectors.md).
            num_key_frames: K for this call (default `config.num_key_frames`).
            queries: skip the query turn and score frames against these visual queries.
            generation_kwargs: extra `generate` arguments for both MLLM turns (greedy by default).
            generator: RNG for stochastic selection (`sampler_selection_mode="sample"`, Q-Frame, ...).
            show_progress: a tqdm bar while candidate frames are decoded and encoded.
        """
        return self.answer_batch(
            [video], [question], [options], selection=selection, selection_options=selection_options,
            num_key_frames=num_key_frames,
            queries=None if queries is None else [queries], generation_kwargs=generation_kwargs,
            generator=generator, show_progress=show_progress,
        )[0]  # fmt: skip

    @torch.no_grad()
    def answer_batch(
        self,
        videos: Sequence[VideoInput],
        questions: Sequence[str],
        options: Sequence[Any] | None = None,
        *,
        selection: str | None = None,
        selection_options: Mapping[str, Any] | None = None,
        num_key_frames: int | None = None,
        queries: Sequence[Sequence[str]] | None = None,
        generation_kwargs: Mapping[str, Any] | None = None,
        generator: torch.Generator | Sequence[torch.Generator] | None = None,
        show_progress: bool = False,
    ) -> list[MSJoEVideoQAOutput]:
        """Answer a batch of questions; both MLLM turns run batched. Arguments as in [`~MSJoEForVideoQA.answer`],
        one entry per row (`queries`: one list of queries per row; `generator`: one, or one per row so that a
        row's stochastic selection does not depend on what it was batched with)."""
        readers, lettered, outputs, timings = self._select(
            videos, questions, options, selection=selection, selection_options=selection_options,
            num_key_frames=num_key_frames, queries=queries,
            generation_kwargs=generation_kwargs, generator=generator, show_progress=show_progress,
        )  # fmt: skip
        processor = self._require_processor()
        with timed(timings, "key_frame_decode"):
            key_frames = [
                r.frames_at(o.key_frame_timestamps, max_pixels=self.config.key_frame_max_pixels)
                for r, o in zip(readers, outputs)
            ]
        prompts = [
            processor.answer_prompt(o.question, opts, len(f)) for o, opts, f in zip(outputs, lettered, key_frames)
        ]
        with timed(timings, "answer_turn"):
            texts = self.generate_texts(
                prompts, key_frames, [o.key_frame_timestamps for o in outputs], [r.info for r in readers],
                max_pixels=self.config.key_frame_max_pixels, max_new_tokens=self.config.answer_max_new_tokens,
                generation_kwargs=generation_kwargs,
            )  # fmt: skip
        for out, text, opts in zip(outputs, texts, lettered):
            parsed = parse_answer(text, [o.letter for o in opts])
            out.answer_turn_text, out.answer, out.option = text, parsed.text, parsed.option
            out.timings = {**timings, "total": sum(timings.values())}
        return outputs
