"""Writing and reading the Hub layout (see `schema` for the tree): metadata parquet, videos, state files.

Every write that replaces a file goes through `atomic_files.atomic_write` (a temporary file in the same folder, fsync'ed,
then `os.replace`d), and a new folder is built next to its destination and renamed into place, so a crash or a
power loss never leaves a half-written file under the final name.

Several tools may work on one built folder at once (say `label-difficulty` running for hours while `filter` or
`card` runs): every read-modify-write of the folder's metadata, provenance and card happens under
`folder_lock(root)` (an OS file lock on `.msjoe/lock`, released by the OS if the process dies), and reads what
it modifies inside the lock, so no writer overwrites another's step.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from filelock import FileLock, Timeout
from tqdm.auto import tqdm

from ..atomic_files import atomic_write
from .schema import (
    DATA_DIR,
    METADATA_FEATURES,
    METADATA_FILENAME,
    STATE_DIR,
    VIDEOS_SUBDIR,
    split_dir,
)

__all__ = [
    "LayoutError",
    "LayoutReport",
    "append_provenance",
    "folder_lock",
    "list_splits",
    "next_report_path",
    "read_json",
    "read_metadata",
    "resolve_splits",
    "state_path",
    "verify_layout",
    "write_json_atomic",
    "write_metadata",
    "write_split",
]

LinkMode = Literal["copy", "hardlink"]
REPORTS_DIR = "reports"
LOCK_FILENAME = "lock"
LOCK_TIMEOUT_SECONDS = 600.0  # how long a tool waits for another one's read-modify-write (normally seconds)


class LayoutError(ValueError):
    """A folder is not (or no longer) a valid longvideo-qa layout; the message says what is wrong and the fix."""


def state_path(root: str | os.PathLike, *parts: str) -> str:
    """A path under the folder's `.msjoe/` bookkeeping directory (created on demand)."""
    path = os.path.join(os.fspath(root), STATE_DIR, *parts)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


@contextlib.contextmanager
def folder_lock(root: str | os.PathLike, *, timeout: float | None = None) -> Iterator[None]:
    """Hold the folder's write lock (`.msjoe/lock`) around a read-modify-write of its metadata, provenance or card.

    Not re-entrant: take it once, around the whole step. Waits up to `timeout` seconds (default
    `LOCK_TIMEOUT_SECONDS`) for another holder.
    """
    list_splits(root)  # a folder that is not a built one gets the layout error, not a stray .msjoe/lock
    timeout = LOCK_TIMEOUT_SECONDS if timeout is None else timeout
    path = state_path(root, LOCK_FILENAME)
    lock = FileLock(path, timeout=timeout)
    try:
        lock.acquire()
    except Timeout as err:
        raise TimeoutError(
            f"{os.fspath(root)!r} is being changed by another `msjoe data` command (it has held {path} for more than "
            f"{timeout:g}s, e.g. a push uploading the folder); wait for it to finish and run this command again."
        ) from err
    try:
        yield
    finally:
        lock.release()


def next_report_path(root: str | os.PathLike, stem: str) -> str:
    """`.msjoe/reports/<stem>-<n>.json` with the first unused n, so earlier reports are kept."""
    number = 1
    while os.path.exists(path := state_path(root, REPORTS_DIR, f"{stem}-{number}.json")):
        number += 1
    return path


def write_json_atomic(path: str, payload: Any) -> None:
    """Write JSON to `path` atomically and durably (`atomic_write`)."""
    with atomic_write(path) as handle:
        json.dump(payload, handle, indent=2, ensure_ascii=False)
        handle.write("\n")


def read_json(path: str, default: Any = None) -> Any:
    if not os.path.isfile(path):
        return default
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def append_provenance(root: str | os.PathLike, step: str, record: dict[str, Any]) -> None:
    """Record a build / difficulty / filter step in `.msjoe/provenance.json` (rendered into the card).

    A read-modify-write: call it under `folder_lock(root)` on a folder other tools may use.
    """
    path = state_path(root, "provenance.json")
    provenance = read_json(path, default={"steps": []})
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    provenance["steps"].append({"step": step, "date": stamp, **record})
    write_json_atomic(path, provenance)


def list_splits(root: str | os.PathLike) -> list[str]:
    """Splits of a built folder: the `data/<split>/` folders holding a metadata file."""
    data = os.path.join(os.fspath(root), DATA_DIR)
    previous = f"{os.path.abspath(os.fspath(root))}.previous"
    if not os.path.isdir(data) and os.path.isdir(os.path.join(previous, DATA_DIR)):
        raise LayoutError(
            f"{os.fspath(root)!r} is missing but {previous!r} holds it: a `msjoe data build --overwrite` died while "
            f"swapping folders. Run the build again (it restores the folder first), or `mv {previous} {os.fspath(root)}`."
        )
    if not os.path.isdir(data):
        raise LayoutError(
            f"{os.fspath(root)!r} has no {DATA_DIR}/ folder: it is not a built longvideo-qa folder. Build one with "
            "`msjoe data build --qa QA --videos DIR --out FOLDER`."
        )
    return sorted(s for s in os.listdir(data) if os.path.isfile(os.path.join(data, s, METADATA_FILENAME)))


def resolve_splits(root: str | os.PathLike, splits: Sequence[str] | None) -> list[str]:
    """`splits` checked against the folder (all of its splits when None)."""
    available = list_splits(root)
    if splits is None:
        return available
    unknown = [s for s in splits if s not in available]
    if unknown:
        raise LayoutError(f"Unknown split(s) {unknown} in {os.fspath(root)!r}; it holds {available}.")
    return list(splits)


