"""`msjoe cache-features` (fill the CLIP-feature cache ahead of time, across processes) and `msjoe cache
report|clean|push|pull` (inspect, trim and share the cache folder as a Hub dataset repo).

Multi-GPU / multi-process: `accelerate launch -m transformers_msjoe.cli.main cache-features VIDEOS...` deals the
videos out round-robin (process r of w takes videos r, r + w, r + 2w, ... of the sorted list), so that a run of
long videos in one folder is spread over every process instead of landing in one contiguous share (accelerate's
`split_between_processes` cuts contiguous chunks). Each process encodes on its own device and writes its entries
atomically into the shared folder; a rerun skips what any process cached.
"""

from __future__ import annotations

import argparse
import glob
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transformers.utils import logging

from .output import emit, emit_json

logger = logging.get_logger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v", ".mpg", ".mpeg", ".ts", ".flv", ".wmv")
_DATASET_MARKERS = ("metadata.jsonl", "metadata.csv", "metadata.parquet")
DTYPES = ("float32", "float16", "bfloat16")  # `--dtype`: CLIP compute dtypes (part of the cache key)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `cache-features` and `cache report|clean|push|pull` to the `msjoe` command (cli/main.py)."""
    _register_fill(subparsers)
    _register_cache(subparsers)


def _register_fill(subparsers: argparse._SubParsersAction) -> None:
    """`msjoe cache-features VIDEOS_OR_DATASET ...`."""
    fill = subparsers.add_parser(
        "cache-features",
        help="Compute and cache the candidate-frame CLIP features of many videos (resumable, multi-process).",
        description="Fill the CLIP-feature cache so that later questions skip decoding and CLIP. INPUTS are video "
        "files, folders of videos, glob patterns, or dataset folders (msjoe/longvideo-qa layout, or any folder "
        "`datasets.load_dataset` reads that has a video column). Already cached videos are skipped. Run it with "
        "`accelerate launch -m transformers_msjoe.cli.main cache-features ...` to deal the videos out round-robin "
        "across GPUs.",
    )
    fill.add_argument("inputs", nargs="+", metavar="VIDEOS_OR_DATASET")
    fill.add_argument(
        "--model", default=None, help="MSJoE checkpoint whose config gives the CLIP and candidate settings."
    )
    fill.add_argument(
        "--clip", default=None, help='CLIP identity, e.g. "ViT-L-14/openai", "hf-hub:org/repo" or a local folder '
        "(default: the --model checkpoint's CLIP, else ViT-L-14/openai).",
    )  # fmt: skip
    fill.add_argument("--candidate-fps", type=float, default=None, help="Candidate frames per second (default 1.0).")
    fill.add_argument(
        "--max-candidate-frames", type=int, default=None, help="Cap on candidates per video (default 1024)."
    )
    fill.add_argument(
        "--seek-mode", choices=("exact", "approximate"), default=None, help="Candidate seek mode (default exact)."
    )
    fill.add_argument("--batch-size", type=int, default=None, help="Frames per decode/CLIP batch (default 64).")
    fill.add_argument(
        "--dtype", choices=DTYPES, default="float32", help="CLIP dtype; part of the cache key (answer() uses float32)."
    )
    fill.add_argument(
        "--fingerprint", choices=("sampled", "full"), default="sampled",
        help="Video content fingerprint, part of the cache key for videos over 16 MiB: 'sampled' (default; reads "
        "4 MiB per video) or 'full' (hashes every byte; then answer() must use MSJoEFeatureCache(..., "
        "fingerprint='full') to hit these entries).",
    )  # fmt: skip
    fill.add_argument("--device", default=None, help="CLIP device (default: this process's accelerate device).")
    fill.add_argument("--split", default=None, help="Only this split of a dataset folder (default: all splits).")
    fill.add_argument("--video-column", default="video", help="Video column of a dataset folder (default: video).")
    fill.add_argument(
        "--push-to-hub", default=None, metavar="REPO", help="Afterwards, push the cache to this Hub dataset repo."
    )
    _add_cache_args(fill)
    fill.set_defaults(func=_cache_features)


