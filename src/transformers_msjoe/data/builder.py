"""`LongVideoQA`: the `datasets` builder for a raw corpus (a question file + a video folder).

This is the modern home of what used to be a loading script: `datasets` 4+ refuses scripts, so
`load_dataset("path/to/builder.py")` is not possible; instantiate the class instead:

    from transformers_msjoe.data import LongVideoQA
    builder = LongVideoQA(data_dir="raw/")            # raw/qa.jsonl (or .json / .csv) + raw/videos/
    LongVideoQA(data_dir="raw/", validation=ValidationOptions(min_options=4))   # validation knobs, as for build
    builder.download_and_prepare()
    ds = builder.as_dataset(split="train")            # the documented features, videos decodable
    builder.validation.to_report()                    # every rejected row with its reasons (also on a cache hit)

For the Hub layout (what `load_dataset("msjoe/longvideo-qa")` reads) use `msjoe data build`, which runs the
same validation and writes parquet metadata + videos + card.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import posixpath
import shutil
from dataclasses import asdict, dataclass, field

import datasets
from transformers.utils import logging

from ..citation import MSJOE_CITATION
from ..fingerprints import files_state_digest
from .card import write_dataset_card
from .converters import read_records
from .qa_files import QA_SUFFIXES, QAFileError, RawRecord, default_source
from .schema import DATA_DIR, LONGVIDEO_QA_FEATURES, VIDEOS_SUBDIR
from .validation import ValidationOptions, ValidationResult, validate_records
from .writer import (
    LinkMode,
    append_provenance,
    folder_lock,
    next_report_path,
    write_json_atomic,
    write_split,
)

logger = logging.get_logger(__name__)

__all__ = [
    "BuildReport",
    "LongVideoQA",
    "LongVideoQAConfig",
    "build_longvideo_qa",
    "find_qa_file",
    "recover_interrupted_build",
]

# Written next to the Arrow files of a prepared builder: a cache hit runs no `_split_generators`, and without it
# the rejected rows of the build that made the cache would vanish from view.
VALIDATION_FILENAME = "msjoe_validation.json"


def find_qa_file(data_dir: str) -> str:
    """The single `qa.jsonl` / `qa.json` / `qa.csv` of a raw corpus folder."""
    found = [os.path.join(data_dir, f"qa{s}") for s in QA_SUFFIXES if os.path.isfile(os.path.join(data_dir, f"qa{s}"))]
    if len(found) != 1:
        problem = "none" if not found else f"several: {found}"
        raise QAFileError(
            f"Expected exactly one of qa.jsonl, qa.json or qa.csv in {data_dir!r}, found {problem}; pass `qa_file=`."
        )
    return found[0]


def _corpus_fingerprint(qa_file: str, videos_dir: str) -> str:
    """Changes whenever the question file or any video changes, so a stale `datasets` cache is never reused."""
    videos = [os.path.join(folder, name) for folder, _, names in sorted(os.walk(videos_dir)) for name in sorted(names)]
    return files_state_digest([qa_file, *videos])


@dataclass
class LongVideoQAConfig(datasets.BuilderConfig):
    """Where the raw corpus is and how to validate it.

    Args:
        qa_file: the question file (default: the one `qa.{jsonl,json,csv}` in `data_dir`).
        videos_dir: the video folder (default: `data_dir/videos`).
        qa_format: `"native"` or a converter name (`"llava-video"`), see `converters.available_formats()`.
        validation: the same `ValidationOptions` as `build_longvideo_qa` / `msjoe data build` (option counts,
            probing, duration tolerance, default split and source).
        corpus_fingerprint: set by the builder from file sizes and times (invalidates the cache on changes).
    """

    qa_file: str | None = None
    videos_dir: str | None = None
    qa_format: str = "native"
    validation: ValidationOptions = field(default_factory=ValidationOptions)
    corpus_fingerprint: str | None = None


class LongVideoQA(datasets.GeneratorBasedBuilder):
    """Validated long-video multiple-choice QA from a question file and a video folder (see the module docstring)."""

    BUILDER_CONFIG_CLASS = LongVideoQAConfig
    DEFAULT_WRITER_BATCH_SIZE = 256

    def __init__(
        self, *args, data_dir: str | None = None, qa_file: str | None = None, videos_dir: str | None = None, **kwargs
    ):
        if data_dir is None and (qa_file is None or videos_dir is None):
            raise ValueError(
                "LongVideoQA needs `data_dir=` (holding qa.jsonl and videos/) or both `qa_file=` and `videos_dir=`."
            )
        qa_file = os.path.abspath(qa_file or find_qa_file(data_dir))
        videos_dir = os.path.abspath(videos_dir or os.path.join(data_dir, VIDEOS_SUBDIR))
        if not os.path.isdir(videos_dir):
            raise ValueError(
                f"Video folder not found: {videos_dir!r}; put the videos in <data_dir>/videos or pass `videos_dir=`."
            )
        fingerprint = _corpus_fingerprint(qa_file, videos_dir)
        self.validation: ValidationResult | None = None
        super().__init__(
            *args, data_dir=data_dir, qa_file=qa_file, videos_dir=videos_dir, corpus_fingerprint=fingerprint, **kwargs
        )

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description="Long-video multiple-choice QA for MSJoE (arXiv 2602.22932), validated from a raw corpus.",
            features=LONGVIDEO_QA_FEATURES,
            homepage="https://huggingface.co/papers/2602.22932",
            citation=MSJOE_CITATION,
        )

    def download_and_prepare(self, *args, **kwargs) -> None:
        """`datasets`' method, plus: on a cache hit, reload (and log again) the validation of the build that made
        the cache, so `builder.validation` is never None after this call and no rejected row goes unreported."""
        self.validation = None
        super().download_and_prepare(*args, **kwargs)
        if self.validation is None:  # served from the cache: `_split_generators` did not run
            self.validation = self._load_cached_validation()
            _log_validation(self.validation, self.config.videos_dir, cached=True)

    def _load_cached_validation(self) -> ValidationResult:
        path = posixpath.join(self._output_dir, VALIDATION_FILENAME)
        if not self._fs.exists(path):
            raise FileNotFoundError(
                f"The cached LongVideoQA build in {self._output_dir} has no {VALIDATION_FILENAME} (made by an older "
                "transformers-msjoe), so its rejected rows are unknown; rebuild it with "
                '`download_and_prepare(download_mode="force_redownload")`.'
            )
        with self._fs.open(path, "r", encoding="utf-8") as handle:
            return ValidationResult.from_dict(json.load(handle))

    def _split_generators(self, dl_manager: datasets.DownloadManager) -> list[datasets.SplitGenerator]:
        cfg = self.config
        options = _with_default_source(cfg.validation, cfg.qa_file)
        records = _read_question_records(cfg.qa_file, cfg.qa_format)
        self.validation = validate_records(records, cfg.videos_dir, options)
        _log_validation(self.validation, cfg.videos_dir, cached=False)
        _raise_if_nothing_kept(self.validation, cfg.qa_file, "see the warnings above")
        # inside the builder's temporary output folder: it becomes part of the cache together with the Arrow files
        with self._fs.open(posixpath.join(self._output_dir, VALIDATION_FILENAME), "w", encoding="utf-8") as handle:
            json.dump(asdict(self.validation), handle, ensure_ascii=False)
        return [
            datasets.SplitGenerator(name=split, gen_kwargs={"rows": rows})
            for split, rows in self.validation.rows_by_split().items()
        ]

    def _generate_examples(self, rows: list[dict]):
        for row in rows:
            example = {name: row[name] for name in LONGVIDEO_QA_FEATURES if name != "video"}
            example["video"] = row["video_path"]  # stored as a path; decodes to a VideoDecoder
            yield row["id"], example  # ids are unique (validation rejects duplicates): the documented str key


def _read_question_records(qa_file: str, qa_format: str) -> list[RawRecord]:
    """The records of the question file; a file that holds none (empty, or a CSV with only its header) is an
    error saying so, rather than "every question was rejected"."""
    records = read_records(qa_file, qa_format)
    if not records:
        raise QAFileError(
            f"{qa_file} holds no questions (it is empty, or a CSV with only its header row). Nothing was written; "
            "check that this is the right file."
        )
    return records


def _raise_if_nothing_kept(result: ValidationResult, qa_file: str, where: str) -> None:
    if not result.rows:
        examples = "; ".join(f"{r.location}: {r.reasons[0].message}" for r in result.rejected[:3])
        raise ValueError(
            f"Every question of {qa_file} was rejected ({result.reason_counts()}), e.g. {examples}. Nothing was "
            f"written; {where}."
        )


def _log_validation(result: ValidationResult, videos_dir: str, *, cached: bool) -> None:
    """Warn about every rejected row and unreferenced file (again on a cache hit: the cache hides nothing)."""
    prefix = "(cached build) " if cached else ""
    for row in result.rejected:
        logger.warning(
            f"{prefix}rejected {row.location} ({row.id or row.video}): "
            + "; ".join(f"{i.code}: {i.message}" for i in row.reasons)
        )
    if result.unreferenced_files:
        logger.warning(
            f"{prefix}{len(result.unreferenced_files)} files in {videos_dir} are not mentioned by any question: "
            f"{result.unreferenced_files[:10]}"
        )
    logger.info(f"{prefix}LongVideoQA: kept {len(result.rows)} questions, rejected {len(result.rejected)}.")


@dataclass
class BuildReport:
    """What `build_longvideo_qa` wrote and what it rejected."""

    out_dir: str
    validation: ValidationResult
    splits: dict[str, int]  # split -> questions written
    report_path: str  # the JSON report of rejected rows, unreferenced files and notes (inside the folder)


def _with_default_source(options: ValidationOptions, qa_file: str) -> ValidationOptions:
    """`options` with `default_source` filled in from the question file's name when the caller gave none."""
    if options.default_source is not None:
        return options
    return dataclasses.replace(options, default_source=default_source(qa_file))


