"""`MSJoEGRPOTrainer` on tiny random models: what a step changes, the loss arithmetic, frames in the loss,
resume, evaluation, bad input, and drift tests pinning the TRL 1.16 internals it overrides."""

import inspect
import re

import pytest
import torch
from datasets import Dataset
from trl import GRPOTrainer

from transformers_msjoe import MSJoEForVideoQA
from transformers_msjoe.grpo_config import MSJoEGRPOConfig
from transformers_msjoe.grpo_trainer import TURNS, MSJoEGRPOTrainer
from transformers_msjoe.loading import load_msjoe_model

TINY = dict(num_key_frames=4, query_max_new_tokens=8, answer_max_new_tokens=4, max_candidate_frames=32, preview_max_pixels=4800)


def alternating_reward(completions, **kwargs):
    """0, 1, 0, 1, ...: every group of 2 generations gets advantages of both signs, so every step has a signal."""
    return [float(i % 2) for i in range(len(completions))]


@pytest.fixture(scope="module")
def init_dir(tiny_mllm_dir, tiny_clip_dir, tmp_path_factory):
    """One tiny MSJoE saved as a checkpoint, so every trainer starts from the same weights."""
    model = MSJoEForVideoQA.from_mllm(tiny_mllm_dir("qwen2_5_vl"), clip=tiny_clip_dir, **TINY)
    path = tmp_path_factory.mktemp("msjoe-init")
    model.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def qa_rows(short_video, needle_video):
    return {
        "video": [short_video, needle_video],
        "question": ["Which box appears first?", "When does the red box appear?"],
        "options": [["red", "blue", "yellow"], ["A. at 10 s", "B. at 40 s"]],
        "answer": ["A", "B"],
        "question_type": ["order", "temporal"],
        "duration_seconds": [120.0, 60.0],
        "pass_rate": [0.5, 0.25],
    }


def make_trainer(init_dir, tmp_path, rows, *, reward_funcs=(alternating_reward,), peft_config=None, **overrides):
    settings = dict(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, num_generations=2, max_steps=1, use_cpu=True,
        report_to="none", save_strategy="no", logging_steps=1, learning_rate=1e-2, sampler_learning_rate=1e-2,
        loss_type="grpo", activation_checkpointing=False, lr_scheduler_type="constant", seed=0, bf16=False,
    )  # fmt: skip
    settings.update(overrides)
    return MSJoEGRPOTrainer(
        model=load_msjoe_model(init_dir), args=MSJoEGRPOConfig(**settings), train_dataset=Dataset.from_dict(rows),
        reward_funcs=list(reward_funcs) if reward_funcs is not None else None, peft_config=peft_config,
    )  # fmt: skip


def snapshot(module):
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def changed(module, before):
    return {name for name, p in module.named_parameters() if not torch.equal(p.detach(), before[name])}


# ---------------------------------------------------------------------------------------------- training steps
def test_joint_step_changes_mllm_and_sampler(init_dir, qa_rows, tmp_path):
    trainer = make_trainer(init_dir, tmp_path, qa_rows)
    model = trainer.msjoe_model
    mllm, sampler = snapshot(model.mllm), snapshot(model.sampler)
    trainer.train()
    # every sampler weight moved, except the head's bias: a softmax over frames ignores a shared shift
    assert changed(model.sampler, sampler) >= set(sampler) - {"head.bias"}
    assert any(n.startswith("model.language_model") for n in changed(model.mllm, mllm))
    assert any(n.startswith("model.visual") for n in changed(model.mllm, mllm))  # the answer turn's frames get gradient
    groups = trainer.optimizer.param_groups
    sampler_group = [g for g in groups if g.get("msjoe_sampler")]
    assert len(sampler_group) == 1 and len(sampler_group[0]["params"]) == len(sampler)
    log = trainer.state.log_history[0]
    for key in ("sampler/weight_entropy", "sampler/selected_spread", "sampler/loss", "mllm/query_parse_failures",
                "mllm/answer_entropy", "mllm/query_entropy", "rewards/alternating_reward/mean", "data/skipped_rollouts"):  # fmt: skip
        assert key in log, key


