"""End to end through the CLI: build -> label-difficulty (tiny model) -> filter -> `load_dataset(<folder>)`."""

from __future__ import annotations

import copy
import json
import re

import pytest
from datasets import load_dataset

from transformers_msjoe.cli.main import main
from transformers_msjoe.data import LONGVIDEO_QA_FEATURES

pytestmark = pytest.mark.usefixtures("isolated_datasets_cache")


@pytest.fixture
def raw_qa(longvideo_corpus, tmp_path):
    rows = copy.deepcopy(longvideo_corpus["rows"])
    rows.append({"id": "bad", "video": "long_a.mp4", "question": "Which?", "options": ["x", "y"], "answer": "D"})
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_build_label_filter_then_load_dataset(raw_qa, longvideo_corpus, tiny_mllm_dir, tmp_path, capsys):
    out = tmp_path / "longvideo-qa"
    assert (
        main(["data", "build", "--qa", str(raw_qa), "--videos", longvideo_corpus["videos_dir"], "--out", str(out)]) == 0
    )
    printed = capsys.readouterr().out
    assert "train 5 questions" in printed and "rejected 1 rows: {'answer_not_in_options': 1}" in printed
    assert "qa.jsonl:6: answer_not_in_options" in printed

    label = ["data", "label-difficulty", str(out), "--model", tiny_mllm_dir("qwen2_5_vl"), "--num-rollouts", "2", "--frames", "2", "--max-new-tokens", "3"]  # fmt: skip
    assert main(label) == 0
    printed = capsys.readouterr().out
    assert "labelled 5 questions (5 computed now" in printed and "report: " in printed
    assert re.search(r"unparsable answers \(counted as wrong\): \d+ of 10 \(\d+\.\d%\)", printed)
    assert main(label) == 0  # a rerun finds everything labelled
    assert (
        "labelled 0 questions (0 computed now, 0 from an earlier run; 5 already had a pass_rate)"
        in capsys.readouterr().out
    )

    assert main(["data", "filter", str(out), "--min-duration", "30", "--max-pass-rate", "0.9", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    dropped = {row["id"]: row["reasons"] for row in report["dropped_rows"]}
    assert dropped["c-0"] == ["too_short: 20s < 30s"] and report["deleted_videos"] == ["data/train/videos/short_c.mp4"]

    ds = load_dataset(str(out), split="train")
    assert ds.features == LONGVIDEO_QA_FEATURES
    assert ds.num_rows == 4 - sum("too_easy" in r[0] for r in dropped.values())
    row = ds[0]
    assert row["pass_rate"] is not None and 0.0 <= row["pass_rate"] <= 1.0
    frames = row["video"].get_frames_at(indices=[0, 10, 20])
    assert tuple(frames.data.shape) == (3, 3, 120, 160)

    assert main(["data", "verify", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "'video': Video(decode=True" in printed and "video: VideoDecoder duration" in printed


def test_verify_of_an_empty_split_says_so(monkeypatch, capsys):
    from datasets import Dataset

    from transformers_msjoe import data

    empty = Dataset.from_dict({name: [] for name in LONGVIDEO_QA_FEATURES}, features=LONGVIDEO_QA_FEATURES)
    monkeypatch.setattr(data, "load_longvideo_qa", lambda *args, **kwargs: empty)
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "verify", "me/longvideo-qa", "--split", "validation"])
    assert exit_info.value.code == 2
    assert "Split 'validation' of me/longvideo-qa has no rows" in capsys.readouterr().err


def test_build_errors_are_one_line_with_the_fix(tmp_path, longvideo_corpus, capsys):
    bad = tmp_path / "qa.jsonl"
    bad.write_text('{"video": "long_a.mp4"}\n{"video": \n')
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "data",
                "build",
                "--qa",
                str(bad),
                "--videos",
                longvideo_corpus["videos_dir"],
                "--out",
                str(tmp_path / "o"),
            ]
        )
    assert exit_info.value.code == 2
    assert "line 2: not valid JSON" in capsys.readouterr().err


def test_strict_build_fails_on_rejections(raw_qa, longvideo_corpus, tmp_path):
    args = [
        "data",
        "build",
        "--qa",
        str(raw_qa),
        "--videos",
        longvideo_corpus["videos_dir"],
        "--out",
        str(tmp_path / "o"),
        "--strict",
    ]
    assert main(args) == 1
