"""`LongVideoQA` (the datasets builder for raw corpora) and `build_longvideo_qa` (the Hub layout writer)."""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path

import pytest

from transformers_msjoe.data import (
    LONGVIDEO_QA_FEATURES,
    LayoutError,
    LongVideoQA,
    ValidationOptions,
    build_longvideo_qa,
    load_longvideo_qa,
    verify_layout,
)
from transformers_msjoe.data import builder as builder_module
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
    rows = copy.deepcopy(longvideo_corpus["rows"]) + [
        {"id": "x", "video": "gone.mp4", "question": "q?", "options": ["a", "b"], "answer": "A"}
    ]
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


def test_builder_takes_the_same_validation_options_as_build(raw, tmp_path):
    options = ValidationOptions(min_options=3, probe_workers=2, duration_tolerance_seconds=1.0, default_source="mine")
    builder = LongVideoQA(data_dir=str(raw), cache_dir=str(tmp_path / "cache"), validation=options)
    assert builder.config_id != LongVideoQA(data_dir=str(raw), cache_dir=str(tmp_path / "cache")).config_id
    builder.download_and_prepare()
    ds = builder.as_dataset(split="train")
    assert sorted(ds["id"]) == ["a-0", "a-1", "c-0"]  # min_options=3 drops the two-option questions b-0, b-1
    assert set(ds["source"]) == {"mine", "synthetic"}  # c-0 names its own source
    assert builder.validation.reason_counts() == {"option_count": 3, "missing_video": 1}  # b-0, b-1 and the row "x"


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
    assert (
        saved["rejected_rows"][0]["location"] == "qa.jsonl:6"
        and saved["rejected_rows"][0]["reasons"][0]["code"] == "missing_video"
    )
    assert saved["unreferenced_files"] == ["unused.mp4"]
    layout = verify_layout(out)
    assert layout.problems == [] and layout.splits == {"train": 5}
    assert not os.path.exists(f"{out}.partial")
    assert set(load_longvideo_qa(out, decode_video=False)["source"]) == {"qa", "synthetic"}  # default: the file's name


def test_a_build_killed_between_its_two_renames_is_recovered(raw, tmp_path, monkeypatch):
    """Replacing a folder takes two renames; after a crash between them the next start puts the old one back."""
    out = tmp_path / "out"
    build_longvideo_qa(raw / "qa.jsonl", raw / "videos", out, show_progress=False)
    real_replace, calls = os.replace, []

    def die_on_the_second_rename(src, dst):
        calls.append(dst)
        if str(dst) == str(out):
            raise KeyboardInterrupt("killed between the renames")
        real_replace(src, dst)

    monkeypatch.setattr(builder_module.os, "replace", die_on_the_second_rename)
    _write_jsonl(raw / "qa.jsonl", [json.loads(line) for line in (raw / "qa.jsonl").read_text().splitlines()][:2])
    with pytest.raises(KeyboardInterrupt):
        build_longvideo_qa(raw / "qa.jsonl", raw / "videos", out, overwrite=True, show_progress=False)
    monkeypatch.setattr(builder_module.os, "replace", real_replace)
    assert not out.exists() and verify_layout(f"{out}.previous").splits == {"train": 5}
    with pytest.raises(LayoutError, match=r"is missing but .*out.previous' holds it.*Run the build again"):
        verify_layout(out)
    with pytest.raises(FileExistsError, match="pass --overwrite"):  # the next start restores the old folder first
        build_longvideo_qa(raw / "qa.jsonl", raw / "videos", out, show_progress=False)
    assert verify_layout(out).splits == {"train": 5} and not os.path.exists(f"{out}.previous")
    assert build_longvideo_qa(raw / "qa.jsonl", raw / "videos", out, overwrite=True, show_progress=False).splits == {
        "train": 2
    }


