"""Difficulty labels: the base MLLM's pass rate c on each question (paper §2.2, difficulty-aware reward).

c = (correct answers) / n, from n sampled rollouts of the core pipeline with K uniformly spaced frames
(`MSJoEForVideoQA.answer_batch(..., selection="uniform")`: no query turn, no CLIP). An answer with no parsable
option letter counts as wrong; how many there were is reported (CLI, `.msjoe/reports/label-difficulty-N.json`,
provenance) with a warning above `PARSE_FAILURE_WARNING_RATE`, since a model whose answers never parse would get
pass_rate 0 everywhere.

Resumable and reproducible. The rows to label are cut into fixed chunks of `rows_per_batch` (in file order),
each chunk is one `answer_batch` call seeded from the ids it holds, and every finished row is appended to
`.msjoe/difficulty/<settings>.jsonl` and fsync'ed. A rerun with the same settings reads that file and reruns
only the chunks with a missing row (whole, with the same seed), appending only the missing rows; so a crash at
any point, torn last line included, ends in exactly the labels of an uninterrupted run. (Another
`rows_per_batch` cuts other chunks: other, equally valid samples.)

What the cache is keyed on: every `DifficultySettings` field, including `model_identity`, the identity of the
weights and not only the model's name (the Hub commit of a Hub id, or a hash of the names, sizes and mtimes of
a local folder's weight and config files), so retraining a local checkpoint in place never reuses old
rollouts. `overwrite=True` relabels rows that already have a pass_rate, from this setting's cached rollouts when
there are any; `recompute=True` discards those cached rollouts first and runs them again (same seed: the same
samples unless the model, the code or the generation changed; change `seed` for new samples).

Cost: uniform selection asks every rollout of a question for the same K frames, so each video is decoded once
per chunk (`_DecodeOnceReader`), but the n rollouts are n sequences of one `generate` call, so the prompt
(K frames of visual tokens) is prefilled n times: the core has no shared-prefix sampling. See docs/dataset.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from filelock import FileLock, Timeout
from tqdm.auto import tqdm
from transformers.utils import logging

from ..atomic_files import atomic_write
from ..fingerprints import files_state_digest
from ..hub_utils import resolved_commit_hash
from ..video_io import VideoDecodeError, VideoReader
from .card import write_dataset_card
from .schema import lettered_options, split_dir
from .writer import (
    append_provenance,
    folder_lock,
    list_splits,
    next_report_path,
    read_metadata,
    resolve_splits,
    state_path,
    verify_layout,
    write_json_atomic,
    write_metadata,
)

if TYPE_CHECKING:
    from ..modeling_msjoe import MSJoEForVideoQA

logger = logging.get_logger(__name__)

__all__ = [
    "PARSE_FAILURE_WARNING_RATE",
    "DifficultyReport",
    "DifficultySettings",
    "RolloutCache",
    "label_difficulty",
    "model_weights_identity",
]

PARSE_FAILURE_WARNING_RATE = 0.2  # above this share of unparsable answers, pass rates mostly measure formatting
_EXAMPLES_KEPT = 3  # unparsable answer texts kept per row (cache) and per run (report)


@dataclass(frozen=True)
class DifficultySettings:
    """What a pass rate means; every field is part of the cache key and of the card's provenance.

    Args:
        model: the model's id or path (a label: the model object itself is passed to `label_difficulty`).
        num_rollouts: n, sampled answers per question.
        num_key_frames: K, uniformly spaced frames the MLLM sees (the paper trains with K = 32 or 64).
        temperature / top_p: sampling of the answer turn.
        max_new_tokens: generation budget of the answer turn.
        seed: base seed; each chunk of rows derives its own from it and the ids it holds.
        model_identity: what the weights are (`model_weights_identity(model)`); `label_difficulty` fills it in when
            None. Part of the cache key, so new weights under the same name or path get new rollouts.
    """

    model: str
    num_rollouts: int = 8
    num_key_frames: int = 32
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 64
    seed: int = 0
    model_identity: str | None = None

    def __post_init__(self):
        if self.num_rollouts < 1 or self.num_key_frames < 1 or self.max_new_tokens < 1:
            raise ValueError(
                f"num_rollouts ({self.num_rollouts}), num_key_frames ({self.num_key_frames}) and max_new_tokens "
                f"({self.max_new_tokens}) must be positive; the paper's setting is 8 rollouts at K = 32."
            )
        if not self.temperature > 0 or not 0 < self.top_p <= 1:
            raise ValueError(
                f"temperature must be > 0 and top_p in (0, 1], got {self.temperature} and {self.top_p}; rollouts are sampled."
            )

    def cache_name(self) -> str:
        digest = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]
        slug = re.sub(r"[^A-Za-z0-9]+", "-", os.path.basename(self.model.rstrip("/\\")))[:40].strip("-") or "model"
        return f"{slug}-n{self.num_rollouts}-k{self.num_key_frames}-{digest}.jsonl"


_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
_IDENTITY_NAMES = ("config.json", "generation_config.json")  # change what a rollout means as much as weights do


def model_weights_identity(model: str) -> str | None:
    """Identify the weights behind `model` (a local folder or a Hub id) for the rollout cache key; None if unknown.

    A local folder: `local:` + a hash of the relative names, sizes and mtimes of its weight files
    (`*.safetensors`, `*.bin`, `*.pt`, `*.pth`, `*.gguf`) and configs, at any depth (an MSJoE checkpoint nests
    the MLLM); hashing gigabytes of content on every run would cost minutes, and a retrained checkpoint always
    changes size or mtime. A Hub id: `hub:` + the commit of the cached snapshot `from_pretrained` loaded (call
    this after loading the model). Neither (a bare label, a model not in the Hub cache): None.
    """
    if os.path.isdir(model):
        files = []
        for folder, dirs, names in os.walk(model):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            files += [
                os.path.join(folder, n) for n in sorted(names) if n.endswith(_WEIGHT_SUFFIXES) or n in _IDENTITY_NAMES
            ]
        return f"local:{files_state_digest(files, relative_to=model)}" if files else None
    commit = resolved_commit_hash(model)
    return None if commit is None else f"hub:{commit}"


def _with_model_identity(settings: DifficultySettings) -> DifficultySettings:
    if settings.model_identity is not None:
        return settings
    identity = model_weights_identity(settings.model)
    if identity is None:
        logger.warning(
            f"label-difficulty: cannot tell which weights {settings.model!r} names (neither a local folder with "
            "weight files nor a model in the Hub cache), so cached rollouts are keyed on that name only; pass "
            "--recompute (`recompute=True`) after changing the weights, or set `model_identity`."
        )
        return settings
    return dataclasses.replace(settings, model_identity=identity)


class RolloutCache:
    """Append-only jsonl of finished rows, keyed by (split, id); durable line by line."""

    def __init__(self, path: str):
        self.path = path
        self.records: dict[tuple[str, str], dict[str, Any]] = {}
        if os.path.isfile(path):
            self._load()

    def _load(self) -> None:
        with open(self.path, "rb") as handle:
            data = handle.read()
        complete = data[: data.rfind(b"\n") + 1]  # drop a torn last line: its row is recomputed
        if len(complete) != len(data):
            logger.warning(
                f"{self.path}: discarding an incomplete last line (an interrupted run); that row is recomputed."
            )
            with open(self.path, "r+b") as handle:
                handle.truncate(len(complete))
        for line in complete.decode("utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                self.records[(record["split"], record["id"])] = record

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Refuse a second run with the same settings on the same folder while this one holds the cache."""
        lock = FileLock(f"{self.path}.lock", timeout=0)
        try:
            lock.acquire()
        except Timeout as err:
            raise TimeoutError(
                f"Another label-difficulty run with the same settings is labelling this folder (it holds {lock.lock_file}); "
                "wait for it to finish (a rerun then finds its rows in the cache) instead of computing them twice."
            ) from err
        try:
            yield
        finally:
            lock.release()

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self.records

    def get(self, key: tuple[str, str]) -> dict[str, Any] | None:
        return self.records.get(key)

    def discard(self, keys: Iterable[tuple[str, str]]) -> int:
        """Forget the records of `keys` (rewriting the file atomically); returns how many there were."""
        gone = [key for key in set(keys) if key in self.records]
        if not gone:
            return 0
        for key in gone:
            del self.records[key]
        with atomic_write(self.path) as handle:
            handle.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in self.records.values())
        return len(gone)

    def append(self, record: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.records[(record["split"], record["id"])] = record


@dataclass
class DifficultyReport:
    cache_path: str
    report_path: str | None = None  # .msjoe/reports/label-difficulty-N.json
    labelled: int = 0  # rows whose pass_rate was written
    computed: int = 0  # rows whose rollouts ran in this call
    from_cache: int = 0  # rows whose rollouts came from an earlier (interrupted) run
    skipped_already_labelled: int = 0  # rows that had a pass_rate and `overwrite` was off
    discarded_from_cache: int = 0  # cached rollouts thrown away by `recompute` (then computed again)
    rollouts: int = 0  # answers behind the labels written
    unparsed_rollouts: int = 0  # of those, answers without a parsable option letter (counted as wrong)
    parse_failure_rate: float | None = None  # unparsed_rollouts / rollouts (None: nothing labelled)
    unparsed_examples: list[str] = field(default_factory=list)  # a few raw answers that did not parse
    failed: list[dict[str, str]] = field(default_factory=list)  # {"split", "id", "error"}: pass_rate left null

    def parse_warning(self) -> str | None:
        """The warning to show when so many answers did not parse that the pass rates mostly measure formatting."""
        if self.parse_failure_rate is None or self.parse_failure_rate <= PARSE_FAILURE_WARNING_RATE:
            return None
        return (
            f"{self.unparsed_rollouts} of {self.rollouts} answers ({self.parse_failure_rate:.0%}) gave no option letter "
            f"and count as wrong, so these pass rates understate the model (answers that never parse give pass_rate 0 "
            f"everywhere). Examples: {self.unparsed_examples}. Raise --max-new-tokens, or use an instruction-tuned "
            "model that follows the answer format, then relabel with --recompute."
        )


class _DecodeOnceReader(VideoReader):
    """A `VideoReader` that serves a repeated `frames_at` request from its last result.

    `answer_batch` receives this reader once per rollout (and once per question on the same video); uniform
    selection asks each for the same K frames, so the video is decoded once per chunk instead of n times.
    """

    def __init__(self, source: str):
        super().__init__(source)
        self._last: tuple[tuple, torch.Tensor] | None = None

    def frames_at(self, timestamps: torch.Tensor | Sequence[float], **kwargs: Any) -> torch.Tensor:
        key = (tuple(torch.as_tensor(timestamps, dtype=torch.float64).tolist()), tuple(sorted(kwargs.items())))
        if self._last is None or self._last[0] != key:
            self._last = (key, super().frames_at(timestamps, **kwargs))  # (K, 3, H, W) uint8
        return self._last[1]


def _chunk_seed(settings: DifficultySettings, split: str, row_ids: Sequence[str]) -> int:
    return int(hashlib.sha256(f"{settings.seed}|{split}|{'|'.join(row_ids)}".encode()).hexdigest()[:8], 16)


def _run_rollouts(
    model: MSJoEForVideoQA, root: str, split: str, rows: Sequence[dict[str, Any]], settings: DifficultySettings,
    generation_kwargs: Mapping[str, Any],
) -> list[dict[str, Any]]:  # fmt: skip
    """n sampled answers for each row of `rows`, in one `answer_batch` call; one cache record per row."""
    n = settings.num_rollouts
    readers: dict[str, _DecodeOnceReader] = {}
    for row in rows:
        if row["file_name"] not in readers:
            readers[row["file_name"]] = _DecodeOnceReader(os.path.join(split_dir(root, split), row["file_name"]))
    options = [{o.letter: o.text for o in lettered_options(row["options"])} for row in rows]
    device = model.device
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(_chunk_seed(settings, split, [row["id"] for row in rows]))
        outputs = model.answer_batch(
            [readers[row["file_name"]] for row in rows for _ in range(n)], [row["question"] for row in rows for _ in range(n)],
            [o for o in options for _ in range(n)], selection="uniform", num_key_frames=settings.num_key_frames,
            generation_kwargs=generation_kwargs,
        )  # fmt: skip
    records = []
    for i, row in enumerate(rows):
        answers = outputs[i * n : (i + 1) * n]
        predictions = [out.option for out in answers]
        unparsed = [out.answer_turn_text[:200] for out in answers if out.option is None]
        records.append({
            "split": split, "id": row["id"], "num_rollouts": n, "correct": sum(p == row["answer"] for p in predictions),
            "predictions": predictions, "unparsed": len(unparsed), "unparsed_examples": unparsed[:_EXAMPLES_KEPT],
        })  # fmt: skip
    return records


def _label_chunk(
    model: MSJoEForVideoQA, root: str, split: str, chunk: Sequence[dict[str, Any]], missing: set[str],
    settings: DifficultySettings, generation_kwargs: Mapping[str, Any], cache: RolloutCache, report: DifficultyReport,
) -> None:  # fmt: skip
    """Run one chunk whole and persist its `missing` rows; a video that fails to decode is isolated, reported,
    and left unlabelled (the chunk's other rows then run one by one)."""
    try:
        records = _run_rollouts(model, root, split, chunk, settings, generation_kwargs)
    except VideoDecodeError as err:
        if len(chunk) > 1:
            for row in chunk:
                if row["id"] in missing:
                    _label_chunk(model, root, split, [row], {row["id"]}, settings, generation_kwargs, cache, report)
            return
        report.failed.append({"split": split, "id": chunk[0]["id"], "error": str(err)})
        logger.warning(f"label-difficulty: {split}/{chunk[0]['id']} failed and stays unlabelled: {err}")
        return
    for record in records:
        if record["id"] in missing:
            cache.append(record)
            report.computed += 1


def _write_labels(
    root: str, targets: dict[str, set[str]], overwrite: bool, cache: RolloutCache, report: DifficultyReport
) -> None:
    """Under the folder lock: re-read each split (another tool may have changed it), set the pass rates, write it."""
    present = set(list_splits(root))
    for split, ids in targets.items():
        if split not in present:
            continue  # removed meanwhile (a concurrent filter emptied it)
        rows = read_metadata(root, split)
        for row in rows:
            record = cache.get((split, row["id"])) if row["id"] in ids else None
            if record is None or not (overwrite or row["pass_rate"] is None):
                continue
            row["pass_rate"] = record["correct"] / record["num_rollouts"]
            report.labelled += 1
            report.rollouts += record["num_rollouts"]
            report.unparsed_rollouts += record.get("unparsed", sum(p is None for p in record["predictions"]))
            report.unparsed_examples += record.get("unparsed_examples", [])[
                : max(0, _EXAMPLES_KEPT - len(report.unparsed_examples))
            ]
        write_metadata(root, split, rows)
    report.parse_failure_rate = report.unparsed_rollouts / report.rollouts if report.rollouts else None


def _record_run(root: str, settings: DifficultySettings, run: dict[str, Any], report: DifficultyReport) -> None:
    """Under the folder lock: the run's report, its provenance step and the re-rendered card."""
    report.report_path = next_report_path(root, "label-difficulty")
    write_json_atomic(report.report_path, {"settings": asdict(settings), **run, **asdict(report)})
    append_provenance(root, "label-difficulty", {
        **asdict(settings), "selection": "uniform", **run, "labelled": report.labelled, "failed": len(report.failed),
        "parse_failure_rate": report.parse_failure_rate,
    })  # fmt: skip
    write_dataset_card(root)


def label_difficulty(
    root: str | os.PathLike,
    model: MSJoEForVideoQA,
    settings: DifficultySettings,
    *,
    splits: Sequence[str] | None = None,
    overwrite: bool = False,
    recompute: bool = False,
    rows_per_batch: int = 1,
    generation_kwargs: Mapping[str, Any] | None = None,
    show_progress: bool = True,
) -> DifficultyReport:
    """Label `pass_rate` for every row of a built folder that has none (all rows with `overwrite=True`).

    Args:
        model: the base MLLM wrapped by `load_msjoe_model` / `MSJoEForVideoQA.from_mllm` (uniform selection
            needs neither CLIP nor a trained sampler).
        settings: what a pass rate means; a None `model_identity` is filled in from `settings.model`
            (`model_weights_identity`).
        overwrite: also relabel rows that already have a pass_rate (from this setting's cached rollouts if any).
        recompute: discard this setting's cached rollouts of the selected rows and run them again; implies
            `overwrite`. A crash midway is resumed by a rerun without `recompute`.
        rows_per_batch: questions whose rollouts share one `generate` call (n x rows_per_batch sequences); part of
            what the labels are (the chunks and their seeds), recorded in the provenance.
        generation_kwargs: extra `generate` arguments on top of the sampling settings (not part of the cache key:
            change `settings` when they change what a rollout means).
    Rollouts run without holding the folder's write lock; the labels are merged into the current metadata under it.
    """
    root = os.fspath(root)
    if rows_per_batch < 1:
        raise ValueError(f"rows_per_batch must be >= 1, got {rows_per_batch}.")
    verify_layout(root).raise_if_broken(f"label {root!r}")
    overwrite = overwrite or recompute
    settings = _with_model_identity(settings)
    cache = RolloutCache(state_path(root, "difficulty", settings.cache_name()))
    report = DifficultyReport(cache_path=cache.path)
    gen = {"do_sample": True, "temperature": settings.temperature, "top_p": settings.top_p, "max_new_tokens": settings.max_new_tokens, **(generation_kwargs or {})}  # fmt: skip
    targets: dict[str, set[str]] = {}
    with cache.exclusive():
        for split in resolve_splits(root, splits):
            rows = read_metadata(root, split)
            todo = [r for r in rows if overwrite or r["pass_rate"] is None]
            report.skipped_already_labelled += len(rows) - len(todo)
            targets[split] = {r["id"] for r in todo}
            if recompute:
                report.discarded_from_cache += cache.discard((split, r["id"]) for r in todo)
            chunks = [todo[i : i + rows_per_batch] for i in range(0, len(todo), rows_per_batch)]
            for chunk in tqdm(chunks, desc=f"{split}: rollouts", disable=not show_progress):
                missing = {r["id"] for r in chunk if (split, r["id"]) not in cache}
                report.from_cache += len(chunk) - len(missing)
                if missing:
                    _label_chunk(model, root, split, chunk, missing, settings, gen, cache, report)
        run = {"rows_per_batch": rows_per_batch, "recompute": recompute}
        with folder_lock(root):
            _write_labels(root, targets, overwrite, cache, report)
            _record_run(root, settings, run, report)
    if (warning := report.parse_warning()) is not None:
        logger.warning(f"label-difficulty: {warning}")  # the one place it is shown (the CLI prints only counts)
    return report
