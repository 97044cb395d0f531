"""The one schema of `msjoe/longvideo-qa` and the names of its Hub layout.

Layout of a built folder (identical to the Hub repo):

    README.md                        dataset card; its YAML `configs` map each split to `data/<split>/**`
    data/<split>/metadata.parquet    one row per question; `file_name` points at the video
    data/<split>/videos/<id>.mp4     each video stored once per split, shared by all its questions
    .msjoe/provenance.json           what built, labelled and filtered the folder (pushed; renders into the card)
    .msjoe/reports/, .msjoe/difficulty/   local bookkeeping (build/filter reports, rollout cache; not pushed)

Why a videofolder-style layout and not plain jsonl or self-contained parquet: `datasets` runs no loading
scripts, relative paths in a plain jsonl/parquet column resolve against the current directory (not the
repo), and embedding hour-long videos in parquet makes multi-GB rows that `datasets` copies into its Arrow
cache. With `file_name` metadata the folder-based loader resolves each video relative to the metadata file,
both in a local folder and in the Hub cache, stores every video once, and yields the `Video` feature.
"""

from __future__ import annotations

import os
import re
import string

from datasets import Features, List, Value, Video

from .._compat import folder_loader_video_extensions
from ..prompts import LetteredOption, letter_options

__all__ = [
    "DATA_DIR",
    "LONGVIDEO_QA_FEATURES",
    "METADATA_FEATURES",
    "METADATA_FILENAME",
    "OPTION_LETTERS",
    "STATE_DIR",
    "SUPPORTED_VIDEO_EXTENSIONS",
    "VIDEOS_SUBDIR",
    "check_features",
    "check_split_name",
    "lettered_options",
    "split_dir",
]

# Options are stored as plain texts; options[i] is the option lettered OPTION_LETTERS[i] ("A", "B", ...).
OPTION_LETTERS = string.ascii_uppercase

LONGVIDEO_QA_FEATURES = Features(
    {
        "video": Video(),  # decodes to a torchcodec VideoDecoder
        "id": Value("string"),  # unique question id (several questions may share a video)
        "video_id": Value("string"),
        "duration_seconds": Value("float64"),  # probed from the file at build time
        "question": Value("string"),
        "options": List(Value("string")),  # plain option texts, lettered A, B, C ... in this order
        "answer": Value("string"),  # the correct option's letter
        "question_type": Value("string"),  # null when the source gives none
        "pass_rate": Value("float64"),  # base-MLLM pass rate c in [0, 1]; null until labelled
        "source": Value("string"),  # where the question (and video) came from
    }
)

# What metadata.parquet stores: `file_name` (relative to the metadata file) in place of the decoded video.
METADATA_FEATURES = Features(
    {"file_name": Value("string"), **{k: v for k, v in LONGVIDEO_QA_FEATURES.items() if k != "video"}}
)

DATA_DIR = "data"
METADATA_FILENAME = "metadata.parquet"
VIDEOS_SUBDIR = "videos"
STATE_DIR = ".msjoe"

# The folder-based loader (local folder and Hub repo alike) keeps only files with these extensions, so the builder
# rejects other containers.
SUPPORTED_VIDEO_EXTENSIONS = folder_loader_video_extensions()

_SPLIT_NAME = re.compile(r"^\w+$")


def check_split_name(split: str) -> str:
    """A split name `datasets` accepts (letters, digits, underscores); raises naming the fix."""
    if not isinstance(split, str) or not _SPLIT_NAME.match(split):
        raise ValueError(
            f"Split name {split!r} is invalid: use letters, digits and underscores, e.g. 'train' or 'validation'."
        )
    return split


def lettered_options(options: list[str]) -> list[LetteredOption]:
    """A row's stored `options` lettered A, B, C ... by position: they are plain texts by schema, never labels
    (so "J. K. Rowling" or "A. Lincoln" stay texts)."""
    return letter_options(options, lettered=False)


def split_dir(root: str | os.PathLike, split: str) -> str:
    """`<root>/data/<split>`: the folder holding a split's metadata and videos."""
    return os.path.join(os.fspath(root), DATA_DIR, check_split_name(split))


def check_features(features: Features, *, where: str = "the dataset") -> None:
    """Raise if `features` differ from the documented schema, naming every missing or mismatched column."""
    problems = []
    for name, expected in LONGVIDEO_QA_FEATURES.items():
        if name not in features:
            problems.append(f"missing column {name!r}")
        elif name == "video":
            if not isinstance(features[name], Video):
                problems.append(f"column 'video' is {features[name]!r}, expected a Video feature")
        elif features[name] != expected:
            problems.append(f"column {name!r} is {features[name]!r}, expected {expected!r}")
    if problems:
        raise ValueError(
            f"{where} does not have the msjoe/longvideo-qa schema: {'; '.join(problems)}. Build it with "
            "`msjoe data build` (see docs/dataset.md) or load the Hub repo msjoe/longvideo-qa."
        )
