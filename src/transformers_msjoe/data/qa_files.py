"""Reading question files (jsonl, json, csv) into raw records that remember where each came from.

A file that is not valid JSON / CSV, or not UTF-8, is an error naming the line (a corrupt file means something
upstream went wrong; guessing which rows survived would drop data silently). A UTF-8 byte-order mark (what Excel
writes in "CSV UTF-8") is accepted and removed: kept, it would glue itself to the first CSV column name and turn
`id` into an unknown field. Row-level problems are not errors here:
they are judged, and reported, by `validation.validate_records`.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["QAFileError", "RawRecord", "default_source", "read_qa_file"]

QA_SUFFIXES = (".jsonl", ".json", ".csv")


class QAFileError(ValueError):
    """The question file cannot be parsed; the message names the file, the line and the fix."""


@dataclass(frozen=True)
class RawRecord:
    """One question as read from the source, before validation."""

    location: str  # "qa.jsonl:12" or "llava.json[record 5, turn 2]", used in every report
    fields: dict[str, Any]


def default_source(qa_file: str | os.PathLike) -> str:
    """The `source` of rows that name none: the question file's name without extension (`qa.jsonl` -> `qa`)."""
    return os.path.splitext(os.path.basename(os.fspath(qa_file)))[0]


def read_qa_file(path: str | os.PathLike) -> list[RawRecord]:
    """All records of a `.jsonl`, `.json` (a list of objects) or `.csv` question file, in file order."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise QAFileError(
            f"Question file not found: {path!r}. Pass the path of a .jsonl, .json or .csv file with --qa."
        )
    suffix = os.path.splitext(path)[1].lower()
    readers = {".jsonl": _read_jsonl, ".json": _read_json, ".csv": _read_csv}
    if suffix not in readers:
        raise QAFileError(f"{path!r} has an unsupported extension {suffix!r}; use one of {', '.join(QA_SUFFIXES)}.")
    return list(readers[suffix](path))


def _read_text(path: str) -> str:
    """The file decoded as UTF-8 without a leading byte-order mark; a QAFileError naming the line if it is not UTF-8.

    Decoded whole (not line by line through `open`) so that a bad byte can be located: the error of a text
    stream gives only an offset into its internal buffer.
    """
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
        found = "it starts with a UTF-16 byte-order mark" if utf16 else f"byte 0x{data[err.start]:02x} is not UTF-8"
        raise QAFileError(
            f"{path} line {line}: the file is not UTF-8 text ({found}; {err.reason} at byte {err.start}). Re-save it "
            'as UTF-8 (in Excel: Save As > "CSV UTF-8"; or `iconv -f <its encoding> -t utf-8 in > out`).'
        ) from err


def _read_jsonl(path: str) -> Iterator[RawRecord]:
    name = os.path.basename(path)
    # split on "\n" only: str.splitlines would also split inside JSON strings holding raw U+2028 / U+2029
    for line_number, line in enumerate(_read_text(path).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as err:
            raise QAFileError(
                f"{path} line {line_number}: not valid JSON ({err.msg} at column {err.colno}). Each line must be "
                "one JSON object; fix or remove that line."
            ) from err
        if not isinstance(value, dict):
            raise QAFileError(f"{path} line {line_number}: expected a JSON object, got {type(value).__name__}.")
        yield RawRecord(f"{name}:{line_number}", value)


def _read_json(path: str) -> Iterator[RawRecord]:
    name = os.path.basename(path)
    try:
        value = json.loads(_read_text(path))
    except json.JSONDecodeError as err:
        raise QAFileError(
            f"{path} line {err.lineno}: not valid JSON ({err.msg} at column {err.colno}). Fix the file, or write "
            "one object per line as .jsonl."
        ) from err
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise QAFileError(f"{path}: a .json question file must hold a list of objects, got {type(value).__name__}.")
    for index, record in enumerate(value):
        yield RawRecord(f"{name}[record {index}]", record)


def _read_csv(path: str) -> Iterator[RawRecord]:
    """CSV with a header row; `options` holds a JSON list (or use columns option0, option1, ...)."""
    name = os.path.basename(path)
    with io.StringIO(_read_text(path), newline="") as handle:
        reader = csv.reader(handle, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise QAFileError(f"{path} line {reader.line_num}: not valid CSV ({err}).") from err
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                raise QAFileError(f"{path} line {reader.line_num}: not valid CSV ({err}). Check the quoting.") from err
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                raise QAFileError(
                    f"{path} line {reader.line_num}: {len(cells)} fields but the header has {len(header)}. Quote "
                    "fields that contain commas."
                )
            yield RawRecord(f"{name}:{reader.line_num}", _csv_fields(dict(zip(header, cells)), path, reader.line_num))


def _csv_fields(row: dict[str, str], path: str, line_number: int) -> dict[str, Any]:
    """CSV cells are strings: decode the `options` JSON list, gather option0..N columns, drop empty cells."""
    fields: dict[str, Any] = {k: v for k, v in row.items() if v != "" and not _is_option_column(k)}
    if "options" in fields:
        try:
            fields["options"] = json.loads(fields["options"])
        except json.JSONDecodeError as err:
            raise QAFileError(
                f'{path} line {line_number}: the options cell must be a JSON list such as ["red", "blue"] ({err.msg}).'
            ) from err
    numbered = sorted((int(k[len("option") :]), v) for k, v in row.items() if _is_option_column(k) and v != "")
    if numbered:
        fields["options"] = [v for _, v in numbered]
    for key in ("duration_seconds", "duration", "pass_rate"):
        if key in fields:
            try:
                fields[key] = float(fields[key])
            except ValueError:
                pass  # left as text: validation rejects the row and says why
    return fields


def _is_option_column(key: str) -> bool:
    return key.startswith("option") and key[len("option") :].isdigit()
