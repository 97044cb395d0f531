"""`--model msjoe` in lmms-eval: the real CLI on the four benchmarks, `simple_evaluate` in memory, model arguments.

The CLI test runs `lmms-eval` in a subprocess, offline, on tiny local copies of Video-MME, LongVideoBench,
LVBench and MLVU (their real schemas, generated 24 s videos) with a tiny saved MSJoE checkpoint, all four tasks
in one run, and checks that the results file holds each task's official metric, computed from our answers.
"""

from __future__ import annotations

import glob
import inspect
import json
import os
import re
import subprocess
import sys

import pytest
from lmms_eval.api.instance import Instance
from lmms_eval_fixtures import write_benchmarks, write_task_overrides

from transformers_msjoe import MSJoEForVideoQA
from transformers_msjoe.lmms_eval_plugin import tasks_path
from transformers_msjoe.lmms_eval_plugin.benchmarks import (
    BENCHMARKS,
    MSJOE_OPTIONS,
    MSJOE_QUESTION,
    official_task_utils,
)
from transformers_msjoe.lmms_eval_plugin.model import MSJoELmmsEvalModel

TINY_BUDGETS = dict(num_key_frames=4, query_max_new_tokens=4, answer_max_new_tokens=4, max_candidate_frames=64)


@pytest.fixture(scope="module")
def benchmarks(tmp_path_factory):
    """The four local copies plus the override yamls pointing the msjoe_* tasks at them."""
    root = tmp_path_factory.mktemp("lmms-eval-benchmarks")
    copies = write_benchmarks(root / "data")
    overrides = write_task_overrides(root / "tasks", copies, tasks_path())
    return copies, overrides


@pytest.fixture(scope="module")
def checkpoint(tiny_mllm_dir, tiny_clip_dir, tmp_path_factory) -> str:
    """A tiny MSJoE checkpoint folder, as `pretrained=` takes it."""
    folder = str(tmp_path_factory.mktemp("tiny-msjoe-checkpoint"))
    MSJoEForVideoQA.from_mllm(tiny_mllm_dir(), clip=tiny_clip_dir, **TINY_BUDGETS).save_pretrained(folder)
    return folder


@pytest.fixture
def video_roots(benchmarks, monkeypatch):
    copies, _ = benchmarks
    for copy in copies.values():
        monkeypatch.setenv(copy.video_root_env, copy.video_root)
    return copies


def _read_jsonl(path: str) -> list[dict]:
    with open(path) as handle:
        return [json.loads(line) for line in handle]


# ---------------------------------------------------------------------------------------------- registration
def test_entry_point_registers_msjoe():
    from importlib.metadata import entry_points

    from lmms_eval.models import get_model, get_model_manifest

    assert [ep.value for ep in entry_points(group="lmms_eval.models") if ep.name == "msjoe"] == ["transformers_msjoe.lmms_eval_plugin:lmms_eval_models"]  # fmt: skip
    assert get_model_manifest("msjoe").simple_class_path.endswith("model.MSJoELmmsEvalModel")
    assert get_model("msjoe") is MSJoELmmsEvalModel and MSJoELmmsEvalModel.is_simple


