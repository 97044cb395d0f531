"""Prompt templates of the two MLLM turns, option lettering, and parsing of queries and answers.

The one home of every prompt string and parser: inference, the trainer's rewards and the dataset tools all
import from here. The paper does not publish its prompts or output tags (PAPER.md §7); ours ask for tagged
output, `<query>...</query>` in the query turn and `<answer>X</answer>` in the answer turn, which is what the
format reward checks.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "ANSWER_TEMPLATE",
    "ANSWER_TEMPLATE_OPEN",
    "QUERY_TEMPLATE",
    "LetteredOption",
    "ParsedAnswer",
    "ParsedQueries",
    "format_options",
    "letter_options",
    "parse_answer",
    "parse_queries",
    "split_inline_options",
]

QUERY_TEMPLATE = (
    "These are {num_frames} frames sampled uniformly from a long video, at low resolution.\n"
    "Question: {question}\n"
    "{options_block}"
    "Do not answer yet. Think about which moments of the video would settle the question, then write up to "
    "{num_queries} short visual queries that describe what those moments look like (objects, people, actions, "
    "places, on-screen text), one per line, each inside <query></query> tags and under 15 words.\n"
    "Format: <think>...</think>\n<query>...</query>\n<query>...</query>"
)

ANSWER_TEMPLATE = (
    "These are {num_frames} key frames of a long video, in temporal order.\n"
    "Question: {question}\n"
    "{options_block}"
    "Answer with the letter of the correct option inside <answer></answer> tags, for example <answer>A</answer>."
)

ANSWER_TEMPLATE_OPEN = (
    "These are {num_frames} key frames of a long video, in temporal order.\n"
    "Question: {question}\n"
    "Answer briefly inside <answer></answer> tags."
)

_LETTERS = string.ascii_uppercase
# "A. text", "A) text", "(A) text", "A: text", "A text" is NOT accepted (too ambiguous with words like "A dog").
_LETTERED = re.compile(r"^\s*\(?([A-Z])[\.\):]\s*(.*)$", re.DOTALL)


@dataclass(frozen=True)
class LetteredOption:
    letter: str
    text: str

    def __str__(self) -> str:
        return f"{self.letter}. {self.text}"


def letter_options(
    options: Sequence[str] | Mapping[str, str] | None, *, lettered: bool | None = None
) -> list[LetteredOption]:
    """Normalise multiple-choice options to `[LetteredOption("A", "..."), ...]`.

    Accepts a mapping `{"A": "cat", ...}`, a list of `LetteredOption`s, or a list of strings that either carry their letters (`"A. cat"`,
    `"(B) dog"`, `"C) ..."`) or are plain texts (lettered A, B, C ... by position). `lettered=None` detects
    the first form only when the entries start with A, B, C ... in order, so texts such as "U.S. flag" or
    ["C. 5", "D. 6"] stay texts; pass `lettered=False` for option columns whose texts are never lettered.
    Raises `ValueError` naming the problem.
    """
    if options is None:
        return []
    if isinstance(options, str):
        raise ValueError(
            "`options` must be a list of strings (e.g. ['A. cat', 'B. dog'] or ['cat', 'dog']) or a dict "
            f"{{'A': 'cat'}}, got a single string {options[:60]!r}."
        )
    if isinstance(options, Mapping):
        pairs = [(str(k).strip().upper(), str(v).strip()) for k, v in options.items()]
    elif all(isinstance(o, LetteredOption) for o in options):  # already normalised, e.g. by a dataset reader
        pairs = [(o.letter, o.text) for o in options]
    else:
        pairs = _list_pairs([str(o) for o in options], lettered)
    letters = [letter for letter, _ in pairs]
    if any(len(letter) != 1 or letter not in _LETTERS for letter in letters):
        raise ValueError(f"Option letters must be single letters A-Z, got {letters}.")
    if len(set(letters)) != len(letters):
        raise ValueError(f"Option letters must be unique, got {letters}.")
    if any(not text for _, text in pairs):
        raise ValueError(f"Every option needs a text after its letter, got {[str(o) for o in options]}.")
    return [LetteredOption(letter, text) for letter, text in pairs]


def _list_pairs(items: list[str], lettered: bool | None) -> list[tuple[str, str]]:
    matches = [_LETTERED.match(item) for item in items]
    in_order = [bool(m) and m.group(1) == _LETTERS[i % 26] for i, m in enumerate(matches)]
    if lettered is None:
        if items and all(in_order):
            lettered = True
        elif items and in_order[0]:
            bad = in_order.index(False)
            raise ValueError(
                f"`options` look lettered ({items[0]!r}) but entry {bad} is {items[bad]!r}, not "
                f"'{_LETTERS[bad]}. ...'. Letter every option in order, or pass lettered=False if the texts merely "
                "start with letters."
            )
    if lettered:
        if not all(matches):
            raise ValueError(
                f"lettered=True but {items[[bool(m) for m in matches].index(False)]!r} has no 'X. ' label."
            )
        return [(m.group(1), m.group(2).strip()) for m in matches]
    if len(items) > len(_LETTERS):
        raise ValueError(f"At most {len(_LETTERS)} options can be lettered, got {len(items)}.")
    return [(_LETTERS[i], item.strip()) for i, item in enumerate(items)]


_INLINE_OPTION = re.compile(r"^\s*\(?([A-Z])[\.\):]\s*(.+?)\s*$", re.MULTILINE)


def split_inline_options(text: str) -> tuple[str, list[LetteredOption]]:
    """Split a question whose options are written on their own lines ("(A) cat" / "A. cat") into the question
    stem and its options; used by benchmark adapters and dataset converters. No option lines: `(text, [])`."""
    lines = text.splitlines()
    matches = [_INLINE_OPTION.match(line) for line in lines]
    first = next((i for i, m in enumerate(matches) if m and m.group(1) == "A"), None)
    if first is None:
        return text.strip(), []
    options, end = [], first
    for m in matches[first:]:
        if not m or m.group(1) != _LETTERS[len(options)]:
            break
        options.append(LetteredOption(m.group(1), m.group(2)))
        end += 1
    stem = "\n".join(lines[:first] + lines[end:]).strip()
    return stem, options


def format_options(options: Sequence[LetteredOption]) -> str:
    """The options block inserted in both prompts (empty for open-ended questions)."""
    if not options:
        return ""
    return "Options:\n" + "\n".join(str(o) for o in options) + "\n"


@dataclass(frozen=True)
class ParsedQueries:
    queries: list[str]
    well_formed: bool  # every query came from <query> tags and none was dropped for length or emptiness


_QUERY_TAG = re.compile(r"<query>(.*?)</query>", re.DOTALL | re.IGNORECASE)
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_LIST_ITEM = re.compile(r"^\s*(?:\d+[\.\)]|[-*•])\s+(.+?)\s*$", re.MULTILINE)


def parse_queries(text: str, max_queries: int) -> ParsedQueries:
    """Extract up to `max_queries` visual queries from the query turn's output.

    Tagged queries win; otherwise numbered or bulleted lines after the reasoning are accepted (not well formed).
    Duplicates (case-insensitive) and empty queries are dropped. An empty result means "nothing parsable":
    the caller falls back to the question and flags it.
    """
    tagged = [q.strip() for q in _QUERY_TAG.findall(text)]
    well_formed = bool(tagged)
    candidates = tagged if tagged else _LIST_ITEM.findall(_THINK.sub("", text))
    queries: list[str] = []
    seen: set[str] = set()
    for query in candidates:
        query = " ".join(query.split())
        if query and query.lower() not in seen:
            seen.add(query.lower())
            queries.append(query)
    if len(queries) != len(candidates) or len(queries) > max_queries:
        well_formed = False
    return ParsedQueries(queries[:max_queries], well_formed)


@dataclass(frozen=True)
class ParsedAnswer:
    text: str  # the answer inside <answer> tags, or the whole output when untagged
    option: str | None  # the option letter, when one of `letters` could be identified
    well_formed: bool  # output had exactly one <answer>...</answer> block


_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)


def parse_answer(text: str, letters: Sequence[str] = ()) -> ParsedAnswer:
    """Parse the answer turn: the `<answer>` content and, for multiple choice, the option letter.

    The letter is read from the tagged answer if present, else from the whole output, accepting `B`, `B.`,
    `(B)`, `B) text`, `Answer: B` and `The answer is B`; a letter not in `letters` is not an option.
    """
    tags = _ANSWER_TAG.findall(text)
    body = tags[-1].strip() if tags else _THINK.sub("", text).strip()
    option = _find_letter(body, letters) if letters else None
    return ParsedAnswer(text=body, option=option, well_formed=len(tags) == 1)


def _find_letter(body: str, letters: Sequence[str]) -> str | None:
    allowed = "".join(sorted(set(letters)))
    if not allowed:
        return None
    text = re.sub(r"[*_`]", "", body).strip()  # markdown emphasis: "**B**"
    if len(text.rstrip(".)").lstrip("(")) == 1 and text.rstrip(".)").lstrip("(").upper() in allowed:
        return text.rstrip(".)").lstrip("(").upper()  # a lone letter, any case: "b", "(B)", "B."
    stated = re.findall(rf"(?i:answer)\s*(?:(?i:is)\s*:?|:)?\s*\(?([{allowed}])\b", text)
    if stated:  # "the answer is: B", "Option A is wrong; the answer is B" -> the last stated answer
        return stated[-1]
    leading = re.match(rf"^\(?([{allowed}])(?:[\.\):,]|\s*$)", text)  # "B. text", "(B) text"; not "A dog"
    if leading:
        return leading.group(1)
    chosen = re.findall(rf"(?i:option)\s*\(?([{allowed}])\b", text)  # "I choose option C"
    return chosen[-1] if chosen else None
