"""The four long-video benchmarks as lmms-eval tasks: official scoring, local videos, options passed separately.

Each task folder (`tasks/<benchmark>/utils.py`) takes its prompt (`doc_to_text`), scoring (`process_results`)
and aggregation from lmms-eval's own `lmms_eval.tasks.<benchmark>.utils`, so the numbers are the official ones,
and takes from here only what lmms-eval gets wrong for a plugin:

  - **where the videos are.** lmms-eval looks under `$HF_HOME/<its cache folder>` and downloads the Hub repo
    there when it is missing; we read the user's pre-downloaded copy from `MSJOE_<BENCHMARK>_VIDEO_ROOT`
    (default: lmms-eval's own location, with a correct `HF_HOME` default — MLVU's utils fall back to the
    relative path `./~/.cache/huggingface`), and a missing video is an error that names the variable to set.
  - **the question and its options as separate fields.** `process_docs` adds `msjoe_question` (the question
    stem) and `msjoe_options` (`["A. ...", "B. ...", ...]`, lettered as the official scorer letters them) to
    every doc; MSJoE's query turn reasons over the options. Video-MME, LongVideoBench and LVBench store options
    in columns, lettered by position exactly as the official prompt and scorer letter them (`letter_options(...,
    lettered=False)`: an option text such as "C. 5" or "U.S. flag" is a text, not a label; Video-MME's column
    holds "A. ..." labels). MLVU, and LVBench rows without the column, write them into the question as
    `(A) ...` lines, split off with `prompts.split_inline_options`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from transformers.utils import logging

from ..prompts import letter_options, split_inline_options

logger = logging.get_logger(__name__)

__all__ = [
    "BENCHMARKS",
    "MSJOE_OPTIONS",
    "MSJOE_QUESTION",
    "Benchmark",
    "add_msjoe_fields",
    "get_benchmark",
    "official_task_utils",
]

MSJOE_QUESTION = "msjoe_question"  # doc field: the question without its options
MSJOE_OPTIONS = "msjoe_options"  # doc field: ["A. ...", ...]; empty for an open question


def _hf_home() -> str:
    from huggingface_hub import constants

    return os.path.expanduser(constants.HF_HOME)


def _lettered(options: Sequence[str], *, lettered: bool) -> list[str]:
    """`letter_options` as the `"A. text"` strings stored in `msjoe_options`."""
    return [str(o) for o in letter_options(list(options), lettered=lettered)]


def _inline(question: str) -> tuple[str, list[str]]:
    """A question with its options on their own lines ("(A) ..."): the stem and the lettered options.

    No option lines, or nothing but option lines: `(question, [])`, answered as an open question (and counted in
    `add_msjoe_fields`' warning); the official scorer still reads a letter from the answer.
    """
    stem, options = split_inline_options(question)
    if not options or not stem:
        return question.strip(), []
    return stem, [str(o) for o in options]


def _videomme_fields(doc: Mapping[str, Any]) -> tuple[str, list[str]]:
    # the column holds "A. ..." strings and the official prompt prints them as they are
    return doc["question"], _lettered(doc["options"], lettered=True)


def _longvideobench_fields(doc: Mapping[str, Any]) -> tuple[str, list[str]]:
    texts = []
    for i in range(5):  # option0..option4; the official scorer letters options up to the first "N/A"
        value = doc.get(f"option{i}")
        if value is None or value == "N/A":
            break
        texts.append(value)
    return doc["question"], _lettered(texts, lettered=False)  # plain texts, even "C. 5" or "U.S. flag"


def _lvbench_fields(doc: Mapping[str, Any]) -> tuple[str, list[str]]:
    options = doc.get("options") or []
    if options:  # the official prompt appends them as "(A) <text>" by position, whatever the text looks like
        return doc["question"], _lettered(options, lettered=False)
    return _inline(doc["question"])


def _mlvu_fields(doc: Mapping[str, Any]) -> tuple[str, list[str]]:
    return _inline(doc["question"])  # the official prompt is the question text as is


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: where its videos are by default, how a doc names its video, how to read its options.

    Args:
        name: the lmms-eval task folder (`lmms_eval.tasks.<name>`).
        video_root_env: environment variable holding the folder of the user's copy of the videos.
        default_video_subdir: lmms-eval's own video folder, relative to `$HF_HOME`.
        video_field: the doc field naming the video.
        video_suffixes: appended to the field in turn until a file exists (Video-MME stores ids without suffix).
        fields: `doc -> (question stem, lettered options)`.
    """

    name: str
    video_root_env: str
    default_video_subdir: str
    video_field: str
    video_suffixes: tuple[str, ...]
    fields: Callable[[Mapping[str, Any]], tuple[str, list[str]]]

    def video_root(self) -> str:
        """The folder holding this benchmark's videos: `$<video_root_env>`, else lmms-eval's location."""
        root = os.environ.get(self.video_root_env, "").strip()
        return os.path.expanduser(root) if root else os.path.join(_hf_home(), self.default_video_subdir)

    def video_path(self, doc: Mapping[str, Any]) -> str:
        """Absolute path of the doc's video; `FileNotFoundError` naming the variable to set when it is missing."""
        root = self.video_root()
        base = os.path.join(root, str(doc[self.video_field]))
        tried = [base + suffix for suffix in self.video_suffixes]
        for path in tried:
            if os.path.isfile(path):
                return path
        source = (
            f"${self.video_root_env}" if os.environ.get(self.video_root_env, "").strip() else "the default location"
        )
        raise FileNotFoundError(
            f"{self.name}: video {tried[0]!r} not found (video root {root!r}, from {source}). Download the "
            f"benchmark's videos (docs/evaluation.md) and set {self.video_root_env} to the folder that holds "
            f"{doc[self.video_field]!s}{self.video_suffixes[0]}."
        )

    def doc_to_visual(self, doc: Mapping[str, Any]) -> list[str]:
        """lmms-eval's `doc_to_visual`: the one video of the doc."""
        return [self.video_path(doc)]

    def question_and_options(self, doc: Mapping[str, Any]) -> tuple[str, list[str]]:
        """The question stem and its lettered options (empty for an open question)."""
        return self.fields(doc)

    def process_docs(self, dataset: Any) -> Any:
        """lmms-eval's `process_docs`: `add_msjoe_fields` for this benchmark."""
        return add_msjoe_fields(dataset, self.name)


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark(
            "videomme",
            "MSJOE_VIDEOMME_VIDEO_ROOT",
            "videomme/data",
            "videoID",
            (".mp4", ".MP4", ".mkv"),
            _videomme_fields,
        ),
        Benchmark(
            "longvideobench",
            "MSJOE_LONGVIDEOBENCH_VIDEO_ROOT",
            "datasets/longvideobench/videos",
            "video_path",
            ("",),
            _longvideobench_fields,
        ),
        Benchmark("lvbench", "MSJOE_LVBENCH_VIDEO_ROOT", "lvbench", "video_path", ("",), _lvbench_fields),
        Benchmark("mlvu", "MSJOE_MLVU_VIDEO_ROOT", "mlvu", "video_name", ("",), _mlvu_fields),
    )
}


