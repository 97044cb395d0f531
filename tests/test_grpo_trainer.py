"""`MSJoEGRPOTrainer` on tiny random models: what a step changes, the loss arithmetic, frames in the loss, the
collectives every process runs, checkpoints (resume, best model, final save and push), evaluation, bad input, and
drift tests pinning the TRL 1.16 / transformers 5.23 internals it overrides or copies."""

import dataclasses
import inspect
import json
import os
import re
import textwrap
import types

import pytest
import torch
from datasets import Dataset
from trl import GRPOTrainer
from trl.trainer.utils import nanstd

from transformers_msjoe import MSJoEForVideoQA
from transformers_msjoe.grpo_config import LOSS_AGGREGATION
from transformers_msjoe.grpo_rollout import WithVisualInputs, draw_log_probs, pad_similarities
from transformers_msjoe.grpo_trainer import TRAINING_ARGS_FILE, TURNS
from transformers_msjoe.rewards import group_advantages
from transformers_msjoe.synthetic_video import make_synthetic_video


def snapshot(module):
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def changed(module, before):
    return {name for name, p in module.named_parameters() if not torch.equal(p.detach(), before[name])}


def rows_of(qa_rows, **edits):
    rows = {k: list(v) for k, v in qa_rows.items()}
    rows.update(edits)
    return rows


def alternating_reward_that_logs(completions, log_metric, log_extra, **kwargs):
    """0, 1, 0, 1, ... (like conftest's `alternating_reward`), sending a metric and a completion-table column through
    TRL's `log_metric` / `log_extra` reward-function keyword arguments."""
    log_metric("custom/constant", 0.25)
    log_extra("custom_column", [f"row-{i}" for i in range(len(completions))])
    return [float(i % 2) for i in range(len(completions))]


# ---------------------------------------------------------------------------------------------- training steps
def test_joint_step_changes_mllm_and_sampler(make_grpo_trainer, grpo_qa_rows, tmp_path):
    trainer = make_grpo_trainer(weight_decay=0.1, log_completions=True, reward_funcs=(alternating_reward_that_logs,))
    model = trainer.msjoe_model
    assert model.config.sampler_is_trained is False
    mllm, sampler = snapshot(model.mllm), snapshot(model.sampler)
    trainer.train()
    # every sampler weight moved, except the head's bias: a softmax over frames ignores a shared shift
    assert changed(model.sampler, sampler) >= set(sampler) - {"head.bias"}
    assert any(n.startswith("model.language_model") for n in changed(model.mllm, mllm))
    assert any(n.startswith("model.visual") for n in changed(model.mllm, mllm))  # the answer turn's frames get gradient
    assert model.config.sampler_is_trained is True  # set at the first optimizer step
    # the sampler's own groups: weight decay on convolution weights only, not on biases or GroupNorm parameters
    groups = [g for g in trainer.optimizer.param_groups if g.get("msjoe_sampler")]
    names = {id(p): n for n, p in model.sampler.named_parameters()}
    decayed = {names[id(p)] for g in groups if g["weight_decay"] == 0.1 for p in g["params"]}
    plain = {names[id(p)] for g in groups if g["weight_decay"] == 0.0 for p in g["params"]}
    assert decayed | plain == set(sampler) and not decayed & plain
    assert decayed == {n for n in sampler if n.endswith("weight") and ".norm" not in n}
    assert all(g["lr"] == 1e-2 for g in groups)
    log = trainer.state.log_history[0]
    for key in (
        "sampler/weight_entropy",
        "sampler/selected_spread",
        "sampler/loss",
        "mllm/query_parse_failures",
        "mllm/answer_entropy",
        "mllm/query_entropy",
        "rewards/alternating_reward_that_logs/mean",
        "data/skipped_rollouts",
        "data/skipped_rollouts_total",
    ):
        assert key in log, key
    assert log["custom/constant"] == 0.25  # what the reward function sent through `log_metric` ...
    assert not trainer._pending_metrics and not trainer._pending_extra_logs  # ... handed on, not piling up
    # TRL's token count: prompt (with visual tokens) + completion tokens of both turns, > the completions alone
    assert log["num_tokens"] == trainer.state.num_input_tokens_seen > 4 * (8 + 4)
    table = Dataset.from_parquet(str(tmp_path / "out" / "completions" / "completions_00001.parquet"))
    assert len(table) == 4 and "---" in table["completion"][0]  # `log_completions`: both turns per rollout
    assert table["custom_column"] == [f"row-{i}" for i in range(4)]  # the reward function's `log_extra` column


@pytest.mark.parametrize("family", ["qwen3_vl", "llava_onevision"])
def test_joint_step_trains_other_mllm_families(family, grpo_init_dirs, make_grpo_trainer):
    """Any image-text-to-text MLLM: Qwen3-VL (video with timestamps metadata), LLaVA-OneVision (5-D video tensor)."""
    trainer = make_grpo_trainer(init_dir=grpo_init_dirs(family))
    model = trainer.msjoe_model
    mllm, sampler = snapshot(model.mllm), snapshot(model.sampler)
    trainer.train()
    assert changed(model.mllm, mllm) and changed(model.sampler, sampler) >= set(sampler) - {"head.bias"}


def test_sampler_pretrain_step_changes_only_the_sampler(make_grpo_trainer, monkeypatch):
    mllm_losses = []
    original = GRPOTrainer._compute_loss
    monkeypatch.setattr(GRPOTrainer, "_compute_loss", lambda self, *a: mllm_losses.append(1) or original(self, *a))
    trainer = make_grpo_trainer(reward_funcs=None, training_stage="sampler_pretrain", shuffle_dataset=False)
    model = trainer.msjoe_model
    mllm, sampler = snapshot(model.mllm), snapshot(model.sampler)
    trainer.train()
    assert changed(model.mllm, mllm) == set()
    assert changed(model.sampler, sampler) >= set(sampler) - {"head.bias"}
    assert mllm_losses == []  # the MLLM's GRPO loss is skipped, not just zeroed
    assert not any(p.requires_grad for p in model.mllm.parameters())
    assert model.config.sampler_is_trained is True
    log = trainer.state.log_history[0]
    # the random tiny MLLM writes no <query> tags: every query turn fell back to the question, which earns no r_info
    assert log["mllm/query_parse_failures"] == 1.0 and log["rewards/informativeness/mean"] == 0.0