def _register_cache(subparsers: argparse._SubParsersAction) -> None:
    """`msjoe cache report|clean|push|pull`."""
    cache = subparsers.add_parser("cache", help="Inspect, clean, push or pull the CLIP-feature cache.")
    actions = cache.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    report = actions.add_parser("report", help="Entries and size, grouped by CLIP and candidate settings.")
    _add_cache_args(report)
    report.set_defaults(func=_report)
    clean = actions.add_parser(
        "clean", help="Delete cache entries.", description="Delete entries (pick at least one of --all, "
        "--older-than-days, --clip, --verify). Leftover temp files of killed writers older than an hour always go.",
    )  # fmt: skip
    clean.add_argument(
        "--all", action="store_true", help="Delete every entry, and the bookkeeping `cache pull` leaves."
    )
    clean.add_argument(
        "--older-than-days", type=float, default=None, help="Delete entries not used for this many days."
    )
    clean.add_argument(
        "--clip", default=None, metavar="MODEL_NAME", help="Delete entries of this open_clip model name."
    )
    clean.add_argument("--verify", action="store_true", help="Check every entry and delete corrupt ones.")
    _add_cache_args(clean)
    clean.set_defaults(func=_clean)
    push = actions.add_parser(
        "push", help="Upload the cache folder to a Hub dataset repo (entries name videos by file name only)."
    )
    push.add_argument("repo_id")
    push.add_argument("--private", action="store_true", help="Create the repo as private.")
    push.add_argument("--token", default=None, help="Hub token (default: the logged-in one / HF_TOKEN).")
    _add_cache_args(push)
    push.set_defaults(func=_push)
    pull = actions.add_parser("pull", help="Download a Hub dataset repo's cache entries into the cache folder.")
    pull.add_argument("repo_id")
    pull.add_argument("--revision", default=None)
    pull.add_argument("--token", default=None)
    _add_cache_args(pull)
    pull.set_defaults(func=_pull)


def _add_cache_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cache-dir", default=None, help="Cache folder (default: $MSJOE_FEATURE_CACHE, else under the HF cache)."
    )
    parser.add_argument("--json", action="store_true", help="Print the result as JSON.")


def _cache(args: argparse.Namespace):
    from ..feature_cache import MSJoEFeatureCache

    return MSJoEFeatureCache(args.cache_dir)


