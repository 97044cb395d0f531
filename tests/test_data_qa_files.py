"""Question files: jsonl / json / csv parsing, and errors that name the line."""

from __future__ import annotations

import json

import pytest

from transformers_msjoe.data.qa_files import QAFileError, read_qa_file


def test_jsonl_records_carry_their_line(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text('{"question": "q1"}\n\n{"question": "q2"}\n')
    records = read_qa_file(path)
    assert [r.location for r in records] == ["qa.jsonl:1", "qa.jsonl:3"]
    assert [r.fields["question"] for r in records] == ["q1", "q2"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "qa.jsonl",
            '{"question": "q1"}\n{"question": "q2", }\n{"question": "q3"}\n',
            r"qa.jsonl line 2: not valid JSON",
        ),
        ("qa.jsonl", '{"question": "q1"}\n["not", "an", "object"]\n', r"line 2: expected a JSON object, got list"),
        (
            "qa.json",
            '[\n  {"question": "q1"},\n  {"question": "q2"\n  }\n  {"question": "q3"}\n]\n',
            r"qa.json line 5: not valid JSON",
        ),
        ("qa.json", json.dumps({"question": "q1"}), "must hold a list of objects"),
        (
            "qa.csv",
            'video,question,options,answer\na.mp4,q1,"[""x"", ""y""]",A\nb.mp4,q2, with a comma,"[""x""]",A\n',
            r"line 3: 5 fields but the header has 4",
        ),
        (
            "qa.csv",
            'video,question,options,answer\na.mp4,q1,"[""x""]",A\nb.mp4,"q2 never closed,x,A\n',
            r"line \d+: not valid CSV",
        ),
        (
            "qa.csv",
            "video,question,options,answer\na.mp4,q1,red|blue,A\n",
            r"line 2: the options cell must be a JSON list",
        ),
    ],
    ids=[
        "jsonl-bad-json",
        "jsonl-not-object",
        "json-bad-json",
        "json-not-list",
        "csv-field-count",
        "csv-open-quote",
        "csv-options-not-json",
    ],
)
def test_a_broken_question_file_is_an_error_naming_the_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(QAFileError, match=message):
        read_qa_file(path)


def test_csv_options_as_json_list_or_numbered_columns(tmp_path):
    path = tmp_path / "qa.csv"
    path.write_text('video,question,options,answer,pass_rate\na.mp4,"Which, exactly?","[""red"", ""blue""]",A,0.25\n')
    numbered = tmp_path / "numbered.csv"
    numbered.write_text("video,question,option0,option1,option2,answer\na.mp4,Which?,red,blue,,B\n")
    (record,) = read_qa_file(path)
    assert record.location == "qa.csv:2"
    assert record.fields == {
        "video": "a.mp4",
        "question": "Which, exactly?",
        "options": ["red", "blue"],
        "answer": "A",
        "pass_rate": 0.25,
    }
    (record,) = read_qa_file(numbered)
    assert record.fields["options"] == ["red", "blue"]


def test_missing_file_and_unknown_extension(tmp_path):
    with pytest.raises(QAFileError, match="Question file not found"):
        read_qa_file(tmp_path / "nope.jsonl")
    (tmp_path / "qa.txt").write_text("hello")
    with pytest.raises(QAFileError, match="unsupported extension '.txt'"):
        read_qa_file(tmp_path / "qa.txt")