@pytest.mark.parametrize(
    "schedule",
    [dict(gradient_accumulation_steps=2, max_steps=1), dict(steps_per_generation=2, max_steps=2)],
    ids=["accumulation", "reused-rollouts"],
)
def test_training_with_accumulation_or_reused_rollouts(make_grpo_trainer, monkeypatch, schedule):
    """One generation batch split over two micro-batches: accumulated into one step (on-policy, no old log-probs),
    or optimised in two steps, the second on rollouts of the policy before the first update (TRL's old log-probs
    for both turns, the rollout-time draw log-probability for the sampler's clipped ratio)."""
    from transformers_msjoe.grpo_trainer import MSJoEGRPOTrainer

    seen = []
    original = MSJoEGRPOTrainer._sampler_loss

    def record(self, model, inputs, rows):
        loss = original(self, model, inputs, rows)
        seen.append(
            (
                sorted(k for k in inputs if "old" in k),
                len(inputs["valid"]),
                self._metrics["train"]["sampler/log_prob"][-1],
            )
        )
        return loss

    monkeypatch.setattr(MSJoEGRPOTrainer, "_sampler_loss", record)
    trainer = make_grpo_trainer(per_device_train_batch_size=2, **schedule)
    model = trainer.msjoe_model
    mllm, sampler = snapshot(model.mllm), snapshot(model.sampler)
    trainer.train()
    assert changed(model.mllm, mllm) and changed(model.sampler, sampler) >= set(sampler) - {"head.bias"}
    reused = "steps_per_generation" in schedule
    old_keys = ["answer_old_logps", "query_old_logps", "sampler_old_log_probs"] if reused else []
    assert [(keys, size) for keys, size, _ in seen] == [(old_keys, 2), (old_keys, 2)]
    logs = [log for log in trainer.state.log_history if "sampler/clip_ratio" in log]
    assert len(logs) == (2 if reused else 1) and all(torch.isfinite(torch.tensor(log["loss"])) for log in logs)
    if reused:
        # step 1 is on-policy (the stored log-probs are the current ones: nothing clipped), step 2 is not
        assert logs[0]["sampler/clip_ratio"] == 0.0 and logs[0]["mllm/answer_clip_ratio/region_mean"] == 0.0
        assert trainer._buffered_inputs[1]["sampler_old_log_probs"].mean().item() != pytest.approx(seen[1][2], abs=1e-3)


def test_advantages_of_the_joint_stage(make_grpo_trainer, grpo_qa_rows):
    """GRPO's group-normalised advantage (paper §2.3), which the sampler shares in the joint stage (§2.2)."""
    trainer = make_grpo_trainer()
    trainer.model.train()
    examples = [{k: v[i] for k, v in grpo_qa_rows.items()} for i in (0, 0, 1, 1)]
    batch = trainer._generate_and_score_completions(examples)
    rewards = torch.tensor([0.0, 1.0, 0.0, 1.0])  # alternating_reward: each group of 2 has one 0 and one 1
    expected = (rewards - 0.5) / (torch.tensor([0.0, 1.0]).std() + 1e-4)  # (r - mean) / (std + 1e-4), unbiased std
    assert torch.allclose(batch["advantages"], expected, atol=1e-6)
    assert torch.equal(batch["sampler_advantages"], batch["advantages"])


def test_difficulty_aware_advantage_of_stage_one(make_grpo_trainer, grpo_qa_rows, monkeypatch):
    """Stage 1's sampler advantage from each rollout's correctness and the row's pass rate c (paper §2.2):
    1/c when correct, -1/(1-c) when wrong; a skipped rollout gets 0."""
    from transformers_msjoe import grpo_trainer

    verdicts = iter([True, False, False, True, False, False])
    monkeypatch.setattr(grpo_trainer, "answer_is_correct", lambda *args: next(verdicts))
    trainer = make_grpo_trainer(reward_funcs=None, training_stage="sampler_pretrain")
    trainer.model.train()
    examples = [{k: v[i] for k, v in grpo_qa_rows.items()} for i in (0, 0, 1, 1)]  # c = 0.5, 0.5, 0.25, 0.25
    batch = trainer._generate_and_score_completions(examples)
    assert torch.allclose(batch["sampler_advantages"], torch.tensor([2.0, -2.0, -4 / 3, 4.0]))
    monkeypatch.setattr(grpo_trainer, "answer_is_correct", lambda *args: False)  # the random tiny MLLM's usual case
    batch = trainer._generate_and_score_completions(examples)
    assert torch.allclose(batch["sampler_advantages"], torch.tensor([-2.0, -2.0, -4 / 3, -4 / 3]))


def test_unshuffled_dataset_keeps_its_order_every_epoch(make_grpo_trainer):
    trainer = make_grpo_trainer(shuffle_dataset=False)
    sampler = trainer._get_train_sampler()
    first = list(sampler)
    sampler.set_epoch(3)  # what accelerate calls at each epoch; RepeatSampler(shuffle=False) has no generator
    assert list(sampler) == first == [0, 0, 1, 1]
    shuffled = make_grpo_trainer(shuffle_dataset=True)._get_train_sampler()
    shuffled.set_epoch(1)
    epoch_one = list(shuffled)
    shuffled.set_epoch(1)
    assert list(shuffled) == epoch_one  # reseeded from seed + epoch


def test_lora_without_target_modules_adapts_only_the_language_model(make_grpo_trainer):
    from peft import LoraConfig

    trainer = make_grpo_trainer(peft_config=LoraConfig(r=4))  # what `--use_peft` gives without lora_target_modules
    adapted = {n.rsplit(".lora_A", 1)[0] for n, _ in trainer.model.named_parameters() if ".lora_A." in n}
    assert adapted and all(
        re.search(r"\.mllm\.model\.language_model\.layers\.\d+\.self_attn\.[qkvo]_proj$", n) for n in adapted
    )
    assert {n.rsplit(".", 1)[-1] for n in adapted} == {"q_proj", "k_proj", "v_proj", "o_proj"}
    assert not any("visual" in n or "sampler" in n for n in adapted)


def test_lora_step_then_final_save_and_push_write_a_clean_msjoe_checkpoint(make_grpo_trainer, tmp_path, monkeypatch):
    from peft import LoraConfig
    from transformers import trainer as transformers_trainer

    uploads = []

    class FakeApi:  # offline stand-in for the Hub client Trainer uses
        def create_repo(self, repo_id, **kwargs):
            return types.SimpleNamespace(repo_id=repo_id)

        def upload_folder(self, repo_id, folder_path, **kwargs):
            uploads.append(
                (repo_id, sorted(os.listdir(folder_path)), open(os.path.join(folder_path, "README.md")).read())
            )

    monkeypatch.setattr(transformers_trainer, "hf_api", FakeApi)
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    out = tmp_path / "out"
    trainer = make_grpo_trainer(
        peft_config=config, beta=0.04, push_to_hub=True, hub_model_id="me/msjoe-tiny", hub_strategy="end"
    )
    before = snapshot(trainer.model)
    trainer.train()
    moved = changed(trainer.model, before)
    assert any("lora_B" in n for n in moved) and any("sampler.modules_to_save" in n for n in moved)
    assert not any("base_layer" in n or "original_module" in n for n in moved)
    trained_sampler = {k: v.clone() for k, v in trainer.trained_sampler().state_dict().items()}
    (out / "adapter_config.json").write_text("{}")  # as left by an earlier adapter checkpoint push
    trainer.save_model(str(out))
    files = set(os.listdir(out))
    assert {"config.json", "model.safetensors", "README.md", TRAINING_ARGS_FILE} <= files
    assert not files & {"adapter_config.json", "adapter_model.safetensors", "training_args.bin"}
    [(repo_id, pushed, card)] = uploads
    assert repo_id == "me/msjoe-tiny" and "adapter_config.json" not in pushed and "model.safetensors" in pushed
    assert "An [MSJoE](https://huggingface.co/papers/2602.22932) checkpoint" in card and "MSJoE: me/msjoe-tiny" in card
    assert all(f"- {tag}" in card for tag in ("msjoe", "trl", "grpo"))
    loaded = MSJoEForVideoQA.from_pretrained(out)
    assert loaded.processor is not None and loaded.config.sampler_is_trained is True
    for key, value in loaded.sampler.state_dict().items():
        assert torch.equal(value, trained_sampler[key]), key


