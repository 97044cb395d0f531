"""feature_cache: keys, round trips, faults (corrupt / truncated entries, killed writers, concurrent writers,
replaced videos), maintenance, and the wiring into `MSJoEForVideoQA.candidate_features` / `answer()`."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from transformers_msjoe.clip_scoring import MSJoECLIPScorer
from transformers_msjoe.feature_cache import (
    ENV_CACHE_DIR,
    ENV_DISABLE,
    MSJoEFeatureCache,
    default_feature_cache,
    push_feature_cache,
    resolve_feature_cache,
)
from transformers_msjoe.frame_features import candidate_feature_settings, extract_candidate_features
from transformers_msjoe.synthetic_video import PlantedEvent, make_synthetic_video
from transformers_msjoe.video_io import open_video

SETTINGS = {"clip": {"model_name": "tiny"}, "candidate_fps": 1.0}
KEY = MSJoEFeatureCache.entry_key("sha256:x", SETTINGS)


@pytest.fixture(scope="module")
def scorer(tiny_clip_dir) -> MSJoECLIPScorer:
    return MSJoECLIPScorer.from_identity(tiny_clip_dir)


def _features(video, scorer, cache, **kwargs):
    return extract_candidate_features(
        open_video(video), scorer, candidate_fps=1.0, max_candidate_frames=1024, cache=cache, **kwargs
    )


def _run_python(code: str, *args: str, **popen_kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], text=True, **popen_kwargs)


# ------------------------------------------------------------------------------------------ keys
def test_key_changes_with_clip_fps_cap_seek_mode(scorer, tiny_clip_dir):
    base = candidate_feature_settings(scorer, 1.0, 1024, "exact")
    variants = [
        candidate_feature_settings(scorer, 2.0, 1024, "exact"),
        candidate_feature_settings(scorer, 1.0, 512, "exact"),
        candidate_feature_settings(scorer, 1.0, 1024, "approximate"),
        candidate_feature_settings(
            MSJoECLIPScorer.from_identity(tiny_clip_dir, dtype=torch.float16), 1.0, 1024, "exact"
        ),
        {**base, "clip": {**base["clip"], "pretrained": "laion2b"}},
        {**base, "clip": {**base["clip"], "image_size": [96, 96]}},
    ]
    key = MSJoEFeatureCache.entry_key("sha256:v", base)
    assert key == MSJoEFeatureCache.entry_key("sha256:v", dict(reversed(list(base.items()))))  # order-free
    keys = {MSJoEFeatureCache.entry_key("sha256:v", v) for v in variants} | {
        MSJoEFeatureCache.entry_key("sha256:w", base)
    }
    assert len(keys) == len(variants) + 1 and key not in keys


def _weights(scorer: MSJoECLIPScorer) -> str:
    return scorer.identity()["weights"]


def test_random_weights_are_keyed_by_their_values(tiny_clip_builtin, tiny_clip_dir, tmp_path):
    """Random weights (a built-in name with pretrained=None, or a `local-dir:` folder with a config and no weights)
    differ per process, so they must not share entries; the same seed gives the same weights and the same key."""
    name, _ = tiny_clip_builtin
    config_only = tmp_path / "config-only"
    config_only.mkdir()
    shutil.copy(os.path.join(tiny_clip_dir, "open_clip_config.json"), config_only)
    for make in (lambda: MSJoECLIPScorer(name, None), lambda: MSJoECLIPScorer(f"local-dir:{config_only}", None)):
        first, second = make(), make()
        assert not torch.equal(first.model.visual.proj, second.model.visual.proj)  # truly different inits
        assert _weights(first) != _weights(second) and _weights(first).startswith("sha256:")
        torch.manual_seed(3)
        seeded = make()
        torch.manual_seed(3)
        assert _weights(make()) == _weights(seeded)


def test_local_weights_are_keyed_by_content_not_path(tiny_clip_builtin, tiny_clip_dir, tmp_path):
    """A local folder or weights file re-saved in place gets a new key; a scorer keeps the identity of the weights
    it loaded, even when asked after the file changed; the same weights in a file or a folder name the same content."""
    from transformers_msjoe.tiny_models import save_tiny_clip

    name, weights_file = tiny_clip_builtin
    folder = tmp_path / "clip"
    shutil.copytree(tiny_clip_dir, folder)
    before = MSJoECLIPScorer.from_identity(str(folder))
    save_tiny_clip(folder, seed=1)  # re-saved in place: same path, other weights
    after = MSJoECLIPScorer.from_identity(str(folder))
    assert before.identity()["model_name"] == after.identity()["model_name"]  # the path alone cannot tell them apart
    assert _weights(before) != _weights(after)
    assert _weights(before) == _weights(MSJoECLIPScorer.from_identity(tiny_clip_dir))  # loaded before the re-save
    from_file = MSJoECLIPScorer(name, weights_file)
    assert _weights(from_file) == _weights(before)  # identical weights, whether from a file or a folder
    shutil.copy(folder / "open_clip_model.safetensors", weights_file)
    try:
        assert _weights(MSJoECLIPScorer(name, weights_file)) == _weights(after) != _weights(from_file)
    finally:
        shutil.copy(os.path.join(tiny_clip_dir, "open_clip_model.safetensors"), weights_file)


def test_hub_repos_are_keyed_by_commit_and_tags_by_name(tiny_clip_dir, tmp_path, monkeypatch, caplog):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # read once at import: no network try per lookup
    repo = tmp_path / "models--org--tiny-clip"
    shutil.copytree(tiny_clip_dir, repo / "snapshots" / ("a" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    hub = MSJoECLIPScorer("hf-hub:org/tiny-clip", None)
    assert _weights(hub) == "hf-hub-commit:" + "a" * 40
    fallback = MSJoECLIPScorer("hf-hub:org/tiny-clip", None)
    (repo / "refs" / "main").write_text("b" * 40)  # the cache no longer resolves a commit for the repo
    with caplog.at_level(logging.INFO):
        assert _weights(fallback) == _weights(MSJoECLIPScorer.from_identity(tiny_clip_dir))  # by value instead
    assert any("No cached commit found for hf-hub:org/tiny-clip" in r.getMessage() for r in caplog.records)
    tagged = MSJoECLIPScorer.from_identity(tiny_clip_dir)
    tagged.model_name, tagged.pretrained = "ViT-B-32", "openai"  # the branch for published tags, without a download
    assert _weights(tagged) == "tag:openai"


# ------------------------------------------------------------------------------------------ round trip & faults
def test_save_load_round_trip(tmp_path):
    cache = MSJoEFeatureCache(tmp_path)
    timestamps, embeddings = torch.arange(5, dtype=torch.float64) + 0.5, torch.randn(5, 8)
    assert cache.load(KEY, settings=SETTINGS) is None
    path = cache.save(KEY, timestamps, embeddings, settings=SETTINGS, fingerprint="sha256:x", video_label="v.mp4")
    assert path == os.path.join(str(tmp_path), KEY[:2], KEY + ".safetensors")
    entry = cache.load(KEY, settings=SETTINGS, embed_dim=8)
    assert torch.equal(entry.timestamps, timestamps) and torch.equal(entry.embeddings, embeddings)
    assert entry.metadata["video"] == "v.mp4"


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_entries_follow_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        path = MSJoEFeatureCache(tmp_path).save(
            KEY, torch.arange(2.0), torch.randn(2, 4), settings=SETTINGS, fingerprint="sha256:x"
        )
    finally:
        os.umask(previous)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask


def test_second_call_is_a_hit_with_identical_features(short_video, scorer, tmp_path):
    cache = MSJoEFeatureCache(tmp_path)
    first, second = _features(short_video, scorer, cache), _features(short_video, scorer, cache)
    assert (first.cache_status, second.cache_status) == ("miss", "hit")
    assert torch.equal(first.embeddings, second.embeddings) and torch.equal(first.timestamps, second.timestamps)
    assert (
        second.timings["candidate_decode"] == second.timings["clip_encode"] == second.timings["candidate_plan"] == 0.0
    )
    assert second.timings["feature_cache"] > 0 and first.planned_candidates == second.planned_candidates == 120


def test_approximate_hit_keeps_the_error_and_the_planned_count(needle_video, scorer, tmp_path):
    cache = MSJoEFeatureCache(tmp_path)
    miss = _features(needle_video, scorer, cache, seek_mode="approximate")
    hit = _features(needle_video, scorer, cache, seek_mode="approximate")
    assert (miss.cache_status, hit.cache_status) == ("miss", "hit") and set(hit.timestamp_error) == {
        "mean_seconds",
        "max_seconds",
    }
    assert hit.timestamp_error == miss.timestamp_error and hit.planned_candidates == miss.planned_candidates >= len(
        hit.timestamps
    )


@pytest.mark.parametrize("damage", ["truncate", "flip_tensor_byte", "wrong_entry", "garbage"])
def test_corrupt_entry_is_detected_recomputed_and_logged(short_video, needle_video, scorer, tmp_path, caplog, damage):
    cache = MSJoEFeatureCache(tmp_path)
    good = _features(short_video, scorer, cache)
    (path,) = cache.entry_paths()
    data = Path(path).read_bytes()
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip_tensor_byte":
        data = data[:-100] + bytes([data[-100] ^ 0x01]) + data[-99:]
    elif damage == "wrong_entry":  # another video's (valid) entry under this key's name
        other_cache = MSJoEFeatureCache(tmp_path / "other")
        _features(needle_video, scorer, other_cache)
        data = Path(other_cache.entry_paths()[0]).read_bytes()
    else:
        data = b"\x00" * 64
    with open(path, "wb") as handle:
        handle.write(data)
    with caplog.at_level(logging.WARNING):
        again = _features(short_video, scorer, cache)
    assert again.cache_status == "miss"  # recomputed, and stored again
    assert any("is corrupt" in r.getMessage() and path in r.getMessage() for r in caplog.records)
    assert torch.allclose(again.embeddings, good.embeddings) and torch.equal(again.timestamps, good.timestamps)
    assert _features(short_video, scorer, cache).cache_status == "hit"


def test_corrupt_entry_replaced_by_another_process_meanwhile_is_kept(short_video, scorer, tmp_path, monkeypatch):
    """A reader that found a corrupt entry deletes only the file it read: a valid entry another process
    `os.replace`d onto the path between the read and the removal stays (simulated by replacing it right after
    the read)."""
    from transformers_msjoe import feature_cache

    cache = MSJoEFeatureCache(tmp_path)
    _features(short_video, scorer, cache)
    (path,) = cache.entry_paths()
    key, settings = Path(path).stem, candidate_feature_settings(scorer, 1.0, 1024, "exact")
    valid = Path(path).read_bytes()
    Path(path).write_bytes(valid[: len(valid) // 2])  # truncated
    real_parse_entry = feature_cache._parse_entry

    def replace_after_reading(data: bytes):
        replacement = tmp_path / "fresh.safetensors"
        replacement.write_bytes(valid)  # what a concurrent writer's temp file + os.replace does
        os.replace(replacement, path)
        return real_parse_entry(data)  # the bytes read before the replacement: corrupt

    monkeypatch.setattr(feature_cache, "_parse_entry", replace_after_reading)
    assert cache.load(key, settings=settings) is None  # it read the truncated bytes: a miss
    assert Path(path).read_bytes() == valid  # ... and left the other process's fresh entry alone
    monkeypatch.setattr(feature_cache, "_parse_entry", real_parse_entry)
    assert cache.load(key, settings=settings) is not None
    Path(path).write_bytes(valid[: len(valid) // 2])  # no concurrent writer: the corrupt file is deleted
    assert cache.load(key, settings=settings) is None and cache.entry_paths() == []


# ------------------------------------------------------------------------------------------ privacy
def test_entries_name_the_video_by_file_name_only(scorer, short_video, tmp_path):
    """Entries are shared on the Hub: the local folder (user names, folder layout) must not be in them."""
    folder = tmp_path / "home" / "alice" / "private-project"
    folder.mkdir(parents=True)
    shutil.copy(short_video, folder / "talk.mp4")
    cache = MSJoEFeatureCache(tmp_path / "cache")
    assert _features(str(folder / "talk.mp4"), scorer, cache).cache_status == "miss"
    (path,) = cache.entry_paths()
    entry = cache.load(Path(path).stem, settings=candidate_feature_settings(scorer, 1.0, 1024, "exact"))
    assert entry.metadata["video"] == "talk.mp4"
    assert b"alice" not in Path(path).read_bytes() and str(tmp_path).encode() not in Path(path).read_bytes()
    for label in (r"C:\Users\alice\talk.mp4", "/home/alice/talk.mp4", "talk.mp4"):
        saved = cache.save(
            KEY, torch.arange(2.0), torch.randn(2, 4), settings=SETTINGS, fingerprint="sha256:x", video_label=label
        )
        assert (
            cache.load(KEY, settings=SETTINGS).metadata["video"] == "talk.mp4"
            and b"alice" not in Path(saved).read_bytes()
        )


def test_push_removes_local_paths_from_older_entries(short_video, scorer, tmp_path, monkeypatch):
    """An entry written by an older version (its whole local path in "video") is rewritten before the upload: what
    reaches the Hub holds no local path, and the entry stays valid with its last-use time."""
    from types import SimpleNamespace

    import huggingface_hub
    from safetensors.torch import load_file, save_file

    cache = MSJoEFeatureCache(tmp_path / "cache")
    _features(short_video, scorer, cache)
    (path,) = cache.entry_paths()
    with open(path, "rb") as handle:
        metadata = _header_metadata(handle.read())
    save_file(load_file(path), path, metadata={**metadata, "video": "/home/alice/private-project/talk.mp4"})
    os.utime(path, (1_000_000_000, 1_000_000_000))
    uploaded: list[bytes] = []

    def upload_folder(self, *, folder_path, **kwargs):
        uploaded.extend(Path(p).read_bytes() for p in MSJoEFeatureCache(folder_path).entry_paths())
        return SimpleNamespace(commit_url="https://hf.co/c/1")

    monkeypatch.setattr(
        huggingface_hub.HfApi, "create_repo", lambda self, repo_id, **kw: SimpleNamespace(repo_id=repo_id)
    )
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_file", lambda self, **kwargs: None)
    assert push_feature_cache("me/feats", cache=cache, token="hf_test") == "https://hf.co/c/1"
    assert len(uploaded) == 1 and b"alice" not in uploaded[0] and b"talk.mp4" in uploaded[0]
    assert os.path.getmtime(path) == 1_000_000_000
    assert _features(short_video, scorer, cache).cache_status == "hit"  # still valid after the rewrite


def _header_metadata(data: bytes) -> dict[str, str]:
    return json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])["__metadata__"]


_STALLING_WRITER = """
    import os, sys, time, torch
    from transformers_msjoe.feature_cache import MSJoEFeatureCache
    real_fsync = os.fsync
    def stall(fd):
        real_fsync(fd)  # the entry's bytes are in the temp file, not yet renamed
        print("writing", flush=True)
        time.sleep(120)
    os.fsync = stall
    settings = {"clip": {"model_name": "tiny"}, "candidate_fps": 1.0}
    MSJoEFeatureCache(sys.argv[1]).save(sys.argv[2], torch.arange(3.0), torch.randn(3, 4), settings=settings, fingerprint="sha256:x")
