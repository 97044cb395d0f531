"""One joint MSJoE training step vs plain TRL GRPOTrainer steps doing the same MLLM work (issue 3 benchmark).

Same tiny random Qwen2.5-VL, same prompts, same frames (as image lists, which plain TRL scores natively), same
completion lengths (`min_new_tokens` = `max_new_tokens`), same 4 rows (1 prompt x 4 generations), same loss type:

  msjoe      `MSJoEGRPOTrainer`, training_stage="joint": query turn on the K/2 preview frames, CLIP similarity,
             U-Net sampler draws K frames, answer turn on them, GRPO on both turns + REINFORCE on the sampler.
  trl x2     plain `trl.GRPOTrainer`: one step on the query-turn prompt with the preview frames plus one step on
             the answer-turn prompt with K frames -- the MLLM work of MSJoE's two turns, without MSJoE.
  trl answer one plain step on the answer turn only (shown for reference).

Timings are per optimizer step (callback from step begin to step end: generation, loss, backward, optimizer),
the minimum over the timed steps after each run's warm-up step, runs of the three trainers alternated (the machine
may be shared; the minimum is the least disturbed). CLIP features come from a feature cache filled in the warm-up step, as in every epoch after the first.
The last line is msjoe / (trl x2): the cost of MSJoE's machinery on top of the same MLLM work (goal <= 1.3).

Run: python benchmarks/train_step.py [--steps 4] [--repeats 2] [--key-frames 8] [--tokens 16]
"""

from __future__ import annotations

import os
import sys

# benchmarks/selector_recall.py shadows the standard library's `selectors` when this folder is sys.path[0]; drop it.
if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

import torch
from datasets import Dataset
from PIL import Image
from transformers import TrainerCallback
from trl import GRPOConfig, GRPOTrainer

from transformers_msjoe import MSJoEForVideoQA
from transformers_msjoe.grpo_config import MSJoEGRPOConfig
from transformers_msjoe.grpo_trainer import MSJoEGRPOTrainer
from transformers_msjoe.prompts import letter_options
from transformers_msjoe.synthetic_video import make_synthetic_video
from transformers_msjoe.tiny_models import save_tiny_clip, save_tiny_mllm
from transformers_msjoe.video_io import open_video, plan_uniform_timestamps

QUESTION = "Which coloured box appears first?"
OPTIONS = ["red", "blue", "yellow", "green"]


class StepTimer(TrainerCallback):
    """Wall and CPU seconds of every optimizer step."""

    def __init__(self):
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = (time.perf_counter(), time.process_time())

    def on_step_end(self, args, state, control, **kwargs):
        self.wall.append(time.perf_counter() - self._start[0])
        self.cpu.append(time.process_time() - self._start[1])


def constant_reward(completions, **kwargs):
    """The same reward for every row: both trainers do the same work whatever the (random) model writes."""
    return [float(i % 2) for i in range(len(completions))]


def common_args(args: argparse.Namespace, out: str) -> dict:
    return {
        "output_dir": out, "per_device_train_batch_size": 4, "num_generations": 4, "max_steps": args.steps + 1,
        "use_cpu": True, "bf16": False, "report_to": "none", "save_strategy": "no", "logging_steps": 1,
        "learning_rate": 1e-4, "loss_type": "grpo", "activation_checkpointing": False,
        "max_completion_length": args.tokens, "seed": 0, "generation_kwargs": {"min_new_tokens": args.tokens},
    }  # fmt: skip


def time_msjoe(mllm_dir: str, clip_dir: str, video: str, args: argparse.Namespace, out: str) -> StepTimer:
    model = MSJoEForVideoQA.from_mllm(
        mllm_dir, clip=clip_dir, frames_as_video=False, num_key_frames=args.key_frames, max_candidate_frames=128,
        query_max_new_tokens=args.tokens, answer_max_new_tokens=args.tokens,
    )  # fmt: skip
    model.set_feature_cache(os.path.join(out, "feature-cache"))
    data = Dataset.from_dict({"video": [video], "question": [QUESTION], "options": [OPTIONS], "answer": ["A"]})
    timer = StepTimer()
    trainer = MSJoEGRPOTrainer(model=model, args=MSJoEGRPOConfig(**common_args(args, out)), train_dataset=data,
                               reward_funcs=[constant_reward], callbacks=[timer])  # fmt: skip
    trainer.train()
    return timer


def turn_dataset(prompt: str, frames: torch.Tensor) -> Dataset:
    images = [Image.fromarray(frame.permute(1, 2, 0).numpy()) for frame in frames]
    content = [{"type": "image"} for _ in images] + [{"type": "text", "text": prompt}]
    return Dataset.from_dict({"prompt": [[{"role": "user", "content": content}]], "images": [images]})