def test_build_refuses_to_overwrite_and_replaces_with_overwrite(raw, tmp_path):
    out = tmp_path / "out"
    build_longvideo_qa(raw / "qa.jsonl", raw / "videos", out, show_progress=False)
    with pytest.raises(FileExistsError, match="pass --overwrite"):
        build_longvideo_qa(raw / "qa.jsonl", raw / "videos", out, show_progress=False)
    rows = [json.loads(line) for line in (raw / "qa.jsonl").read_text().splitlines()]
    for row in rows:
        row["split"] = "validation" if row["id"] == "c-0" else "train"
    _write_jsonl(raw / "qa.jsonl", rows)
    report = build_longvideo_qa(
        raw / "qa.jsonl", raw / "videos", out, overwrite=True, link="hardlink", show_progress=False
    )
    assert report.splits == {"train": 4, "validation": 1}
    assert verify_layout(out).splits == {"train": 4, "validation": 1}
    assert os.stat(out / "data/validation/videos/short_c.mp4").st_ino == os.stat(raw / "videos/short_c.mp4").st_ino


def test_build_with_every_row_rejected_writes_nothing(raw, tmp_path):
    _write_jsonl(raw / "qa.jsonl", [{"video": "gone.mp4", "question": "q?", "options": ["a", "b"], "answer": "A"}])
    with pytest.raises(ValueError, match=r"Every question of .* was rejected \({'missing_video': 1}\)"):
        build_longvideo_qa(raw / "qa.jsonl", raw / "videos", tmp_path / "out", show_progress=False)
    assert not os.path.exists(tmp_path / "out") and not os.path.exists(tmp_path / "out.partial")


def test_a_cache_hit_still_reports_the_rejected_rows(raw, tmp_path, caplog):
    """On a cache hit `_split_generators` does not run; the report saved next to the Arrow files is reloaded."""
    first = LongVideoQA(data_dir=str(raw), cache_dir=str(tmp_path / "cache"))
    first.download_and_prepare()
    expected = first.validation.to_report()
    caplog.clear()
    again = LongVideoQA(data_dir=str(raw), cache_dir=str(tmp_path / "cache"))
    again.download_and_prepare()  # same corpus, same options: served from the cache
    assert again.validation is not None and again.validation.to_report() == expected
    assert again.validation.rows_by_split()["train"] == first.validation.rows_by_split()["train"]
    assert any("(cached build) rejected qa.jsonl:6 (x): missing_video" in r.getMessage() for r in caplog.records)
    assert any("not mentioned by any question: ['unused.mp4']" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("name", "content"), [("qa.csv", "id,video,question,options,answer\n"), ("qa.jsonl", "\n")])
def test_a_question_file_without_questions_says_so(raw, tmp_path, name, content):
    (raw / name).write_text(content)
    with pytest.raises(QAFileError, match=rf"{name} holds no questions \(it is empty, or a CSV with only its header"):
        build_longvideo_qa(raw / name, raw / "videos", tmp_path / "out", show_progress=False)
    assert not os.path.exists(tmp_path / "out")


def test_the_citation_has_one_home(raw, tmp_path):
    """The builder, both cards and the metric render `transformers_msjoe.citation.MSJOE_CITATION`; no other copy."""
    import evaluate

    import transformers_msjoe
    from transformers_msjoe import MSJoEConfig
    from transformers_msjoe.citation import MSJOE_CITATION
    from transformers_msjoe.data import render_dataset_card
    from transformers_msjoe.metrics import MSJOE_ACCURACY_PATH
    from transformers_msjoe.model_card import render_model_card
    from transformers_msjoe.tiny_models import build_tiny_mllm

    assert LongVideoQA(data_dir=str(raw), cache_dir=str(tmp_path / "cache")).info.citation == MSJOE_CITATION
    assert MSJOE_CITATION in str(render_dataset_card(None))
    mllm, _ = build_tiny_mllm("qwen2_5_vl")
    assert MSJOE_CITATION in str(
        render_model_card(MSJoEConfig(mllm_config=mllm.config), repo_id="me/m", sampler_params=1)
    )
    assert evaluate.load(MSJOE_ACCURACY_PATH).citation == MSJOE_CITATION
    holders = [
        path.name
        for path in Path(transformers_msjoe.__file__).parent.rglob("*")
        if path.is_file() and path.suffix in (".py", ".md") and "@inproceedings{tan2026msjoe" in path.read_text("utf-8")
    ]
    assert holders == ["citation.py"]