@pytest.mark.parametrize("family", ["qwen3_vl", "llava_onevision"])
def test_joint_step_trains_other_mllm_families(family, tiny_mllm_dir, tiny_clip_dir, qa_rows, tmp_path):
    """Any image-text-to-text MLLM: Qwen3-VL (video with timestamps metadata), LLaVA-OneVision (5-D video tensor)."""
    path = tmp_path / "init"
    MSJoEForVideoQA.from_mllm(tiny_mllm_dir(family), clip=tiny_clip_dir, **TINY).save_pretrained(path)
    trainer = make_trainer(str(path), tmp_path, qa_rows)
    model = trainer.msjoe_model
    mllm, sampler = snapshot(model.mllm), snapshot(model.sampler)
    trainer.train()
    assert changed(model.mllm, mllm) and changed(model.sampler, sampler) >= set(sampler) - {"head.bias"}


def test_sampler_pretrain_step_changes_only_the_sampler(init_dir, qa_rows, tmp_path, monkeypatch):
    mllm_losses = []
    original = GRPOTrainer._compute_loss
    monkeypatch.setattr(GRPOTrainer, "_compute_loss", lambda self, *a: mllm_losses.append(1) or original(self, *a))
    trainer = make_trainer(init_dir, tmp_path, qa_rows, reward_funcs=None, training_stage="sampler_pretrain")
    model = trainer.msjoe_model
    mllm, sampler = snapshot(model.mllm), snapshot(model.sampler)
    trainer.train()
    assert changed(model.mllm, mllm) == set()
    assert changed(model.sampler, sampler) >= set(sampler) - {"head.bias"}
    assert mllm_losses == []  # the MLLM's GRPO loss is skipped, not just zeroed
    assert not any(p.requires_grad for p in model.mllm.parameters())


def test_lora_step_trains_adapter_and_sampler_and_saves_a_merged_checkpoint(init_dir, qa_rows, tmp_path):
    from peft import LoraConfig

    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    trainer = make_trainer(init_dir, tmp_path, qa_rows, peft_config=config, beta=0.04)
    before = snapshot(trainer.model)
    trainer.train()
    moved = changed(trainer.model, before)
    assert any("lora_B" in n for n in moved) and any("sampler.modules_to_save" in n for n in moved)
    assert not any("base_layer" in n or "original_module" in n for n in moved)
    trained_sampler = {k: v.clone() for k, v in trainer.msjoe_model.sampler.modules_to_save["default"].state_dict().items()}
    trainer.save_model(str(tmp_path / "final"))
    loaded = MSJoEForVideoQA.from_pretrained(tmp_path / "final")
    assert loaded.processor is not None
    for key, value in loaded.sampler.state_dict().items():
        assert torch.equal(value, trained_sampler[key]), key


def test_rollout_generations_differ_and_share_per_video_work(init_dir, qa_rows, tmp_path, monkeypatch):
    trainer = make_trainer(init_dir, tmp_path, qa_rows)
    model = trainer.msjoe_model
    calls = []
    original = type(model).candidate_features
    monkeypatch.setattr(type(model), "candidate_features", lambda self, video, **kw: calls.append(1) or original(self, video, **kw))
    examples = [dict(zip(qa_rows, values)) for values in zip(*qa_rows.values())]
    rows = trainer._rollout([examples[0], examples[0], examples[1], examples[1]])
    assert len(calls) == 2  # CLIP features once per video, shared by its generations
    assert all(r.valid for r in rows)
    assert not torch.equal(rows[0].key_indices, rows[1].key_indices)  # each generation draws its own frames
    k = model.config.num_key_frames
    assert [len(r.key_indices) for r in rows] == [k] * 4 and [len(r.answer.frames) for r in rows] == [k] * 4
    assert len(rows[0].query.frames) == model.config.effective_num_preview_frames
    assert rows[0].query.frames.shape[-1] < rows[0].answer.frames.shape[-1]  # low-res preview, high-res key frames
    stamps = rows[0].answer.timestamps
    assert torch.all(stamps[1:] > stamps[:-1])  # key frames in temporal order


# ---------------------------------------------------------------------------------------------- the loss
def _hand_log_probs(model, turn):
    """Per-token log-probs of a turn's completion from a plain forward of the MLLM (batch of one, no TRL code)."""
    inputs = model.processor.build_inputs([turn.prompt], [turn.frames], [turn.timestamps], [turn.video], max_pixels=turn.max_pixels)
    completion = turn.completion_ids[None]
    ids = torch.cat([inputs.pop("input_ids"), completion], dim=1)
    mask = torch.cat([inputs.pop("attention_mask"), torch.ones_like(completion)], dim=1)
    inputs["mm_token_type_ids"] = torch.cat([inputs["mm_token_type_ids"], torch.zeros_like(completion)], dim=1)
    logits = model.mllm(input_ids=ids, attention_mask=mask, **inputs).logits[0, -completion.shape[1] - 1 : -1]
    return torch.log_softmax(logits.float(), dim=-1).gather(-1, completion[0, :, None])[:, 0]  # (C,)


