"""`--model msjoe`: the MSJoE pipeline as an lmms-eval model (a "simple" model, registered by entry point).

    lmms-eval --model msjoe --model_args pretrained=<checkpoint>,num_key_frames=32 \\
              --tasks msjoe_videomme --include_path "$(msjoe lmms-eval-tasks-path)" --output_path results/

Each request names a doc; the model reads the doc's video (`doc_to_visual`) and its question and options
(the `msjoe_question` / `msjoe_options` fields the msjoe_* tasks add), answers with
`MSJoEForVideoQA.answer_batch` (query turn -> CLIP similarity -> frame selection -> answer turn), and returns
the option letter, which every official scorer reads. Work is split across processes by lmms-eval itself
(`accelerate launch -m lmms_eval ...`): each rank gets its share of the requests and one GPU.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from accelerate import Accelerator
from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from tqdm import tqdm
from transformers.utils import logging

from ..configuration_msjoe import MSJoEConfig
from ..hub_utils import resolved_commit_hash
from ..modeling_msjoe import MSJoEForVideoQA
from ..modeling_outputs import MSJoEVideoQAOutput
from ..selection import available_selectors, build_selector, parse_selection_options
from .benchmarks import MSJOE_OPTIONS, MSJOE_QUESTION
from .provenance import clip_provenance, package_versions, sampler_weights, text_sha256

logger = logging.get_logger(__name__)

__all__ = ["MSJoELmmsEvalModel"]

# MSJoEConfig fields settable from `--model_args` (the composed models and CLIP have their own arguments;
# `sampler_is_trained` is a fact about the loaded weights, read from the checkpoint, never set by hand).
CONFIG_ARGS = tuple(
    name
    for name in MSJoEConfig.__annotations__
    if name
    not in (
        "mllm_config",
        "sampler_config",
        "clip_model_name",
        "clip_pretrained",
        "sampler_is_trained",
        "tie_word_embeddings",
    )
)
# lmms-eval marks the requests it adds to even out the ranks (`evaluator._clone_padding_request`, and a rank with
# no docs in `Task.build_all_requests`); drift test: tests/test_lmms_eval_model.py::test_compat_padding_requests_are_marked
PADDING_FLAG = "__padding_only__"
SELECTION_OPTION_PREFIX = "selection."  # `selection.temperature=0.5` -> selector option `temperature`
_DTYPES = ("auto", "bfloat16", "float16", "float32")


@dataclass
class _Row:
    """One request, resolved: everything `answer_batch` needs plus where the answer goes."""

    index: int  # position in the request list
    task: str
    split: str
    doc_id: int
    video: str
    question: str
    options: list[str]
    sampling: dict[str, Any] | None  # generate() sampling arguments from the task, None = greedy


def _coerce_config_arg(name: str, value: Any) -> Any:
    """`--model_args` values arrive as int/float/bool/str: fit them to the config field's type."""
    default = MSJoEConfig.__dataclass_fields__[name].default
    if isinstance(value, str) and value.lower() == "none":
        return None
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _sampling_kwargs(gen_kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
    """Sampling requested by the task or `--gen_kwargs` (both MLLM turns follow it); `None` means greedy."""
    temperature = float(gen_kwargs.get("temperature") or 0.0)
    if not (gen_kwargs.get("do_sample") or temperature > 0):
        return None
    sampling: dict[str, Any] = {"do_sample": True}
    for key in ("temperature", "top_p", "top_k"):
        if gen_kwargs.get(key) is not None:
            sampling[key] = gen_kwargs[key]
    return sampling


class MSJoELmmsEvalModel(lmms):
    """MSJoE for lmms-eval. Model arguments (`--model_args key=value,...`):

    Args:
        pretrained: an MSJoE checkpoint (Hub id or folder); a plain MLLM id is wrapped like `mllm=`.
        mllm: an image-text-to-text MLLM to wrap (e.g. `Qwen/Qwen2.5-VL-7B-Instruct`); give `pretrained` or `mllm`.
        clip: CLIP identity (`ViT-L-14/openai`, `hf-hub:org/repo`, a local open_clip folder); overrides a
            checkpoint's own.
        sampler: trained sampler weights for `mllm=` (without them only training-free selections are allowed).
        revision: Hub revision of `pretrained` / `mllm`.
        selection: frame selection, any name of `transformers_msjoe.available_selectors()` (default: the
            config's, `msjoe`); `selection.<option>=value` sets the strategy's options.
        num_key_frames, candidate_fps, key_frame_max_pixels, ...: any `MSJoEConfig` field (`CONFIG_ARGS`).
        device: `cuda`, `cuda:1`, `cpu` (default: CUDA when available); under `accelerate launch` each rank
            takes `cuda:<local rank>`.
        dtype: `auto` (the checkpoint's), `bfloat16`, `float16` or `float32`.
        attn_implementation: passed to `from_pretrained` (`sdpa`, `flash_attention_2`, ...).
        batch_size: questions answered together (both MLLM turns are batched).
        seed: with the task and doc id, seeds each doc's own generator for stochastic selections (`qframe`,
            `sampler_selection_mode=sample`), so a doc's frames do not depend on the batch it lands in.
        model_name: a label for the run, recorded in `model_info`; lmms-eval also names the results subfolder
            after it when `pretrained=` is not given (an `mllm=` run has no other name there).
        sample_log: path of a JSONL file with one line per answered doc (queries, key-frame times, timings);
            `.rank<N>` is inserted before the suffix when several processes run. Lines are appended, never
            truncated: a resumed `--use_cache` run adds the docs it answers after the earlier ones (each line
            carries `run_started`); give a new path for a fresh log.
        model: (Python API only) an already-built `MSJoEForVideoQA`, instead of `pretrained` / `mllm`.
    """

    is_simple = True

    def __init__(
        self,
        pretrained: str | None = None,
        mllm: str | None = None,
        clip: str | None = None,
        sampler: str | None = None,
        revision: str | None = None,
        selection: str | None = None,
        device: str | None = None,
        dtype: str = "auto",
        attn_implementation: str | None = None,
        batch_size: int | str = 1,
        max_batch_size: int | None = None,
        seed: int = 0,
        sample_log: str | None = None,
        model_name: str | None = None,
        model: MSJoEForVideoQA | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        config_args, self.selection_options = self._split_options(options)
        self.accelerator = Accelerator()
        self._device = self._pick_device(device)
        self._rank, self._world_size = self.accelerator.process_index, self.accelerator.num_processes
        self._batch_size = self._check_batch_size(batch_size, max_batch_size)
        self.seed = int(seed)
        self.sample_log = sample_log
        self._sample_log_path: str | None = None
        self._run_started = time.strftime("%Y-%m-%dT%H:%M:%S%z")  # tells appended runs apart in the sample log
        self._warned: set[str] = set()
        self.model_name = model_name
        if model_name is not None and pretrained is not None:
            logger.warning(
                f"model_name={model_name!r} is recorded in model_info, but lmms-eval names the results subfolder "
                "after pretrained=; use a separate --output_path per run to keep runs apart."
            )
        if model is not None:
            source, sampler_source = self._adopt(model, pretrained, mllm, config_args), "in-memory model"
            sampler_is_trained, default_selection = model.config.sampler_is_trained, model.config.selection
        else:
            source = self._source(pretrained, mllm)
            sampler_source, sampler_is_trained, default_selection = self._inspect_source(source, sampler, revision)
        self.selection = selection or default_selection
        self._check_selection(self.selection, sampler_is_trained, source)  # before any weights load
        if model is not None:
            model = model.to(self._device) if device else model
            self._device = model.device
        else:
            model = self._load(source, clip, sampler, revision, dtype, attn_implementation, selection, config_args)
        self._model = model.eval()
        self._config = model.config  # outlives lmms-eval's clean(), which drops the model after an evaluation
        # unknown selection options fail now, not in the middle of the run
        build_selector(self.selection, sampler=model.sampler, **self.selection_options)
        self.num_key_frames = int(config_args.get("num_key_frames") or model.config.num_key_frames)
        self._model_info = self._describe(source, revision, sampler_source)
        from .._compat import record_lmms_eval_model_info

        record_lmms_eval_model_info()

    # ------------------------------------------------------------------ construction helpers
    @staticmethod
    def _split_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """`--model_args` extras -> (MSJoEConfig overrides, selector options); anything else is an error."""
        config_args: dict[str, Any] = {}
        selection_items: list[str] = []
        for key, value in options.items():
            if key.startswith(SELECTION_OPTION_PREFIX):
                raw = value if isinstance(value, str) else json.dumps(value)
                selection_items.append(f"{key[len(SELECTION_OPTION_PREFIX) :]}={raw}")
            elif key in CONFIG_ARGS:
                config_args[key] = _coerce_config_arg(key, value)
            else:
                raise ValueError(
                    f"Unknown msjoe model argument {key!r}. Accepted: pretrained, mllm, clip, sampler, revision, "
                    f"selection, selection.<option>, device, dtype, attn_implementation, batch_size, seed, sample_log, "
                    f"model_name, and the MSJoEConfig fields {list(CONFIG_ARGS)}."
                )
        return config_args, parse_selection_options(selection_items)

    def _pick_device(self, device: str | None) -> torch.device:
        # one GPU per process, as lmms-eval's own HF models do
        if self.accelerator.num_processes > 1 and torch.cuda.is_available():
            return torch.device(f"cuda:{self.accelerator.local_process_index}")
        if device:
            return torch.device(device)
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")

    @staticmethod
    def _check_batch_size(batch_size: int | str, max_batch_size: int | None) -> int:
        if max_batch_size is not None or str(batch_size).startswith("auto"):
            raise ValueError("msjoe has no automatic batch size: pass --batch_size N (and no --max_batch_size).")
        size = int(batch_size)
        if size < 1:
            raise ValueError(f"--batch_size must be >= 1, got {size}.")
        return size

    @staticmethod
    def _source(pretrained: str | None, mllm: str | None) -> str:
        if (pretrained is None) == (mllm is None):
            raise ValueError(
                "Pass exactly one of pretrained=<MSJoE checkpoint> or mllm=<MLLM id> (with clip=... and, once trained, "
                f"sampler=...) in --model_args; got pretrained={pretrained!r}, mllm={mllm!r}."
            )
        return str(pretrained if pretrained is not None else mllm)

    @staticmethod
    def _inspect_source(source: str, sampler: str | None, revision: str | None) -> tuple[str, bool, str]:
        """From the config alone (no weights): where the sampler's weights come from (`checkpoint`, the `sampler=`
        argument, or `untrained` for a plain MLLM), whether they are trained, and the default selection."""
        from transformers import AutoConfig

        default_selection = MSJoEConfig.__dataclass_fields__["selection"].default
        if sampler is not None:  # `from_mllm(sampler=...)` marks the loaded sampler as trained
            return str(sampler), True, default_selection
        config = AutoConfig.from_pretrained(source, revision=revision)
        if config.model_type == MSJoEConfig.model_type:
            return "checkpoint", bool(config.sampler_is_trained), config.selection
        return "untrained", False, default_selection

    @staticmethod
    def _check_selection(selection: str, sampler_is_trained: bool, source: str) -> None:
        """The selection exists, and `msjoe` only runs on a trained sampler (`config.sampler_is_trained`), whether
        the model is a plain MLLM, a checkpoint saved before training, or an in-memory model."""
        if selection not in available_selectors():
            raise ValueError(f"Unknown selection {selection!r}; choose one of {available_selectors()}.")
        if selection == "msjoe" and not sampler_is_trained:
            raise ValueError(
                f"The MSJoE sampler of {source} is untrained (config.sampler_is_trained=False), so selection=msjoe "
                "would pick arbitrary frames. Pass a trained sampler (pretrained=<trained MSJoE checkpoint>, or "
                "mllm=... with sampler=<trained sampler folder>), or a training-free selection (one of "
                f"{[name for name in available_selectors() if name != 'msjoe']}), e.g. selection=uniform for the base "
                "model's number."
            )

    def _adopt(self, model: MSJoEForVideoQA, pretrained: str | None, mllm: str | None, config_args: Mapping[str, Any]) -> str:  # fmt: skip
        """Python API: use an already-built model (only K and the selection can be changed per call)."""
        if pretrained is not None or mllm is not None:
            raise ValueError("Pass either `model=` (an MSJoEForVideoQA) or pretrained=/mllm=, not both.")
        extra = sorted(set(config_args) - {"num_key_frames"})
        if extra:
            raise ValueError(
                f"With `model=`, set {extra} on `model.config` before wrapping it; only num_key_frames and selection "
                "are per-call."
            )
        return model.config._name_or_path or type(model).__name__

    def _load(self, source, clip, sampler, revision, dtype, attn_implementation, selection, config_args) -> MSJoEForVideoQA:  # fmt: skip
        """`load_msjoe_model` on this rank's device, with the `--model_args` config overrides."""
        from ..loading import load_msjoe_model

        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {_DTYPES}, got {dtype!r}.")
        mllm_kwargs: dict[str, Any] = {"dtype": dtype if dtype == "auto" else getattr(torch, dtype)}
        if revision is not None:
            mllm_kwargs["revision"] = revision
        if attn_implementation is not None:
            mllm_kwargs["attn_implementation"] = attn_implementation
        if self._device.type == "cuda":  # load straight onto this rank's GPU, not through host memory
            mllm_kwargs["device_map"] = {"": str(self._device)}
        if selection is not None:
            config_args = {**config_args, "selection": selection}
        model = load_msjoe_model(source, clip=clip, sampler=sampler, mllm_kwargs=mllm_kwargs, **config_args)
        return model.to(self._device)

    def _describe(self, source: str, revision: str | None, sampler_source: str) -> dict[str, Any]:
        """The part of `model_info` known once the model is built (`get_model_info` adds what can change later)."""
        config, processor = self.model.config, self.model.processor
        templates = chat_template = None
        if processor is not None:
            templates = json.dumps(
                [processor.query_template, processor.answer_template, processor.open_answer_template]
            )
            chat_template = processor.mllm_processor.chat_template
        mllm_name = config.mllm_config._name_or_path or None
        in_memory = sampler_source == "in-memory model"
        model_revision = None if in_memory else resolved_commit_hash(source, revision=revision)
        weights: dict[str, Any] = {"sampler_revision": None, "sampler_weights_sha256": None}
        if sampler_source not in ("checkpoint", "untrained", "in-memory model"):  # a `sampler=` folder or Hub id
            weights = sampler_weights(sampler_source)
        return {
            "model_name": self.model_name,
            "model": source,
            "revision": revision,  # as requested (None: the default branch)
            "model_revision": model_revision,  # the Hub commit loaded; None for folders and in-memory models
            "mllm": mllm_name,
            "mllm_model_type": config.mllm_config.model_type,
            "clip": config.clip,
            "sampler": sampler_source,
            **weights,
            "sampler_is_trained": config.sampler_is_trained,
            "selection": self.selection,
            "selection_options": self.selection_options,
            "sampler_selection_mode": config.sampler_selection_mode,
            "num_key_frames": self.num_key_frames,
            "num_preview_frames": config.effective_num_preview_frames,
            "num_queries": config.num_queries,
            "use_question_as_query": config.use_question_as_query,
            "candidate_fps": config.candidate_fps,
            "max_candidate_frames": config.max_candidate_frames,
            "candidate_seek_mode": config.candidate_seek_mode,
            "preview_max_pixels": config.preview_max_pixels,
            "key_frame_max_pixels": config.key_frame_max_pixels,
            "query_max_new_tokens": config.query_max_new_tokens,
            "answer_max_new_tokens": config.answer_max_new_tokens,
            "frames_as_video": None if processor is None else processor.frames_as_video,
            "prompt_templates_sha256": text_sha256(templates),
            "chat_template_sha256": text_sha256(chat_template),
            "seed": self.seed,
            "dtype": str(self.model.dtype).removeprefix("torch."),
            "versions": package_versions(),
        }

    # ------------------------------------------------------------------ what lmms-eval reads
    @property
    def model(self) -> MSJoEForVideoQA:
        """The wrapped `MSJoEForVideoQA`; an error once lmms-eval has released it after an evaluation."""
        if "_model" not in vars(self):
            raise RuntimeError(
                "lmms-eval released this model after its evaluation (`lmms.clean()` frees every nn.Module): build "
                "a new MSJoELmmsEvalModel for another evaluation."
            )
        return self._model

    @property
    def config(self) -> MSJoEConfig:
        """The MSJoE config (lmms-eval names in-memory models by `config._name_or_path`)."""
        return self._config

    @property
    def device(self) -> torch.device:
        """This rank's device (lmms-eval moves nothing itself; the model already lives there)."""
        return self._device

    @property
    def batch_size(self) -> int:
        """Questions per `answer_batch` call (lmms-eval reads it; `--batch_size N`)."""
        return self._batch_size

    def get_model_info(self) -> dict[str, Any]:
        """Model ids and revisions, K, candidate fps, pixel budgets, prompt hashes, selection, seed and versions.

        Read after the evaluation (`_compat.record_lmms_eval_model_info`), so what changes after `__init__` is
        filled in here: the world size lmms-eval sets on the model under torchrun, the batch size, and the CLIP's
        Hub commit (CLIP loads lazily, at the first answer, so its files may only be in the cache by now).
        """
        return {
            **self._model_info,
            **clip_provenance(self._config.clip_model_name, self._config.clip_pretrained),
            "batch_size": self.batch_size,
            "world_size": self.world_size,
        }

    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        """Not supported (lmms-eval's base class requires it): MSJoE answers by generation, it scores nothing."""
        raise NotImplementedError(
            "msjoe answers by generation (query turn, frame selection, answer turn) and does not score given "
            "continuations: run generate_until tasks such as msjoe_videomme, not loglikelihood/multiple_choice ones."
        )

    def generate_until_multi_round(self, requests: list[Instance]) -> list[str]:
        """Not supported (lmms-eval's base class requires it): one question per doc."""
        raise NotImplementedError(
            "msjoe answers one question per doc (its own two MLLM turns); multi-round tasks are not supported."
        )

    # ------------------------------------------------------------------ generation
    def generate_until(self, requests: list[Instance]) -> list[str]:
        """Answer every request; batches hold docs of one task, answers come back in request order.

        Padding requests get `""` without running the pipeline or reaching the sample log: under several processes
        lmms-eval evens out the ranks' request counts with copies of a real request marked
        `metadata["__padding_only__"]`, whose answers it never scores (and its response cache never stores `""`).
        """
        rows = [
            self._resolve(index, request)  # all videos checked first
            for index, request in enumerate(requests)
            if not (request.metadata or {}).get(PADDING_FLAG)
        ]
        by_task: dict[str, list[_Row]] = {}
        for row in rows:
            by_task.setdefault(row.task, []).append(row)
        answers = [""] * len(requests)
        stage_seconds: dict[str, float] = {}
        generated_tokens, start = 0, time.perf_counter()
        with tqdm(total=len(rows), disable=self.rank != 0, desc="msjoe answering") as bar:
            for task_rows in by_task.values():
                for first in range(0, len(task_rows), self.batch_size):
                    batch = task_rows[first : first + self.batch_size]
                    outputs = self._answer(batch)
                    for row, out in zip(batch, outputs, strict=True):
                        answers[row.index] = out.option or out.answer or ""
                        generated_tokens += self._count_tokens(out)
                    for stage, seconds in outputs[0].timings.items():  # batch wall times, shared by its rows
                        stage_seconds[stage] = stage_seconds.get(stage, 0.0) + seconds
                    self._write_sample_log(batch, outputs, answers)
                    bar.update(len(batch))
        self._log_throughput(time.perf_counter() - start, generated_tokens, stage_seconds, len(rows))
        return answers

    def _resolve(self, index: int, request: Instance) -> _Row:
        """The request's doc -> video path, question, options and sampling arguments."""
        context, gen_kwargs, doc_to_visual, doc_id, task, split = request.args
        doc = self.task_dict[task][split][doc_id]
        visuals = doc_to_visual(doc)
        if len(visuals) != 1 or not isinstance(visuals[0], str):
            raise ValueError(
                f"{task} doc {doc_id}: msjoe needs exactly one video path per doc (`doc_to_visual`), got "
                f"{[type(v).__name__ for v in visuals]}. Use the msjoe_* tasks or another video task."
            )
        if MSJOE_QUESTION in doc:
            question, options = doc[MSJOE_QUESTION], list(doc[MSJOE_OPTIONS])
        else:
            question, options = context, []
            self._warn_once(
                f"no-fields:{task}",
                f"{task} docs have no `{MSJOE_QUESTION}`/`{MSJOE_OPTIONS}` fields: the task prompt is used as an "
                "open question and the options are not passed separately. Use the msjoe_* tasks for MSJoE's protocol.",
            )
        self._warn_once(
            "budgets",
            f"The tasks' max_new_tokens/until are not used: MSJoE's turns have their own budgets "
            f"(query_max_new_tokens={self.model.config.query_max_new_tokens}, "
            f"answer_max_new_tokens={self.model.config.answer_max_new_tokens}).",
        )
        return _Row(index, task, split, doc_id, visuals[0], question, options, _sampling_kwargs(gen_kwargs))

    def _generator(self, row: _Row) -> torch.Generator:
        """The doc's own generator, seeded from (seed, task, doc id): its frames do not depend on its batch.

        On the CPU for every selection (`sample_frames` moves the noise to the scores' device), so a doc draws the
        same frames on any device.
        """
        key = f"{self.seed}:{row.task}:{row.doc_id}"
        return torch.Generator(device="cpu").manual_seed(zlib.crc32(key.encode("utf-8")))

    def _answer(self, batch: Sequence[_Row]) -> list[MSJoEVideoQAOutput]:
        """One `answer_batch` call, with one generator per row for stochastic selections."""
        return self.model.answer_batch(
            [row.video for row in batch],
            [row.question for row in batch],
            [row.options or None for row in batch],
            selection=self.selection,
            selection_options=self.selection_options,
            num_key_frames=self.num_key_frames,
            generation_kwargs=batch[0].sampling,  # a batch holds docs of one task, which share gen_kwargs
            generator=[self._generator(row) for row in batch],
        )

    # ------------------------------------------------------------------ logs
    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(message)

    def _count_tokens(self, out: MSJoEVideoQAOutput) -> int:
        """Generated tokens of both turns, re-counted from the decoded texts (special tokens excluded)."""
        tokenizer = self.model.processor.tokenizer
        texts = [t for t in (out.query_turn_text, out.answer_turn_text) if t]
        return sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)

    def _log_throughput(self, seconds: float, tokens: int, stage_seconds: Mapping[str, float], num_docs: int) -> None:
        """Per-stage seconds per doc into the results' `throughput` block (lmms-eval's `log_metrics`)."""
        from lmms_eval.models.model_utils.gen_metrics import log_metrics

        per_doc = {f"msjoe_{stage}_seconds_per_doc": value / max(num_docs, 1) for stage, value in stage_seconds.items()}
        log_metrics(
            total_elapsed_time=seconds,
            total_gen_tokens=tokens,
            avg_speed=tokens / seconds if seconds > 0 else 0.0,
            additional_metrics={"total_requests": num_docs, **per_doc},
        )

    def _sample_log_file(self) -> str:
        """`sample_log`, with `.rank<N>` when several processes run; appended to, never truncated."""
        if self._sample_log_path is None:
            path = os.path.abspath(os.path.expanduser(self.sample_log))
            if self.world_size > 1:
                stem, suffix = os.path.splitext(path)
                path = f"{stem}.rank{self.rank}{suffix}"
            os.makedirs(os.path.dirname(path), exist_ok=True)
            self._sample_log_path = path
        return self._sample_log_path

    def _write_sample_log(self, batch: Sequence[_Row], outputs: Sequence[MSJoEVideoQAOutput], answers: Sequence[str]) -> None:  # fmt: skip
        """One JSON line per doc: queries, selected frames, both turns' texts, the returned answer, timings."""
        if self.sample_log is None:
            return
        with open(self._sample_log_file(), "a", encoding="utf-8") as handle:
            for row, out in zip(batch, outputs, strict=True):
                record = {
                    "run_started": self._run_started, "task": row.task, "split": row.split, "doc_id": row.doc_id,
                    "video": row.video,
                    "question": row.question, "options": row.options, "selection": out.selection,
                    "queries": out.queries, "queries_fallback": out.queries_fallback,
                    "query_turn_text": out.query_turn_text,
                    "num_candidates": None if out.candidate_timestamps is None else len(out.candidate_timestamps),
                    "key_frame_timestamps": out.key_frame_timestamps.tolist(),
                    "answer_turn_text": out.answer_turn_text, "response": answers[row.index],
                    "batch_size": len(batch), "batch_seconds": out.timings,
                }  # fmt: skip
                handle.write(json.dumps(record) + "\n")
