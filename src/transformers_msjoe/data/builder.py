"""`LongVideoQA`: the `datasets` builder for a raw corpus (a question file + a video folder).

This is the modern home of what used to be a loading script: `datasets` 4+ refuses scripts, so
`load_dataset("path/to/builder.py")` is not possible; instantiate the class instead:

    from transformers_msjoe.data import LongVideoQA
    builder = LongVideoQA(data_dir="raw/")            # raw/qa.jsonl (or .json / .csv) + raw/videos/
    builder.download_and_prepare()
    ds = builder.as_dataset(split="train")            # the documented features, videos decodable
    builder.validation.to_report()                    # every rejected row with its reasons

For the Hub layout (what `load_dataset("msjoe/longvideo-qa")` reads) use `msjoe data build`, which runs the
same validation and writes parquet metadata + videos + card.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass

import datasets
from datasets.builder import Key
from transformers.utils import logging

from .card import write_dataset_card
from .converters import read_records
from .qa_files import QA_SUFFIXES, QAFileError
from .schema import LONGVIDEO_QA_FEATURES, VIDEOS_SUBDIR
from .validation import ValidationOptions, ValidationResult, validate_records
from .writer import (
    LinkMode,
    append_provenance,
    next_report_path,
    write_json_atomic,
    write_split,
)

logger = logging.get_logger(__name__)

__all__ = ["BuildReport", "LongVideoQA", "LongVideoQAConfig", "build_longvideo_qa", "find_qa_file"]

_CITATION = """@inproceedings{tan2026msjoe,
  title={MSJoE: Jointly Evolving MLLM and Sampler for Efficient Long-Form Video Understanding},
  author={Tan, Wenhui and Yu, Xiaoyi and Li, Jiaze and Chen, Yijing and Ju, Jianzhong and Luo, Zhenbo and Song, Ruihua and Luan, Jian},
  booktitle={CVPR}, year={2026}, eprint={2602.22932}, archivePrefix={arXiv}
}"""


def find_qa_file(data_dir: str) -> str:
    """The single `qa.jsonl` / `qa.json` / `qa.csv` of a raw corpus folder."""
    found = [os.path.join(data_dir, f"qa{s}") for s in QA_SUFFIXES if os.path.isfile(os.path.join(data_dir, f"qa{s}"))]
    if len(found) != 1:
        problem = "none" if not found else f"several: {found}"
        raise QAFileError(f"Expected exactly one of qa.jsonl, qa.json or qa.csv in {data_dir!r}, found {problem}; pass `qa_file=`.")
    return found[0]


def _corpus_fingerprint(qa_file: str, videos_dir: str) -> str:
    """Changes whenever the question file or any video changes, so a stale `datasets` cache is never reused."""
    digest = hashlib.sha256()
    for folder, dirs, names in [(os.path.dirname(qa_file), [], [os.path.basename(qa_file)]), *sorted(os.walk(videos_dir))]:
        dirs.sort()
        for name in sorted(names):
            stat = os.stat(os.path.join(folder, name))
            digest.update(f"{os.path.join(folder, name)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


@dataclass
class LongVideoQAConfig(datasets.BuilderConfig):
    """Where the raw corpus is and how to validate it.

    Args:
        qa_file: the question file (default: the one `qa.{jsonl,json,csv}` in `data_dir`).
        videos_dir: the video folder (default: `data_dir/videos`).
        qa_format: `"native"` or a converter name (`"llava-video"`), see `converters.available_formats()`.
        source / default_split / min_options / max_options / probe_frames: see `ValidationOptions`.
        corpus_fingerprint: set by the builder from file sizes and times (invalidates the cache on changes).
    """

    qa_file: str | None = None
    videos_dir: str | None = None
    qa_format: str = "native"
    source: str | None = None
    default_split: str = "train"
    min_options: int = 2
    max_options: int = 10
    probe_frames: int = 3
    corpus_fingerprint: str | None = None


class LongVideoQA(datasets.GeneratorBasedBuilder):
    """Validated long-video multiple-choice QA from a question file and a video folder (see the module docstring)."""

    BUILDER_CONFIG_CLASS = LongVideoQAConfig
    DEFAULT_WRITER_BATCH_SIZE = 256

    def __init__(self, *args, data_dir: str | None = None, qa_file: str | None = None, videos_dir: str | None = None, **kwargs):
        if data_dir is None and (qa_file is None or videos_dir is None):
            raise ValueError("LongVideoQA needs `data_dir=` (holding qa.jsonl and videos/) or both `qa_file=` and `videos_dir=`.")
        qa_file = os.path.abspath(qa_file or find_qa_file(data_dir))
        videos_dir = os.path.abspath(videos_dir or os.path.join(data_dir, VIDEOS_SUBDIR))
        if not os.path.isdir(videos_dir):
            raise ValueError(f"Video folder not found: {videos_dir!r}; put the videos in <data_dir>/videos or pass `videos_dir=`.")
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
            citation=_CITATION,
        )

    def _split_generators(self, dl_manager: datasets.DownloadManager) -> list[datasets.SplitGenerator]:
        cfg = self.config
        options = ValidationOptions(
            min_options=cfg.min_options, max_options=cfg.max_options, probe_frames=cfg.probe_frames,
            default_split=cfg.default_split, default_source=cfg.source or os.path.splitext(os.path.basename(cfg.qa_file))[0],
        )  # fmt: skip
        self.validation = validate_records(read_records(cfg.qa_file, cfg.qa_format), cfg.videos_dir, options)
        report = self.validation
        for row in report.rejected:
            logger.warning(f"rejected {row.location} ({row.id or row.video}): " + "; ".join(f"{i.code}: {i.message}" for i in row.reasons))
        if report.unreferenced_files:
            logger.warning(f"{len(report.unreferenced_files)} files in {cfg.videos_dir} are not mentioned by any question: {report.unreferenced_files[:10]}")
        if not report.rows:
            raise ValueError(f"Every question of {cfg.qa_file} was rejected ({report.reason_counts()}); see the warnings above.")
        logger.info(f"LongVideoQA: kept {len(report.rows)} questions, rejected {len(report.rejected)}.")
        by_split: dict[str, list[dict]] = {}
        for row in report.rows:
            by_split.setdefault(row["split"], []).append(row)
        return [datasets.SplitGenerator(name=split, gen_kwargs={"rows": rows}) for split, rows in sorted(by_split.items())]

    def _generate_examples(self, rows: list[dict]):
        for index, row in enumerate(rows):
            example = {name: row[name] for name in LONGVIDEO_QA_FEATURES if name != "video"}
            example["video"] = row["video_path"]  # stored as a path; decodes to a VideoDecoder
            yield Key(0, index), example


@dataclass
class BuildReport:
    """What `build_longvideo_qa` wrote and what it rejected."""

    out_dir: str
    validation: ValidationResult
    splits: dict[str, int]  # split -> questions written
    report_path: str  # the JSON report of rejected rows, unreferenced files and notes (inside the folder)


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

    The folder is assembled in `<out_dir>.partial` and renamed into place at the end, so `out_dir` is either
    the previous complete folder or the new complete one, never half-written.
    """
    qa_file, out_dir = os.fspath(qa_file), os.path.abspath(os.fspath(out_dir))
    options = options or ValidationOptions(default_source=os.path.splitext(os.path.basename(qa_file))[0])
    if os.path.exists(out_dir) and os.listdir(out_dir) and not overwrite:
        raise FileExistsError(f"{out_dir} already exists and is not empty; pass --overwrite to replace it, or choose another --out.")
    result = validate_records(read_records(qa_file, qa_format), videos_dir, options, show_progress=show_progress)
    if not result.rows:
        examples = "; ".join(f"{r.location}: {r.reasons[0].message}" for r in result.rejected[:3])
        raise ValueError(f"Every question of {qa_file} was rejected ({result.reason_counts()}), e.g. {examples}. Nothing was written.")
    partial = f"{out_dir}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    by_split: dict[str, list[dict]] = {}
    for row in result.rows:
        by_split.setdefault(row["split"], []).append(row)
    for split, rows in sorted(by_split.items()):
        write_split(partial, split, rows, link=link, show_progress=show_progress)
    report_rel = os.path.relpath(next_report_path(partial, "build"), partial)
    write_json_atomic(os.path.join(partial, report_rel), result.to_report())
    append_provenance(partial, "build", {
        "qa_file": os.path.basename(qa_file), "format": qa_format, "kept": len(result.rows), "rejected": len(result.rejected),
        "unreferenced_files": len(result.unreferenced_files), "min_options": options.min_options,
        "max_options": options.max_options, "probe_frames": options.probe_frames,
    })  # fmt: skip
    write_dataset_card(partial)
    previous = f"{out_dir}.previous"
    if os.path.exists(out_dir):
        shutil.rmtree(previous, ignore_errors=True)
        os.replace(out_dir, previous)
    os.replace(partial, out_dir)
    shutil.rmtree(previous, ignore_errors=True)
    return BuildReport(out_dir, result, {s: len(r) for s, r in sorted(by_split.items())}, os.path.join(out_dir, report_rel))
