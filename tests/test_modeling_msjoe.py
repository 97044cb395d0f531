import json
import os
import subprocess
import sys

import pytest
import torch
from huggingface_hub.errors import StrictDataclassError

from transformers_msjoe import (
    MSJoECLIPScorer,
    MSJoEConfig,
    MSJoEForVideoQA,
    MSJoEFrameSampler,
    MSJoEProcessor,
    MSJoESamplerConfig,
    VideoDecodeError,
    open_video,
)
from transformers_msjoe.loading import load_msjoe_model
from transformers_msjoe.tiny_models import TINY_FAMILIES

OPTIONS = ["A. red", "B. blue", "C. yellow", "D. green"]
QUESTION = "What colour is the square?"


def _spy_on_turns(model, monkeypatch) -> list[dict]:
    """Record what each MLLM turn is given: frames `(N, 3, H, W)`, their timestamps and the pixel budget."""
    turns = []
    build_inputs = model.processor.build_inputs

    def spy(prompts, frames, timestamps, videos, max_pixels, **kwargs):
        turns.append({"frames": list(frames), "timestamps": list(timestamps), "max_pixels": max_pixels})
        return build_inputs(prompts, frames, timestamps, videos, max_pixels, **kwargs)

    monkeypatch.setattr(model.processor, "build_inputs", spy)
    return turns


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_answer_end_to_end_for_every_family(family, tiny_msjoe, short_video, monkeypatch):
    model = tiny_msjoe(family)
    turns = _spy_on_turns(model, monkeypatch)
    out = model.answer(short_video, QUESTION, OPTIONS)
    k, t = model.config.num_key_frames, len(out.candidate_timestamps)
    query_turn, answer_turn = turns
    assert query_turn["max_pixels"] == model.config.preview_max_pixels
    assert torch.equal(query_turn["timestamps"][0], out.preview_timestamps)
    # the answer turn sees exactly the K key frames, decoded at the key-frame budget, and no preview frame
    assert answer_turn["max_pixels"] == model.config.key_frame_max_pixels
    assert len(answer_turn["frames"]) == 1 and len(answer_turn["frames"][0]) == k
    assert torch.equal(answer_turn["timestamps"][0], out.key_frame_timestamps)
    expected = open_video(short_video).frames_at(out.key_frame_timestamps, max_pixels=model.config.key_frame_max_pixels)
    assert torch.equal(answer_turn["frames"][0], expected)
    assert t == 120  # 1 fps over 120 s
    assert (
        out.key_frame_indices.tolist() == sorted(set(out.key_frame_indices.tolist()))
        and len(out.key_frame_indices) == k
    )
    assert torch.equal(out.key_frame_timestamps, out.candidate_timestamps[out.key_frame_indices])
    assert out.similarity.shape == (len(out.queries), t) and 1 <= len(out.queries) <= 4
    assert torch.isclose(out.frame_weights.sum(), torch.tensor(1.0))
    assert len(out.preview_timestamps) == k // 2
    assert out.query_turn_text is not None and out.answer_turn_text is not None
    assert out.option in (None, "A", "B", "C", "D")
    for stage in (
        "query_turn",
        "candidate_decode",
        "clip_encode",
        "sampler",
        "key_frame_decode",
        "answer_turn",
        "total",
    ):
        assert out.timings[stage] >= 0.0
    json.dumps(out.to_dict())  # the whole output is JSON-serialisable


def test_clip_is_frozen_and_absent_from_the_state_dict(tiny_msjoe, short_video):
    model = tiny_msjoe()
    model.answer(short_video, QUESTION, OPTIONS)  # CLIP is loaded lazily on first use
    clip = model.clip_scorer.model
    assert not clip.training and all(not p.requires_grad for p in clip.parameters())
    keys = model.state_dict().keys()
    assert all(k.startswith(("mllm.", "sampler.")) for k in keys)
    assert not any("clip" in k or "visual.transformer" in k for k in keys)
    assert clip not in list(model.modules())


