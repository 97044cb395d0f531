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


BOM = "\ufeff"


def test_a_utf8_bom_is_removed_so_the_first_csv_column_keeps_its_name(tmp_path):
    """Excel's "CSV UTF-8" starts with a BOM; read as plain utf-8 it turned the `id` column into '\\ufeffid'."""
    path = tmp_path / "qa.csv"
    path.write_text(BOM + 'id,video,question,options,answer\nq7,a.mp4,Which?,"[""x"", ""y""]",B\n', encoding="utf-8")
    (record,) = read_qa_file(path)
    assert record.fields["id"] == "q7" and not any(key.startswith(BOM) for key in record.fields)


@pytest.mark.parametrize(
    ("name", "content"),
    [("qa.jsonl", '{"id": "q7", "question": "q1"}\n'), ("qa.json", '[{"id": "q7", "question": "q1"}]')],
)
def test_a_utf8_bom_is_accepted_in_json_files(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(BOM + content, encoding="utf-8")
    (record,) = read_qa_file(path)
    assert record.fields == {"id": "q7", "question": "q1"}


@pytest.mark.parametrize("name", ["qa.jsonl", "qa.json", "qa.csv"])
def test_a_file_that_is_not_utf8_names_the_path_the_line_and_the_fix(tmp_path, name):
    path = tmp_path / name
    lines = {"qa.jsonl": ['{"question": "ok"}', '{"question": "caf\xe9"}'], "qa.json": ["[", '{"question": "caf\xe9"}]'],
             "qa.csv": ["question,answer", "caf\xe9,A"]}[name]  # fmt: skip
    path.write_bytes("\n".join(lines).encode("latin-1"))
    with pytest.raises(
        QAFileError, match=rf"{path} line 2: the file is not UTF-8 text \(byte 0xe9.*Re-save it as UTF-8"
    ):
        read_qa_file(path)


def test_a_utf16_file_is_named_as_such(tmp_path):
    path = tmp_path / "qa.csv"
    path.write_bytes("question,answer\nwhy?,A\n".encode("utf-16"))  # Excel's "Unicode Text"
    with pytest.raises(QAFileError, match="line 1: .*starts with a UTF-16 byte-order mark.*Re-save it as UTF-8"):
        read_qa_file(path)
