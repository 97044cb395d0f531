"""Validation of question records against a video folder: every row kept or rejected with its reasons.

Checks, each with a reason code in the report:
  conversion_problem (what a converter could not turn into a question), missing_video, ambiguous_video,
  unsupported_container, undecodable_video (open + decode probe frames with the core `open_video`),
  video_id_conflict, duplicate_id, duplicate_question, empty_question, bad_options, option_count,
  duplicate_options, missing_answer, answer_not_in_options, ambiguous_answer, bad_pass_rate, bad_duration,
  duration_mismatch, bad_split.
Duplicates (ids, questions, video ids) are judged against the rows kept so far: the first VALID copy is kept,
every other copy is rejected naming it. Files in the video folder that no question mentions are reported (not
an error); so are unknown fields.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from tqdm.auto import tqdm

from ..prompts import letter_options
from ..video_io import VideoDecodeError, VideoInfo, open_video, plan_uniform_timestamps
from .qa_files import RawRecord
from .schema import (
    OPTION_LETTERS,
    SUPPORTED_VIDEO_EXTENSIONS,
    VIDEOS_SUBDIR,
    check_split_name,
)

__all__ = ["Issue", "RejectedRow", "ValidationOptions", "ValidationResult", "probe_video", "validate_records"]

# Set by converters (`converters.py`) on records they could not turn into a question: rejected with these messages.
CONVERSION_PROBLEMS_FIELD = "conversion_problems"
KNOWN_FIELDS = frozenset(
    {"id", "question_id", "video", "video_id", "question", "options", "answer", "question_type", "duration",
     "duration_seconds", "pass_rate", "source", "split", CONVERSION_PROBLEMS_FIELD}
)  # fmt: skip
_UNSAFE_FILENAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class Issue:
    code: str
    message: str


@dataclass
class RejectedRow:
    location: str
    id: str | None
    video: str | None
    reasons: list[Issue]


@dataclass(frozen=True)
class ValidationOptions:
    """Knobs of the validation (all exposed by `msjoe data build`)."""

    min_options: int = 2
    max_options: int = 10
    probe_frames: int = 3  # frames decoded per video to prove it decodes (0: open the container only)
    duration_tolerance_seconds: float = 5.0  # a given duration may differ from the probe by max(this, 5 %)
    default_split: str = "train"
    default_source: str | None = None
    probe_workers: int = 1


@dataclass
class ValidationResult:
    rows: list[dict[str, Any]]  # accepted rows: schema columns + "split", "video_path" (absolute), "file_name"
    rejected: list[RejectedRow]
    unreferenced_files: list[str]  # relative to the video folder
    ignored_fields: dict[str, int]  # unknown field name -> number of rows carrying it
    notes: list[str] = field(default_factory=list)

    def reason_counts(self) -> dict[str, int]:
        return dict(Counter(issue.code for row in self.rejected for issue in row.reasons))

    def rows_by_split(self) -> dict[str, list[dict[str, Any]]]:
        """The accepted rows grouped by split, splits in sorted order, rows in file order within each."""
        grouped: dict[str, list[dict[str, Any]]] = {}
        for row in self.rows:
            grouped.setdefault(row["split"], []).append(row)
        return dict(sorted(grouped.items()))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationResult:
        """The inverse of `dataclasses.asdict(result)`: how the builder reloads the report of a cached build."""
        rejected = [
            RejectedRow(r["location"], r["id"], r["video"], [Issue(**issue) for issue in r["reasons"]])
            for r in data["rejected"]
        ]
        return cls(
            list(data["rows"]), rejected, list(data["unreferenced_files"]), dict(data["ignored_fields"]),
            list(data.get("notes", [])),
        )  # fmt: skip

    def to_report(self) -> dict[str, Any]:
        """JSON-ready report: counts, every rejected row with its reasons, unreferenced files, notes."""
        return {
            "kept": len(self.rows),
            "rejected": len(self.rejected),
            "rejected_by_reason": self.reason_counts(),
            "rejected_rows": [asdict(row) for row in self.rejected],
            "unreferenced_files": self.unreferenced_files,
            "ignored_fields": self.ignored_fields,
            "notes": self.notes,
        }


def probe_video(path: str, probe_frames: int = 3) -> VideoInfo:
    """Open `path` and decode `probe_frames` frames spread over it; raises `VideoDecodeError` naming the problem."""
    reader = open_video(path)
    if probe_frames > 0:
        reader.frames_at(plan_uniform_timestamps(reader.info.duration_seconds, probe_frames, reader.begin_seconds))
    return reader.info


class _VideoIndex:
    """The files of the video folder, looked up by relative path or by name without extension."""

    def __init__(self, videos_dir: str):
        self.root = os.path.abspath(videos_dir)
        if not os.path.isdir(self.root):
            raise ValueError(
                f"Video folder not found: {videos_dir!r}. Pass the folder holding the videos with --videos."
            )
        self.files: list[str] = []
        for folder, dirs, names in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            rel_folder = os.path.relpath(folder, self.root)
            self.files += [
                os.path.normpath(os.path.join(rel_folder, n)).replace(os.sep, "/")
                for n in sorted(names)
                if not n.startswith(".")
            ]
        self.by_stem: dict[str, list[str]] = {}
        for rel in self.files:
            if os.path.splitext(rel)[1].lower() in SUPPORTED_VIDEO_EXTENSIONS:
                for key in {os.path.splitext(rel)[0], os.path.splitext(os.path.basename(rel))[0]}:
                    self.by_stem.setdefault(key, []).append(rel)

    def resolve(self, video: str | None, video_id: str | None) -> tuple[str, str] | Issue:
        """`(relative path, video_id)` of the row's video, or the issue that prevents finding it."""
        if video:
            rel = os.path.normpath(str(video)).replace(os.sep, "/")
            if os.path.isabs(rel) or rel == ".." or rel.startswith("../"):
                return Issue(
                    "missing_video",
                    f"video path {video!r} is not inside the video folder {self.root}; give it relative to that folder",
                )
            if not os.path.isfile(os.path.join(self.root, rel)):
                return Issue("missing_video", f"video file {rel!r} not found under {self.root}")
            if os.path.splitext(rel)[1].lower() not in SUPPORTED_VIDEO_EXTENSIONS:
                return Issue(
                    "unsupported_container",
                    f"{rel!r} is not one of {', '.join(SUPPORTED_VIDEO_EXTENSIONS)} (the only containers the Hub loader "
                    "fetches); re-mux it, e.g. `ffmpeg -i in.webm -c:v libx264 out.mp4`",
                )
            return rel, str(video_id) if video_id else os.path.splitext(rel)[0]
        matches = self.by_stem.get(str(video_id), [])
        if not matches:
            return Issue(
                "missing_video", f"no file named {video_id}{{{','.join(SUPPORTED_VIDEO_EXTENSIONS)}}} under {self.root}"
            )
        if len(matches) > 1:
            return Issue(
                "ambiguous_video", f"several files match video_id {video_id!r}: {matches}; give `video` to pick one"
            )
        return matches[0], str(video_id)


