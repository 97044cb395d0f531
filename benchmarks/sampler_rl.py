"""Stage-1 sampler RL on synthetic similarity matrices: can REINFORCE with the difficulty-aware advantage teach
the real U-Net sampler to find planted key frames? (issue 3 benchmark; not a unit test)

Each trial is a video of T candidates with K planted key frames (K/2 events of 2 adjacent frames). Each of the
Q = 4 visual queries raises the similarity of one or two events by `signal` over a 0.2 level, slow drift and
white noise; the question's own curve raises every event by only half that (a question is less specific than
the queries, paper Fig. 6). Both are CLIP-cosine-like numbers.

Training mirrors `MSJoEGRPOTrainer` in `training_stage="sampler_pretrain"`: the real `MSJoEFrameSampler` (default
config), K frames drawn with `sample_frames` (Gumbel top-K), the REINFORCE term -A * `frame_log_prob`, and A =
`difficulty_aware_advantage(correct, c)`. The frozen "MLLM" answers correctly with probability equal to the
fraction of key frames it was shown; its pass rate c is that probability under uniform frames (the base MLLM).

Reported on held-out trials: recall@K of the planted frames for uniform frames, top-K of the question's curve
("question top-k", the paper's Top-k baseline) and the learned sampler (top-K of its logits, as at inference).
Expectation: learned > question top-k > uniform, learned >= 0.9. The last line is the ratio of learned to
question top-k recall.

Defaults are the trainer's (`sampler_learning_rate` 1e-4, `sampler_log_prob_form="paper"`). Seen on 2 shared CPU
cores: with these, learned top-K recall 0.94 after 600 steps; with lr 1e-3 the "paper" form diverged (recall fell
below uniform) while "plackett_luce" reached 0.97 in 800 steps.

Run: python benchmarks/sampler_rl.py [--steps 600] [--lr 1e-4] [--log-prob-form paper] (2-3 minutes on 2 idle
CPU cores; several times longer when the machine is shared)
"""

from __future__ import annotations

import os
import sys

# benchmarks/selector_recall.py shares its name with the standard library's `selectors`: run as a script, this folder is
# sys.path[0] and would shadow it (subprocess, asyncio, ... import it), so drop that entry first.
if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse
import time
import torch

from transformers_msjoe import MSJoEFrameSampler, MSJoESamplerConfig
from transformers_msjoe.grpo_config import MSJoEGRPOConfig
from transformers_msjoe.modeling_sampler import (
    frame_log_prob,
    sample_frames,
    topk_frames,
)
from transformers_msjoe.rewards import difficulty_aware_advantage
from transformers_msjoe.selection import build_selector

NUM_QUERIES = 4
TRAINER_DEFAULTS = MSJoEGRPOConfig.__dataclass_fields__  # the benchmark trains with the trainer's sampler defaults
LEVEL, DRIFT = 0.20, 0.004