"""


def test_killed_writer_leaves_no_partial_entry(tmp_path):
    cache = MSJoEFeatureCache(tmp_path)
    writer = _run_python(_STALLING_WRITER, str(tmp_path), KEY, stdout=subprocess.PIPE)
    try:
        assert writer.stdout.readline().strip() == "writing"
    finally:
        writer.kill()  # SIGKILL in the middle of the write: no cleanup code runs
        writer.wait(timeout=30)
    assert not cache.contains(KEY) and cache.load(KEY, settings=SETTINGS) is None and cache.entry_paths() == []
    report = cache.report()
    assert (report.num_entries, report.temp_files) == (0, 1)
    assert cache.clean().removed_temp_files == 0  # young temps may belong to a live writer
    assert cache.clean(temp_grace_seconds=0).removed_temp_files == 1 and cache.report().temp_files == 0


_FEATURE_WRITER = """
    import os, sys, time
    from transformers_msjoe.clip_scoring import MSJoECLIPScorer
    from transformers_msjoe.feature_cache import MSJoEFeatureCache
    from transformers_msjoe.frame_features import candidate_feature_settings, extract_candidate_features
    from transformers_msjoe.video_io import open_video
    cache_dir, clip, video, go = sys.argv[1:5]
    scorer, cache = MSJoECLIPScorer.from_identity(clip), MSJoEFeatureCache(cache_dir)
    while not os.path.exists(go):
        time.sleep(0.002)
    out = extract_candidate_features(open_video(video), scorer, candidate_fps=1.0, max_candidate_frames=1024, cache=cache)
    print(out.cache_status, flush=True)
    settings = candidate_feature_settings(scorer, 1.0, 1024, "exact")
    fingerprint = cache.fingerprint(video)
    for _ in range(15):  # keep replacing the entry while the test process reads it
        cache.save(cache.entry_key(fingerprint, settings), out.timestamps, out.embeddings, settings=settings, fingerprint=fingerprint)
