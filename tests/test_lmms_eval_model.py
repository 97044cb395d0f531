"""`--model msjoe` in lmms-eval: one real CLI run, `simple_evaluate` in memory on the four benchmarks, model arguments.

The `test_cli_*` tests share one real `lmms-eval` run in a subprocess (`cli_run`, started by the first of them),
offline, with a tiny saved MSJoE checkpoint on all four tasks over tiny local copies of Video-MME, LongVideoBench,
LVBench and MLVU (their real schemas, generated 24 s videos): it proves the entry point, `--include_path`, each
task's official metric in the results file and `model_info`. The metrics' wiring is checked in memory:
`simple_evaluate` with `answer_batch` replaced by an oracle that names the letter under which it was shown the
correct option's text must score each benchmark's maximum.
"""

from __future__ import annotations

import glob
import hashlib
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
import torch
from fixtures.lmms_eval import BenchmarkCopy, gold_option_texts, write_benchmarks, write_task_overrides
from lmms_eval.api.instance import Instance

from transformers_msjoe import MSJoEForVideoQA
from transformers_msjoe.lmms_eval_plugin import tasks_path
from transformers_msjoe.lmms_eval_plugin.benchmarks import (
    BENCHMARKS,
    MSJOE_OPTIONS,
    MSJOE_QUESTION,
    official_task_utils,
)
from transformers_msjoe.lmms_eval_plugin.model import PADDING_FLAG, MSJoELmmsEvalModel
from transformers_msjoe.modeling_outputs import MSJoEVideoQAOutput
from transformers_msjoe.prompts import letter_options

# tiny budgets: 24 candidates (1 fps over 24 s), 4 key frames, a few tokens per turn
TINY_BUDGETS = dict(num_key_frames=4, query_max_new_tokens=4, answer_max_new_tokens=2, max_candidate_frames=64)
# the best value of each task's official metric: percentages for Video-MME and MLVU, fractions otherwise
MAX_SCORES = {"msjoe_videomme": 100.0, "msjoe_longvideobench": 1.0, "msjoe_lvbench": 1.0, "msjoe_mlvu": 100.0}


@pytest.fixture(scope="module")
def benchmarks(tmp_path_factory):
    """The four local copies plus the override yamls pointing the msjoe_* tasks at them."""
    root = tmp_path_factory.mktemp("lmms-eval-benchmarks")
    copies = write_benchmarks(root / "data")
    overrides = write_task_overrides(root / "tasks", copies, tasks_path())
    return copies, overrides


@pytest.fixture(scope="module")
def checkpoint(tiny_mllm_dir, tmp_path_factory) -> str:
    """A tiny MSJoE checkpoint folder, as `pretrained=` takes it, with an untrained sampler. Its CLIP is the default
    `ViT-L-14/openai`, never loaded: the tests that use it select frames without CLIP (`selection=uniform`) or fail
    before."""
    folder = str(tmp_path_factory.mktemp("tiny-msjoe-checkpoint"))
    MSJoEForVideoQA.from_mllm(tiny_mllm_dir(), **TINY_BUDGETS).save_pretrained(folder)
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
@dataclass
class CliRun:
    folder: Path  # results/, samples.jsonl
    stdout: str
    results: dict  # the results file
    samples: list[dict]  # the msjoe sample log
    copies: dict[str, BenchmarkCopy]