def test_arguments_object_is_not_modified(grpo_init_dir, grpo_qa_rows, tmp_path):
    from transformers_msjoe.grpo_config import MSJoEGRPOConfig
    from transformers_msjoe.grpo_trainer import MSJoEGRPOTrainer

    args = MSJoEGRPOConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none", bf16=False, num_generations=2)
    before = dataclasses.asdict(args)
    trainer = MSJoEGRPOTrainer(model=grpo_init_dir, args=args, train_dataset=Dataset.from_dict(grpo_qa_rows))
    assert trainer.args.reward_weights == [0.8, 0.1, 0.1] and trainer.args.ddp_find_unused_parameters is False
    assert dataclasses.asdict(args) == before and args.reward_weights is None


# ---------------------------------------------------------------------------------------------- the loss
def _hand_scores(model, turn, temperature=1.0):
    """Per-token log-probs and entropies `(C,)` of a turn's completion at `temperature`, from a plain forward of the
    MLLM (batch of one, no TRL code)."""
    processor = model.processor
    inputs = processor.build_inputs(
        [turn.prompt], [turn.frames], [turn.timestamps], [turn.video], max_pixels=turn.max_pixels
    )
    completion = turn.completion_ids[None]
    ids = torch.cat([inputs.pop("input_ids"), completion], dim=1)
    mask = torch.cat([inputs.pop("attention_mask"), torch.ones_like(completion)], dim=1)
    inputs["mm_token_type_ids"] = torch.cat([inputs["mm_token_type_ids"], torch.zeros_like(completion)], dim=1)
    logits = model.mllm(input_ids=ids, attention_mask=mask, **inputs).logits[0, -completion.shape[1] - 1 : -1]
    log_p = torch.log_softmax(logits.float() / temperature, dim=-1)  # (C, V)
    return log_p.gather(-1, completion[0, :, None])[:, 0], -(log_p.exp() * log_p).sum(-1)


def _hand_log_probs(model, turn, temperature=1.0):
    return _hand_scores(model, turn, temperature)[0]


def _hand_sampler_log_probs(model, batch):
    """`(B,)` the paper's sum_k log softmax(l)[x_k] of each row's draw, from the sampler called directly (float64)."""
    return torch.stack(
        [
            torch.log_softmax(model.sampler(s).double(), -1)[order].sum()
            for s, order in zip(batch["similarities"], batch["draw_orders"])
        ]
    )


def _toy_batch(trainer, qa_rows, videos=None):
    """A two-generation batch of one prompt, with fixed advantages and old log-probs away from the current ones."""
    example = {k: v[0] for k, v in qa_rows.items()}
    examples = [dict(example, video=video) for video in (videos or [example["video"]] * 2)]
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1  # set by the training loop, which these direct calls skip
    batch = trainer._generate_and_score_completions(examples)
    batch["advantages"] = torch.tensor([1.0, -1.0])
    batch["sampler_advantages"] = torch.tensor([0.5, -2.0])
    for turn in TURNS:
        olds = []
        for row, t in enumerate(batch[f"{turn}_turns"]):
            if t is None:
                olds.append(None)
                continue
            with torch.no_grad():
                current = _hand_log_probs(trainer.msjoe_model, t, trainer.temperature)
            shift = 0.12 * torch.arange(len(current)) % 0.5 - 0.2 * row  # ratios inside and outside [0.8, 1.2]
            olds.append(current - shift)
        batch[f"{turn}_old_logps"] = olds
    return batch


@pytest.mark.parametrize(
    "loss_type, temperature", [("grpo", 1.0), ("bnpo", 1.0), ("dapo", 1.0), ("dr_grpo", 1.0), ("grpo", 0.7)]
)
def test_loss_on_a_two_generation_batch_equals_a_hand_computation(
    make_grpo_trainer, grpo_qa_rows, loss_type, temperature
):
    trainer = make_grpo_trainer(
        {k: v[:1] for k, v in grpo_qa_rows.items()},
        per_device_train_batch_size=2, loss_type=loss_type, temperature=temperature,
    )  # fmt: skip
    model = trainer.msjoe_model
    batch = _toy_batch(trainer, grpo_qa_rows)
    with torch.no_grad():
        sampler_now = _hand_sampler_log_probs(model, batch)
        # rollout-time draw log-probs: row 0's ratio inside [0.8, 1.2], row 1's below it with A < 0 (clipped)
        batch["sampler_old_log_probs"] = (sampler_now - torch.tensor([0.1, -0.5], dtype=torch.float64)).float()
        per_sequence, token_sum, num_tokens = [], torch.tensor(0.0, dtype=torch.float64), 0
        for turn in TURNS:  # the clipped surrogate of paper §2.3 on every completion token of both turns
            for row, t in enumerate(batch[f"{turn}_turns"]):
                log_p = _hand_log_probs(model, t, temperature).double()
                ratio = torch.exp(log_p - batch[f"{turn}_old_logps"][row].double())
                advantage = batch["advantages"][row].double()
                per_token = -torch.minimum(ratio * advantage, ratio.clamp(0.8, 1.2) * advantage)  # (C,)
                per_sequence.append(per_token.mean())
                token_sum, num_tokens = token_sum + per_token.sum(), num_tokens + len(per_token)
        mllm_expected = {
            "grpo": torch.stack(per_sequence).mean(),  # paper: mean over the 2 x 2 rollout sequences of token means
            "bnpo": token_sum / num_tokens,
            "dapo": token_sum / int(batch["num_items_in_batch"]),  # the generation batch's tokens: this batch here
            "dr_grpo": token_sum / (len(per_sequence) * trainer.max_completion_length),
        }[loss_type]
        assert int(batch["num_items_in_batch"]) == num_tokens
        # the sampler's PPO-clipped REINFORCE (paper §2.4) with the rollout-time log-probability
        ratio = torch.exp(sampler_now - batch["sampler_old_log_probs"].double())
        advantages = batch["sampler_advantages"].double()
        sampler_expected = -torch.minimum(ratio * advantages, ratio.clamp(0.8, 1.2) * advantages).mean()
        rows = [0, 1]
        assert trainer._mllm_loss(trainer.model, batch, rows).item() == pytest.approx(mllm_expected.item(), abs=2e-6)
        trainer._metrics["train"].clear()
        assert trainer._sampler_loss(trainer.model, batch, rows).item() == pytest.approx(
            sampler_expected.item(), rel=1e-5
        )
        assert trainer._metrics["train"]["sampler/clip_ratio"] == [0.5]  # row 1's gradient is clipped away
        loss = trainer._compute_loss(trainer.model, batch)
    assert loss.item() == pytest.approx((mllm_expected + sampler_expected).item(), rel=1e-5)
    assert abs(mllm_expected.item()) > 1e-3 and abs(sampler_expected.item()) > 1e-2  # neither term is trivially zero


