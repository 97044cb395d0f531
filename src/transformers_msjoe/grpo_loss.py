"""The loss half of `MSJoEGRPOTrainer` (TRL 1.16's private `_compute_loss` hook, paper §2.3-2.4).

The sampler's REINFORCE term -A * sum_k log p(x_k), and TRL's own `_compute_loss` once per MLLM turn chunk (rows
of one frame shape), each chunk scored with the frames it was generated from and combined as TRL combines rows
for the chosen `loss_type` (`grpo_config.LOSS_AGGREGATION`). Both go through the (DDP-)wrapped model's forward,
and every process runs the same forwards and collectives whatever its rows (see `_compute_loss`).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from trl import GRPOTrainer

from .grpo_config import LOSS_AGGREGATION
from .grpo_rollout import TURNS, WithVisualInputs, draw_log_probs, pad_similarities, placeholder_turn

__all__ = ["MSJoEGRPOLossMixin"]

_PLACEHOLDER_FRAMES = 8  # candidate frames of the placeholder similarity a process without valid rows forwards


class MSJoEGRPOLossMixin(GRPOTrainer):
    """`_compute_loss` of `MSJoEGRPOTrainer`, which subclasses this; `super()._compute_loss` is TRL's.

    Uses the trainer's `msjoe_model`, `_turn_batch` (a turn chunk's inputs) and `_log_mean` (a metric averaged over
    processes).
    """

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
        """-mean_i A_i * sum_k log p(x_k) over the valid rows (paper §2.4), scaled for gradient accumulation; the
        sampler runs through the wrapped model's forward, so DDP reduces its gradients."""
        similarities = [inputs["similarities"][i] for i in rows] or [torch.zeros(1, _PLACEHOLDER_FRAMES)]
        similarity, frame_mask, query_mask = pad_similarities(similarities, self.accelerator.device)  # (B, Q, T)
        logits = model(
            sampler_similarity=similarity, sampler_frame_mask=frame_mask, sampler_query_mask=query_mask
        ).frame_logits
        mode = "train" if self.model.training else "eval"
        if rows:
            draw_orders = [inputs["draw_orders"][i] for i in rows]
            log_probs = draw_log_probs(logits, similarities, draw_orders, self.args.sampler_log_prob_form)  # (B,)
            advantages = inputs["sampler_advantages"][rows].to(log_probs.device)
            loss = -(advantages * log_probs).mean() * self.args.sampler_loss_weight
        else:  # no valid row here: a zero loss that still gives every sampler weight a gradient
            log_probs = logits.new_zeros(0)
            loss = logits.sum() * 0.0
        self._log_mean(mode, "sampler/loss", [loss.item()] * len(rows))
        self._log_mean(mode, "sampler/log_prob", log_probs.detach().tolist())
        return loss / (self.current_gradient_accumulation_steps if mode == "train" else 1.0)

    def _mllm_loss(self, model: Any, inputs: dict[str, Any], rows: list[int]) -> torch.Tensor:
        """TRL's `_compute_loss` on each turn's chunks (rows of one frame shape), combined as TRL combines rows.

        Chunk j of a turn has the same number of rows on every process: the process-wide maximum, reached with
        masked-out copies of a chunk row, or with frameless placeholder rows where a process has no chunk j.
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
        for t, turn in enumerate(TURNS):
            for j, size in enumerate(target[t]):
                if size == 0:
                    continue  # no process has a chunk j of this turn
                members = chunks[turn][j] if j < len(chunks[turn]) else []
                turn_inputs, visual = self._chunk_inputs(inputs, turn, members, size)
                turn_loss = self._trl_turn_loss(WithVisualInputs(model, visual), turn_inputs, turn)
                if not members:
                    weight = 0.0  # a placeholder call, only there to match the other processes' collectives
                elif aggregation == "sequence":
                    weight = size / num_rows  # TRL averaged over `size` rows, the padded ones contributing 0
                elif aggregation == "local_token":
                    weight = float(turn_inputs["completion_mask"].sum()) / max(num_tokens, 1.0)
                else:  # "global_token": already normalised by the generation batch's token count
                    weight = 1.0
                loss = loss + weight * turn_loss
        if not rows:  # DDP expects a gradient for every trained weight on every process
            loss = loss + sum(p.sum() for p in model.parameters() if p.requires_grad) * 0.0
        return loss

    def _turn_chunks(self, inputs: dict[str, Any], turn: str, rows: list[int]) -> list[list[int]]:
        """The valid rows of one turn grouped by frame shape (some families batch only equal shapes)."""
        groups: dict[tuple[int, ...], list[int]] = {}
        for i in rows:
            groups.setdefault(inputs[f"{turn}_turns"][i].shape_key, []).append(i)
        return list(groups.values())

    def _chunk_inputs(
        self, inputs: dict[str, Any], turn: str, members: list[int], size: int
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """TRL's loss inputs for one chunk of `size` rows: `members` then masked-out rows (copies of the first member
        without completion, or placeholders when `members` is empty), with zero advantages; and its visual inputs."""
        real = [inputs[f"{turn}_turns"][i] for i in members]
        budget = (
            self.msjoe_model.config.preview_max_pixels
            if turn == "query"
            else self.msjoe_model.config.key_frame_max_pixels
        )
        filler = copy.copy(real[0]) if real else placeholder_turn(budget)
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

    def _trl_turn_loss(self, model: WithVisualInputs, turn_inputs: dict[str, Any], turn: str) -> torch.Tensor:
        """TRL's own loss for one turn chunk; the metrics it logs are filed under `mllm/<turn>_<name>`."""
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
