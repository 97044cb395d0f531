"""`MSJoEGRPOTrainer`: joint RL of the MLLM (GRPO) and the frame sampler (REINFORCE) on the installed TRL.

Paper §2 (hf.co/papers/2602.22932). A subclass of TRL's `GRPOTrainer`, not a copy: TRL keeps the training
loop, batching (`RepeatSampler`, generation buffering), reward calling, the GRPO/DAPO/... loss arithmetic,
logging and checkpointing. MSJoE overrides only

- `_generate_and_score_completions` (TRL 1.16, private): the two-turn rollout of `grpo_rollout.py`, rewards
  through TRL's `_calculate_rewards`, group-normalised advantages, and the sampler's advantage;
- `_compute_loss` (TRL 1.16, private; in `grpo_loss.py`): the sampler's REINFORCE term -A * sum_k log p(x_k)
  (PPO-clipped on reused draws) and TRL's own `_compute_loss` once per MLLM turn chunk, each scored with the frames
  it was generated from (TRL's loss path drops video inputs, ENV.md §6), both through the (DDP-)wrapped model's
  forward; `_get_per_token_logps_and_entropies` / `get_high_entropy_mask` pass through, recording what TRL's loss
  computed so that its entropy bonus and aux loss count once;
- `_set_signature_columns_if_needed`, `_get_train_sampler`, `create_optimizer` (the sampler's own parameter
  groups), `evaluate` (accuracy with learned vs uniform frames), and the saving hooks `save_model`, `_save`,
  `create_model_card`, `_load_from_checkpoint`, `_load_best_model` (MSJoE checkpoints with the MSJoE card; LoRA
  merged at the end).

Where TRL's logic is inline in a private method and MSJoE mirrors it (old log-probs condition, reward metrics,
completion log, reward-function log flush), the mirror names the TRL source location. The private overrides and
mirrored blocks are pinned by drift tests (tests/test_grpo_trainer.py: signatures and source statements) that fail
when TRL changes them; checks that run before training live in `grpo_setup.py`.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from accelerate.utils import extract_model_from_parallel, gather, gather_object, is_peft_model
from datasets import Dataset, IterableDataset
from peft.utils import ModulesToSaveWrapper
from torch.utils.data import Sampler
from transformers import TrainerCallback
from transformers.utils import logging
from trl import GRPOTrainer
from trl.trainer.utils import nanstd

from ._compat import (
    EpochSeededRepeatSampler,
    route_fused_lm_head_to_mllm,
    trl_unwrap_model_for_generation,
    upstream_gradient_checkpointing_flag_ok,
)
from .grpo_config import DEFAULT_BEST_MODEL_METRIC, MSJoEGRPOConfig
from .grpo_evaluation import evaluate_selections
from .grpo_loss import MSJoEGRPOLossMixin
from .grpo_rollout import (
    TURNS,
    MSJoERollout,
    RolloutRow,
    Turn,
    build_turn_batch,
    frame_weight_entropy,
    selected_spread,
)
from .grpo_setup import apply_frame_overrides, check_trainer_setup, peft_config_for_msjoe, prepare_qa_dataset
from .loading import load_msjoe_model
from .model_card import render_model_card
from .modeling_msjoe import MSJoEForVideoQA
from .rewards import (
    QA_COLUMNS,
    answer_is_correct,
    check_qa_row,
    default_reward_funcs,
    difficulty_aware_advantage,
    group_advantages,
)

logger = logging.get_logger(__name__)

__all__ = ["MSJoEGRPOTrainer"]

TRAINING_ARGS_FILE = "training_args.json"  # the training arguments, saved with every checkpoint (JSON, no pickle)
_ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")


class MarkSamplerTrained(TrainerCallback):
    """Sets `config.sampler_is_trained` at the first optimizer step, so checkpoints and evaluation know it."""

    def __init__(self, config: Any):
        self.config = config

    def on_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.config.sampler_is_trained = True


class MSJoEGRPOTrainer(MSJoEGRPOLossMixin, GRPOTrainer):
    """Trains `MSJoEForVideoQA` with MSJoE's two stages (`args.training_stage`).

    Args:
        model: an `MSJoEForVideoQA`, or a name/path for `load_msjoe_model` (an MSJoE checkpoint or an MLLM; loaded
            with `args.model_init_kwargs`).
        reward_funcs: TRL-style reward functions; default `default_reward_funcs(args)` weighted by the
            `*_reward_weight` fields (then `args.reward_weights` must be unset).
        args: an `MSJoEGRPOConfig` (never modified: the trainer works on a copy).
        train_dataset / eval_dataset: rows with `video`, `question`, `options` (plain texts, lettered by position),
            `answer` (and in stage 1 the pass rate column); `question_type` and `duration_seconds` feed the
            evaluation breakdowns.
        callbacks / optimizers: as in `transformers.Trainer`.
        peft_config: a `peft.LoraConfig` for the MLLM (joint stage); the sampler is added to `modules_to_save`
            so it keeps training fully; without `target_modules`, the language model's attention projections.
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
        args = args if args is not None else MSJoEGRPOConfig(output_dir="msjoe-grpo")
        if not isinstance(args, MSJoEGRPOConfig):
            raise TypeError(f"`args` must be an MSJoEGRPOConfig, got {type(args).__name__}.")
        args = copy.copy(args)  # the trainer adjusts its own copy: the caller's object is never changed
        if isinstance(model, (str, os.PathLike)):
            model = load_msjoe_model(model, mllm_kwargs=args.model_init_kwargs)
            args.model_init_kwargs = None  # used: TRL would warn that they are ignored for a built model
        if not isinstance(model, MSJoEForVideoQA):
            raise TypeError(
                f"MSJoEGRPOTrainer trains an MSJoEForVideoQA, got {type(model).__name__}; wrap your MLLM with "
                "MSJoEForVideoQA.from_mllm."
            )
        if model.processor is None:
            raise ValueError(
                "The MSJoE model has no processor; load it with MSJoEForVideoQA.from_pretrained/from_mllm."
            )
        check_trainer_setup(args, peft_config)
        # Every process runs the same forwards and gives every trained weight a gradient (see `_compute_loss`).
        args.ddp_find_unused_parameters = False
        apply_frame_overrides(model.config, args.model_config_overrides())
        train_dataset = prepare_qa_dataset(train_dataset, "train_dataset", self._stage_pass_rate_column(args))
        if isinstance(eval_dataset, Mapping):
            if args.metric_for_best_model == DEFAULT_BEST_MODEL_METRIC:
                raise ValueError(
                    f"`metric_for_best_model`={DEFAULT_BEST_MODEL_METRIC!r} does not exist with several eval datasets: "
                    "their metrics are named `eval_<name>_msjoe/accuracy`; set metric_for_best_model to one of "
                    f"{[f'eval_{name}_msjoe/accuracy' for name in eval_dataset]}."
                )
            eval_dataset = {k: prepare_qa_dataset(v, f"eval_dataset[{k!r}]", None) for k, v in eval_dataset.items()}
        else:
            eval_dataset = prepare_qa_dataset(eval_dataset, "eval_dataset", None)
        if args.training_stage == "sampler_pretrain":
            model.mllm.requires_grad_(False)  # stage 1: the MLLM is the frozen environment
        if reward_funcs is None:
            reward_funcs = default_reward_funcs(args)
            weights = [args.accuracy_reward_weight, args.format_reward_weight, args.info_reward_weight]
            if args.reward_weights is not None and list(args.reward_weights) != weights:
                raise ValueError(
                    f"`reward_weights`={args.reward_weights} conflicts with the default MSJoE rewards' "
                    f"`accuracy_reward_weight`, `format_reward_weight` and `info_reward_weight` ({weights}); unset "
                    "`reward_weights`."
                )
            args.reward_weights = weights
        with upstream_gradient_checkpointing_flag_ok():  # PEFT's wrapper reads the deprecated flag
            super().__init__(
                model=model,
                reward_funcs=reward_funcs,
                args=args,
                train_dataset=train_dataset,
                eval_dataset=eval_dataset,
                processing_class=model.processor.tokenizer,
                callbacks=callbacks,
                optimizers=optimizers,
                peft_config=peft_config_for_msjoe(peft_config, model),
            )
        # TRL sees the tokenizer only: MSJoEProcessor (prompts + frames) is used by the rollout and the loss.
        route_fused_lm_head_to_mllm(
            self.msjoe_model, temperature=self.temperature, cast_lm_head_to_fp32=args.cast_lm_head_to_fp32
        )
        self._rollout = MSJoERollout(self.msjoe_model, self.generation_config)
        self._skipped_rollouts_total = 0  # `data/skipped_rollouts_total`: every process counts all processes' skips
        if args.sampler_loss_weight > 0:
            self.add_callback(MarkSamplerTrained(self.msjoe_model.config))
        _ = self.msjoe_model.clip_scorer  # load the frozen CLIP now: fail fast, and keep its init out of rollouts

    # ------------------------------------------------------------------ the model behind the wrappers
    @property
    def msjoe_model(self) -> MSJoEForVideoQA:
        """The `MSJoEForVideoQA` being trained (inside the PEFT wrapper when LoRA is used)."""
        model = extract_model_from_parallel(self.model)  # what `accelerator.unwrap_model` does, usable during __init__
        return model.get_base_model() if is_peft_model(model) else model

    def trained_sampler(self) -> torch.nn.Module:
        """The sampler whose weights train (with LoRA: the `modules_to_save` copy PEFT trains)."""
        sampler = self.msjoe_model.sampler
        return sampler.modules_to_save[sampler.active_adapter] if isinstance(sampler, ModulesToSaveWrapper) else sampler

    @staticmethod
    def _stage_pass_rate_column(args: MSJoEGRPOConfig) -> str | None:
        return args.pass_rate_column if args.training_stage == "sampler_pretrain" else None

    # ------------------------------------------------------------------ documented hooks
    def _set_signature_columns_if_needed(self) -> None:
        """Keep the MSJoE columns if `remove_unused_columns=True` (TRL keeps only prompt/image columns)."""
        if self._signature_columns is None:
            self._signature_columns = [
                *QA_COLUMNS,
                "id",
                "question_type",
                "duration_seconds",
                self.args.pass_rate_column,
            ]

    def _get_train_sampler(self, dataset: Dataset | None = None) -> Sampler:
        """TRL's `RepeatSampler`, reseeded from `seed + epoch` each epoch (see `_compat.EpochSeededRepeatSampler`)."""
        return EpochSeededRepeatSampler(super()._get_train_sampler(dataset))

    def create_optimizer(self, model: torch.nn.Module | None = None) -> torch.optim.Optimizer:
        """Trainer's optimizer, with the sampler moved to its own groups (`sampler_learning_rate`): weight decay on
        its convolution weights only, not on biases or GroupNorm parameters.

        An optimizer passed in `optimizers=(optimizer, scheduler)` is used as given (never regrouped); it must then
        hold the sampler's trainable parameters, which both stages train.
        """
        if self.optimizer is not None:  # the user's (checked, never regrouped), or ours from an earlier call
            if not any(group.get("msjoe_sampler") for group in self.optimizer.param_groups):
                self._check_optimizer_trains_the_sampler(self.optimizer)
            return super().create_optimizer(model)
        optimizer = super().create_optimizer(model)
        decay, no_decay = [], []
        for module in self.trained_sampler().modules():
            for name, param in module.named_parameters(recurse=False):
                if param.requires_grad:
                    norm = isinstance(module, (torch.nn.GroupNorm, torch.nn.LayerNorm))
                    (no_decay if norm or name == "bias" else decay).append(param)
        sampler_ids = {id(p) for p in decay + no_decay}
        for group in optimizer.param_groups:
            group["params"] = [p for p in group["params"] if id(p) not in sampler_ids]
        optimizer.param_groups[:] = [group for group in optimizer.param_groups if group["params"]]
        for params, weight_decay in ((decay, self.args.weight_decay), (no_decay, 0.0)):
            if params:
                group = {"params": params, "lr": self.args.sampler_learning_rate, "weight_decay": weight_decay}
                optimizer.add_param_group({**group, "msjoe_sampler": True})
        return optimizer

    def _check_optimizer_trains_the_sampler(self, optimizer: torch.optim.Optimizer) -> None:
        """A user optimizer that misses sampler weights would silently leave them untrained: refuse it."""
        if self.args.sampler_loss_weight == 0:
            return
        held = {id(p) for group in optimizer.param_groups for p in group["params"]}
        missing = [
            name for name, p in self.trained_sampler().named_parameters() if p.requires_grad and id(p) not in held
        ]
        if missing:
            raise ValueError(
                f"The optimizer passed in `optimizers` does not hold {len(missing)} trainable sampler parameter(s) "
                f"(e.g. {missing[0]!r}), which training_stage={self.args.training_stage!r} trains. Add a parameter group "
                "over `trainer.trained_sampler().parameters()` (with LoRA that is PEFT's `modules_to_save` copy, built "
                "by the trainer), or pass optimizers=(None, None) to get the trainer's groups with "
                "`sampler_learning_rate`."
            )

    # ------------------------------------------------------------------ rollout + rewards (TRL 1.16 private hook)
    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        """Two-turn rollouts of this process's rows, their rewards and advantages, as a batch TRL can buffer/split."""
        mode = "train" if self.model.training else "eval"
        for index, row in enumerate(inputs):
            problem = check_qa_row(row, index, pass_rate_column=self._stage_pass_rate_column(self.args))
            if problem:
                raise ValueError(f"Bad training row: {problem}. Fix or filter the dataset.")
        with (
            trl_unwrap_model_for_generation(
                self.model_wrapped, self.accelerator, gather_deepspeed3_params=self.args.ds3_gather_for_generation,
                generation_kwargs=self.generation_kwargs,
                gradient_checkpointing_kwargs=self.args.gradient_checkpointing_kwargs,
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
        batch: dict[str, Any] = {
            "advantages": advantages,
            "sampler_advantages": self._sampler_advantages(inputs, rows, advantages),
            "valid": valid,
            "similarities": [r.similarity for r in rows],
            "draw_orders": [r.draw_order for r in rows],
            **{f"{turn}_turns": [getattr(r, turn) for r in rows] for turn in TURNS},
        }
        tokens = sum(len(getattr(r, t).completion_ids) for r in rows if r.valid for t in TURNS)
        batch["num_items_in_batch"] = self.accelerator.gather(
            torch.tensor(tokens, device=self.accelerator.device)
        ).sum()
        if self._needs_old_log_probs():
            batch["sampler_old_log_probs"] = self._rollout_draw_log_probs(rows)
        if self.args.training_stage == "joint":
            self._add_turn_log_probs(batch, rows, valid)
        self._log_rollouts(rows, mode)
        return batch

    @contextlib.contextmanager
    def _seeded_rollout_rng(self, inputs: list[dict[str, Any]]) -> Iterator[None]:
        """Seed the rollout's randomness (sampled queries, frame draws, answers) from (seed, process, global step,
        batch) and leave the global RNG untouched: a run resumed from a checkpoint repeats the uninterrupted one."""
        parts = [
            self.args.seed,
            self.accelerator.process_index,
            self.state.global_step,
            *(ex["question"] for ex in inputs),
        ]
        seed = int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "little") % (2**63)
        device = self.accelerator.device
        devices = (
            [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
        )
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield

    def _score(
        self, inputs: list[dict[str, Any]], rows: list[RolloutRow], valid: torch.Tensor, mode: str
    ) -> torch.Tensor:
        """Rewards through TRL's `_calculate_rewards` (rollout fields as extra columns), then this process's
        group-normalised advantages `(N,)`."""
        num_queries = self.msjoe_model.config.num_queries
        columns = [
            {**ex, "query_completion": r.query.text if r.query else "", "num_queries": num_queries,
             "similarity": r.similarity, "queries": r.queries, "num_written_queries": r.num_written_queries}
            for ex, r in zip(inputs, rows)
        ]  # fmt: skip
        prompts = [r.answer.prompt if r.valid else "" for r in rows]
        completions = [r.answer.text if r.valid else "" for r in rows]
        completion_ids = [r.answer.completion_ids.tolist() if r.valid else [] for r in rows]
        rewards_per_func = self._calculate_rewards(columns, prompts, completions, completion_ids)  # (N_all, F)
        rewards_per_func[~gather(valid.to(self.accelerator.device))] = torch.nan  # no rollout: no reward
        num_generations = self.num_generations if mode == "train" else self.num_generations_eval
        advantages, rewards, std = group_advantages(
            rewards_per_func, self.reward_weights, num_generations, self.scale_rewards
        )
        process = self.accelerator.process_index
        # TRL 1.16's reward metrics (`GRPOTrainer._generate_and_score_completions`, trl/trainer/grpo_trainer.py
        # ~L2818-2827, inline there); pinned by tests/test_grpo_trainer.py::test_compat_trl_inline_blocks_msjoe_mirrors.
        for i, name in enumerate(self.reward_func_names):
            self._metrics[mode][f"rewards/{name}/mean"].append(torch.nanmean(rewards_per_func[:, i]).item())
            self._metrics[mode][f"rewards/{name}/std"].append(nanstd(rewards_per_func[:, i]).item())
        self._metrics[mode]["reward"].append(torch.nanmean(rewards).item())
        self._metrics[mode]["reward_std"].append(nanstd(rewards).item())
        self._metrics[mode]["frac_reward_zero_std"].append(
            torch.isclose(std, torch.zeros_like(std)).float().mean().item()
        )
        if self.log_completions:
            self._record_completions(rows, rewards_per_func, advantages)
        self._flush_reward_function_logs(mode, len(rows))
        return advantages[process * len(rows) : (process + 1) * len(rows)].cpu()

    def _record_completions(
        self, rows: list[RolloutRow], rewards_per_func: torch.Tensor, advantages: torch.Tensor
    ) -> None:
        """Fill TRL's completion log (`log_completions`): the question, then both turns' outputs.

        Mirrors the "Log prompts and completions" block of TRL 1.16's `GRPOTrainer._generate_and_score_completions`
        (trl/trainer/grpo_trainer.py ~L2832-2837, inline there) with MSJoE's prompt and completion texts; pinned by
        tests/test_grpo_trainer.py::test_compat_trl_inline_blocks_msjoe_mirrors.
        """
        prompts = [r.question for r in rows]
        completions = [f"{r.query.text}\n---\n{r.answer.text}" if r.valid else f"<skipped: {r.error}>" for r in rows]
        self._logs["prompt"].extend(gather_object(prompts))
        self._logs["completion"].extend(gather_object(completions))
        for i, name in enumerate(self.reward_func_names):
            self._logs["rewards"][name].extend(rewards_per_func[:, i].tolist())
        self._logs["advantages"].extend(advantages.tolist())

    def _flush_reward_function_logs(self, mode: str, num_rows: int) -> None:
        """Hand on what reward functions sent through TRL's `log_extra` / `log_metric` keyword arguments: extra
        completion-table columns (with `log_completions`) and metrics averaged over processes; then clear them.

        Mirrors the two "Flush user-logged ..." blocks of TRL 1.16's `GRPOTrainer._generate_and_score_completions`
        (trl/trainer/grpo_trainer.py ~L2839-2855, inline there): keys are gathered and sorted so that every process
        makes the same collectives in the same order. Pinned by
        tests/test_grpo_trainer.py::test_compat_trl_inline_blocks_msjoe_mirrors.
        """
        if self.log_completions:  # the table's columns must stay aligned with the rows `_record_completions` adds
            for column in sorted(set(gather_object(list(self._pending_extra_logs)))):
                values = self._pending_extra_logs.get(column, [None] * num_rows)
                self._logs["extra"][column].extend(gather_object(values))
        self._pending_extra_logs.clear()
        for name in sorted(set(gather_object(list(self._pending_metrics)))):
            self._log_mean(mode, name, self._pending_metrics.get(name, []))
        self._pending_metrics.clear()

    def _sampler_advantages(
        self, inputs: list[dict[str, Any]], rows: list[RolloutRow], advantages: torch.Tensor
    ) -> torch.Tensor:
        """Joint stage: the rollout's group-normalised advantage. Stage 1: the difficulty-aware advantage (DR)."""
        if self.args.training_stage == "joint":
            return advantages.clone()
        correct = torch.tensor(
            [r.valid and answer_is_correct(r.answer.text, ex["answer"], ex["options"]) for ex, r in zip(inputs, rows)]
        )
        pass_rate = torch.tensor([float(ex[self.args.pass_rate_column]) for ex in inputs])
        valid = torch.tensor([r.valid for r in rows])
        dr = difficulty_aware_advantage(correct, pass_rate, self.args.difficulty_advantage_cap)
        return torch.where(valid, dr, 0.0)

    def _turn_batch(self, turns: Sequence[Turn]) -> dict[str, Any]:
        return build_turn_batch(
            self.msjoe_model.processor, turns, pad_token_id=self._tokenizer.pad_token_id,
            device=self.accelerator.device, dtype=self.msjoe_model.mllm.dtype,
        )  # fmt: skip

    # ------------------------------------------------------------------ logging
    def _log_mean(self, mode: str, name: str, values: Sequence[float]) -> None:
        """Mean of `values` over all processes (every process must call this with the same names, in order)."""
        stats = torch.tensor([float(sum(values)), float(len(values))], device=self.accelerator.device)
        total, count = self.accelerator.gather(stats).view(-1, 2).sum(dim=0).tolist()
        self._metrics[mode][name].append(total / count if count else float("nan"))

    def _log_rollouts(self, rows: list[RolloutRow], mode: str) -> None:
        """`sampler/*` (frame-weight entropy, selected-frame spread), `mllm/*` (parse failures, lengths), `data/*`
        (skipped rollouts of this generation batch, and in total since this run started), and TRL's `num_tokens` (prompt and completion tokens of both turns, visual tokens included)."""
        good = [r for r in rows if r.valid]
        self._log_mean(mode, "sampler/weight_entropy", [frame_weight_entropy(r.logits) for r in good])
        self._log_mean(mode, "sampler/selected_spread", [selected_spread(r.key_indices, len(r.logits)) for r in good])
        self._log_mean(mode, "mllm/query_parse_failures", [float(r.queries_fallback) for r in good])
        self._log_mean(mode, "mllm/num_queries", [float(len(r.queries)) for r in good])
        self._log_mean(mode, "mllm/query_length", [float(len(r.query.completion_ids)) for r in good])
        self._log_mean(mode, "mllm/answer_length", [float(len(r.answer.completion_ids)) for r in good])
        device = self.accelerator.device
        skipped = self.accelerator.gather(torch.tensor(float(len(rows) - len(good)), device=device)).sum().item()
        self._metrics[mode]["data/skipped_rollouts"].append(skipped)  # per generation batch, averaged by TRL's log
        if mode == "train":
            self._skipped_rollouts_total += int(skipped)
            self._metrics[mode]["data/skipped_rollouts_total"] = [float(self._skipped_rollouts_total)]
        tokens = sum(t.prompt_length + len(t.completion_ids) for r in good for t in (r.query, r.answer))
        tokens = int(self.accelerator.gather(torch.tensor(tokens, device=device)).sum())
        if mode == "train":
            self.state.num_input_tokens_seen += tokens
        self._metrics[mode]["num_tokens"] = [self.state.num_input_tokens_seen]

    # ------------------------------------------------------------------ evaluation (issue part 8)
    def evaluate(
        self,
        eval_dataset: Dataset | Mapping[str, Dataset] | str | None = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> dict[str, float]:
        """Multiple-choice accuracy with the learned frame selection and (`eval_uniform_baseline`) uniform frames,
        overall, by question type and by duration bucket, through the shipped `msjoe_accuracy` metric."""
        dataset = (
            self.eval_dataset[eval_dataset] if isinstance(eval_dataset, str) else (eval_dataset or self.eval_dataset)
        )
        if dataset is None:
            raise ValueError("evaluate() needs an eval_dataset (pass one to the trainer or to evaluate()).")
        if isinstance(dataset, Mapping):
            metrics: dict[str, float] = {}
            for name, split in dataset.items():
                metrics.update(self.evaluate(split, ignore_keys, f"{metric_key_prefix}_{name}"))
            return metrics
        dataset = prepare_qa_dataset(dataset, "eval_dataset", None)
        was_training = self.model.training
        self.model.eval()
        try:
            process, count = self.accelerator.process_index, self.accelerator.num_processes
            rows = [dataset[i] for i in range(process, len(dataset), count)]
            selections = ["msjoe", "uniform"] if self.args.eval_uniform_baseline else ["msjoe"]
            show_progress = not self.args.disable_tqdm and self.accelerator.is_local_main_process
            with trl_unwrap_model_for_generation(
                self.model_wrapped, self.accelerator, gather_deepspeed3_params=self.args.ds3_gather_for_generation
            ):
                metrics = evaluate_selections(
                    self.msjoe_model, rows, selections=selections, batch_size=self.args.per_device_eval_batch_size,
                    bucket_edges=self.args.eval_duration_buckets, gather=gather_object, prefix=metric_key_prefix,
                    show_progress=show_progress,
                )  # fmt: skip
            self.log(metrics)  # in eval mode, so TRL's `log` does not mix in the training metrics
        finally:
            self.model.train(was_training)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    # ------------------------------------------------------------------ saving, model card and reloading
    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Checkpoints (internal calls) as Trainer saves them; the final save is a loadable MSJoE checkpoint.

        With LoRA, the final save merges the adapter into the MLLM (in place, and the trainer then holds the
        merged model: call it when training is done), writes the full `MSJoEForVideoQA` and removes adapter files
        left in the folder, so `MSJoEForVideoQA.from_pretrained(output_dir)` loads it and `push_to_hub` uploads it.
        """
        if not _internal_call:
            if is_peft_model(self.model):
                self.model = self.model_wrapped = self.accelerator.unwrap_model(self.model).merge_and_unload()
            folder = output_dir if output_dir is not None else self.args.output_dir
            if self.args.should_save:
                for name in _ADAPTER_FILES:
                    if os.path.isfile(os.path.join(folder, name)):
                        os.remove(os.path.join(folder, name))
        super().save_model(output_dir, _internal_call)

    def _save(self, output_dir: str | None = None, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        """An MSJoE folder (transformers 5.23 hook): weights, config, generation config, processor and the MSJoE
        model card, with the training arguments as JSON (no pickle). LoRA checkpoints keep Trainer's adapter
        format (the sampler is in its `modules_to_save`), which resuming reloads."""
        if is_peft_model(self.model):
            return super()._save(output_dir, state_dict)
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if not self.args.should_save:
            return None
        os.makedirs(output_dir, exist_ok=True)
        self.msjoe_model.save_pretrained(output_dir, state_dict=state_dict, repo_id=self.hub_model_id)
        with open(os.path.join(output_dir, TRAINING_ARGS_FILE), "w") as handle:
            handle.write(self.args.to_json_string())
        return None

    def create_model_card(
        self, model_name: str | None = None, dataset_name: str | None = None, tags: str | list[str] | None = None
    ) -> None:
        """The MSJoE model card (MLLM, CLIP, sampler, frame settings) in `output_dir`, in place of TRL's generic one,
        with the trainer's tags; called by TRL at each checkpoint and by `push_to_hub`."""
        if not self.is_world_process_zero():
            return
        model = self.msjoe_model
        repo_id = self.hub_model_id or model_name or os.path.basename(os.path.abspath(self.args.output_dir))
        sampler_params = sum(p.numel() for p in self.trained_sampler().parameters())
        card = render_model_card(model.config, repo_id=repo_id, sampler_params=sampler_params)
        extra = {tags} if isinstance(tags, str) else set(tags or [])
        card.data.tags = sorted({*(card.data.tags or []), *self._tag_names, *extra})
        if dataset_name:
            card.data.datasets = [dataset_name]
        os.makedirs(self.args.output_dir, exist_ok=True)
        card.save(os.path.join(self.args.output_dir, "README.md"))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: torch.nn.Module | None = None) -> None:
        """Reload a full checkpoint through `from_pretrained` (transformers 5.23, private hook).

        `Trainer` reloads weights with a raw `load_state_dict`, which misses the key renaming transformers applies
        when it saves some MLLMs (Qwen2.5-VL stores `model.layers.*` for `model.language_model.layers.*`): the MLLM
        would silently keep its current weights. LoRA, FSDP and DeepSpeed checkpoints keep Trainer's own path.
        """
        if model is not None or is_peft_model(self.model) or self.is_fsdp_enabled or self.is_deepspeed_enabled:
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        self._reload_msjoe_checkpoint(resume_from_checkpoint)
        return None

    def _load_best_model(self) -> None:
        """`load_best_model_at_end`: reload MLLM and sampler from the best checkpoint (transformers 5.23, private
        hook), through `from_pretrained` like `_load_from_checkpoint`: Trainer's non-strict `load_state_dict` would
        keep the last MLLM weights under renamed keys. LoRA (adapter with the sampler in `modules_to_save`), FSDP
        and DeepSpeed keep Trainer's path."""
        if is_peft_model(self.model) or self.is_fsdp_enabled or self.is_deepspeed_enabled:
            return super()._load_best_model()
        logger.info(f"Loading best model from {self.state.best_model_checkpoint} (score: {self.state.best_metric}).")
        self._reload_msjoe_checkpoint(self.state.best_model_checkpoint)
        return None

    def _reload_msjoe_checkpoint(self, folder: str) -> None:
        target = self.msjoe_model
        loaded = MSJoEForVideoQA.from_pretrained(folder, processor=target.processor, dtype=target.dtype)
        target.load_state_dict(loaded.state_dict())  # strict: every MLLM and sampler weight is restored
        target.config.sampler_is_trained = loaded.config.sampler_is_trained
