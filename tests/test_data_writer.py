"""Durable, atomic writes of the Hub layout: temp file in the same folder, fsync, then `os.replace`."""

from __future__ import annotations

import copy
import json
import os

import pytest

from transformers_msjoe.cli.main import main
from transformers_msjoe.data import build_longvideo_qa, write_dataset_card
from transformers_msjoe.data.writer import read_metadata, write_metadata


@pytest.fixture
def built(longvideo_corpus, tmp_path):
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in copy.deepcopy(longvideo_corpus["rows"])))
    out = tmp_path / "built"
    build_longvideo_qa(tmp_path / "qa.jsonl", longvideo_corpus["videos_dir"], out, show_progress=False)
    return out


@pytest.fixture
def io_events(monkeypatch):
    """Records every fsync (of a file or folder) and every replace, in order."""
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))), real_fsync(fd))[1])  # fmt: skip
    monkeypatch.setattr(os, "replace", lambda src, dst: (events.append(("replace", str(src), str(dst))), real_replace(src, dst))[1])  # fmt: skip
    return events


def _fsynced_before_replace(events, target):
    """The temp file renamed onto `target` was fsync'ed before the rename."""
    (index,) = [i for i, e in enumerate(events) if e[0] == "replace" and e[2] == str(target)]
    return ("fsync", events[index][1]) in events[:index]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="names fsync'ed descriptors through /proc")
def test_metadata_and_card_are_fsynced_before_the_rename(built, io_events):
    rows = read_metadata(built, "train")
    write_metadata(built, "train", rows[:2])
    write_dataset_card(built)
    assert _fsynced_before_replace(io_events, built / "data/train/metadata.parquet")
    assert _fsynced_before_replace(io_events, built / "README.md")
    assert ("fsync", str(built)) in io_events  # the folder too, so the rename survives a power loss
    assert [r["id"] for r in read_metadata(built, "train")] == ["a-0", "a-1"]


def test_convert_out_is_written_atomically(longvideo_corpus, tmp_path, monkeypatch):
    """`msjoe data convert --out` used to truncate the file first: a crash left a shorter jsonl that builds fewer rows."""
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in longvideo_corpus["rows"]))
    out = tmp_path / "native.jsonl"
    out.write_text("previous conversion\n")
    real_dumps, calls = json.dumps, []

    def dies_on_the_third_record(value, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt("killed mid-write")
        return real_dumps(value, **kwargs)

    monkeypatch.setattr(json, "dumps", dies_on_the_third_record)
    with pytest.raises(KeyboardInterrupt):
        main(["data", "convert", str(source), "--format", "native", "--out", str(out)])
    monkeypatch.setattr(json, "dumps", real_dumps)
    assert out.read_text() == "previous conversion\n" and sorted(os.listdir(tmp_path)) == ["in.jsonl", "native.jsonl"]
    assert main(["data", "convert", str(source), "--format", "native", "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 5
