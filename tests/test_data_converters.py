"""Converter from LLaVA-Video-178K multiple-choice json to native records, and through validation."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from transformers_msjoe.cli.main import main
from transformers_msjoe.data.converters import read_records, split_llava_prompt
from transformers_msjoe.data.qa_files import QAFileError
from transformers_msjoe.data.validation import validate_records

LLAVA_VIDEO_MCQ = [
    {
        "id": "v_abc",
        "data_source": "youcook2",
        "video": "youcook2/long_a.mp4",
        "conversations": [
            {"from": "human", "value": "<image>\nWhat does the cook add first?\nA. salt\nB. sugar\nC. flour\nD. eggs\nAnswer with the option's letter from the given choices directly."},
            {"from": "gpt", "value": "C."},
            {"from": "human", "value": "Which tool is used at the end?\nOptions:\n(A) a whisk\n(B) a knife\nPlease respond with only the letter of the correct answer."},
            {"from": "gpt", "value": "B"},
        ],
    },
    {
        "id": "v_def",
        "data_source": "charades",
        "video": "charades/long_b.mp4",
        "conversations": [{"from": "human", "value": "<image>\nDescribe the video."}, {"from": "gpt", "value": "A person walks."}],
    },
    {"id": "v_ghi", "video": "charades/long_b.mp4", "conversations": []},
    {
        "id": "v_jkl",
        "video": "charades/long_b.mp4",
        "conversations": [
            "not a turn",
            {"from": "gpt", "value": "B"},
            {"from": "human", "value": "<image>\nWho wrote the book on the table?\nA. J. K. Rowling\nB. C. S. Lewis"},
            {"from": "gpt", "value": "A"},
        ],
    },
]  # fmt: skip


def test_split_llava_prompt():
    question, options = split_llava_prompt(
        "<video>\nWhy?\nBecause.\nOptions:\nA) yes\nB) no\nC: maybe\nAnswer briefly."
    )
    assert question == "Why?\nBecause." and options == {"A": "yes", "B": "no", "C": "maybe"}
    assert split_llava_prompt("A dog runs. What colour is it?") == ("A dog runs. What colour is it?", {})


@pytest.fixture
def llava_corpus(longvideo_corpus, tmp_path):
    """LLaVA-Video's layout: videos in per-source subfolders, one json file."""
    videos = tmp_path / "llava_videos"
    for sub, name in (("youcook2", "long_a.mp4"), ("charades", "long_b.mp4")):
        os.makedirs(videos / sub, exist_ok=True)
        shutil.copyfile(os.path.join(longvideo_corpus["videos_dir"], name), videos / sub / name)
    path = tmp_path / "0_30_s_youtube_mc_qa_processed.json"
    path.write_text(json.dumps(LLAVA_VIDEO_MCQ))
    return path, videos


def test_llava_video_records(llava_corpus):
    path, _ = llava_corpus
    records = read_records(path, "llava-video")
    assert [r.fields.get("id") for r in records] == ["v_abc-t0", "v_abc-t1", "v_def", "v_ghi", "v_jkl", "v_jkl-conversations0", "v_jkl-conversations1"]  # fmt: skip
    first = records[0].fields
    assert first["question"] == "What does the cook add first?"  # media token and instruction line dropped
    assert first["options"] == {"A": "salt", "B": "sugar", "C": "flour", "D": "eggs"}
    assert (
        first["answer"] == "C."
        and first["source"] == "llava-video-178k/youcook2"
        and first["video"] == "youcook2/long_a.mp4"
    )
    assert records[1].fields["question"] == "Which tool is used at the end?" and records[1].location.endswith(
        "[record 0, turn 1]"
    )
    assert records[2].fields["options"] == {}  # open-ended turn: kept, validation rejects it
    assert records[3].fields["conversion_problems"] == [
        "the record has no `conversations` list of human/gpt turns (got [])"
    ]
    assert records[4].fields["options"] == {"A": "J. K. Rowling", "B": "C. S. Lewis"}
    assert records[5].location.endswith("[record 3, conversations[0]]") and "is a str, not a {from, value} object" in records[5].fields["conversion_problems"][0]  # fmt: skip
    assert (
        "(from 'gpt') is not part of a human/gpt question-answer pair: 'B'"
        in records[6].fields["conversion_problems"][0]
    )


