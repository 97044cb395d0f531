"""The msjoe_* task adapters: official lmms-eval code reused, options split off, videos found or clearly missing."""

from __future__ import annotations

import importlib.util
import os
import re
import sys

import datasets
import pytest
import yaml
from fixtures.lmms_eval import (
    LONGVIDEOBENCH_ROWS,
    LVBENCH_ROWS,
    MLVU_ROWS,
    VIDEOMME_ROWS,
    write_benchmarks,
    write_task_overrides,
)

from transformers_msjoe.cli.main import main
from transformers_msjoe.lmms_eval_plugin import TASK_NAMES, tasks_path
from transformers_msjoe.lmms_eval_plugin.benchmarks import (
    BENCHMARKS,
    MSJOE_OPTIONS,
    MSJOE_QUESTION,
    add_msjoe_fields,
    official_task_utils,
)

# our task yaml -> the lmms-eval task it adapts (same prompt, split, scorer and metric)
OFFICIAL_YAML = {
    "videomme/msjoe_videomme.yaml": "videomme/videomme.yaml",
    "longvideobench/msjoe_longvideobench.yaml": "longvideobench/longvideobench_val_v.yaml",
    "lvbench/msjoe_lvbench.yaml": "lvbench/lvbench.yaml",
    "mlvu/msjoe_mlvu.yaml": "mlvu/mlvu_dev.yaml",
}