@pytest.fixture(scope="module")
def cli_run(benchmarks, checkpoint, tmp_path_factory) -> CliRun:
    """One real `lmms-eval` run on the four tasks, shared by the `test_cli_*` tests (~30 s: mostly importing
    lmms-eval and indexing its task yamls). Not autouse, so a `-k` selection without them does not pay for it."""
    copies, overrides = benchmarks
    folder = tmp_path_factory.mktemp("lmms-eval-cli")
    env = {**os.environ, "HF_HOME": str(folder / "hf"), "LMMS_EVAL_DATASETS_CACHE": str(folder / "datasets")}
    env.update({name: "1" for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")})
    env.update({copy.video_root_env: copy.video_root for copy in copies.values()})
    command = [
        sys.executable, "-m", "lmms_eval", "--model", "msjoe",
        # selection=uniform: the base model's number in this harness, and no CLIP to load in the subprocess
        "--model_args", f"pretrained={checkpoint},selection=uniform,answer_max_new_tokens=3,sample_log={folder / 'samples.jsonl'}",
        "--tasks", ",".join(MAX_SCORES), "--include_path", overrides,
        "--batch_size", "3", "--output_path", str(folder / "results"), "--verbosity", "WARNING",
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (results_file,) = glob.glob(str(folder / "results" / "*" / "*_results.json"))
    with open(results_file) as handle:
        results = json.load(handle)
    return CliRun(folder, done.stdout, results, _read_jsonl(str(folder / "samples.jsonl")), copies)


# ---------------------------------------------------------------------------------------------- in memory
def _gold_letter_oracle(gold: dict[str, str]):
    """An `answer_batch` that answers each row with the letter under which its options show the gold text."""

    def answer_batch(videos, questions, options, *, selection, **kwargs) -> list[MSJoEVideoQAOutput]:
        outputs = []
        for question, row_options in zip(questions, options, strict=True):
            letter = {o.text: o.letter for o in letter_options(row_options, lettered=True)}[gold[question]]
            outputs.append(
                MSJoEVideoQAOutput(
                    question=question, options=row_options, selection=selection, answer=letter, option=letter,
                    key_frame_timestamps=torch.zeros(4), timings={"answer_turn": 0.0},
                )
            )  # fmt: skip
        return outputs

    return answer_batch


def test_simple_evaluate_scores_each_official_maximum_when_the_gold_option_is_named(benchmarks, video_roots, tiny_msjoe, tmp_path, monkeypatch):  # fmt: skip
    """Wiring of the four tasks, end to end in lmms-eval: our options (their letters), the answer msjoe returns,
    the official scorer and aggregation. A letter mix-up anywhere scores below the maximum."""
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    monkeypatch.setenv("LMMS_EVAL_DATASETS_CACHE", str(tmp_path / "datasets"))
    copies, overrides = benchmarks
    lm = MSJoELmmsEvalModel(model=tiny_msjoe(**TINY_BUDGETS), selection="uniform", batch_size=2, device="cpu")
    monkeypatch.setattr(lm.model, "answer_batch", _gold_letter_oracle(gold_option_texts()))
    manager = TaskManager("WARNING", include_path=overrides, include_defaults=False, model_name="msjoe")
    results = simple_evaluate(model=lm, tasks=list(MAX_SCORES), task_manager=manager, log_samples=True)
    assert {task: results["results"][task][f"{copies[task].metric},none"] for task in MAX_SCORES} == MAX_SCORES
    assert results["model_info"]["selection"] == "uniform" and results["model_info"]["sampler"] == "in-memory model"
    logged = results["samples"]["msjoe_lvbench"]
    assert [s["doc"][MSJOE_OPTIONS][0] for s in logged] == ["A. a red square", "A. yes", "A. C. 5"]
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
        ({"mllm": "MLLM"}, r"sampler of .* is untrained .*Pass a trained sampler .*selection=uniform"),
        # a checkpoint saved before training: the same rule, from its config.sampler_is_trained
        ({"pretrained": "CKPT"}, r"sampler of .* is untrained \(config.sampler_is_trained=False\)"),
        ({"pretrained": "CKPT", "selection": "msjoe"}, "is untrained"),
        ({"pretrained": "CKPT", "selection": "uniform", "sampler_is_trained": True}, "Unknown msjoe model argument"),
        ({"pretrained": "CKPT", "batch_size": "auto"}, "no automatic batch size"),
        ({"pretrained": "CKPT", "selection": "uniform", "dtype": "int8"}, "dtype must be one of"),
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


def test_untrained_in_memory_model_needs_a_training_free_selection(tiny_msjoe):
    model = tiny_msjoe(**TINY_BUDGETS)
    with pytest.raises(ValueError, match=r"is untrained \(config.sampler_is_trained=False\)"):
        MSJoELmmsEvalModel(model=model)  # the config's default selection, msjoe
    model.config.sampler_is_trained = True
    assert MSJoELmmsEvalModel(model=model).selection == "msjoe"


def test_selection_is_checked_once_before_loading(checkpoint, monkeypatch):
    checks = []
    original = MSJoELmmsEvalModel._check_selection
    monkeypatch.setattr(MSJoELmmsEvalModel, "_check_selection", staticmethod(lambda *a: checks.append(a) or original(*a)))  # fmt: skip
    monkeypatch.setattr(MSJoELmmsEvalModel, "_load", lambda *a: pytest.fail("loaded before the check"))
    with pytest.raises(ValueError, match="is untrained"):
        MSJoELmmsEvalModel(pretrained=checkpoint, device="cpu")
    monkeypatch.undo()
    monkeypatch.setattr(MSJoELmmsEvalModel, "_check_selection", staticmethod(lambda *a: checks.append(a) or original(*a)))  # fmt: skip
    MSJoELmmsEvalModel(pretrained=checkpoint, selection="uniform", device="cpu")
    assert [c[:2] for c in checks] == [("msjoe", False), ("uniform", False)]  # one check per model


def test_model_name_labels_an_mllm_run(tiny_mllm_dir):
    """lmms-eval names the results subfolder after the first of `pretrained=`, `model=`, ..., `model_name=` in
    `--model_args`: an `mllm=` run has none of the others, so `model_name=` is its label (recorded in model_info)."""
    from lmms_eval.loggers.evaluation_tracker import GeneralConfigTracker

    args = f"mllm={tiny_mllm_dir()},selection=uniform"
    assert GeneralConfigTracker._get_model_name(args) == ""  # unlabelled: straight into --output_path
    assert GeneralConfigTracker._get_model_name(f"{args},model_name=qwen-uniform") == "qwen-uniform"
    lm = MSJoELmmsEvalModel.create_from_arg_string(f"{args},model_name=qwen-uniform", {"device": "cpu"})
    assert lm.get_model_info()["model_name"] == "qwen-uniform"


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


def test_stochastic_selection_is_seeded_per_doc_not_per_batch(video_roots, tiny_msjoe, tmp_path):
    """qframe draws frames at random: each doc's draw comes from (seed, task, doc id), so batch_size 1 and 3 give
    the same frames. The sample log is appended to, so the second run's lines follow the first's."""
    model = tiny_msjoe(**TINY_BUDGETS)
    mlvu, log = BENCHMARKS["mlvu"], str(tmp_path / "samples.jsonl")
    doc = {"video_name": "fixtureMLVU.mp4", MSJOE_QUESTION: "What colour is the square?", MSJOE_OPTIONS: ["A. red", "B. blue"]}  # fmt: skip
    requests = [_request("msjoe_mlvu", doc_id, mlvu.doc_to_visual) for doc_id in range(3)]
    for batch_size in (1, 3):
        lm = MSJoELmmsEvalModel(model=model, selection="qframe", batch_size=batch_size, seed=7, sample_log=log)
        lm.task_dict = {"msjoe_mlvu": {"test": [doc] * 3}}  # three identical docs: only their ids differ
        lm.generate_until(requests)
    records = _read_jsonl(log)
    assert [(r["batch_size"], r["doc_id"]) for r in records] == [(1, 0), (1, 1), (1, 2), (3, 0), (3, 1), (3, 2)]
    picks = [tuple(r["key_frame_timestamps"]) for r in records]
    assert picks[:3] == picks[3:]  # the same doc, the same frames, whatever its batch
    assert len(set(picks[:3])) > 1  # yet the selection is random: identical docs with other ids draw other frames


def _recording_answer_batch(calls: list[list[str]]):
    """An `answer_batch` that records each call's questions and answers "A"."""

    def answer_batch(videos, questions, options, *, selection, **kwargs) -> list[MSJoEVideoQAOutput]:
        calls.append(list(questions))
        return [
            MSJoEVideoQAOutput(
                question=q, options=o, selection=selection, answer="A", option="A",
                key_frame_timestamps=torch.zeros(4), timings={"answer_turn": 0.0},
            )
            for q, o in zip(questions, options, strict=True)
        ]  # fmt: skip

    return answer_batch


def test_padding_requests_are_answered_empty_without_running_or_logging(video_roots, tiny_msjoe, tmp_path, monkeypatch):  # fmt: skip
    """Under several processes lmms-eval pads a rank's requests with copies of its last one; their answers are
    never scored, so msjoe neither runs the pipeline for them nor writes them to the sample log."""
    from lmms_eval.evaluator import _clone_padding_request

    lm = MSJoELmmsEvalModel(model=tiny_msjoe(**TINY_BUDGETS), selection="uniform", batch_size=4, sample_log=str(tmp_path / "log.jsonl"))  # fmt: skip
    calls: list[list[str]] = []
    monkeypatch.setattr(lm.model, "answer_batch", _recording_answer_batch(calls))
    mlvu = BENCHMARKS["mlvu"]
    visuals: list[int] = []

    def doc_to_visual(doc):
        visuals.append(1)
        return mlvu.doc_to_visual(doc)

    docs = [{"video_name": "fixtureMLVU.mp4", MSJOE_QUESTION: f"Question {i}?", MSJOE_OPTIONS: ["A. x", "B. y"]} for i in range(2)]  # fmt: skip
    lm.task_dict = {"msjoe_mlvu": {"test": docs}}
    real = [_request("msjoe_mlvu", doc_id, doc_to_visual) for doc_id in range(2)]
    padding = _clone_padding_request(real[-1])
    assert padding.metadata[PADDING_FLAG] is True
    assert lm.generate_until([*real, padding, padding]) == ["A", "A", "", ""]
    assert calls == [["Question 0?", "Question 1?"]] and len(visuals) == 2
    assert [r["doc_id"] for r in _read_jsonl(str(tmp_path / "log.jsonl"))] == [0, 1]


def test_compat_padding_requests_are_marked():
    """Drift test: lmms-eval 0.7.3 marks both kinds of rank padding with `metadata["__padding_only__"]`."""
    from lmms_eval import evaluator
    from lmms_eval.api.task import Task

    assert f'metadata["{PADDING_FLAG}"] = True' in inspect.getsource(evaluator._clone_padding_request)
    assert f'"{PADDING_FLAG}": True' in inspect.getsource(Task.build_all_requests)


def test_model_info_reads_world_size_and_batch_size_when_read(tiny_msjoe):
    lm = MSJoELmmsEvalModel(model=tiny_msjoe(**TINY_BUDGETS), selection="uniform", batch_size=2)
    lm._world_size = 2  # as lmms-eval's evaluator sets it under torchrun, after the model is built
    info = lm.get_model_info()
    assert (info["world_size"], info["batch_size"]) == (2, 2)
    assert info["clip_hub_repo"] is None and info["clip_revision_note"] == "a local open_clip folder: no Hub commit"


def test_model_info_records_a_sampler_folder_by_its_weights(tiny_msjoe, tiny_mllm_dir, tiny_clip_dir, tmp_path):
    folder = tmp_path / "sampler"
    tiny_msjoe(**TINY_BUDGETS).sampler.save_pretrained(folder)
    lm = MSJoELmmsEvalModel(mllm=tiny_mllm_dir(), clip=tiny_clip_dir, sampler=str(folder), device="cpu", **TINY_BUDGETS)  # fmt: skip
    info = lm.get_model_info()
    expected = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert info["sampler"] == str(folder) and info["sampler_weights_sha256"] == {"model.safetensors": expected}
    assert info["sampler_is_trained"] is True and lm.selection == "msjoe"  # a trained sampler allows msjoe


def _cache_as_hub_repo(cache: Path, repo_id: str, folder: str, commit: str) -> None:
    """Lay `folder` out in a Hub cache as `repo_id` at `commit` (what a download leaves behind)."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)


def test_model_info_records_the_hub_commits_loaded(checkpoint, tiny_clip_dir, tmp_path, monkeypatch):
    """Hub ids are recorded with the commit their cached files came from (the MSJoE checkpoint's `config.json`,
    the open_clip repo's `open_clip_config.json`), next to the revision asked for."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    # huggingface_hub reads HF_HUB_OFFLINE once, at import (before conftest sets it): without this, each lookup
    # of the cached ids would first try the network
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    _cache_as_hub_repo(tmp_path, "org/tiny-msjoe", checkpoint, "0123456789abcdef0123456789abcdef01234567")
    _cache_as_hub_repo(tmp_path, "org/tiny-clip", tiny_clip_dir, "fedcba9876543210fedcba9876543210fedcba98")
    # where open_clip downloads the built-in `ViT-L-14/openai` from (its pretrained table's `hf_hub`)
    _cache_as_hub_repo(tmp_path, "timm/vit_large_patch14_clip_224.openai", tiny_clip_dir, "a" * 40)
    lm = MSJoELmmsEvalModel(pretrained="org/tiny-msjoe", revision="main", clip="hf-hub:org/tiny-clip", selection="uniform", device="cpu")  # fmt: skip
    info = lm.get_model_info()
    assert (info["model"], info["revision"], info["model_revision"]) == ("org/tiny-msjoe", "main", "0123456789abcdef0123456789abcdef01234567")  # fmt: skip
    assert (info["clip"], info["clip_hub_repo"], info["clip_revision"]) == ("hf-hub:org/tiny-clip", "org/tiny-clip", "fedcba9876543210fedcba9876543210fedcba98")  # fmt: skip
    info = MSJoELmmsEvalModel(pretrained="org/tiny-msjoe", selection="uniform", device="cpu").get_model_info()
    assert (info["clip"], info["clip_hub_repo"], info["clip_revision"], info["clip_revision_note"]) == ("ViT-L-14/openai", "timm/vit_large_patch14_clip_224.openai", "a" * 40, None)  # fmt: skip


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


@pytest.mark.parametrize("task", sorted(MAX_SCORES))
def test_cli_results_file_holds_each_tasks_official_metric(cli_run, task):
    """`lmms-eval --model msjoe` (entry point) on the four msjoe_* tasks (found through `--include_path`, local
    parquet and videos): the results file holds each task's official metric key, in its range, and the printed
    table a row for it. Values are not asserted: LongVideoBench's scorer guesses a letter when it finds none."""
    copy = cli_run.copies[task]
    assert set(cli_run.results["results"]) == set(MAX_SCORES)
    score = cli_run.results["results"][task][f"{copy.metric},none"]
    assert 0.0 <= score <= MAX_SCORES[task]
    assert f"|{task}" in cli_run.stdout  # the results table
    assert sorted({s["task"] for s in cli_run.samples}) == sorted(MAX_SCORES)


def test_cli_lvbench_score_is_the_official_scorer_of_the_logged_answers(cli_run):
    """The metric equals lmms-eval's own LVBench scorer applied to the answers msjoe returned (its sample log)."""
    samples = [s for s in cli_run.samples if s["task"] == "msjoe_lvbench"]
    assert [s["doc_id"] for s in samples] == [0, 1, 2] and all(s["batch_size"] == 3 for s in samples)
    assert all(len(s["key_frame_timestamps"]) == 4 and s["selection"] == "uniform" for s in samples)
    assert samples[2]["options"] == ["A. C. 5", "B. D. 6", "C. 1", "D. U.S. flag"]  # as the official prompt has them
    score = cli_run.results["results"]["msjoe_lvbench"]["lvbench_score,none"]
    assert score == _official_lvbench_score(cli_run, samples)


def test_cli_results_file_records_model_info(cli_run, checkpoint):
    info = cli_run.results["model_info"]
    assert info["model"] == checkpoint and info["sampler"] == "checkpoint" and info["selection"] == "uniform"
    assert info["sampler_is_trained"] is False and info["sampler_weights_sha256"] is None
    assert info["model_revision"] is None and info["revision"] is None  # a local folder has no Hub commit
    # a built-in open_clip tag: the Hub repo open_clip downloads it from; not cached in the run's HF_HOME
    assert (info["clip"], info["clip_hub_repo"], info["clip_revision"]) == ("ViT-L-14/openai", "timm/vit_large_patch14_clip_224.openai", None)  # fmt: skip
    assert "not in the local Hub cache" in info["clip_revision_note"]
    assert (info["num_key_frames"], info["answer_max_new_tokens"], info["candidate_fps"]) == (4, 3, 1.0)
    assert (info["batch_size"], info["world_size"]) == (3, 1)
    assert len(info["prompt_templates_sha256"]) == 64 and info["key_frame_max_pixels"] > 0
    assert info["versions"]["lmms_eval"] == metadata.version("lmms-eval") and info["versions"]["torch"] == torch.__version__  # fmt: skip
    assert set(info["versions"]) == {"torch", "transformers", "open_clip", "torchcodec", "transformers_msjoe", "lmms_eval"}  # fmt: skip
    assert cli_run.results["throughput"]["avg_msjoe_answer_turn_seconds_per_doc"] > 0


def _official_lvbench_score(cli_run: CliRun, samples: list[dict]) -> float:
    """The task's metric recomputed from the logged responses with lmms-eval's own LVBench scorer (a mean)."""
    import datasets

    scorer = official_task_utils("lvbench").lvbench_process_results
    copy = cli_run.copies["msjoe_lvbench"]
    docs = datasets.load_dataset(copy.dataset_path, split="train", cache_dir=str(cli_run.folder / "datasets"))
    responses = {s["doc_id"]: s["response"] for s in samples}
    scored = [scorer(docs[i], [responses[i].strip()])["lvbench_score"] for i in range(len(docs))]
    return sum(scored) / len(scored)
