"""`--model msjoe` in lmms-eval: one real CLI run, `simple_evaluate` in memory on the four benchmarks, model arguments.

The CLI test runs `lmms-eval` in a subprocess (started in the background when the module begins, see `cli_run`),
offline, with a tiny saved MSJoE checkpoint on one task: it proves the entry point, `--include_path` and the
results file. The four tasks' official metrics are checked in memory: `simple_evaluate` on tiny local copies of
Video-MME, LongVideoBench, LVBench and MLVU (their real schemas, generated 24 s videos), with `answer_batch`
replaced by an oracle that names the letter under which it was shown the correct option's text, must score each
benchmark's maximum.
"""

from __future__ import annotations

import glob
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
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
from transformers_msjoe.lmms_eval_plugin.model import MSJoELmmsEvalModel
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
    """A tiny MSJoE checkpoint folder, as `pretrained=` takes it. Its CLIP is the default `ViT-L-14/openai`, never
    loaded: the tests that use it select frames without CLIP (`selection=uniform`) or fail before, so the CLI run
    can start before this process has imported open_clip (and its ~5 s of imports run alongside)."""
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
    process: subprocess.Popen
    folder: Path  # results/, samples.jsonl, stdout.txt, stderr.txt
    copy: BenchmarkCopy


@pytest.fixture(scope="module", autouse=True)
def cli_run(benchmarks, checkpoint, tmp_path_factory) -> Iterator[CliRun]:
    """The real `lmms-eval` run, started in the background as the module begins: most of its ~15 s is importing
    lmms-eval and indexing its 3000 task yamls on one core, so the other tests of the module run meanwhile.
    `test_cli_...` (last in the module) waits for it; it is killed if still running when the module ends."""
    copies, overrides = benchmarks
    copy, folder = copies["msjoe_lvbench"], tmp_path_factory.mktemp("lmms-eval-cli")
    env = {**os.environ, "HF_HOME": str(folder / "hf"), "LMMS_EVAL_DATASETS_CACHE": str(folder / "datasets")}
    env[copy.video_root_env] = copy.video_root
    command = [
        sys.executable, "-m", "lmms_eval", "--model", "msjoe",
        # selection=uniform: the base model's number in this harness, and no CLIP to load in the subprocess
        "--model_args", f"pretrained={checkpoint},selection=uniform,answer_max_new_tokens=3,sample_log={folder / 'samples.jsonl'}",
        "--tasks", copy.task, "--include_path", overrides,
        "--batch_size", "3", "--output_path", str(folder / "results"), "--verbosity", "WARNING",
    ]  # fmt: skip
    with open(folder / "stdout.txt", "w") as stdout, open(folder / "stderr.txt", "w") as stderr:
        process = subprocess.Popen(command, env=env, stdout=stdout, stderr=stderr, text=True)
    yield CliRun(process, folder, copy)
    if process.poll() is None:
        process.kill()
        process.wait()


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
    lm = MSJoELmmsEvalModel(pretrained="org/tiny-msjoe", revision="main", clip="hf-hub:org/tiny-clip", selection="uniform", device="cpu")  # fmt: skip
    info = lm.get_model_info()
    assert (info["model"], info["revision"], info["model_revision"]) == ("org/tiny-msjoe", "main", "0123456789abcdef0123456789abcdef01234567")  # fmt: skip
    assert (info["clip"], info["clip_revision"]) == ("hf-hub:org/tiny-clip", "fedcba9876543210fedcba9876543210fedcba98")


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


def test_cli_runs_msjoe_on_an_included_task_and_writes_the_results_file(cli_run, checkpoint):
    """`lmms-eval --model msjoe` (entry point) on msjoe_lvbench (found through `--include_path`, local parquet
    and videos): the results file holds the official metric, equal to lmms-eval's own scorer applied to the
    answers msjoe returned, and MSJoE's `model_info`."""
    returncode = cli_run.process.wait(timeout=300)
    stdout = (cli_run.folder / "stdout.txt").read_text()
    assert returncode == 0, stdout[-3000:] + (cli_run.folder / "stderr.txt").read_text()[-3000:]
    (results_file,) = glob.glob(str(cli_run.folder / "results" / "*" / "*_results.json"))
    with open(results_file) as handle:
        results = json.load(handle)
    samples = _read_jsonl(str(cli_run.folder / "samples.jsonl"))
    task = cli_run.copy.task
    assert list(results["results"]) == [task] and f"|{task}|" in stdout  # the results table
    assert results["results"][task][f"{cli_run.copy.metric},none"] == _official_lvbench_score(cli_run, samples)
    assert [s["doc_id"] for s in samples] == [0, 1, 2] and all(s["batch_size"] == 3 for s in samples)
    assert all(len(s["key_frame_timestamps"]) == 4 and s["selection"] == "uniform" for s in samples)
    assert samples[2]["options"] == [
        "A. C. 5",
        "B. D. 6",
        "C. 1",
        "D. U.S. flag",
    ]  # as the official prompt letters them
    info = results["model_info"]
    assert info["model"] == checkpoint and info["sampler"] == "checkpoint" and info["selection"] == "uniform"
    assert info["model_revision"] is None and info["revision"] is None  # a local folder has no Hub commit
    assert (info["num_key_frames"], info["answer_max_new_tokens"], info["candidate_fps"]) == (4, 3, 1.0)
    assert len(info["prompt_templates_sha256"]) == 64 and info["key_frame_max_pixels"] > 0
    assert results["throughput"]["avg_msjoe_answer_turn_seconds_per_doc"] > 0


def _official_lvbench_score(cli_run: CliRun, samples: list[dict]) -> float:
    """The task's metric recomputed from the logged responses with lmms-eval's own LVBench scorer (a mean)."""
    import datasets

    scorer = official_task_utils("lvbench").lvbench_process_results
    docs = datasets.load_dataset(cli_run.copy.dataset_path, split="train", cache_dir=str(cli_run.folder / "datasets"))
    responses = {s["doc_id"]: s["response"] for s in samples}
    scored = [scorer(docs[i], [responses[i].strip()])["lvbench_score"] for i in range(len(docs))]
    return sum(scored) / len(scored)