def _sampler_gradients(trainer, loss):
    trainer.model.zero_grad()
    loss.backward()
    return {name: p.grad.clone() for name, p in trainer.trained_sampler().named_parameters() if p.grad is not None}


def test_sampler_term_on_policy_has_the_papers_reinforce_gradient(make_grpo_trainer, grpo_qa_rows, monkeypatch):
    """On the policy that drew the frames (no reuse), the clipped ratio term's gradient is exactly that of the paper's
    -A * sum_k log p(x_k); the rollout-time log-probability the trainer stores for reused draws matches the loss's."""
    trainer = make_grpo_trainer({k: v[:1] for k, v in grpo_qa_rows.items()}, per_device_train_batch_size=2)
    model = trainer.msjoe_model
    monkeypatch.setattr(trainer, "_needs_old_log_probs", lambda: True)  # as with reused rollouts: store rollout log p
    batch = _toy_batch(trainer, grpo_qa_rows)
    similarity, frame_mask, query_mask = pad_similarities(batch["similarities"], torch.device("cpu"))  # (B, Q, T)
    logits = trainer.model(sampler_similarity=similarity, sampler_frame_mask=frame_mask, sampler_query_mask=query_mask)
    log_p = draw_log_probs(logits.frame_logits, batch["similarities"], batch["draw_orders"], "paper")  # (B,)
    paper = _sampler_gradients(trainer, -(batch["sampler_advantages"] * log_p).mean())  # the same forward, as written
    rollout_time = batch.pop("sampler_old_log_probs")
    with torch.no_grad():
        assert torch.allclose(rollout_time.double(), _hand_sampler_log_probs(model, batch), atol=1e-4)
    on_policy = _sampler_gradients(trainer, trainer._sampler_loss(trainer.model, batch, [0, 1]))
    assert paper.keys() == on_policy.keys() and len(paper) > 2
    for name, grad in paper.items():
        assert torch.allclose(on_policy[name], grad, rtol=1e-5, atol=1e-7), name
    batch["sampler_old_log_probs"] = rollout_time  # ratio 1 up to float noise: the same gradient, within it
    stored = _sampler_gradients(trainer, trainer._sampler_loss(trainer.model, batch, [0, 1]))
    for name, grad in paper.items():
        assert torch.allclose(stored[name], grad, rtol=1e-3, atol=1e-6), name


def test_old_turn_log_probs_match_a_plain_forward(make_grpo_trainer, grpo_qa_rows, tmp_path, monkeypatch):
    """`_turn_log_probs` (the rollout policy's per-token log-probs, needed when rollouts are reused): turns of one
    frame shape per forward, at most the per-device batch size each, and as many forwards as the busiest process
    (placeholder forwards where this one has no turns left), so that ZeRO-3's per-forward gathers match."""
    tall = make_synthetic_video(tmp_path / "tall.mp4", duration_seconds=30.0, fps=1.0, size=(96, 160))
    trainer = make_grpo_trainer({k: v[:1] for k, v in grpo_qa_rows.items()}, per_device_train_batch_size=2)
    model = trainer.msjoe_model
    wide = grpo_qa_rows["video"][0]
    batch = _toy_batch(trainer, grpo_qa_rows, videos=[wide, wide, wide, tall])
    forwards = []
    original = GRPOTrainer._get_per_token_logps_and_entropies
    monkeypatch.setattr(
        GRPOTrainer,
        "_get_per_token_logps_and_entropies",
        lambda self, model, ids, *args, **kwargs: (
            forwards.append(ids.shape[0]) or original(self, model, ids, *args, **kwargs)
        ),
    )
    for turn in TURNS:
        turns = batch[f"{turn}_turns"]
        assert len({t.shape_key for t in turns}) == 2  # the two video sizes
        forwards.clear()
        scored = trainer._turn_log_probs(turns, kinds=("old",), max_pixels=trainer._turn_pixel_budget(turn))["old"]
        assert forwards == [2, 1, 1]  # 3 wide turns in forwards of <= 2 rows, then the tall one
        with torch.no_grad():
            for t, log_p in zip(turns, scored):
                assert torch.allclose(log_p, _hand_log_probs(model, t), atol=1e-5), turn
    gather = trainer.accelerator.gather
    monkeypatch.setattr(trainer.accelerator, "gather", lambda t: torch.cat([gather(t), gather(t) + 2]))  # 5 forwards
    forwards.clear()
    again = trainer._turn_log_probs(turns, kinds=("old",), max_pixels=trainer._turn_pixel_budget(turn))["old"]
    assert forwards == [2, 1, 1, 1, 1] and all(torch.equal(a, b) for a, b in zip(again, scored))


def _padded_as_for_another_process(trainer, monkeypatch):
    """Make `_mllm_loss` see a second process whose turns have one row more per chunk and a chunk more: chunk 0 is
    padded with a masked-out row and a placeholder call is added, as under DDP."""
    gather = trainer.accelerator.gather

    def with_another_process(tensor):
        if tensor.dtype == torch.long and tensor.dim() == 3:  # `_mllm_loss`'s rows per chunk call, (1, turns, slots)
            other = tensor.clone()
            other[0, :, :2] += 1
            return torch.cat([tensor, other])
        return gather(tensor)

    monkeypatch.setattr(trainer.accelerator, "gather", with_another_process)


def _mllm_loss_value(trainer, batch):
    with torch.no_grad():
        return trainer._mllm_loss(trainer.model, batch, [0, 1]).item()


@pytest.mark.parametrize("padded", [False, True], ids=["local", "padded-like-another-process"])
def test_entropy_bonus_and_aux_loss_count_once_for_every_loss_type(
    make_grpo_trainer, grpo_qa_rows, monkeypatch, padded
):
    """TRL adds `-entropy_coef * H` and `router_aux_loss_coef * aux` to each of its loss calls, and MSJoE makes one
    per turn chunk: whatever the loss type's weights, the bonus is entropy_coef x the mean entropy over all completion
    tokens of both turns (TRL's definition), and the aux loss counts once."""
    trainer = make_grpo_trainer(
        {k: v[:1] for k, v in grpo_qa_rows.items()}, per_device_train_batch_size=2, entropy_coef=0.1
    )
    batch = _toy_batch(trainer, grpo_qa_rows)
    with torch.no_grad():
        entropies = torch.cat(
            [_hand_scores(trainer.msjoe_model, t)[1] for turn in TURNS for t in batch[f"{turn}_turns"]]
        )
    original = GRPOTrainer._get_per_token_logps_and_entropies

    def with_constant_aux_loss(self, *args, compute_aux_loss=False, **kwargs):  # the tiny MLLM has no router
        logps, entropy, _ = original(self, *args, **kwargs)
        return logps, entropy, (logps.sum() * 0.0 + 2.0) if compute_aux_loss else None

    monkeypatch.setattr(GRPOTrainer, "_get_per_token_logps_and_entropies", with_constant_aux_loss)
    trainer.router_aux_loss_coef = 0.5
    unpadded_base = {}
    for loss_type in LOSS_AGGREGATION:
        trainer.loss_type = loss_type
        trainer.entropy_coef, trainer.aux_loss_enabled = 0.0, False
        unpadded_base[loss_type] = _mllm_loss_value(trainer, batch)
    if padded:
        _padded_as_for_another_process(trainer, monkeypatch)
    for loss_type in LOSS_AGGREGATION:
        trainer.loss_type = loss_type
        trainer.entropy_coef, trainer.aux_loss_enabled = 0.0, False
        base = _mllm_loss_value(trainer, batch)
        assert base == pytest.approx(unpadded_base[loss_type], rel=1e-5, abs=1e-7), loss_type  # padding is neutral
        trainer.entropy_coef = 0.1
        with_bonus = _mllm_loss_value(trainer, batch)
        assert base - with_bonus == pytest.approx(0.1 * entropies.mean().item(), rel=1e-4), loss_type
        trainer.entropy_coef, trainer.aux_loss_enabled = 0.0, True
        assert _mllm_loss_value(trainer, batch) - base == pytest.approx(0.5 * 2.0, rel=1e-5), loss_type


