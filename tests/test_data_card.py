"""The dataset card: shipped template card in sync, YAML that `datasets` reads back as the documented schema."""

from __future__ import annotations

import copy
import json
import os

import pytest
from datasets.info import DatasetInfosDict
from huggingface_hub import DatasetCard

from transformers_msjoe.data import (
    LONGVIDEO_QA_FEATURES,
    build_longvideo_qa,
    render_dataset_card,
)
from transformers_msjoe.data.card import read_card_splits

pytestmark = pytest.mark.usefixtures("isolated_datasets_cache")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED_CARD = os.path.join(REPO_ROOT, "dataset_card", "README.md")


def test_shipped_card_is_the_rendered_template():
    """Regenerate with `msjoe data card --out dataset_card/README.md` after editing card_template.md."""
    with open(SHIPPED_CARD, encoding="utf-8") as handle:
        shipped = handle.read()
    assert shipped == str(render_dataset_card(None))


def test_card_yaml_declares_configs_and_the_schema():
    card = DatasetCard.load(SHIPPED_CARD)
    data = card.data.to_dict()
    assert data["configs"] == [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train/**"}]}]
    assert DatasetInfosDict.from_dataset_card_data(card.data)["default"].features == LONGVIDEO_QA_FEATURES
    assert data["license"] == "other"
    text = card.text
    for fact in (
        "2.8K videos and 7K multiple-choice questions",
        "Not published by the authors",
        "TSPO-10K",
        "@inproceedings{tan2026msjoe",
    ):
        assert fact in text


def test_built_card_has_statistics_and_provenance(longvideo_corpus, tmp_path):
    rows = copy.deepcopy(longvideo_corpus["rows"])
    rows[4]["split"] = "validation"
    rows[0]["pass_rate"] = 0.25
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "built"
    build_longvideo_qa(tmp_path / "qa.jsonl", longvideo_corpus["videos_dir"], out, show_progress=False)
    text = (out / "README.md").read_text()
    assert "| train | 4 | 2 | 0.03 |" in text and "| validation | 1 | 1 | 0.01 |" in text
    assert "min 20, median 45, mean 42, max 60" in text  # per (split, video): 60, 45, 20
    assert "1 of 5 questions labelled, mean 0.250" in text
    assert "**build**" in text and "kept=5, rejected=0" in text
    assert read_card_splits(out) == ["train", "validation"]


def test_datasets_keys_local_cache_on_the_card(longvideo_corpus, tmp_path):
    """Drift test for `content_fingerprint`: datasets 5.2 serves a stale cache of a local folder whose metadata
    changed while its card did not; the re-rendered card (new fingerprint) gives the fresh rows. If the first
    assertion starts failing, upstream keys the cache on file contents and the fingerprint is merely redundant."""
    import pyarrow.parquet as pq
    from datasets import load_dataset

    from transformers_msjoe.data import write_dataset_card
    from transformers_msjoe.data.writer import verify_layout

    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in longvideo_corpus["rows"]))
    out = tmp_path / "built"
    build_longvideo_qa(tmp_path / "qa.jsonl", longvideo_corpus["videos_dir"], out, show_progress=False)
    cache = str(tmp_path / "hf-cache")
    assert load_dataset(str(out), split="train", cache_dir=cache).num_rows == 5
    metadata = out / "data/train/metadata.parquet"
    pq.write_table(pq.read_table(metadata).slice(0, 2), metadata)  # an edit behind the tools' back
    assert load_dataset(str(out), split="train", cache_dir=cache).num_rows == 5  # stale (upstream behaviour)
    assert any("fingerprint differs" in p for p in verify_layout(out).problems)  # our check catches it
    write_dataset_card(out)
    assert verify_layout(out).problems == []
    assert load_dataset(str(out), split="train", cache_dir=cache).num_rows == 2


def test_card_command_waits_for_the_folder_lock(longvideo_corpus, tmp_path, monkeypatch, capsys):
    """`msjoe data card FOLDER` rewrites README.md under the folder's write lock; a busy folder is a clear error."""
    from filelock import FileLock

    from transformers_msjoe.cli.main import main
    from transformers_msjoe.data import writer

    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in longvideo_corpus["rows"]))
    built = tmp_path / "built"
    build_longvideo_qa(tmp_path / "qa.jsonl", longvideo_corpus["videos_dir"], built, show_progress=False)
    assert main(["data", "card", str(built), "--repo-id", "me/qa"]) == 0
    assert 'load_dataset("me/qa"' in (built / "README.md").read_text()
    monkeypatch.setattr(writer, "LOCK_TIMEOUT_SECONDS", 0.2)
    with FileLock(str(built / ".msjoe" / "lock")), pytest.raises(SystemExit) as exit_info:
        main(["data", "card", str(built)])
    assert exit_info.value.code == 2
    assert "is being changed by another `msjoe data` command" in capsys.readouterr().err