def test_save_load_gives_identical_outputs_in_a_fresh_process(tiny_msjoe, short_video, tmp_path):
    model = tiny_msjoe()
    torch.nn.init.normal_(model.sampler.head.weight, std=1.0)  # a non-trivial sampler must survive the round trip
    expected = model.answer(short_video, QUESTION, OPTIONS).to_dict()
    model.save_pretrained(tmp_path)
    assert {"model.safetensors", "config.json", "README.md", "msjoe_processor_config.json"} <= set(os.listdir(tmp_path))
    script = (
        "import json, sys, transformers_msjoe\n"
        "from transformers import AutoModel\n"
        "model = AutoModel.from_pretrained(sys.argv[1])\n"
        "out = model.answer(sys.argv[2], sys.argv[3], json.loads(sys.argv[4]))\n"
        "sys.stdout.write(json.dumps({'type': type(model).__name__, **out.to_dict()}))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path), short_video, QUESTION, json.dumps(OPTIONS)],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    fresh = json.loads(result.stdout)
    assert fresh.pop("type") == "MSJoEForVideoQA"
    for key in ("queries", "key_frame_indices", "answer_turn_text", "query_turn_text", "option"):
        assert fresh[key] == expected[key], key
    assert torch.allclose(torch.tensor(fresh["frame_weights"]), torch.tensor(expected["frame_weights"]), atol=1e-6)


def test_model_card_names_mllm_clip_and_settings(tiny_msjoe, tmp_path):
    model = tiny_msjoe(num_key_frames=12)
    model.save_pretrained(tmp_path)
    card = (tmp_path / "README.md").read_text()
    assert "qwen2_5_vl" in card and model.config.clip in card and "| key frames K | 12 |" in card
    assert "import transformers_msjoe" in card


def test_push_to_hub_uploads_weights_processor_and_card(tiny_msjoe, monkeypatch):
    import huggingface_hub

    uploaded = {}

    class FakeRepo:
        repo_id = "me/msjoe-tiny"

    def fake_upload(self, *, repo_id, folder_path, **kwargs):
        uploaded["repo_id"] = repo_id
        uploaded["files"] = sorted(os.listdir(folder_path))
        uploaded["card"] = open(os.path.join(folder_path, "README.md")).read()

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", lambda self, repo_id, **kw: FakeRepo())
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", fake_upload)
    tiny_msjoe().push_to_hub("me/msjoe-tiny")
    assert uploaded["repo_id"] == "me/msjoe-tiny"
    assert {"model.safetensors", "config.json", "processor_config.json", "msjoe_processor_config.json"} <= set(
        uploaded["files"]
    )
    assert 'MSJoEForVideoQA.from_pretrained("me/msjoe-tiny")' in uploaded["card"]


def test_strategies_without_query_turn(tiny_msjoe, short_video):
    model = tiny_msjoe()
    uniform = model.answer(short_video, QUESTION, OPTIONS, selection="uniform")
    assert uniform.query_turn_text is None and uniform.similarity is None and uniform.queries == []
    assert "query_turn" not in uniform.timings and "clip_encode" not in uniform.timings
    gaps = uniform.key_frame_timestamps.diff()
    assert torch.allclose(gaps, gaps[0].expand_as(gaps), atol=1.0)
    given = model.select_frames(short_video, QUESTION, OPTIONS, queries=["a red square", "a blue square"])
    assert given.queries == ["a red square", "a blue square"] and given.query_turn_text is None
    assert given.similarity.shape[0] == 2 and given.answer is None


def test_question_as_extra_query_and_budget_override(tiny_msjoe, short_video, monkeypatch):
    model = tiny_msjoe(use_question_as_query=True, num_queries=3)
    tagged = "<think>boxes</think><query>a red square</query><query>a blue square</query><query>a yellow square</query>"
    monkeypatch.setattr(model, "generate_texts", lambda prompts, *a, **k: [tagged] * len(prompts))
    out = model.select_frames(short_video, QUESTION, OPTIONS, num_key_frames=5)
    assert out.queries == ["a red square", "a blue square", "a yellow square", QUESTION] and not out.queries_fallback
    assert out.similarity.shape[0] == 4 and len(out.key_frame_indices) == 5


def test_fewer_candidates_than_key_frames_uses_them_all(tiny_msjoe, needle_video):
    model = tiny_msjoe(num_key_frames=64)
    out = model.select_frames(needle_video, QUESTION, OPTIONS, queries=["a square"])  # 60 s -> 60 candidates
    assert out.key_frame_indices.tolist() == list(range(60))


def test_answer_batch_rows_are_independent(tiny_msjoe, short_video, needle_video):
    model = tiny_msjoe()
    batch = model.answer_batch(
        [short_video, needle_video],
        [QUESTION, "Is there a red square?"],
        [OPTIONS, ["yes", "no"]],
        queries=[["a red square"], ["a red square"]],
    )
    single = model.answer(needle_video, "Is there a red square?", ["yes", "no"], queries=["a red square"])
    assert len(batch) == 2 and batch[1].options == ["A. yes", "B. no"]
    assert torch.equal(batch[1].key_frame_indices, single.key_frame_indices)
    assert batch[1].answer_turn_text == single.answer_turn_text


@pytest.mark.parametrize(
    "question, options, error, message",
    [
        ("", OPTIONS, ValueError, "non-empty string"),
        ("   ", OPTIONS, ValueError, "non-empty string"),
        (QUESTION, "A. red B. blue", ValueError, "single string"),
        (QUESTION, ["A. red", "blue"], ValueError, "look lettered"),
    ],
)
def test_bad_questions_and_options(tiny_msjoe, short_video, question, options, error, message):
    with pytest.raises(error, match=message):
        tiny_msjoe().answer(short_video, question, options)


def test_missing_video_is_a_clear_error(tiny_msjoe, tmp_path):
    with pytest.raises(VideoDecodeError, match="not found"):
        tiny_msjoe().answer(str(tmp_path / "nope.mp4"), QUESTION, OPTIONS)


def test_mllm_without_vision_is_rejected(tmp_path, tiny_clip_dir):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    Qwen2ForCausalLM(Qwen2Config(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=1)).save_pretrained(tmp_path)  # fmt: skip
    with pytest.raises(StrictDataclassError, match="no vision input"):  # transformers' config-validation error
        MSJoEForVideoQA.from_mllm(str(tmp_path), clip=tiny_clip_dir)


def test_config_that_does_not_fit_the_checkpoint(tiny_msjoe, tmp_path):
    tiny_msjoe().save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="does not fit the checkpoint"):
        MSJoEForVideoQA.from_pretrained(tmp_path, sampler_config={"base_channels": 32})