# ---------------------------------------------------------------------------------------------- the real CLI
def test_cli_runs_the_four_benchmarks_with_official_metrics(benchmarks, checkpoint, tmp_path):
    copies, overrides = benchmarks
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "LMMS_EVAL_DATASETS_CACHE": str(tmp_path / "datasets")}
    env.update({copy.video_root_env: copy.video_root for copy in copies.values()})
    sample_log = tmp_path / "samples.jsonl"
    command = [
        sys.executable, "-m", "lmms_eval", "--model", "msjoe",
        "--model_args", f"pretrained={checkpoint},answer_max_new_tokens=3,sample_log={sample_log}",
        "--tasks", ",".join(copies), "--include_path", overrides,
        "--batch_size", "2", "--output_path", str(tmp_path / "results"), "--verbosity", "WARNING",
    ]  # fmt: skip
    run = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    (results_file,) = glob.glob(str(tmp_path / "results" / "*" / "*_results.json"))
    with open(results_file) as handle:
        results = json.load(handle)
    samples = _read_jsonl(str(sample_log))
    assert sorted(results["results"]) == sorted(copies)
    for copy in copies.values():
        value = results["results"][copy.task][f"{copy.metric},none"]
        assert isinstance(value, float) and 0.0 <= value <= 100.0, (copy.task, value)
        assert copy.task in run.stdout  # the results table
    # the official scorers, applied to the answers msjoe returned, give the reported numbers
    for copy in (copies["msjoe_videomme"], copies["msjoe_lvbench"], copies["msjoe_mlvu"]):
        assert results["results"][copy.task][f"{copy.metric},none"] == _official_score(copy, samples, tmp_path)
    assert len(samples) == 8 and {s["task"] for s in samples} == set(copies)
    assert all(len(s["key_frame_timestamps"]) == 4 and s["num_candidates"] == 24 for s in samples)
    mlvu = [s for s in samples if s["task"] == "msjoe_mlvu"]
    assert mlvu[0]["question"] == "What colour is the square?" and mlvu[0]["options"][0] == "A. red"
    info = results["model_info"]
    assert info["model"] == checkpoint and info["sampler"] == "checkpoint" and info["selection"] == "msjoe"
    assert (info["num_key_frames"], info["answer_max_new_tokens"], info["candidate_fps"]) == (4, 3, 1.0)
    assert len(info["prompt_templates_sha256"]) == 64 and info["key_frame_max_pixels"] > 0
    assert results["throughput"]["avg_msjoe_answer_turn_seconds_per_doc"] > 0


def _official_score(copy, samples: list[dict], tmp_path) -> float:
    """Recompute a task's metric from the logged responses with lmms-eval's own process/aggregate functions."""
    import datasets

    official = official_task_utils(copy.benchmark)
    docs = next(iter(datasets.load_dataset(copy.dataset_path, cache_dir=str(tmp_path / "datasets")).values()))
    responses = {s["doc_id"]: s["response"] for s in samples if s["task"] == copy.task}
    process_results = getattr(official, f"{copy.benchmark}_process_results")
    scored = [process_results(docs[i], [responses[i].strip()])[copy.metric] for i in range(len(docs))]
    if copy.benchmark == "lvbench":
        return sum(scored) / len(scored)
    aggregate = official.mlvu_aggregate_results_dev if copy.benchmark == "mlvu" else official.videomme_aggregate_results
    return aggregate(scored)


# ---------------------------------------------------------------------------------------------- in memory
def test_simple_evaluate_with_an_in_memory_model(benchmarks, video_roots, tiny_msjoe, tmp_path, monkeypatch):
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    monkeypatch.setenv("LMMS_EVAL_DATASETS_CACHE", str(tmp_path / "datasets"))
    _, overrides = benchmarks
    lm = MSJoELmmsEvalModel(model=tiny_msjoe(**TINY_BUDGETS), selection="uniform", batch_size=2, device="cpu")
    manager = TaskManager("WARNING", include_path=overrides, include_defaults=False, model_name="msjoe")
    results = simple_evaluate(model=lm, tasks=["msjoe_lvbench"], task_manager=manager, log_samples=True)
    assert 0.0 <= results["results"]["msjoe_lvbench"]["lvbench_score,none"] <= 1.0
    assert results["model_info"]["selection"] == "uniform" and results["model_info"]["sampler"] == "in-memory model"
    logged = results["samples"]["msjoe_lvbench"]
    assert [s["doc"][MSJOE_OPTIONS][0] for s in logged] == ["A. a red square", "A. yes"]
    with pytest.raises(RuntimeError, match="build a new MSJoELmmsEvalModel"):
        _ = lm.model  # lmms-eval's clean() released it after the evaluation


# ---------------------------------------------------------------------------------------------- model arguments
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of pretrained"),
        ({"pretrained": "CKPT", "mllm": "MLLM"}, "exactly one of pretrained"),
        ({"pretrained": "CKPT", "num_key_frame": 3}, "Unknown msjoe model argument 'num_key_frame'"),
        ({"pretrained": "CKPT", "selection": "random"}, "Unknown selection 'random'"),
        ({"mllm": "MLLM"}, "sampler of a plain MLLM is untrained"),
        ({"pretrained": "CKPT", "batch_size": "auto"}, "no automatic batch size"),
        ({"pretrained": "CKPT", "dtype": "int8"}, "dtype must be one of"),
        (
            {"pretrained": "CKPT", "selection": "uniform", "selection.temperature": 0.5},
            r"Unknown option\(s\) \['temperature'\]",
        ),
    ],
)
def test_bad_model_arguments_fail_before_evaluation(kwargs, message, checkpoint, tiny_mllm_dir):
    paths = {"CKPT": checkpoint, "MLLM": tiny_mllm_dir()}
    kwargs = {k: paths.get(v, v) if isinstance(v, str) else v for k, v in kwargs.items()}
    with pytest.raises(ValueError, match=message):
        MSJoELmmsEvalModel(device="cpu", **kwargs)


