"""`atomic_write`: the one atomic, durable file replacement (feature cache entries, the dataset tools' files)."""

from __future__ import annotations

import os

import pytest

from transformers_msjoe.atomic_files import atomic_write


def test_a_failed_atomic_write_leaves_the_old_file_and_no_temp_file(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_write(path) as handle:
        handle.write("half")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old\n" and os.listdir(tmp_path) == ["qa.jsonl"]
    with atomic_write(path) as handle:
        handle.write("new\n")
    assert path.read_text() == "new\n" and oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_temp_files_are_hidden_and_carry_the_callers_suffix(tmp_path, monkeypatch):
    """A killed writer leaves `.<name>.<pid>.<random><suffix>`: what the feature cache's `clean` recognises."""
    seen = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (seen.append(os.path.basename(src)), real_replace(src, dst))[1])
    with atomic_write(tmp_path / "entry.safetensors", binary=True, temp_suffix=".partial") as handle:
        handle.write(b"\x00\x01")
    (name,) = seen
    assert name.startswith(".entry.safetensors.") and name.endswith(".partial")
    assert (tmp_path / "entry.safetensors").read_bytes() == b"\x00\x01" and os.listdir(tmp_path) == [
        "entry.safetensors"
    ]
