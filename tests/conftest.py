"""Shared fixtures: tiny offline models in Hub layout, a tiny open_clip folder, generated videos.

Everything is built locally in a session temp folder; nothing is downloaded: `pytest_configure` turns the
Hugging Face libraries offline before any of them is imported (they read the switches once, at import).
Factories return paths so tests exercise the real `from_pretrained` / open_clip loading code.
"""

from __future__ import annotations

import os

import pytest

OFFLINE_SWITCHES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def pytest_configure(config):
    """No test may reach the Hub. Set before test modules import huggingface_hub (this file imports none)."""
    for name in OFFLINE_SWITCHES:
        os.environ[name] = "1"


@pytest.fixture(scope="session", autouse=True)
def offline_hub():
    """Fails fast if a Hugging Face library was imported before `pytest_configure` and is therefore online."""
    import huggingface_hub.constants

    assert huggingface_hub.constants.HF_HUB_OFFLINE, "huggingface_hub was imported before the tests went offline"
    yield


@pytest.fixture(scope="session", autouse=True)
def no_default_feature_cache(tmp_path_factory):
    """Models built in tests start with the CLIP-feature cache off (and pointed at a temp folder if turned on),
    so no test reads another's entries or writes to ~/.cache; cache tests pass their own `MSJoEFeatureCache`."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MSJOE_DISABLE_FEATURE_CACHE", "1")
        patch.setenv("MSJOE_FEATURE_CACHE", str(tmp_path_factory.mktemp("feature-cache")))
        yield


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory):
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="session")
def tiny_clip_dir(artifacts) -> str:
    """A random 3M-parameter open_clip model saved as an open_clip Hub-layout folder."""
    from transformers_msjoe.tiny_models import save_tiny_clip

    return save_tiny_clip(artifacts / "tiny-clip")


@pytest.fixture(scope="session")
def tiny_clip_builtin(artifacts, tiny_clip_dir) -> tuple[str, str]:
    """The tiny CLIP as an open_clip *built-in* architecture name (registered with `open_clip.add_model_config`)
    plus a copy of its weights file: `(model_name, weights_path)`, for `MSJoECLIPScorer(name, None | path)`."""
    import json
    import shutil

    import open_clip

    from transformers_msjoe.tiny_models import TINY_CLIP_CONFIG

    folder = artifacts / "open_clip_configs"
    folder.mkdir(exist_ok=True)
    (folder / "msjoe-tiny-clip.json").write_text(json.dumps(TINY_CLIP_CONFIG))
    open_clip.add_model_config(folder / "msjoe-tiny-clip.json")
    weights = artifacts / "msjoe-tiny-clip-weights.safetensors"
    shutil.copy(os.path.join(tiny_clip_dir, "open_clip_model.safetensors"), weights)
    return "msjoe-tiny-clip", os.fspath(weights)


@pytest.fixture(scope="session")
def tiny_mllm_dir(artifacts):
    """Factory: `tiny_mllm_dir(family)` -> folder of a tiny random MLLM + processor in Hub layout."""
    from transformers_msjoe.tiny_models import save_tiny_mllm

    made: dict[str, str] = {}

    def make(family: str = "qwen2_5_vl") -> str:
        if family not in made:
            made[family] = save_tiny_mllm(artifacts / f"tiny-{family}", family)
        return made[family]

    return make


@pytest.fixture(scope="session")
def short_video(artifacts) -> str:
    """2 minutes at 2 fps, 160x120, with three planted coloured boxes (at ~20 s, ~62 s, ~97 s)."""
    from transformers_msjoe.synthetic_video import make_synthetic_video

    return make_synthetic_video(artifacts / "short.mp4", duration_seconds=120.0, fps=2.0)


@pytest.fixture(scope="session")
def needle_video(artifacts) -> str:
    """1 minute at 4 fps; a single red box from 40 s to 44 s (the needle)."""
    from transformers_msjoe.synthetic_video import PlantedEvent, make_synthetic_video

    return make_synthetic_video(
        artifacts / "needle.mp4",
        duration_seconds=60.0,
        fps=4.0,
        events=[PlantedEvent(40.0, 44.0, "red", "a red square")],
        relative=False,
    )


@pytest.fixture(scope="session")
def longvideo_corpus(artifacts) -> dict:
    """A raw long-video QA corpus: `videos_dir` (long_a 60 s, long_b 45 s, short_c 20 s; 1 fps, 160x120) and five
    valid native question `rows` (copy them before editing). Treat `videos_dir` as read-only."""
    from transformers_msjoe.synthetic_video import make_synthetic_video

    videos_dir = artifacts / "longvideo-raw" / "videos"
    for name, seconds in (("long_a", 60.0), ("long_b", 45.0), ("short_c", 20.0)):
        make_synthetic_video(videos_dir / f"{name}.mp4", duration_seconds=seconds, fps=1.0)
    rows = [
        {"id": "a-0", "video": "long_a.mp4", "question": "Which box appears first?", "options": ["red", "blue", "yellow", "green"], "answer": "A", "question_type": "order"},
        {"id": "a-1", "video_id": "long_a", "question": "How many boxes appear?", "options": ["A. one", "B. two", "C. three"], "answer": "C", "question_type": "count"},
        {"id": "b-0", "video": "long_b.mp4", "question": "Which box is in the middle?", "options": {"A": "red", "B": "blue"}, "answer": "blue"},
        {"id": "b-1", "video": "long_b.mp4", "question": "What is the background?", "options": ["a test pattern", "a forest"], "answer": "(A)"},
        {"id": "c-0", "video": "short_c.mp4", "question": "Which box appears last?", "options": ["red", "blue", "yellow"], "answer": "C", "source": "synthetic"},
    ]  # fmt: skip
    return {"videos_dir": str(videos_dir), "rows": rows}


@pytest.fixture
def isolated_datasets_cache(tmp_path, monkeypatch) -> str:
    """`datasets` caches into this test's temp folder, not ~/.cache (its local-folder cache key ignores the
    folder's location, so tests sharing the user cache would read each other's video paths)."""
    import datasets.config

    cache = str(tmp_path / "hf-datasets-cache")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    return cache


@pytest.fixture
def tiny_msjoe(tiny_mllm_dir, tiny_clip_dir):
    """Factory: a tiny MSJoEForVideoQA for `family`, with small generation budgets for speed."""
    from transformers_msjoe import MSJoEForVideoQA

    def make(family: str = "qwen2_5_vl", **config_kwargs):
        settings = dict(num_key_frames=8, query_max_new_tokens=12, answer_max_new_tokens=6, max_candidate_frames=256)
        settings.update(config_kwargs)
        return MSJoEForVideoQA.from_mllm(tiny_mllm_dir(family), clip=tiny_clip_dir, **settings)

    return make


GRPO_TINY = dict(
    num_key_frames=4, query_max_new_tokens=8, answer_max_new_tokens=4, max_candidate_frames=32, preview_max_pixels=4800
)


@pytest.fixture(scope="session")
def grpo_init_dirs(tiny_mllm_dir, tiny_clip_dir, artifacts):
    """Factory: `grpo_init_dirs(family)` -> a tiny MSJoE checkpoint with small frame budgets (built once)."""
    from transformers_msjoe import MSJoEForVideoQA

    made: dict[str, str] = {}

    def make(family: str = "qwen2_5_vl") -> str:
        if family not in made:
            path = artifacts / f"grpo-init-{family}"
            MSJoEForVideoQA.from_mllm(tiny_mllm_dir(family), clip=tiny_clip_dir, **GRPO_TINY).save_pretrained(path)
            made[family] = str(path)
        return made[family]

    return make


@pytest.fixture(scope="session")
def grpo_init_dir(grpo_init_dirs) -> str:
    """The tiny Qwen2.5-VL MSJoE checkpoint every GRPO trainer test starts from."""
    return grpo_init_dirs("qwen2_5_vl")


@pytest.fixture(scope="session")
def grpo_qa_rows(short_video, needle_video) -> dict:
    """Two msjoe/longvideo-qa rows (options as plain texts, lettered by position); copy before editing."""
    return {
        "id": ["order-0", "needle-0"],
        "video": [short_video, needle_video],
        "question": ["Which box appears first?", "When does the red box appear?"],
        "options": [["red", "blue", "yellow"], ["at 10 s", "at 40 s"]],
        "answer": ["A", "B"],
        "question_type": ["order", "temporal"],
        "duration_seconds": [120.0, 60.0],
        "pass_rate": [0.5, 0.25],
    }


def alternating_reward(completions, **kwargs):
    """0, 1, 0, 1, ...: every group of 2 generations gets advantages of both signs, so every step has a signal."""
    return [float(i % 2) for i in range(len(completions))]


@pytest.fixture
def make_grpo_trainer(grpo_init_dir, grpo_qa_rows, tmp_path):
    """Factory: an `MSJoEGRPOTrainer` on the tiny checkpoint, 1 joint CPU step by default (override any field)."""
    from datasets import Dataset

    from transformers_msjoe.grpo_config import MSJoEGRPOConfig
    from transformers_msjoe.grpo_trainer import MSJoEGRPOTrainer
    from transformers_msjoe.loading import load_msjoe_model

    def make(rows=None, *, init_dir=None, reward_funcs=(alternating_reward,), peft_config=None, **overrides):
        settings = dict(
            output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, num_generations=2, max_steps=1,
            use_cpu=True, report_to="none", save_strategy="no", logging_steps=1, learning_rate=1e-2,
            sampler_learning_rate=1e-2, loss_type="grpo", activation_checkpointing=False, lr_scheduler_type="constant",
            seed=0, bf16=False, disable_tqdm=True,
        )  # fmt: skip
        settings.update(overrides)
        return MSJoEGRPOTrainer(
            model=load_msjoe_model(init_dir or grpo_init_dir),
            args=MSJoEGRPOConfig(**settings),
            train_dataset=Dataset.from_dict(rows if rows is not None else grpo_qa_rows),
            reward_funcs=list(reward_funcs) if reward_funcs is not None else None,
            peft_config=peft_config,
        )

    return make


def pytest_report_header(config):
    return f"Hugging Face libraries forced offline; cpu threads {os.cpu_count()}"