def _normalize_options(raw: Any, opts: ValidationOptions) -> list[str] | Issue:
    if raw is None:
        return Issue("option_count", "the row has no options; give a list of option texts")
    if isinstance(raw, dict):
        candidate: Any = {str(k): v for k, v in raw.items()}
    elif isinstance(raw, list) and all(isinstance(o, (str, int, float)) and not isinstance(o, bool) for o in raw):
        candidate = [str(o) for o in raw]
    else:
        return Issue("bad_options", f"options must be a list of strings or a {{letter: text}} object, got {raw!r:.80}")
    try:
        lettered = letter_options(candidate)  # the input may carry letters ("A. red"); what is stored never does
    except ValueError as err:
        return Issue(
            "bad_options", f'{err} In a question file, give such options as an object {{"A": text, "B": text}}.'
        )
    letters = [o.letter for o in lettered]
    expected = list(OPTION_LETTERS[: len(lettered)])
    if letters != expected:
        return Issue(
            "bad_options", f"option letters must be {', '.join(expected)} in this order, got {', '.join(letters)}"
        )
    texts = [o.text for o in lettered]  # stored as plain texts: readers letter them by position (`lettered_options`)
    if not opts.min_options <= len(texts) <= opts.max_options:
        return Issue(
            "option_count",
            f"{len(texts)} options; rows need between {opts.min_options} and {opts.max_options} (--min-options/--max-options)",
        )
    repeated = sorted(t for t, n in Counter(_option_key(t) for t in texts).items() if n > 1)
    if repeated:
        return Issue("duplicate_options", f"the same option text appears more than once: {repeated}")
    return texts


# A ground-truth key written as a letter: "B", "b", "B.", "B)", "B:", "(B)", "[B]", optionally followed by that
# option's text ("B. blue", "(B) blue"). A letter needs a delimiter before any text, so "Blue" is not "B" + "lue".
_ANSWER_LETTER = re.compile(
    r"^(?:\((?P<paren>[A-Za-z])\)|\[(?P<bracket>[A-Za-z])\]|(?P<bare>[A-Za-z])(?:[.):]|$))\s*(?P<rest>.*)$", re.DOTALL
)