def read_metadata(root: str | os.PathLike, split: str) -> list[dict[str, Any]]:
    """The rows of `data/<split>/metadata.parquet` as dicts (`file_name` relative to the split folder)."""
    path = os.path.join(split_dir(root, split), METADATA_FILENAME)
    table = pq.read_table(path)
    missing = [c for c in METADATA_FEATURES if c not in table.column_names]
    if missing:
        raise LayoutError(
            f"{path} lacks the columns {missing}: it was not written by `msjoe data build`; rebuild the folder."
        )
    return table.to_pylist()


def write_metadata(root: str | os.PathLike, split: str, rows: Sequence[dict[str, Any]]) -> str:
    """Atomically (re)write a split's metadata with the exact schema (types survive even all-null columns)."""
    folder = split_dir(root, split)
    os.makedirs(folder, exist_ok=True)
    table = pa.Table.from_pylist(
        [{k: row.get(k) for k in METADATA_FEATURES} for row in rows], schema=METADATA_FEATURES.arrow_schema
    )
    path = os.path.join(folder, METADATA_FILENAME)
    with atomic_write(path, binary=True) as handle:
        pq.write_table(table, handle)
    return path


def _place_video(source: str, target: str, link: LinkMode) -> None:
    if os.path.exists(target):
        return
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if link == "hardlink":
        try:
            os.link(source, target)
        except OSError as err:
            raise LayoutError(
                f"Cannot hard-link {source} into {target} ({err}); hard links need one filesystem: use --link copy."
            ) from err
    else:
        shutil.copyfile(source, target)


def write_split(
    root: str | os.PathLike,
    split: str,
    rows: Sequence[dict[str, Any]],
    *,
    link: LinkMode = "copy",
    show_progress: bool = True,
) -> None:
    """Place each distinct video once under `data/<split>/videos/` and write the split's metadata."""
    folder = split_dir(root, split)
    videos = {row["file_name"]: row["video_path"] for row in rows}
    for file_name, source in tqdm(sorted(videos.items()), desc=f"{split}: videos", disable=not show_progress):
        _place_video(source, os.path.join(folder, file_name), link)
    write_metadata(root, split, rows)


@dataclass
class LayoutReport:
    """What `verify_layout` found; `problems` empty means the folder loads as documented."""

    splits: dict[str, int] = field(default_factory=dict)  # split -> rows
    problems: list[str] = field(default_factory=list)
    # relative to root: files in data/<split>/videos that no row references, and files under data/ outside every split
    unreferenced_files: list[str] = field(default_factory=list)

    def raise_if_broken(self, action: str) -> None:
        if self.problems:
            raise LayoutError(
                f"Cannot {action}: "
                + "; ".join(self.problems[:5])
                + (f" (+{len(self.problems) - 5} more)" if len(self.problems) > 5 else "")
            )


def _orphans_under_data(root: str) -> list[str]:
    """Files under data/ outside every split folder (e.g. the videos of a split whose metadata a `filter` removed
    before it died): the loader ignores them, but a push would upload them."""
    data, splits, found = os.path.join(root, DATA_DIR), set(list_splits(root)), []
    for name in sorted(os.listdir(data)):
        path = os.path.join(data, name)
        if name in splits:
            continue
        if not os.path.isdir(path):
            found.append(f"{DATA_DIR}/{name}")
            continue
        for folder, dirs, names in os.walk(path):
            dirs.sort()
            found += [os.path.relpath(os.path.join(folder, n), root).replace(os.sep, "/") for n in sorted(names)]
    return found


def verify_layout(root: str | os.PathLike) -> LayoutReport:
    """Check a folder against the documented layout: card configs, schema, every referenced video present."""
    from .card import (  # late: card imports writer
        content_fingerprint,
        read_card_fingerprint,
        read_card_splits,
    )

    root = os.fspath(root)
    report = LayoutReport()
    for split in list_splits(root):
        try:
            rows = read_metadata(root, split)
        except (LayoutError, pa.ArrowInvalid) as err:
            report.problems.append(str(err))
            continue
        report.splits[split] = len(rows)
        folder = split_dir(root, split)
        referenced = {row["file_name"] for row in rows}
        missing = sorted(f for f in referenced if not os.path.isfile(os.path.join(folder, f)))
        if missing:
            report.problems.append(
                f"split {split!r}: {len(missing)} referenced video file(s) missing, e.g. {missing[:3]}; rebuild the folder"
            )
        video_folder = os.path.join(folder, VIDEOS_SUBDIR)
        present = sorted(os.listdir(video_folder)) if os.path.isdir(video_folder) else []
        report.unreferenced_files += [
            f"{DATA_DIR}/{split}/{VIDEOS_SUBDIR}/{n}" for n in present if f"{VIDEOS_SUBDIR}/{n}" not in referenced
        ]
    report.unreferenced_files += _orphans_under_data(root)
    if not report.splits and not report.problems:
        report.problems.append(f"{root!r} has no data/<split>/{METADATA_FILENAME}; build it with `msjoe data build`")
    card_splits = read_card_splits(root)
    if card_splits is None:
        report.problems.append(
            f"{root!r} has no README.md with YAML `configs`; re-render it with `msjoe data card {root}`"
        )
    elif set(card_splits) != set(report.splits):
        report.problems.append(
            f"README.md configs list splits {sorted(card_splits)} but data/ holds {sorted(report.splits)}; re-render it with `msjoe data card {root}`"
        )
    elif report.splits and read_card_fingerprint(root) != content_fingerprint(root):
        report.problems.append(
            f"README.md was rendered for other data than data/ now holds (its fingerprint differs), so `load_dataset` "
            f"could serve a stale cache; re-render it with `msjoe data card {root}`"
        )
    return report
