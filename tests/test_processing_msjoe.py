import dataclasses
import logging

import pytest
import torch

from transformers_msjoe import MSJoEConfig, MSJoEProcessor
from transformers_msjoe.processing_msjoe import frame_indices
from transformers_msjoe.prompts import letter_options
from transformers_msjoe.tiny_models import TINY_FAMILIES, build_tiny_mllm
from transformers_msjoe.video_io import VideoInfo, fit_to_pixel_budget, resize_frames

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


def _frames_fed(processor, inputs) -> int:
    """How many frames of the (single) video the MLLM processor turned into pixels."""
    if "video_grid_thw" in inputs:  # Qwen: temporal patches of `temporal_patch_size` frames
        return int(inputs["video_grid_thw"][0, 0]) * processor.mllm_processor.video_processor.temporal_patch_size
    if "pixel_values_videos" in inputs:  # LLaVA-OneVision: (1, N, 3, H, W)
        return inputs["pixel_values_videos"].shape[1]
    return inputs["pixel_values"].shape[1]  # SmolVLM: (1, N, 3, H, W)


def test_tiny_processors_keep_the_upstream_frame_sampling_default():
    # Qwen3-VL re-samples frames by default: the tiny processor must too, or tests miss what real checkpoints do
    assert build_tiny_mllm("qwen3_vl")[1].video_processor.do_sample_frames is True


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_the_mllm_processor_never_resamples_the_chosen_frames(family):
    processor = _processor(family)
    processor.mllm_processor.video_processor.do_sample_frames = True  # as a real checkpoint may ask
    frames = torch.randint(0, 255, (8, 3, 120, 160), dtype=torch.uint8)  # K = 8 key frames ...
    info = VideoInfo("v", duration_seconds=120.0, average_fps=2.0, num_frames=240, width=160, height=120)  # of 240
    inputs = processor.build_inputs(["q"], [frames], [torch.linspace(5, 115, 8)], [info], max_pixels=4096)
    assert _frames_fed(processor, inputs) == 8


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_the_config_budget_is_not_replaced_by_the_per_frame_cap(family, monkeypatch):
    processor = _processor(family)
    video_processor = processor.mllm_processor.video_processor
    seen = {}
    original = video_processor._preprocess

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(video_processor, "_preprocess", spy)
    frames = torch.randint(0, 255, (32, 3, 362, 646), dtype=torch.uint8)  # 32 key frames at the default budget
    stamps = torch.linspace(1, 99, 32)
    inputs = processor.build_inputs(["q"], [frames], [stamps], [INFO], max_pixels=235200)
    assert seen["cap_pixels_per_frame"] is False  # None logs transformers' deprecation warning
    # the config's per-frame budget holds for all 32 frames (the cap would share ~600 tokens over the clip)
    merge = video_processor.patch_size * video_processor.merge_size
    assert _visual_tokens(processor, inputs) >= 0.8 * 32 / 2 * 235200 / merge**2


def _prompt_tokens(processor, max_pixels: int) -> int:
    """Prompt length for 4 frames of a 720p video decoded within `max_pixels` (as `VideoReader.frames_at` does)."""
    frames = torch.randint(0, 255, (4, 3, 720, 1280), dtype=torch.uint8)
    frames = resize_frames(frames, fit_to_pixel_budget(720, 1280, max_pixels))
    info = VideoInfo("v", 100.0, 30.0, 3000, 1280, 720)
    return processor.build_inputs(["q"], [frames], [STAMPS], [info], max_pixels=max_pixels)["input_ids"].shape[1]


@pytest.mark.parametrize(
    "family, frames_as_video, preview_is_cheaper",
    [
        ("qwen2_5_vl", True, True),
        ("qwen3_vl", True, True),
        ("smolvlm", False, True),  # its image processor tiles by frame size
        ("smolvlm", True, False),  # fixed-size video frames: budgets only bound the decoded frames (warned)
        ("llava_onevision", True, False),
    ],
)
def test_preview_budget_gives_fewer_tokens_where_the_family_allows(family, frames_as_video, preview_is_cheaper, caplog):
    processor = _processor(family, frames_as_video=frames_as_video)
    # a preview of 64 x 36 px: one tile of the tiny SmolVLM (real SmolVLM tiles are 512 px, so the default
    # preview budget fits one); key frames at the default budget
    preview_max_pixels, key_frame_max_pixels = 64 * 36, MSJoEConfig().key_frame_max_pixels
    logging.Logger.warning_once.cache_clear()  # the fixed-size warning is logged once per process
    with caplog.at_level(logging.WARNING):
        preview = _prompt_tokens(processor, preview_max_pixels)
        key = _prompt_tokens(processor, key_frame_max_pixels)
    if preview_is_cheaper:
        assert preview < key
    else:
        assert preview == key
        assert any("resizes every frame to one fixed size" in r.getMessage() for r in caplog.records)


def test_frame_indices_are_the_frames_shown_at_the_timestamps():
    # frame i is shown over [i / fps, (i + 1) / fps): 10.02 s at 30 fps is frame 300 (rounding gives 301)
    assert frame_indices([10.02, 0.0, 99.999], fps=30.0, num_frames=3000) == [300, 0, 2999]
    assert frame_indices([3 / 30], fps=30.0, num_frames=3000) == [3]  # a boundary given as a float
    # a stream that starts at 1.5 s: times are on the stream clock, indices count from its first frame
    assert frame_indices([11.52, 1.5, 0.2], fps=30.0, num_frames=3000, begin_seconds=1.5) == [300, 0, 0]


def test_stream_start_is_taken_out_of_the_times_the_mllm_reads():
    qwen3 = _processor("qwen3_vl")
    at_zero = qwen3.build_inputs(["q"], [FRAMES], [STAMPS], [INFO], max_pixels=4096)
    late_start = dataclasses.replace(INFO, begin_seconds=2.0)  # what `VideoReader.info` reports for such a stream
    shifted = qwen3.build_inputs(["q"], [FRAMES], [STAMPS + 2.0], [late_start], max_pixels=4096)
    assert torch.equal(at_zero["input_ids"], shifted["input_ids"])  # "<15.0 seconds>", not "<17.0 seconds>"


def test_frames_as_video_without_a_video_processor_names_the_fix():
    processor = _processor("qwen2_5_vl")
    processor.has_video_processor = False
    with pytest.raises(ValueError, match="set frames_as_video=False"):
        processor.frames_as_video = True
