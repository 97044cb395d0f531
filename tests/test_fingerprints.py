"""fingerprints: video content identity (whole vs sampled hashing), module weight identity, file state."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

from transformers_msjoe.fingerprints import file_state, fingerprint_module, fingerprint_video


def test_fingerprint_is_content_not_path(short_video, tmp_path):
    copy = tmp_path / "elsewhere.mp4"
    shutil.copy(short_video, copy)
    assert (
        fingerprint_video(short_video) == fingerprint_video(copy) == fingerprint_video(Path(short_video).read_bytes())
    )
    assert fingerprint_video(short_video).startswith("sha256:")  # small files are hashed whole


def test_sampled_fingerprint_of_large_files(tmp_path):
    """> 16 MiB: size + head + tail + 32 sampled blocks. A same-size edit in an unsampled byte is the documented
    blind spot that `fingerprint="full"` closes; edits in the head/tail (container index) are always seen."""
    data = bytearray(os.urandom(20 * 2**20))
    path = tmp_path / "big.mp4"
    path.write_bytes(bytes(data))
    base = fingerprint_video(path)
    assert base.startswith("sampled1:")
    for offset, seen in ((10, True), (len(data) - 10, True), (2**20 + 70 * 2**10, False)):
        edited = bytearray(data)
        edited[offset] ^= 0xFF
        path.write_bytes(bytes(edited))
        assert (fingerprint_video(path) != base) is seen, offset
        assert fingerprint_video(path, "full") != fingerprint_video(bytes(data), "full")
    path.write_bytes(bytes(data) + b"\0")
    assert fingerprint_video(path) != base  # any change of size


def test_module_fingerprint_follows_values_and_structure():
    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 3)
    same = torch.nn.Linear(4, 3)
    same.load_state_dict(layer.state_dict())
    assert fingerprint_module(layer) == fingerprint_module(same)
    with torch.no_grad():
        same.bias[0] += 1e-3
    assert fingerprint_module(layer) != fingerprint_module(same)  # one changed value
    assert fingerprint_module(layer) != fingerprint_module(layer.to(torch.float64))  # dtype is part of the identity
    relu, gelu = torch.nn.Sequential(torch.nn.ReLU()), torch.nn.Sequential(torch.nn.GELU())
    assert fingerprint_module(relu) != fingerprint_module(gelu)  # no weights at all: the structure alone decides


def test_file_state_notices_replacement(tmp_path):
    path = tmp_path / "v.mp4"
    path.write_bytes(b"a" * 10)
    before = file_state(path)
    assert before is not None and before.size == 10
    replacement = tmp_path / "new.mp4"
    replacement.write_bytes(b"b" * 11)
    os.replace(replacement, path)
    assert file_state(path) != before
    path.unlink()
    assert file_state(path) is None
