"""`msjoe cache-features` and `msjoe cache report|clean|push|pull` (Hub calls checked offline)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from types import SimpleNamespace

import huggingface_hub
import pytest

from transformers_msjoe.cli.main import main
from transformers_msjoe.feature_cache import MSJoEFeatureCache
from transformers_msjoe.synthetic_video import make_synthetic_video


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> str:
    """A folder with two distinct short videos and a byte-identical copy of the first (content-addressed: one entry)."""
    folder = tmp_path_factory.mktemp("videos")
    make_synthetic_video(folder / "a.mp4", duration_seconds=20.0, fps=2.0)
    make_synthetic_video(folder / "sub" / "b.mp4", duration_seconds=16.0, fps=2.0)
    shutil.copy(folder / "a.mp4", folder / "a_copy.mp4")
    (folder / "notes.txt").write_text("not a video, ignored by the folder scan")
    return os.fspath(folder)


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_fill_resume_report_clean(videos, tiny_clip_dir, tmp_path, capsys):
    cache_dir = str(tmp_path / "cache")
    args = ("cache-features", videos, os.path.join(videos, "a.mp4"), "--clip", tiny_clip_dir, "--cache-dir", cache_dir)
    code, out = _run(capsys, *args)
    assert code == 0 and out.splitlines()[0] == "3 videos: 2 cached, 1 already cached, 0 failed"
    code, out = _run(capsys, *args, "--json")  # resumable: nothing recomputed
    summary = json.loads(out)
    assert (code, summary["cached"], summary["skipped"], summary["processes"]) == (0, 0, 3, 1)
    code, out = _run(capsys, "cache", "report", "--cache-dir", cache_dir)
    assert code == 0 and "entries: 2 (" in out and "fps=1.0 cap=1024 seek=exact: 2 entries" in out
    code, out = _run(capsys, "cache", "clean", "--cache-dir", cache_dir)
    assert "removed 0 entries" in out and "no entry selector given" in out
    code, out = _run(capsys, "cache", "clean", "--all", "--cache-dir", cache_dir, "--json")
    assert json.loads(out)["removed_entries"] == 2 and MSJoEFeatureCache(cache_dir).entry_paths() == []


def test_bad_videos_are_listed_not_dropped(videos, tiny_clip_dir, tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_text("not a video")
    code, out = _run(
        capsys,
        "cache-features",
        os.path.join(videos, "a.mp4"),
        str(bad),
        "--clip",
        tiny_clip_dir,
        "--cache-dir",
        str(tmp_path / "c"),
    )
    lines = out.splitlines()
    assert code == 1 and lines[0] == "2 videos: 1 cached, 0 already cached, 1 failed"
    assert lines[1].startswith("  failed: ") and "broken.mp4 is not a readable video" in lines[1]


def test_inputs_that_name_nothing_exit_2(tiny_clip_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["cache-features", str(tmp_path / "*.mp4"), "--clip", tiny_clip_dir, "--cache-dir", str(tmp_path)])
    assert exit_info.value.code == 2 and "names no video" in capsys.readouterr().err


def test_dataset_folder_counts_each_video_once(videos, tiny_clip_dir, tmp_path, capsys):
    root = tmp_path / "longvideo-qa"
    (root / "test" / "videos").mkdir(parents=True)
    for name in ("a.mp4", "sub/b.mp4"):
        shutil.copy(os.path.join(videos, name), root / "test" / "videos" / os.path.basename(name))
    rows = [("a.mp4", "q1"), ("a.mp4", "q2"), ("b.mp4", "q3")]
    (root / "test" / "metadata.jsonl").write_text(
        "".join(json.dumps({"file_name": f"videos/{v}", "question": q}) + "\n" for v, q in rows)
    )
    (root / "README.md").write_text(
        '---\nconfigs:\n- config_name: default\n  data_files:\n  - split: test\n    path: "test/**"\n---\n# tiny\n'
    )
    code, out = _run(capsys, "cache-features", str(root), "--clip", tiny_clip_dir, "--cache-dir", str(tmp_path / "c"))
    assert code == 0 and out.splitlines()[0] == "2 videos: 2 cached, 0 already cached, 0 failed"
    with pytest.raises(SystemExit):
        main(
            [
                "cache-features",
                str(root),
                "--video-column",
                "clip",
                "--clip",
                tiny_clip_dir,
                "--cache-dir",
                str(tmp_path / "c"),
            ]
        )
    assert "has no column 'clip'" in capsys.readouterr().err


def test_entries_from_a_checkpoint_config_are_hit_by_answer(tiny_msjoe, short_video, tmp_path, capsys):
    """`--model` reads the CLIP and candidate settings from an MSJoE checkpoint: answer() then hits the cache."""
    model = tiny_msjoe(candidate_fps=0.5, candidate_seek_mode="exact", max_candidate_frames=40)
    model.config.save_pretrained(tmp_path / "ckpt")
    code, out = _run(
        capsys,
        "cache-features",
        short_video,
        "--model",
        str(tmp_path / "ckpt"),
        "--cache-dir",
        str(tmp_path / "c"),
        "--json",
    )
    summary = json.loads(out)
    assert code == 0 and summary["cached"] == 1
    assert summary["settings"]["candidate_fps"] == 0.5 and summary["settings"]["max_candidate_frames"] == 40
    model.set_feature_cache(tmp_path / "c")
    assert model.select_frames(short_video, "What is shown?", queries=["a red square"]).feature_cache == "hit"


def test_checkpoint_with_a_weights_file_clip(tiny_msjoe, tiny_clip_builtin, short_video, tmp_path, capsys):
    """A checkpoint whose CLIP is an architecture plus a weights-file path (no short form can carry that path as a
    tag): `--model` builds the same scorer as `answer()`, whose lookups then hit."""
    name, weights_file = tiny_clip_builtin
    model = tiny_msjoe(max_candidate_frames=40)
    model.config.clip_model_name, model.config.clip_pretrained = name, weights_file
    model.config.save_pretrained(tmp_path / "ckpt")
    code, out = _run(
        capsys,
        "cache-features",
        short_video,
        "--model",
        str(tmp_path / "ckpt"),
        "--cache-dir",
        str(tmp_path / "c"),
        "--json",
    )
    summary = json.loads(out)
    assert code == 0 and summary["cached"] == 1, summary
    assert (summary["settings"]["clip_model_name"], summary["settings"]["clip_pretrained"]) == (name, weights_file)
    model.set_feature_cache(tmp_path / "c")
    assert model.select_frames(short_video, "What is shown?", queries=["a red square"]).feature_cache == "hit"
    assert model.clip_scorer.pretrained == weights_file


def test_dtype_is_a_choice(short_video, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["cache-features", short_video, "--dtype", "fp16", "--cache-dir", str(tmp_path)])
    assert exit_info.value.code == 2 and "invalid choice: 'fp16'" in capsys.readouterr().err


def test_accelerate_splits_videos_across_processes(videos, tiny_clip_dir, tmp_path):
    """Two CPU processes (gloo) via `accelerate launch`: each caches its share; rank 0 prints one summary."""
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "transformers_msjoe.cli.main", "cache-features",
        videos, "--clip", tiny_clip_dir, "--cache-dir", str(tmp_path / "c"), "--json",
    ]  # fmt: skip
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    assert summary["processes"] == 2 and summary["videos"] == 3
    assert [sum(c.values()) for c in summary["per_process"]] == [2, 1]  # round-robin: videos 0, 2 and video 1
    assert summary["cached"] + summary["skipped"] == 3 and summary["failed"] == 0
    assert MSJoEFeatureCache(tmp_path / "c").report().num_entries == 2


def test_processes_take_videos_round_robin(tiny_clip_dir, tmp_path, monkeypatch, capsys):
    """Process r of w caches videos r, r + w, ... of the sorted list (not a contiguous chunk, which would give one
    process a whole folder of long videos); the shares of all processes are disjoint and cover every video."""
    import accelerate
    import accelerate.utils

    from transformers_msjoe.cli import cache as cache_cli

    for index in range(5):
        (tmp_path / f"v{index}.mp4").write_text("never decoded: caching is replaced below")
    seen: list[str] = []

    class SecondOfTwo:  # what accelerate's PartialState is in process 1 of 2
        process_index, local_process_index, num_processes, is_main_process, device = 1, 1, 2, False, "cpu"

        def __init__(self, cpu: bool):
            pass

        def wait_for_everyone(self) -> None:
            pass

    monkeypatch.setattr(accelerate, "PartialState", SecondOfTwo)
    monkeypatch.setattr(accelerate.utils, "gather_object", lambda objects: objects)
    monkeypatch.setattr(
        cache_cli, "_cache_one", lambda item, *args: seen.append(os.path.basename(item.label)) or "cached"
    )
    assert main(["cache-features", str(tmp_path), "--clip", tiny_clip_dir, "--cache-dir", str(tmp_path / "c")]) == 0
    assert seen == ["v1.mp4", "v3.mp4"]  # contiguous chunks would have given it v3, v4
    items = cache_cli.collect_videos([str(tmp_path)])
    shares = [cache_cli.process_share(items, rank, 3) for rank in range(3)]
    assert sorted(i.label for share in shares for i in share) == sorted(i.label for i in items)
    assert [len(share) for share in shares] == [2, 2, 1]


def test_fingerprint_flag_keys_large_videos_by_every_byte(short_video, tiny_clip_dir, tmp_path, capsys):
    """`--fingerprint full` hashes every byte of a video (> 16 MiB: the sampled fingerprint reads 4 MiB); a cache
    with `fingerprint="full"`, as `answer()` must then use, finds the entry."""
    from transformers_msjoe.clip_scoring import MSJoECLIPScorer
    from transformers_msjoe.fingerprints import fingerprint_video
    from transformers_msjoe.frame_features import extract_candidate_features
    from transformers_msjoe.video_io import open_video

    big = tmp_path / "big.mp4"
    pad = 17 * 2**20  # a trailing ISO BMFF `free` box: the same frames, more than 16 MiB
    big.write_bytes(open(short_video, "rb").read() + (pad + 8).to_bytes(4, "big") + b"free" + bytes(pad))
    for mode, scheme in (("full", "sha256:"), ("sampled", "sampled1:")):
        cache_dir = str(tmp_path / mode)
        code, out = _run(
            capsys, "cache-features", str(big), "--clip", tiny_clip_dir, "--cache-dir", cache_dir,
            "--fingerprint", mode, "--json",
        )  # fmt: skip
        assert code == 0 and json.loads(out)["fingerprint"] == mode
        cache = MSJoEFeatureCache(cache_dir, fingerprint=mode)
        assert cache.fingerprint(str(big)) == fingerprint_video(big, mode) and cache.fingerprint(str(big)).startswith(
            scheme
        )
        features = extract_candidate_features(
            open_video(str(big)), MSJoECLIPScorer.from_identity(tiny_clip_dir), candidate_fps=1.0,
            max_candidate_frames=1024, cache=cache,
        )  # fmt: skip
        assert features.cache_status == "hit"
    with pytest.raises(SystemExit) as exit_info:
        main(["cache-features", str(big), "--fingerprint", "md5", "--cache-dir", str(tmp_path)])
    assert exit_info.value.code == 2 and "invalid choice: 'md5'" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ Hub (offline)
@pytest.fixture
def filled_cache(videos, tiny_clip_dir, tmp_path, capsys) -> str:
    cache_dir = str(tmp_path / "cache")
    assert (
        main(["cache-features", os.path.join(videos, "a.mp4"), "--clip", tiny_clip_dir, "--cache-dir", cache_dir]) == 0
    )
    capsys.readouterr()
    return cache_dir


def test_push_without_token_is_a_clear_error(filled_cache, monkeypatch, capsys):
    from transformers_msjoe import hub_utils

    monkeypatch.setattr(hub_utils, "get_token", lambda: None)
    with pytest.raises(SystemExit) as exit_info:
        main(["cache", "push", "me/msjoe-features", "--cache-dir", filled_cache])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "No Hugging Face token found" in err and "hf auth login" in err
    assert "pushing the feature cache to 'me/msjoe-features'" in err


def test_push_builds_the_hub_calls(filled_cache, monkeypatch, capsys):
    calls: list[tuple[str, dict]] = []

    def record(name, result):
        def method(self, *args, **kwargs):
            calls.append((name, {"args": args, **kwargs}))
            return result

        return method

    monkeypatch.setattr(
        huggingface_hub.HfApi, "create_repo", record("create_repo", SimpleNamespace(repo_id="me/msjoe-features"))
    )
    monkeypatch.setattr(
        huggingface_hub.HfApi, "upload_folder", record("upload_folder", SimpleNamespace(commit_url="https://hf.co/c/1"))
    )
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_file", record("upload_file", None))
    code, out = _run(
        capsys, "cache", "push", "me/msjoe-features", "--token", "hf_test", "--private", "--cache-dir", filled_cache
    )
    assert code == 0 and out.strip() == "pushed: https://hf.co/c/1"
    (_, create), (_, folder), (_, card) = calls
    assert create["args"] == ("me/msjoe-features",) and create["repo_type"] == "dataset" and create["private"] is True
    assert folder["folder_path"] == filled_cache and folder["repo_type"] == "dataset"
    assert folder["allow_patterns"] == ["??/*.safetensors"]  # entries only: no temp files, no local bookkeeping
    assert card["path_in_repo"] == "README.md" and b"msjoe cache pull me/msjoe-features" in card["path_or_fileobj"]


def test_pull_calls_snapshot_download_and_explains_failures(filled_cache, monkeypatch, capsys):
    from huggingface_hub.errors import OfflineModeIsEnabled

    seen: dict = {}

    def fake_download(repo_id, **kwargs):  # what huggingface_hub leaves in local_dir: entries + its bookkeeping
        seen.update(repo_id=repo_id, **kwargs)
        bookkeeping = os.path.join(kwargs["local_dir"], ".cache", "huggingface", "download", "ab")
        os.makedirs(bookkeeping, exist_ok=True)
        with open(os.path.join(bookkeeping, "ab12.safetensors.metadata"), "w") as handle:
            handle.write("0123abcd\n")
        return kwargs["local_dir"]

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    code, out = _run(capsys, "cache", "pull", "team/feats", "--revision", "v1", "--cache-dir", filled_cache)
    assert code == 0 and out.strip() == f"1 entries in {filled_cache}"
    assert seen["repo_type"] == "dataset" and seen["local_dir"] == filled_cache and seen["revision"] == "v1"
    code, out = _run(capsys, "cache", "report", "--cache-dir", filled_cache)
    assert "pull bookkeeping: 1 files" in out
    code, out = _run(capsys, "cache", "clean", "--all", "--cache-dir", filled_cache, "--json")
    assert json.loads(out)["removed_hub_metadata_files"] == 1 and not os.path.exists(
        os.path.join(filled_cache, ".cache")
    )
    assert [f for _, _, files in os.walk(filled_cache) for f in files] == []  # no file left behind

    def offline(repo_id, **kwargs):
        raise OfflineModeIsEnabled("Cannot reach the Hub: offline mode is enabled.")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(SystemExit) as exit_info:
        main(["cache", "pull", "team/feats", "--cache-dir", filled_cache])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Could not pull the feature cache" in err and "HF_HUB_OFFLINE" in err