"""


def test_two_processes_caching_the_same_video(short_video, scorer, tiny_clip_dir, tmp_path, caplog):
    """Both writers succeed, one valid entry remains, and a reader never sees a half-written entry while they
    write and then rewrite it (15 more atomic replaces each)."""
    go, cache = tmp_path / "go", MSJoEFeatureCache(tmp_path / "c")
    writers = [
        _run_python(_FEATURE_WRITER, cache.root, tiny_clip_dir, short_video, str(go), stdout=subprocess.PIPE)
        for _ in range(2)
    ]
    time.sleep(0.5)
    go.touch()  # release both at once
    settings = candidate_feature_settings(scorer, 1.0, 1024, "exact")
    key = cache.entry_key(cache.fingerprint(short_video), settings)
    reads = 0
    with caplog.at_level(logging.WARNING):
        while any(w.poll() is None for w in writers):
            entry = cache.load(key, settings=settings, embed_dim=scorer.embed_dim)
            assert entry is not None or reads == 0, "an entry, once written, must never disappear or read as corrupt"
            reads += entry is not None
            time.sleep(0.005)  # leave the two cores to the writers
    statuses = [w.communicate(timeout=120)[0].strip() for w in writers]
    assert [w.returncode for w in writers] == [0, 0] and set(statuses) <= {"miss", "hit"}, statuses
    assert reads > 0 and not [r for r in caplog.records if "corrupt" in r.getMessage()]
    report = cache.report()
    assert (report.num_entries, report.temp_files, report.unreadable) == (1, 0, [])
    entry = _features(short_video, scorer, cache)
    assert entry.cache_status == "hit"
    assert torch.allclose(entry.embeddings, _features(short_video, scorer, None).embeddings, atol=1e-6)


def test_replaced_video_is_not_served_stale_features(tmp_path, scorer):
    path = tmp_path / "talk.mp4"
    make_synthetic_video(path, duration_seconds=30.0, fps=2.0, events=[PlantedEvent(5, 10, "red")], relative=False)
    cache = MSJoEFeatureCache(tmp_path / "cache")
    before = _features(path, scorer, cache)
    replacement = make_synthetic_video(tmp_path / "new.mp4", duration_seconds=30.0, fps=2.0, events=[PlantedEvent(5, 10, "blue")], relative=False)  # fmt: skip
    os.replace(replacement, path)  # same path, same duration, different content
    after = _features(path, scorer, cache)
    assert after.cache_status == "miss"
    assert torch.allclose(after.embeddings, _features(path, scorer, None).embeddings, atol=1e-6)
    assert not torch.allclose(after.embeddings, before.embeddings, atol=1e-3)
    assert cache.report().num_entries == 2


def _render(path: Path, colour: str) -> Path:
    return Path(
        make_synthetic_video(path, duration_seconds=30.0, fps=2.0, events=[PlantedEvent(5, 10, colour)], relative=False)
    )


@pytest.mark.parametrize(
    ("when", "change"),
    [
        ("before_lookup", "replace"),
        ("before_lookup", "touch"),
        ("while_encoding", "replace"),
        ("while_encoding", "rewrite"),
    ],
)
def test_file_changed_after_opening_is_not_cached(tmp_path, scorer, caplog, monkeypatch, when, change):
    """The reader opened the old file; if the path changes before the fingerprint or while the candidates are
    decoded and encoded, the old frames' features must not be stored under the new content's key (nor the new
    content's entry served). A rewrite in place before decoding would break the open decoder itself: not tested."""
    path, cache = _render(tmp_path / "talk.mp4", "red"), MSJoEFeatureCache(tmp_path / "cache")
    replacement = _render(tmp_path / "new.mp4", "blue")

    def swap() -> None:
        if change == "replace":
            os.replace(replacement, path)
        elif change == "rewrite":  # same inode, new bytes and mtime
            path.write_bytes(replacement.read_bytes())
        else:  # same bytes, a new mtime: counted as a change (stat cannot tell an edit from a touch)
            os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))

    reader = open_video(path)
    if when == "before_lookup":
        swap()
    else:
        encode = scorer.encode_frames

        def encode_then_swap(frames):
            if path.exists() and replacement.exists():
                swap()
                replacement.unlink(missing_ok=True)
            return encode(frames)

        monkeypatch.setattr(scorer, "encode_frames", encode_then_swap)
    with caplog.at_level(logging.WARNING):
        out = extract_candidate_features(reader, scorer, candidate_fps=1.0, max_candidate_frames=1024, cache=cache)
    action = "read from" if when == "before_lookup" else "stored in"
    assert out.cache_status == "uncacheable" and cache.entry_paths() == []
    assert any(
        "changed on disk after it was opened" in r.getMessage() and action in r.getMessage() for r in caplog.records
    )
    monkeypatch.undo()
    fresh = _features(path, scorer, cache)  # the new content, opened anew: computed and cached normally
    assert fresh.cache_status == "miss" and _features(path, scorer, cache).cache_status == "hit"


