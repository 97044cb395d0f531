"""Filtering a built folder as the paper describes: keep long videos, drop questions the base model always solves.

Every dropped row is written with its reasons to `.msjoe/reports/filter-<n>.json` (nothing silently
dropped); videos that no remaining question uses are deleted from the folder (listed in the same report),
so a push uploads only what the dataset references. That includes files in the filtered splits' `videos/`
folders that no row referenced in the first place (copied in by hand, or left by a filter that died between
its metadata write and its deletions): `unreferenced_deleted` in the report. `prune_unreferenced` deletes only
those, with no criteria (`msjoe data prune`, what `push` advises). `dry_run=True` computes the same report and
changes nothing.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from .card import write_dataset_card
from .schema import DATA_DIR, METADATA_FILENAME, VIDEOS_SUBDIR, split_dir
from .writer import (
    LayoutReport,
    append_provenance,
    folder_lock,
    list_splits,
    next_report_path,
    read_metadata,
    resolve_splits,
    verify_layout,
    write_json_atomic,
    write_metadata,
)

__all__ = ["FilterCriteria", "FilterReport", "PruneReport", "filter_dataset", "prune_unreferenced"]

UnlabelledPolicy = Literal["error", "keep", "drop"]


@dataclass(frozen=True)
class FilterCriteria:
    """Which rows to drop.

    Args:
        min_duration: drop questions on videos shorter than this many seconds (the paper keeps "long" videos;
            600 s matches its "average over 10 minutes").
        max_pass_rate: drop questions whose pass rate is above this (always-solved; 0.9 with n = 8 rollouts drops
            questions solved 8/8 times).
        min_pass_rate: drop questions whose pass rate is below this (e.g. never-solved ones, where wrong answer
            keys hide); off by default because the difficulty-aware reward values them most.
        unlabelled: what a pass-rate criterion does with rows whose pass_rate is null: "error" (default), "keep",
            or "drop".
    """

    min_duration: float | None = None
    max_pass_rate: float | None = None
    min_pass_rate: float | None = None
    unlabelled: UnlabelledPolicy = "error"

    def __post_init__(self):
        for name in ("max_pass_rate", "min_pass_rate"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}.")
        if self.min_duration is not None and self.min_duration < 0:
            raise ValueError(f"min_duration must be >= 0 seconds, got {self.min_duration}.")
        if self.unlabelled not in ("error", "keep", "drop"):
            raise ValueError(f"unlabelled must be 'error', 'keep' or 'drop', got {self.unlabelled!r}.")
        if self.min_duration is None and self.max_pass_rate is None and self.min_pass_rate is None:
            raise ValueError("No filter given: pass --min-duration, --max-pass-rate and/or --min-pass-rate.")

    @property
    def uses_pass_rate(self) -> bool:
        return self.max_pass_rate is not None or self.min_pass_rate is not None

    def reasons(self, row: dict[str, Any]) -> list[str]:
        """Why `row` is dropped (empty: kept)."""
        reasons = []
        if self.min_duration is not None and row["duration_seconds"] < self.min_duration:
            reasons.append(f"too_short: {row['duration_seconds']:.0f}s < {self.min_duration:g}s")
        rate = row["pass_rate"]
        if rate is None:
            if self.uses_pass_rate and self.unlabelled == "drop":
                reasons.append("unlabelled: pass_rate is null")
            return reasons
        if self.max_pass_rate is not None and rate > self.max_pass_rate:
            reasons.append(f"too_easy: pass_rate {rate:g} > {self.max_pass_rate:g}")
        if self.min_pass_rate is not None and rate < self.min_pass_rate:
            reasons.append(f"too_hard: pass_rate {rate:g} < {self.min_pass_rate:g}")
        return reasons


@dataclass
class FilterReport:
    kept: dict[str, int] = field(default_factory=dict)  # split -> rows kept
    dropped_rows: list[dict[str, Any]] = field(default_factory=list)  # {"split", "id", "video_id", "reasons"}
    deleted_videos: list[str] = field(default_factory=list)  # relative to the folder
    unreferenced_deleted: list[str] = field(default_factory=list)  # in videos/ but used by no row even before
    removed_splits: list[str] = field(default_factory=list)
    report_path: str | None = None
    dry_run: bool = False

    def reason_counts(self) -> dict[str, int]:
        return dict(Counter(reason.split(":")[0] for row in self.dropped_rows for reason in row["reasons"]))


def _check_unlabelled(rows_by_split: dict[str, list[dict[str, Any]]], criteria: FilterCriteria) -> None:
    if not criteria.uses_pass_rate or criteria.unlabelled != "error":
        return
    unlabelled = sum(r["pass_rate"] is None for rows in rows_by_split.values() for r in rows)
    if unlabelled:
        raise ValueError(
            f"{unlabelled} rows have no pass_rate, so a pass-rate filter cannot judge them. Run `msjoe data "
            "label-difficulty` first, or pass --unlabelled keep / --unlabelled drop."
        )


def filter_dataset(
    root: str | os.PathLike, criteria: FilterCriteria, *, splits: Sequence[str] | None = None, dry_run: bool = False
) -> FilterReport:
    """Drop the rows `criteria` rejects from a built folder, in place (see the module docstring).

    Runs under the folder's write lock, so a concurrent `label-difficulty` or `filter` never loses this step.
    """
    root = os.fspath(root)
    with folder_lock(root):
        return _filter_locked(root, criteria, splits, dry_run)


def _unreferenced_in(layout: LayoutReport, splits: Sequence[str] | None) -> list[str]:
    """The entries of `layout.unreferenced_files` in the managed `data/<split>/videos/` of `splits`; all of them
    (orphan folders under data/ included) when `splits` is None."""
    if splits is None:
        return list(layout.unreferenced_files)
    prefixes = tuple(f"{DATA_DIR}/{split}/{VIDEOS_SUBDIR}/" for split in splits)
    return [f for f in layout.unreferenced_files if f.startswith(prefixes)]


def _delete_files(root: str, paths: Sequence[str]) -> None:
    """Delete `paths` (relative to root), then every folder under data/ they left empty."""
    for rel in paths:
        _delete(root, rel)
    for folder, _, names in sorted(os.walk(os.path.join(root, DATA_DIR)), reverse=True)[:-1]:  # never data/ itself
        if not names and not os.listdir(folder):
            os.rmdir(folder)


def _delete(root: str, rel: str) -> None:
    path = os.path.join(root, rel)
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)  # a folder inside videos/ is never part of the layout
    else:
        os.remove(path)


def _filter_locked(root: str, criteria: FilterCriteria, splits: Sequence[str] | None, dry_run: bool) -> FilterReport:
    layout = verify_layout(root)
    layout.raise_if_broken(f"filter {root!r}")
    rows_by_split = {split: read_metadata(root, split) for split in resolve_splits(root, splits)}
    _check_unlabelled(rows_by_split, criteria)
    report = FilterReport(dry_run=dry_run, unreferenced_deleted=_unreferenced_in(layout, splits))
    kept_by_split: dict[str, list[dict[str, Any]]] = {}
    for split, rows in rows_by_split.items():
        kept_by_split[split] = []
        for row in rows:
            reasons = criteria.reasons(row)
            if reasons:
                report.dropped_rows.append(
                    {"split": split, "id": row["id"], "video_id": row["video_id"], "reasons": reasons}
                )
            else:
                kept_by_split[split].append(row)
        report.kept[split] = len(kept_by_split[split])
        still_used = {r["file_name"] for r in kept_by_split[split]}
        report.deleted_videos += sorted(
            {f"{DATA_DIR}/{split}/{r['file_name']}" for r in rows if r["file_name"] not in still_used}
        )
    if not any(report.kept.values()) and len(rows_by_split) == len(list_splits(root)):
        raise ValueError(
            f"These criteria drop every row of {root!r} ({report.reason_counts()}); nothing was changed. Loosen them."
        )
    report.removed_splits = [s for s, n in report.kept.items() if n == 0]
    report.report_path = next_report_path(root, "filter-dry-run" if dry_run else "filter")
    write_json_atomic(report.report_path, {"criteria": asdict(criteria), **asdict(report)})
    if dry_run:
        return report
    _write_kept(root, kept_by_split)
    append_provenance(root, "filter", {**{k: v for k, v in asdict(criteria).items() if v is not None}, "dropped": len(report.dropped_rows), "kept": sum(report.kept.values()), "unreferenced_deleted": len(report.unreferenced_deleted)})  # fmt: skip
    write_dataset_card(root)
    _delete_files(root, [*report.deleted_videos, *report.unreferenced_deleted])
    return report


def _write_kept(root: str, kept_by_split: dict[str, list[dict[str, Any]]]) -> None:
    """Each split's new metadata (atomic), or no metadata for an emptied split.

    Files are deleted only after this, the provenance and the card are written: a crash in between leaves a
    consistent folder with unused videos, which `verify_layout` lists and `prune_unreferenced` (or this filter
    again) deletes.
    """
    for split, rows in kept_by_split.items():
        if rows:
            write_metadata(root, split, rows)
        else:
            os.remove(os.path.join(split_dir(root, split), METADATA_FILENAME))


@dataclass
class PruneReport:
    deleted: list[str] = field(default_factory=list)  # relative to the folder
    report_path: str | None = None
    dry_run: bool = False


def prune_unreferenced(root: str | os.PathLike, *, dry_run: bool = False) -> PruneReport:
    """Delete what `verify_layout` lists as unreferenced (`msjoe data prune`): files in `data/<split>/videos/` that
    no row references, and folders under data/ that hold no split's metadata.

    What `push` refuses and advises this for: videos copied in by hand, or left by a `filter` that died between
    its metadata write and its deletions. Nothing outside data/ is touched; the deleted paths go
    to `.msjoe/reports/prune-<n>.json` and the provenance. Runs under the folder's write lock.
    """
    root = os.fspath(root)
    with folder_lock(root):
        layout = verify_layout(root)
        layout.raise_if_broken(f"prune {root!r}")
        report = PruneReport(deleted=_unreferenced_in(layout, None), dry_run=dry_run)
        report.report_path = next_report_path(root, "prune-dry-run" if dry_run else "prune")
        write_json_atomic(report.report_path, asdict(report))
        if dry_run or not report.deleted:
            return report
        append_provenance(root, "prune", {"unreferenced_deleted": len(report.deleted)})
        write_dataset_card(root)
        _delete_files(root, report.deleted)
    return report
