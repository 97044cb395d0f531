"""video_io: bad input (each a clear error naming the problem and the fix), timestamp planning, pixel budgets,
every accepted input kind giving identical frames, bounded batches, key frames and the approximate-mode snap."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from torchcodec.decoders import VideoDecoder

from transformers_msjoe import _compat
from transformers_msjoe.synthetic_video import make_synthetic_video
from transformers_msjoe.video_io import (
    VideoDecodeError,
    VideoReader,
    fit_to_pixel_budget,
    open_video,
    plan_candidate_timestamps,
    plan_uniform_timestamps,
    resize_frames,
    snap_to_key_frames,
)


def _ffmpeg(*args: str) -> None:
    subprocess.run([shutil.which("ffmpeg"), "-loglevel", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def gop_video(tmp_path_factory) -> str:
    """40 s at 5 fps with a key frame every 25 frames (5 s): key frames at 0, 5, 10, ... 35 s."""
    return make_synthetic_video(tmp_path_factory.mktemp("gop") / "gop.mp4", duration_seconds=40.0, fps=5.0, gop=25)


# ------------------------------------------------------------------------------------------ bad input
def test_missing_file_names_path_and_fix(tmp_path):
    with pytest.raises(VideoDecodeError, match=r"not found: .*nope\.mp4.*Check the path"):
        open_video(tmp_path / "nope.mp4")


def test_text_file_named_mp4_is_not_a_video(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n")
    with pytest.raises(VideoDecodeError, match=r"notes\.mp4 is not a readable video .*re-encode it"):
        open_video(path)


def test_truncated_mp4_is_reported_unreadable(short_video, tmp_path):
    data = Path(short_video).read_bytes()
    path = tmp_path / "truncated.mp4"
    path.write_bytes(data[: len(data) // 3])  # the moov index sits at the end: it is cut off
    with pytest.raises(VideoDecodeError, match=r"truncated\.mp4 is not a readable video \(corrupt, truncated"):
        open_video(path)


def test_audio_only_file_has_no_video_stream(tmp_path):
    path = tmp_path / "tone.m4a"
    _ffmpeg("-f", "lavfi", "-i", "sine=duration=1", str(path))
    with pytest.raises(
        VideoDecodeError,
        match=r"tone\.m4a has no video stream \(it holds only audio\)\. Pass a file with a video track",
    ):
        open_video(path)


@pytest.mark.parametrize("kind", ["empty_container", "fragmented_mp4_no_frames", "y4m_header_only"])
def test_zero_length_video(tmp_path, kind):
    """Three real zero-frame files: ffmpeg writes no stream at all for `-frames:v 0` into a plain mp4, an h264
    stream with no samples into a fragmented mp4 (`empty_moov`), and a header-only Y4M has a stream of 0 frames."""
    if kind == "y4m_header_only":
        path = tmp_path / "empty.y4m"
        path.write_bytes(b"YUV4MPEG2 W64 H48 F10:1 Ip A1:1 C420jpeg\n")
    else:
        path = tmp_path / f"{kind}.mp4"
        flags = ["-movflags", "+empty_moov+frag_keyframe"] if kind == "fragmented_mp4_no_frames" else []
        _ffmpeg(
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x48:rate=10:duration=1",
            "-frames:v",
            "0",
            "-c:v",
            "libx264",
            *flags,
            str(path),
        )
    with pytest.raises(VideoDecodeError, match=r"zero-length .*Pass a video with at least one frame"):
        open_video(path)


def test_folder_and_empty_bytes_and_bad_types(tmp_path):
    with pytest.raises(VideoDecodeError, match="is a folder, not a video file"):
        open_video(tmp_path)
    with pytest.raises(VideoDecodeError, match=r"bytes are empty"):
        open_video(b"")
    with pytest.raises(VideoDecodeError, match=r"needs 'path' or 'bytes'"):
        open_video({"path": None, "bytes": None})
    with pytest.raises(TypeError, match="Pass a path, bytes, a datasets `Video` value or a torchcodec `VideoDecoder`"):
        open_video(12345)


# ------------------------------------------------------------------------------------------ planning
def test_candidate_timestamps_are_bin_centres_at_fps():
    stamps = plan_candidate_timestamps(10.0, candidate_fps=1.0, max_candidate_frames=100)
    assert torch.allclose(stamps, torch.arange(10, dtype=torch.float64) + 0.5)
    assert len(plan_candidate_timestamps(10.0, candidate_fps=2.0, max_candidate_frames=100)) == 20
    shifted = plan_candidate_timestamps(4.0, 1.0, 100, start_seconds=1.5)
    assert shifted.tolist() == [2.0, 3.0, 4.0, 5.0]
    assert plan_candidate_timestamps(0.3, 1.0, 100).tolist() == [0.15]  # shorter than one bin: one candidate


def test_candidate_cap_spreads_evenly():
    stamps = plan_candidate_timestamps(3600.0, candidate_fps=1.0, max_candidate_frames=64)
    assert len(stamps) == 64
    gaps = stamps.diff()
    assert torch.allclose(gaps, torch.full_like(gaps, 3600.0 / 64))
    assert stamps[0] == pytest.approx(3600.0 / 128)
    assert plan_uniform_timestamps(10.0, 0).numel() == 0


def test_pixel_budget_keeps_aspect_and_never_upscales():
    assert fit_to_pixel_budget(240, 320, 10**6) == (240, 320)
    height, width = fit_to_pixel_budget(1080, 1920, 235200)
    assert height * width <= 235200 and height % 2 == 0 and width % 2 == 0
    assert width / height == pytest.approx(1920 / 1080, rel=0.02)
    assert height * width > 0.95 * 235200
    assert fit_to_pixel_budget(4, 4, 1) == (2, 2)  # never below the 2-pixel multiple FFmpeg needs


def test_resize_frames_stays_uint8():
    frames = torch.randint(0, 256, (3, 3, 48, 64), dtype=torch.uint8)
    out = resize_frames(frames, (24, 32))
    assert out.shape == (3, 3, 24, 32) and out.dtype == torch.uint8


# ------------------------------------------------------------------------------------------ inputs & decoding
def test_every_input_kind_gives_identical_frames(short_video):
    from datasets import Dataset, Video

    data = Path(short_video).read_bytes()
    decoded = Dataset.from_dict({"video": [short_video]}).cast_column("video", Video())[0]["video"]
    nhwc = Dataset.from_dict({"video": [short_video]}).cast_column("video", Video(dimension_order="NHWC"))[0]["video"]
    stamps = [1.0, 20.3, 61.7, 119.0]
    reference = open_video(short_video).frames_at(stamps)  # (4, 3, 120, 160)
    assert reference.shape == (4, 3, 120, 160)
    sources = {
        "bytes": data,
        "datasets path value": {"path": short_video, "bytes": None},
        "datasets bytes value": {"path": None, "bytes": data},
        "datasets decoder": decoded,
        "datasets NHWC decoder": nhwc,
        "bare torchcodec decoder": VideoDecoder(short_video),
        "reader": open_video(short_video),
    }
    for name, source in sources.items():
        assert torch.equal(open_video(source).frames_at(stamps), reference), name
    assert open_video(decoded).content_source == short_video  # datasets decoders are reopened from their file


def test_batches_are_bounded_and_max_pixels_downscales(short_video):
    reader = open_video(short_video)
    stamps = torch.linspace(0, 110, 7)
    batches = list(reader.iter_frames_at(stamps, batch_size=3, max_pixels=80 * 60))
    assert [len(b) for b in batches] == [3, 3, 1]
    assert batches[0].shape[-2:] == (60, 80)
    assert reader.info.num_frames == 240 and reader.info.duration_seconds == pytest.approx(120.0)


# ------------------------------------------------------------------------------------------ key frames
def test_key_frames_and_snap(gop_video):
    reader = open_video(gop_video)
    keys = reader.key_frame_timestamps()
    assert torch.allclose(keys, torch.arange(0, 40, 5, dtype=torch.float64))
    planned = plan_candidate_timestamps(reader.info.duration_seconds, 1.0, 1024)  # 0.5, 1.5, ... 39.5
    snap = snap_to_key_frames(planned, keys)
    assert torch.equal(snap.timestamps, keys)  # every key frame is someone's nearest
    assert snap.max_error == pytest.approx(4.5)  # 39.5 s -> the last key frame at 35 s
    brute_force = (planned[:, None] - keys[None, :]).abs().min(dim=1).values  # (T,) distance to the nearest key
    assert torch.allclose(snap.error_seconds, brute_force) and snap.mean_error == pytest.approx(
        float(brute_force.mean())
    )
    # a key frame decodes to the frame shown at that time
    assert torch.equal(reader.frames_at(snap.timestamps[:2]), open_video(gop_video).frames_at([0.0, 5.0]))


def test_snap_by_hand():
    snap = snap_to_key_frames(torch.tensor([1.0, 5.0, 6.0, 14.0, 16.0, 29.0]), torch.tensor([0.0, 10.0, 20.0]))
    assert snap.timestamps.tolist() == [0.0, 10.0, 20.0]
    assert snap.error_seconds.tolist() == [1.0, 5.0, 4.0, 4.0, 4.0, 9.0]  # a tie (5 s) goes to the earlier key


def test_key_frames_need_the_source(short_video):
    with pytest.raises(VideoDecodeError, match="not from a bare torchcodec decoder.*candidate_seek_mode='exact'"):
        open_video(VideoDecoder(short_video)).key_frame_timestamps()


def test_compat_key_frame_scan_matches_decoder(gop_video):
    """Drift test for `_compat.scan_key_frame_seconds` (torchcodec's public Demuxer/FrameIndex): it must agree
    with the decoder's own key-frame index (a private method, used here only as the reference)."""
    decoder = VideoDecoder(gop_video)
    indices = decoder._get_key_frame_indices()
    expected = decoder.get_frames_at(indices=list(indices)).pts_seconds.to(torch.float64)
    assert torch.allclose(_compat.scan_key_frame_seconds(gop_video), expected)
    assert torch.allclose(_compat.scan_key_frame_seconds(Path(gop_video).read_bytes()), expected)
    assert _compat.probe_video_container(gop_video) == {"readable": True, "video_streams": 1, "media_types": ["video"]}


def test_compat_datasets_video_source(short_video):
    """Drift test for `_compat.datasets_video_source`: `datasets`' `Video(decode=True)` decoders carry the source they
    were built from in the private `_hf_encoded` (returned by `encode_torchcodec_video`); other decoders carry none.
    When this fails, `datasets` changed how it tags its decoders: update the shim."""
    from datasets import Dataset, Video

    data = Path(short_video).read_bytes()
    by_path = Dataset.from_dict({"video": [short_video]}).cast_column("video", Video())[0]["video"]
    by_bytes = Dataset.from_dict({"video": [{"path": None, "bytes": data}]}).cast_column("video", Video())[0]["video"]
    assert getattr(by_path, "_hf_encoded", {}).get("path") == short_video  # the upstream mechanism the shim reads
    assert _compat.datasets_video_source(by_path) == short_video
    assert _compat.datasets_video_source(by_bytes) == data
    assert _compat.datasets_video_source(VideoDecoder(short_video)) is None


def test_reader_notices_a_replaced_file(short_video, tmp_path):
    path = tmp_path / "v.mp4"
    shutil.copy(short_video, path)
    reader, from_bytes = open_video(path), open_video(path.read_bytes())
    assert reader.source_unchanged() and from_bytes.source_unchanged()
    shutil.copy(short_video, tmp_path / "other.mp4")
    os.replace(tmp_path / "other.mp4", path)  # same bytes, another file: its frames are not what the reader holds
    assert not reader.source_unchanged() and open_video(path).source_unchanged() and from_bytes.source_unchanged()
    path.unlink()
    assert not reader.source_unchanged()


def test_reader_info_is_reused(short_video):
    reader = open_video(short_video)
    assert open_video(reader) is reader
    assert isinstance(VideoReader(reader), VideoReader)


def _padded(video: bytes, pad_bytes: int) -> bytes:
    """The video followed by a top-level ISO BMFF `free` box (ignored by demuxers): the same frames, more bytes."""
    return video + (pad_bytes + 8).to_bytes(4, "big") + b"free" + bytes(pad_bytes)


def test_bytes_are_labelled_by_length_and_sampled_fingerprint_not_a_full_hash(short_video, tmp_path, monkeypatch):
    """A bytes input is named (and keyed in the feature cache) by its length and sampled content fingerprint: a
    bounded read (4 MiB for a large input), where a sha256 of every byte cost ~0.6 s per GB on each open."""
    import hashlib

    from transformers_msjoe.feature_cache import MSJoEFeatureCache
    from transformers_msjoe.fingerprints import fingerprint_video

    big = _padded(Path(short_video).read_bytes(), 32 * 2**20)  # > 16 MiB: sampled, not hashed whole
    real_sha256, hashed = hashlib.sha256, []

    class CountingSha256:
        def __init__(self, data: bytes = b""):
            self._digest = real_sha256(data)
            hashed.append(len(data))

        def update(self, data: bytes) -> None:
            hashed.append(len(data))
            self._digest.update(data)

        def hexdigest(self) -> str:
            return self._digest.hexdigest()

    monkeypatch.setattr(hashlib, "sha256", CountingSha256)
    reader = open_video(big)
    assert sum(hashed) <= 5 * 2**20, f"{sum(hashed)} bytes hashed to open {len(big)} bytes"
    monkeypatch.undo()
    fingerprint = fingerprint_video(big)
    assert (
        reader.label == f"<bytes: {len(big)} B, sampled1:{fingerprint.split(':')[1][:16]}>" == reader.info.source_name
    )
    assert reader.bytes_fingerprint == fingerprint and open_video(reader).bytes_fingerprint == fingerprint
    path = tmp_path / "big.mp4"
    path.write_bytes(big)
    cache = MSJoEFeatureCache(tmp_path / "cache")
    assert cache.fingerprint(reader) == cache.fingerprint(str(path)) == fingerprint  # same key as the file
    assert MSJoEFeatureCache(tmp_path / "c", fingerprint="full").fingerprint(reader) == fingerprint_video(big, "full")
    other = open_video(_padded(Path(short_video).read_bytes(), 32 * 2**20 + 1))  # one byte longer
    assert other.label != reader.label and cache.fingerprint(other) != fingerprint
    small = open_video(Path(short_video).read_bytes())  # <= 16 MiB: hashed whole, still labelled by length
    assert small.label.startswith(f"<bytes: {os.path.getsize(short_video)} B, sha256:")
    assert cache.fingerprint(small) == fingerprint_video(short_video)


def test_a_late_starting_stream_reports_its_start_in_the_info(tmp_path):
    # a stream whose first frame is shown at 1.5 s: frame indices (processor metadata) must count from there
    path = tmp_path / "late.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=2", "-output_ts_offset", "1.5", str(path))
    reader = open_video(str(path))
    assert reader.info.begin_seconds == pytest.approx(1.5, abs=0.05)
    assert reader.begin_seconds == reader.info.begin_seconds
    first = reader.frames_at([reader.info.begin_seconds])
    assert torch.equal(first, reader.frames_at([0.0]))  # times before the start clamp to the first frame
