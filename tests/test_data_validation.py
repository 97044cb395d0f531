"""Row validation: every bad-input case of the issue is rejected with its reason; nothing is dropped silently."""

from __future__ import annotations

import copy
import os
import shutil

import pytest

from transformers_msjoe.data.qa_files import RawRecord
from transformers_msjoe.data.validation import ValidationOptions, validate_records


def _records(rows):
    return [RawRecord(f"qa.jsonl:{i + 1}", row) for i, row in enumerate(rows)]


def _reasons(result):
    return {row.location: [issue.code for issue in row.reasons] for row in result.rejected}


@pytest.fixture
def videos(longvideo_corpus, tmp_path):
    """A private copy of the corpus videos, so tests can add broken or extra files."""
    folder = tmp_path / "videos"
    shutil.copytree(longvideo_corpus["videos_dir"], folder)
    return folder


@pytest.fixture
def rows(longvideo_corpus):
    return copy.deepcopy(longvideo_corpus["rows"])


def test_valid_rows_are_normalised(rows, videos):
    result = validate_records(_records(rows), videos, ValidationOptions(default_source="unit"), show_progress=False)
    assert result.rejected == [] and result.unreferenced_files == [] and result.ignored_fields == {}
    by_id = {row["id"]: row for row in result.rows}
    assert by_id["a-1"]["options"] == ["one", "two", "three"]  # lettered input -> plain texts
    assert by_id["b-0"]["options"] == ["red", "blue"] and by_id["b-0"]["answer"] == "B"  # dict options, answer by text
    assert by_id["b-1"]["answer"] == "A"  # "(A)"
    assert by_id["a-0"]["duration_seconds"] == pytest.approx(60.0, abs=0.5)
    assert by_id["a-0"]["file_name"] == "videos/long_a.mp4" and by_id["a-1"]["video_id"] == "long_a"
    assert by_id["c-0"]["source"] == "synthetic" and by_id["a-0"]["source"] == "unit"
    assert by_id["a-0"]["pass_rate"] is None and by_id["b-0"]["question_type"] is None
    assert {row["split"] for row in result.rows} == {"train"}


@pytest.mark.parametrize(
    ("edit", "code"),
    [
        ({"video": "gone.mp4"}, "missing_video"),
        ({"video": None, "video_id": "nothing_like_this"}, "missing_video"),
        ({"video": None}, "missing_video"),  # neither video nor video_id
        ({"video": "../outside.mp4"}, "missing_video"),
        ({"question": "   "}, "empty_question"),
        ({"question": None}, "empty_question"),
        ({"answer": "E"}, "answer_not_in_options"),
        ({"answer": "purple"}, "answer_not_in_options"),
        ({"answer": 2}, "answer_not_in_options"),
        ({"answer": None}, "missing_answer"),
        ({"options": ["only one"]}, "option_count"),
        ({"options": [f"o{i}" for i in range(11)]}, "option_count"),
        ({"options": None}, "option_count"),
        ({"options": "red, blue"}, "bad_options"),
        ({"options": ["A. red", "C. blue"]}, "bad_options"),
        ({"options": ["A. red", "blue"]}, "bad_options"),
        ({"options": ["red", "Red", "blue", "green"]}, "duplicate_options"),
        # the same text to an answer key ("red." would match both): compared as `_same_text` compares keys
        ({"options": ["red", "red.", "blue", "green"]}, "duplicate_options"),
        ({"options": ["A. Lincoln", "G. Washington"]}, "bad_options"),  # looks lettered, but not A, B: ambiguous
        ({"pass_rate": 1.5}, "bad_pass_rate"),
        ({"duration": 600}, "duration_mismatch"),
        ({"duration": -3}, "bad_duration"),
        ({"duration": float("nan")}, "bad_duration"),
        ({"pass_rate": float("nan")}, "bad_pass_rate"),
        ({"split": "train/val"}, "bad_split"),
    ],
)
def test_each_bad_row_is_rejected_with_its_reason(rows, videos, edit, code):
    bad = {**rows[0], **edit}
    result = validate_records(_records([bad, rows[2]]), videos, show_progress=False)
    assert [row["id"] for row in result.rows] == ["b-0"]
    assert code in _reasons(result)["qa.jsonl:1"]
    assert all(issue.message for issue in result.rejected[0].reasons)


