"""The loss half of `MSJoEGRPOTrainer` (TRL 1.16's private `_compute_loss` hook, paper §2.3-2.4), and the
rollout-time / reference log-probs it needs.

The sampler's REINFORCE term -A * sum_k log p(x_k) (PPO-clipped on reused draws), and TRL's own `_compute_loss`
once per MLLM turn chunk (rows of one frame shape), each chunk scored with the frames it was generated from and
combined as TRL combines rows for the chosen `loss_type` (`grpo_config.LOSS_AGGREGATION`), with TRL's entropy bonus
and MoE aux loss counted once. Both go through the (DDP-)wrapped model's forward, and every process runs the same
forwards and collectives whatever its rows (see `_compute_loss` and `_turn_log_probs`).
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass
from typing import Any

import torch
from trl import GRPOTrainer
from trl.trainer.utils import use_adapter

from .grpo_config import LOSS_AGGREGATION
from .grpo_rollout import (
    TURNS,
    RolloutRow,
    Turn,
    WithVisualInputs,
    draw_log_probs,
    group_by_shape,
    pad_similarities,
    placeholder_turn,
)
from .modeling_sampler import frame_log_prob

__all__ = ["MSJoEGRPOLossMixin"]

_PLACEHOLDER_FRAMES = 8  # candidate frames of the placeholder similarity a process without valid rows forwards


@dataclass
class _TurnCall:
    """One TRL `_compute_loss` call of `_mllm_loss`: its weight in the sum, its inputs, how many of its rows are
    real (the first ones), and what its forward computed (see `_trl_turn_loss`)."""

    weight: float
    inputs: dict[str, Any]
    num_real: int
    terms: dict[str, Any]


class MSJoEGRPOLossMixin(GRPOTrainer):
    """`_compute_loss` of `MSJoEGRPOTrainer`, which subclasses this; `super()._compute_loss` is TRL's.

    Uses the trainer's `msjoe_model`, `_turn_batch` (a turn chunk's inputs) and `_log_mean` (a metric averaged over
    processes).
    """

    _loss_call_terms: dict[str, Any] | None = None  # filled while `_trl_turn_loss` runs TRL's `_compute_loss`

    def _compute_loss(self, model: Any, inputs: dict[str, Any]) -> torch.Tensor:
        """Sampler REINFORCE term, plus (joint stage) TRL's GRPO loss on both MLLM turns with their own frames.

        Under DDP every process must run the same forwards and collectives, and give every trained weight a
        gradient, whatever its rows (a micro-batch whose videos all failed, turns split by frame shape): the
        sampler always runs once (on a placeholder if no row is valid, with a zero loss), the turn chunks are
        matched across processes in number and row count (padded with masked-out rows), and a process with no
        valid row adds a zero term touching every trained weight.
        """
        rows = inputs["valid"].nonzero().flatten().tolist()
        loss = self._sampler_loss(model, inputs, rows)
        if self.args.training_stage == "joint":
            loss = loss + self._mllm_loss(model, inputs, rows)
        return loss

    def _sampler_loss(self, model: Any, inputs: dict[str, Any], rows: list[int]) -> torch.Tensor:
        """The sampler's policy gradient over the valid rows, scaled for gradient accumulation (paper §2.4).

        -mean_i min(rho_i * A_i, clip(rho_i, 1 - epsilon, 1 + epsilon_high) * A_i), rho_i = p(draw_i) / p_rollout(draw_i):
        the PPO-clipped form of the paper's REINFORCE -A * sum_k log p(x_k), with GRPO's epsilons. When the batch is
        optimised by the policy that drew it (TRL's condition, see `MSJoEGRPOTrainer._needs_old_log_probs`), the
        rollout log-probability is the current one detached: rho = 1 and the gradient is exactly REINFORCE's. When
        draws are reused after an update (`steps_per_generation` > `gradient_accumulation_steps`, `num_iterations`
        > 1), the rollout-time log-probability (`sampler_old_log_probs`) corrects and bounds the stale update. The
        sampler runs through the wrapped model's forward, so DDP reduces its gradients.
        """
        similarities = [inputs["similarities"][i] for i in rows] or [torch.zeros(1, _PLACEHOLDER_FRAMES)]
        similarity, frame_mask, query_mask = pad_similarities(similarities, self.accelerator.device)  # (B, Q, T)
        logits = model(
            sampler_similarity=similarity, sampler_frame_mask=frame_mask, sampler_query_mask=query_mask
        ).frame_logits  # (B, T)
        mode = "train" if self.model.training else "eval"
        if rows:
            draw_orders = [inputs["draw_orders"][i] for i in rows]
            log_probs = draw_log_probs(logits, similarities, draw_orders, self.args.sampler_log_prob_form)  # (B,)
            old = inputs.get("sampler_old_log_probs")
            old_log_probs = log_probs.detach() if old is None else old[rows].to(log_probs.device)  # (B,)
            advantages = inputs["sampler_advantages"][rows].to(log_probs.device)  # (B,)
            ratio = torch.exp(log_probs - old_log_probs)
            clipped = ratio.clamp(1 - self.epsilon_low, 1 + self.epsilon_high)
            loss = -torch.minimum(ratio * advantages, clipped * advantages).mean() * self.args.sampler_loss_weight
            is_clipped = ((ratio < 1 - self.epsilon_low) & (advantages < 0)) | (
                (ratio > 1 + self.epsilon_high) & (advantages > 0)
            )  # (B,): rows whose gradient the clip removed
        else:  # no valid row here: a zero loss that still gives every sampler weight a gradient
            log_probs = is_clipped = logits.new_zeros(0)
            loss = logits.sum() * 0.0
        self._log_mean(mode, "sampler/loss", [loss.item()] * len(rows))
        self._log_mean(mode, "sampler/log_prob", log_probs.detach().tolist())
        self._log_mean(mode, "sampler/clip_ratio", is_clipped.float().tolist())
        return loss / (self.current_gradient_accumulation_steps if mode == "train" else 1.0)

    def _mllm_loss(self, model: Any, inputs: dict[str, Any], rows: list[int]) -> torch.Tensor:
        """TRL's `_compute_loss` on each turn's chunks (rows of one frame shape), combined as TRL combines rows.

        Chunk j of a turn has the same number of rows on every process: the process-wide maximum, reached with
        masked-out copies of a chunk row, or with frameless placeholder rows where a process has no chunk j. TRL's
        entropy bonus and MoE aux loss, which each call adds, are then made to count once (`_regularizer_correction`).
        """
        slots = len(inputs["valid"])  # the micro-batch size: equal on every process, and >= its number of chunks
        chunks = {turn: self._turn_chunks(inputs, turn, rows) for turn in TURNS}
        local = torch.zeros(len(TURNS), slots, dtype=torch.long, device=self.accelerator.device)
        for t, turn in enumerate(TURNS):
            for j, members in enumerate(chunks[turn]):
                local[t, j] = len(members)
        target = self.accelerator.gather(local[None]).amax(dim=0).tolist()  # (turns, slots): rows per chunk call
        aggregation = LOSS_AGGREGATION[self.loss_type]
        num_rows = 2 * len(rows)  # real rollout sequences of both turns
        num_tokens = sum(float(len(inputs[f"{turn}_turns"][i].completion_ids)) for turn in TURNS for i in rows)
        loss = torch.zeros((), device=self.accelerator.device)
        calls: list[_TurnCall] = []
        for t, turn in enumerate(TURNS):
            for j, size in enumerate(target[t]):
                if size == 0:
                    continue  # no process has a chunk j of this turn
                members = chunks[turn][j] if j < len(chunks[turn]) else []
                turn_inputs, visual = self._chunk_inputs(inputs, turn, members, size)
                turn_loss, terms = self._trl_turn_loss(WithVisualInputs(model, visual), turn_inputs, turn)
                if not members:
                    weight = 0.0  # a placeholder call, only there to match the other processes' collectives
                elif aggregation == "sequence":
                    weight = size / num_rows  # TRL averaged over `size` rows, the padded ones contributing 0
                elif aggregation == "local_token":
                    weight = float(turn_inputs["completion_mask"].sum()) / max(num_tokens, 1.0)
                else:  # "global_token": already normalised by the generation batch's token count
                    weight = 1.0
                loss = loss + weight * turn_loss
                calls.append(_TurnCall(weight, turn_inputs, len(members), terms))
        loss = loss + self._regularizer_correction(calls)
        if not rows:  # DDP expects a gradient for every trained weight on every process
            loss = loss + sum(p.sum() for p in model.parameters() if p.requires_grad) * 0.0
        return loss

    def _regularizer_correction(self, calls: list[_TurnCall]) -> torch.Tensor:
        """What makes TRL's entropy bonus and MoE aux loss count once per micro-batch, token-weighted.

        TRL 1.16's `_compute_loss` adds `-entropy_coef * H_j` (H_j: the call's mean entropy over its completion
        tokens) and `router_aux_loss_coef * aux_j` (the call's load-balancing loss) to each call's loss, both
        divided by the accumulation steps. `_mllm_loss` sums the calls with the loss type's weights w_j, which
        sum to more than 1 (token-sum losses: 1 per call; padded chunks), so each term would count sum_j w_j times.
        This returns sum_j (w_j - e_j / E) * entropy_coef * H_j - sum_j (w_j - n_j / N) * router_aux_loss_coef *
        aux_j, divided by the accumulation steps: the bonus becomes the mean entropy over all completion tokens of
        both turns (e_j of E), as TRL defines it, and the aux loss the mean over the chunks weighted by their
        attended tokens (n_j of N, real rows only).
        """
        mode = "train" if self.model.training else "eval"
        accumulation = self.current_gradient_accumulation_steps if mode == "train" else 1.0
        correction = torch.zeros((), device=self.accelerator.device)
        if self.entropy_coef != 0.0:
            entropies = []
            for call in calls:
                mask = call.inputs["completion_mask"]  # (B, C); TRL's effective mask adds its entropy mask
                if call.terms.get("entropy_mask") is not None:
                    mask = mask * call.terms["entropy_mask"]
                tokens = mask.sum()
                entropies.append(((call.terms["entropies"] * mask).sum() / tokens.clamp(min=1.0), float(tokens)))
            total = sum(tokens for _, tokens in entropies)
            for call, (entropy, tokens) in zip(calls, entropies):
                share = tokens / total if total > 0 else 0.0
                correction = correction + (call.weight - share) * self.entropy_coef * entropy
        if self.aux_loss_enabled:
            attended = [
                float(c.inputs["prompt_mask"][: c.num_real].sum() + c.inputs["completion_mask"][: c.num_real].sum())
                for c in calls
            ]
            total = sum(attended)
            for call, tokens in zip(calls, attended):
                share = tokens / total if total > 0 else 0.0
                correction = correction - (call.weight - share) * self.router_aux_loss_coef * call.terms["aux_loss"]
        return correction / accumulation

    def _turn_chunks(self, inputs: dict[str, Any], turn: str, rows: list[int]) -> list[list[int]]:
        """The valid rows of one turn grouped by frame shape (some families batch only equal shapes)."""
        return [[rows[p] for p in group] for group in group_by_shape([inputs[f"{turn}_turns"][i] for i in rows])]

    def _turn_pixel_budget(self, turn: str) -> int:
        """The per-frame pixel budget of a turn: low-resolution preview (query) or key frames (answer)."""
        config = self.msjoe_model.config
        return config.preview_max_pixels if turn == "query" else config.key_frame_max_pixels

    def _chunk_inputs(
        self, inputs: dict[str, Any], turn: str, members: list[int], size: int
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """TRL's loss inputs for one chunk of `size` rows: `members` then masked-out rows (copies of the first member
        without completion, or placeholders when `members` is empty), with zero advantages; and its visual inputs."""
        real = [inputs[f"{turn}_turns"][i] for i in members]
        filler = copy.copy(real[0]) if real else placeholder_turn(self._turn_pixel_budget(turn))
        filler.completion_ids = torch.empty(0, dtype=torch.long)
        batch = self._turn_batch(real + [filler] * (size - len(real)))
        device, length = self.accelerator.device, batch["completion_ids"].shape[1]
        advantages = torch.zeros(size, device=device)
        advantages[: len(members)] = inputs["advantages"][members].to(device)
        turn_inputs = {key: batch[key] for key in ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask")}
        turn_inputs.update(advantages=advantages, num_items_in_batch=inputs["num_items_in_batch"])
        for kind, key in (("old", "old_per_token_logps"), ("ref", "ref_per_token_logps")):
            if f"{turn}_{kind}_logps" in inputs or (kind == "ref" and self.beta != 0.0):
                logps = torch.zeros(size, length, device=device)
                for row, i in enumerate(members):
                    value = inputs[f"{turn}_{kind}_logps"][i]
                    logps[row, : len(value)] = value.to(device)
                turn_inputs[key] = logps
        return turn_inputs, batch["visual_inputs"]

    def _trl_turn_loss(
        self, model: WithVisualInputs, turn_inputs: dict[str, Any], turn: str
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """TRL's own loss for one turn chunk, and what its forward computed (`entropies` `(B, C)`, `aux_loss`, and
        `entropy_mask` with `top_entropy_quantile` < 1); the metrics it logs are filed under `mllm/<turn>_<name>`."""
        metrics = self._metrics["train" if self.model.training else "eval"]
        before = {key: len(values) for key, values in metrics.items()}
        self._loss_call_terms = {}
        try:
            loss = super()._compute_loss(model, turn_inputs)
            terms = self._loss_call_terms
        finally:
            self._loss_call_terms = None
        for key in list(metrics):
            if key.startswith(("mllm/", "sampler/", "rewards/", "data/")):
                continue
            new = metrics[key][before.get(key, 0) :]
            if new:
                del metrics[key][before.get(key, 0) :]
                metrics[f"mllm/{turn}_{key}"].extend(new)
            if not metrics[key]:
                del metrics[key]
        return loss, terms

    # ------------------------------------------------------------------ rollout-time and reference log-probs
    def _needs_old_log_probs(self) -> bool:
        """Whether a generation batch may be optimised after the policy that generated it was updated.

        TRL 1.16's condition (`GRPOTrainer._generate_and_score_completions`, trl/trainer/grpo_trainer.py ~L2642-2645,
        inline there; its vLLM clause does not apply since `use_vllm` is refused): the rollouts are reused when
        `gradient_accumulation_steps` is not a multiple of `steps_per_generation * num_iterations`. Pinned by
        tests/test_grpo_trainer.py::test_compat_trl_inline_blocks_msjoe_mirrors.
        """
        generate_every = self.args.steps_per_generation * self.num_iterations
        return self.args.gradient_accumulation_steps % generate_every != 0

    def _rollout_draw_log_probs(self, rows: list[RolloutRow]) -> torch.Tensor:
        """`(N,)` log-probability of each row's frame draw under the sampler that drew it (0 for skipped rows): the
        denominator of the sampler's importance ratio (`_sampler_loss`)."""
        form = self.args.sampler_log_prob_form
        return torch.tensor(
            [float(frame_log_prob(r.logits, r.draw_order, form=form)) if r.valid else 0.0 for r in rows]
        )

    def _add_turn_log_probs(self, batch: dict[str, Any], rows: list[RolloutRow], valid: torch.Tensor) -> None:
        """Per-token log-probs of each turn under the rollout policy (`old`, when `_needs_old_log_probs`) and the
        reference (`ref`, `beta > 0`, LoRA disabled), with the turn's frames."""
        kinds = tuple(k for k, wanted in (("old", self._needs_old_log_probs()), ("ref", self.beta != 0.0)) if wanted)
        if not kinds:
            return
        indices = valid.nonzero().flatten().tolist()
        for turn in TURNS:
            turns = [getattr(rows[i], turn) for i in indices]
            by_kind = self._turn_log_probs(turns, kinds=kinds, max_pixels=self._turn_pixel_budget(turn))
            for kind, log_probs in by_kind.items():
                values: list[torch.Tensor | None] = [None] * len(rows)
                for i, value in zip(indices, log_probs):
                    values[i] = value
                batch[f"{turn}_{kind}_logps"] = values

    @torch.no_grad()
    def _turn_log_probs(
        self, turns: list[Turn], *, kinds: tuple[str, ...], max_pixels: int
    ) -> dict[str, list[torch.Tensor]]:
        """`(C_i,)` log-probs of each turn's completion for each of `kinds` (`"old"`: the current policy, `"ref"`:
        LoRA disabled), in forwards of at most the per-device batch size; each batch of frames is built once.

        Turns of one frame shape share a forward (as in `_mllm_loss`), and every process runs the same number of
        forwards, the largest over processes, with a frameless placeholder turn where it has none left: a process
        with fewer valid rows (failed videos) must not skip forwards the others make (ZeRO-3 gathers weights in
        each forward).
        """
        size = self.args.per_device_train_batch_size
        pieces = [group[s : s + size] for group in group_by_shape(turns) for s in range(0, len(group), size)]
        count = torch.tensor([len(pieces)], device=self.accelerator.device)
        num_forwards = int(self.accelerator.gather(count).max())
        out: dict[str, list[torch.Tensor]] = {kind: [torch.empty(0)] * len(turns) for kind in kinds}
        for j in range(num_forwards):
            members = pieces[j] if j < len(pieces) else []
            chunk = [turns[i] for i in members] or [placeholder_turn(max_pixels)]
            inputs = self._turn_batch(chunk)  # frames resized and patched once for every kind
            ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)  # (B, P + C)
            mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)
            model = WithVisualInputs(self.model, inputs["visual_inputs"])
            for kind in kinds:
                adapter = (
                    use_adapter(self.accelerator.unwrap_model(self.model), adapter_name=None)
                    if kind == "ref"
                    else contextlib.nullcontext()
                )
                with adapter:
                    logps, _, _ = self._get_per_token_logps_and_entropies(
                        model, ids, mask, inputs["completion_ids"].shape[1]
                    )  # (B, C)
                for row, i in enumerate(members):
                    out[kind][i] = logps[row, : len(turns[i].completion_ids)].cpu()
        return out

    # ------------------------------------------------------------------ TRL 1.16 methods, observed inside `_trl_turn_loss`
    def _get_per_token_logps_and_entropies(
        self,
        model: Any,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        logits_to_keep: int,
        batch_size: int | None = None,
        compute_entropy: bool = False,
        compute_aux_loss: bool = False,
        **image_inputs: Any,  # TRL's image keyword arguments (pixel_values, image_grid_thw, ...), passed through
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """TRL's, unchanged; inside `_trl_turn_loss` its entropies and aux loss are kept for the correction."""
        outputs = super()._get_per_token_logps_and_entropies(
            model, input_ids, attention_mask, logits_to_keep, batch_size=batch_size, compute_entropy=compute_entropy,
            compute_aux_loss=compute_aux_loss, **image_inputs,
        )  # fmt: skip
        if self._loss_call_terms is not None:
            self._loss_call_terms.update(entropies=outputs[1], aux_loss=outputs[2])
        return outputs

    def get_high_entropy_mask(self, entropies: torch.Tensor, mask: torch.Tensor, threshold: float) -> torch.Tensor:
        """TRL's, unchanged; inside `_trl_turn_loss` the mask is kept for the entropy-bonus correction."""
        entropy_mask = super().get_high_entropy_mask(entropies, mask, threshold)
        if self._loss_call_terms is not None:
            self._loss_call_terms["entropy_mask"] = entropy_mask
        return entropy_mask