def _option_key(text: str) -> str:
    """An option text as people compare them: case, runs of spaces and a final period do not matter. The one
    comparison of option texts, so that options unique under it can be matched by an answer key without doubt."""
    return " ".join(text.casefold().split()).rstrip(".").rstrip()


def _same_text(a: str, b: str) -> bool:
    return _option_key(a) == _option_key(b)


def _normalize_answer(raw: Any, texts: Sequence[str]) -> str | Issue:
    """The answer key as a letter: a letter (optionally decorated, optionally with its option's text) or one
    option's text. Reject, never guess, when the two readings disagree.

    Why strict: this is ground truth, so the lenient model-output parser (`prompts.parse_answer`, which finds "B"
    in "The answer is B, not A") must not be used, and a key such as "C" with options ["C", "B", "A"] is
    ambiguous (letter C, or the text of option A): a silently wrong key corrupts the pass rate and the reward.
    """
    letters = list(OPTION_LETTERS[: len(texts)])
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return Issue("missing_answer", "the row has no answer; give the correct option's letter")
    if not isinstance(raw, str):
        return Issue("answer_not_in_options", f"answer {raw!r} is not text: give the option letter (e.g. 'B') or the option's text (numbers are ambiguous: 0- or 1-based?)")  # fmt: skip
    key = raw.strip()
    by_text = next(
        (i for i, t in enumerate(texts) if _same_text(key, t)), None
    )  # options are unique under `_option_key`
    match = _ANSWER_LETTER.match(key)
    if match is None:
        if by_text is not None:
            return letters[by_text]
        return Issue("answer_not_in_options", f"answer {key!r:.60} is neither one of the option letters {letters[0]}-{letters[-1]} (e.g. 'B' or 'B. <its text>') nor an option's exact text")  # fmt: skip
    letter = (match["paren"] or match["bracket"] or match["bare"]).upper()
    rest = match["rest"].strip()
    by_letter = letters.index(letter) if letter in letters else None
    letter_agrees = by_letter is not None and (not rest or _same_text(rest, texts[by_letter]))
    if by_text is not None:
        if by_letter == by_text or (rest and not letter_agrees):
            return letters[by_text]  # e.g. "A. Lincoln" is option B's exact text, and not "A" + option A's text
        return Issue(
            "ambiguous_answer",
            f"answer {key!r:.60} is both the letter {letter} and the text of option {letters[by_text]} "
            f"({texts[by_text]!r:.40}); give the letter with its text (e.g. '{letters[by_text]}. {texts[by_text]:.20}')",
        )
    if by_letter is None:
        return Issue("answer_not_in_options", f"answer {key!r:.60} names option {letter}, but the options are {letters[0]}-{letters[-1]}")  # fmt: skip
    if not letter_agrees:
        return Issue(
            "ambiguous_answer",
            f"answer {key!r:.60} names option {letter}, but option {letter} is {texts[by_letter]!r:.40}, not "
            f"{rest!r:.40}; fix the letter or the text",
        )
    return letter


def _normalize_fields(record: RawRecord, opts: ValidationOptions, issues: list[Issue]) -> dict[str, Any]:
    """The schema fields of a record (except video/id), appending every problem to `issues`."""
    f = record.fields
    question = f.get("question")
    if not isinstance(question, str) or not question.strip():
        issues.append(Issue("empty_question", "the question is empty or missing"))
    options = _normalize_options(f.get("options"), opts)
    answer: str | Issue | None = None
    if isinstance(options, Issue):
        issues.append(options)
    else:
        answer = _normalize_answer(f.get("answer"), options)
        if isinstance(answer, Issue):
            issues.append(answer)
    pass_rate = f.get("pass_rate")
    if pass_rate is not None and (
        isinstance(pass_rate, bool) or not isinstance(pass_rate, (int, float)) or not 0.0 <= pass_rate <= 1.0
    ):
        issues.append(Issue("bad_pass_rate", f"pass_rate must be a number in [0, 1] or null, got {pass_rate!r}"))
    duration = f.get("duration_seconds", f.get("duration"))
    if duration is not None and (
        isinstance(duration, bool) or not isinstance(duration, (int, float)) or not duration > 0
    ):
        issues.append(Issue("bad_duration", f"duration must be a positive number of seconds, got {duration!r}"))
    split = str(f.get("split") or opts.default_split)
    try:
        check_split_name(split)
    except ValueError as err:
        issues.append(Issue("bad_split", str(err)))
    question_type = f.get("question_type")
    return {
        "question": question.strip() if isinstance(question, str) else "",
        "options": options if isinstance(options, list) else [],
        "answer": answer if isinstance(answer, str) else "",
        "question_type": str(question_type).strip() or None if question_type is not None else None,
        "pass_rate": float(pass_rate)
        if isinstance(pass_rate, (int, float)) and not isinstance(pass_rate, bool)
        else None,
        "source": str(f.get("source") or opts.default_source or "") or None,
        "split": split,
        "_given_duration": duration if isinstance(duration, (int, float)) else None,
    }


