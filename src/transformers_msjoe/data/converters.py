"""Converters from public long-video multiple-choice training sets to our native question records.

A converter never drops a question, nor anything that might have been one: whatever it cannot parse is passed
on with what it found (e.g. no options), and validation rejects that row with a reason; source entries that
hold no question at all (a conversation turn that is not an object, an answer turn with no question before it,
a record without turns) become records carrying `conversion_problems`, which validation rejects with the code
`conversion_problem`. So every entry of the source file is accounted for in the build report.

`llava-video` reads the multiple-choice json of **LLaVA-Video-178K** (`lmms-lab/LLaVA-Video-178K`, files
`<subset>/*_mc_qa_processed.json`), a LLaVA-style conversation format. Assumed schema (from the published
dataset; checked against its viewer, not against a local copy):

    [{"id": "…", "video": "academic_source/Charades/XXXX.mp4", "data_source": "charades",
      "conversations": [{"from": "human", "value": "<image>\\nQuestion?\\nA. …\\nB. …\\nC. …\\nD. …\\n<instruction>"},
                        {"from": "gpt",   "value": "C."}, …more human/gpt pairs…]}]

Each human/gpt pair becomes one question: its options are the lines lettered A, B, C ... (read by the core
`prompts.split_inline_options`), its question the lines before them (minus media tokens and an "Options:"
header); the instruction lines after the options ("Answer with the option's letter ...") are prompt
boilerplate and are not kept. `video` is relative to the folder the video archives were extracted to (pass
that folder as `--videos`). Other datasets that use the same LLaVA conversation format (several long-video
sets do) read the same way.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..prompts import split_inline_options
from .qa_files import QAFileError, RawRecord, read_qa_file
from .validation import CONVERSION_PROBLEMS_FIELD

__all__ = ["CONVERTERS", "available_formats", "convert_llava_video_mcq", "read_records", "split_llava_prompt"]

_MEDIA_TOKEN = re.compile(r"<(?:image|video)>\s*", re.IGNORECASE)
_OPTIONS_HEADER = re.compile(r"^\s*(options|choices)\s*:?\s*$", re.IGNORECASE)


def split_llava_prompt(prompt: str) -> tuple[str, dict[str, str]]:
    """`(question, {letter: option text})` of a LLaVA-style MCQ prompt; no option lines: `(whole prompt, {})`.

    The option block is found by the core parser (`split_inline_options`); the question is what precedes it.
    """
    lines = _MEDIA_TOKEN.sub("", prompt).strip().splitlines()
    first = next((i for i, line in enumerate(lines) if split_inline_options(line)[1]), None)  # the "A." line
    if first is None:
        return "\n".join(lines).strip(), {}
    _, options = split_inline_options("\n".join(lines[first:]))
    question = "\n".join(line for line in lines[:first] if not _OPTIONS_HEADER.match(line)).strip()
    return question, {o.letter: o.text for o in options}


def convert_llava_video_mcq(path: str | os.PathLike) -> Iterator[RawRecord]:
    """Native question records from a LLaVA-Video-178K multiple-choice json (see the module docstring).

    Question ids are the record's `id`, plus `-r<record index>` when several records of the file share that id
    (LLaVA-Video uses the video's id, repeated across records), plus `-t<turn>` when the record holds several
    questions. Deterministic for a given file, and unique unless the source itself holds ids of that shape.
    """
    records = read_qa_file(path)
    id_counts = Counter(str(r.fields["id"]) for r in records if "id" in r.fields)
    for record_index, record in enumerate(records):
        fields = record.fields
        turns = fields.get("conversations")
        base_id = str(fields.get("id", record.location))
        if id_counts[base_id] > 1:
            base_id = f"{base_id}-r{record_index}"
        if not isinstance(turns, list) or not turns:
            problem = f"the record has no `conversations` list of human/gpt turns (got {turns!r:.60})"
            yield RawRecord(record.location, {**_common(fields), "id": base_id, CONVERSION_PROBLEMS_FIELD: [problem]})
            continue
        pairs, problems = _human_gpt_pairs(turns)
        for turn, (human, gpt) in enumerate(pairs):
            question, options = split_llava_prompt(human)
            native = {
                **_common(fields),
                "id": base_id if len(pairs) == 1 else f"{base_id}-t{turn}",
                "question": question,
                "options": options,
                "answer": gpt.strip(),
            }
            yield RawRecord(_sub_location(record.location, f"turn {turn}"), native)
        for index, problem in problems:
            yield RawRecord(
                _sub_location(record.location, f"conversations[{index}]"),
                {**_common(fields), "id": f"{base_id}-conversations{index}", CONVERSION_PROBLEMS_FIELD: [problem]},
            )


def _sub_location(location: str, part: str) -> str:
    """`qa.json[record 5]` -> `qa.json[record 5, turn 2]`."""
    return f"{location[:-1]}, {part}]" if location.endswith("]") else f"{location} ({part})"


def _common(fields: dict[str, Any]) -> dict[str, Any]:
    source = fields.get("data_source")
    out: dict[str, Any] = {"source": f"llava-video-178k/{source}" if source else "llava-video-178k"}
    if "video" in fields:
        out["video"] = fields["video"]
    return out


def _human_gpt_pairs(turns: Sequence[Any]) -> tuple[list[tuple[str, str]], list[tuple[int, str]]]:
    """(human, gpt) value pairs in order, and `(turn index, problem)` for turns that belong to no question.

    An unpaired human turn gets an empty answer (validation rejects it: missing_answer).
    """
    pairs: list[tuple[str, str]] = []
    problems: list[tuple[int, str]] = []
    pending: str | None = None
    for index, turn in enumerate(turns):
        if not isinstance(turn, dict):
            problems.append(
                (
                    index,
                    f"conversation turn {index} is a {type(turn).__name__}, not a {{from, value}} object: {turn!r:.60}",
                )
            )
            continue
        speaker, value = turn.get("from"), str(turn.get("value", ""))
        if speaker == "human":
            if pending is not None:
                pairs.append((pending, ""))
            pending = value
        elif speaker == "gpt" and pending is not None:
            pairs.append((pending, value))
            pending = None
        else:
            problems.append(
                (
                    index,
                    f"conversation turn {index} (from {speaker!r}) is not part of a human/gpt question-answer pair: {value!r:.60}",
                )
            )
    if pending is not None:
        pairs.append((pending, ""))
    return pairs, problems


CONVERTERS: dict[str, Callable[[str | os.PathLike], Iterator[RawRecord]]] = {
    "native": lambda path: iter(read_qa_file(path)),
    "llava-video": convert_llava_video_mcq,
}


def available_formats() -> list[str]:
    """Names accepted by `--format`."""
    return sorted(CONVERTERS)


def read_records(path: str | os.PathLike, qa_format: str = "native") -> list[RawRecord]:
    """Read a question file in `qa_format` into native records."""
    if qa_format not in CONVERTERS:
        raise QAFileError(f"Unknown question-file format {qa_format!r}; choose one of {available_formats()}.")
    return list(CONVERTERS[qa_format](path))