def _toy_batch(trainer, qa_rows):
    """A two-generation batch of one prompt, with fixed advantages and old log-probs away from the current ones."""
    example = dict(zip(qa_rows, [v[0] for v in qa_rows.values()]))
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1  # set by the training loop, which these direct calls skip
    batch = trainer._generate_and_score_completions([example, dict(example)])
    batch["advantages"] = torch.tensor([1.0, -1.0])
    batch["sampler_advantages"] = torch.tensor([0.5, -2.0])
    for turn in TURNS:
        olds = []
        for row, t in enumerate(batch[f"{turn}_turns"]):
            with torch.no_grad():
                current = _hand_log_probs(trainer.msjoe_model, t)
            shift = 0.12 * torch.arange(len(current)) % 0.5 - 0.2 * row  # ratios inside and outside [0.8, 1.2]
            olds.append(current - shift)
        batch[f"{turn}_old_logps"] = olds
    return batch


def test_loss_on_a_two_generation_batch_equals_a_hand_computation(init_dir, qa_rows, tmp_path):
    trainer = make_trainer(init_dir, tmp_path, {k: v[:1] for k, v in qa_rows.items()}, per_device_train_batch_size=2)
    model = trainer.msjoe_model
    batch = _toy_batch(trainer, qa_rows)
    mllm_expected = torch.tensor(0.0, dtype=torch.float64)
    with torch.no_grad():
        for turn in TURNS:  # GRPO, paper §2.3: mean over rollouts of the per-token clipped surrogate's mean
            per_row = []
            for row, t in enumerate(batch[f"{turn}_turns"]):
                ratio = torch.exp(_hand_log_probs(model, t).double() - batch[f"{turn}_old_logps"][row].double())
                advantage = batch["advantages"][row].double()
                per_row.append(-torch.minimum(ratio * advantage, ratio.clamp(0.8, 1.2) * advantage).mean())
            mllm_expected += 0.5 * torch.stack(per_row).mean()  # both turns are rollout sequences of equal weight
        log_p = [
            torch.log_softmax(model.sampler(s).double(), -1)[order].sum()
            for s, order in zip(batch["similarities"], batch["draw_orders"])
        ]  # REINFORCE, paper §2.4: -A * sum_k log p(x_k)
        sampler_expected = -(batch["sampler_advantages"].double() * torch.stack(log_p)).mean()
        rows = [0, 1]
        assert trainer._mllm_loss(trainer.model, batch, rows).item() == pytest.approx(mllm_expected.item(), abs=2e-6)
        assert trainer._sampler_loss(batch, rows).item() == pytest.approx(sampler_expected.item(), rel=1e-5)
        loss = trainer._compute_loss(trainer.model, batch)
    assert loss.item() == pytest.approx((mllm_expected + sampler_expected).item(), rel=1e-5)
    assert abs(mllm_expected.item()) > 1e-2 and abs(sampler_expected.item()) > 1e-2  # neither term is trivially zero


def test_answer_turn_loss_depends_on_its_frames(init_dir, qa_rows, tmp_path):
    trainer = make_trainer(init_dir, tmp_path, {k: v[:1] for k, v in qa_rows.items()}, per_device_train_batch_size=2)
    batch = _toy_batch(trainer, qa_rows)
    batch["sampler_advantages"] = torch.zeros(2)
    with torch.no_grad():
        base = trainer._compute_loss(trainer.model, batch).item()
        assert trainer._compute_loss(trainer.model, batch).item() == pytest.approx(base, abs=1e-7)
        for turn in TURNS:
            original = [t.frames for t in batch[f"{turn}_turns"]]
            for t in batch[f"{turn}_turns"]:
                t.frames = 255 - t.frames  # same shapes, other pixels
            assert abs(trainer._compute_loss(trainer.model, batch).item() - base) > 1e-4, turn
            for t, frames in zip(batch[f"{turn}_turns"], original):
                t.frames = frames