def test_load_msjoe_model_accepts_checkpoints_and_plain_mllms(tiny_msjoe, tiny_mllm_dir, tiny_clip_dir, tmp_path):
    tiny_msjoe().save_pretrained(tmp_path)
    from_ckpt = load_msjoe_model(str(tmp_path), num_key_frames=6, clip=tiny_clip_dir)
    assert from_ckpt.config.num_key_frames == 6 and from_ckpt.processor is not None
    from_mllm = load_msjoe_model(tiny_mllm_dir("smolvlm"), clip=tiny_clip_dir, num_key_frames=4)
    assert from_mllm.config.mllm_config.model_type == "smolvlm" and from_mllm.config.num_key_frames == 4
    with pytest.raises(ValueError, match="own sampler"):
        load_msjoe_model(str(tmp_path), sampler=str(tmp_path))


def test_trained_sampler_weights_are_loaded_by_from_mllm(tiny_mllm_dir, tiny_clip_dir, tmp_path):
    from transformers_msjoe import MSJoEFrameSampler, MSJoESamplerConfig

    sampler = MSJoEFrameSampler(MSJoESamplerConfig(base_channels=16, num_groups=4))
    torch.nn.init.normal_(sampler.head.weight)
    sampler.save_pretrained(tmp_path)
    model = MSJoEForVideoQA.from_mllm(tiny_mllm_dir(), clip=tiny_clip_dir, sampler=str(tmp_path))
    assert model.config.sampler_config.base_channels == 16
    assert torch.equal(model.sampler.head.weight, sampler.head.weight)


def test_forward_is_the_mllm_forward_and_trains(tiny_msjoe):
    model = tiny_msjoe()
    processor = model.processor
    frames = torch.randint(0, 255, (4, 3, 64, 64), dtype=torch.uint8)
    from transformers_msjoe.video_io import VideoInfo

    info = VideoInfo("x", 10.0, 1.0, 10, 64, 64)
    inputs = processor.build_inputs(["hello"], [frames], [torch.arange(4.0)], [info], max_pixels=4096)
    out = model(**inputs, labels=inputs["input_ids"])
    out.loss.backward()
    assert out.loss.item() > 0 and model.mllm.lm_head.weight.grad is not None
    assert model.sampler.head.weight.grad is None  # the sampler is trained through its own REINFORCE term