def test_llava_video_through_validation(llava_corpus):
    path, videos = llava_corpus
    result = validate_records(read_records(path, "llava-video"), videos, show_progress=False)
    kept = {row["id"]: row for row in result.rows}
    assert set(kept) == {"v_abc-t0", "v_abc-t1", "v_jkl"}
    assert kept["v_abc-t0"]["answer"] == "C" and kept["v_abc-t0"]["options"] == ["salt", "sugar", "flour", "eggs"]
    assert kept["v_abc-t1"]["answer"] == "B" and kept["v_abc-t0"]["video_id"] == "youcook2/long_a"
    assert kept["v_abc-t0"]["file_name"] == "videos/youcook2_long_a.mp4"
    assert kept["v_jkl"]["options"] == ["J. K. Rowling", "C. S. Lewis"] and kept["v_jkl"]["answer"] == "A"
    reasons = {row.location: [i.code for i in row.reasons] for row in result.rejected}
    name = "0_30_s_youtube_mc_qa_processed.json"
    assert reasons == {
        f"{name}[record 1, turn 0]": ["option_count"],
        f"{name}[record 2]": ["conversion_problem"],
        f"{name}[record 3, conversations[0]]": ["conversion_problem"],
        f"{name}[record 3, conversations[1]]": ["conversion_problem"],
    }
    assert result.reason_counts() == {"option_count": 1, "conversion_problem": 3}  # every source entry accounted for


def test_unknown_format_is_an_error(llava_corpus):
    with pytest.raises(QAFileError, match="Unknown question-file format 'tspo'"):
        read_records(llava_corpus[0], "tspo")


def test_cli_convert_writes_native_jsonl(llava_corpus, tmp_path, capsys):
    path, _ = llava_corpus
    out = tmp_path / "native.jsonl"
    assert main(["data", "convert", str(path), "--format", "llava-video", "--out", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 7 and lines[0]["id"] == "v_abc-t0"
    printed = capsys.readouterr().out
    assert "wrote 4 questions" in printed and "3 source entries hold no question" in printed
    assert "[record 2]: the record has no `conversations` list" in printed
    result = validate_records(read_records(out), llava_corpus[1], show_progress=False)  # the jsonl builds the same way
    assert len(result.rows) == 3 and result.reason_counts() == {"option_count": 1, "conversion_problem": 3}


def test_records_that_share_an_id_keep_every_question(llava_corpus, tmp_path):
    """LLaVA-Video repeats the video's id across records: each record's questions get their own ids, stably."""
    _, videos = llava_corpus
    record = {"id": "v_abc", "video": "youcook2/long_a.mp4", "conversations": [
        {"from": "human", "value": "<image>\nFirst?\nA. salt\nB. sugar"}, {"from": "gpt", "value": "A"}]}  # fmt: skip
    second = {**record, "conversations": [{"from": "human", "value": "Second?\nA. up\nB. down"}, {"from": "gpt", "value": "B"}]}  # fmt: skip
    two_turns = {**record, "conversations": [*record["conversations"], *second["conversations"]]}
    other = {**record, "id": "v_xyz", "conversations": [{"from": "human", "value": "Third?\nA. yes\nB. no"}, {"from": "gpt", "value": "A"}]}  # fmt: skip
    path = tmp_path / "mc.json"
    path.write_text(json.dumps([record, second, two_turns, other]))
    ids = [r.fields["id"] for r in read_records(path, "llava-video")]
    assert ids == ["v_abc-r0", "v_abc-r1", "v_abc-r2-t0", "v_abc-r2-t1", "v_xyz"]
    assert ids == [r.fields["id"] for r in read_records(path, "llava-video")]  # deterministic
    result = validate_records(read_records(path, "llava-video"), videos, show_progress=False)
    assert result.reason_counts() == {"duplicate_question": 2}  # record 2 repeats records 0 and 1: not duplicate_id
    assert [row["id"] for row in result.rows] == ["v_abc-r0", "v_abc-r1", "v_xyz"]
