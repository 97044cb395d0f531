"""Difficulty labels: pass rate from n uniform-frame rollouts of the core pipeline, resumable after a crash."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from transformers_msjoe.data import (
    DifficultySettings,
    FilterCriteria,
    build_longvideo_qa,
    filter_dataset,
    label_difficulty,
)
from transformers_msjoe.data import difficulty as difficulty_module
from transformers_msjoe.data.difficulty import RolloutCache
from transformers_msjoe.loading import load_msjoe_model
from transformers_msjoe.video_io import VideoReader


@pytest.fixture(scope="module")
def base_model(tiny_mllm_dir):
    """The tiny MLLM wrapped as the CLI does it; CLIP is named but never loaded (uniform selection)."""
    model = load_msjoe_model(tiny_mllm_dir("qwen2_5_vl"))
    yield model
    assert model._clip_scorer is None  # uniform rollouts never touched CLIP


def _only_tokens(model, *tokens):
    """Generation kwargs that make the random model answer with one sampled token among `tokens`."""
    tokenizer = model.processor.tokenizer
    allowed = [tokenizer.convert_tokens_to_ids(t) for t in tokens]
    return {"prefix_allowed_tokens_fn": lambda batch_id, ids: allowed, "max_new_tokens": 1}


@pytest.fixture(scope="module")
def letters_only(base_model):
    """Answers among "A"/"B" only, so pass rates take many values (the answer C is never sampled)."""
    return _only_tokens(base_model, "A", "B")


def _build(corpus, folder):
    rows = copy.deepcopy(corpus["rows"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    build_longvideo_qa(folder / "qa.jsonl", corpus["videos_dir"], folder / "built", show_progress=False)
    return folder / "built"


@pytest.fixture
def built(longvideo_corpus, tmp_path):
    return _build(longvideo_corpus, tmp_path / "raw")


class SimulatedCrash(RuntimeError):
    """Stands in for a killed process (anything that is not a video decode error propagates)."""


SETTINGS = DifficultySettings(model="tiny-qwen2_5_vl", num_rollouts=4, num_key_frames=2, seed=3)  # K=2: fast on the CPU


def _pass_rates(folder):
    table = pq.read_table(folder / "data/train/metadata.parquet").to_pydict()
    return dict(zip(table["id"], table["pass_rate"]))


def _predictions(report):
    return {key[1]: record["predictions"] for key, record in RolloutCache(report.cache_path).records.items()}


def _count_calls(monkeypatch, model):
    calls = []
    real = model.answer_batch
    monkeypatch.setattr(model, "answer_batch", lambda *a, **k: calls.append(len(a[0])) or real(*a, **k))
    return calls


@pytest.fixture(scope="module")
def uninterrupted(longvideo_corpus, base_model, letters_only, tmp_path_factory):
    """Factory: `(folder, report)` of an uninterrupted run with `rows_per_batch` (computed once per value; read-only)."""
    runs = {}

    def run(rows_per_batch):
        if rows_per_batch not in runs:
            folder = _build(longvideo_corpus, tmp_path_factory.mktemp(f"reference-{rows_per_batch}"))
            report = label_difficulty(folder, base_model, SETTINGS, rows_per_batch=rows_per_batch, generation_kwargs=letters_only, show_progress=False)  # fmt: skip
            runs[rows_per_batch] = (folder, report)
        return runs[rows_per_batch]

    return run


def test_pass_rate_is_the_fraction_of_correct_rollouts(uninterrupted):
    built, report = uninterrupted(2)
    assert report.labelled == report.computed == 5 and report.failed == []
    predictions = _predictions(report)
    answers = {"a-0": "A", "a-1": "C", "b-0": "B", "b-1": "A", "c-0": "C"}
    rates = _pass_rates(built)
    for row_id, rate in rates.items():
        assert len(predictions[row_id]) == 4 and set(predictions[row_id]) <= {"A", "B"}
        assert rate == sum(p == answers[row_id] for p in predictions[row_id]) / 4
    assert rates["a-1"] == rates["c-0"] == 0.0  # the answer C is never sampled
    assert len(set(rates.values())) > 1
    assert report.rollouts == 20 and report.unparsed_rollouts == 0 and report.parse_failure_rate == 0.0
    assert report.parse_warning() is None
    saved = json.loads(Path(report.report_path).read_text())
    assert report.report_path.endswith(".msjoe/reports/label-difficulty-1.json")
    assert (
        saved["parse_failure_rate"] == 0.0 and saved["rows_per_batch"] == 2 and saved["settings"]["num_rollouts"] == 4
    )
    card = (built / "README.md").read_text()
    assert "**label-difficulty**" in card and "num_rollouts=4" in card and "5 of 5 questions labelled" in card


@pytest.mark.parametrize(
    ("rows_per_batch", "crash_at_record", "from_cache", "calls_after"), [(1, 3, 2, 3), (2, 4, 3, 2)]
)
def test_a_crash_loses_nothing_and_the_resumed_run_matches_an_uninterrupted_one(
    built, base_model, letters_only, uninterrupted, monkeypatch, rows_per_batch, crash_at_record, from_cache, calls_after
):  # fmt: skip
    """The process dies while writing a record (a torn last line). With rows_per_batch=2 the crash splits the
    chunk [b-0, b-1]: the rerun must run that chunk whole, with its seed, and append only b-1."""
    real_append, appended = RolloutCache.append, []

    def append_then_crash(self, record):
        appended.append(record["id"])
        if len(appended) == crash_at_record:
            with open(self.path, "a") as handle:
                handle.write(json.dumps(record)[:25])
            raise SimulatedCrash(f"killed while writing the record of {record['id']}")
        real_append(self, record)

    monkeypatch.setattr(RolloutCache, "append", append_then_crash)
    with pytest.raises(SimulatedCrash):
        label_difficulty(built, base_model, SETTINGS, rows_per_batch=rows_per_batch, generation_kwargs=letters_only, show_progress=False)  # fmt: skip
    assert set(_pass_rates(built).values()) == {None}  # metadata untouched by the crashed run
    monkeypatch.setattr(RolloutCache, "append", real_append)

    calls = _count_calls(monkeypatch, base_model)
    report = label_difficulty(built, base_model, SETTINGS, rows_per_batch=rows_per_batch, generation_kwargs=letters_only, show_progress=False)  # fmt: skip
    assert report.from_cache == from_cache and report.computed == 5 - from_cache and len(calls) == calls_after
    reference_folder, reference = uninterrupted(rows_per_batch)
    assert _predictions(report) == _predictions(reference)  # the same samples, not merely the same rates
    assert _pass_rates(built) == _pass_rates(reference_folder)
    lines = Path(report.cache_path).read_text().splitlines()
    assert len(lines) == 5 and all(json.loads(line) for line in lines)  # torn line dropped, each row once


def test_n_rollouts_decode_each_video_once_and_match_a_plain_reader(
    built, base_model, letters_only, uninterrupted, monkeypatch
):
    """Uniform selection asks every rollout for the same K frames: one decode per video and chunk, same answers."""
    decodes = []
    real_iter = VideoReader.iter_frames_at
    monkeypatch.setattr(
        VideoReader, "iter_frames_at", lambda self, *a, **k: decodes.append(self.label) or real_iter(self, *a, **k)
    )
    decode_once = difficulty_module._DecodeOnceReader
    monkeypatch.setattr(difficulty_module, "_DecodeOnceReader", VideoReader)
    plain = label_difficulty(
        built, base_model, SETTINGS, rows_per_batch=2, generation_kwargs=letters_only, show_progress=False
    )
    assert len(decodes) == 20  # 5 questions x 4 rollouts
    assert _predictions(plain) == _predictions(uninterrupted(2)[1])  # the reference decoded once per chunk
    monkeypatch.setattr(difficulty_module, "_DecodeOnceReader", decode_once)
    decodes.clear()
    rows = [r for r in pq.read_table(built / "data/train/metadata.parquet").to_pylist() if r["video_id"] == "long_a"]
    records = difficulty_module._run_rollouts(
        base_model, str(built), "train", rows, SETTINGS, {"do_sample": True, **letters_only}
    )
    assert [r["id"] for r in records] == ["a-0", "a-1"] and decodes == [
        decodes[0]
    ]  # 2 questions x 4 rollouts: 1 decode


def test_unparsable_answers_are_counted_reported_and_warned_about(built, base_model, caplog):
    settings = DifficultySettings(model="tiny-qwen2_5_vl", num_rollouts=2, num_key_frames=2)
    report = label_difficulty(built, base_model, settings, rows_per_batch=5, generation_kwargs=_only_tokens(base_model, "x"), show_progress=False)  # fmt: skip
    assert report.labelled == 5 and set(_pass_rates(built).values()) == {0.0}
    assert report.rollouts == 10 and report.unparsed_rollouts == 10 and report.parse_failure_rate == 1.0
    assert report.unparsed_examples == ["x", "x", "x"]
    warning = report.parse_warning()
    assert warning.startswith("10 of 10 answers (100%) gave no option letter") and "--max-new-tokens" in warning
    assert json.loads(Path(report.report_path).read_text())["unparsed_rollouts"] == 10
    assert "parse_failure_rate=1.0" in (built / "README.md").read_text()


def test_labelled_rows_are_skipped_unless_overwrite(built, base_model, letters_only):
    label_difficulty(built, base_model, SETTINGS, rows_per_batch=2, generation_kwargs=letters_only, show_progress=False)
    again = label_difficulty(built, base_model, SETTINGS, generation_kwargs=letters_only, show_progress=False)
    assert again.skipped_already_labelled == 5 and again.computed == 0 and again.labelled == 0
    other = DifficultySettings(model="tiny-qwen2_5_vl", num_rollouts=2, num_key_frames=2, seed=3)
    relabel = label_difficulty(
        built, base_model, other, overwrite=True, rows_per_batch=2, generation_kwargs=letters_only, show_progress=False
    )
    assert relabel.computed == 5 and relabel.cache_path != again.cache_path  # other settings: other cache
    assert set(_pass_rates(built).values()) <= {0.0, 0.5, 1.0}


def test_a_video_that_fails_at_labelling_time_is_reported_and_left_unlabelled(built, base_model, letters_only):
    (built / "data/train/videos/long_b.mp4").write_bytes(b"damaged after the build")
    report = label_difficulty(
        built, base_model, SETTINGS, rows_per_batch=2, generation_kwargs=letters_only, show_progress=False
    )
    assert sorted(f["id"] for f in report.failed) == ["b-0", "b-1"] and report.labelled == 3
    rates = _pass_rates(built)
    assert rates["b-0"] is None and rates["b-1"] is None and rates["a-0"] is not None


def test_a_filter_run_during_labelling_is_not_undone(built, base_model, letters_only, monkeypatch):
    """Rollouts run outside the folder lock; the labels are merged into the metadata as it is when they finish."""
    real_append = RolloutCache.append

    def filter_after_the_rollouts(self, record):
        real_append(self, record)
        if len(self.records) == 5:  # another process filters the folder before this run writes its labels
            filter_dataset(built, FilterCriteria(min_duration=50))  # drops b-0, b-1, c-0 and their videos

    monkeypatch.setattr(RolloutCache, "append", filter_after_the_rollouts)
    report = label_difficulty(
        built, base_model, SETTINGS, rows_per_batch=2, generation_kwargs=letters_only, show_progress=False
    )
    assert sorted(_pass_rates(built)) == ["a-0", "a-1"] and None not in _pass_rates(built).values()
    assert report.labelled == 2
    steps = [s["step"] for s in json.loads((built / ".msjoe/provenance.json").read_text())["steps"]]
    assert steps == ["build", "filter", "label-difficulty"]


def test_a_second_run_with_the_same_settings_is_refused_while_one_runs(built, base_model):
    """The other run is another process holding the cache's lock (as it would be: a second job on the folder)."""
    cache_path = built / ".msjoe/difficulty" / SETTINGS.cache_name()
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", _LOCK_HOLDER, f"{cache_path}.lock"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(TimeoutError, match="Another label-difficulty run with the same settings"):
            label_difficulty(built, base_model, SETTINGS, show_progress=False)
    finally:
        holder.stdin.close()  # the holder releases and exits
        holder.wait(timeout=30)