# ---------------------------------------------------------------------------------------------- checkpoints
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(init_dir, qa_rows, tmp_path):
    straight = make_trainer(init_dir, tmp_path / "a", qa_rows, max_steps=2)
    straight.train()
    first = make_trainer(init_dir, tmp_path / "b", qa_rows, max_steps=1, save_strategy="steps", save_steps=1)
    first.train()
    checkpoint = tmp_path / "b" / "out" / "checkpoint-1"
    assert MSJoEForVideoQA.from_pretrained(checkpoint).processor is not None  # a checkpoint is a loadable MSJoE folder
    resumed = make_trainer(init_dir, tmp_path / "b", qa_rows, max_steps=2)
    resumed.train(resume_from_checkpoint=str(checkpoint))
    for name, value in straight.msjoe_model.sampler.state_dict().items():
        assert torch.allclose(value, resumed.msjoe_model.sampler.state_dict()[name], atol=1e-6), name
    for name, value in straight.msjoe_model.mllm.state_dict().items():
        assert torch.allclose(value, resumed.msjoe_model.mllm.state_dict()[name], atol=1e-6), name


# ---------------------------------------------------------------------------------------------- evaluation
def test_evaluate_reports_learned_and_uniform_accuracy(init_dir, qa_rows, tmp_path):
    trainer = make_trainer(init_dir, tmp_path, qa_rows, per_device_eval_batch_size=2)
    eval_rows = Dataset.from_dict(qa_rows)
    metrics = trainer.evaluate(eval_rows)
    model = trainer.msjoe_model
    for selection in ("msjoe", "uniform"):
        outputs = model.answer_batch(eval_rows["video"], eval_rows["question"], eval_rows["options"], selection=selection)
        correct = [o.option == a for o, a in zip(outputs, eval_rows["answer"])]
        assert metrics[f"eval_{selection}/accuracy"] == pytest.approx(sum(correct) / 2)
        assert metrics[f"eval_{selection}/accuracy/type=order"] == float(correct[0])
        assert metrics[f"eval_{selection}/accuracy/duration=0-180s"] == pytest.approx(sum(correct) / 2)
    assert metrics["eval_sampler_gain"] == pytest.approx(metrics["eval_msjoe/accuracy"] - metrics["eval_uniform/accuracy"])
    assert trainer.state.log_history[-1]["eval_msjoe/count"] == 2.0


# ---------------------------------------------------------------------------------------------- bad input
def test_a_video_that_fails_to_decode_is_skipped_and_counted(init_dir, qa_rows, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    rows = {k: list(v) for k, v in qa_rows.items()}
    rows["video"][1] = str(broken)
    trainer = make_trainer(init_dir, tmp_path, rows)
    sampler = snapshot(trainer.msjoe_model.sampler)
    trainer.train()
    log = trainer.state.log_history[0]
    assert log["data/skipped_rollouts"] == 2.0  # both generations of the broken video
    assert torch.isfinite(torch.tensor(log["loss"]))
    assert changed(trainer.msjoe_model.sampler, sampler)  # the good video still trained the sampler


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda r: r.pop("options"), r"lacks the column\(s\) \['options'\]"),
        (lambda r: r.__setitem__("options", [["red", "blue"], []]), "row 1 has no options"),
        (lambda r: r.__setitem__("answer", ["A", ""]), "row 1 has no answer"),
        (lambda r: r.__setitem__("answer", ["D", "B"]), "row 0 has answer 'D', which is not one of its option letters"),
    ],
)
def test_bad_rows_fail_before_training(init_dir, qa_rows, tmp_path, edit, message):
    rows = {k: list(v) for k, v in qa_rows.items()}
    edit(rows)
    with pytest.raises(ValueError, match=message):
        make_trainer(init_dir, tmp_path, rows)


def test_stage_one_needs_pass_rates(init_dir, qa_rows, tmp_path):
    rows = {k: v for k, v in qa_rows.items() if k != "pass_rate"}
    with pytest.raises(ValueError, match="pass rate"):
        make_trainer(init_dir, tmp_path, rows, training_stage="sampler_pretrain", reward_funcs=None)
    rows["pass_rate"] = [0.5, None]
    with pytest.raises(ValueError, match="row 1 has pass_rate=None"):
        make_trainer(init_dir, tmp_path, rows, training_stage="sampler_pretrain", reward_funcs=None)