@dataclass
class _Candidate:
    record: RawRecord
    row: dict[str, Any]
    issues: list[Issue]
    rel_video: str | None = None
    settled: bool = False  # rejected before the cross-row checks (converter problems): skip them


def _safe_file_name(video_id: str, rel_video: str) -> str:
    """`videos/<video_id with unsafe characters replaced><extension>`."""
    stem = _UNSAFE_FILENAME_CHARS.sub("_", video_id).lstrip(".") or "video"
    return f"{VIDEOS_SUBDIR}/{stem}{os.path.splitext(rel_video)[1].lower()}"


def _probe_all(paths: Sequence[str], opts: ValidationOptions, show_progress: bool) -> dict[str, VideoInfo | Issue]:
    def probe(path: str) -> VideoInfo | Issue:
        try:
            return probe_video(path, opts.probe_frames)
        except VideoDecodeError as err:
            return Issue("undecodable_video", str(err))

    with ThreadPoolExecutor(max_workers=max(1, opts.probe_workers)) as pool:
        results = list(tqdm(pool.map(probe, paths), total=len(paths), desc="probing videos", disable=not show_progress))
    return dict(zip(paths, results))


@dataclass
class _Kept:
    """What the rows kept so far claim; duplicates and conflicts are judged against these only, so a first copy
    rejected for another reason does not take a later valid copy down with it."""

    ids: dict[str, str] = field(default_factory=dict)  # id -> location
    questions: dict[tuple, str] = field(default_factory=dict)  # (video_id, normalised question, options) -> location
    file_of_video: dict[str, str] = field(default_factory=dict)  # video_id -> video path under the folder
    video_of_file: dict[tuple[str, str], str] = field(default_factory=dict)  # (split, stored file name) -> video_id

    def conflicts(self, cand: _Candidate) -> list[Issue]:
        row, rel, issues = cand.row, cand.rel_video, []
        if rel is not None:
            vid = row["video_id"]
            if self.file_of_video.get(vid, rel) != rel:
                issues.append(
                    Issue(
                        "video_id_conflict", f"video_id {vid!r} already names {self.file_of_video[vid]!r}, not {rel!r}"
                    )
                )
            owner = self.video_of_file.get((row["split"], row["file_name"]), vid)
            if owner != vid:
                issues.append(
                    Issue(
                        "video_id_conflict",
                        f"video ids {owner!r} and {vid!r} both map to file name {row['file_name']!r}; rename one",
                    )
                )
        if row["id"] is not None and row["id"] in self.ids:
            issues.append(Issue("duplicate_id", f"id {row['id']!r} was already used at {self.ids[row['id']]}"))
        if rel is not None and row["question"] and _question_key(row) in self.questions:
            issues.append(
                Issue(
                    "duplicate_question",
                    f"the same question and options for this video appear at {self.questions[_question_key(row)]}",
                )
            )
        return issues

    def add(self, cand: _Candidate) -> None:
        row, loc = cand.row, cand.record.location
        self.ids[row["id"]] = loc
        self.questions[_question_key(row)] = loc
        self.file_of_video.setdefault(row["video_id"], cand.rel_video)
        self.video_of_file.setdefault((row["split"], row["file_name"]), row["video_id"])


def _question_key(row: dict[str, Any]) -> tuple:
    return row["video_id"], " ".join(row["question"].casefold().split()), tuple(row["options"])