_LOCK_HOLDER = """
import sys
from filelock import FileLock
with FileLock(sys.argv[1]):
    print("locked", flush=True)
    sys.stdin.read()
"""


def test_settings_are_validated():
    with pytest.raises(ValueError, match="must be positive"):
        DifficultySettings(model="m", num_rollouts=0)
    with pytest.raises(ValueError, match="rollouts are sampled"):
        DifficultySettings(model="m", temperature=0.0)


def test_cli_labels_with_an_msjoe_checkpoint_as_model(built, base_model, tmp_path, capsys):
    """`--model` may be an MSJoE checkpoint (as well as a plain MLLM, see test_data_cli.py)."""
    from transformers_msjoe.cli.main import main

    checkpoint = tmp_path / "msjoe-checkpoint"
    base_model.save_pretrained(checkpoint)
    args = ["data", "label-difficulty", str(built), "--model", str(checkpoint), "--num-rollouts", "2", "--frames", "2", "--max-new-tokens", "2", "--split", "train"]  # fmt: skip
    assert main(args) == 0
    assert "labelled 5 questions (5 computed now" in capsys.readouterr().out
    assert all(rate in (0.0, 0.5, 1.0) for rate in _pass_rates(built).values())
    with pytest.raises(SystemExit):
        main([*args[:-1], "test"])
    assert "Unknown split(s) ['test']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*args, "--dtype", "bfloat61"])
    assert "invalid choice: 'bfloat61'" in capsys.readouterr().err


