"""`LongVideoQA` (the datasets builder for raw corpora) and `build_longvideo_qa` (the Hub layout writer)."""

from __future__ import annotations

import copy
import json
import os
import shutil

import pytest

from transformers_msjoe.data import (
    LONGVIDEO_QA_FEATURES,
    LongVideoQA,
    build_longvideo_qa,
    verify_layout,
)
from transformers_msjoe.data.qa_files import QAFileError

pytestmark = pytest.mark.usefixtures("isolated_datasets_cache")


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def raw(longvideo_corpus, tmp_path):
    """raw/qa.jsonl (5 good rows + 1 with a missing video) and raw/videos (+ one file no question uses)."""
    folder = tmp_path / "raw"
    shutil.copytree(longvideo_corpus["videos_dir"], folder / "videos")
    shutil.copyfile(folder / "videos" / "short_c.mp4", folder / "videos" / "unused.mp4")
    rows = copy.deepcopy(longvideo_corpus["rows"]) + [{"id": "x", "video": "gone.mp4", "question": "q?", "options": ["a", "b"], "answer": "A"}]
    _write_jsonl(folder / "qa.jsonl", rows)
    return folder


def test_builder_loads_a_raw_corpus_with_the_documented_features(raw, tmp_path):
    builder = LongVideoQA(data_dir=str(raw), cache_dir=str(tmp_path / "cache"))
    builder.download_and_prepare()
    ds = builder.as_dataset(split="train")
    assert ds.features == LONGVIDEO_QA_FEATURES
    assert sorted(ds["id"]) == ["a-0", "a-1", "b-0", "b-1", "c-0"]
    row = ds[0]
    frames = row["video"].get_frames_at(indices=[0, 5])
    assert tuple(frames.data.shape) == (2, 3, 120, 160)
    report = builder.validation.to_report()
    assert report["rejected_by_reason"] == {"missing_video": 1} and report["unreferenced_files"] == ["unused.mp4"]


def test_builder_cache_follows_the_files(raw, tmp_path):
    first = LongVideoQA(data_dir=str(raw), cache_dir=str(tmp_path / "cache"))
    rows = [json.loads(line) for line in (raw / "qa.jsonl").read_text().splitlines()][:2]
    _write_jsonl(raw / "qa.jsonl", rows)
    second = LongVideoQA(data_dir=str(raw), cache_dir=str(tmp_path / "cache"))
    assert first.config_id != second.config_id  # a changed question file is never served from a stale cache
    second.download_and_prepare()
    assert second.as_dataset(split="train").num_rows == 2


def test_builder_needs_one_question_file(raw, tmp_path):
    with pytest.raises(ValueError, match="needs `data_dir="):
        LongVideoQA()
    shutil.copyfile(raw / "qa.jsonl", raw / "qa.json")
    with pytest.raises(QAFileError, match="Expected exactly one of qa.jsonl, qa.json or qa.csv"):
        LongVideoQA(data_dir=str(raw), cache_dir=str(tmp_path / "cache"))


def test_build_writes_the_hub_layout(raw, tmp_path):
    out = tmp_path / "longvideo-qa"
    report = build_longvideo_qa(raw / "qa.jsonl", raw / "videos", out, show_progress=False)
    assert report.splits == {"train": 5}
    files = sorted(os.path.relpath(os.path.join(d, f), out) for d, _, fs in os.walk(out) for f in fs)
    assert files == [
        ".msjoe/provenance.json", ".msjoe/reports/build-1.json", "README.md", "data/train/metadata.parquet",
        "data/train/videos/long_a.mp4", "data/train/videos/long_b.mp4", "data/train/videos/short_c.mp4",
    ]  # fmt: skip
    saved = json.loads((out / ".msjoe/reports/build-1.json").read_text())
    assert saved["rejected_rows"][0]["location"] == "qa.jsonl:6" and saved["rejected_rows"][0]["reasons"][0]["code"] == "missing_video"
    assert saved["unreferenced_files"] == ["unused.mp4"]
    layout = verify_layout(out)
    assert layout.problems == [] and layout.splits == {"train": 5}
    assert not os.path.exists(f"{out}.partial")


def test_build_refuses_to_overwrite_and_replaces_with_overwrite(raw, tmp_path):
    out = tmp_path / "out"
    build_longvideo_qa(raw / "qa.jsonl", raw / "videos", out, show_progress=False)
    with pytest.raises(FileExistsError, match="pass --overwrite"):
        build_longvideo_qa(raw / "qa.jsonl", raw / "videos", out, show_progress=False)
    rows = [json.loads(line) for line in (raw / "qa.jsonl").read_text().splitlines()]
    for row in rows:
        row["split"] = "validation" if row["id"] == "c-0" else "train"
    _write_jsonl(raw / "qa.jsonl", rows)
    report = build_longvideo_qa(raw / "qa.jsonl", raw / "videos", out, overwrite=True, link="hardlink", show_progress=False)
    assert report.splits == {"train": 4, "validation": 1}
    assert verify_layout(out).splits == {"train": 4, "validation": 1}
    assert os.stat(out / "data/validation/videos/short_c.mp4").st_ino == os.stat(raw / "videos/short_c.mp4").st_ino


def test_build_with_every_row_rejected_writes_nothing(raw, tmp_path):
    _write_jsonl(raw / "qa.jsonl", [{"video": "gone.mp4", "question": "q?", "options": ["a", "b"], "answer": "A"}])
    with pytest.raises(ValueError, match=r"Every question of .* was rejected \({'missing_video': 1}\)"):
        build_longvideo_qa(raw / "qa.jsonl", raw / "videos", tmp_path / "out", show_progress=False)
    assert not os.path.exists(tmp_path / "out") and not os.path.exists(tmp_path / "out.partial")