def time_trl(mllm_dir: str, data: Dataset, args: argparse.Namespace, out: str) -> StepTimer:
    timer = StepTimer()
    trainer = GRPOTrainer(model=mllm_dir, reward_funcs=[constant_reward], args=GRPOConfig(**common_args(args, out)),
                          train_dataset=data, callbacks=[timer])  # fmt: skip
    trainer.train()
    return timer


def summary(timers: list[StepTimer]) -> tuple[float, float, float]:
    wall = [w for timer in timers for w in timer.wall[1:]]  # drop each run's warm-up step
    cpu = [c for timer in timers for c in timer.cpu[1:]]
    return min(wall), statistics.median(wall), min(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=4, help="Timed steps per trainer (after one warm-up step).")
    parser.add_argument("--key-frames", type=int, default=8, help="K key frames (the preview has K/2).")
    parser.add_argument("--tokens", type=int, default=16, help="Completion tokens per turn.")
    parser.add_argument("--repeats", type=int, default=2, help="Runs of each trainer, alternated.")
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "msjoe-bench-train-step"))
    args = parser.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    mllm_dir = save_tiny_mllm(os.path.join(args.workdir, "tiny-qwen2_5_vl"))
    clip_dir = save_tiny_clip(os.path.join(args.workdir, "tiny-clip"))
    video = os.path.join(args.workdir, "video_120s.mp4")
    if not os.path.exists(video):
        make_synthetic_video(video, duration_seconds=120.0, fps=2.0)

    # The frames and prompts of MSJoE's two turns, built with MSJoE's own processor, given to plain TRL as images.
    reference = MSJoEForVideoQA.from_mllm(mllm_dir, clip=clip_dir, frames_as_video=False, num_key_frames=args.key_frames)
    reader, options = open_video(video), letter_options(OPTIONS)
    num_preview = reference.config.effective_num_preview_frames
    preview = reader.frames_at(plan_uniform_timestamps(reader.info.duration_seconds, num_preview), max_pixels=reference.config.preview_max_pixels)  # fmt: skip
    key = reader.frames_at(plan_uniform_timestamps(reader.info.duration_seconds, args.key_frames), max_pixels=reference.config.key_frame_max_pixels)  # fmt: skip
    query_prompt = reference.processor.query_prompt(QUESTION, options, num_preview, reference.config.num_queries)
    answer_prompt = reference.processor.answer_prompt(QUESTION, options, args.key_frames)

    torch.manual_seed(0)
    timers: dict[str, list[StepTimer]] = {"msjoe": [], "trl query": [], "trl answer": []}
    with tempfile.TemporaryDirectory() as out:
        for _ in range(args.repeats):  # alternate the trainers, so a busy spell on a shared machine hits all of them
            timers["msjoe"].append(time_msjoe(mllm_dir, clip_dir, video, args, os.path.join(out, "msjoe")))
            timers["trl query"].append(time_trl(mllm_dir, turn_dataset(query_prompt, preview), args, os.path.join(out, "q")))
            timers["trl answer"].append(time_trl(mllm_dir, turn_dataset(answer_prompt, key), args, os.path.join(out, "a")))
    msjoe, trl_query, trl_answer = (summary(timers[name]) for name in ("msjoe", "trl query", "trl answer"))
    trl_both = tuple(q + a for q, a in zip(trl_query, trl_answer))
    print(f"tiny Qwen2.5-VL, 4 rows (1 prompt x 4 generations), K={args.key_frames} key frames, {num_preview} preview "
          f"frames, {args.tokens} tokens per turn, {args.steps} timed steps; seconds per optimizer step:")  # fmt: skip
    print(f"{'':12s} {'min wall':>9s} {'median wall':>12s} {'min cpu':>8s}")
    for name, (low, mid, cpu) in (("msjoe", msjoe), ("trl x2", trl_both), ("trl answer", trl_answer), ("trl query", trl_query)):  # fmt: skip
        print(f"{name:12s} {low:9.3f} {mid:12.3f} {cpu:8.3f}")
    print(f"msjoe / trl answer turn only: {msjoe[0] / trl_answer[0]:.2f}x (min wall)")
    print(f"msjoe joint step / plain TRL steps on the same two turns = {msjoe[0] / trl_both[0]:.2f}x (min wall; cpu {msjoe[2] / trl_both[2]:.2f}x; goal <= 1.3)")  # fmt: skip


if __name__ == "__main__":
    main()