def test_uncacheable_and_unwritable(short_video, scorer, tmp_path, caplog):
    from torchcodec.decoders import VideoDecoder

    cache = MSJoEFeatureCache(tmp_path / "c")
    bare = extract_candidate_features(
        open_video(VideoDecoder(short_video)), scorer, candidate_fps=1.0, max_candidate_frames=8, cache=cache
    )
    assert bare.cache_status == "uncacheable" and cache.entry_paths() == []
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with caplog.at_level(logging.WARNING):
        out = _features(short_video, scorer, MSJoEFeatureCache(blocker))
    assert out.cache_status == "uncacheable" and len(out.embeddings) == 120
    assert any("Could not write the feature cache entry" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------------------------------ maintenance
def test_report_and_clean(short_video, needle_video, scorer, tmp_path):
    cache = MSJoEFeatureCache(tmp_path)
    _features(short_video, scorer, cache)
    _features(needle_video, scorer, cache, seek_mode="approximate")
    report = cache.report()
    assert report.num_entries == 2 and report.total_bytes > 0
    assert sorted(g["seek_mode"] for g in report.groups) == ["approximate", "exact"]
    old = cache.entry_paths()[0]
    os.utime(old, (time.time() - 10 * 86400,) * 2)
    assert cache.clean().removed_entries == 0
    assert cache.clean(older_than_days=5).removed_entries == 1 and not os.path.exists(old)
    (survivor,) = cache.entry_paths()
    with open(survivor, "r+b") as handle:
        handle.seek(-50, os.SEEK_END)
        handle.write(b"\xff" * 8)
    assert cache.clean(verify=True).removed_entries == 1 and cache.entry_paths() == []
    _features(short_video, scorer, cache)
    assert cache.clean(clip_model_name="ViT-L-14").removed_entries == 0
    assert cache.clean(clip_model_name=scorer.model_name).removed_entries == 1
    _features(short_video, scorer, cache)
    result = cache.clean(remove_all=True)
    assert result.removed_entries == 1 and result.freed_bytes > 0 and cache.report().num_entries == 0


def test_default_location_and_settings(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.delenv(ENV_CACHE_DIR, raising=False)
    monkeypatch.setattr(constants, "HF_ASSETS_CACHE", str(tmp_path / "assets"))
    assert MSJoEFeatureCache().root == str(tmp_path / "assets" / "transformers_msjoe" / "default" / "clip-features")
    monkeypatch.setenv(ENV_CACHE_DIR, str(tmp_path / "env"))
    assert MSJoEFeatureCache().root == str(tmp_path / "env")
    assert MSJoEFeatureCache(tmp_path / "arg").root == str(tmp_path / "arg")
    monkeypatch.setenv(ENV_DISABLE, "1")
    assert default_feature_cache() is None and resolve_feature_cache(True) is None
    monkeypatch.setenv(ENV_DISABLE, "0")
    assert isinstance(default_feature_cache(), MSJoEFeatureCache)
    assert resolve_feature_cache(False) is None and resolve_feature_cache(None) is None
    assert resolve_feature_cache(tmp_path / "x").root == str(tmp_path / "x")
    with pytest.raises(TypeError, match="pass True"):
        resolve_feature_cache(3)
    with pytest.raises(ValueError, match="'sampled' or 'full'"):
        MSJoEFeatureCache(tmp_path, fingerprint="md5")


# ------------------------------------------------------------------------------------------ model wiring
def test_answer_uses_the_cache(tiny_msjoe, short_video, tmp_path):
    model = tiny_msjoe()
    assert model.feature_cache is None  # the test session turns the default cache off (conftest)
    assert model.select_frames(short_video, "What is shown?", queries=["a red square"]).feature_cache == "off"
    model.set_feature_cache(tmp_path)
    first = model.answer(short_video, "What is shown?", ["A. red", "B. blue"], queries=["a red square"])
    second = model.answer(short_video, "Which colour?", ["A. red", "B. blue"], queries=["a red square"])
    assert (first.feature_cache, second.feature_cache) == ("miss", "hit")
    assert second.timings["candidate_decode"] == 0.0 and "feature_cache" in second.timings
    assert torch.equal(first.similarity, second.similarity)
    assert torch.equal(first.key_frame_timestamps, second.key_frame_timestamps)
    assert model.candidate_features(short_video, use_cache=False).cache_status == "off"


def test_answer_in_approximate_mode(tiny_msjoe, needle_video, tmp_path):
    model = tiny_msjoe(candidate_seek_mode="approximate", num_key_frames=2)
    model.set_feature_cache(tmp_path)
    out = model.select_frames(needle_video, "Where is the red square?", queries=["a red square"])
    keys = open_video(needle_video).key_frame_timestamps()
    assert torch.equal(out.candidate_timestamps, keys) and set(out.key_frame_timestamps.tolist()) <= set(keys.tolist())
    assert out.feature_cache == "miss"


@pytest.mark.parametrize("seek_mode", ["exact", "approximate"])
def test_stage_timings_add_up_to_the_wall_time(tiny_msjoe, short_video, tmp_path, seek_mode):
    """Every second of `answer()` is in a named stage (the first call's CLIP load and weights fingerprint, and the
    approximate mode's key-frame scan included), so `total` is real."""
    model = tiny_msjoe(candidate_seek_mode=seek_mode)
    model.set_feature_cache(tmp_path)
    for first in (True, False):
        start = time.perf_counter()
        out = model.answer(short_video, "What is shown?", ["A. red", "B. blue"], queries=["a red square"])
        wall = time.perf_counter() - start
        assert ("clip_load" in out.timings) is first and out.feature_cache == ("miss" if first else "hit")
        assert (out.timings["candidate_plan"] > 0) is first, out.timings
        assert abs(wall - out.timings["total"]) < 0.05 * wall + 0.05, (wall, out.timings)