def test_recompute_discards_the_cached_rollouts_and_runs_them_again(built, base_model, letters_only):
    first = label_difficulty(built, base_model, SETTINGS, rows_per_batch=2, generation_kwargs=letters_only, show_progress=False)  # fmt: skip
    rates = _pass_rates(built)
    relabel = label_difficulty(built, base_model, SETTINGS, overwrite=True, rows_per_batch=2, generation_kwargs=letters_only, show_progress=False)  # fmt: skip
    assert relabel.from_cache == 5 and relabel.computed == 0  # --overwrite alone reuses this setting's rollouts
    fresh = label_difficulty(built, base_model, SETTINGS, recompute=True, rows_per_batch=2, generation_kwargs=letters_only, show_progress=False)  # fmt: skip
    assert fresh.discarded_from_cache == 5 and fresh.computed == 5 and fresh.from_cache == 0 and fresh.labelled == 5
    assert fresh.cache_path == first.cache_path and len(Path(fresh.cache_path).read_text().splitlines()) == 5
    assert _pass_rates(built) == rates  # same settings and seed: the same samples
    assert json.loads((built / ".msjoe/provenance.json").read_text())["steps"][-1]["recompute"] is True


def test_new_weights_under_the_same_path_get_new_rollouts(built, base_model, letters_only, tiny_mllm_dir, tmp_path):
    """The cache key holds the weights' identity, not only the model's name: a checkpoint retrained in place
    (same path, new safetensors) is never answered from the old rollouts."""
    import os
    import shutil

    from transformers_msjoe.data import model_weights_identity

    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(tiny_mllm_dir("qwen2_5_vl"), checkpoint)
    settings = DifficultySettings(model=str(checkpoint), num_rollouts=2, num_key_frames=2)
    before = label_difficulty(built, base_model, settings, rows_per_batch=5, generation_kwargs=letters_only, show_progress=False)  # fmt: skip
    identity = model_weights_identity(str(checkpoint))
    assert identity.startswith("local:") and json.loads(Path(before.report_path).read_text())["settings"]["model_identity"] == identity  # fmt: skip
    weights = next(checkpoint.glob("*.safetensors"))
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))  # "retrained"
    assert model_weights_identity(str(checkpoint)) != identity
    after = label_difficulty(built, base_model, settings, overwrite=True, rows_per_batch=5, generation_kwargs=letters_only, show_progress=False)  # fmt: skip
    assert after.cache_path != before.cache_path and after.computed == 5 and after.from_cache == 0


