"""Loading the dataset by Hub id or local folder (for the trainer and users), and pushing a built folder."""

from __future__ import annotations

import os
import shlex
from typing import Any

import datasets
from datasets import Video, load_dataset

from ..hub_utils import require_hub_token, upload_folder_to_repo
from .card import write_dataset_card
from .schema import DATA_DIR, STATE_DIR, check_features
from .writer import LOCK_FILENAME, LayoutError, folder_lock, list_splits, verify_layout

__all__ = ["PUSH_IGNORE_PATTERNS", "load_longvideo_qa", "push_longvideo_qa"]

# Local bookkeeping that must not reach the Hub (rollout cache, reports with local paths, the write lock);
# `.msjoe/provenance.json` is pushed so a downloaded copy can re-render its card.
PUSH_IGNORE_PATTERNS = [
    f"{STATE_DIR}/difficulty/**",
    f"{STATE_DIR}/reports/**",
    f"{STATE_DIR}/{LOCK_FILENAME}",
    "*.tmp",  # left by an interrupted atomic write (`atomic_files.atomic_write`), at any depth (fnmatch: `*` matches `/`)
]


def load_longvideo_qa(
    name_or_path: str | os.PathLike = "msjoe/longvideo-qa",
    split: str = "train",
    *,
    decode_video: bool = True,
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | None = None,
) -> datasets.Dataset:
    """Load `msjoe/longvideo-qa` (or any repo / local folder in its layout) and check it has the documented schema.

    Args:
        name_or_path: a Hub dataset id or a local folder built by `msjoe data build`.
        split: the split to load.
        decode_video: `True` gives torchcodec `VideoDecoder`s in `video`; `False` gives `{"path": ..., "bytes": None}`
            dicts, which pickle cheaply into DataLoader workers and which `transformers_msjoe.open_video` accepts.
    Returns:
        a `datasets.Dataset` with columns video, id, video_id, duration_seconds, question, options (plain texts,
        lettered A, B, ... in order), answer (letter), question_type, pass_rate, source.
    """
    path = os.fspath(name_or_path)
    data_files = None
    if os.path.isdir(path):
        path = os.path.abspath(path)
        verify_layout(path).raise_if_broken(f"load {path!r}")
        # Resolved file lists put the folder's location and file times into datasets' cache key; with the card's
        # relative patterns alone, two copies of one folder share a cache (and its absolute video paths).
        data_files = {s: os.path.join(path, DATA_DIR, s, "**") for s in list_splits(path)}
    ds = load_dataset(path, split=split, data_files=data_files, revision=revision, token=token, cache_dir=cache_dir)
    check_features(ds.features, where=f"{path!r} split {split!r}")
    if not decode_video:
        ds = ds.cast_column("video", Video(decode=False))
    return ds


def push_longvideo_qa(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
) -> Any:
    """Verify a built folder, re-render its card for `repo_id`, and upload it as a Hub dataset repo (one commit).

    Raises `MissingHubTokenError` (a `ValueError`) naming the fixes when no token is available. The folder's write
    lock is held until the upload ends, so no other tool changes the files being sent.
    """
    folder = os.fspath(folder)
    token = require_hub_token(token, action="pushing the dataset")
    with folder_lock(folder):
        return _push_locked(folder, repo_id, token, private=private, revision=revision, commit_message=commit_message)


def _push_locked(
    folder: str, repo_id: str, token: str, *, private: bool | None, revision: str | None, commit_message: str | None
) -> Any:
    report = verify_layout(folder)
    report.raise_if_broken(f"push {folder!r}")
    if report.unreferenced_files:
        raise LayoutError(
            f"{len(report.unreferenced_files)} videos in {folder!r} are used by no question (e.g. "
            f"{report.unreferenced_files[:3]}); they would be uploaded for nothing. Delete them with "
            f"`msjoe data prune {shlex.quote(folder)}` (or `transformers_msjoe.data.prune_unreferenced`), then push again."
        )
    write_dataset_card(folder, repo_id=repo_id)
    return upload_folder_to_repo(
        folder, repo_id, repo_type="dataset", private=private, token=token, revision=revision,
        commit_message=commit_message or "Upload LongVideoQA (msjoe data push)", ignore_patterns=PUSH_IGNORE_PATTERNS,
    )  # fmt: skip
