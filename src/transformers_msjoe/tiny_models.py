"""Tiny random models built offline: four MLLM families, a byte-level BPE tokenizer and a 3M-parameter CLIP.

They back `msjoe demo`, the test-suite and the benchmarks, so that the real loading code (folders laid out
exactly like Hub repos, `from_pretrained`, open_clip `local-dir:`) runs without network or real weights.
Their outputs are meaningless: weights are random. The processors keep upstream's defaults (frame re-sampling,
tiling, ...) wherever the tiny sizes allow, so that tests go through the path real checkpoints take.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerFast, ProcessorMixin

from .prompts import ANSWER_TEMPLATE, QUERY_TEMPLATE

__all__ = ["TINY_FAMILIES", "build_tiny_mllm", "build_tiny_tokenizer", "save_tiny_clip", "save_tiny_mllm"]

_QWEN_SPECIAL = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<image>",
    "<video>",
]  # fmt: skip  (<think>/<query>/<answer> stay ordinary text, as in real Qwen tokenizers)
_SMOLVLM_SPECIAL = ["<fake_token_around_image>", "<global-img>", "<end_of_utterance>"] + [
    f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)
]
_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for c in message['content'] %}"
    "{% if c['type'] == 'image' %}{{ image_token }}"
    "{% elif c['type'] == 'video' %}{{ video_token }}"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_QWEN_TOKENS = {
    "image_token": "<|vision_start|><|image_pad|><|vision_end|>",
    "video_token": "<|vision_start|><|video_pad|><|vision_end|>",
}
_LLAVA_TOKENS = {"image_token": "<image>\n", "video_token": "<video>\n"}


def _chat_template(image_token: str, video_token: str) -> str:
    return _CHAT_TEMPLATE.replace("{{ image_token }}", image_token).replace("{{ video_token }}", video_token)


def build_tiny_tokenizer(extra_special_tokens: tuple[str, ...] = (), vocab_size: int = 512) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained in milliseconds on our own prompt text, with Qwen-style special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [QUERY_TEMPLATE, ANSWER_TEMPLATE, "a person walks into the kitchen and opens the red door"] * 20
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=_QWEN_SPECIAL + list(extra_special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token=None, unk_token=None
    )


def _text_config(tok: PreTrainedTokenizerFast, **extra) -> dict:
    return dict(
        vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=4096, bos_token_id=None, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id, tie_word_embeddings=False, **extra,
    )  # fmt: skip


def _qwen_ids(tok: PreTrainedTokenizerFast) -> dict[str, int]:
    names = {"image_token_id": "<|image_pad|>", "video_token_id": "<|video_pad|>",
             "vision_start_token_id": "<|vision_start|>", "vision_end_token_id": "<|vision_end|>"}  # fmt: skip
    return {key: tok.convert_tokens_to_ids(token) for key, token in names.items()}


def _qwen2_5_vl() -> tuple[PreTrainedModel, ProcessorMixin]:
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )  # fmt: skip

    tok = build_tiny_tokenizer()
    budget = {"shortest_edge": 28 * 28 * 4, "longest_edge": 28 * 28 * 16}
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(size=budget),
        video_processor=Qwen2VLVideoProcessor(size=budget),
        tokenizer=tok,
        chat_template=_chat_template(**_QWEN_TOKENS),
    )
    config = Qwen2_5_VLConfig(
        text_config=_text_config(tok, rope_parameters={"rope_type": "default", "mrope_section": [2, 3, 3]}),
        vision_config=dict(
            depth=2,
            hidden_size=64,
            intermediate_size=128,
            num_heads=4,
            out_hidden_size=64,
            fullatt_block_indexes=[1],
            window_size=56,
        ),  # fmt: skip
        tie_word_embeddings=False,
        **_qwen_ids(tok),
    )
    return Qwen2_5_VLForConditionalGeneration(config), processor


def _qwen3_vl() -> tuple[PreTrainedModel, ProcessorMixin]:
    from transformers import (
        Qwen2VLImageProcessor,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )  # fmt: skip

    tok = build_tiny_tokenizer()
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(
            patch_size=16, size={"shortest_edge": 32 * 32 * 4, "longest_edge": 32 * 32 * 16}
        ),
        video_processor=Qwen3VLVideoProcessor(
            patch_size=16, size={"shortest_edge": 32 * 32 * 4, "longest_edge": 32 * 32 * 64}
        ),
        tokenizer=tok,
        chat_template=_chat_template(**_QWEN_TOKENS),
    )
    rope = {"rope_type": "default", "rope_theta": 5e6, "mrope_section": [2, 3, 3], "mrope_interleaved": True}
    config = Qwen3VLConfig(
        text_config=_text_config(tok, head_dim=16, rope_parameters=rope),
        vision_config=dict(
            depth=2,
            hidden_size=64,
            intermediate_size=128,
            num_heads=4,
            out_hidden_size=64,
            num_position_embeddings=64,
            deepstack_visual_indexes=[0],
        ),  # fmt: skip
        tie_word_embeddings=False,
        **_qwen_ids(tok),
    )
    return Qwen3VLForConditionalGeneration(config), processor


def _llava_onevision() -> tuple[PreTrainedModel, ProcessorMixin]:
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionImageProcessor,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
    )  # fmt: skip

    tok = build_tiny_tokenizer()
    size = {"height": 64, "width": 64}
    template = _chat_template(**_LLAVA_TOKENS)
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(size=size, crop_size=size, image_grid_pinpoints=[[64, 64]]),
        video_processor=LlavaOnevisionVideoProcessor(size=size),
        tokenizer=tok,
        num_image_tokens=16,
        vision_feature_select_strategy="full",
        chat_template=template,
    )
    config = LlavaOnevisionConfig(
        text_config=dict(model_type="qwen2", **_text_config(tok)),
        vision_config=dict(
            model_type="siglip_vision_model",
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=64,
            patch_size=16,
        ),  # fmt: skip
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        video_token_id=tok.convert_tokens_to_ids("<video>"),
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
        image_grid_pinpoints=[[64, 64]],
    )
    return LlavaOnevisionForConditionalGeneration(config), processor


def _smolvlm() -> tuple[PreTrainedModel, ProcessorMixin]:
    from transformers import (
        SmolVLMConfig,
        SmolVLMForConditionalGeneration,
        SmolVLMImageProcessor,
        SmolVLMProcessor,
        SmolVLMVideoProcessor,
    )
    from transformers.models.smolvlm.processing_smolvlm import DEFAULT_CHAT_TEMPLATE

    tok = build_tiny_tokenizer(tuple(_SMOLVLM_SPECIAL))
    # upstream's layout scaled to the 64-px tower: frames resized to 4 tiles on the longest edge, then tiled
    size, tile = {"longest_edge": 4 * 64}, {"longest_edge": 64}
    processor = SmolVLMProcessor(
        image_processor=SmolVLMImageProcessor(size=size, max_image_size=tile),
        video_processor=SmolVLMVideoProcessor(size=size, max_image_size=tile),
        tokenizer=tok,
        image_seq_len=4,
        chat_template=DEFAULT_CHAT_TEMPLATE,
    )
    config = SmolVLMConfig(
        text_config=dict(model_type="llama", **_text_config(tok)),
        vision_config=dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=64,
            patch_size=16,
        ),  # fmt: skip
        scale_factor=2,
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
    )
    return SmolVLMForConditionalGeneration(config), processor


_BUILDERS: dict[str, Callable[[], tuple[PreTrainedModel, ProcessorMixin]]] = {
    "qwen2_5_vl": _qwen2_5_vl,
    "qwen3_vl": _qwen3_vl,
    "llava_onevision": _llava_onevision,
    "smolvlm": _smolvlm,
}
TINY_FAMILIES: tuple[str, ...] = tuple(_BUILDERS)


def build_tiny_mllm(family: str = "qwen2_5_vl", seed: int = 0) -> tuple[PreTrainedModel, ProcessorMixin]:
    """A ~0.3M-parameter random MLLM of `family` and its processor (tokenizer built offline)."""
    if family not in _BUILDERS:
        raise ValueError(f"Unknown tiny family {family!r}; choose one of {TINY_FAMILIES}.")
    with torch.random.fork_rng(devices=[]):  # seeded without touching the caller's global RNG
        torch.manual_seed(seed)
        model, processor = _BUILDERS[family]()
    return model.eval(), processor


def save_tiny_mllm(save_directory: str | os.PathLike, family: str = "qwen2_5_vl", seed: int = 0) -> str:
    """Write a tiny MLLM + processor to a folder laid out like its Hub repo; returns the path."""
    model, processor = build_tiny_mllm(family, seed)
    model.save_pretrained(save_directory)
    processor.save_pretrained(save_directory)
    return os.fspath(save_directory)


TINY_CLIP_CONFIG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def save_tiny_clip(save_directory: str | os.PathLike, seed: int = 0) -> str:
    """Write a random 3M-parameter open_clip model as an open_clip Hub-layout folder; load it with
    `clip="local-dir:<path>"` (or the bare path). Returns the path."""
    import open_clip
    from safetensors.torch import save_file

    os.makedirs(save_directory, exist_ok=True)
    config_path = os.path.join(save_directory, "open_clip_config.json")
    preprocess = {"size": 64, "mean": list(open_clip.OPENAI_DATASET_MEAN), "std": list(open_clip.OPENAI_DATASET_STD)}
    with open(config_path, "w") as handle:
        json.dump({"model_cfg": TINY_CLIP_CONFIG, "preprocess_cfg": preprocess}, handle, indent=2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        # the architecture class itself, as `create_model` builds it: no "no weights found / initialized randomly"
        # warnings for a model whose whole point is random weights (loading it later goes through create_model)
        model = open_clip.CLIP(**TINY_CLIP_CONFIG)
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()},
        os.path.join(save_directory, "open_clip_model.safetensors"),
    )
    return os.fspath(save_directory)
