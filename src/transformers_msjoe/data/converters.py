"""Converters from public long-video multiple-choice training sets to our native question records.

A converter never drops a question: whatever it cannot parse is passed on with what it found (e.g. no
options), and validation rejects that row with a reason.

`llava-video` reads the multiple-choice json of **LLaVA-Video-178K** (`lmms-lab/LLaVA-Video-178K`, files
`<subset>/*_mc_qa_processed.json`), a LLaVA-style conversation format. Assumed schema (from the published
dataset; checked against its viewer, not against a local copy):

    [{"id": "…", "video": "academic_source/Charades/XXXX.mp4", "data_source": "charades",
      "conversations": [{"from": "human", "value": "<image>\\nQuestion?\\nA. …\\nB. …\\nC. …\\nD. …\\n<instruction>"},
                        {"from": "gpt",   "value": "C."}, …more human/gpt pairs…]}]

Each human/gpt pair becomes one question. `video` is relative to the folder the video archives were
extracted to (pass that folder as `--videos`). Other datasets that use the same LLaVA conversation format
(several long-video sets do) read the same way.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .qa_files import QAFileError, RawRecord, read_qa_file

__all__ = ["CONVERTERS", "available_formats", "convert_llava_video_mcq", "read_records", "split_mcq_prompt"]

_MEDIA_TOKEN = re.compile(r"<(?:image|video)>\s*", re.IGNORECASE)
# An option line of a prompt: "A. text", "A) text", "(A) text", "A: text".
_OPTION_LINE = re.compile(r"^\s*\(?([A-Z])[\.\):]\s+\S")
_OPTIONS_HEADER = re.compile(r"^\s*(options|choices)\s*:?\s*$", re.IGNORECASE)


def split_mcq_prompt(prompt: str) -> tuple[str, list[str]]:
    """Split a prompt that inlines lettered options into `(question, option_lines)`.

    The question is every line before the first option line (an "Options:" header is dropped); option lines
    are the consecutive lines lettered A, B, C ...; trailing instruction lines ("Answer with the option's
    letter ...") are dropped. No option lines means `(whole prompt, [])`.
    """
    lines = _MEDIA_TOKEN.sub("", prompt).strip().splitlines()
    start = next((i for i, line in enumerate(lines) if (m := _OPTION_LINE.match(line)) and m.group(1) == "A"), None)
    if start is None:
        return "\n".join(lines).strip(), []
    options = []
    for line in lines[start:]:
        match = _OPTION_LINE.match(line)
        if not match or match.group(1) != chr(ord("A") + len(options)):
            break
        options.append(line.strip())
    question_lines = [line for line in lines[:start] if not _OPTIONS_HEADER.match(line)]
    return "\n".join(question_lines).strip(), options


def convert_llava_video_mcq(path: str | os.PathLike) -> Iterator[RawRecord]:
    """Native question records from a LLaVA-Video-178K multiple-choice json (see the module docstring)."""
    for record in read_qa_file(path):
        fields = record.fields
        turns = fields.get("conversations")
        pairs = _human_gpt_pairs(turns) if isinstance(turns, list) else []
        if not pairs:
            yield RawRecord(record.location, {**_common(fields), "question": ""})  # rejected later: empty question
            continue
        for turn, (human, gpt) in enumerate(pairs):
            question, option_lines = split_mcq_prompt(human)
            base_id = str(fields.get("id", record.location))
            native = {
                **_common(fields),
                "id": base_id if len(pairs) == 1 else f"{base_id}-{turn}",
                "question": question,
                "options": option_lines,
                "answer": gpt.strip(),
            }
            yield RawRecord(f"{record.location[:-1]}, turn {turn}]" if record.location.endswith("]") else record.location, native)


def _common(fields: dict[str, Any]) -> dict[str, Any]:
    source = fields.get("data_source")
    out: dict[str, Any] = {"source": f"llava-video-178k/{source}" if source else "llava-video-178k"}
    if "video" in fields:
        out["video"] = fields["video"]
    return out


def _human_gpt_pairs(turns: Sequence[Any]) -> list[tuple[str, str]]:
    """(human, gpt) value pairs in order; an unpaired human turn gets an empty answer (rejected later)."""
    pairs: list[tuple[str, str]] = []
    pending: str | None = None
    for turn in turns:
        if not isinstance(turn, dict):
            continue
        speaker, value = turn.get("from"), str(turn.get("value", ""))
        if speaker == "human":
            if pending is not None:
                pairs.append((pending, ""))
            pending = value
        elif speaker == "gpt" and pending is not None:
            pairs.append((pending, value))
            pending = None
    if pending is not None:
        pairs.append((pending, ""))
    return pairs


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
