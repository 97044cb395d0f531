import re

import pytest
from huggingface_hub.errors import StrictDataclassClassValidationError, StrictDataclassFieldValidationError
from transformers import AutoConfig, Qwen2Config

import transformers_msjoe  # noqa: F401  (registers the Auto classes)
from transformers_msjoe import MSJoEConfig, MSJoESamplerConfig
from transformers_msjoe.configuration_msjoe import parse_clip_identity


def _documented_fields(cls) -> set[str]:
    return set(re.findall(r"^    (\w+) \(`", cls.__doc__, flags=re.MULTILINE))


@pytest.mark.parametrize("cls", [MSJoEConfig, MSJoESamplerConfig])
def test_every_field_is_documented_once(cls):
    own = {name for name in cls.__annotations__ if name != "tie_word_embeddings"}
    documented = _documented_fields(cls)
    assert own - documented == set(), f"undocumented fields: {own - documented}"
    assert documented - own == set(), f"documented but absent: {documented - own}"
    assert all(cls.__doc__.count(f"    {name} (`") == 1 for name in own)


def test_defaults_follow_the_paper():
    config = MSJoEConfig()
    assert config.mllm_config.model_type == "qwen2_5_vl"
    assert (config.clip_model_name, config.clip_pretrained) == ("ViT-L-14", "openai")
    assert config.candidate_fps == 1.0 and config.num_key_frames == 32 and config.num_queries == 4
    assert config.effective_num_preview_frames == 16  # K // 2 (paper Fig. 7)
    config.num_key_frames = 64
    assert config.effective_num_preview_frames == 32  # follows K, not frozen at construction
    assert MSJoEConfig(num_preview_frames=0).effective_num_preview_frames == 0


def test_clip_short_form_and_schemas(tmp_path):
    assert parse_clip_identity("ViT-B-32/laion2b_s34b_b79k") == ("ViT-B-32", "laion2b_s34b_b79k")
    assert parse_clip_identity("ViT-B-32") == ("ViT-B-32", None)
    assert parse_clip_identity("hf-hub:org/repo") == ("hf-hub:org/repo", None)
    assert parse_clip_identity(str(tmp_path)) == (f"local-dir:{tmp_path}", None)
    config = MSJoEConfig(clip="ViT-B-16/openai")
    assert config.clip == "ViT-B-16/openai"


def test_save_load_round_trip_and_auto_config(tmp_path):
    config = MSJoEConfig(
        num_key_frames=8, sampler_config={"base_channels": 32, "num_groups": 8}, clip="ViT-B-32/openai"
    )
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert type(loaded) is MSJoEConfig
    assert loaded.num_key_frames == 8 and loaded.sampler_config.base_channels == 32 and loaded.clip == "ViT-B-32/openai"
    assert type(loaded.sampler_config) is MSJoESamplerConfig


@pytest.mark.parametrize(
    "kwargs, names",
    [
        (dict(num_key_frames=0), "num_key_frames.* the default is 32"),  # each error names the fix too
        (dict(num_queries=6), "num_queries"),
        (dict(num_key_frames=64, max_candidate_frames=32), "max_candidate_frames"),
        (dict(candidate_fps=0.0), "candidate_fps"),
        (dict(num_preview_frames=-1), "num_preview_frames.*pass None for the paper's setting"),
        (dict(preview_max_pixels=0), "preview_max_pixels.* the default is 25088"),
    ],
)
def test_invalid_values_name_the_field(kwargs, names):
    with pytest.raises(StrictDataclassClassValidationError, match=names):
        MSJoEConfig(**kwargs)


def test_wrong_types_and_literals_are_rejected():
    with pytest.raises(StrictDataclassFieldValidationError, match="candidate_seek_mode"):
        MSJoEConfig(candidate_seek_mode="fast")
    with pytest.raises(StrictDataclassFieldValidationError, match="num_key_frames"):
        MSJoEConfig(num_key_frames="32")


def test_mllm_without_vision_is_rejected():
    with pytest.raises(StrictDataclassClassValidationError, match="no vision input"):
        MSJoEConfig(mllm_config=Qwen2Config())


@pytest.mark.parametrize(
    "kwargs, names",
    [
        (dict(kernel_size=4), "kernel_size"),
        (dict(num_groups=7), "num_groups"),
        (dict(channel_multipliers=[]), "channel_multipliers"),
        (dict(max_num_queries=0), "max_num_queries.*use the default 4"),
        (dict(dropout=1.0), "dropout.*the default is 0.0"),
    ],
)
def test_invalid_sampler_values_name_the_field(kwargs, names):
    with pytest.raises(StrictDataclassClassValidationError, match=names):
        MSJoESamplerConfig(**kwargs)


def test_wrapped_mllm_keeps_its_attention_implementation():
    mllm = AutoConfig.for_model("qwen2_5_vl")
    mllm._attn_implementation = "eager"
    config = MSJoEConfig(mllm_config=mllm)
    assert config.mllm_config._attn_implementation == "eager"