def test_missing_processor_is_a_clear_error(tiny_msjoe, short_video):
    model = tiny_msjoe()
    model.processor = None
    with pytest.raises(ValueError, match="no processor"):
        model.answer(short_video, QUESTION, OPTIONS)


def test_processor_is_saved_with_the_model(tiny_msjoe, tmp_path):
    model = tiny_msjoe()
    model.processor.answer_template = "Just answer. {question} {options_block}{num_frames}"
    model.save_pretrained(tmp_path)
    loaded = MSJoEForVideoQA.from_pretrained(tmp_path)
    assert isinstance(loaded.processor, MSJoEProcessor)
    assert loaded.processor.answer_template.startswith("Just answer.")


def test_given_queries_are_validated_not_truncated(tiny_msjoe, short_video):
    model = tiny_msjoe()
    with pytest.raises(ValueError, match="between 1 and 4 non-empty queries"):
        model.select_frames(short_video, QUESTION, OPTIONS, queries=[f"q{i}" for i in range(5)])
    with pytest.raises(ValueError, match="between 1 and 4"):
        model.select_frames(short_video, QUESTION, OPTIONS, queries=["  "])
    with pytest.raises(ValueError, match="wrap it in a list"):
        model.select_frames(short_video, QUESTION, OPTIONS, queries="a red square")


def test_one_generator_per_row_makes_sampling_independent_of_the_batch(tiny_msjoe, short_video, needle_video):
    model = tiny_msjoe(sampler_selection_mode="sample")
    torch.nn.init.normal_(model.sampler.head.weight, std=1.0)
    queries = [["a red square"], ["a red square"]]

    def picks(videos, seeds):
        generators = [torch.Generator().manual_seed(s) for s in seeds]
        outs = model.answer_batch(
            videos, [QUESTION] * len(videos), None, queries=queries[: len(videos)], generator=generators
        )
        return [o.key_frame_indices.tolist() for o in outs]

    alone = picks([needle_video], [7])[0]
    batched = picks([short_video, needle_video], [3, 7])[1]
    assert alone == batched
    with pytest.raises(ValueError, match="one per row"):
        picks([short_video, needle_video], [1])


def test_bf16_mllm_keeps_an_fp32_sampler_through_save_and_load(tiny_mllm_dir, tiny_clip_dir, short_video, tmp_path):
    model = MSJoEForVideoQA.from_mllm(
        tiny_mllm_dir(), clip=tiny_clip_dir, num_key_frames=6, mllm_kwargs={"dtype": torch.bfloat16}
    )
    assert model.mllm.dtype == torch.bfloat16 and model.sampler.head.weight.dtype == torch.float32
    torch.nn.init.normal_(model.sampler.head.weight, std=1.0)
    before = model.select_frames(short_video, QUESTION, OPTIONS, queries=["a red square", "a blue square"])
    model.save_pretrained(tmp_path)
    loaded = MSJoEForVideoQA.from_pretrained(tmp_path)
    assert loaded.mllm.dtype == torch.bfloat16 and loaded.sampler.head.weight.dtype == torch.float32
    after = loaded.select_frames(short_video, QUESTION, OPTIONS, queries=["a red square", "a blue square"])
    assert torch.equal(before.key_frame_indices, after.key_frame_indices)
    assert torch.equal(before.frame_weights, after.frame_weights)


def test_generation_config_survives_save_and_load(tiny_msjoe, tmp_path):
    model = tiny_msjoe()
    model.generation_config.repetition_penalty = 1.05
    model.generation_config.eos_token_id = [1, 2]
    model.save_pretrained(tmp_path)
    loaded = MSJoEForVideoQA.from_pretrained(tmp_path)
    assert loaded.generation_config.repetition_penalty == 1.05 and loaded.generation_config.eos_token_id == [1, 2]
    assert loaded.generation_config is loaded.mllm.generation_config


