"""The inference pipeline of `MSJoEForVideoQA`, stage by stage, as a mixin (like transformers' `GenerationMixin`).

    `_select`: open ─► query turn (`_selection_queries`) ─► CLIP similarity + selector (`_score_and_select`)
    `answer_batch`: `_select` ─► key frames at answer resolution ─► answer turn ─► parsed answer

`modeling_msjoe.py` keeps what makes the model a model (construction, weights, the frozen CLIP, the training
forward); this module keeps what `answer()` does with it. The trainer's rollout reuses the same stages
(`generate_completions`, `visual_queries`, `candidate_features`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from transformers import GenerationConfig
from transformers.utils import logging

from .frame_features import CandidateFeatures, extract_candidate_features, plan_video_candidates
from .modeling_outputs import MSJoEVideoQAOutput, timed
from .prompts import LetteredOption, letter_options, parse_answer, parse_queries
from .selection import FrameSelection, FrameSelector, build_selector, check_budget
from .video_io import VideoInfo, VideoInput, VideoReader, open_video, plan_uniform_timestamps

if TYPE_CHECKING:
    from .processing_msjoe import MSJoEProcessor

logger = logging.get_logger(__name__)

__all__ = ["MSJoEVideoQAPipelineMixin"]


class MSJoEVideoQAPipelineMixin:
    """`answer()`, `answer_batch()`, `select_frames()` and the stages they chain (paper §3).

    Expects the host model to provide `config` (`MSJoEConfig`), `mllm`, `sampler`, `processor`, `clip_scorer`,
    `feature_cache` and `device`, as `MSJoEForVideoQA` does.
    """

    # ------------------------------------------------------------------ stages
    def _require_processor(self) -> MSJoEProcessor:
        """The processor, following the current `config.frames_as_video` (the one source of that setting)."""
        if self.processor is None:
            raise ValueError(
                "This model has no processor: load it with `MSJoEForVideoQA.from_pretrained(folder)` from a folder that "
                "holds one, or set `model.processor = MSJoEProcessor.from_pretrained(<the MLLM id>)`."
            )
        self.processor.frames_as_video = self.config.frames_as_video
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

    def _generation_kwargs(
        self,
        max_new_tokens: int,
        generation_kwargs: Mapping[str, Any] | None,
        generation_config: GenerationConfig | None,
    ) -> tuple[dict[str, Any], torch.Tensor]:
        """`generate` arguments for one turn (greedy by default) and the end-of-sequence ids `(E,)` that cut it."""
        pad_token_id = self._require_processor().tokenizer.pad_token_id
        if generation_config is not None:
            if generation_kwargs:
                raise ValueError("Pass either `generation_config` or `generation_kwargs`, not both.")
            config = copy.deepcopy(generation_config)  # transformers deprecates a config plus overriding kwargs
            config.max_new_tokens = max_new_tokens
            if config.pad_token_id is None:
                config.pad_token_id = pad_token_id
            gen_kwargs: dict[str, Any] = {"generation_config": config}
            eos = config.eos_token_id
        else:
            gen_kwargs = {"do_sample": False, "max_new_tokens": max_new_tokens, **(generation_kwargs or {})}
            gen_kwargs.setdefault("pad_token_id", pad_token_id)
            eos = gen_kwargs.get("eos_token_id", self.mllm.generation_config.eos_token_id)
        eos_ids = torch.tensor([eos] if isinstance(eos, int) else list(eos or []), dtype=torch.long)
        return gen_kwargs, eos_ids

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
        gen_kwargs, eos_ids = self._generation_kwargs(max_new_tokens, generation_kwargs, generation_config)
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

    def _check_rows(
        self,
        videos: Sequence[VideoInput],
        questions: Sequence[str],
        options: Sequence[Any] | None,
        queries: Sequence[Sequence[str]] | None,
        num_key_frames: int | None,
    ) -> int:
        """Validate a batch (one video, question, option list and query list per row); returns the budget K."""
        counts = {"videos": len(videos), "questions": len(questions)}
        if options is not None:
            counts["option lists"] = len(options)
        if queries is not None:
            counts["query lists"] = len(queries)
        if len(set(counts.values())) != 1:
            got = ", ".join(f"{n} {name}" for name, n in counts.items())
            raise ValueError(f"Got {got}; pass one of each per row (or `None` for options / queries).")
        for question in questions:
            if not isinstance(question, str) or not question.strip():
                raise ValueError(f"The question must be a non-empty string, got {question!r}.")
        k = self.config.num_key_frames if num_key_frames is None else num_key_frames
        check_budget(k, "`num_key_frames`", f"; pass e.g. 32, or None for the config's {self.config.num_key_frames}")
        return k

    def _build_selector(self, selection: str | None, selection_options: Mapping[str, Any] | None) -> FrameSelector:
        """The strategy for this call (default `config.selection`), with its options; warns on an untrained sampler."""
        name = selection or self.config.selection
        options = dict(selection_options or {})
        if name == "msjoe":
            options.setdefault("mode", self.config.sampler_selection_mode)
            if not self.config.sampler_is_trained:
                logger.warning_once(
                    "The MSJoE sampler is untrained (`config.sampler_is_trained=False`): its picks are arbitrary. "
                    "Train it (examples/train_grpo.py, stage 1), pass trained weights, or use e.g. "
                    "selection='clip_topk'."
                )
        return build_selector(name, sampler=self.sampler, **options)

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
        k = self._check_rows(videos, questions, options, queries, num_key_frames)
        generators = list(generator) if isinstance(generator, Sequence) else [generator] * len(videos)
        if len(generators) != len(videos):
            raise ValueError(
                f"Got {len(generators)} generators for {len(videos)} rows; pass one per row or a single one."
            )
        selector = self._build_selector(selection, selection_options)
        lettered = [letter_options(o) for o in (options or [None] * len(questions))]
        timings: dict[str, float] = {}
        with timed(timings, "open"):
            readers = [open_video(v) for v in videos]
        outputs = [
            MSJoEVideoQAOutput(
                question=q.strip(), options=[str(o) for o in opts], selection=selector.name, video=r.label
            )
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
                reader, self.config.candidate_fps, self.config.max_candidate_frames, self.config.candidate_seek_mode
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
            num_key_frames: K for this call, a positive integer (default `config.num_key_frames`).
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
        with timed(timings, "key_frame_decode"):  # only the K key frames, at answer resolution: no preview frame
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
