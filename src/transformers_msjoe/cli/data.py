"""`msjoe data build | convert | label-difficulty | filter | prune | push | card | verify`: the longvideo-qa tools."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .output import emit, emit_json

DTYPES = ("auto", "float32", "float16", "bfloat16")


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser(
        "data",
        help="Build, label, filter and push the msjoe/longvideo-qa dataset (docs/dataset.md).",
        description="Tools for the msjoe/longvideo-qa dataset: build (validate + Hub layout) -> label-difficulty -> filter -> push.",
    )
    commands = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    _register_build(commands)
    _register_convert(commands)
    _register_label(commands)
    _register_filter(commands)
    _register_prune(commands)
    _register_push(commands)
    _register_card(commands)
    _register_verify(commands)


# ---------------------------------------------------------------------------------------------- build / convert
def _register_build(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser("build", help="Validate a question file + video folder and write the Hub layout.")
    sub.add_argument("--qa", required=True, help="Question file: .jsonl, .json (list of objects) or .csv.")
    sub.add_argument("--videos", required=True, help="Folder holding the videos the questions refer to.")
    sub.add_argument("--out", required=True, help="Output folder (the Hub layout).")
    sub.add_argument(
        "--format",
        default="native",
        help="Question-file format: native (default) or llava-video (LLaVA-Video-178K MCQ json).",
    )
    sub.add_argument(
        "--source", default=None, help="`source` of rows that name none (default: the question file's name)."
    )
    sub.add_argument("--split", default="train", help="Split of rows that name none (default: train).")
    sub.add_argument("--min-options", type=int, default=2, help="Fewest options a question may have (default 2).")
    sub.add_argument("--max-options", type=int, default=10, help="Most options a question may have (default 10).")
    sub.add_argument(
        "--probe-frames", type=int, default=3, help="Frames decoded per video to prove it decodes (0: open only)."
    )
    sub.add_argument("--probe-workers", type=int, default=4, help="Videos probed in parallel (default 4).")
    sub.add_argument(
        "--link",
        choices=("copy", "hardlink"),
        default="copy",
        help="How videos enter the folder (hardlink: same filesystem, no extra space).",
    )
    sub.add_argument("--overwrite", action="store_true", help="Replace an existing, non-empty --out.")
    sub.add_argument("--strict", action="store_true", help="Exit with status 1 when any row was rejected.")
    sub.add_argument("--json", action="store_true", help="Print the full report as JSON.")
    sub.set_defaults(func=_build)


def _build(args: argparse.Namespace) -> int:
    from ..data import ValidationOptions, build_longvideo_qa

    options = ValidationOptions(
        min_options=args.min_options, max_options=args.max_options, probe_frames=args.probe_frames,
        default_split=args.split, default_source=args.source, probe_workers=args.probe_workers,
    )  # fmt: skip
    report = build_longvideo_qa(
        args.qa, args.videos, args.out, qa_format=args.format, options=options, link=args.link, overwrite=args.overwrite
    )
    validation = report.validation
    if args.json:
        emit_json(
            {
                "out_dir": report.out_dir,
                "splits": report.splits,
                "report_path": report.report_path,
                **validation.to_report(),
            }
        )
    else:
        emit(f"wrote {report.out_dir}: " + ", ".join(f"{s} {n} questions" for s, n in report.splits.items()))
        emit(
            f"rejected {len(validation.rejected)} rows"
            + (f": {validation.reason_counts()}" if validation.rejected else "")
        )
        for row in validation.rejected[:10]:
            emit(f"  {row.location}: " + "; ".join(f"{i.code}: {i.message}" for i in row.reasons))
        if validation.unreferenced_files:
            emit(
                f"{len(validation.unreferenced_files)} files in --videos are not mentioned by any question (not copied): {validation.unreferenced_files[:5]}"
            )
        if validation.ignored_fields:
            emit(f"ignored unknown fields (rows carrying them): {validation.ignored_fields}")
        for note in validation.notes:
            emit(f"note: {note}")
        emit(f"report: {report.report_path}")
    return 1 if args.strict and validation.rejected else 0


def _register_convert(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser("convert", help="Convert a public MCQ file (e.g. LLaVA-Video-178K) to the native jsonl.")
    sub.add_argument("input", help="The source file.")
    sub.add_argument("--format", required=True, help="Source format, e.g. llava-video.")
    sub.add_argument("--out", required=True, help="Native .jsonl to write.")
    sub.set_defaults(func=_convert)


def _convert(args: argparse.Namespace) -> int:
    from ..atomic_files import atomic_write
    from ..data import read_records
    from ..data.validation import CONVERSION_PROBLEMS_FIELD

    records = read_records(args.input, args.format)
    with atomic_write(args.out) as handle:  # a crash never leaves a truncated jsonl that would build fewer rows
        handle.writelines(json.dumps(record.fields, ensure_ascii=False) + "\n" for record in records)
    problems = [r for r in records if r.fields.get(CONVERSION_PROBLEMS_FIELD)]
    emit(f"wrote {len(records) - len(problems)} questions to {args.out}")
    if problems:
        emit(
            f"{len(problems)} source entries hold no question; written with `{CONVERSION_PROBLEMS_FIELD}` (build rejects and reports them):"
        )
        for record in problems[:10]:
            emit(f"  {record.location}: " + "; ".join(record.fields[CONVERSION_PROBLEMS_FIELD]))
    return 0


# ---------------------------------------------------------------------------------------------- label / filter
def _register_label(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser(
        "label-difficulty", help="Label pass_rate: n sampled answers of a base MLLM at K uniform frames."
    )
    sub.add_argument("folder", help="A folder built by `msjoe data build`.")
    sub.add_argument("--model", required=True, help="Base MLLM (Hub id or path) or an MSJoE checkpoint.")
    sub.add_argument("--num-rollouts", type=int, default=8, help="n, sampled answers per question (default 8).")
    sub.add_argument(
        "--frames", type=int, default=32, metavar="K", help="K uniformly spaced frames per answer (default 32)."
    )
    sub.add_argument("--temperature", type=float, default=1.0, help="Sampling temperature (default 1.0).")
    sub.add_argument("--top-p", type=float, default=1.0, help="Nucleus sampling (default 1.0).")
    sub.add_argument("--max-new-tokens", type=int, default=64, help="Answer generation budget (default 64).")
    sub.add_argument("--seed", type=int, default=0, help="Base seed (each question derives its own).")
    sub.add_argument("--rows-per-batch", type=int, default=1, help="Questions per generate call (n x this sequences).")
    sub.add_argument("--split", action="append", default=None, help="Only this split (repeatable; default all).")
    sub.add_argument(
        "--overwrite",
        action="store_true",
        help="Relabel rows that already have a pass_rate, from this setting's cached rollouts where there are any.",
    )
    sub.add_argument(
        "--recompute",
        action="store_true",
        help="Discard this setting's cached rollouts of the selected rows and run them again (implies --overwrite; "
        "same --seed gives the same samples unless the model or code changed).",
    )
    sub.add_argument("--device", default=None, help="Device, e.g. cuda.")
    sub.add_argument(
        "--dtype", default=None, choices=DTYPES, help="MLLM dtype (default: the model's own loading default)."
    )
    sub.add_argument("--json", action="store_true", help="Print the report as JSON.")
    sub.set_defaults(func=_label)


def _label(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    import torch

    from ..data import DifficultySettings, label_difficulty
    from ..loading import load_msjoe_model

    settings = DifficultySettings(
        model=args.model, num_rollouts=args.num_rollouts, num_key_frames=args.frames, temperature=args.temperature,
        top_p=args.top_p, max_new_tokens=args.max_new_tokens, seed=args.seed,
    )  # fmt: skip
    mllm_kwargs: dict[str, Any] = {}
    if args.dtype:
        mllm_kwargs["dtype"] = args.dtype if args.dtype == "auto" else getattr(torch, args.dtype)
    model = load_msjoe_model(args.model, mllm_kwargs=mllm_kwargs, num_key_frames=args.frames, selection="uniform")
    model = model.to(args.device) if args.device else model
    report = label_difficulty(
        args.folder, model, settings, splits=args.split, overwrite=args.overwrite, recompute=args.recompute,
        rows_per_batch=args.rows_per_batch,
    )  # fmt: skip
    if args.json:
        emit_json(asdict(report))
    else:
        emit(f"labelled {report.labelled} questions ({report.computed} computed now, {report.from_cache} from an earlier run; "
             f"{report.skipped_already_labelled} already had a pass_rate)")  # fmt: skip
        if report.discarded_from_cache:
            emit(f"--recompute discarded {report.discarded_from_cache} cached rollouts and ran them again")
        for failure in report.failed:
            emit(f"  failed {failure['split']}/{failure['id']}: {failure['error']}")
        if report.parse_failure_rate is not None:
            emit(
                f"unparsable answers (counted as wrong): {report.unparsed_rollouts} of {report.rollouts} ({report.parse_failure_rate:.1%})"
            )
        emit(f"rollouts: {report.cache_path}")
        emit(f"report: {report.report_path}")
    return 1 if report.failed else 0


def _register_filter(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser("filter", help="Drop too-short videos and always-solved questions, in place.")
    sub.add_argument("folder", help="A folder built by `msjoe data build`.")
    sub.add_argument(
        "--min-duration", type=float, default=None, help="Drop questions on videos shorter than this (seconds)."
    )
    sub.add_argument(
        "--max-pass-rate", type=float, default=None, help="Drop questions with pass_rate above this (always solved)."
    )
    sub.add_argument("--min-pass-rate", type=float, default=None, help="Drop questions with pass_rate below this.")
    sub.add_argument(
        "--unlabelled",
        choices=("error", "keep", "drop"),
        default="error",
        help="Rows without pass_rate under a pass-rate filter.",
    )
    sub.add_argument("--split", action="append", default=None, help="Only this split (repeatable; default all).")
    sub.add_argument("--dry-run", action="store_true", help="Report what would be dropped; change nothing.")
    sub.add_argument("--json", action="store_true", help="Print the report as JSON.")
    sub.set_defaults(func=_filter)


def _filter(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from ..data import FilterCriteria, filter_dataset

    criteria = FilterCriteria(args.min_duration, args.max_pass_rate, args.min_pass_rate, args.unlabelled)
    report = filter_dataset(args.folder, criteria, splits=args.split, dry_run=args.dry_run)
    if args.json:
        emit_json(asdict(report))
        return 0
    prefix = "would drop" if args.dry_run else "dropped"
    emit(
        f"{prefix} {len(report.dropped_rows)} questions {report.reason_counts()}; kept "
        + ", ".join(f"{s} {n}" for s, n in report.kept.items())
    )
    emit(
        f"{'would delete' if args.dry_run else 'deleted'} {len(report.deleted_videos)} videos no remaining question uses"
    )
    if report.unreferenced_deleted:
        emit(
            f"{'would delete' if args.dry_run else 'deleted'} {len(report.unreferenced_deleted)} files no question "
            f"referenced even before: {report.unreferenced_deleted[:5]}"
        )
    emit(f"report: {report.report_path}")
    return 0


def _register_prune(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser(
        "prune", help="Delete the files under data/ that no question references (what push refuses)."
    )
    sub.add_argument("folder", help="A folder built by `msjoe data build`.")
    sub.add_argument("--dry-run", action="store_true", help="Report what would be deleted; change nothing.")
    sub.add_argument("--json", action="store_true", help="Print the report as JSON.")
    sub.set_defaults(func=_prune)


def _prune(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from ..data import prune_unreferenced

    report = prune_unreferenced(args.folder, dry_run=args.dry_run)
    if args.json:
        emit_json(asdict(report))
        return 0
    emit(
        f"{'would delete' if args.dry_run else 'deleted'} {len(report.deleted)} unreferenced files: {report.deleted[:10]}"
    )
    emit(f"report: {report.report_path}")
    return 0


# ---------------------------------------------------------------------------------------------- push / card / verify
def _register_push(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser("push", help="Upload a built folder as a Hub dataset repo.")
    sub.add_argument("folder", help="A folder built by `msjoe data build`.")
    sub.add_argument("--repo-id", required=True, help="Target dataset repo, e.g. me/longvideo-qa.")
    sub.add_argument("--token", default=None, help="Hugging Face token (default: HF_TOKEN or `hf auth login`).")
    sub.add_argument("--private", action="store_true", help="Create the repo as private.")
    sub.add_argument("--revision", default=None, help="Branch to push to.")
    sub.add_argument("--message", default=None, help="Commit message.")
    sub.set_defaults(func=_push)


def _push(args: argparse.Namespace) -> int:
    from ..data import push_longvideo_qa

    result = push_longvideo_qa(
        args.folder, args.repo_id, token=args.token, private=args.private or None, revision=args.revision,
        commit_message=args.message,
    )  # fmt: skip
    emit(
        f"pushed {args.folder} to https://huggingface.co/datasets/{args.repo_id}"
        + (f" ({result})" if result is not None else "")
    )
    return 0


def _register_card(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser("card", help="Re-render a built folder's README.md (or write the template card).")
    sub.add_argument(
        "folder", nargs="?", default=None, help="A built folder; omit with --out to write the template card."
    )
    sub.add_argument("--repo-id", default="msjoe/longvideo-qa", help="Repo id shown in the card.")
    sub.add_argument("--out", default=None, help="Where to write the template card (e.g. dataset_card/README.md).")
    sub.set_defaults(func=_card)


def _card(args: argparse.Namespace) -> int:
    from ..data import render_dataset_card, write_dataset_card
    from ..data.card import save_card
    from ..data.writer import folder_lock

    if args.folder is not None:
        with folder_lock(args.folder):
            emit(f"wrote {write_dataset_card(args.folder, repo_id=args.repo_id)}")
    elif args.out is not None:
        save_card(render_dataset_card(None, repo_id=args.repo_id), args.out)
        emit(f"wrote {args.out}")
    else:
        raise ValueError("Give a built folder to re-render its card, or --out PATH for the template card.")
    return 0


def _register_verify(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser(
        "verify", help="Check a folder's layout and load it with datasets (prints features and a row)."
    )
    sub.add_argument("folder", help="A built folder or a Hub dataset id.")
    sub.add_argument("--split", default="train", help="Split to load (default train).")
    sub.set_defaults(func=_verify)


def _verify(args: argparse.Namespace) -> int:
    from ..data import load_longvideo_qa

    ds = load_longvideo_qa(args.folder, split=args.split)
    emit(str(ds))
    emit(str(ds.features))
    if ds.num_rows == 0:
        raise ValueError(
            f"Split {args.split!r} of {args.folder} has no rows, so there is no video to check; verify another --split."
        )
    row = ds[0]
    video = row["video"]
    emit(str({k: v for k, v in row.items() if k != "video"}))
    emit(f"video: {type(video).__name__} duration {video.metadata.duration_seconds}s, {video.metadata.num_frames} frames, "
         f"{video.metadata.width}x{video.metadata.height}")  # fmt: skip
    return 0