def test_save_pretrained_with_push_uploads_the_complete_folder(tiny_msjoe, tmp_path, monkeypatch):
    import huggingface_hub

    uploaded = {}

    class FakeRepo:
        repo_id = "me/tiny"

    def fake_upload(self, *, repo_id, folder_path, **kwargs):
        uploaded.update(files=sorted(os.listdir(folder_path)), message=kwargs["commit_message"])

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", lambda self, repo_id, **kw: FakeRepo())
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", fake_upload)
    tiny_msjoe().save_pretrained(tmp_path, push_to_hub=True, repo_id="me/tiny", commit_message="first")
    assert {"README.md", "msjoe_processor_config.json", "generation_config.json", "model.safetensors"} <= set(
        uploaded["files"]
    )
    assert uploaded["message"] == "first"


def test_sampler_training_state_is_saved_and_shown(tiny_msjoe, tiny_mllm_dir, tiny_clip_dir, tmp_path, caplog):
    untrained = tiny_msjoe()
    assert untrained.config.sampler_is_trained is False
    untrained.save_pretrained(tmp_path / "a")
    assert "untrained (random init)" in (tmp_path / "a" / "README.md").read_text()
    assert MSJoEForVideoQA.from_pretrained(tmp_path / "a").config.sampler_is_trained is False
    untrained.sampler.save_pretrained(tmp_path / "sampler")
    trained = MSJoEForVideoQA.from_mllm(tiny_mllm_dir(), clip=tiny_clip_dir, sampler=str(tmp_path / "sampler"))
    assert trained.config.sampler_is_trained is True


def test_from_mllm_honours_frames_as_video_and_keeps_the_clip_weights_path(tiny_mllm_dir, tiny_clip_dir):
    model = MSJoEForVideoQA.from_mllm(tiny_mllm_dir(), clip=tiny_clip_dir, frames_as_video=False)
    assert model.processor.frames_as_video is False
    from transformers_msjoe.configuration_msjoe import parse_clip_identity

    assert parse_clip_identity("ViT-B-32//data/weights/clip.bin") == ("ViT-B-32", "/data/weights/clip.bin")
    config = model.config
    config.clip_model_name, config.clip_pretrained = "ViT-B-32", "/data/weights/clip.bin"
    assert parse_clip_identity(config.clip) == ("ViT-B-32", "/data/weights/clip.bin")


def test_from_mllm_returns_an_eval_model_so_selection_is_repeatable(tiny_mllm_dir, tiny_clip_dir, short_video):
    sampler = MSJoEFrameSampler(MSJoESamplerConfig(base_channels=16, num_groups=4, dropout=0.5))
    model = MSJoEForVideoQA.from_mllm(tiny_mllm_dir(), clip=tiny_clip_dir, sampler=sampler, num_key_frames=8)
    assert not model.training and not model.sampler.training and not model.mllm.training
    torch.nn.init.normal_(model.sampler.head.weight, std=1.0)
    picks = [model.select_frames(short_video, QUESTION, queries=["a red square"]).key_frame_indices for _ in "ab"]
    assert torch.equal(*picks)  # no dropout at inference


def test_from_mllm_resolves_the_sampler_before_building_one_config(tiny_mllm_dir, tiny_clip_dir, tmp_path):
    eight = MSJoEFrameSampler(MSJoESamplerConfig(max_num_queries=8, base_channels=16, num_groups=4))
    torch.nn.init.normal_(eight.head.weight)
    eight.save_pretrained(tmp_path)
    mllm = tiny_mllm_dir()
    # 6 queries fit the loaded sampler's 8 channels (the default sampler has 4)
    model = MSJoEForVideoQA.from_mllm(mllm, clip=tiny_clip_dir, sampler=str(tmp_path), num_queries=6)
    assert model.config.num_queries == 6 and model.config.sampler_config.max_num_queries == 8
    # a sampler_config alone sizes a new (random) sampler
    fresh = MSJoEForVideoQA.from_mllm(
        mllm, clip=tiny_clip_dir, sampler_config=MSJoESamplerConfig(base_channels=32, num_groups=4)
    )
    assert fresh.sampler.head.in_channels == 32 and not fresh.config.sampler_is_trained
    # with a sampler, it updates that sampler's config
    merged = MSJoEForVideoQA.from_mllm(mllm, clip=tiny_clip_dir, sampler=eight, sampler_config={"dropout": 0.1})
    assert merged.config.sampler_config.dropout == 0.1 and merged.config.sampler_config.max_num_queries == 8
    assert torch.equal(merged.sampler.head.weight, eight.head.weight) and merged.config.sampler_is_trained
    with pytest.raises(ValueError, match="does not fit the weights"):
        MSJoEForVideoQA.from_mllm(mllm, clip=tiny_clip_dir, sampler=eight, sampler_config={"base_channels": 32})