def _human(num_bytes: int) -> str:
    size = float(num_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{size:.1f} GiB"


# ------------------------------------------------------------------------------------------ inputs
@dataclass
class VideoItem:
    """One video to cache: a label for messages and a loader returning a path or a datasets Video value."""

    label: str
    load: Callable[[], Any]


def _is_dataset_folder(folder: str) -> bool:
    if os.path.isfile(os.path.join(folder, "README.md")):
        with open(os.path.join(folder, "README.md"), encoding="utf-8", errors="replace") as handle:
            head = handle.read(4096)
        if head.startswith("---") and "configs:" in head:
            return True
    levels = ("", "*", os.path.join("*", "*"))  # metadata files at the top or up to two folders down
    return any(glob.glob(os.path.join(folder, level, marker)) for level in levels for marker in _DATASET_MARKERS)


def _dataset_items(folder: str, split: str | None, column: str, datasets_cache: str | None) -> list[VideoItem]:
    """One item per distinct video of a `datasets`-loadable folder (videos shared by many questions count once).

    `datasets_cache`: a fresh folder for datasets' Arrow cache. datasets keys a local folder's cache on its card
    and file patterns, so a copied or moved folder could otherwise be served the old copy's absolute video paths.
    """
    from datasets import Video, load_dataset

    if split is None:
        loaded = load_dataset(folder, cache_dir=datasets_cache)
    else:
        loaded = {split: load_dataset(folder, split=split, cache_dir=datasets_cache)}
    items: dict[str, VideoItem] = {}
    for split_name, dataset in loaded.items():
        if column not in dataset.column_names:
            raise ValueError(
                f"Dataset folder {folder!r} (split {split_name!r}) has no column {column!r}; its columns are "
                f"{dataset.column_names}. Pass --video-column."
            )
        dataset = dataset.cast_column(column, Video(decode=False))
        for row, value in enumerate(dataset[column]):
            path = value.get("path") if isinstance(value, dict) else value
            if path and os.path.isfile(path):
                items.setdefault(os.path.abspath(path), VideoItem(path, lambda p=path: p))
            elif isinstance(value, dict) and value.get("bytes"):
                items[f"{split_name}[{row}]"] = VideoItem(
                    f"{folder}:{split_name}[{row}]", lambda d=dataset, r=row: d[r][column]
                )
            else:
                raise ValueError(
                    f"Dataset folder {folder!r} split {split_name!r} row {row}: video {path!r} is neither a file that "
                    "exists nor embedded bytes. Fix the path (relative paths resolve against the current directory)."
                )
    return list(items.values())


def collect_videos(
    inputs: list[str], split: str | None = None, column: str = "video", datasets_cache: str | None = None
) -> list[VideoItem]:
    """Expand files, folders, globs and dataset folders into distinct videos, in a stable order."""
    items: dict[str, VideoItem] = {}
    for entry in inputs:
        if os.path.isdir(entry) and _is_dataset_folder(entry):
            for item in _dataset_items(entry, split, column, datasets_cache):
                items.setdefault(item.label, item)
            continue
        if os.path.isdir(entry):
            paths = [
                p
                for p in glob.glob(os.path.join(entry, "**", "*"), recursive=True)
                if p.lower().endswith(VIDEO_EXTENSIONS)
            ]
        elif os.path.isfile(entry):
            paths = [entry]
        else:
            paths = [p for p in glob.glob(entry, recursive=True) if os.path.isfile(p)]
        if not paths:
            raise ValueError(
                f"{entry!r} names no video: not an existing file, a folder with videos ({', '.join(VIDEO_EXTENSIONS)}), "
                "a dataset folder, or a glob that matches files."
            )
        for path in sorted(paths):
            items.setdefault(os.path.abspath(path), VideoItem(path, lambda p=path: p))
    return list(items.values())


# ------------------------------------------------------------------------------------------ settings
def resolve_settings(args: argparse.Namespace) -> dict[str, Any]:
    """CLIP and candidate settings: the flags, else the `--model` checkpoint's config, else MSJoEConfig defaults.

    They must equal what `answer()` will use, or its cache lookups miss. The CLIP is the `(clip_model_name,
    clip_pretrained)` pair `answer()` builds its scorer from: the short form ("name/tag") cannot carry a weights-file
    path as the tag.
    """
    from ..configuration_msjoe import MSJoEConfig, parse_clip_identity

    source: Any = MSJoEConfig  # class attributes hold the field defaults
    if args.model:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(args.model)
        if config.model_type == MSJoEConfig.model_type:
            source = config
        else:
            logger.info(
                f"{args.model} is not an MSJoE checkpoint; using the MSJoEConfig defaults it would be wrapped with."
            )
    clip_model_name, clip_pretrained = (
        parse_clip_identity(args.clip) if args.clip else (source.clip_model_name, source.clip_pretrained)
    )
    return {
        "clip_model_name": clip_model_name,
        "clip_pretrained": clip_pretrained,
        "candidate_fps": args.candidate_fps or source.candidate_fps,
        "max_candidate_frames": args.max_candidate_frames or source.max_candidate_frames,
        "seek_mode": args.seek_mode or source.candidate_seek_mode,
        "batch_size": args.batch_size or source.clip_batch_size,
    }


# ------------------------------------------------------------------------------------------ commands
def _cache_one(item: VideoItem, scorer, cache, settings: dict[str, Any]) -> str:
    """'cached', or 'skipped' (a valid entry was there); raises on a bad video or one that could not be cached."""
    from ..frame_features import extract_candidate_features
    from ..video_io import open_video

    features = extract_candidate_features(
        open_video(item.load()), scorer, candidate_fps=settings["candidate_fps"],
        max_candidate_frames=settings["max_candidate_frames"], seek_mode=settings["seek_mode"],
        batch_size=settings["batch_size"], cache=cache,
    )  # fmt: skip
    if features.cache_status == "uncacheable":
        raise ValueError(
            f"{item.label}: its features were computed but could not be cached (the warning above says why)"
        )
    return "skipped" if features.cache_status == "hit" else "cached"


def process_share(items: list[VideoItem], process_index: int, num_processes: int) -> list[VideoItem]:
    """The videos process `process_index` of `num_processes` caches: every `num_processes`-th, from its index.

    Round-robin rather than contiguous chunks: inputs are sorted by path, so long videos often sit together (one
    folder per source); striding spreads them over every process. Every process computes the same sorted list, so
    the shares are disjoint and cover it, and a rerun with another process count still skips what is cached.
    """
    return items[process_index::num_processes]


def _cache_features(args: argparse.Namespace) -> int:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="msjoe-datasets-") as datasets_cache:
        return _fill(args, datasets_cache)


def _fill(args: argparse.Namespace, datasets_cache: str) -> int:
    """`cache-features`: this process's share of the videos, then (rank 0) the gathered summary."""
    import torch
    from accelerate import PartialState
    from accelerate.utils import gather_object

    from ..clip_scoring import MSJoECLIPScorer
    from ..feature_cache import MSJoEFeatureCache
    from ..video_io import VideoDecodeError

    # On a machine (or a `--device cpu` run) without CUDA, `cpu=True` makes launched processes join a gloo group
    # (accelerate's MULTI_CPU) instead of each one believing it is alone and caching every video.
    state = PartialState(cpu=not torch.cuda.is_available() or str(args.device or "").startswith("cpu"))
    settings = resolve_settings(args)
    items = collect_videos(args.inputs, args.split, args.video_column, datasets_cache)
    cache = MSJoEFeatureCache(args.cache_dir, fingerprint=args.fingerprint)
    scorer = MSJoECLIPScorer(
        settings["clip_model_name"],
        settings["clip_pretrained"],
        device=args.device or state.device,
        dtype=getattr(torch, args.dtype),
    )
    counts = {"cached": 0, "skipped": 0, "failed": 0}
    failures: list[str] = []
    share = process_share(items, state.process_index, state.num_processes)
    progress = logging.tqdm(
        share, desc=f"cache-features [{state.process_index + 1}/{state.num_processes}]", unit="video",
        position=state.local_process_index,
    )  # fmt: skip
    for item in progress:
        try:
            counts[_cache_one(item, scorer, cache, settings)] += 1
        except (VideoDecodeError, ValueError, OSError) as err:
            counts["failed"] += 1
            failures.append(str(err) if item.label in str(err) else f"{item.label}: {err}")
            logger.warning(f"Skipping {item.label}: {err}")
    results = gather_object([{"counts": counts, "failures": failures}])
    state.wait_for_everyone()
    if not state.is_main_process:
        return 0
    return _summarise(args, results, len(items), cache, settings, state.num_processes)


