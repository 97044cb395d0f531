"""Filtering a built folder: too-short videos and always-solved questions go, with reasons; nothing silently."""

from __future__ import annotations

import copy
import json
import os
import re

import pyarrow.parquet as pq
import pytest

from transformers_msjoe.data import (
    FilterCriteria,
    build_longvideo_qa,
    filter_dataset,
    load_longvideo_qa,
    verify_layout,
)
from transformers_msjoe.data.card import read_card_splits

pytestmark = pytest.mark.usefixtures("isolated_datasets_cache")

PASS_RATES = {"a-0": 1.0, "a-1": 0.5, "b-0": 0.0, "b-1": 0.875, "c-0": None}


@pytest.fixture
def built(longvideo_corpus, tmp_path):
    rows = copy.deepcopy(longvideo_corpus["rows"])
    for row in rows:
        row["pass_rate"] = PASS_RATES[row["id"]]
    rows[4]["split"] = "validation"  # c-0, on the 20 s video
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "built"
    build_longvideo_qa(tmp_path / "qa.jsonl", longvideo_corpus["videos_dir"], out, show_progress=False)
    return out


def _ids(folder, split="train"):
    return pq.read_table(folder / f"data/{split}/metadata.parquet").column("id").to_pylist()


def test_min_duration_drops_short_videos_and_their_files(built):
    report = filter_dataset(built, FilterCriteria(min_duration=50))
    assert _ids(built) == ["a-0", "a-1"]
    assert sorted(r["id"] for r in report.dropped_rows) == ["b-0", "b-1", "c-0"]
    assert report.reason_counts() == {"too_short": 3}
    assert sorted(report.deleted_videos) == ["data/train/videos/long_b.mp4", "data/validation/videos/short_c.mp4"]
    assert not os.path.exists(built / "data/train/videos/long_b.mp4") and not os.path.exists(built / "data/validation")
    assert report.removed_splits == ["validation"] and read_card_splits(built) == ["train"]
    with open(report.report_path) as handle:
        saved = json.load(handle)
    assert saved["criteria"]["min_duration"] == 50 and len(saved["dropped_rows"]) == 3
    layout = verify_layout(built)
    assert layout.problems == [] and layout.unreferenced_files == []
    assert load_longvideo_qa(str(built), split="train").num_rows == 2
    assert "**filter**" in (built / "README.md").read_text()


def test_max_pass_rate_needs_labels_or_a_policy(built):
    with pytest.raises(ValueError, match="1 rows have no pass_rate.*--unlabelled keep"):
        filter_dataset(built, FilterCriteria(max_pass_rate=0.9))
    assert _ids(built) == ["a-0", "a-1", "b-0", "b-1"]  # unchanged
    report = filter_dataset(built, FilterCriteria(max_pass_rate=0.9, unlabelled="keep"))
    assert _ids(built) == ["a-1", "b-0", "b-1"] and _ids(built, "validation") == ["c-0"]
    assert report.dropped_rows == [
        {"split": "train", "id": "a-0", "video_id": "long_a", "reasons": ["too_easy: pass_rate 1 > 0.9"]}
    ]
    assert report.deleted_videos == []  # long_a still has a-1


def test_unlabelled_drop_and_min_pass_rate(built):
    report = filter_dataset(built, FilterCriteria(min_pass_rate=0.1, unlabelled="drop"))
    assert report.reason_counts() == {"too_hard": 1, "unlabelled": 1}
    assert _ids(built) == ["a-0", "a-1", "b-1"]


def test_dry_run_changes_nothing(built):
    before = sorted(os.listdir(built / "data/train/videos"))
    card = (built / "README.md").read_text()
    report = filter_dataset(built, FilterCriteria(min_duration=50), dry_run=True)
    assert len(report.dropped_rows) == 3 and report.report_path.endswith("filter-dry-run-1.json")
    assert _ids(built) == ["a-0", "a-1", "b-0", "b-1"] and sorted(os.listdir(built / "data/train/videos")) == before
    assert (built / "README.md").read_text() == card


def test_dropping_everything_is_refused(built):
    with pytest.raises(ValueError, match="drop every row.*nothing was changed"):
        filter_dataset(built, FilterCriteria(min_duration=10_000))
    assert _ids(built) == ["a-0", "a-1", "b-0", "b-1"]


def _filter_when_both_are_ready(folder, criteria, barrier):
    barrier.wait(timeout=30)
    filter_dataset(folder, criteria)


