"""Evaluation during training (issue part 8): multiple-choice accuracy of the model being trained, with its
learned frame selection and with uniform frames, overall / by question type / by duration bucket.

Both runs use the inference pipeline (`MSJoEForVideoQA.answer_batch`, greedy, top-K selection), so the numbers
are what a user of the saved checkpoint gets; the gap between them is the sampler's gain.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tqdm.auto import tqdm
from transformers.utils import logging

from .metrics import load_msjoe_accuracy
from .modeling_msjoe import MSJoEForVideoQA
from .prompts import letter_options
from .video_io import VideoDecodeError

logger = logging.get_logger(__name__)

__all__ = ["QAPrediction", "answer_rows", "evaluate_selections", "flatten_accuracy", "score_predictions"]


@dataclass
class QAPrediction:
    """One evaluated question (`option` is None when no letter could be parsed)."""

    option: str | None
    answer: str
    question_type: str | None
    duration_seconds: float | None


def answer_rows(
    model: MSJoEForVideoQA,
    rows: Sequence[Mapping[str, Any]],
    *,
    selection: str,
    batch_size: int,
    show_progress: bool = False,
) -> tuple[list[QAPrediction], int]:
    """Answer `rows` with `selection`; a batch hitting an undecodable video is retried row by row and the bad
    rows are skipped. Returns the predictions and the number of skipped rows."""
    predictions: list[QAPrediction] = []
    skipped = 0
    starts = range(0, len(rows), batch_size)
    for start in tqdm(starts, desc=f"Evaluating ({selection} frames)", unit="batch", disable=not show_progress):
        batch = list(rows[start : start + batch_size])
        try:
            outputs = _answer(model, batch, selection)
        except VideoDecodeError:
            outputs = []
            for row in batch:
                try:
                    outputs += _answer(model, [row], selection)
                except VideoDecodeError as err:
                    logger.warning(f"Evaluation skips a question whose video failed to decode: {err}")
                    skipped += 1
                    outputs.append(None)
        for row, out in zip(batch, outputs):
            if out is not None:
                answer = str(row["answer"]).strip().upper()
                predictions.append(
                    QAPrediction(out.option, answer, row.get("question_type"), row.get("duration_seconds"))
                )
    return predictions, skipped


def _answer(model: MSJoEForVideoQA, rows: Sequence[Mapping[str, Any]], selection: str) -> list[Any]:
    # Dataset options are plain texts, lettered by position (data/schema.py): letter them here, so that a text
    # such as "A. Lincoln" is never read as a label.
    options = [letter_options(r["options"], lettered=False) for r in rows]
    return model.answer_batch([r["video"] for r in rows], [r["question"] for r in rows], options, selection=selection)


def score_predictions(predictions: Sequence[QAPrediction], bucket_edges: Sequence[float]) -> dict[str, Any]:
    """The `msjoe_accuracy` metric module on `predictions`."""
    metric = load_msjoe_accuracy()
    return metric.compute(
        predictions=[p.option or "" for p in predictions],
        references=[p.answer for p in predictions],
        question_types=[p.question_type for p in predictions],
        durations=[p.duration_seconds for p in predictions],
        duration_bucket_edges=list(bucket_edges),
    )


def flatten_accuracy(result: Mapping[str, Any], prefix: str) -> dict[str, float]:
    """`{"accuracy": .., "accuracy_by_type": {"ocr": ..}}` ->
    `{"<prefix>/accuracy": .., "<prefix>/accuracy/type=ocr": ..}`."""
    flat = {f"{prefix}/accuracy": float(result["accuracy"]), f"{prefix}/count": float(result["count"])}
    for key, label in (("accuracy_by_type", "type"), ("accuracy_by_duration", "duration")):
        for name, value in result.get(key, {}).items():
            flat[f"{prefix}/accuracy/{label}={name}"] = float(value)
    return flat


def evaluate_selections(
    model: MSJoEForVideoQA,
    rows: Sequence[Mapping[str, Any]],
    *,
    selections: Sequence[str],
    batch_size: int,
    bucket_edges: Sequence[float],
    gather: Callable[[list[Any]], list[Any]],
    prefix: str,
    show_progress: bool = False,
) -> dict[str, float]:
    """Accuracy of each frame-selection strategy on `rows` (this process's shard), gathered over processes."""
    metrics: dict[str, float] = {}
    for selection in selections:
        local, skipped = answer_rows(
            model, rows, selection=selection, batch_size=batch_size, show_progress=show_progress
        )
        predictions = gather(local)
        metrics.update(flatten_accuracy(score_predictions(predictions, bucket_edges), f"{prefix}_{selection}"))
        metrics[f"{prefix}_{selection}/skipped_videos"] = float(sum(gather([skipped])))
    if "msjoe" in selections and "uniform" in selections:
        metrics[f"{prefix}_sampler_gain"] = metrics[f"{prefix}_msjoe/accuracy"] - metrics[f"{prefix}_uniform/accuracy"]
    return metrics
