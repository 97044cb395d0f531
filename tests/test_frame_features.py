"""frame_features: candidate decode + CLIP encode in bounded batches, exact and key-frame-aligned modes."""

from __future__ import annotations

import pytest
import torch
from torchcodec.decoders import VideoDecoder

from transformers_msjoe.clip_scoring import MSJoECLIPScorer
from transformers_msjoe.frame_features import (
    candidate_decode_size,
    candidate_feature_settings,
    extract_candidate_features,
    plan_candidates,
    plan_video_candidates,
)
from transformers_msjoe.synthetic_video import make_synthetic_video
from transformers_msjoe.video_io import VideoDecodeError, open_video, plan_candidate_timestamps


@pytest.fixture(scope="module")
def scorer(tiny_clip_dir) -> MSJoECLIPScorer:
    return MSJoECLIPScorer.from_identity(tiny_clip_dir)


@pytest.fixture(scope="module")
def gop_video(tmp_path_factory) -> str:
    """60 s at 6 fps, a key frame every 60 frames (10 s): a long GOP relative to 1 fps candidates."""
    return make_synthetic_video(tmp_path_factory.mktemp("ff") / "gop.mp4", duration_seconds=60.0, fps=6.0, gop=60)


def test_exact_features_match_direct_encoding(short_video, scorer):
    reader = open_video(short_video)
    features = extract_candidate_features(reader, scorer, candidate_fps=1.0, max_candidate_frames=1024, batch_size=16)
    planned = plan_candidate_timestamps(120.0, 1.0, 1024)
    assert torch.equal(features.timestamps, planned) and features.embeddings.shape == (120, scorer.embed_dim)
    assert torch.allclose(features.embeddings.norm(dim=-1), torch.ones(120), atol=1e-5)
    assert candidate_decode_size(120, 160, scorer.decode_size(120, 160)) is None  # small: decoded natively
    direct = scorer.encode_frames(reader.frames_at(planned[:5]))  # (5, D)
    assert torch.allclose(features.embeddings[:5], direct, atol=1e-5)
    assert (
        set(features.timings) == {"candidate_plan", "candidate_decode", "clip_encode"}
        and features.cache_status == "off"
    )
    assert features.seek_mode == "exact" and features.timestamp_error == {} and features.planned_candidates == 120


def test_batches_are_bounded_and_batch_size_does_not_change_features(short_video, scorer, monkeypatch):
    seen: list[int] = []
    encode = scorer.encode_frames

    def spy(frames: torch.Tensor) -> torch.Tensor:
        seen.append(len(frames))
        return encode(frames)

    reference = extract_candidate_features(
        open_video(short_video), scorer, candidate_fps=1.0, max_candidate_frames=1024
    )
    monkeypatch.setattr(scorer, "encode_frames", spy)
    small = extract_candidate_features(
        open_video(short_video), scorer, candidate_fps=1.0, max_candidate_frames=1024, batch_size=7
    )
    assert max(seen) == 7 and sum(seen) == 120  # never more than one batch of frames in memory
    assert torch.allclose(small.embeddings, reference.embeddings, atol=1e-5)


def test_cap_limits_candidates(short_video, scorer):
    features = extract_candidate_features(open_video(short_video), scorer, candidate_fps=1.0, max_candidate_frames=16)
    assert len(features.timestamps) == 16 == len(features.embeddings)


def test_approximate_mode_uses_key_frames_and_reports_error(gop_video, scorer):
    reader = open_video(gop_video)
    plan = plan_candidates(reader, 1.0, 1024, "approximate")
    keys = reader.key_frame_timestamps()  # 0, 10, ..., 50 s
    assert torch.equal(plan.timestamps, keys) and len(plan.planned) == 60
    features = extract_candidate_features(
        reader, scorer, candidate_fps=1.0, max_candidate_frames=1024, seek_mode="approximate"
    )
    assert torch.equal(features.timestamps, keys) and features.seek_mode == "approximate"
    assert set(features.timestamp_error) == {"mean_seconds", "max_seconds"}  # seconds only; the count is apart
    assert features.timestamp_error["mean_seconds"] == pytest.approx(float(plan.error_seconds.mean()))
    assert features.timestamp_error["max_seconds"] == pytest.approx(9.5)  # 59.5 s -> last key frame at 50 s
    assert features.planned_candidates == plan.planned_candidates == 60 and len(features.timestamps) == 6
    assert torch.allclose(features.embeddings, scorer.encode_frames(reader.frames_at(keys)), atol=1e-5)
    assert torch.equal(plan_video_candidates(reader, 1.0, 1024, "approximate"), keys)


def test_approximate_mode_errors(short_video, scorer):
    with pytest.raises(VideoDecodeError, match="bare torchcodec decoder"):
        extract_candidate_features(
            open_video(VideoDecoder(short_video)),
            scorer,
            candidate_fps=1.0,
            max_candidate_frames=8,
            seek_mode="approximate",
        )
    with pytest.raises(ValueError, match="'exact' or 'approximate'"):
        plan_candidates(open_video(short_video), 1.0, 8, "nearest")


def test_settings_name_everything_that_changes_features(scorer):
    settings = candidate_feature_settings(scorer, 1.0, 1024, "exact")
    assert settings["clip"] == scorer.identity()
    assert {"candidate_fps", "max_candidate_frames", "seek_mode", "pipeline", "decoder"} <= set(settings)


def test_large_frames_are_downscaled_inside_ffmpeg(tmp_path, scorer, monkeypatch):
    """Frames over NATIVE_DECODE_MAX_AREA x the CLIP decode area never reach memory at full size."""
    assert candidate_decode_size(240, 320, (224, 299)) is None  # 320x240 for a 224 px CLIP: native
    assert candidate_decode_size(1080, 1920, (224, 398)) == (224, 398)
    path = make_synthetic_video(tmp_path / "wide.mp4", duration_seconds=4.0, fps=2.0, size=(320, 240))
    reader = open_video(path)
    seen: list[tuple[int, ...]] = []
    decode = reader.iter_frames_at

    def spy(*args, **kwargs):
        for frames in decode(*args, **kwargs):
            seen.append(tuple(frames.shape[-2:]))
            yield frames

    monkeypatch.setattr(reader, "iter_frames_at", spy)
    features = extract_candidate_features(reader, scorer, candidate_fps=1.0, max_candidate_frames=8)
    expected = scorer.decode_size(240, 320)  # the tiny CLIP's 64 px: 320x240 is > 4x its area
    assert seen == [expected] and features.embeddings.shape == (4, scorer.embed_dim)
