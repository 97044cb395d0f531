"""`MSJoEGRPOTrainer`: joint RL of the MLLM (GRPO) and the frame sampler (REINFORCE) on the installed TRL.

Paper §2 (hf.co/papers/2602.22932). A subclass of TRL's `GRPOTrainer`, not a copy: TRL keeps the training
loop, batching (`RepeatSampler`, generation buffering), reward calling, the GRPO/DAPO/... loss arithmetic,
logging and checkpointing. MSJoE overrides only

- `_generate_and_score_completions` (TRL 1.16, private): the two-turn rollout of `grpo_rollout.py`, rewards
  through TRL's `_calculate_rewards`, group-normalised advantages, and the sampler's advantage;
- `_compute_loss` (TRL 1.16, private): TRL's own `_compute_loss` once per MLLM turn, each turn scored with the
  frames it was generated from (TRL's loss path drops video inputs, ENV.md §6), plus the sampler's REINFORCE
  term -A * sum_k log p(x_k);
- `_set_signature_columns_if_needed`, `create_optimizer` (the sampler's own parameter group), `evaluate`
  (accuracy with learned vs uniform frames) and `save_model` (a loadable MSJoE checkpoint with LoRA merged).

The private overrides are pinned by drift tests (tests/test_grpo_trainer.py) that fail when TRL changes them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from accelerate.utils import gather, gather_object, is_peft_model
from datasets import Dataset, IterableDataset, Video
from torch.utils.data import Sampler
from transformers.utils import logging
from trl import GRPOTrainer
from trl.trainer.utils import nanstd, use_adapter

from ._compat import (
    route_fused_lm_head_to_mllm,
    trl_unwrap_model_for_generation,
    upstream_gradient_checkpointing_flag_ok,
)
from .grpo_config import MSJoEGRPOConfig
from .grpo_evaluation import evaluate_selections
from .grpo_rollout import (
    MSJoERollout,
    RolloutRow,
    Turn,
    WithVisualInputs,
    build_turn_batch,
    frame_weight_entropy,
    sampler_log_probs,
    selected_spread,
)
from .loading import load_msjoe_model
from .modeling_msjoe import MSJoEForVideoQA
from .rewards import (
    QA_COLUMNS,
    accuracy_reward,
    answer_is_correct,
    check_qa_row,
    difficulty_aware_advantage,
    format_reward,
    make_informativeness_reward,
)

logger = logging.get_logger(__name__)

__all__ = ["MSJoEGRPOTrainer", "default_reward_funcs"]

TURNS = ("query", "answer")
# How TRL 1.16 aggregates a loss over rows (see `GRPOTrainer._compute_loss`): per-sequence means averaged over
# rows, a sum over tokens divided by a fixed generation-batch token count, or a token mean of the micro-batch.
_ROW_MEAN_LOSSES = ("grpo", "sapo", "luspo", "dr_grpo")
_GLOBAL_TOKEN_LOSSES = ("dapo", "cispo", "vespo")
_TOKEN_MEAN_LOSSES = ("bnpo",)


def default_reward_funcs(args: MSJoEGRPOConfig) -> list[Callable[..., list[float | None]]]:
    """The paper's three rewards (§2.2): accuracy, format, informativeness (weights come from `args`)."""
    info = make_informativeness_reward(args.info_threshold, args.info_normalization, args.info_softmax_scale)
    return [accuracy_reward, format_reward, info]