def _load_task_utils(benchmark: str):
    """A task folder's utils.py, loaded from its file as lmms-eval's `!function utils.x` does."""
    path = os.path.join(tasks_path(), benchmark, "utils.py")
    spec = importlib.util.spec_from_file_location("utils", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _simple_yaml(path: str) -> dict:
    """A task yaml with its `!function` tags read as plain strings."""
    loader = type("Loader", (yaml.SafeLoader,), {})
    loader.add_constructor("!function", lambda loader, node: f"!function {loader.construct_scalar(node)}")
    with open(path) as handle:
        return yaml.load(handle, Loader=loader)


# ---------------------------------------------------------------------------------------------- options
# how each official prompt (`doc_to_text`) prints an option line: "A. text" or "(A) text"
_OFFICIAL_OPTION_LINE = {
    "videomme": re.compile(r"^([A-Z])\. (.+)$"),
    "longvideobench": re.compile(r"^([A-Z])\. (.+)$"),
    "lvbench": re.compile(r"^\(([A-Z])\) (.+)$"),
    "mlvu": re.compile(r"^\(([A-Z])\) (.+)$"),
}
_ROWS = {"videomme": VIDEOMME_ROWS, "longvideobench": LONGVIDEOBENCH_ROWS, "lvbench": LVBENCH_ROWS, "mlvu": MLVU_ROWS}


def _official_letters(benchmark: str, doc: dict) -> tuple[list[str], str]:
    """The options as the official prompt letters them (`["A. text", ...]`) and the official gold letter."""
    official = official_task_utils(benchmark)
    default_kwargs = _simple_yaml(os.path.join(tasks_path(), benchmark, f"msjoe_{benchmark}.yaml"))
    prompt = getattr(official, f"{benchmark}_doc_to_text")(doc, dict(default_kwargs["lmms_eval_specific_kwargs"]["default"]))  # fmt: skip
    lines = [_OFFICIAL_OPTION_LINE[benchmark].match(line) for line in prompt.splitlines()]
    gold = chr(ord("A") + doc["correct_choice"]) if benchmark == "longvideobench" else doc["answer"]
    return [f"{m.group(1)}. {m.group(2)}" for m in lines if m], gold


@pytest.mark.parametrize(
    ("benchmark", "index"), [(name, i) for name, rows in sorted(_ROWS.items()) for i in range(len(rows))]
)
def test_options_are_lettered_as_the_official_prompt_and_scorer_letter_them(benchmark, index):
    """Label-like option texts ("U.S. flag", "C. 5") stay texts: MSJoE's letter for the gold option is the
    official gold letter, and each letter names the same text as in the official prompt."""
    doc = _ROWS[benchmark][index]
    official_options, gold = _official_letters(benchmark, doc)
    _, options = BENCHMARKS[benchmark].question_and_options(doc)
    assert options == official_options and len(options) >= 2
    answered = gold + ". " + dict(o.split(". ", 1) for o in official_options)[gold]
    assert answered in options  # the gold letter names the gold text in MSJoE's options too


def test_label_like_option_texts_in_the_fixtures():
    assert BENCHMARKS["longvideobench"].question_and_options(LONGVIDEOBENCH_ROWS[2])[1] == ["A. U.S. flag", "B. C. 5", "C. a red square"]  # fmt: skip
    assert BENCHMARKS["lvbench"].question_and_options(LVBENCH_ROWS[2])[1] == ["A. C. 5", "B. D. 6", "C. 1", "D. U.S. flag"]  # fmt: skip
    # even texts that start with "A. ", "B. " in order are texts in an option column (the prompt shows "(A) A. 7")
    row = {"question": "Which page?", "options": ["A. 7", "B. 8"], "answer": "B"}
    assert BENCHMARKS["lvbench"].question_and_options(row)[1] == ["A. A. 7", "B. B. 8"]


def test_embedded_options_without_a_stem_are_an_open_question():
    assert BENCHMARKS["mlvu"].question_and_options({"question": "(A) x\n(B) y"}) == ("(A) x\n(B) y", [])
    assert BENCHMARKS["mlvu"].question_and_options({"question": "Describe it."}) == ("Describe it.", [])


@pytest.mark.parametrize(
    ("benchmark", "row", "question", "options"),
    [
        (
            "videomme",
            VIDEOMME_ROWS[0],
            "How many red squares appear in the video?",
            ["A. One.", "B. Two.", "C. Three.", "D. None."],
        ),
        (
            "longvideobench",
            LONGVIDEOBENCH_ROWS[0],
            LONGVIDEOBENCH_ROWS[0]["question"],
            ["A. red", "B. blue", "C. green", "D. yellow"],
        ),
        (
            "longvideobench",
            LONGVIDEOBENCH_ROWS[1],
            LONGVIDEOBENCH_ROWS[1]["question"],
            ["A. a circle", "B. a square", "C. a triangle", "D. a star", "E. a line"],
        ),
        (
            "lvbench",
            LVBENCH_ROWS[0],
            LVBENCH_ROWS[0]["question"],
            ["A. a red square", "B. a blue circle", "C. a dog", "D. nothing"],
        ),
        (
            "lvbench",
            {"video_path": "v.mp4", "question": "Year?\n(A) 1636\n(B) 1366", "answer": "B"},
            "Year?",
            ["A. 1636", "B. 1366"],
        ),
        ("mlvu", MLVU_ROWS[1], "What is the video about?", ["A. cooking", "B. a test pattern", "C. sports", "D. news"]),
    ],
)
def test_question_and_options(benchmark, row, question, options):
    assert BENCHMARKS[benchmark].question_and_options(row) == (question, options)


def test_longvideobench_options_stop_at_first_na_like_the_official_scorer():
    row = {**LONGVIDEOBENCH_ROWS[1], "option2": "N/A", "option3": "a star"}
    _, options = BENCHMARKS["longvideobench"].question_and_options(row)
    assert options == ["A. a circle", "B. a square"]
    scored = official_task_utils("longvideobench").longvideobench_process_results(row, ["B"])["lvb_acc"]
    assert scored["parsed_pred"] == "B" and scored["answer"] == "B"  # letters agree with the official scorer


def test_add_msjoe_fields_and_open_question_warning(caplog):
    dataset = datasets.Dataset.from_list(MLVU_ROWS[:2] + [{**MLVU_ROWS[0], "question": "Describe the video."}])
    out = add_msjoe_fields(dataset, "mlvu")
    assert out[MSJOE_QUESTION] == ["What colour is the square?", "What is the video about?", "Describe the video."]
    assert out[MSJOE_OPTIONS][2] == [] and len(out[MSJOE_OPTIONS][0]) == 4
    assert "1 of 3 docs have no options" in caplog.text
    assert out.column_names[: len(dataset.column_names)] == dataset.column_names  # official fields untouched
    with pytest.raises(ValueError, match="Unknown benchmark 'mvbench'; known"):
        add_msjoe_fields(dataset, "mvbench")
    with pytest.raises(ValueError, match="Unknown benchmark 'mvbench'; known"):
        official_task_utils("mvbench")


# ---------------------------------------------------------------------------------------------- videos
def test_video_root_from_env_and_suffix_fallback(tmp_path, monkeypatch):
    (tmp_path / "fixtureVMME.MP4").write_bytes(b"")
    monkeypatch.setenv("MSJOE_VIDEOMME_VIDEO_ROOT", str(tmp_path))
    assert BENCHMARKS["videomme"].doc_to_visual(VIDEOMME_ROWS[0]) == [str(tmp_path / "fixtureVMME.MP4")]


def test_default_video_root_follows_lmms_eval_layout_under_hf_home(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.delenv("MSJOE_MLVU_VIDEO_ROOT", raising=False)
    monkeypatch.setattr(constants, "HF_HOME", str(tmp_path))
    (tmp_path / "mlvu").mkdir()
    (tmp_path / "mlvu" / "fixtureMLVU.mp4").write_bytes(b"")
    assert BENCHMARKS["mlvu"].video_path(MLVU_ROWS[0]) == str(tmp_path / "mlvu" / "fixtureMLVU.mp4")
    assert BENCHMARKS["longvideobench"].video_root() == str(tmp_path / "datasets" / "longvideobench" / "videos")


def test_missing_video_names_the_variable_to_set(tmp_path, monkeypatch):
    monkeypatch.setenv("MSJOE_LVBENCH_VIDEO_ROOT", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="set MSJOE_LVBENCH_VIDEO_ROOT to the folder that holds fixtureLVBench.mp4"):  # fmt: skip
        BENCHMARKS["lvbench"].doc_to_visual(LVBENCH_ROWS[0])


# ---------------------------------------------------------------------------------------------- official code
@pytest.mark.parametrize(
    ("benchmark", "names"),
    [
        ("videomme", ["videomme_doc_to_text", "videomme_process_results", "videomme_aggregate_results"]),
        (
            "longvideobench",
            ["longvideobench_doc_to_text", "longvideobench_process_results", "longvideobench_aggregate_results"],
        ),
        ("lvbench", ["lvbench_doc_to_text", "lvbench_process_results"]),
        ("mlvu", ["mlvu_doc_to_text", "mlvu_process_results", "mlvu_aggregate_results_dev"]),
    ],
)
def test_task_utils_are_the_official_functions(benchmark, names):
    ours, official = _load_task_utils(benchmark), official_task_utils(benchmark)
    assert official.__name__ == f"lmms_eval.tasks.{benchmark}.utils"
    for name in names:
        assert getattr(ours, name) is getattr(official, name)


@pytest.mark.parametrize(("ours", "theirs"), sorted(OFFICIAL_YAML.items()))
def test_task_yamls_keep_the_official_split_metric_and_prompt(ours, theirs):
    """Drift test: fails when lmms-eval renames a metric, a split or changes a task's prompt settings."""
    import lmms_eval.tasks

    mine = _simple_yaml(os.path.join(tasks_path(), ours))
    official = _simple_yaml(os.path.join(os.path.dirname(lmms_eval.tasks.__file__), theirs))
    for key in ("test_split", "doc_to_target", "generation_kwargs"):
        assert mine[key] == official[key], key
    assert mine["lmms_eval_specific_kwargs"]["default"] == official["lmms_eval_specific_kwargs"]["default"]
    assert [m["metric"] for m in mine["metric_list"]] == [m["metric"] for m in official["metric_list"]]
    assert mine["doc_to_text"] == official["doc_to_text"] and mine["process_results"] == official["process_results"]
    assert "video" not in (mine.get("dataset_kwargs") or {})  # never downloads videos


def test_videomme_long_uses_the_official_filter():
    utils = _load_task_utils("videomme")
    rows = [VIDEOMME_ROWS[0], {**VIDEOMME_ROWS[1], "duration": "long"}]
    out = utils.process_docs_long(datasets.Dataset.from_list(rows))
    assert out["question_id"] == ["001-2"] and out[MSJOE_QUESTION] == [VIDEOMME_ROWS[1]["question"]]


# ---------------------------------------------------------------------------------------------- compat + CLI
def test_compat_longvideobench_utils_import_decord():
    """Drift test: lmms-eval's LongVideoBench utils import decord at module level without depending on it.
    When this fails, `_compat.import_lmms_eval_task_utils`' placeholder is no longer needed."""
    spec = importlib.util.find_spec("lmms_eval.tasks.longvideobench.utils")
    with open(spec.origin) as handle:
        assert "from decord import VideoReader, cpu" in handle.read()
    if importlib.util.find_spec("decord") is None:
        module = official_task_utils("longvideobench")
        assert "decord" not in sys.modules  # the placeholder lived only during the import
        with pytest.raises(ImportError, match="decord is not installed"):
            module.load_video("video.mp4", 10.0)


def test_tasks_path_command(capsys):
    assert main(["lmms-eval-tasks-path"]) == 0
    folder = capsys.readouterr().out.strip()
    assert folder == tasks_path()
    found = set()
    for root, _, files in os.walk(folder):
        for name in files:
            if name.endswith(".yaml"):
                found.add(_simple_yaml(os.path.join(root, name))["task"])
    assert found == set(TASK_NAMES)


def test_task_yaml_headers_say_msjoe_only_logs_the_task_prompt():
    """msjoe answers with its own templates (the task's doc_to_text is only logged): no header may claim that msjoe
    sees the official prompt."""
    for root, _, files in os.walk(tasks_path()):
        for name in files:
            if name.endswith(".yaml") and name != "msjoe_videomme_long.yaml":  # that one includes msjoe_videomme's
                with open(os.path.join(root, name)) as handle:
                    header = " ".join(line.lstrip("# ").strip() for line in handle if line.startswith("#"))
                assert "same prompt" not in header, name
                assert "same scorer and aggregation" in header and "the task prompt is only logged" in header, name


def test_offline_override_folder_holds_every_task(tmp_path):
    """The documented offline recipe: an override folder passed *instead of* the package folder must hold every
    msjoe_* task, each pointed at the local copy (msjoe_videomme_long at the Video-MME one)."""
    from lmms_eval.tasks import TaskManager

    copies = write_benchmarks(tmp_path / "data")
    manager = TaskManager("WARNING", include_path=write_task_overrides(tmp_path / "tasks", copies, tasks_path()), include_defaults=False)  # fmt: skip
    assert set(TASK_NAMES) <= set(manager.all_tasks)
    for task in TASK_NAMES:
        benchmark = "msjoe_videomme" if task == "msjoe_videomme_long" else task
        config = manager._get_config(task)
        assert (config["task"], config["dataset_path"]) == (task, copies[benchmark].dataset_path)
    assert manager._get_config("msjoe_videomme_long")["process_docs"].__name__ == "process_docs_long"