def test_loss_aggregation_table_matches_trls_loss_types(make_grpo_trainer, grpo_qa_rows):
    """Pins what `grpo_config.LOSS_AGGREGATION` says of each TRL loss type by TRL's own `_compute_loss` on rows of
    different lengths: "sequence" losses of two rows are the mean of the one-row losses, "local_token" ones their
    token-weighted mean, "global_token" ones their sum (normalised by the generation batch's token count)."""
    trainer = make_grpo_trainer({k: v[:1] for k, v in grpo_qa_rows.items()}, per_device_train_batch_size=2)
    batch = _toy_batch(trainer, grpo_qa_rows)
    batch["advantages"] = torch.tensor([1.0, 0.5])  # one sign, so that the row losses do not cancel
    for turn in TURNS:  # rows of different lengths, so that the three laws differ
        short = batch[f"{turn}_turns"][1] = dataclasses.replace(batch[f"{turn}_turns"][1])
        short.completion_ids = short.completion_ids[: max(1, len(short.completion_ids) // 2)]
        batch[f"{turn}_old_logps"][1] = batch[f"{turn}_old_logps"][1][: len(short.completion_ids)]
    turn = "answer"
    lengths = [len(t.completion_ids) for t in batch[f"{turn}_turns"]]
    assert lengths[0] != lengths[1]

    def chunk_loss(members):
        turn_inputs, visual = trainer._chunk_inputs(batch, turn, members, len(members))
        with torch.no_grad():
            return trainer._trl_turn_loss(WithVisualInputs(trainer.model, visual), turn_inputs, turn)[0].item()

    for loss_type, aggregation in LOSS_AGGREGATION.items():
        trainer.loss_type = loss_type
        both, first, second = chunk_loss([0, 1]), chunk_loss([0]), chunk_loss([1])
        laws = {
            "sequence": (first + second) / 2,
            "local_token": (lengths[0] * first + lengths[1] * second) / sum(lengths),
            "global_token": first + second,
        }
        assert both == pytest.approx(laws[aggregation], rel=1e-4, abs=1e-7), (loss_type, both, laws)
        others = [law for name, law in laws.items() if name != aggregation]
        assert all(abs(both - law) > 1e-2 * abs(both) for law in others), (loss_type, both, laws)  # told apart


def test_answer_turn_loss_depends_on_its_frames(make_grpo_trainer, grpo_qa_rows):
    trainer = make_grpo_trainer({k: v[:1] for k, v in grpo_qa_rows.items()}, per_device_train_batch_size=2)
    batch = _toy_batch(trainer, grpo_qa_rows)
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


@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dapo"])
def test_masked_filler_rows_leave_the_chunk_loss_unchanged(make_grpo_trainer, grpo_qa_rows, loss_type):
    """Chunks are padded to the row count of the other processes' chunks: the padding must not change the loss."""
    trainer = make_grpo_trainer(
        {k: v[:1] for k, v in grpo_qa_rows.items()}, per_device_train_batch_size=2, loss_type=loss_type
    )
    batch = _toy_batch(trainer, grpo_qa_rows)
    with torch.no_grad():
        for turn in TURNS:
            losses = {}
            for size in (2, 3):
                turn_inputs, visual = trainer._chunk_inputs(batch, turn, [0, 1], size)
                assert turn_inputs["completion_mask"][2:].sum() == 0 and turn_inputs["advantages"][2:].eq(0).all()
                losses[size] = trainer._trl_turn_loss(WithVisualInputs(trainer.model, visual), turn_inputs, turn)[
                    0
                ].item()
            # grpo averages over rows (the trainer weights a chunk by its padded row count); token losses ignore them
            scale = 3 / 2 if loss_type == "grpo" else 1.0
            assert losses[3] * scale == pytest.approx(losses[2], rel=1e-5, abs=1e-7), turn


def test_a_micro_batch_without_valid_rows_gives_a_zero_loss_with_a_graph(
    make_grpo_trainer, grpo_qa_rows, tmp_path, monkeypatch
):
    """No early return: the sampler still runs (placeholder input) and every trained weight gets a zero gradient,
    as DDP needs on every process; no TRL loss call is made when no process has a turn chunk."""
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    trainer = make_grpo_trainer({k: v[:1] for k, v in grpo_qa_rows.items()}, per_device_train_batch_size=2)
    example = {k: v[0] for k, v in grpo_qa_rows.items()}
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1
    batch = trainer._generate_and_score_completions([dict(example, video=str(broken))] * 2)
    assert not batch["valid"].any()
    trl_calls, sampler_calls = [], []
    original = GRPOTrainer._compute_loss
    monkeypatch.setattr(GRPOTrainer, "_compute_loss", lambda self, *a: trl_calls.append(1) or original(self, *a))
    trainer.msjoe_model.sampler.register_forward_hook(lambda *a: sampler_calls.append(1))
    trainer.model.zero_grad()
    loss = trainer._compute_loss(trainer.model, batch)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    trained = [(n, p) for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert all(p.grad is not None and not p.grad.any() for _, p in trained), [n for n, p in trained if p.grad is None]
    assert sampler_calls == [1] and trl_calls == []


# ---------------------------------------------------------------------------------------------- checkpoints
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(make_grpo_trainer, tmp_path):
    straight = make_grpo_trainer(max_steps=2, output_dir=str(tmp_path / "a"))
    straight.train()
    first = make_grpo_trainer(max_steps=1, save_strategy="steps", save_steps=1, output_dir=str(tmp_path / "b"))
    first.train()
    checkpoint = tmp_path / "b" / "checkpoint-1"
    saved = MSJoEForVideoQA.from_pretrained(checkpoint)  # a checkpoint is a loadable MSJoE folder ...
    assert saved.processor is not None and saved.config.sampler_is_trained is True
    assert "An [MSJoE]" in (tmp_path / "b" / "README.md").read_text()  # ... and TRL writes the MSJoE card
    assert json.loads((checkpoint / TRAINING_ARGS_FILE).read_text())["training_stage"] == "joint"
    resumed = make_grpo_trainer(max_steps=2, output_dir=str(tmp_path / "b"))
    resumed.train(resume_from_checkpoint=str(checkpoint))
    for name, value in straight.msjoe_model.sampler.state_dict().items():
        assert torch.allclose(value, resumed.msjoe_model.sampler.state_dict()[name], atol=1e-6), name
    for name, value in straight.msjoe_model.mllm.state_dict().items():
        assert torch.allclose(value, resumed.msjoe_model.mllm.state_dict()[name], atol=1e-6), name


@pytest.mark.parametrize("lora", [False, True])
def test_load_best_model_restores_mllm_and_sampler(make_grpo_trainer, tmp_path, lora):
    from peft import LoraConfig

    peft_config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"]) if lora else None
    trainer = make_grpo_trainer(peft_config=peft_config)
    best = tmp_path / "checkpoint-best"
    trainer.save_model(str(best), _internal_call=True)  # what a checkpoint save writes
    trained = [(n, p) for n, p in trainer.model.named_parameters() if p.requires_grad]
    saved = {n: p.detach().clone() for n, p in trained}
    with torch.no_grad():
        for _, p in trained:
            p.add_(1.0)  # training went on after the best checkpoint
    trainer.state.best_model_checkpoint = str(best)
    trainer._load_best_model()
    assert any(n.startswith(("mllm.", "base_model.model.mllm.")) for n, _ in trained)
    assert any(".sampler." in f".{n}" for n, _ in trained)
    for name, param in trained:
        assert torch.equal(param.detach(), saved[name]), name


def test_load_best_model_at_end_needs_no_metric_name(grpo_init_dir, grpo_qa_rows, tmp_path):
    """Without `metric_for_best_model`, the best checkpoint is picked by `eval_msjoe/accuracy` (transformers'
    default, `eval_loss`, does not exist and crashed the first evaluation)."""
    trainer, _ = _direct_trainer(
        grpo_init_dir, grpo_qa_rows, tmp_path, eval_dataset=Dataset.from_dict(grpo_qa_rows), eval_strategy="steps",
        eval_steps=1, save_strategy="steps", save_steps=1, load_best_model_at_end=True, per_device_eval_batch_size=2,
        eval_uniform_baseline=False,
    )  # fmt: skip
    trainer.train()
    assert trainer.args.metric_for_best_model == "eval_msjoe/accuracy" and trainer.args.greater_is_better
    evaluation = next(log for log in trainer.state.log_history if "eval_msjoe/accuracy" in log)
    assert trainer.state.best_metric == evaluation["eval_msjoe/accuracy"]
    assert trainer.state.best_model_checkpoint.endswith("checkpoint-1")


def _direct_trainer(grpo_init_dir, grpo_qa_rows, tmp_path, parameters=None, eval_dataset=None, **overrides):
    """An `MSJoEGRPOTrainer` built by hand, for the constructor arguments `make_grpo_trainer` does not pass:
    `optimizers=(SGD over parameters(model), None)` and `eval_dataset`."""
    from transformers_msjoe.grpo_config import MSJoEGRPOConfig
    from transformers_msjoe.grpo_trainer import MSJoEGRPOTrainer
    from transformers_msjoe.loading import load_msjoe_model

    model = load_msjoe_model(grpo_init_dir)
    optimizer = torch.optim.SGD(parameters(model), lr=1e-2) if parameters else None
    settings = dict(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, num_generations=2, max_steps=1,
        use_cpu=True, report_to="none", save_strategy="no", bf16=False, activation_checkpointing=False,
        lr_scheduler_type="constant", disable_tqdm=True,
    )  # fmt: skip
    args = MSJoEGRPOConfig(**{**settings, **overrides})
    trainer = MSJoEGRPOTrainer(
        model=model, args=args, train_dataset=Dataset.from_dict(grpo_qa_rows), eval_dataset=eval_dataset,
        reward_funcs=[alternating_reward_that_logs], optimizers=(optimizer, None),
    )  # fmt: skip
    return trainer, optimizer


def test_several_eval_datasets_need_a_named_best_model_metric(grpo_init_dir, grpo_qa_rows, tmp_path):
    evals = {"short": Dataset.from_dict(grpo_qa_rows)}
    best = dict(eval_strategy="steps", save_strategy="steps", load_best_model_at_end=True)
    with pytest.raises(ValueError, match=r"set metric_for_best_model to one of \['eval_short_msjoe/accuracy'\]"):
        _direct_trainer(grpo_init_dir, grpo_qa_rows, tmp_path, eval_dataset=evals, **best)


def test_a_user_optimizer_is_used_as_given(grpo_init_dir, grpo_qa_rows, tmp_path):
    trainer, optimizer = _direct_trainer(grpo_init_dir, grpo_qa_rows, tmp_path, lambda m: m.parameters())

    def groups():  # parameters and settings of each group (the scheduler adds its own `initial_lr`)
        ignored = ("params", "initial_lr")
        return [
            ([id(p) for p in g["params"]], {k: g[k] for k in g if k not in ignored}) for g in optimizer.param_groups
        ]

    before = groups()
    sampler = snapshot(trainer.msjoe_model.sampler)
    trainer.train()
    assert groups() == before  # not regrouped: no sampler group added, no parameter moved
    assert changed(trainer.msjoe_model.sampler, sampler)


def test_a_user_optimizer_without_the_sampler_is_refused(grpo_init_dir, grpo_qa_rows, tmp_path):
    trainer, _ = _direct_trainer(grpo_init_dir, grpo_qa_rows, tmp_path, lambda m: m.mllm.parameters())
    with pytest.raises(ValueError, match=r"does not hold \d+ trainable sampler parameter.*optimizers=\(None, None\)"):
        trainer.train()


# ---------------------------------------------------------------------------------------------- evaluation
def test_evaluate_reports_learned_and_uniform_accuracy(make_grpo_trainer, grpo_qa_rows, capsys):
    trainer = make_grpo_trainer(per_device_eval_batch_size=2, disable_tqdm=False)
    eval_rows = Dataset.from_dict(grpo_qa_rows)
    metrics = trainer.evaluate(eval_rows)
    assert "Evaluating (msjoe frames)" in capsys.readouterr().err  # a tqdm bar per selection
    model = trainer.msjoe_model
    for selection in ("msjoe", "uniform"):
        options = [[f"{letter}. {text}" for letter, text in zip("ABC", o)] for o in eval_rows["options"]]
        outputs = model.answer_batch(eval_rows["video"], eval_rows["question"], options, selection=selection)
        correct = [o.option == a for o, a in zip(outputs, eval_rows["answer"])]
        assert metrics[f"eval_{selection}/accuracy"] == pytest.approx(sum(correct) / 2)
        assert metrics[f"eval_{selection}/accuracy/type=order"] == float(correct[0])
        assert metrics[f"eval_{selection}/accuracy/duration=0-180s"] == pytest.approx(sum(correct) / 2)
    assert metrics["eval_sampler_gain"] == pytest.approx(
        metrics["eval_msjoe/accuracy"] - metrics["eval_uniform/accuracy"]
    )
    assert trainer.state.log_history[-1]["eval_msjoe/count"] == 2.0


# ---------------------------------------------------------------------------------------------- bad input
def test_a_video_that_fails_to_decode_is_skipped_and_counted(make_grpo_trainer, grpo_qa_rows, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    trainer = make_grpo_trainer(rows_of(grpo_qa_rows, video=[grpo_qa_rows["video"][0], str(broken)]), max_steps=2)
    sampler = snapshot(trainer.msjoe_model.sampler)
    trainer.train()
    log = trainer.state.log_history[0]
    assert log["data/skipped_rollouts"] == 2.0  # both generations of the broken video
    # the per-generation count is averaged over TRL's logging window; the running total is not
    assert [h["data/skipped_rollouts_total"] for h in trainer.state.log_history[:2]] == [2.0, 4.0]
    assert torch.isfinite(torch.tensor(log["loss"]))
    assert changed(trainer.msjoe_model.sampler, sampler)  # the good video still trained the sampler


@pytest.mark.parametrize(
    "edit, message",
    [
        (dict(options="drop"), r"lacks the column\(s\) \['options'\]"),
        (dict(options=[["red", "blue"], []]), r"row 1 \(id 'needle-0'\) has no options"),
        (dict(answer=["A", ""]), r"row 1 \(id 'needle-0'\) has no answer"),
        (dict(answer=["D", "B"]), r"row 0 \(id 'order-0'\) has answer 'D', which is not one of its option letters"),
        (dict(video=["x.mp4", None]), r"row 1 \(id 'needle-0'\) has no video \(`video` is None\)"),
        (dict(question=["Which box?", "  "]), r"row 1 \(id 'needle-0'\) has no question \(`question` is '  '\)"),
        (dict(question=[None, "Which box?"]), r"row 0 \(id 'order-0'\) has no question \(`question` is None\)"),
    ],
)
def test_bad_rows_fail_before_training(make_grpo_trainer, grpo_qa_rows, edit, message):
    rows = {k: v for k, v in rows_of(grpo_qa_rows, **edit).items() if v != "drop"}
    with pytest.raises(ValueError, match=message):
        make_grpo_trainer(rows)


def test_stage_one_needs_pass_rates(make_grpo_trainer, grpo_qa_rows):
    rows = {k: v for k, v in grpo_qa_rows.items() if k != "pass_rate"}
    with pytest.raises(ValueError, match="pass rate"):
        make_grpo_trainer(rows, training_stage="sampler_pretrain", reward_funcs=None)
    rows["pass_rate"] = [0.5, None]
    with pytest.raises(ValueError, match=r"row 1 \(id 'needle-0'\) has pass_rate=None.*msjoe data label-difficulty"):
        make_grpo_trainer(rows, training_stage="sampler_pretrain", reward_funcs=None)


def test_unsupported_settings_are_refused(make_grpo_trainer):
    from peft import LoraConfig

    with pytest.raises(ValueError, match="at least 2 generations"):
        make_grpo_trainer(num_generations=1)
    with pytest.raises(ValueError, match="beta=0.04 needs a reference model"):
        make_grpo_trainer(beta=0.04)
    with pytest.raises(ValueError, match="use_vllm"):
        make_grpo_trainer(use_vllm=True)
    with pytest.raises(ValueError, match="hub_strategy='end'"):
        make_grpo_trainer(peft_config=LoraConfig(r=4), push_to_hub=True, hub_model_id="me/x", hub_strategy="every_save")


# ---------------------------------------------------------------------------------------------- drift tests
# MSJoEGRPOTrainer overrides or calls these TRL 1.16 / transformers 5.23 private methods; if they change, re-check.
# The image keyword arguments of TRL 1.16's `_get_per_token_logps_and_entropies` (and inputs `_compute_loss` reads).
TRL_IMAGE_KWARGS = (
    "pixel_values", "image_grid_thw", "num_images", "pixel_attention_mask", "spatial_shapes", "num_tiles",
    "image_sizes", "token_type_ids", "mm_token_type_ids", "image_position_ids",
)  # fmt: skip
TRL_PRIVATE_SIGNATURES = {
    "_load_from_checkpoint": ["self", "resume_from_checkpoint", "model"],  # transformers.Trainer
    "_load_best_model": ["self"],  # transformers.Trainer
    "_save": ["self", "output_dir", "state_dict"],  # transformers.Trainer
    "create_model_card": ["self", "model_name", "dataset_name", "tags"],  # trl BaseTrainer
    "_get_train_sampler": ["self", "dataset"],
    "_generate_and_score_completions": ["self", "inputs"],
    "_compute_loss": ["self", "model", "inputs"],
    "_get_per_token_logps_and_entropies": [
        "self",
        "model",
        "input_ids",
        "attention_mask",
        "logits_to_keep",
        "batch_size",
        "compute_entropy",
        "compute_aux_loss",
        *TRL_IMAGE_KWARGS,
    ],
    "get_high_entropy_mask": ["self", "entropies", "mask", "threshold"],
    "_log_metric": ["self", "name", "value"],
    "_log_completion_extra": ["self", "column", "values"],
    "_calculate_rewards": ["self", "inputs", "prompts", "completions", "completion_ids_list"],
    "_prepare_inputs": ["self", "generation_batch"],
    "_set_signature_columns_if_needed": ["self"],
}


@pytest.mark.parametrize("name", sorted(TRL_PRIVATE_SIGNATURES))
def test_trl_private_hook_signatures_are_unchanged(name):
    assert list(inspect.signature(getattr(GRPOTrainer, name)).parameters) == TRL_PRIVATE_SIGNATURES[name]


def _trl_group_advantages(rewards_per_func, reward_weights, num_generations, scale_rewards):
    """Run TRL's own inline "sum_then_normalize" block (from the installed GRPOTrainer source) on these inputs."""
    source = inspect.getsource(GRPOTrainer._generate_and_score_completions)
    start = source.index('        if self.multi_objective_aggregation == "sum_then_normalize":')
    end = source.index('        elif self.multi_objective_aggregation == "normalize_then_sum":')
    assert "advantages = torch.nan_to_num(advantages, nan=0.0)" in source[end:]
    namespace = {
        "torch": torch, "nanstd": nanstd, "rewards_per_func": rewards_per_func, "device": "cpu",
        "num_generations": num_generations, "unscorable_mask": torch.isnan(rewards_per_func).all(dim=1),
        "self": types.SimpleNamespace(
            multi_objective_aggregation="sum_then_normalize", reward_weights=reward_weights, scale_rewards=scale_rewards
        ),
    }  # fmt: skip
    exec(compile(textwrap.dedent(source[start:end]), "trl-grpo-advantages", "exec"), namespace)
    return torch.nan_to_num(namespace["advantages"], nan=0.0), namespace["rewards"], namespace["std_rewards"]


@pytest.mark.parametrize("scale_rewards", ["group", "batch", "none"])
@pytest.mark.parametrize("num_generations", [2, 4])
def test_group_advantages_match_trl(scale_rewards, num_generations):
    """`group_advantages` is a copy of TRL's inline code: pinned against TRL's own source on random rewards."""
    generator = torch.Generator().manual_seed(num_generations)
    rewards_per_func = torch.rand(4 * num_generations, 3, generator=generator)
    rewards_per_func[1] = torch.nan  # a skipped rollout
    rewards_per_func[2, 1] = torch.nan  # one reward not applicable
    rewards_per_func[num_generations : 2 * num_generations, 0] = 0.5  # a group whose accuracy agrees
    weights = torch.tensor([0.8, 0.1, 0.1])
    ours = group_advantages(rewards_per_func.clone(), weights, num_generations, scale_rewards)
    theirs = _trl_group_advantages(rewards_per_func.clone(), weights, num_generations, scale_rewards)
    for mine, trl in zip(ours, theirs):
        assert torch.allclose(mine, trl, equal_nan=True)


def test_trl_loss_still_reads_the_keys_msjoe_provides_and_calls_the_model_it_is_given():
    source = inspect.getsource(GRPOTrainer._compute_loss)
    read = set(re.findall(r'inputs(?:\["|\.get\(")(\w+)"', source))
    provided_or_optional = {
        "prompt_ids",
        "prompt_mask",
        "completion_ids",
        "completion_mask",
        "advantages",
        "num_items_in_batch",
        "old_per_token_logps",
        "ref_per_token_logps",
    }
    image_or_vllm_only = {*TRL_IMAGE_KWARGS, "tool_mask", "importance_sampling_ratio", "sampling_per_token_logps"}
    assert read <= provided_or_optional | image_or_vllm_only, read - provided_or_optional - image_or_vllm_only
    assert {"prompt_ids", "completion_ids", "advantages"} <= read
    logps = inspect.getsource(GRPOTrainer._get_per_token_logps_and_entropies)
    assert "model(**model_inputs, labels=labels, fused_lm_head=True)" in logps  # WithVisualInputs relies on this call


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_compat_fused_lm_head_is_routed_to_the_mllm(make_grpo_trainer, temperature):
    """TRL's fused head scores log softmax(logits / temperature), as the rollout sampled them."""
    trainer = make_grpo_trainer(temperature=temperature)
    assert trainer.temperature == temperature
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


# Statements of TRL 1.16 code MSJoE mirrors because it is inline in a private method (cannot be called), each with the
# MSJoE code that mirrors it. When one fails, re-read TRL's block and update the mirror, then the statement here.
TRL_INLINE_STATEMENTS = {
    "_generate_and_score_completions": {
        # MSJoEGRPOTrainer._needs_old_log_probs
        "generate_every = self.args.steps_per_generation * self.num_iterations  # generation frequency": "old",
        "if self.args.gradient_accumulation_steps % generate_every != 0 or (": "old",
        # MSJoEGRPOTrainer._score (reward metrics)
        'self._metrics[mode][f"rewards/{reward_func_name}/mean"].append(mean_rewards)': "metrics",
        'self._metrics[mode][f"rewards/{reward_func_name}/std"].append(std_func_rewards)': "metrics",
        'self._metrics[mode]["reward"].append(torch.nanmean(rewards).item())': "metrics",
        'self._metrics[mode]["reward_std"].append(nanstd(rewards).item())': "metrics",
        'self._metrics[mode]["frac_reward_zero_std"].append(is_std_zero.float().mean().item())': "metrics",
        # MSJoEGRPOTrainer._record_completions
        'self._logs["prompt"].extend(gather_object(prompts))': "completions",
        'self._logs["completion"].extend(gather_object(completions))': "completions",
        'self._logs["rewards"][name].extend(rewards_per_func[:, i].tolist())': "completions",
        'self._logs["advantages"].extend(all_process_advantages.tolist())': "completions",
        # MSJoEGRPOTrainer._flush_reward_function_logs
        "for column in sorted(set(gather_object(list(self._pending_extra_logs)))):": "flush",
        "values = self._pending_extra_logs.get(column, [None] * len(prompts))": "flush",
        'self._logs["extra"][column].extend(gather_object(values))': "flush",
        "self._pending_extra_logs.clear()": "flush",
        "for name in sorted(set(gather_object(list(self._pending_metrics)))):": "flush",
        "total, count = self.accelerator.gather(local_stats).view(-1, 2).sum(dim=0).tolist()": "flush",
        "self._pending_metrics.clear()": "flush",
    },
    "_prepare_inputs": {  # the reuse `_needs_old_log_probs` detects
        "generate_every = self.args.steps_per_generation * self.num_iterations": "old",
        "if self._step % generate_every == 0 or self._buffered_inputs is None:": "old",
    },
    "_compute_loss": {  # MSJoEGRPOLossMixin._regularizer_correction
        "entropy_mask = self.get_high_entropy_mask(entropies, mask, 1 - self.top_entropy_quantile)": "entropy",
        "effective_mask = mask if entropy_mask is None else mask * entropy_mask": "entropy",
        "(entropies * effective_mask).sum() / effective_mask.sum().clamp(min=1.0) / accumulation_factor": "entropy",
        'accumulation_factor = self.current_gradient_accumulation_steps if mode == "train" else 1.0': "entropy",
        "apply_coef = self.entropy_coef": "entropy",
        "loss = loss - apply_coef * entropy_loss": "entropy",
        "compute_aux_loss=self.aux_loss_enabled,": "aux",
        "loss = loss + self.router_aux_loss_coef * aux_loss / normalizer": "aux",
    },
    "_log_metric": {"self._pending_metrics[name].append(value)": "flush"},
    "_log_completion_extra": {"self._pending_extra_logs[column].extend(values)": "flush"},
}


@pytest.mark.parametrize("method", sorted(TRL_INLINE_STATEMENTS))
def test_compat_trl_inline_blocks_msjoe_mirrors(method):
    """Drift test for the TRL 1.16 code MSJoEGRPOTrainer mirrors (named in its comments): the statements are still
    in TRL's source. Signature tests alone would not notice TRL changing what these blocks do."""
    source = inspect.getsource(getattr(GRPOTrainer, method))
    missing = [statement for statement in TRL_INLINE_STATEMENTS[method] if statement not in source]
    assert not missing, missing


def test_compat_trl_repeat_sampler_is_still_not_epoch_seeded():
    """Drift test for `_compat.EpochSeededRepeatSampler`: TRL 1.16's RepeatSampler has no `set_epoch` (so a resumed
    run would replay epoch 1's order) and keeps `shuffle`, `seed` and `generator`. When TRL reseeds per epoch itself,
    drop the wrapper."""
    from trl.trainer.utils import RepeatSampler

    assert "set_epoch" not in vars(RepeatSampler)
    sampler = RepeatSampler(list(range(4)), mini_repeat_count=2, seed=3)
    assert sampler.shuffle is True and sampler.seed == 3 and isinstance(sampler.generator, torch.Generator)
    assert RepeatSampler(list(range(4)), mini_repeat_count=2, shuffle=False).shuffle is False


def test_compat_upstream_still_reads_the_deprecated_flag():
    """Drift test for `_compat.upstream_gradient_checkpointing_flag_ok`: TRL 1.16 and PEFT 0.21 read
    `is_gradient_checkpointing` (deprecated by transformers). When this fails, drop the shim where it is unneeded."""
    from peft import PeftModel
    from trl.models import utils

    assert "unwrapped_model.is_gradient_checkpointing" in inspect.getsource(utils._unwrap_model_for_generation)
    assert '"is_gradient_checkpointing"' in inspect.getsource(PeftModel.__init__)
