"""Multiple-choice accuracy for long-video QA: overall, by question type and by video-duration bucket.

An `evaluate` metric module shipped inside `transformers_msjoe`, loadable offline:

    >>> import evaluate
    >>> from transformers_msjoe.metrics import MSJOE_ACCURACY_PATH
    >>> metric = evaluate.load(MSJOE_ACCURACY_PATH)
    >>> metric.compute(predictions=["A", "C", ""], references=["A", "B", "B"],
    ...                question_types=["count", "count", "ocr"], durations=[60.0, 1200.0, 3000.0])
    {'accuracy': 0.333..., 'count': 3, 'unanswered': 1, 'accuracy_by_type': {'count': 0.5, 'ocr': 0.0}, ...}

Predictions are option letters ("" or None for an answer no letter could be parsed from: counted wrong).
"""

import math

import datasets
import evaluate

from transformers_msjoe.citation import MSJOE_CITATION

_DESCRIPTION = "Multiple-choice accuracy overall, by question type and by video-duration bucket (MSJoE)."
_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[str]`): predicted option letters; "" (or None) when no letter could be parsed.
    references (`list[str]`): correct option letters.
    question_types (`list[str | None]`, *optional*): one type per question; None is reported as "unknown".
    durations (`list[float | None]`, *optional*): video durations in seconds; None is reported as "unknown".
    duration_bucket_edges (`list[float]`, *optional*, defaults to `[180, 900, 1800]`): bucket edges in seconds,
        giving buckets "0-180s", "180-900s", "900-1800s" and ">=1800s".
Returns:
    accuracy (`float`), count (`int`), unanswered (`int`), and when the matching inputs are given
    accuracy_by_type / count_by_type and accuracy_by_duration / count_by_duration (`dict[str, float | int]`).
"""
_CITATION = MSJOE_CITATION

DEFAULT_DURATION_EDGES = (180.0, 900.0, 1800.0)
UNKNOWN = "unknown"


def duration_bucket(seconds, edges=DEFAULT_DURATION_EDGES):
    """The label of the bucket `seconds` falls in ("0-180s", ..., ">=1800s"), or "unknown"."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return UNKNOWN
    lower = 0.0
    for edge in edges:
        if seconds < edge:
            return f"{lower:g}-{edge:g}s"
        lower = edge
    return f">={lower:g}s"


def _normalise(letter):
    return (letter or "").strip().upper()


def _grouped(correct, keys):
    totals, hits = {}, {}
    for ok, key in zip(correct, keys):
        totals[key] = totals.get(key, 0) + 1
        hits[key] = hits.get(key, 0) + int(ok)
    ordered = sorted(totals)
    return {k: hits[k] / totals[k] for k in ordered}, {k: totals[k] for k in ordered}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MsjoeAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references, question_types=None, durations=None, duration_bucket_edges=None):
        count = len(references)
        for name, values in (("question_types", question_types), ("durations", durations)):
            if values is not None and len(values) != count:
                raise ValueError(f"`{name}` has {len(values)} entries for {count} references; pass one per question.")
        edges = tuple(DEFAULT_DURATION_EDGES if duration_bucket_edges is None else duration_bucket_edges)
        if list(edges) != sorted(set(edges)):
            raise ValueError(f"`duration_bucket_edges` must be strictly increasing, got {list(edges)}.")
        if any(not _normalise(r) for r in references):
            raise ValueError("Every reference must be an option letter; found an empty one.")
        correct = [_normalise(p) == _normalise(r) for p, r in zip(predictions, references)]
        result = {
            "accuracy": sum(correct) / count if count else float("nan"),
            "count": count,
            "unanswered": sum(not _normalise(p) for p in predictions),
        }
        if question_types is not None:
            types = [t if t else UNKNOWN for t in question_types]
            result["accuracy_by_type"], result["count_by_type"] = _grouped(correct, types)
        if durations is not None:
            buckets = [duration_bucket(d, edges) for d in durations]
            result["accuracy_by_duration"], result["count_by_duration"] = _grouped(correct, buckets)
        return result
