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


def test_invalid_jsonl_names_the_line(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text('{"question": "q1"}\n{"question": "q2", }\n{"question": "q3"}\n')
    with pytest.raises(QAFileError, match=r"line 2: not valid JSON"):
        read_qa_file(path)


def test_jsonl_line_that_is_not_an_object(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text('{"question": "q1"}\n["not", "an", "object"]\n')
    with pytest.raises(QAFileError, match=r"line 2: expected a JSON object, got list"):
        read_qa_file(path)


def test_invalid_json_names_the_line(tmp_path):
    path = tmp_path / "qa.json"
    path.write_text('[\n  {"question": "q1"},\n  {"question": "q2"\n  }\n  {"question": "q3"}\n]\n')
    with pytest.raises(QAFileError, match=r"qa.json line 5: not valid JSON"):
        read_qa_file(path)


def test_json_must_be_a_list_of_objects(tmp_path):
    path = tmp_path / "qa.json"
    path.write_text(json.dumps({"question": "q1"}))
    with pytest.raises(QAFileError, match="must hold a list of objects"):
        read_qa_file(path)


def test_csv_options_as_json_list_or_numbered_columns(tmp_path):
    path = tmp_path / "qa.csv"
    path.write_text(
        'video,question,options,answer,pass_rate\n'
        'a.mp4,"Which, exactly?","[""red"", ""blue""]",A,0.25\n'
    )
    numbered = tmp_path / "numbered.csv"
    numbered.write_text("video,question,option0,option1,option2,answer\na.mp4,Which?,red,blue,,B\n")
    (record,) = read_qa_file(path)
    assert record.location == "qa.csv:2"
    assert record.fields == {"video": "a.mp4", "question": "Which, exactly?", "options": ["red", "blue"], "answer": "A", "pass_rate": 0.25}
    (record,) = read_qa_file(numbered)
    assert record.fields["options"] == ["red", "blue"]


def test_csv_with_wrong_field_count_names_the_line(tmp_path):
    path = tmp_path / "qa.csv"
    path.write_text('video,question,options,answer\na.mp4,q1,"[""x"", ""y""]",A\nb.mp4,q2, with a comma,"[""x""]",A\n')
    with pytest.raises(QAFileError, match=r"line 3: 5 fields but the header has 4"):
        read_qa_file(path)


def test_csv_with_unterminated_quote_names_the_line(tmp_path):
    path = tmp_path / "qa.csv"
    path.write_text('video,question,options,answer\na.mp4,q1,"[""x""]",A\nb.mp4,"q2 never closed,x,A\n')
    with pytest.raises(QAFileError, match=r"line \d+: not valid CSV"):
        read_qa_file(path)


def test_csv_options_cell_that_is_not_json(tmp_path):
    path = tmp_path / "qa.csv"
    path.write_text("video,question,options,answer\na.mp4,q1,red|blue,A\n")
    with pytest.raises(QAFileError, match=r"line 2: the options cell must be a JSON list"):
        read_qa_file(path)


def test_missing_file_and_unknown_extension(tmp_path):
    with pytest.raises(QAFileError, match="Question file not found"):
        read_qa_file(tmp_path / "nope.jsonl")
    (tmp_path / "qa.txt").write_text("hello")
    with pytest.raises(QAFileError, match="unsupported extension '.txt'"):
        read_qa_file(tmp_path / "qa.txt")