@pytest.mark.parametrize(
    ("options", "stored"),
    [
        (["J. K. Rowling", "C. S. Lewis"], ["J. K. Rowling", "C. S. Lewis"]),
        (["A. A. Milne", "B. C. S. Lewis"], ["A. Milne", "C. S. Lewis"]),  # lettered input: the labels go
        ({"A": "A. Lincoln", "B": "G. Washington"}, ["A. Lincoln", "G. Washington"]),
    ],
)
def test_option_texts_that_start_like_labels_are_stored_as_plain_texts(rows, videos, options, stored):
    """Stored options are plain texts by schema, read back with `lettered_options` (never re-parsed as labels)."""
    from transformers_msjoe.data.schema import lettered_options

    result = validate_records(_records([{**rows[2], "options": options, "answer": "B"}]), videos, show_progress=False)
    (row,) = result.rows
    assert row["options"] == stored and row["answer"] == "B"
    assert [(o.letter, o.text) for o in lettered_options(row["options"])] == [("A", stored[0]), ("B", stored[1])]


def test_several_problems_of_one_row_are_all_reported(rows, videos):
    bad = {**rows[0], "video": "gone.mp4", "question": "", "answer": "Z"}
    result = validate_records(_records([bad]), videos, show_progress=False)
    assert sorted(_reasons(result)["qa.jsonl:1"]) == ["answer_not_in_options", "empty_question", "missing_video"]


def test_option_count_limits_are_configurable(rows, videos):
    result = validate_records(
        _records(rows), videos, ValidationOptions(min_options=3, max_options=3), show_progress=False
    )
    assert sorted(r["id"] for r in result.rows) == ["a-1", "c-0"]
    assert set(result.reason_counts()) == {"option_count"}


def test_duplicate_ids_keep_the_first_and_name_it(rows, videos):
    dup = {**rows[2], "id": "a-0"}
    result = validate_records(_records([rows[0], dup]), videos, show_progress=False)
    assert [row["id"] for row in result.rows] == ["a-0"]
    (rejected,) = result.rejected
    assert rejected.reasons[0].code == "duplicate_id" and "qa.jsonl:1" in rejected.reasons[0].message


@pytest.mark.parametrize(
    ("first", "second", "third", "code", "named"),
    [
        ({"id": "a-0"}, {"id": "a-0", "row": 2}, {"id": "a-0", "row": 3}, "duplicate_id", "qa.jsonl:2"),
        ({"id": "a-0"}, {"id": "a-0-copy"}, {"id": "a-0-again"}, "duplicate_question", "qa.jsonl:2"),
        (
            {"video": "long_b.mp4", "video_id": "long_a"},
            {},
            {"row": 2, "video_id": "long_a"},
            "video_id_conflict",
            "'long_a.mp4'",
        ),
    ],
)
def test_the_first_valid_copy_is_kept_when_an_earlier_one_is_rejected(rows, videos, first, second, third, code, named):
    """A first copy rejected for another reason (here a bad answer) must not take a valid later copy down with it."""

    def row(edit):
        edit = dict(edit)
        return {**rows[edit.pop("row", 0)], **edit}

    result = validate_records(
        _records([{**row(first), "answer": "Z"}, row(second), row(third)]), videos, show_progress=False
    )
    assert [r["id"] for r in result.rows] == [row(second)["id"]]
    assert _reasons(result) == {"qa.jsonl:1": ["answer_not_in_options"], "qa.jsonl:3": [code]}
    assert named in result.rejected[1].reasons[0].message


