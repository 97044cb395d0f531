"""The schema module: option lettering of stored rows, and the `datasets` facts it relies on (drift tests)."""

from __future__ import annotations

import os

import pytest
from datasets import Video, load_dataset

from transformers_msjoe import _compat
from transformers_msjoe.data.schema import SUPPORTED_VIDEO_EXTENSIONS, lettered_options

pytestmark = pytest.mark.usefixtures("isolated_datasets_cache")


def test_compat_folder_loader_video_extensions(tmp_path):
    """Drift test for `_compat.folder_loader_video_extensions` (datasets' private `VideoFolder.EXTENSIONS`): the
    folder-based loader keeps exactly the files with those extensions, so the builder's list is the loader's."""
    extensions = _compat.folder_loader_video_extensions()
    assert SUPPORTED_VIDEO_EXTENSIONS == extensions and ".mp4" in extensions
    candidates = sorted({*extensions, ".webm", ".m4v", ".mpg", ".ts", ".flv", ".txt"})
    for index, ext in enumerate(candidates):
        (tmp_path / f"clip{index}{ext}").write_bytes(b"not decoded while loading")
    ds = load_dataset("videofolder", data_dir=str(tmp_path), split="train").cast_column("video", Video(decode=False))
    loaded = sorted(os.path.splitext(value["path"])[1] for value in ds["video"])
    assert loaded == sorted(extensions)


def test_stored_options_are_lettered_by_position():
    assert [str(o) for o in lettered_options(["A. Lincoln", "G. Washington", "J. K. Rowling"])] == [
        "A. A. Lincoln",
        "B. G. Washington",
        "C. J. K. Rowling",
    ]
