"""The dataset card: rendered from the template shipped in this package, so every built folder carries it.

The YAML header holds what `load_dataset` needs (`configs`: split -> `data/<split>/**`) and the schema
(`dataset_info.features`); the body documents the fields, the layout, the paper's corpus, the statistics
of this build and its provenance (`.msjoe/provenance.json`).
"""

from __future__ import annotations

import hashlib
import os
import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

from datasets import DatasetInfo
from datasets.info import DatasetInfosDict
from huggingface_hub import DatasetCard, DatasetCardData

from ..atomic_files import atomic_write
from ..citation import MSJOE_CITATION
from .schema import DATA_DIR, LONGVIDEO_QA_FEATURES, METADATA_FILENAME, STATE_DIR
from .writer import list_splits, read_json, read_metadata

__all__ = [
    "DEFAULT_REPO_ID",
    "TEMPLATE_PATH",
    "content_fingerprint",
    "read_card_fingerprint",
    "read_card_splits",
    "render_dataset_card",
    "save_card",
    "write_dataset_card",
]

DEFAULT_REPO_ID = "msjoe/longvideo-qa"
TEMPLATE_PATH = os.path.join(os.path.dirname(__file__), "card_template.md")
_TOP = 8  # entries shown for sources / question types
_FINGERPRINT_PREFIX = "msjoe/longvideo-qa data fingerprint "


