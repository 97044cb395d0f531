"""The two-turn training rollout: generations differ, per-video work is shared, both turns go through the model's
own `generate_completions` / `visual_queries`, options are lettered by position, placeholder turns batch."""

import pytest
import torch
from transformers import GenerationConfig

from transformers_msjoe import MSJoEForVideoQA
from transformers_msjoe.grpo_rollout import MSJoERollout, build_turn_batch, placeholder_turn
from transformers_msjoe.loading import load_msjoe_model
from transformers_msjoe.video_io import VideoDecodeError, VideoReader


@pytest.fixture
def rollout(grpo_init_dir):
    model = load_msjoe_model(grpo_init_dir)
    tokenizer = model.processor.tokenizer
    sampling = GenerationConfig(
        do_sample=True, temperature=1.0, eos_token_id=[tokenizer.eos_token_id], pad_token_id=tokenizer.pad_token_id
    )
    return MSJoERollout(model, sampling)


def examples_of(qa_rows, indices, **edits):
    return [{**{k: v[i] for k, v in qa_rows.items()}, **edits} for i in indices]


def test_rollout_generations_differ_and_share_per_video_work(rollout, grpo_qa_rows, monkeypatch):
    model = rollout.model
    calls = []
    original = MSJoEForVideoQA.candidate_features
    monkeypatch.setattr(
        MSJoEForVideoQA, "candidate_features", lambda self, video, **kw: calls.append(1) or original(self, video, **kw)
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        rows = rollout(examples_of(grpo_qa_rows, [0, 0, 1, 1]))
    assert len(calls) == 2  # CLIP features once per video, shared by its generations
    assert all(r.valid for r in rows)
    assert not torch.equal(rows[0].key_indices, rows[1].key_indices)  # each generation draws its own frames
    k = model.config.num_key_frames
    assert [len(r.key_indices) for r in rows] == [k] * 4 and [len(r.answer.frames) for r in rows] == [k] * 4
    assert len(rows[0].query.frames) == model.config.effective_num_preview_frames
    assert rows[0].query.frames.shape[-1] < rows[0].answer.frames.shape[-1]  # low-res preview, high-res key frames
    stamps = rows[0].answer.timestamps
    assert torch.all(stamps[1:] > stamps[:-1])  # key frames in temporal order
    assert all(t.prompt_length > len(t.frames) for r in rows for t in (r.query, r.answer))  # visual tokens counted


def test_rollout_turns_use_the_models_generation_and_query_helpers(rollout, grpo_qa_rows, monkeypatch):
    """The rollout is the inference pipeline with sampling: `generate_completions` for both turns (TRL's sampling
    config, placeholder tokens suppressed), `visual_queries` for the queries (so a fallback is flagged the same)."""
    model = rollout.model
    generations, parsed = [], []
    original_generate = MSJoEForVideoQA.generate_completions

    def generate(self, prompts, *args, **kwargs):
        generations.append((len(prompts), kwargs["generation_config"], kwargs["max_new_tokens"]))
        return original_generate(self, prompts, *args, **kwargs)

    def visual_queries(self, text, question):
        parsed.append(text)
        return (["a red box", "a door", question], 2) if len(parsed) == 1 else ([question], 0)

    monkeypatch.setattr(MSJoEForVideoQA, "generate_completions", generate)
    monkeypatch.setattr(MSJoEForVideoQA, "visual_queries", visual_queries)
    rows = rollout(examples_of(grpo_qa_rows, [0, 1]))
    assert [(n, m) for n, _, m in generations] == [
        (2, model.config.query_max_new_tokens),
        (2, model.config.answer_max_new_tokens),
    ]
    config = generations[0][1]
    assert config.do_sample is True and config is rollout.generation_config
    assert model.mllm.config.image_token_id in config.suppress_tokens  # a sampled placeholder would break re-scoring
    assert parsed == [rows[0].query.text, rows[1].query.text]
    assert rows[0].queries[:2] == ["a red box", "a door"] and rows[0].num_written_queries == 2
    assert rows[0].similarity.shape[0] == 3 and not rows[0].queries_fallback
    assert rows[1].queries_fallback and rows[1].queries == [rows[1].question]


def test_visual_queries_parse_the_query_turn(rollout):
    model = rollout.model
    text = "<think>look for it</think>\n<query>a red box</query>\n<query>a door</query>"
    assert model.visual_queries(text, "Which box?") == (["a red box", "a door"], 2)
    assert model.visual_queries("no tags at all", "Which box?") == (["Which box?"], 0)
    model.config.use_question_as_query = True
    assert model.visual_queries(text, "Which box?") == (["a red box", "a door", "Which box?"], 2)


@pytest.mark.parametrize("options", [["Washington", "A. Lincoln"], ["A. Lincoln", "Washington"]])
def test_option_texts_are_lettered_by_position_in_both_prompts(rollout, grpo_qa_rows, options):
    """Plain option texts (data/schema.py): one starting like a label is still a text, lettered by its position."""
    [row] = rollout(examples_of(grpo_qa_rows, [0], options=options))
    expected = f"A. {options[0]}\nB. {options[1]}\n"
    assert expected in row.query.prompt and expected in row.answer.prompt
    assert [o.letter for o in row.options] == ["A", "B"] and [o.text for o in row.options] == options


def test_placeholder_turns_batch_as_frameless_rows_with_nothing_to_score(rollout):
    processor = rollout.model.processor
    turns = [placeholder_turn(rollout.model.config.key_frame_max_pixels)] * 2
    batch = build_turn_batch(
        processor, turns, pad_token_id=processor.tokenizer.pad_token_id, device=torch.device("cpu"), dtype=torch.float32
    )
    assert batch["prompt_ids"].shape[0] == 2 and batch["completion_mask"].sum() == 0
    assert not any(key.startswith("pixel_values") for key in batch["visual_inputs"])


def test_a_key_frame_decode_failure_skips_only_that_videos_rollouts(rollout, grpo_qa_rows, monkeypatch):
    """The video opened and its preview decoded, but decoding the drawn key frames failed mid-rollout: its rollouts
    are flagged invalid with the decoder's message (no answer turn), the other video's rollouts are unaffected."""
    failing = grpo_qa_rows["video"][1]
    original = VideoReader.frames_at

    def frames_at(self, timestamps, **kwargs):
        if kwargs.get("max_pixels") == rollout.model.config.key_frame_max_pixels and self.info.source_name == failing:
            raise VideoDecodeError(f"{failing}: corrupt packet at the drawn key frames")
        return original(self, timestamps, **kwargs)

    monkeypatch.setattr(VideoReader, "frames_at", frames_at)
    rows = rollout(examples_of(grpo_qa_rows, [0, 0, 1, 1]))
    assert [r.valid for r in rows] == [True, True, False, False]
    for row in rows[2:]:
        assert row.error == f"{failing}: corrupt packet at the drawn key frames"
        assert row.query is not None and row.key_indices is not None and row.answer is None  # failed after the draw
    assert all(r.answer.completion_ids.numel() > 0 for r in rows[:2])
