"""What the trainer checks before training: datasets (videos read from Arrow), frame overrides validated with the
model config, default LoRA targets on the language model only."""

import re

import pytest
from datasets import Dataset, Video

from transformers_msjoe.grpo_setup import apply_frame_overrides, default_lora_target_modules, prepare_qa_dataset
from transformers_msjoe.loading import load_msjoe_model


def qa_dataset(videos, **columns):
    rows = {
        "video": videos,
        "question": ["Q?"] * len(videos),
        "options": [["a", "b"]] * len(videos),
        "answer": ["A"] * len(videos),
    }
    return Dataset.from_dict({**rows, **columns})


def test_rows_without_a_video_are_named_without_reading_video_bytes():
    videos = [{"path": "a.mp4", "bytes": None}, {"path": None, "bytes": None}, {"path": None, "bytes": b"\x00\x01"}]
    dataset = qa_dataset(videos, id=["x", "y", "z"]).cast_column("video", Video(decode=False))
    with pytest.raises(ValueError, match=r"train_dataset: row 1 \(id 'y'\) has no video .* Fix or filter these rows"):
        prepare_qa_dataset(dataset, "train_dataset", None)
    prepared = prepare_qa_dataset(dataset.select([2, 0]), "train_dataset", None)  # positions follow the selection
    assert prepared.features["video"].decode is False
    with pytest.raises(ValueError, match=r"row 0 has no video \(`video` is None\)"):
        prepare_qa_dataset(qa_dataset([None, "a.mp4"]), "train_dataset", None)


def test_frame_overrides_are_validated_with_the_model_config(grpo_init_dir, make_grpo_trainer):
    config = load_msjoe_model(grpo_init_dir).config
    assert config.max_candidate_frames == 32
    with pytest.raises(ValueError, match=r"`num_key_frames`=64 exceeds `max_candidate_frames`=32.*Change those fields"):
        apply_frame_overrides(config, {"num_key_frames": 64, "answer_max_new_tokens": 3})
    assert config.num_key_frames == 4 and config.answer_max_new_tokens == 4  # left as it was
    apply_frame_overrides(config, {"num_key_frames": 64, "max_candidate_frames": 128})
    assert (config.num_key_frames, config.max_candidate_frames) == (64, 128)
    with pytest.raises(ValueError, match="num_key_frames"):  # through the trainer, before any work
        make_grpo_trainer(num_key_frames=64)


@pytest.mark.parametrize("family", ["qwen2_5_vl", "llava_onevision"])
def test_default_lora_targets_are_the_language_models_attention(grpo_init_dirs, family):
    model = load_msjoe_model(grpo_init_dirs(family))
    pattern = default_lora_target_modules(model)
    targeted = [name for name, _ in model.named_modules() if re.fullmatch(pattern, name)]
    assert len(targeted) == 4 * model.config.mllm_config.get_text_config().num_hidden_layers
    assert all(name.startswith("mllm.model.language_model.") for name in targeted)
    assert {name.rsplit(".", 1)[-1] for name in targeted} == {"q_proj", "k_proj", "v_proj", "o_proj"}
