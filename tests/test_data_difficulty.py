"""Difficulty labels: pass rate from n uniform-frame rollouts of the core pipeline, resumable after a crash."""

from __future__ import annotations

import copy
import json
import shutil

import pyarrow.parquet as pq
import pytest

from transformers_msjoe.data import (
    DifficultySettings,
    build_longvideo_qa,
    label_difficulty,
)
from transformers_msjoe.data.difficulty import RolloutCache
from transformers_msjoe.modeling_msjoe import load_msjoe_model


@pytest.fixture(scope="module")
def base_model(tiny_mllm_dir):
    """The tiny MLLM wrapped as the CLI does it; CLIP is named but never loaded (uniform selection)."""
    model = load_msjoe_model(tiny_mllm_dir("qwen2_5_vl"))
    yield model
    assert model._clip_scorer is None  # uniform rollouts never touched CLIP


@pytest.fixture(scope="module")
def letters_only(base_model):
    """Make the random model answer with one sampled token among "A"/"B", so pass rates take many values."""
    tokenizer = base_model.processor.tokenizer
    allowed = [tokenizer.convert_tokens_to_ids("A"), tokenizer.convert_tokens_to_ids("B")]
    return {"prefix_allowed_tokens_fn": lambda batch_id, ids: allowed, "max_new_tokens": 1}


@pytest.fixture
def built(longvideo_corpus, tmp_path):
    rows = copy.deepcopy(longvideo_corpus["rows"])
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "built"
    build_longvideo_qa(tmp_path / "qa.jsonl", longvideo_corpus["videos_dir"], out, show_progress=False)
    return out


class SimulatedCrash(RuntimeError):
    """Stands in for a killed process (anything that is not a video decode error propagates)."""


SETTINGS = DifficultySettings(model="tiny-qwen2_5_vl", num_rollouts=4, num_key_frames=4, seed=3)


def _pass_rates(folder):
    table = pq.read_table(folder / "data/train/metadata.parquet").to_pydict()
    return dict(zip(table["id"], table["pass_rate"]))


def test_pass_rate_is_the_fraction_of_correct_rollouts(built, base_model, letters_only):
    report = label_difficulty(built, base_model, SETTINGS, rows_per_batch=5, generation_kwargs=letters_only, show_progress=False)
    assert report.labelled == report.computed == 5 and report.failed == []
    records = RolloutCache(report.cache_path).records
    answers = {"a-0": "A", "a-1": "C", "b-0": "B", "b-1": "A", "c-0": "C"}
    rates = _pass_rates(built)
    for row_id, rate in rates.items():
        predictions = records[("train", row_id)]["predictions"]
        assert len(predictions) == 4 and set(predictions) <= {"A", "B"}
        assert rate == sum(p == answers[row_id] for p in predictions) / 4
    assert rates["a-1"] == rates["c-0"] == 0.0  # the answer C is never sampled
    assert len(set(rates.values())) > 1
    card = (built / "README.md").read_text()
    assert "**label-difficulty**" in card and "num_rollouts=4" in card and "5 of 5 questions labelled" in card


def test_a_crash_loses_nothing_and_the_resumed_run_matches_an_uninterrupted_one(built, base_model, letters_only, tmp_path, monkeypatch):
    reference = tmp_path / "reference"
    shutil.copytree(built, reference)
    label_difficulty(reference, base_model, SETTINGS, generation_kwargs=letters_only, show_progress=False)

    real_answer_batch = base_model.answer_batch
    calls, crashed = [], []

    def crash_on_third_row(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3 and not crashed:
            crashed.append(True)
            raise SimulatedCrash("killed while labelling the third question")
        return real_answer_batch(*args, **kwargs)

    monkeypatch.setattr(base_model, "answer_batch", crash_on_third_row)
    with pytest.raises(SimulatedCrash):
        label_difficulty(built, base_model, SETTINGS, generation_kwargs=letters_only, show_progress=False)
    cache_file = next((built / ".msjoe/difficulty").iterdir())
    assert len(cache_file.read_text().splitlines()) == 2  # the two finished rows are on disk
    assert set(_pass_rates(built).values()) == {None}  # metadata untouched by the crashed run

    calls.clear()
    report = label_difficulty(built, base_model, SETTINGS, generation_kwargs=letters_only, show_progress=False)
    assert report.from_cache == 2 and report.computed == 3 and len(calls) == 3  # nothing recomputed
    assert _pass_rates(built) == _pass_rates(reference)


def test_a_torn_last_line_is_discarded_and_recomputed(built, base_model, letters_only, monkeypatch):
    report = label_difficulty(built, base_model, SETTINGS, generation_kwargs=letters_only, show_progress=False)
    expected = _pass_rates(built)
    cache_file = built / ".msjoe/difficulty" / report.cache_path.rsplit("/", 1)[-1]
    lines = cache_file.read_text().splitlines(keepends=True)
    cache_file.write_text("".join(lines[:3]) + lines[3][:20])  # crash in the middle of writing row 4
    calls = []
    real_answer_batch = base_model.answer_batch
    monkeypatch.setattr(base_model, "answer_batch", lambda *a, **k: calls.append(1) or real_answer_batch(*a, **k))
    report = label_difficulty(built, base_model, SETTINGS, overwrite=True, generation_kwargs=letters_only, show_progress=False)
    assert report.from_cache == 3 and report.computed == 2 and len(calls) == 2
    assert _pass_rates(built) == expected
    assert all(json.loads(line) for line in cache_file.read_text().splitlines())


def test_labelled_rows_are_skipped_unless_overwrite(built, base_model, letters_only):
    label_difficulty(built, base_model, SETTINGS, rows_per_batch=5, generation_kwargs=letters_only, show_progress=False)
    again = label_difficulty(built, base_model, SETTINGS, generation_kwargs=letters_only, show_progress=False)
    assert again.skipped_already_labelled == 5 and again.computed == 0 and again.labelled == 0
    other = DifficultySettings(model="tiny-qwen2_5_vl", num_rollouts=2, num_key_frames=4, seed=3)
    relabel = label_difficulty(built, base_model, other, overwrite=True, rows_per_batch=5, generation_kwargs=letters_only, show_progress=False)
    assert relabel.computed == 5 and relabel.cache_path != again.cache_path  # other settings: other cache
    assert set(_pass_rates(built).values()) <= {0.0, 0.5, 1.0}


def test_a_video_that_fails_at_labelling_time_is_reported_and_left_unlabelled(built, base_model, letters_only):
    (built / "data/train/videos/long_b.mp4").write_bytes(b"damaged after the build")
    report = label_difficulty(built, base_model, SETTINGS, rows_per_batch=2, generation_kwargs=letters_only, show_progress=False)
    assert sorted(f["id"] for f in report.failed) == ["b-0", "b-1"] and report.labelled == 3
    rates = _pass_rates(built)
    assert rates["b-0"] is None and rates["b-1"] is None and rates["a-0"] is not None


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
    args = ["data", "label-difficulty", str(built), "--model", str(checkpoint), "--num-rollouts", "2", "--frames", "4", "--max-new-tokens", "2", "--split", "train"]  # fmt: skip
    assert main(args) == 0
    assert "labelled 5 questions (5 computed now" in capsys.readouterr().out
    assert all(rate in (0.0, 0.5, 1.0) for rate in _pass_rates(built).values())
    with pytest.raises(SystemExit):
        main([*args[:-1], "test"])
    assert "Unknown split(s) ['test']" in capsys.readouterr().err