def test_two_concurrent_filters_do_not_lose_a_step(built, monkeypatch):
    """Two processes filter one folder at once; every read is slowed down so that, without the folder lock, both
    would read the same metadata and provenance and each second write would undo the first."""
    import multiprocessing
    import time

    from transformers_msjoe.data import filtering, writer

    def slow(read):
        return lambda *a, **k: (read(*a, **k), time.sleep(0.3))[0]

    monkeypatch.setattr(filtering, "read_metadata", slow(filtering.read_metadata))
    monkeypatch.setattr(writer, "read_json", slow(writer.read_json))  # only `append_provenance` reads through it
    context = multiprocessing.get_context("fork")  # inherits the slowed-down writer
    barrier = context.Barrier(2)
    criteria = (FilterCriteria(min_duration=50), FilterCriteria(max_pass_rate=0.9, unlabelled="keep"))
    processes = [context.Process(target=_filter_when_both_are_ready, args=(str(built), c, barrier)) for c in criteria]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    assert [p.exitcode for p in processes] == [0, 0]
    steps = json.loads((built / ".msjoe/provenance.json").read_text())["steps"]
    assert [s["step"] for s in steps] == ["build", "filter", "filter"]
    assert _ids(built) == ["a-1"]  # b-0, b-1 too short, a-0 too easy: both filters applied, in either order
    assert not os.path.exists(built / "data/validation") and verify_layout(built).problems == []


def test_criteria_are_validated():
    with pytest.raises(ValueError, match="No filter given"):
        FilterCriteria()
    with pytest.raises(ValueError, match=r"max_pass_rate must be in \[0, 1\]"):
        FilterCriteria(max_pass_rate=90)


def _push_calls(monkeypatch):
    """The Hub is out of reach in tests: record what `push` would upload."""
    from huggingface_hub import HfApi, RepoUrl

    calls = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: RepoUrl(f"https://huggingface.co/datasets/{repo_id}"))  # fmt: skip
    monkeypatch.setattr(HfApi, "upload_folder", lambda self, **kw: calls.append(kw))
    return calls


def test_the_command_push_advises_for_unused_videos_resolves_them(built, monkeypatch, capsys):
    """push names `msjoe data prune FOLDER`; running exactly that lets the push through."""
    from transformers_msjoe.cli.main import main
    from transformers_msjoe.data import LayoutError, push_longvideo_qa

    stray = built / "data/train/videos/extra.mp4"
    stray.write_bytes(b"a video no question uses")
    with pytest.raises(LayoutError, match="used by no question") as error:
        push_longvideo_qa(built, "me/longvideo-qa", token="hf_fake")
    advised = re.search(r"`(msjoe data [^`]+)`", str(error.value)).group(1)
    assert advised == f"msjoe data prune {built}"
    assert main(advised.split()[1:]) == 0
    assert "deleted 1 unreferenced files: ['data/train/videos/extra.mp4']" in capsys.readouterr().out
    assert not stray.exists() and verify_layout(built).unreferenced_files == []
    saved = json.loads(next((built / ".msjoe/reports").glob("prune-*.json")).read_text())
    assert saved["deleted"] == ["data/train/videos/extra.mp4"]
    calls = _push_calls(monkeypatch)
    push_longvideo_qa(built, "me/longvideo-qa", token="hf_fake")
    assert len(calls) == 1


def test_filter_also_deletes_files_no_row_referenced(built):
    """Files in videos/ that no row used even before (copied in by hand) go too, listed apart in the report."""
    (built / "data/train/videos/extra.mp4").write_bytes(b"stray")
    (built / "data/validation/videos/.DS_Store").write_bytes(b"finder")
    report = filter_dataset(built, FilterCriteria(min_duration=50), splits=["train"])
    assert report.unreferenced_deleted == ["data/train/videos/extra.mp4"]  # only in the filtered split
    assert (
        not (built / "data/train/videos/extra.mp4").exists() and (built / "data/validation/videos/.DS_Store").exists()
    )
    assert json.loads(open(report.report_path).read())["unreferenced_deleted"] == ["data/train/videos/extra.mp4"]


def test_a_filter_killed_before_its_deletions_leaves_a_folder_prune_completes(built, monkeypatch):
    """A crash after the metadata + card writes leaves unused videos (an emptied split's included): the layout
    stays valid, push names `msjoe data prune`, and prune (or the same filter again) deletes them."""
    from transformers_msjoe.data import filtering, prune_unreferenced

    def killed(root, paths):
        raise KeyboardInterrupt("killed before the deletions")

    monkeypatch.setattr(filtering, "_delete_files", killed)
    with pytest.raises(KeyboardInterrupt):
        filter_dataset(built, FilterCriteria(min_duration=50))
    monkeypatch.undo()
    layout = verify_layout(built)
    assert layout.problems == [] and _ids(built) == ["a-0", "a-1"] and read_card_splits(built) == ["train"]
    leftovers = ["data/train/videos/long_b.mp4", "data/validation/videos/short_c.mp4"]
    assert layout.unreferenced_files == leftovers
    again = filter_dataset(built, FilterCriteria(min_duration=50), dry_run=True)  # nothing left to drop
    assert again.dropped_rows == [] and again.unreferenced_deleted == leftovers
    assert prune_unreferenced(built).deleted == leftovers
    assert verify_layout(built).unreferenced_files == [] and not (built / "data/validation").exists()


def test_prune_dry_run_changes_nothing(built):
    from transformers_msjoe.data import prune_unreferenced

    (built / "data/train/videos/extra.mp4").write_bytes(b"stray")
    report = prune_unreferenced(built, dry_run=True)
    assert report.deleted == ["data/train/videos/extra.mp4"] and (built / "data/train/videos/extra.mp4").exists()
    assert report.report_path.endswith("prune-dry-run-1.json")
