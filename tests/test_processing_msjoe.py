import pytest
import torch

from transformers_msjoe import MSJoEProcessor
from transformers_msjoe.prompts import letter_options
from transformers_msjoe.tiny_models import build_tiny_mllm
from transformers_msjoe.video_io import VideoInfo

INFO = VideoInfo("clip.mp4", duration_seconds=100.0, average_fps=30.0, num_frames=3000, width=320, height=240)
FRAMES = torch.randint(0, 255, (4, 3, 240, 320), dtype=torch.uint8)
STAMPS = torch.tensor([10.0, 20.0, 50.0, 90.0])


def _processor(family, **kwargs):
    return MSJoEProcessor(build_tiny_mllm(family)[1], **kwargs)


def _visual_tokens(processor, inputs):
    ids = inputs["input_ids"][0].tolist()
    pad = processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    return ids.count(pad)


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_pixel_budget_sets_the_visual_token_count(family):
    processor = _processor(family)
    small = processor.build_inputs(["q"], [FRAMES], [STAMPS], [INFO], max_pixels=32 * 32 * 4)
    large = processor.build_inputs(["q"], [FRAMES], [STAMPS], [INFO], max_pixels=32 * 32 * 16)
    assert 0 < _visual_tokens(processor, small) < _visual_tokens(processor, large)
    # never more than the budget allows: tokens x (patch*merge)^2 pixels <= frames x budget
    patch = processor.mllm_processor.video_processor.patch_size * 2
    assert _visual_tokens(processor, large) * patch * patch <= len(FRAMES) * 32 * 32 * 16


def test_video_metadata_gives_true_timestamps_and_sampling_rate():
    qwen3 = _processor("qwen3_vl")
    text = qwen3.tokenizer.decode(
        qwen3.build_inputs(["q"], [FRAMES], [STAMPS], [INFO], max_pixels=4096)["input_ids"][0]
    )
    assert "<15.0 seconds>" in text and "<70.0 seconds>" in text  # means of the two temporal patches
    qwen25 = _processor("qwen2_5_vl")
    inputs = qwen25.build_inputs(["q"], [FRAMES], [STAMPS], [INFO], max_pixels=4096)
    assert inputs["second_per_grid_ts"].tolist() == [pytest.approx(50.0)]  # 4 frames over 100 s, 2 per grid
    smol = _processor("smolvlm")
    text = smol.tokenizer.decode(smol.build_inputs(["q"], [FRAMES], [STAMPS], [INFO], max_pixels=4096)["input_ids"][0])
    assert "Frame from 00:50" in text


def test_images_mode_puts_one_image_per_frame():
    processor = _processor("qwen2_5_vl", frames_as_video=False)
    inputs = processor.build_inputs(["q"], [FRAMES], [STAMPS], [INFO], max_pixels=28 * 28 * 4)
    assert inputs["image_grid_thw"].shape[0] == len(FRAMES) and "pixel_values_videos" not in inputs


def test_text_only_turn_without_frames():
    processor = _processor("qwen2_5_vl")
    empty = FRAMES[:0]
    inputs = processor.build_inputs(["q"], [empty], [STAMPS[:0]], [INFO], max_pixels=4096)
    assert "pixel_values_videos" not in inputs and inputs["input_ids"].shape[0] == 1


def test_batch_is_left_padded_for_generation():
    processor = _processor("qwen2_5_vl")
    inputs = processor.build_inputs(
        ["short", "a much longer question text here"], [FRAMES, FRAMES], [STAMPS, STAMPS], [INFO, INFO], max_pixels=4096
    )
    assert inputs["attention_mask"][:, -1].all() and not inputs["attention_mask"][0, 0]


def test_prompts_contain_question_options_and_budget():
    processor = _processor("qwen2_5_vl")
    options = letter_options(["red", "blue"])
    query = processor.query_prompt("Which colour?", options, num_frames=16, num_queries=4)
    assert "Which colour?" in query and "A. red" in query and "16 frames" in query and "up to 4" in query
    assert "<answer>" in processor.answer_prompt("Which colour?", options, 32)
    assert "Options" not in processor.answer_prompt("Why?", [], 32)


def test_save_and_load_keeps_templates(tmp_path):
    processor = _processor("qwen2_5_vl", query_template="Q {question} {options_block}{num_frames} {num_queries}")
    processor.save_pretrained(tmp_path)
    loaded = MSJoEProcessor.from_pretrained(tmp_path)
    assert loaded.query_template == processor.query_template and loaded.frames_as_video
    assert type(loaded.mllm_processor) is type(processor.mllm_processor)


def test_processor_without_vision_is_rejected():
    tokenizer = build_tiny_mllm("qwen2_5_vl")[1].tokenizer

    class TextOnly:
        pass

    text_only = TextOnly()
    text_only.tokenizer = tokenizer
    with pytest.raises(ValueError, match="neither a video nor an image processor"):
        MSJoEProcessor(text_only)
    with pytest.raises(ValueError, match="no video processor"):
        processor = build_tiny_mllm("qwen2_5_vl")[1]
        processor.video_processor = None
        MSJoEProcessor(processor, frames_as_video=True)