def test_a_hub_model_is_identified_by_its_cached_commit(tmp_path, monkeypatch):
    import huggingface_hub.constants

    from transformers_msjoe.data import model_weights_identity

    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = tmp_path / "hub" / "models--org--tiny" / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (tmp_path / "hub" / "models--org--tiny" / "refs").mkdir()
    (tmp_path / "hub" / "models--org--tiny" / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    assert model_weights_identity("org/tiny") == f"hub:{commit}"
    assert model_weights_identity("org/not-downloaded") is None and model_weights_identity("a label") is None


def test_cli_shows_the_parse_warning_once(built, base_model, monkeypatch, capsys, caplog):
    """label_difficulty logs the warning; the CLI used to print it a second time."""
    from transformers_msjoe.cli.main import main

    only_x, real = _only_tokens(base_model, "x"), base_model.answer_batch
    monkeypatch.setattr(base_model, "answer_batch", lambda *a, **k: real(*a, **{**k, "generation_kwargs": {**k["generation_kwargs"], **only_x}}))  # fmt: skip
    monkeypatch.setattr("transformers_msjoe.loading.load_msjoe_model", lambda *a, **k: base_model)
    assert (
        main(["data", "label-difficulty", str(built), "--model", "tiny", "--num-rollouts", "2", "--frames", "2"]) == 0
    )
    out = capsys.readouterr().out
    logged = [r.getMessage() for r in caplog.records if "gave no option letter" in r.getMessage()]
    assert len(logged) == 1 and "gave no option letter" not in out  # logged once (stderr), not printed again
    assert "unparsable answers (counted as wrong): 10 of 10 (100.0%)" in out
