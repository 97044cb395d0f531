"""Loading by Hub-style id or local folder (the trainer's entry point), and pushing a built folder."""

from __future__ import annotations

import copy
import json
import os

import pytest
from datasets import Features, Value, Video

from transformers_msjoe.cli.main import main
from transformers_msjoe.data import (
    LONGVIDEO_QA_FEATURES,
    LayoutError,
    build_longvideo_qa,
    check_features,
    load_longvideo_qa,
    push_longvideo_qa,
)
from transformers_msjoe.data.hub import PUSH_IGNORE_PATTERNS
from transformers_msjoe.hub_utils import MissingHubTokenError
from transformers_msjoe.video_io import open_video

pytestmark = pytest.mark.usefixtures("isolated_datasets_cache")


@pytest.fixture
def built(longvideo_corpus, tmp_path):
    rows = copy.deepcopy(longvideo_corpus["rows"])
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "msjoe" / "longvideo-qa"
    build_longvideo_qa(tmp_path / "qa.jsonl", longvideo_corpus["videos_dir"], out, show_progress=False)
    return out


@pytest.fixture
def no_token(monkeypatch, tmp_path):
    """No token anywhere: environment cleared, token file pointed at a path that does not exist."""
    import huggingface_hub.constants

    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-token-here"))


def test_load_by_repo_id_resolves_a_same_layout_folder(built, monkeypatch):
    """`load_dataset("msjoe/longvideo-qa")` reads a local folder of that name first: the Hub layout, offline."""
    monkeypatch.chdir(built.parent.parent)
    ds = load_longvideo_qa("msjoe/longvideo-qa", split="train")
    assert ds.features == LONGVIDEO_QA_FEATURES and ds.num_rows == 5
    assert ds[0]["video"].metadata.num_frames == 60


def test_undecoded_videos_open_with_the_core_reader(built):
    ds = load_longvideo_qa(built, decode_video=False)
    value = ds[0]["video"]
    assert value["path"].endswith("data/train/videos/long_a.mp4")
    assert open_video(value).info.duration_seconds == pytest.approx(60.0, abs=0.5)


def test_loading_a_broken_folder_names_the_problem(built):
    os.remove(built / "data/train/videos/long_b.mp4")
    with pytest.raises(LayoutError, match=r"1 referenced video file\(s\) missing, e.g. \['videos/long_b.mp4'\]"):
        load_longvideo_qa(built)
    with pytest.raises(LayoutError, match="no data/ folder"):
        load_longvideo_qa(built / "data")


def test_check_features_names_each_mismatch():
    wrong = Features({k: v for k, v in LONGVIDEO_QA_FEATURES.items() if k != "pass_rate"})
    wrong["answer"] = Value("int64")
    with pytest.raises(
        ValueError, match=r"column 'answer' is Value\('int64'\), expected Value\('string'\); missing column 'pass_rate'"
    ):
        check_features(wrong)


def test_push_without_a_token_says_how_to_get_one(built, no_token, capsys):
    with pytest.raises(MissingHubTokenError, match="so pushing the dataset is not possible.*hf auth login"):
        push_longvideo_qa(built, "me/longvideo-qa")
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "push", str(built), "--repo-id", "me/longvideo-qa"])
    assert exit_info.value.code == 2
    assert "No Hugging Face token found" in capsys.readouterr().err


def test_push_uploads_the_folder_as_a_dataset_repo(built, monkeypatch):
    """The Hub is out of reach in tests: record what would be sent."""
    from huggingface_hub import HfApi, RepoUrl

    calls = {}
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: calls.setdefault("create", (repo_id, kw)) and RepoUrl(f"https://huggingface.co/datasets/{repo_id}"))  # fmt: skip
    monkeypatch.setattr(HfApi, "upload_folder", lambda self, **kw: calls.setdefault("upload", kw))
    push_longvideo_qa(built, "me/longvideo-qa", token="hf_fake", private=True)
    assert calls["create"] == ("me/longvideo-qa", {"repo_type": "dataset", "private": True, "exist_ok": True})
    upload = calls["upload"]
    assert (
        upload["repo_id"] == "me/longvideo-qa"
        and upload["repo_type"] == "dataset"
        and upload["folder_path"] == str(built)
    )
    assert upload["ignore_patterns"] == PUSH_IGNORE_PATTERNS
    # the filter upload_folder applies
    from huggingface_hub.utils import filter_repo_objects

    (built / ".msjoe/difficulty").mkdir()
    (built / ".msjoe/difficulty/rollouts.jsonl").write_text("{}\n")
    assert (built / ".msjoe/lock").is_file()  # the write lock, held during the push: local, not sent
    files = [os.path.relpath(os.path.join(d, f), built) for d, _, fs in os.walk(built) for f in fs]
    sent = sorted(filter_repo_objects(files, ignore_patterns=upload["ignore_patterns"]))
    assert sent == [".msjoe/provenance.json", "README.md", "data/train/metadata.parquet", "data/train/videos/long_a.mp4", "data/train/videos/long_b.mp4", "data/train/videos/short_c.mp4"]  # fmt: skip
    assert 'load_dataset("me/longvideo-qa"' in (built / "README.md").read_text()  # the card names the target repo


def test_push_refuses_a_folder_with_unused_videos(built, monkeypatch):
    (built / "data/train/videos/stray.mp4").write_bytes((built / "data/train/videos/long_a.mp4").read_bytes())
    with pytest.raises(LayoutError, match="used by no question"):
        push_longvideo_qa(built, "me/longvideo-qa", token="hf_fake")


def test_two_copies_of_a_folder_do_not_share_a_cache(built, tmp_path):
    """Upstream keys a card-configured local folder's cache on its name and card only; our loader does not."""
    import shutil

    copy_dir = tmp_path / "elsewhere" / "longvideo-qa"
    shutil.copytree(built, copy_dir)
    assert load_longvideo_qa(built, decode_video=False)[0]["video"]["path"].startswith(str(built))
    shutil.rmtree(built)
    moved = load_longvideo_qa(copy_dir, decode_video=False)[0]["video"]
    assert moved["path"].startswith(str(copy_dir)) and open_video(moved).info.num_frames == 60


def test_plain_load_dataset_of_a_copy_can_serve_the_other_copys_cache(built, tmp_path):
    """Drift test for the card's and docs' "Local copies" note: datasets 5.2 keys a local folder's cache on its
    name and card, so a same-name copy gets the original's rows (and video paths); the documented workarounds
    (`load_longvideo_qa`, or `data_files=` with the folder's own path) do not. If the first assertion starts
    failing, upstream fixed it and the note can go."""
    import shutil

    from datasets import load_dataset

    copy_dir = tmp_path / "elsewhere" / "longvideo-qa"
    shutil.copytree(built, copy_dir)
    assert load_dataset(str(built), split="train").cast_column("video", Video(decode=False))[0]["video"]["path"].startswith(str(built))  # fmt: skip
    stale = load_dataset(str(copy_dir), split="train").cast_column("video", Video(decode=False))[0]["video"]["path"]
    assert stale.startswith(str(built))  # the other copy's video
    own = load_dataset(str(copy_dir), split="train", data_files={"train": f"{copy_dir}/data/train/**"})
    assert own.cast_column("video", Video(decode=False))[0]["video"]["path"].startswith(str(copy_dir))
    assert load_longvideo_qa(copy_dir, decode_video=False)[0]["video"]["path"].startswith(str(copy_dir))
    text = (copy_dir / "README.md").read_text()
    assert "load_longvideo_qa" in text and 'data_files={"train": f"{folder}/data/train/**"}' in text