def _request(task: str, doc_id: int, doc_to_visual, context: str = "ctx", gen_kwargs: dict | None = None) -> Instance:
    arguments = (context, gen_kwargs or {"max_new_tokens": 16}, doc_to_visual, doc_id, task, "test")
    return Instance("generate_until", arguments, idx=0, metadata={"task": task, "doc_id": doc_id, "repeats": 1})


def test_mllm_and_clip_arguments_with_generate_until_and_sample_log(video_roots, tiny_mllm_dir, tiny_clip_dir, tmp_path, caplog):  # fmt: skip
    lm = MSJoELmmsEvalModel(
        mllm=tiny_mllm_dir(), clip=tiny_clip_dir, selection="clip_topk", device="cpu", num_key_frames=3,
        candidate_fps=1, answer_max_new_tokens=3, query_max_new_tokens=3, sample_log=str(tmp_path / "log.jsonl"),
    )  # fmt: skip
    info = lm.get_model_info()
    assert info["sampler"] == "untrained" and info["mllm"] == tiny_mllm_dir() and info["clip"].startswith("local-dir:")
    assert isinstance(info["candidate_fps"], float) and info["num_key_frames"] == 3
    mlvu = BENCHMARKS["mlvu"]
    question, options = mlvu.question_and_options({"question": "Which colour?\n(A) red\n(B) blue"})
    lm.task_dict = {
        "with_fields": {"test": [{"video_name": "fixtureMLVU.mp4", MSJOE_QUESTION: question, MSJOE_OPTIONS: options}]},
        "plain": {"test": [{"video_name": "fixtureMLVU.mp4"}]},
    }
    lm._rank, lm._world_size = 1, 2  # as lmms-eval sets them on the second of two processes
    answers = lm.generate_until([_request("with_fields", 0, mlvu.doc_to_visual), _request("plain", 0, mlvu.doc_to_visual, "Describe it.")])  # fmt: skip
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)
    assert "plain docs have no `msjoe_question`" in caplog.text and "max_new_tokens/until are not used" in caplog.text
    records = _read_jsonl(str(tmp_path / "log.rank1.jsonl"))
    assert [(r["task"], r["question"], r["options"], r["response"]) for r in records] == [
        ("with_fields", "Which colour?", ["A. red", "B. blue"], answers[0]),
        ("plain", "Describe it.", [], answers[1]),
    ]
    assert all(len(r["key_frame_timestamps"]) == 3 and r["selection"] == "clip_topk" for r in records)


def test_loglikelihood_and_multi_round_are_not_supported(tiny_msjoe):
    lm = MSJoELmmsEvalModel(model=tiny_msjoe(**TINY_BUDGETS), selection="uniform")
    with pytest.raises(NotImplementedError, match="does not score given continuations"):
        lm.loglikelihood([])
    with pytest.raises(NotImplementedError, match="multi-round tasks are not supported"):
        lm.generate_until_multi_round([])


def test_compat_lmms_eval_has_no_model_info_hook(tiny_msjoe):
    """Drift test: lmms-eval 0.7.3 never stores a model's own description in the results (the call is a
    commented-out TODO) and calls `evaluate` by its module-global name. When this fails, drop
    `_compat.record_lmms_eval_model_info` and use the upstream hook."""
    from lmms_eval import evaluator

    source = inspect.getsource(evaluator.simple_evaluate)
    assert re.search(r'#\s*results\["config"\]\.update\(lm\.get_model_info\(\)\)', source), "upstream hook changed"
    assert not re.search(r"^\s*results\[.config.\]\.update\(lm\.get_model_info", source, re.MULTILINE), "hook is live"
    assert "results = evaluate(" in source
    MSJoELmmsEvalModel(model=tiny_msjoe(**TINY_BUDGETS), selection="uniform")
    assert evaluator.evaluate._msjoe_records_model_info
    assert "lm" in inspect.signature(evaluator.evaluate).parameters
