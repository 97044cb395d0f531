"""Tiny local copies of the four benchmarks, in the schema of their Hub parquet files, with generated videos.

Field names and types follow what the Hub datasets and lmms-eval's task utils use (shared/ENV.md §7); the values
are made up, and categories are ones the official aggregations know. `write_benchmarks(root)` writes, per
benchmark, a dataset folder loadable by `datasets.load_dataset(folder)` (one parquet file named after the split)
and a video folder laid out as the benchmark names its videos.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

import datasets

from transformers_msjoe.synthetic_video import PlantedEvent, make_synthetic_video

VIDEO_SECONDS = 24.0
VIDEO_FPS = 1.0

VIDEOMME_ROWS = [
    {
        "video_id": "001", "duration": "short", "domain": "Knowledge", "sub_category": "Humanity & History",
        "url": "https://www.youtube.com/watch?v=fixtureVMME", "videoID": "fixtureVMME", "question_id": "001-1",
        "task_type": "Counting Problem", "question": "How many red squares appear in the video?",
        "options": ["A. One.", "B. Two.", "C. Three.", "D. None."], "answer": "A",
    },
    {
        "video_id": "001", "duration": "short", "domain": "Knowledge", "sub_category": "Humanity & History",
        "url": "https://www.youtube.com/watch?v=fixtureVMME", "videoID": "fixtureVMME", "question_id": "001-2",
        "task_type": "Temporal Perception", "question": "When does the red square appear?",
        "options": ["A. At the start.", "B. In the middle.", "C. At the end.", "D. Never."], "answer": "B",
    },
]  # fmt: skip

LONGVIDEOBENCH_ROWS = [
    {
        "video_id": "fixtureLVB", "question": "What colour is the square shown in the middle of the video?",
        "question_wo_referring_query": "What colour is the square?", "option0": "red", "option1": "blue",
        "option2": "green", "option3": "yellow", "option4": "N/A", "correct_choice": 0,
        "topic_category": "NP-News-Programs", "question_category": "S2E", "level": "L1-Perception",
        "id": "fixtureLVB_0", "video_path": "fixtureLVB.mp4", "subtitle_path": "fixtureLVB_en.json",
        "duration_group": 15, "starting_timestamp_for_subtitles": 0.0, "duration": VIDEO_SECONDS,
    },
    {
        "video_id": "fixtureLVB", "question": "Which shape is drawn on the background?",
        "question_wo_referring_query": "Which shape is drawn?", "option0": "a circle", "option1": "a square",
        "option2": "a triangle", "option3": "a star", "option4": "a line", "correct_choice": 1,
        "topic_category": "NP-News-Programs", "question_category": "O2E", "level": "L1-Perception",
        "id": "fixtureLVB_1", "video_path": "fixtureLVB.mp4", "subtitle_path": "fixtureLVB_en.json",
        "duration_group": 15, "starting_timestamp_for_subtitles": 0.0, "duration": VIDEO_SECONDS,
    },
]  # fmt: skip

LVBENCH_ROWS = [
    {"video_path": "fixtureLVBench.mp4", "question": "What appears in the middle of the video?",
     "options": ["a red square", "a blue circle", "a dog", "nothing"], "answer": "A"},
    {"video_path": "fixtureLVBench.mp4", "question": "Is the background moving?",
     "options": ["yes", "no", "only at the end", "only at the start"], "answer": "A"},
]  # fmt: skip

MLVU_ROWS = [
    {"video_name": "fixtureMLVU.mp4", "question": "What colour is the square?\n(A) red\n(B) blue\n(C) green\n(D) yellow",
     "answer": "A", "task_type": "needle"},
    {"video_name": "fixtureMLVU.mp4", "question": "What is the video about?\n(A) cooking\n(B) a test pattern\n(C) sports\n(D) news",
     "answer": "B", "task_type": "topic_reasoning"},
]  # fmt: skip

VIDEOMME_FEATURES = datasets.Features(
    {
        **{
            name: datasets.Value("string")
            for name in (
                "video_id",
                "duration",
                "domain",
                "sub_category",
                "url",
                "videoID",
                "question_id",
                "task_type",
                "question",
            )
        },
        "options": datasets.List(datasets.Value("string")),
        "answer": datasets.Value("string"),
    }
)
LONGVIDEOBENCH_FEATURES = datasets.Features(
    {
        **{name: datasets.Value("string") for name in ("video_id", "question", "question_wo_referring_query")},
        **{f"option{i}": datasets.Value("string") for i in range(5)},
        "correct_choice": datasets.Value("int64"),
        **{
            name: datasets.Value("string")
            for name in ("topic_category", "question_category", "level", "id", "video_path", "subtitle_path")
        },
        "duration_group": datasets.Value("int64"),
        "starting_timestamp_for_subtitles": datasets.Value("float64"),
        "duration": datasets.Value("float64"),
    }
)
LVBENCH_FEATURES = datasets.Features(
    {
        "video_path": datasets.Value("string"),
        "question": datasets.Value("string"),
        "options": datasets.List(datasets.Value("string")),
        "answer": datasets.Value("string"),
    }
)
MLVU_FEATURES = datasets.Features(
    {name: datasets.Value("string") for name in ("video_name", "question", "answer", "task_type")}
)


@dataclass(frozen=True)
class BenchmarkCopy:
    """One benchmark's local copy: the dataset folder (`dataset_path`) and the video root."""

    task: str  # our lmms-eval task name
    benchmark: str  # lmms-eval task folder name
    dataset_path: str
    video_root: str
    video_root_env: str
    metric: str  # the official metric key in the results