def _size_category(num_rows: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if num_rows < limit:
            return name
    return "n>1M"


def content_fingerprint(root: str | os.PathLike) -> str:
    """Hash of every split's metadata file: written into the card's config `description`.

    Why: `load_dataset(<local folder>)` with YAML `configs` keys its cache on the card and the file *patterns*
    only (datasets 5.2), so after `label-difficulty` or `filter` rewrote a metadata file it would silently
    serve the old rows. The card is re-rendered after every change, and a new fingerprint means a new cache.
    Drift test: tests/test_data_card.py::test_datasets_keys_local_cache_on_the_card.
    """
    digest = hashlib.sha256()
    for split in list_splits(root):
        digest.update(split.encode())
        with open(os.path.join(os.fspath(root), DATA_DIR, split, METADATA_FILENAME), "rb") as handle:
            digest.update(hashlib.sha256(handle.read()).digest())
    return digest.hexdigest()[:16]


def _card_data(splits: Sequence[str], num_rows: int | None, fingerprint: str | None = None) -> DatasetCardData:
    config: dict[str, Any] = {"config_name": "default"}
    if fingerprint is not None:
        config["description"] = f"{_FINGERPRINT_PREFIX}{fingerprint}"
    config["data_files"] = [{"split": s, "path": f"{DATA_DIR}/{s}/**"} for s in splits]
    data = DatasetCardData(
        pretty_name="LongVideoQA (MSJoE)",
        license="other",
        language=["en"],
        task_categories=["video-text-to-text", "multiple-choice"],
        tags=["long-video", "video-question-answering", "multiple-choice", "msjoe"],
        size_categories=[_size_category(num_rows)] if num_rows is not None else None,
        configs=[config],
    )
    DatasetInfosDict({"default": DatasetInfo(features=LONGVIDEO_QA_FEATURES)}).to_dataset_card_data(data)
    return data


def _counts(values: Sequence[Any]) -> str:
    counted = Counter("null" if v is None else v for v in values).most_common()
    shown = ", ".join(f"{k} ({n})" for k, n in counted[:_TOP])
    return shown + (f", ... {len(counted) - _TOP} more" if len(counted) > _TOP else "") if counted else "none"


def _pass_rate_summary(rates: Sequence[float | None]) -> str:
    labelled = [r for r in rates if r is not None]
    if not labelled:
        return f"not labelled yet (0 of {len(rates)} questions; run `msjoe data label-difficulty`)"
    buckets = Counter("0" if r == 0 else "1" if r == 1 else "(0, 0.5)" if r < 0.5 else "[0.5, 1)" for r in labelled)
    spread = ", ".join(f"{b}: {buckets.get(b, 0)}" for b in ("0", "(0, 0.5)", "[0.5, 1)", "1"))
    return f"{len(labelled)} of {len(rates)} questions labelled, mean {statistics.fmean(labelled):.3f}; {spread}"


def _stats(rows_by_split: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    rows = [r for split_rows in rows_by_split.values() for r in split_rows]
    durations = list(
        {(s, r["video_id"]): r["duration_seconds"] for s, rs in rows_by_split.items() for r in rs}.values()
    )
    splits = []
    for name, split_rows in rows_by_split.items():
        per_video = {r["video_id"]: r["duration_seconds"] for r in split_rows}
        splits.append(
            {
                "name": name,
                "rows": len(split_rows),
                "videos": len(per_video),
                "hours": f"{sum(per_video.values()) / 3600:.2f}",
            }
        )
    duration = {
        "min": min(durations),
        "median": statistics.median(durations),
        "mean": statistics.fmean(durations),
        "max": max(durations),
    }
    return {
        "splits": splits,
        "duration": {k: f"{v:.0f}" for k, v in duration.items()},
        "option_counts": _counts([len(r["options"]) for r in rows]),
        "sources": _counts([r["source"] for r in rows]),
        "question_types": _counts([r["question_type"] for r in rows]),
        "pass_rate": _pass_rate_summary([r["pass_rate"] for r in rows]),
    }


def _provenance_lines(root: str) -> list[str]:
    steps = read_json(os.path.join(root, STATE_DIR, "provenance.json"), default={"steps": []})["steps"]
    lines = []
    for step in steps:
        details = ", ".join(
            f"{k}={v}" for k, v in step.items() if k not in ("step", "date") and not isinstance(v, (dict, list))
        )
        lines.append(f"**{step['step']}** ({step['date']}): {details}")
    return lines


def render_dataset_card(root: str | os.PathLike | None = None, *, repo_id: str = DEFAULT_REPO_ID) -> DatasetCard:
    """The card of a built folder (statistics + provenance), or the template card of the repo when `root` is None."""
    if root is None:
        return DatasetCard.from_template(
            _card_data(["train"], None), template_path=TEMPLATE_PATH, repo_id=repo_id, stats=None, provenance=None,
            citation=MSJOE_CITATION,
        )  # fmt: skip
    root = os.fspath(root)
    rows_by_split = {split: read_metadata(root, split) for split in list_splits(root)}
    rows_by_split = {s: r for s, r in rows_by_split.items() if r}
    if not rows_by_split:
        raise ValueError(f"{root!r} holds no rows: nothing to describe. Build it with `msjoe data build`.")
    num_rows = sum(len(r) for r in rows_by_split.values())
    return DatasetCard.from_template(
        _card_data(sorted(rows_by_split), num_rows, content_fingerprint(root)), template_path=TEMPLATE_PATH, repo_id=repo_id,
        stats=_stats(rows_by_split), provenance=_provenance_lines(root), citation=MSJOE_CITATION,
    )  # fmt: skip


def write_dataset_card(root: str | os.PathLike, *, repo_id: str = DEFAULT_REPO_ID) -> str:
    """(Re-)render `<root>/README.md` from the folder's current contents; returns its path."""
    path = os.path.join(os.fspath(root), "README.md")
    save_card(render_dataset_card(root, repo_id=repo_id), path)
    return path


def save_card(card: DatasetCard, path: str | os.PathLike) -> None:
    """`card.save(path)`, but atomic and durable (`atomic_files.atomic_write`): a crash never leaves a truncated card,
    which would drop the YAML `configs` that `load_dataset` needs."""
    with atomic_write(path) as handle:
        handle.write(str(card))  # what DatasetCard.save writes (UTF-8, no newline translation)


def _default_config(root: str | os.PathLike) -> dict[str, Any] | None:
    path = os.path.join(os.fspath(root), "README.md")
    if not os.path.isfile(path):
        return None
    configs = DatasetCard.load(path).data.to_dict().get("configs") or []
    return next((c for c in configs if isinstance(c, dict) and c.get("config_name") == "default"), None)


def read_card_splits(root: str | os.PathLike) -> list[str] | None:
    """Splits listed in the card's YAML `configs` (default config), or None when there is no usable card."""
    default = _default_config(root)
    if default is None:
        return None
    return [entry["split"] for entry in default.get("data_files", []) if isinstance(entry, dict) and "split" in entry]


def read_card_fingerprint(root: str | os.PathLike) -> str | None:
    """The content fingerprint the card was rendered for (None if absent)."""
    description = (_default_config(root) or {}).get("description") or ""
    return description[len(_FINGERPRINT_PREFIX) :] if description.startswith(_FINGERPRINT_PREFIX) else None
