"""Difficulty labels: the base MLLM's pass rate c on each question (paper §2.2, difficulty-aware reward).

c = (correct answers) / n, from n sampled rollouts of the core pipeline with K uniformly spaced frames
(`MSJoEForVideoQA.answer_batch(..., selection="uniform")`: no query turn, no CLIP). Every finished row is
appended to `.msjoe/difficulty/<settings>.jsonl` and fsync'ed before the next one starts, so a crash loses
at most the row in flight; a rerun with the same settings reads that file and computes only what is missing.
A torn last line (crash mid-write) is discarded and its row recomputed. Rows are seeded individually, so a
resumed run gives the same labels as an uninterrupted one (for the same `rows_per_batch`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm
from transformers.utils import logging

from ..video_io import VideoDecodeError, open_video
from .card import write_dataset_card
from .schema import OPTION_LETTERS, split_dir
from .writer import (
    append_provenance,
    read_metadata,
    resolve_splits,
    state_path,
    verify_layout,
    write_metadata,
)

if TYPE_CHECKING:
    from ..modeling_msjoe import MSJoEForVideoQA

logger = logging.get_logger(__name__)

__all__ = ["DifficultyReport", "DifficultySettings", "RolloutCache", "label_difficulty"]


@dataclass(frozen=True)
class DifficultySettings:
    """What a pass rate means; every field is part of the cache key and of the card's provenance.

    Args:
        model: the model's id or path (a label: the model object itself is passed to `label_difficulty`).
        num_rollouts: n, sampled answers per question.
        num_key_frames: K, uniformly spaced frames the MLLM sees (the paper trains with K = 32 or 64).
        temperature / top_p: sampling of the answer turn.
        max_new_tokens: generation budget of the answer turn.
        seed: base seed; each row derives its own from it.
    """

    model: str
    num_rollouts: int = 8
    num_key_frames: int = 32
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 64
    seed: int = 0

    def __post_init__(self):
        if self.num_rollouts < 1 or self.num_key_frames < 1 or self.max_new_tokens < 1:
            raise ValueError(
                f"num_rollouts ({self.num_rollouts}), num_key_frames ({self.num_key_frames}) and max_new_tokens "
                f"({self.max_new_tokens}) must be positive; the paper's setting is 8 rollouts at K = 32."
            )
        if not self.temperature > 0 or not 0 < self.top_p <= 1:
            raise ValueError(f"temperature must be > 0 and top_p in (0, 1], got {self.temperature} and {self.top_p}; rollouts are sampled.")

    def cache_name(self) -> str:
        digest = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]
        slug = re.sub(r"[^A-Za-z0-9]+", "-", os.path.basename(self.model.rstrip("/\\")))[:40].strip("-") or "model"
        return f"{slug}-n{self.num_rollouts}-k{self.num_key_frames}-{digest}.jsonl"


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
            logger.warning(f"{self.path}: discarding an incomplete last line (an interrupted run); that row is recomputed.")
            with open(self.path, "r+b") as handle:
                handle.truncate(len(complete))
        for line in complete.decode("utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                self.records[(record["split"], record["id"])] = record

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self.records

    def get(self, key: tuple[str, str]) -> dict[str, Any] | None:
        return self.records.get(key)

    def append(self, record: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.records[(record["split"], record["id"])] = record


@dataclass
class DifficultyReport:
    cache_path: str
    labelled: int = 0  # rows whose pass_rate was written
    computed: int = 0  # rows whose rollouts ran in this call
    from_cache: int = 0  # rows whose rollouts came from an earlier (interrupted) run
    skipped_already_labelled: int = 0  # rows that had a pass_rate and `overwrite` was off
    failed: list[dict[str, str]] = field(default_factory=list)  # {"split", "id", "error"}: pass_rate left null


def _row_seed(settings: DifficultySettings, split: str, row_id: str) -> int:
    return int(hashlib.sha256(f"{settings.seed}|{split}|{row_id}".encode()).hexdigest()[:8], 16)


def _run_rollouts(
    model: MSJoEForVideoQA, root: str, split: str, rows: Sequence[dict[str, Any]], settings: DifficultySettings,
    generation_kwargs: Mapping[str, Any],
) -> list[dict[str, Any]]:  # fmt: skip
    """n sampled answers for each row of `rows`, batched together; one cache record per row."""
    n = settings.num_rollouts
    readers = [open_video(os.path.join(split_dir(root, split), row["file_name"])) for row in rows]
    options = [dict(zip(OPTION_LETTERS, row["options"])) for row in rows]
    device = model.device
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(_row_seed(settings, split, rows[0]["id"]))
        outputs = model.answer_batch(
            [r for r in readers for _ in range(n)], [row["question"] for row in rows for _ in range(n)],
            [o for o in options for _ in range(n)], selection="uniform", num_key_frames=settings.num_key_frames,
            generation_kwargs=generation_kwargs,
        )  # fmt: skip
    records = []
    for i, row in enumerate(rows):
        predictions = [out.option for out in outputs[i * n : (i + 1) * n]]
        correct = sum(p == row["answer"] for p in predictions)
        records.append({"split": split, "id": row["id"], "num_rollouts": n, "correct": correct, "predictions": predictions})
    return records


def _label_chunk(
    model: MSJoEForVideoQA, root: str, split: str, rows: Sequence[dict[str, Any]], settings: DifficultySettings,
    generation_kwargs: Mapping[str, Any], cache: RolloutCache, report: DifficultyReport,
) -> None:  # fmt: skip
    """Run and persist one batch; a video that fails to decode is isolated, reported, and left unlabelled."""
    try:
        records = _run_rollouts(model, root, split, rows, settings, generation_kwargs)
    except VideoDecodeError as err:
        if len(rows) > 1:
            for row in rows:
                _label_chunk(model, root, split, [row], settings, generation_kwargs, cache, report)
            return
        report.failed.append({"split": split, "id": rows[0]["id"], "error": str(err)})
        logger.warning(f"label-difficulty: {split}/{rows[0]['id']} failed and stays unlabelled: {err}")
        return
    for record in records:
        cache.append(record)
    report.computed += len(records)


def label_difficulty(
    root: str | os.PathLike,
    model: MSJoEForVideoQA,
    settings: DifficultySettings,
    *,
    splits: Sequence[str] | None = None,
    overwrite: bool = False,
    rows_per_batch: int = 1,
    generation_kwargs: Mapping[str, Any] | None = None,
    show_progress: bool = True,
) -> DifficultyReport:
    """Label `pass_rate` for every row of a built folder that has none (all rows with `overwrite=True`).

    Args:
        model: the base MLLM wrapped by `load_msjoe_model` / `MSJoEForVideoQA.from_mllm` (uniform selection
            needs neither CLIP nor a trained sampler).
        rows_per_batch: questions whose rollouts share one `generate` call (n x rows_per_batch sequences).
        generation_kwargs: extra `generate` arguments on top of the sampling settings (not part of the cache key:
            change `settings` when they change what a rollout means).
    """
    root = os.fspath(root)
    if rows_per_batch < 1:
        raise ValueError(f"rows_per_batch must be >= 1, got {rows_per_batch}.")
    verify_layout(root).raise_if_broken(f"label {root!r}")
    cache = RolloutCache(state_path(root, "difficulty", settings.cache_name()))
    report = DifficultyReport(cache_path=cache.path)
    gen = {"do_sample": True, "temperature": settings.temperature, "top_p": settings.top_p, "max_new_tokens": settings.max_new_tokens, **(generation_kwargs or {})}  # fmt: skip
    for split in resolve_splits(root, splits):
        rows = read_metadata(root, split)
        targets = [r for r in rows if overwrite or r["pass_rate"] is None]
        report.skipped_already_labelled += len(rows) - len(targets)
        todo = [r for r in targets if (split, r["id"]) not in cache]
        report.from_cache += len(targets) - len(todo)
        chunks = [todo[i : i + rows_per_batch] for i in range(0, len(todo), rows_per_batch)]
        for chunk in tqdm(chunks, desc=f"{split}: rollouts", disable=not show_progress):
            _label_chunk(model, root, split, chunk, settings, gen, cache, report)
        for row in targets:
            record = cache.get((split, row["id"]))
            if record is not None:
                row["pass_rate"] = record["correct"] / record["num_rollouts"]
                report.labelled += 1
        write_metadata(root, split, rows)
    append_provenance(root, "label-difficulty", {**asdict(settings), "selection": "uniform", "labelled": report.labelled, "failed": len(report.failed)})  # fmt: skip
    write_dataset_card(root)
    return report