def test_config_frames_as_video_is_the_one_setting(tiny_msjoe, short_video, tmp_path, monkeypatch):
    tiny_msjoe().save_pretrained(tmp_path)  # saved feeding frames as a video
    model = MSJoEForVideoQA.from_pretrained(tmp_path, frames_as_video=False)
    assert model.config.frames_as_video is False and model.processor.frames_as_video is False
    fed = []
    build_inputs = model.processor.build_inputs
    monkeypatch.setattr(model.processor, "build_inputs", lambda *a, **k: fed.append(build_inputs(*a, **k)) or fed[-1])
    model.answer(short_video, QUESTION, OPTIONS, queries=["a red square"])
    assert "pixel_values" in fed[-1] and "pixel_values_videos" not in fed[-1]  # images
    model.config.frames_as_video = True  # a later edit of the config is followed too
    model.answer(short_video, QUESTION, OPTIONS, queries=["a red square"])
    assert "pixel_values_videos" in fed[-1] and model.processor.frames_as_video is True


def test_key_frame_budget_must_be_positive(tiny_msjoe, short_video):
    model = tiny_msjoe()
    for bad in (0, -3, 2.5):
        with pytest.raises(ValueError, match="`num_key_frames` must be a positive integer"):
            model.select_frames(short_video, QUESTION, selection="uniform", num_key_frames=bad)


def test_one_query_list_per_row(tiny_msjoe, short_video):
    with pytest.raises(ValueError, match="2 videos, 2 questions, 1 query lists; pass one of each per row"):
        tiny_msjoe().answer_batch([short_video] * 2, [QUESTION] * 2, queries=[["a red square"]])


def test_unknown_selection_fails_when_the_model_is_built(tiny_mllm_dir, tiny_clip_dir, monkeypatch):
    from transformers import AutoModelForImageTextToText

    monkeypatch.setattr(AutoModelForImageTextToText, "from_pretrained", lambda *a, **k: pytest.fail("weights loaded"))
    with pytest.raises(ValueError, match="Unknown frame selection 'bogus'.*register_selector"):
        MSJoEForVideoQA.from_mllm(tiny_mllm_dir(), clip=tiny_clip_dir, selection="bogus")
    with pytest.raises(ValueError, match="Unknown frame selection 'bogus'"):
        MSJoEForVideoQA(MSJoEConfig(selection="bogus"))  # before building the (full-size default) MLLM


def test_clip_follows_the_model_device_unless_the_user_set_it(tiny_msjoe, tiny_clip_dir):
    model = tiny_msjoe()
    clip = model.clip_scorer  # loaded where the sampler is (CPU)
    model.sampler.to("meta")  # stands in for `model.to("cuda")` on a CPU-only machine
    assert model.clip_scorer is clip and clip.device.type == "meta"
    own = MSJoECLIPScorer.from_identity(tiny_clip_dir)
    model.set_clip_scorer(own)
    assert model.clip_scorer is own and own.device.type == "cpu"  # placed by the user: never moved


def test_uniform_selection_honours_the_candidate_seek_mode(tiny_msjoe, tmp_path):
    from transformers_msjoe.synthetic_video import make_synthetic_video

    video = make_synthetic_video(tmp_path / "gop.mp4", duration_seconds=60.0, fps=2.0, gop=20)  # key frame / 10 s
    exact = tiny_msjoe().select_frames(video, QUESTION, selection="uniform", num_key_frames=4)
    approximate = tiny_msjoe(candidate_seek_mode="approximate").select_frames(
        video, QUESTION, selection="uniform", num_key_frames=4
    )
    key_frames = open_video(video).key_frame_timestamps()
    assert len(exact.candidate_timestamps) == 60
    assert len(approximate.candidate_timestamps) == len(key_frames) < 60
    assert set(approximate.key_frame_timestamps.tolist()) <= set(key_frames.tolist())