def _check_video(
    cand: _Candidate, index: _VideoIndex, probes: dict[str, VideoInfo | Issue], opts: ValidationOptions
) -> None:
    """Stored file name, decode probe and duration of a row whose video was found."""
    row = cand.row
    row["file_name"] = _safe_file_name(row["video_id"], cand.rel_video)
    probe = probes[os.path.join(index.root, cand.rel_video)]
    if isinstance(probe, Issue):
        cand.issues.append(probe)
        return
    row["duration_seconds"] = round(probe.duration_seconds, 3)
    given = row["_given_duration"]
    if given is not None and abs(given - probe.duration_seconds) > max(
        opts.duration_tolerance_seconds, 0.05 * probe.duration_seconds
    ):
        cand.issues.append(
            Issue(
                "duration_mismatch",
                f"the row says {given:g}s but the file lasts {probe.duration_seconds:.1f}s; wrong video?",
            )
        )


def _check_rows(
    candidates: list[_Candidate], index: _VideoIndex, probes: dict[str, VideoInfo | Issue], opts: ValidationOptions
) -> None:
    """Per-row video checks, then the cross-row checks against the valid rows before it, in file order."""
    kept = _Kept()
    per_video_count: Counter[str] = Counter()
    for cand in candidates:
        if cand.settled:
            continue
        if cand.rel_video is not None:
            _check_video(cand, index, probes, opts)
            vid = cand.row["video_id"]
            if cand.row["id"] is None:
                cand.row["id"] = f"{vid}-{per_video_count[vid]}"
            per_video_count[vid] += 1
        cand.issues += kept.conflicts(cand)
        if not cand.issues:
            kept.add(cand)


def _candidate(record: RawRecord, index: _VideoIndex, opts: ValidationOptions) -> _Candidate:
    """A record's normalised fields, its video resolved, and the problems found so far (no cross-row checks)."""
    problems = record.fields.get(CONVERSION_PROBLEMS_FIELD)
    if problems:  # nothing else to judge: the converter found no question here
        messages = problems if isinstance(problems, list) else [problems]
        raw_id = record.fields.get("id")
        return _Candidate(
            record,
            {"id": None if raw_id is None else str(raw_id)},
            [Issue("conversion_problem", str(m)) for m in messages],
            settled=True,
        )
    issues: list[Issue] = []
    row = _normalize_fields(record, opts, issues)
    raw_id = record.fields.get("id", record.fields.get("question_id"))
    row["id"] = str(raw_id).strip() or None if raw_id is not None else None
    video, video_id = record.fields.get("video"), record.fields.get("video_id")
    cand = _Candidate(record, row, issues)
    if not video and not video_id:
        issues.append(
            Issue("missing_video", "the row names no video: give `video` (a path under the video folder) or `video_id`")
        )
        return cand
    resolved = index.resolve(video, video_id)
    if isinstance(resolved, Issue):
        issues.append(resolved)
    else:
        cand.rel_video, row["video_id"] = resolved
    return cand


def validate_records(
    records: Iterable[RawRecord],
    videos_dir: str | os.PathLike,
    options: ValidationOptions | None = None,
    *,
    show_progress: bool = True,
) -> ValidationResult:
    """Validate every record against `videos_dir`; accepted rows are ready for the writer, the rest carry reasons."""
    opts = options or ValidationOptions()
    index = _VideoIndex(os.fspath(videos_dir))
    candidates: list[_Candidate] = []
    ignored: Counter[str] = Counter()
    for record in records:
        ignored.update(k for k in record.fields if k not in KNOWN_FIELDS)
        candidates.append(_candidate(record, index, opts))
    paths = sorted({os.path.join(index.root, c.rel_video) for c in candidates if c.rel_video is not None})
    _check_rows(candidates, index, _probe_all(paths, opts, show_progress), opts)
    mentioned = {c.rel_video for c in candidates if c.rel_video} | {
        os.path.normpath(str(c.record.fields["video"])).replace(os.sep, "/")
        for c in candidates
        if c.record.fields.get("video")
    }
    result = ValidationResult([], [], [f for f in index.files if f not in mentioned], dict(ignored))
    for cand in candidates:
        if cand.issues:
            result.rejected.append(
                RejectedRow(
                    cand.record.location,
                    cand.row.get("id"),
                    cand.record.fields.get("video") or cand.record.fields.get("video_id"),
                    cand.issues,
                )
            )
        else:
            row = {k: v for k, v in cand.row.items() if not k.startswith("_")}
            row["video_path"] = os.path.join(index.root, cand.rel_video)
            result.rows.append(row)
    splits_of_video: dict[str, set[str]] = {}
    for row in result.rows:
        splits_of_video.setdefault(row["video_id"], set()).add(row["split"])
    shared = sorted(v for v, s in splits_of_video.items() if len(s) > 1)
    if shared:
        result.notes.append(
            f"{len(shared)} videos appear in several splits (stored once per split; check for leakage): {shared[:10]}"
        )
    return result