def _summarise(
    args: argparse.Namespace, results: list[dict], num_videos: int, cache, settings: dict, processes: int
) -> int:
    """Rank 0: add up every process's counts, push if asked, print; exit code 1 when any video failed."""
    total = {k: sum(r["counts"][k] for r in results) for k in ("cached", "skipped", "failed")}
    failures = [f for r in results for f in r["failures"]]
    summary = {
        "videos": num_videos, **total, "failures": failures, "cache_dir": cache.root, "settings": settings,
        "fingerprint": cache.fingerprint_mode, "processes": processes, "per_process": [r["counts"] for r in results],
    }  # fmt: skip
    if args.push_to_hub:
        from ..feature_cache import push_feature_cache

        summary["pushed"] = push_feature_cache(args.push_to_hub, cache=cache)
    if args.json:
        emit_json(summary)
    else:
        emit(
            f"{num_videos} videos: {total['cached']} cached, {total['skipped']} already cached, {total['failed']} failed"
        )
        for failure in failures:
            emit(f"  failed: {failure}")
        emit(f"cache: {cache.root}")
        if args.push_to_hub:
            emit(f"pushed: {summary['pushed']}")
    return 1 if failures else 0


def _report(args: argparse.Namespace) -> int:
    report = _cache(args).report()
    if args.json:
        emit_json(report.to_dict())
        return 0
    emit(f"cache: {report.root}")
    emit(f"entries: {report.num_entries} ({_human(report.total_bytes)})")
    for group in report.groups:
        emit(
            f"  {group['clip']} {group['dtype']} fps={group['candidate_fps']} cap={group['max_candidate_frames']} "
            f"seek={group['seek_mode']}: {group['entries']} entries, {_human(group['bytes'])}"
        )
    if report.temp_files:
        emit(
            f"leftover temp files (killed writers): {report.temp_files} ({_human(report.temp_bytes)}); `msjoe cache clean` removes them"
        )
    if report.hub_metadata_files:
        emit(
            f"pull bookkeeping: {report.hub_metadata_files} files ({_human(report.hub_metadata_bytes)}); `msjoe cache clean --all` removes it"
        )
    if report.unreadable:
        emit(f"unreadable entries: {len(report.unreadable)}; `msjoe cache clean --verify` removes them")
    return 0


def _clean(args: argparse.Namespace) -> int:
    cache = _cache(args)
    result = cache.clean(
        remove_all=args.all, older_than_days=args.older_than_days, clip_model_name=args.clip, verify=args.verify
    )
    if args.json:
        emit_json(result.to_dict())
        return 0
    emit(
        f"removed {result.removed_entries} entries, {result.removed_temp_files} temp files and "
        f"{result.removed_hub_metadata_files} pull bookkeeping files ({_human(result.freed_bytes)}); "
        f"{result.kept_entries} entries kept in {cache.root}"
    )
    if not (args.all or args.older_than_days is not None or args.clip or args.verify):
        emit(
            "no entry selector given: pass --all, --older-than-days N, --clip MODEL_NAME or --verify to delete entries"
        )
    return 0


def _push(args: argparse.Namespace) -> int:
    from ..feature_cache import push_feature_cache

    url = push_feature_cache(args.repo_id, cache=_cache(args), token=args.token, private=args.private or None)
    emit_json({"pushed": url}) if args.json else emit(f"pushed: {url}")
    return 0


def _pull(args: argparse.Namespace) -> int:
    from ..feature_cache import pull_feature_cache

    cache = _cache(args)
    count = pull_feature_cache(args.repo_id, cache=cache, token=args.token, revision=args.revision)
    emit_json({"entries": count, "cache_dir": cache.root}) if args.json else emit(f"{count} entries in {cache.root}")
    return 0