def get_benchmark(name: str) -> Benchmark:
    """`BENCHMARKS[name]`, or an error listing the known names (the one place an unknown benchmark is caught)."""
    if name not in BENCHMARKS:
        raise ValueError(f"Unknown benchmark {name!r}; known: {sorted(BENCHMARKS)}.")
    return BENCHMARKS[name]


def _msjoe_fields(doc: dict[str, Any], benchmark: str) -> dict[str, Any]:
    question, options = BENCHMARKS[benchmark].question_and_options(doc)
    return {MSJOE_QUESTION: question, MSJOE_OPTIONS: options}


def add_msjoe_fields(dataset: Any, benchmark: str) -> Any:
    """lmms-eval `process_docs`: every doc gains `msjoe_question` and `msjoe_options` (a `datasets.Dataset` map).

    Docs whose options cannot be found (possible only for benchmarks that embed them in the question) are
    kept as open questions and counted in a warning.
    """
    get_benchmark(benchmark)  # an unknown name fails before the map
    dataset = dataset.map(_msjoe_fields, fn_kwargs={"benchmark": benchmark}, desc=f"msjoe fields ({benchmark})")
    open_questions = sum(1 for options in dataset[MSJOE_OPTIONS] if not options)
    if open_questions:
        logger.warning(
            f"{benchmark}: {open_questions} of {len(dataset)} docs have no options MSJoE could read; they are "
            "answered as open questions (the official scorer still extracts a letter from the answer)."
        )
    return dataset


def official_task_utils(benchmark: str) -> ModuleType:
    """lmms-eval's own `lmms_eval.tasks.<benchmark>.utils` (the official prompt, scorer and aggregation)."""
    from .._compat import import_lmms_eval_task_utils

    return import_lmms_eval_task_utils(get_benchmark(benchmark).name)