def test_duplicate_question_on_the_same_video(rows, videos):
    again = {**rows[0], "id": "a-0-copy", "question": "  which BOX appears first? "}
    result = validate_records(_records([rows[0], again]), videos, show_progress=False)
    assert _reasons(result) == {"qa.jsonl:2": ["duplicate_question"]}


def test_missing_ids_are_generated_per_video(rows, videos):
    for row in rows:
        row.pop("id")
    result = validate_records(_records(rows), videos, show_progress=False)
    assert [row["id"] for row in result.rows] == ["long_a-0", "long_a-1", "long_b-0", "long_b-1", "short_c-0"]


def test_undecodable_videos_are_rejected(rows, videos):
    (videos / "text.mp4").write_text("this is not a video")
    data = (videos / "long_a.mp4").read_bytes()
    (videos / "truncated.mp4").write_bytes(data[: len(data) // 3])
    bad = [{**rows[0], "id": "t", "video": "text.mp4"}, {**rows[0], "id": "u", "video": "truncated.mp4"}]
    result = validate_records(_records(bad + [rows[2]]), videos, show_progress=False)
    assert [row["id"] for row in result.rows] == ["b-0"]
    assert _reasons(result) == {"qa.jsonl:1": ["undecodable_video"], "qa.jsonl:2": ["undecodable_video"]}
    assert "not a readable video" in result.rejected[0].reasons[0].message


def test_video_that_opens_but_fails_to_decode_is_caught_by_the_probe(rows, videos):
    """Zeroed bytes inside the stream: the container opens, the frames do not decode."""
    data = bytearray((videos / "long_a.mp4").read_bytes())
    third = len(data) // 3
    data[third : third + len(data) // 4] = bytes(len(data) // 4)
    (videos / "damaged.mp4").write_bytes(bytes(data))
    result = validate_records(_records([{**rows[0], "video": "damaged.mp4"}]), videos, show_progress=False)
    assert _reasons(result) == {"qa.jsonl:1": ["undecodable_video"]}
    assert "failed to decode frames" in result.rejected[0].reasons[0].message
    opened_only = validate_records(
        _records([{**rows[0], "video": "damaged.mp4"}]), videos, ValidationOptions(probe_frames=0), show_progress=False
    )
    assert opened_only.rejected == []  # why the decode probe exists


def test_truncated_video_is_caught_by_the_duration_probe(rows, videos, tmp_path):
    """A faststart MP4 cut at 40 %: it decodes, but lasts 24 s instead of the 60 s the question file says."""
    import subprocess

    faststart = tmp_path / "faststart.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(videos / "long_a.mp4"), "-c", "copy", "-movflags", "+faststart", str(faststart)], check=True)  # fmt: skip
    data = faststart.read_bytes()
    (videos / "cut.mp4").write_bytes(data[: int(len(data) * 0.4)])
    result = validate_records(
        _records([{**rows[0], "video": "cut.mp4", "duration_seconds": 60}]), videos, show_progress=False
    )
    assert _reasons(result) == {"qa.jsonl:1": ["duration_mismatch"]}
    assert "the row says 60s but the file lasts" in result.rejected[0].reasons[0].message


def test_ambiguous_and_unsupported_videos(rows, videos):
    shutil.copyfile(videos / "long_b.mp4", videos / "long_b.mkv")
    shutil.copyfile(videos / "long_b.mp4", videos / "clip.webm")
    ambiguous = {**rows[2], "video": None, "video_id": "long_b"}
    webm = {**rows[2], "id": "w", "video": "clip.webm"}
    result = validate_records(_records([ambiguous, webm]), videos, show_progress=False)
    assert _reasons(result) == {"qa.jsonl:1": ["ambiguous_video"], "qa.jsonl:2": ["unsupported_container"]}


def test_video_id_conflicts(rows, videos):
    os.makedirs(videos / "sub")
    shutil.copyfile(videos / "long_b.mp4", videos / "sub" / "long_b.mp4")
    first = {**rows[2], "video_id": "long_b"}
    other_file_same_id = {**rows[3], "video": "sub/long_b.mp4", "video_id": "long_b"}
    result = validate_records(_records([first, other_file_same_id]), videos, show_progress=False)
    assert _reasons(result) == {"qa.jsonl:2": ["video_id_conflict"]}
    clashing_names = [{**rows[0], "video_id": "a b"}, {**rows[2], "video_id": "a_b"}]  # both stored as videos/a_b.mp4
    result = validate_records(_records(clashing_names), videos, show_progress=False)
    assert _reasons(result) == {"qa.jsonl:2": ["video_id_conflict"]}


def test_unmentioned_files_and_unknown_fields_are_reported_not_errors(rows, videos):
    (videos / "notes.txt").write_text("hello")
    rows[0]["annotator"] = "bob"
    result = validate_records(_records(rows[:2]), videos, show_progress=False)
    assert result.rejected == [] and len(result.rows) == 2
    assert result.unreferenced_files == ["long_b.mp4", "notes.txt", "short_c.mp4"]
    assert result.ignored_fields == {"annotator": 1}
    report = result.to_report()
    assert report["unreferenced_files"] == result.unreferenced_files and report["kept"] == 2


def test_video_shared_across_splits_is_noted(rows, videos):
    rows[1]["split"] = "validation"
    result = validate_records(_records(rows[:2]), videos, show_progress=False)
    assert result.rejected == [] and {r["split"] for r in result.rows} == {"train", "validation"}
    assert any("several splits" in note for note in result.notes)


def test_missing_video_folder_is_an_error(rows, tmp_path):
    with pytest.raises(ValueError, match="Video folder not found"):
        validate_records(_records(rows), tmp_path / "no-such-folder", show_progress=False)


@pytest.mark.parametrize(
    ("answer", "options", "expected"),
    [
        ("B", ["red", "blue"], "B"),
        ("b", ["red", "blue"], "B"),
        ("(B)", ["red", "blue"], "B"),
        ("B.", ["red", "blue"], "B"),
        ("B. Blue.", ["red", "blue"], "B"),  # the letter with its own text (case, spacing, final period ignored)
        ("blue", ["red", "blue"], "B"),  # the exact option text
        ("A", ["A", "B"], "A"),  # letter and text agree
        ("J. K. Rowling", ["J. K. Rowling", "C. S. Lewis"], "A"),  # a text, not option "J"
        ("A. Lincoln", ["Washington", "A. Lincoln"], "B"),  # option B's exact text, and not "A" + option A's text
        ("C", ["C", "B", "A"], "ambiguous_answer"),  # letter C, or the text of option A?
        ("b", ["a", "c", "b"], "ambiguous_answer"),  # letter B, or the text of option C?
        ("C.", ["C", "B", "A"], "ambiguous_answer"),
        ("B. red", ["red", "blue"], "ambiguous_answer"),  # the letter and its text disagree
        ("A. Lincoln", ["Lincoln", "A. Lincoln"], "ambiguous_answer"),  # two complete readings, two options
        ("The answer is B, not A", ["red", "blue"], "answer_not_in_options"),  # free text: never parsed
        ("Answer: B", ["red", "blue"], "answer_not_in_options"),
        ("E", ["red", "blue"], "answer_not_in_options"),
    ],
)
def test_answer_keys_are_a_letter_or_an_option_text_and_never_guessed(answer, options, expected):
    from transformers_msjoe.data.validation import Issue, _normalize_answer

    result = _normalize_answer(answer, options)
    assert (result.code if isinstance(result, Issue) else result) == expected


def test_an_ambiguous_answer_rejects_its_row_with_the_reason(rows, videos):
    ambiguous = {**rows[0], "id": "amb", "options": ["C", "B", "A"], "answer": "C"}
    result = validate_records(_records([rows[1], ambiguous]), videos, show_progress=False)
    assert [row["id"] for row in result.rows] == ["a-1"]
    (rejected,) = result.rejected
    assert rejected.id == "amb" and [i.code for i in rejected.reasons] == ["ambiguous_answer"]
    assert "both the letter C and the text of option A" in rejected.reasons[0].message