def test_unsupported_settings_are_refused(init_dir, qa_rows, tmp_path):
    with pytest.raises(ValueError, match="at least 2 generations"):
        make_trainer(init_dir, tmp_path, qa_rows, num_generations=1)
    with pytest.raises(ValueError, match="beta=0.04 needs a reference model"):
        make_trainer(init_dir, tmp_path, qa_rows, beta=0.04)
    with pytest.raises(ValueError, match="use_vllm"):
        make_trainer(init_dir, tmp_path, qa_rows, use_vllm=True)


# ---------------------------------------------------------------------------------------------- TRL drift tests
# MSJoEGRPOTrainer overrides or calls these TRL 1.16 private methods; if TRL changes them, re-check the override.
TRL_PRIVATE_SIGNATURES = {
    "_load_from_checkpoint": ["self", "resume_from_checkpoint", "model"],  # transformers.Trainer
    "_get_train_sampler": ["self", "dataset"],
    "_generate_and_score_completions": ["self", "inputs"],
    "_compute_loss": ["self", "model", "inputs"],
    "_calculate_rewards": ["self", "inputs", "prompts", "completions", "completion_ids_list"],
    "_prepare_inputs": ["self", "generation_batch"],
    "_set_signature_columns_if_needed": ["self"],
}


@pytest.mark.parametrize("name", sorted(TRL_PRIVATE_SIGNATURES))
def test_trl_private_hook_signatures_are_unchanged(name):
    assert list(inspect.signature(getattr(GRPOTrainer, name)).parameters) == TRL_PRIVATE_SIGNATURES[name]


def test_trl_loss_still_reads_the_keys_msjoe_provides_and_calls_the_model_it_is_given():
    source = inspect.getsource(GRPOTrainer._compute_loss)
    read = set(re.findall(r'inputs(?:\["|\.get\(")(\w+)"', source))
    provided_or_optional = {"prompt_ids", "prompt_mask", "completion_ids", "completion_mask", "advantages", "num_items_in_batch", "old_per_token_logps", "ref_per_token_logps"}  # fmt: skip
    image_or_vllm_only = {"pixel_values", "image_grid_thw", "num_images", "pixel_attention_mask", "spatial_shapes", "num_tiles", "image_sizes", "token_type_ids", "mm_token_type_ids", "image_position_ids", "tool_mask", "importance_sampling_ratio", "sampling_per_token_logps"}  # fmt: skip
    assert read <= provided_or_optional | image_or_vllm_only, read - provided_or_optional - image_or_vllm_only
    assert {"prompt_ids", "completion_ids", "advantages"} <= read
    logps = inspect.getsource(GRPOTrainer._get_per_token_logps_and_entropies)
    assert "model(**model_inputs, labels=labels, fused_lm_head=True)" in logps  # WithVisualInputs relies on this call


def test_compat_fused_lm_head_is_routed_to_the_mllm(init_dir, qa_rows, tmp_path):
    trainer = make_trainer(init_dir, tmp_path, qa_rows)
    model = trainer.msjoe_model
    assert "forward" not in vars(model) and "forward" in vars(model.mllm)
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    labels = ids.clone()
    labels[:, :2] = -100
    with torch.no_grad():
        fused = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels, fused_lm_head=True)
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    expected = torch.log_softmax(logits[0, 1:-1].float() / trainer.temperature, -1).gather(-1, ids[0, 2:, None])[:, 0]
    assert torch.allclose(fused.log_probs[0, 1:], expected, atol=1e-5)


def test_trl_repeat_sampler_still_has_the_attributes_epoch_seeding_uses():
    from trl.trainer.utils import RepeatSampler

    sampler = RepeatSampler(list(range(4)), mini_repeat_count=2, seed=3)
    assert sampler.seed == 3 and isinstance(sampler.generator, torch.Generator)


def test_compat_upstream_still_reads_the_deprecated_flag():
    """Drift test for `_compat.upstream_gradient_checkpointing_flag_ok`: TRL 1.16 and PEFT 0.21 read
    `is_gradient_checkpointing` (deprecated by transformers). When this fails, drop the shim where it is unneeded."""
    from peft import PeftModel
    from trl.models import utils

    assert "unwrapped_model.is_gradient_checkpointing" in inspect.getsource(utils._unwrap_model_for_generation)
    assert '"is_gradient_checkpointing"' in inspect.getsource(PeftModel.__init__)