def recover_interrupted_build(out_dir: str | os.PathLike) -> str | None:
    """Finish the folder swap of a build that died between its two renames; returns what was done, or None.

    `build_longvideo_qa` replaces a folder with two renames (`out` -> `out.previous`, `out.partial` -> `out`). A
    crash between them leaves no `out`, only `out.previous` (complete, the old folder): it is renamed back. A
    crash after them leaves a stale `out.previous` next to the new `out`: it is deleted.
    """
    out_dir = os.path.abspath(os.fspath(out_dir))
    previous = f"{out_dir}.previous"
    if not os.path.isdir(previous):
        return None
    if os.path.exists(out_dir):
        shutil.rmtree(previous)
        return f"deleted {previous}, left by an earlier build that finished its swap"
    os.replace(previous, out_dir)
    logger.warning(
        f"An earlier build of {out_dir} was interrupted while swapping folders; restored the previous folder."
    )
    return f"restored {out_dir} from {previous} (an earlier build was interrupted while swapping folders)"


def _swap_into_place(partial: str, out_dir: str) -> None:
    """Replace `out_dir` by `partial` (see `recover_interrupted_build` for a crash in between); under the old
    folder's write lock, so no other tool is midway through changing it."""
    previous = f"{out_dir}.previous"
    had_folder = os.path.isdir(os.path.join(out_dir, DATA_DIR))
    with folder_lock(out_dir) if had_folder else contextlib.nullcontext():
        if os.path.exists(out_dir):
            os.replace(out_dir, previous)
        os.replace(partial, out_dir)
    shutil.rmtree(previous, ignore_errors=True)