class MSJoEGRPOTrainer(GRPOTrainer):
    """Trains `MSJoEForVideoQA` with MSJoE's two stages (`args.training_stage`).

    Args:
        model: an `MSJoEForVideoQA`, or a name/path for `load_msjoe_model` (an MSJoE checkpoint or an MLLM).
        reward_funcs: TRL-style reward functions; default `default_reward_funcs(args)` weighted by the
            `*_reward_weight` fields (then `args.reward_weights` must be unset).
        args: an `MSJoEGRPOConfig`.
        train_dataset / eval_dataset: rows with `video`, `question`, `options`, `answer` (and in stage 1 the pass
            rate column); `question_type` and `duration_seconds` feed the evaluation breakdowns.
        callbacks / optimizers: as in `transformers.Trainer`.
        peft_config: a `peft.LoraConfig` for the MLLM (joint stage); the sampler is added to `modules_to_save`
            so it keeps training fully.
    """

    _tag_names = ["trl", "grpo", "msjoe"]  # noqa: RUF012 (TRL's class attribute, overridden as TRL does)
    _name = "MSJoE-GRPO"

    def __init__(
        self,
        model: MSJoEForVideoQA | str | os.PathLike,
        reward_funcs: Callable[..., Any] | list[Callable[..., Any]] | None = None,
        args: MSJoEGRPOConfig | None = None,
        train_dataset: Dataset | IterableDataset | None = None,
        eval_dataset: Dataset | Mapping[str, Dataset] | None = None,
        callbacks: list[Any] | None = None,
        optimizers: tuple[Any, Any] = (None, None),
        peft_config: Any | None = None,
    ):
        model = load_msjoe_model(model) if isinstance(model, (str, os.PathLike)) else model
        if not isinstance(model, MSJoEForVideoQA):
            raise TypeError(f"MSJoEGRPOTrainer trains an MSJoEForVideoQA, got {type(model).__name__}; wrap your MLLM with MSJoEForVideoQA.from_mllm.")  # fmt: skip
        if model.processor is None:
            raise ValueError("The MSJoE model has no processor; load it with MSJoEForVideoQA.from_pretrained/from_mllm.")
        args = args if args is not None else MSJoEGRPOConfig(output_dir="msjoe-grpo")
        if not isinstance(args, MSJoEGRPOConfig):
            raise TypeError(f"`args` must be an MSJoEGRPOConfig, got {type(args).__name__}.")
        _check_supported(args, peft_config)
        # The sampler runs outside the model's forward; DDP still reduces its gradients through its hooks, but only
        # if it does not search the graph for unused parameters (every trained parameter gets a gradient each step).
        args.ddp_find_unused_parameters = False
        for name, value in args.model_config_overrides().items():
            setattr(model.config, name, value)
        pass_rate_column = args.pass_rate_column if args.training_stage == "sampler_pretrain" else None
        train_dataset = _prepare_dataset(train_dataset, "train_dataset", pass_rate_column)
        if isinstance(eval_dataset, Mapping):
            eval_dataset = {k: _prepare_dataset(v, f"eval_dataset[{k!r}]", None) for k, v in eval_dataset.items()}
        else:
            eval_dataset = _prepare_dataset(eval_dataset, "eval_dataset", None)
        if args.training_stage == "sampler_pretrain":
            model.mllm.requires_grad_(False)  # stage 1: the MLLM is the frozen environment
        if reward_funcs is None:
            reward_funcs = default_reward_funcs(args)
            weights = [args.accuracy_reward_weight, args.format_reward_weight, args.info_reward_weight]
            if args.reward_weights is not None and list(args.reward_weights) != weights:
                raise ValueError(f"`reward_weights`={args.reward_weights} conflicts with the default MSJoE rewards' `accuracy_reward_weight`, `format_reward_weight` and `info_reward_weight` ({weights}); unset `reward_weights`.")  # fmt: skip
            args.reward_weights = weights
        with upstream_gradient_checkpointing_flag_ok():  # PEFT's wrapper reads the deprecated flag
            super().__init__(
                model=model, reward_funcs=reward_funcs, args=args, train_dataset=train_dataset,
                eval_dataset=eval_dataset, processing_class=model.processor.tokenizer, callbacks=callbacks,
                optimizers=optimizers, peft_config=_peft_config_for_msjoe(peft_config),
            )
        # TRL sees the tokenizer only: MSJoEProcessor (prompts + frames) is used by the rollout and the loss.
        route_fused_lm_head_to_mllm(self.msjoe_model, temperature=self.temperature, cast_lm_head_to_fp32=args.cast_lm_head_to_fp32)  # fmt: skip
        self._rollout = MSJoERollout(self.msjoe_model, self.generation_config, self.eos_token_ids)
        _ = self.msjoe_model.clip_scorer  # load the frozen CLIP now: fail fast, and keep its init out of seeded rollouts

    # ------------------------------------------------------------------ the model behind the wrappers
    @property
    def msjoe_model(self) -> MSJoEForVideoQA:
        """The `MSJoEForVideoQA` being trained (inside the PEFT wrapper when LoRA is used)."""
        model = self.accelerator.unwrap_model(self.model) if hasattr(self, "accelerator") else self.model
        return model.get_base_model() if is_peft_model(model) else model

    def _sampler_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.msjoe_model.sampler.parameters() if p.requires_grad]

    # ------------------------------------------------------------------ documented hooks
    def _set_signature_columns_if_needed(self) -> None:
        """Keep the MSJoE columns if `remove_unused_columns=True` (TRL keeps only prompt/image columns)."""
        if self._signature_columns is None:
            self._signature_columns = [*QA_COLUMNS, "question_type", "duration_seconds", self.args.pass_rate_column]

    def _get_train_sampler(self, dataset: Dataset | None = None) -> Sampler:
        """TRL's `RepeatSampler`, reseeded from `seed + epoch` each epoch (see `EpochSeededSampler`)."""
        return EpochSeededSampler(super()._get_train_sampler(dataset))

    def create_optimizer(self, model: torch.nn.Module | None = None) -> torch.optim.Optimizer:
        """Trainer's optimizer, with the sampler moved to its own group (`sampler_learning_rate`)."""
        optimizer = super().create_optimizer(model)
        if any(group.get("msjoe_sampler") for group in optimizer.param_groups):
            return optimizer
        sampler_ids = {id(p) for p in self._sampler_parameters()}
        for group in optimizer.param_groups:
            group["params"] = [p for p in group["params"] if id(p) not in sampler_ids]
        optimizer.param_groups[:] = [group for group in optimizer.param_groups if group["params"]]
        group = {"params": self._sampler_parameters(), "lr": self.args.sampler_learning_rate, "weight_decay": self.args.weight_decay}
        optimizer.add_param_group({**group, "msjoe_sampler": True})
        return optimizer

    # ------------------------------------------------------------------ rollout + rewards (TRL 1.16 private hook)
    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        """Two-turn rollouts of this process's rows, their rewards and advantages, as a batch TRL can buffer/split."""
        mode = "train" if self.model.training else "eval"
        for index, row in enumerate(inputs):
            problem = check_qa_row(row, index, pass_rate_column=self._pass_rate_column)
            if problem:
                raise ValueError(f"Bad training row: {problem}. Fix or filter the dataset.")
        with (
            trl_unwrap_model_for_generation(
                self.model_wrapped, self.accelerator, gather_deepspeed3_params=self.args.ds3_gather_for_generation,
                generation_kwargs=self.generation_kwargs, gradient_checkpointing_kwargs=self.args.gradient_checkpointing_kwargs,
            ),
            self._dist.summon_full_params(self.model_wrapped, recurse=False),
            self._seeded_rollout_rng(inputs),
        ):  # fmt: skip
            rows = self._rollout(inputs)
        valid = torch.tensor([r.valid for r in rows], dtype=torch.bool)
        for row in rows:
            if row.error is not None:
                logger.warning(f"Skipping a rollout: {row.error}")
        advantages = self._score(inputs, rows, valid, mode)
        batch: dict[str, Any] = {"advantages": advantages, "sampler_advantages": self._sampler_advantages(inputs, rows, advantages)}  # fmt: skip
        batch["valid"] = valid
        for turn in TURNS:
            batch[f"{turn}_turns"] = [getattr(r, turn) for r in rows]
        batch["similarities"] = [r.similarity for r in rows]
        batch["draw_orders"] = [r.draw_order for r in rows]
        tokens = sum(len(getattr(r, t).completion_ids) for r in rows if r.valid for t in TURNS)
        batch["num_items_in_batch"] = self.accelerator.gather(torch.tensor(tokens, device=self.accelerator.device)).sum()
        if self.args.training_stage == "joint":
            self._add_reference_log_probs(batch, rows, valid)
        self._log_rollouts(rows, mode)
        return batch

    @contextlib.contextmanager
    def _seeded_rollout_rng(self, inputs: list[dict[str, Any]]) -> Iterator[None]:
        """Seed the rollout's randomness (sampled queries, frame draws, answers) from (seed, process, global step,
        batch) and leave the global RNG untouched: a run resumed from a checkpoint repeats the uninterrupted one."""
        key = "|".join([str(self.args.seed), str(self.accelerator.process_index), str(self.state.global_step), *(str(ex["question"]) for ex in inputs)])  # fmt: skip
        seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little") % (2**63)
        device = self.accelerator.device
        devices = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield

    @property
    def _pass_rate_column(self) -> str | None:
        return self.args.pass_rate_column if self.args.training_stage == "sampler_pretrain" else None

    def _score(self, inputs: list[dict[str, Any]], rows: list[RolloutRow], valid: torch.Tensor, mode: str) -> torch.Tensor:
        """Rewards through TRL's `_calculate_rewards` (rollout fields as extra columns), then this process's
        group-normalised advantages `(N,)`."""
        columns = [
            {**ex, "query_completion": r.query.text if r.query else "", "num_queries": self.msjoe_model.config.num_queries,
             "similarity": r.similarity, "queries": r.queries}
            for ex, r in zip(inputs, rows)
        ]  # fmt: skip
        prompts = [r.answer.prompt if r.valid else "" for r in rows]
        completions = [r.answer.text if r.valid else "" for r in rows]
        completion_ids = [r.answer.completion_ids.tolist() if r.valid else [] for r in rows]
        rewards_per_func = self._calculate_rewards(columns, prompts, completions, completion_ids)  # (N_all, F)
        all_valid = gather(valid.to(self.accelerator.device))
        rewards_per_func[~all_valid] = torch.nan  # no rollout, no reward: excluded from the group statistics
        num_generations = self.num_generations if mode == "train" else self.num_generations_eval
        advantages, rewards = self.group_advantages(rewards_per_func, num_generations)
        process = self.accelerator.process_index
        local = advantages[process * len(rows) : (process + 1) * len(rows)].cpu()
        for i, name in enumerate(self.reward_func_names):
            self._metrics[mode][f"rewards/{name}/mean"].append(torch.nanmean(rewards_per_func[:, i]).item())
            self._metrics[mode][f"rewards/{name}/std"].append(nanstd(rewards_per_func[:, i]).item())
        self._metrics[mode]["reward"].append(torch.nanmean(rewards).item())
        self._metrics[mode]["reward_std"].append(nanstd(rewards).item())
        return local

    def group_advantages(self, rewards_per_func: torch.Tensor, num_generations: int) -> tuple[torch.Tensor, torch.Tensor]:
        """GRPO advantages `(N,)` of the weighted reward sum, normalised per group of `num_generations` (paper §2.3:
        A_i = (r_i - mean) / std), following `scale_rewards`; rows with no reward (NaN) get advantage 0."""
        weights = self.reward_weights.to(rewards_per_func.device)
        unscorable = torch.isnan(rewards_per_func).all(dim=1)
        rewards = (rewards_per_func * weights).nansum(dim=1)  # (N,)
        rewards[unscorable] = torch.nan
        grouped = rewards.view(-1, num_generations)  # (N / G, G)
        mean = torch.nanmean(grouped, dim=1).repeat_interleave(num_generations)
        if self.scale_rewards == "batch":
            std = nanstd(rewards).expand_as(rewards)
        else:
            std = nanstd(grouped, dim=1).repeat_interleave(num_generations)
        advantages = rewards - mean
        if self.scale_rewards != "none":
            advantages = advantages / (std + 1e-4)
        mode = "train" if self.model.training else "eval"
        self._metrics[mode]["frac_reward_zero_std"].append(torch.isclose(std, torch.zeros_like(std)).float().nanmean().item())  # fmt: skip
        return torch.nan_to_num(advantages, nan=0.0), rewards

    def _sampler_advantages(self, inputs: list[dict[str, Any]], rows: list[RolloutRow], advantages: torch.Tensor) -> torch.Tensor:  # fmt: skip
        """Joint stage: the rollout's group-normalised advantage. Stage 1: the difficulty-aware advantage (DR)."""
        if self.args.training_stage == "joint":
            return advantages.clone()
        correct = torch.tensor([r.valid and answer_is_correct(r.answer.text, ex["answer"], ex["options"]) for ex, r in zip(inputs, rows)])  # fmt: skip
        pass_rate = torch.tensor([float(ex[self.args.pass_rate_column]) for ex in inputs])
        valid = torch.tensor([r.valid for r in rows])
        return torch.where(valid, difficulty_aware_advantage(correct, pass_rate, self.args.difficulty_advantage_cap), 0.0)

    def _add_reference_log_probs(self, batch: dict[str, Any], rows: list[RolloutRow], valid: torch.Tensor) -> None:
        """Per-token log-probs of each turn under the rollout policy (`old`, when generation and optimisation steps
        are misaligned, as TRL decides) and the reference (`beta > 0`, LoRA disabled), with the turn's frames."""
        generate_every = self.args.steps_per_generation * self.num_iterations
        needs_old = self.args.gradient_accumulation_steps % generate_every != 0
        if not needs_old and self.beta == 0.0:
            return
        indices = valid.nonzero().flatten().tolist()
        for turn in TURNS:
            turns = [getattr(rows[i], turn) for i in indices]
            if needs_old:
                batch[f"{turn}_old_logps"] = self._scatter(rows, indices, self._turn_log_probs(turns, reference=False))
            if self.beta != 0.0:
                batch[f"{turn}_ref_logps"] = self._scatter(rows, indices, self._turn_log_probs(turns, reference=True))

    @staticmethod
    def _scatter(rows: list[RolloutRow], indices: list[int], values: list[torch.Tensor]) -> list[torch.Tensor | None]:
        out: list[torch.Tensor | None] = [None] * len(rows)
        for i, value in zip(indices, values):
            out[i] = value
        return out

    @torch.no_grad()
    def _turn_log_probs(self, turns: list[Turn], *, reference: bool) -> list[torch.Tensor]:
        """`(C_i,)` log-probs of each turn's completion, in chunks of the per-device batch size."""
        out: list[torch.Tensor] = []
        size = self.args.per_device_train_batch_size
        for start in range(0, len(turns), size):
            chunk = turns[start : start + size]
            inputs = self._turn_batch(chunk)
            ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
            mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)
            model = WithVisualInputs(self.model, inputs["visual_inputs"])
            if reference:
                with use_adapter(self.accelerator.unwrap_model(self.model), adapter_name=None):
                    logps, _, _ = self._get_per_token_logps_and_entropies(model, ids, mask, ids.shape[1] - inputs["prompt_ids"].shape[1])  # fmt: skip
            else:
                logps, _, _ = self._get_per_token_logps_and_entropies(model, ids, mask, ids.shape[1] - inputs["prompt_ids"].shape[1])  # fmt: skip
            out += [row[: len(turn.completion_ids)].cpu() for row, turn in zip(logps, chunk)]
        return out

    def _turn_batch(self, turns: Sequence[Turn]) -> dict[str, Any]:
        return build_turn_batch(
            self.msjoe_model.processor, turns, pad_token_id=self._tokenizer.pad_token_id,
            device=self.accelerator.device, dtype=self.msjoe_model.mllm.dtype,
        )  # fmt: skip

    # ------------------------------------------------------------------ loss (TRL 1.16 private hook)
    def _compute_loss(self, model: Any, inputs: dict[str, Any]) -> torch.Tensor:
        """Sampler REINFORCE term, plus (joint stage) TRL's GRPO loss on both MLLM turns with their own frames."""
        rows = inputs["valid"].nonzero().flatten().tolist()
        if not rows:  # every video of this micro-batch failed: a zero loss that still reaches the trained weights
            return sum(p.sum() for p in self.model.parameters() if p.requires_grad) * 0.0
        loss = self._sampler_loss(inputs, rows)
        if self.args.training_stage == "joint":
            loss = loss + self._mllm_loss(model, inputs, rows)
        return loss

    def _sampler_loss(self, inputs: dict[str, Any], rows: list[int]) -> torch.Tensor:
        """-mean_i A_i * sum_k log p(x_k) over the valid rows (paper §2.4), scaled for gradient accumulation."""
        log_probs = sampler_log_probs(
            self.msjoe_model.sampler, [inputs["similarities"][i] for i in rows], [inputs["draw_orders"][i] for i in rows],
            form=self.args.sampler_log_prob_form,
        )  # fmt: skip  (B,)
        advantages = inputs["sampler_advantages"][rows].to(log_probs.device)
        loss = -(advantages * log_probs).mean() * self.args.sampler_loss_weight
        mode = "train" if self.model.training else "eval"
        self._metrics[mode]["sampler/loss"].append(self.accelerator.gather(loss.detach()).mean().item())
        self._metrics[mode]["sampler/log_prob"].append(self.accelerator.gather(log_probs.detach().mean()).mean().item())
        return loss / (self.current_gradient_accumulation_steps if mode == "train" else 1.0)

    def _mllm_loss(self, model: Any, inputs: dict[str, Any], rows: list[int]) -> torch.Tensor:
        """TRL's `_compute_loss` on each turn (and frame shape), combined as TRL would over all those sequences."""
        chunks = []
        for turn in TURNS:
            groups: dict[tuple[int, ...], list[int]] = {}
            for i in rows:
                t = inputs[f"{turn}_turns"][i]
                groups.setdefault((t.max_pixels, *t.frames.shape), []).append(i)
            for members in groups.values():
                chunks.append((turn, members, self._turn_batch([inputs[f"{turn}_turns"][i] for i in members])))
        num_rows = sum(len(members) for _, members, _ in chunks)
        num_tokens = sum(float(batch["completion_mask"].sum()) for _, _, batch in chunks)
        loss = 0.0
        for turn, members, batch in chunks:
            turn_inputs = {
                "prompt_ids": batch["prompt_ids"], "prompt_mask": batch["prompt_mask"],
                "completion_ids": batch["completion_ids"], "completion_mask": batch["completion_mask"],
                "advantages": inputs["advantages"][members].to(self.accelerator.device),
                "num_items_in_batch": inputs["num_items_in_batch"],
            }  # fmt: skip
            for kind, key in (("old", "old_per_token_logps"), ("ref", "ref_per_token_logps")):
                if f"{turn}_{kind}_logps" in inputs:
                    turn_inputs[key] = _pad_rows([inputs[f"{turn}_{kind}_logps"][i] for i in members], batch["completion_ids"].shape[1]).to(self.accelerator.device)  # fmt: skip
            turn_loss = self._trl_turn_loss(WithVisualInputs(model, batch["visual_inputs"]), turn_inputs, turn)
            if self.loss_type in _ROW_MEAN_LOSSES:
                weight = len(members) / num_rows
            elif self.loss_type in _TOKEN_MEAN_LOSSES:
                weight = float(batch["completion_mask"].sum()) / max(num_tokens, 1.0)
            else:  # _GLOBAL_TOKEN_LOSSES: already normalised by the generation batch's token count
                weight = 1.0
            loss = loss + weight * turn_loss
        return loss

    def _trl_turn_loss(self, model: WithVisualInputs, turn_inputs: dict[str, Any], turn: str) -> torch.Tensor:
        """TRL's own loss for one turn; the metrics it logs are filed under `mllm/<turn>_<name>`."""
        metrics = self._metrics["train" if self.model.training else "eval"]
        before = {key: len(values) for key, values in metrics.items()}
        loss = super()._compute_loss(model, turn_inputs)
        for key in list(metrics):
            if key.startswith(("mllm/", "sampler/", "rewards/", "data/")):
                continue
            new = metrics[key][before.get(key, 0) :]
            if new:
                del metrics[key][before.get(key, 0) :]
                metrics[f"mllm/{turn}_{key}"].extend(new)
            if not metrics[key]:
                del metrics[key]
        return loss

    # ------------------------------------------------------------------ logging
    def _log_mean(self, mode: str, name: str, values: Sequence[float]) -> None:
        """Mean of `values` over all processes (every process must call this with the same names, in order)."""
        stats = torch.tensor([float(sum(values)), float(len(values))], device=self.accelerator.device)
        total, count = self.accelerator.gather(stats).view(-1, 2).sum(dim=0).tolist()
        self._metrics[mode][name].append(total / count if count else float("nan"))

    def _log_rollouts(self, rows: list[RolloutRow], mode: str) -> None:
        """`sampler/*` (frame-weight entropy, selected-frame spread), `mllm/*` (parse failures, lengths), `data/*`."""
        good = [r for r in rows if r.valid]
        self._log_mean(mode, "sampler/weight_entropy", [frame_weight_entropy(r.logits) for r in good])
        self._log_mean(mode, "sampler/selected_spread", [selected_spread(r.key_indices, len(r.logits)) for r in good])
        self._log_mean(mode, "mllm/query_parse_failures", [float(r.queries_fallback) for r in good])
        self._log_mean(mode, "mllm/num_queries", [float(len(r.queries)) for r in good])
        self._log_mean(mode, "mllm/query_length", [float(len(r.query.completion_ids)) for r in good])
        self._log_mean(mode, "mllm/answer_length", [float(len(r.answer.completion_ids)) for r in good])
        skipped = self.accelerator.gather(torch.tensor(float(len(rows) - len(good)), device=self.accelerator.device))
        self._metrics[mode]["data/skipped_rollouts"].append(skipped.sum().item())
        tokens = sum(len(t.completion_ids) + t.frames.shape[0] for r in good for t in (r.query, r.answer))
        if mode == "train":
            self.state.num_input_tokens_seen += int(self.accelerator.gather(torch.tensor(tokens, device=self.accelerator.device)).sum())  # fmt: skip

    # ------------------------------------------------------------------ evaluation (issue part 8)
    def evaluate(
        self, eval_dataset: Dataset | Mapping[str, Dataset] | str | None = None, ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> dict[str, float]:  # fmt: skip
        """Multiple-choice accuracy with the learned frame selection and (`eval_uniform_baseline`) uniform frames,
        overall, by question type and by duration bucket, through the shipped `msjoe_accuracy` metric."""
        dataset = self.eval_dataset[eval_dataset] if isinstance(eval_dataset, str) else (eval_dataset or self.eval_dataset)
        if dataset is None:
            raise ValueError("evaluate() needs an eval_dataset (pass one to the trainer or to evaluate()).")
        if isinstance(dataset, Mapping):
            metrics: dict[str, float] = {}
            for name, split in dataset.items():
                metrics.update(self.evaluate(split, ignore_keys, f"{metric_key_prefix}_{name}"))
            return metrics
        dataset = _prepare_dataset(dataset, "eval_dataset", None)
        was_training = self.model.training
        self.model.eval()
        try:
            rows = [dataset[i] for i in range(self.accelerator.process_index, len(dataset), self.accelerator.num_processes)]
            selections = ["msjoe", "uniform"] if self.args.eval_uniform_baseline else ["msjoe"]
            with trl_unwrap_model_for_generation(self.model_wrapped, self.accelerator, gather_deepspeed3_params=self.args.ds3_gather_for_generation):  # fmt: skip
                metrics = evaluate_selections(
                    self.msjoe_model, rows, selections=selections, batch_size=self.args.per_device_eval_batch_size,
                    bucket_edges=self.args.eval_duration_buckets, gather=gather_object, prefix=metric_key_prefix,
                )  # fmt: skip
            self.log(metrics)  # in eval mode, so TRL's `log` does not mix in the training metrics
        finally:
            self.model.train(was_training)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    # ------------------------------------------------------------------ saving and resuming
    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: torch.nn.Module | None = None) -> None:
        """Reload a full checkpoint through `from_pretrained` (transformers 5.23, private hook).

        `Trainer` reloads weights with a raw `load_state_dict`, which misses the key renaming transformers applies
        when it saves some MLLMs (Qwen2.5-VL stores `model.layers.*` for `model.language_model.layers.*`): the MLLM
        would silently keep its current weights. LoRA, FSDP and DeepSpeed checkpoints keep Trainer's own path.
        """
        if model is not None or is_peft_model(self.model) or self.is_fsdp_enabled or self.is_deepspeed_enabled:
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        target = self.msjoe_model
        loaded = MSJoEForVideoQA.from_pretrained(resume_from_checkpoint, processor=target.processor, dtype=target.dtype)
        target.load_state_dict(loaded.state_dict())  # strict: every MLLM and sampler weight is restored

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Checkpoints (internal calls) as TRL/Trainer save them; the final save is a loadable MSJoE checkpoint.

        With LoRA, the final save merges the adapter into the MLLM (in place: call it when training is done) and
        writes the full `MSJoEForVideoQA` (`MSJoEForVideoQA.from_pretrained(output_dir)` works).
        """
        if _internal_call or not is_peft_model(self.model):
            return super().save_model(output_dir, _internal_call)
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        merged = self.accelerator.unwrap_model(self.model).merge_and_unload()
        if self.args.should_save:
            merged.save_pretrained(output_dir)
        if self.args.push_to_hub:
            self.push_to_hub(commit_message="Model save", revision=self.args.hub_revision)


class EpochSeededSampler(Sampler):
    """Wraps TRL 1.16's `RepeatSampler` so that each epoch's order depends on `seed + epoch` only.

    `RepeatSampler` draws every epoch from one generator stream, and `Trainer` skips the finished epochs of a resumed
    run without iterating them: the resumed run would replay epoch 1's order. `Trainer`/accelerate call `set_epoch`
    at every epoch, which reseeds the generator here, so resumed and uninterrupted runs see the same batches.
    """

    def __init__(self, sampler: Sampler):
        self.sampler = sampler

    def set_epoch(self, epoch: int) -> None:
        if self.sampler.seed is not None:
            self.sampler.generator.manual_seed(self.sampler.seed + epoch)

    def __iter__(self) -> Iterator[int]:
        return iter(self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)


def _pad_rows(rows: Sequence[torch.Tensor], length: int) -> torch.Tensor:
    out = torch.zeros(len(rows), length)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def _check_supported(args: MSJoEGRPOConfig, peft_config: Any | None) -> None:
    """Configurations the MSJoE trainer does not support, each with the fix."""
    if args.use_vllm:
        raise ValueError("use_vllm=True: MSJoE's two-turn rollout (preview -> queries -> sampled frames -> answer) generates with transformers; vLLM rollouts are not supported yet. Set use_vllm=False.")  # fmt: skip
    if args.beta != 0.0 and peft_config is None:
        raise ValueError(f"beta={args.beta} needs a reference model: MSJoEGRPOTrainer uses the LoRA-disabled MLLM as the reference, so pass a peft_config (--use_peft), or set beta=0.0 (the paper's objective has no KL term).")  # fmt: skip
    if args.multi_objective_aggregation != "sum_then_normalize":
        raise ValueError(f"multi_objective_aggregation={args.multi_objective_aggregation!r} is not supported by MSJoEGRPOTrainer; use 'sum_then_normalize' (the paper's r = r_acc + r_format + r_info).")  # fmt: skip
    if args.cast_lm_head_to_fp32:
        raise ValueError("cast_lm_head_to_fp32=True is not supported by MSJoEGRPOTrainer (TRL casts `model.lm_head`, which belongs to the wrapped MLLM); set it to False.")  # fmt: skip
    if args.ddp_find_unused_parameters:
        raise ValueError("ddp_find_unused_parameters=True breaks MSJoE under DDP (the sampler's parameters are used outside the model's forward, which DDP then marks ready twice); leave it unset.")  # fmt: skip
    if args.training_stage == "sampler_pretrain" and peft_config is not None:
        raise ValueError("training_stage='sampler_pretrain' freezes the MLLM, so a LoRA adapter would never train: drop peft_config (--use_peft) for stage 1.")  # fmt: skip


def _peft_config_for_msjoe(peft_config: Any | None) -> Any | None:
    """MSJoE is no causal LM: drop `task_type` (PEFT's CAUSAL_LM wrapper needs `prepare_inputs_for_generation`),
    and add the sampler to `modules_to_save` so it trains fully next to the MLLM's adapter."""
    if peft_config is None:
        return None
    modules = list(peft_config.modules_to_save or [])
    if "sampler" not in modules:
        modules.append("sampler")
    if peft_config.task_type is not None:
        logger.info(f"LoRA task_type={peft_config.task_type} ignored: MSJoE wraps the MLLM, the adapter targets its layers.")
    return dataclasses.replace(peft_config, task_type=None, modules_to_save=modules)


def _prepare_dataset(dataset: Any, name: str, pass_rate_column: str | None) -> Any:
    """Check the columns (and, for map-style datasets, every row) up front; keep videos as paths/bytes."""
    if dataset is None:
        return None
    columns = dataset.column_names  # None for a stream of unknown features: its rows are checked batch by batch
    missing = [c for c in (*QA_COLUMNS, *([pass_rate_column] if pass_rate_column else [])) if c not in (columns or [])]
    if columns is not None and missing:
        hint = " Stage 1 needs the base MLLM's pass rate per question (see `pass_rate_column`)." if pass_rate_column in missing else ""  # fmt: skip
        raise ValueError(f"{name} lacks the column(s) {missing}; MSJoE training rows need {list(QA_COLUMNS)}.{hint}")
    features = getattr(dataset, "features", None) or {}
    if isinstance(features.get("video"), Video) and features["video"].decode:
        dataset = dataset.cast_column("video", Video(decode=False))  # paths/bytes: cacheable, cheap to batch
    if isinstance(dataset, Dataset):
        checked = dataset.select_columns([c for c in ("options", "answer", pass_rate_column) if c])
        problems = [p for i, row in enumerate(checked) if (p := check_qa_row(row, i, pass_rate_column=pass_rate_column))]
        if problems:
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            raise ValueError(f"{name}: {'; '.join(problems[:5])}{more}. Fix or filter these rows, e.g. `dataset.filter(...)`.")  # fmt: skip
    return dataset