def make_trial(num_frames: int, num_key: int, signal: float, noise: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
    """Queries `(Q, T)`, question `(1, T)` similarity and the planted key-frame mask `(T,)` of one video."""
    num_events = num_key // 2
    starts = torch.randperm(num_frames // 4, generator=gen)[:num_events] * 4  # events 2 frames long, >= 2 apart
    planted = torch.zeros(num_frames, dtype=torch.bool)
    t = torch.arange(num_frames, dtype=torch.float32) / num_frames

    def curve() -> torch.Tensor:
        phase = float(torch.rand(1, generator=gen)) * 6.283
        return LEVEL + DRIFT * torch.sin(6.283 * 2 * t + phase) + noise * torch.randn(num_frames, generator=gen)

    queries = torch.stack([curve() for _ in range(NUM_QUERIES)])  # (Q, T)
    question = curve()[None]  # (1, T)
    for event, start in enumerate(starts.tolist()):
        span = slice(start, start + 2)
        planted[span] = True
        queries[event % NUM_QUERIES, span] += signal
        if event >= NUM_QUERIES or torch.rand(1, generator=gen) < 0.5:  # some events are seen by a second query
            queries[(event + 1) % NUM_QUERIES, span] += signal
        question[0, span] += signal / 2
    return queries, question, planted


def make_set(count: int, args: argparse.Namespace, seed: int) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [make_trial(args.frames, args.key_frames, args.signal, args.noise, gen) for _ in range(count)]


def recall(picks: torch.Tensor, planted: torch.Tensor) -> float:
    return float(planted[picks].sum()) / float(planted.sum())


def train(sampler: MSJoEFrameSampler, trials: list, args: argparse.Namespace) -> list[float]:
    """REINFORCE with the difficulty-aware advantage, exactly the stage-1 objective (paper §2.1-2.4)."""
    optimizer = torch.optim.AdamW(sampler.parameters(), lr=args.lr, weight_decay=0.0)  # Trainer's default optimizer
    gen = torch.Generator().manual_seed(1)
    c = args.key_frames / args.frames  # expected fraction of key frames among K uniform frames: the base pass rate
    history = []
    for step in range(args.steps):
        batch = [trials[int(i)] for i in torch.randint(len(trials), (args.batch,), generator=gen)]
        logits = sampler(torch.stack([q for q, _, _ in batch]))  # (B, T)
        log_probs, correct, recalls = [], [], []
        for row, (_, _, planted) in enumerate(batch):
            for _ in range(args.generations):  # several draws per video, as the G generations of a prompt
                drawn = sample_frames(logits[row].detach(), args.key_frames, generator=gen)
                got = recall(drawn.indices, planted)
                recalls.append(got)
                correct.append(bool(torch.rand(1, generator=gen) < got))  # the frozen MLLM answers from these frames
                log_probs.append(frame_log_prob(logits[row], drawn.draw_order, form=args.log_prob_form))
        advantage = difficulty_aware_advantage(torch.tensor(correct), torch.full((len(correct),), c), cap=10.0)
        loss = -(advantage * torch.stack(log_probs)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(sum(recalls) / len(recalls))
        if (step + 1) % max(1, args.steps // 10) == 0:
            print(f"step {step + 1:4d}  sampled recall@{args.key_frames} {sum(history[-20:]) / len(history[-20:]):.3f}  loss {loss.item():+.3f}")  # fmt: skip
    return history


@torch.no_grad()
def evaluate(sampler: MSJoEFrameSampler, trials: list, k: int) -> dict[str, float]:
    uniform = build_selector("uniform")
    scores = {"uniform": 0.0, "question top-k": 0.0, "queries max top-k": 0.0, "learned sampler": 0.0}
    for queries, question, planted in trials:
        scores["uniform"] += recall(uniform.select(None, len(planted), k).indices, planted)
        scores["question top-k"] += recall(topk_frames(question[0], k), planted)
        scores["queries max top-k"] += recall(topk_frames(queries.max(0).values, k), planted)
        scores["learned sampler"] += recall(topk_frames(sampler(queries), k), planted)
    return {name: total / len(trials) for name, total in scores.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=128, help="Candidate frames T per video.")
    parser.add_argument("--key-frames", type=int, default=8, help="K: planted key frames, and the frames drawn.")
    parser.add_argument("--signal", type=float, default=0.05, help="Similarity raise of a key frame for its queries.")
    parser.add_argument("--noise", type=float, default=0.01, help="Std of the white noise on every curve.")
    parser.add_argument("--train-videos", type=int, default=512)
    parser.add_argument("--test-videos", type=int, default=256)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch", type=int, default=16, help="Videos per step.")
    parser.add_argument("--generations", type=int, default=4, help="Frame draws per video per step.")
    parser.add_argument("--lr", type=float, default=TRAINER_DEFAULTS["sampler_learning_rate"].default, help="Default: the trainer's `sampler_learning_rate`.")  # fmt: skip
    parser.add_argument("--log-prob-form", default=TRAINER_DEFAULTS["sampler_log_prob_form"].default, choices=["paper", "plackett_luce"], help="Default: the trainer's `sampler_log_prob_form`.")  # fmt: skip
    args = parser.parse_args()
    torch.manual_seed(0)
    start = time.perf_counter()
    sampler = MSJoEFrameSampler(MSJoESamplerConfig()).train()  # the real U-Net at its default size
    print(f"U-Net sampler: {sampler.num_parameters() / 1e6:.2f}M parameters; T={args.frames}, K={args.key_frames}, "
          f"signal {args.signal}, noise {args.noise}, {args.steps} steps x {args.batch} videos x {args.generations} draws, "
          f"lr {args.lr}, log-prob form {args.log_prob_form!r}")  # fmt: skip
    train_set, test_set = make_set(args.train_videos, args, seed=10), make_set(args.test_videos, args, seed=20)
    before = evaluate(sampler.eval(), test_set, args.key_frames)
    train(sampler.train(), train_set, args)
    after = evaluate(sampler.eval(), test_set, args.key_frames)
    print(f"\nheld-out recall@{args.key_frames} of the planted frames ({args.test_videos} videos):")
    print(f"  uniform                 {after['uniform']:.3f}")
    print(f"  question top-k          {after['question top-k']:.3f}")
    print(f"  queries max top-k       {after['queries max top-k']:.3f}   (a fixed rule on the same 4 query rows, for reference)")
    print(f"  sampler before training {before['learned sampler']:.3f}")
    print(f"  learned sampler         {after['learned sampler']:.3f}")
    ordered = after["learned sampler"] > after["question top-k"] > after["uniform"]
    print(f"expected order learned > question top-k > uniform: {'yes' if ordered else 'NO'}; learned >= 0.9: "
          f"{'yes' if after['learned sampler'] >= 0.9 else 'NO'}; {time.perf_counter() - start:.0f} s")  # fmt: skip
    ratio = after["learned sampler"] / max(after["question top-k"], 1e-9)
    print(f"recall@{args.key_frames} learned sampler / question top-k = {ratio:.2f}x ({after['learned sampler']:.3f} vs {after['question top-k']:.3f}; uniform {after['uniform']:.3f})")  # fmt: skip


if __name__ == "__main__":
    main()