def build_longvideo_qa(
    qa_file: str | os.PathLike,
    videos_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    qa_format: str = "native",
    options: ValidationOptions | None = None,
    link: LinkMode = "copy",
    overwrite: bool = False,
    show_progress: bool = True,
) -> BuildReport:
    """Validate a raw corpus and write the Hub layout (metadata parquet + videos + card) to `out_dir`.

    The folder is assembled in `<out_dir>.partial` and renamed into place at the end, so `out_dir` never holds a
    half-written folder. Replacing an existing folder takes two renames: a crash between them leaves the old
    folder at `<out_dir>.previous` (and no `out_dir`); the next build, or `recover_interrupted_build`, puts it
    back before doing anything else. `options.default_source` defaults to the question file's name.
    """
    qa_file, out_dir = os.fspath(qa_file), os.path.abspath(os.fspath(out_dir))
    options = _with_default_source(options or ValidationOptions(), qa_file)
    recover_interrupted_build(out_dir)
    if os.path.exists(out_dir) and os.listdir(out_dir) and not overwrite:
        raise FileExistsError(
            f"{out_dir} already exists and is not empty; pass --overwrite to replace it, or choose another --out."
        )
    records = _read_question_records(qa_file, qa_format)
    result = validate_records(records, videos_dir, options, show_progress=show_progress)
    _raise_if_nothing_kept(result, qa_file, "fix the question file or --videos and build again")
    partial = f"{out_dir}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    by_split = result.rows_by_split()
    for split, rows in by_split.items():
        write_split(partial, split, rows, link=link, show_progress=show_progress)
    report_rel = os.path.relpath(next_report_path(partial, "build"), partial)
    write_json_atomic(os.path.join(partial, report_rel), result.to_report())
    append_provenance(partial, "build", {
        "qa_file": os.path.basename(qa_file), "format": qa_format, "kept": len(result.rows), "rejected": len(result.rejected),
        "unreferenced_files": len(result.unreferenced_files), "min_options": options.min_options,
        "max_options": options.max_options, "probe_frames": options.probe_frames,
    })  # fmt: skip
    write_dataset_card(partial)
    _swap_into_place(partial, out_dir)
    return BuildReport(out_dir, result, {s: len(r) for s, r in by_split.items()}, os.path.join(out_dir, report_rel))