# (task, benchmark, dataset folder, split, rows, features, video file names relative to the root, video env, metric)
_SPECS = (
    (
        "msjoe_videomme",
        "videomme",
        "Video-MME",
        "test",
        VIDEOMME_ROWS,
        VIDEOMME_FEATURES,
        "data",
        ["fixtureVMME.mp4"],
        "MSJOE_VIDEOMME_VIDEO_ROOT",
        "videomme_perception_score",
    ),
    (
        "msjoe_longvideobench",
        "longvideobench",
        "LongVideoBench",
        "validation",
        LONGVIDEOBENCH_ROWS,
        LONGVIDEOBENCH_FEATURES,
        "videos",
        ["fixtureLVB.mp4"],
        "MSJOE_LONGVIDEOBENCH_VIDEO_ROOT",
        "lvb_acc",
    ),
    (
        "msjoe_lvbench",
        "lvbench",
        "LVBench",
        "train",
        LVBENCH_ROWS,
        LVBENCH_FEATURES,
        "videos",
        ["fixtureLVBench.mp4"],
        "MSJOE_LVBENCH_VIDEO_ROOT",
        "lvbench_score",
    ),
    (
        "msjoe_mlvu",
        "mlvu",
        "MLVU_dev",
        "test",
        MLVU_ROWS,
        MLVU_FEATURES,
        "videos",
        ["fixtureMLVU.mp4"],
        "MSJOE_MLVU_VIDEO_ROOT",
        "mlvu_percetion_score",
    ),
)


def write_benchmarks(root: str | os.PathLike) -> dict[str, BenchmarkCopy]:
    """Write the four local copies under `root`; returns them by task name."""
    root = os.fspath(root)
    source = make_synthetic_video(
        os.path.join(root, "source.mp4"),
        duration_seconds=VIDEO_SECONDS,
        fps=VIDEO_FPS,
        events=[PlantedEvent(10.0, 14.0, "red", "a red square")],
        relative=False,
    )
    copies = {}
    for task, benchmark, folder, split, rows, features, video_dir, videos, env, metric in _SPECS:
        dataset_path = os.path.join(root, folder)
        os.makedirs(dataset_path, exist_ok=True)
        dataset = datasets.Dataset.from_list(rows, features=features)
        dataset.to_parquet(os.path.join(dataset_path, f"{split}-00000-of-00001.parquet"))
        video_root = os.path.join(dataset_path, video_dir)
        os.makedirs(video_root, exist_ok=True)
        for name in videos:
            shutil.copyfile(source, os.path.join(video_root, name))
        copies[task] = BenchmarkCopy(task, benchmark, dataset_path, video_root, env, metric)
    return copies


def write_task_overrides(folder: str | os.PathLike, copies: dict[str, BenchmarkCopy], tasks_path: str) -> str:
    """The documented way to use a local copy: per task, a yaml that includes ours and overrides `dataset_path`."""
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    for copy in copies.values():
        with open(os.path.join(folder, f"{copy.task}.yaml"), "w") as handle:
            handle.write(
                f"include: {os.path.join(tasks_path, copy.benchmark, copy.task + '.yaml')}\n"
                f"task: {copy.task}\n"
                f"dataset_path: {copy.dataset_path}\n"
            )
    return folder
