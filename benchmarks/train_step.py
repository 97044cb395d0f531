"""One MSJoE joint training step vs one plain TRL GRPOTrainer step on the same prompt and frames (issue 3 benchmark).

Both trainers get the same tiny random Qwen2.5-VL (frames given as images), the same 4 rows per optimizer step
(1 prompt x 4 generations), the same completion length per MLLM turn (`min_new_tokens` = max tokens = `--tokens`),
the same loss (`loss_type="grpo"`, beta 0), optimizer (AdamW, lr 1e-4) and reward function, on the CPU, without
activation checkpointing. What one step includes on each side:

  MSJoE  `MSJoEGRPOTrainer`, `training_stage="joint"`: decode the K/2 preview frames (low-res budget); query turn
         (generate); CLIP text encoding of the queries and their similarity with the candidate frames' CLIP
         features (read from the feature cache, filled in the warm-up step as in every epoch after the first);
         U-Net sampler forward and K draws without replacement; decode the K key frames; answer turn (generate);
         rewards; GRPO loss + backward on BOTH turns, each re-scored with its own frames; the sampler's REINFORCE
         loss + backward; one optimizer step over MLLM and sampler.
  TRL    plain `trl.GRPOTrainer`: ONE turn, the answer turn. Its prompt is MSJoE's answer-turn prompt and its
         images are the same K key frames, given ready-made (no video decoding): the frames MSJoE selects for this
         question, decoded at MSJoE's key-frame pixel budget, through the MLLM's processor set to that budget.
         Generate, rewards, GRPO loss + backward, optimizer step.

Before timing, the script checks that TRL's processing of that prompt and those frames gives exactly the tokens,
image grids and pixels of MSJoE's answer turn (it stops otherwise). The ratio therefore prices everything MSJoE
adds to a plain single-turn GRPO step: the whole query turn (generation and loss), CLIP text, the sampler and
video decoding. MSJoE's answer turn draws its K frames with the sampler (other frames than TRL's, per
generation), of the same number and size, hence the same cost.

The video is 640x360 by default: the preview frames are then scaled down to MSJoE's low-res preview budget
(about 32 tokens each) while the key frames keep about 300 tokens each, as with real videos. With
`--video-size 160x120` both turns get the same tiny frames, the MLLM work is almost free, and MSJoE's fixed
costs (second turn, CLIP, sampler, decoding) weigh far more: run it too for the pessimistic bound.

Timings are per optimizer step (a callback from step begin to step end), after each run's warm-up step; the runs
of the two trainers alternate (the machine may be shared) and the figure is the minimum over all timed steps (the
step least disturbed by other processes); medians and CPU seconds are printed too. The last line is the ratio
"MSJoE step time / plain TRL GRPO step time" (issue goal <= 1.3).

Run from the repository root: python benchmarks/train_step.py [--steps 4] [--repeats 2] [--key-frames 8]
[--tokens 16] [--video-size 640x360]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

import torch
from _common import WORKDIR, load_note, verdict
from datasets import Dataset
from PIL import Image
from transformers import AutoProcessor, ProcessorMixin, TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback
from trl import GRPOConfig, GRPOTrainer

from transformers_msjoe import MSJoEForVideoQA
from transformers_msjoe.grpo_config import MSJoEGRPOConfig
from transformers_msjoe.grpo_trainer import MSJoEGRPOTrainer
from transformers_msjoe.prompts import letter_options
from transformers_msjoe.synthetic_video import make_synthetic_video
from transformers_msjoe.tiny_models import save_tiny_clip, save_tiny_mllm
from transformers_msjoe.video_io import open_video, plan_uniform_timestamps

QUESTION = "Which coloured box appears first?"
OPTIONS = ["red", "blue", "yellow", "green"]  # plain texts, as in the dataset's `options` column
GOAL = 1.3


class StepTimer(TrainerCallback):
    """Wall and CPU seconds of every optimizer step, and the completion lengths the trainer logs."""

    def __init__(self):
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.logs: list[dict[str, float]] = []

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = (time.perf_counter(), time.process_time())

    def on_step_end(self, args, state, control, **kwargs):
        self.wall.append(time.perf_counter() - self._start[0])
        self.cpu.append(time.process_time() - self._start[1])

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.logs.append(dict(logs or {}))

    def mean_log(self, key: str) -> float:
        values = [log[key] for log in self.logs if key in log]
        if not values:
            raise KeyError(
                f"the trainer logged no {key!r}; logged keys: {sorted({k for log in self.logs for k in log})}"
            )
        return sum(values) / len(values)


def alternating_reward(completions, **kwargs):
    """Rewards 0, 1, 0, 1: non-zero advantages, so both trainers back-propagate, whatever the random model writes."""
    return [float(i % 2) for i in range(len(completions))]


def common_args(args: argparse.Namespace, out: str) -> dict:
    """The GRPOConfig fields both trainers share."""
    return {
        "output_dir": out, "per_device_train_batch_size": 4, "num_generations": 4, "max_steps": args.steps + 1,
        "use_cpu": True, "bf16": False, "report_to": "none", "save_strategy": "no", "logging_steps": 1,
        "disable_tqdm": True, "learning_rate": 1e-4, "loss_type": "grpo", "beta": 0.0, "activation_checkpointing": False,
        "max_completion_length": args.tokens, "seed": 0, "generation_kwargs": {"min_new_tokens": args.tokens},
    }  # fmt: skip


def run(trainer) -> None:
    trainer.remove_callback(PrinterCallback)  # timings only: no per-step log dicts on stdout
    trainer.remove_callback(ProgressCallback)
    trainer.train()


def time_msjoe(mllm_dir: str, clip_dir: str, video: str, args: argparse.Namespace, out: str) -> StepTimer:
    model = MSJoEForVideoQA.from_mllm(mllm_dir, clip=clip_dir, frames_as_video=False)
    model.set_feature_cache(os.path.join(out, "feature-cache"))
    data = Dataset.from_dict({"video": [video], "question": [QUESTION], "options": [OPTIONS], "answer": ["A"]})
    config = MSJoEGRPOConfig(
        **common_args(args, out), training_stage="joint", num_key_frames=args.key_frames, max_candidate_frames=128,
        query_max_new_tokens=args.tokens, answer_max_new_tokens=args.tokens,
    )  # fmt: skip
    timer = StepTimer()
    run(MSJoEGRPOTrainer(model=model, args=config, train_dataset=data, reward_funcs=[alternating_reward], callbacks=[timer]))  # fmt: skip
    return timer


def time_trl(mllm_dir: str, data: Dataset, processor: ProcessorMixin, args: argparse.Namespace, out: str) -> StepTimer:
    timer = StepTimer()
    trainer = GRPOTrainer(
        model=mllm_dir, reward_funcs=[alternating_reward], args=GRPOConfig(**common_args(args, out)), train_dataset=data,
        processing_class=processor, callbacks=[timer],
    )  # fmt: skip
    run(trainer)
    return timer


def query_turn_tokens(model: MSJoEForVideoQA, video: str) -> int:
    """Prompt tokens of MSJoE's query turn (the K/2 preview frames at the low-res preview budget)."""
    reader, config = open_video(video), model.config
    stamps = plan_uniform_timestamps(
        reader.info.duration_seconds, config.effective_num_preview_frames, reader.begin_seconds
    )
    frames = reader.frames_at(stamps, max_pixels=config.preview_max_pixels)  # (K/2, 3, h, w) uint8
    prompt = model.processor.query_prompt(
        QUESTION, letter_options(OPTIONS, lettered=False), len(frames), config.num_queries
    )
    inputs = model.processor.build_inputs(
        [prompt], [frames], [stamps], [reader.info], max_pixels=config.preview_max_pixels
    )
    return int(inputs["input_ids"].shape[1])


def answer_turn_dataset(model: MSJoEForVideoQA, mllm_dir: str, video: str) -> tuple[Dataset, ProcessorMixin, int]:
    """Plain TRL's one-row dataset and processor: MSJoE's answer-turn prompt with the K key frames MSJoE selects for
    QUESTION, and the MLLM's processor with MSJoE's key-frame pixel budget (the tiny processor's default is smaller).

    Checks that TRL's processing (chat template on the conversational prompt, images through that processor) gives
    the very tokens, image grids and pixels of MSJoE's answer turn. Returns those and the prompt length in tokens.
    """
    options = letter_options(OPTIONS, lettered=False)
    selected = model.select_frames(video, QUESTION, options)
    reader = open_video(video)
    max_pixels = model.config.key_frame_max_pixels
    frames = reader.frames_at(selected.key_frame_timestamps, max_pixels=max_pixels)  # (K, 3, H, W) uint8
    prompt = model.processor.answer_prompt(QUESTION, options, len(frames))
    msjoe_inputs = model.processor.build_inputs([prompt], [frames], [selected.key_frame_timestamps], [reader.info], max_pixels=max_pixels)  # fmt: skip

    default_min = AutoProcessor.from_pretrained(mllm_dir).image_processor.size.shortest_edge
    processor = AutoProcessor.from_pretrained(mllm_dir, size={"shortest_edge": min(default_min, max_pixels), "longest_edge": max_pixels})  # fmt: skip
    images = [Image.fromarray(frame.permute(1, 2, 0).numpy()) for frame in frames]
    conversation = [
        {"role": "user", "content": [{"type": "image"} for _ in images] + [{"type": "text", "text": prompt}]}
    ]
    text = processor.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
    trl_inputs = processor(text=[text], images=[images], return_tensors="pt")
    for key in ("input_ids", "image_grid_thw", "pixel_values"):
        if not torch.equal(msjoe_inputs[key], trl_inputs[key]):
            raise RuntimeError(f"Plain TRL's answer-turn inputs differ from MSJoE's in {key!r}: the comparison would not be like for like.")  # fmt: skip
    data = Dataset.from_dict({"prompt": [conversation], "images": [images]})
    return data, processor, int(msjoe_inputs["input_ids"].shape[1])


def summary(timers: list[StepTimer]) -> tuple[float, float, float]:
    """Min wall, median wall and min CPU seconds per step, each run's warm-up step dropped."""
    wall = [w for timer in timers for w in timer.wall[1:]]
    cpu = [c for timer in timers for c in timer.cpu[1:]]
    return min(wall), statistics.median(wall), min(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=4, help="Timed steps per trainer run (after one warm-up step).")
    parser.add_argument("--repeats", type=int, default=2, help="Runs of each trainer, alternated.")
    parser.add_argument("--key-frames", type=int, default=8, help="K key frames (MSJoE's preview has K/2).")
    parser.add_argument("--tokens", type=int, default=16, help="Completion tokens per MLLM turn.")
    parser.add_argument(
        "--video-size",
        default="640x360",
        help="WxH of the synthetic video (default 640x360: the preview frames are then scaled down to MSJoE's low-res budget while the key frames keep about 300 tokens each, as with real videos; at 160x120 both turns get the same small frames).",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's).")
    parser.add_argument("--workdir", default=WORKDIR, help="Where the tiny models and the test video are kept.")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    os.makedirs(args.workdir, exist_ok=True)
    mllm_dir = save_tiny_mllm(os.path.join(args.workdir, "train-step-tiny-qwen2_5_vl"))
    clip_dir = save_tiny_clip(os.path.join(args.workdir, "train-step-tiny-clip"))
    width, height = (int(side) for side in args.video_size.lower().split("x"))
    video = os.path.join(args.workdir, f"train_step_120s_2fps_{width}x{height}.mp4")
    if not os.path.exists(video):
        make_synthetic_video(video, duration_seconds=120.0, fps=2.0, size=(width, height))
    torch.manual_seed(0)
    reference = MSJoEForVideoQA.from_mllm(
        mllm_dir, clip=clip_dir, frames_as_video=False, num_key_frames=args.key_frames
    )
    trl_data, trl_processor, answer_tokens = answer_turn_dataset(reference, mllm_dir, video)
    query_tokens = query_turn_tokens(reference, video)

    timers: dict[str, list[StepTimer]] = {"msjoe": [], "trl": []}
    with tempfile.TemporaryDirectory() as out:
        for _ in range(args.repeats):  # alternate, so a busy spell on a shared machine hits both trainers
            timers["msjoe"].append(time_msjoe(mllm_dir, clip_dir, video, args, os.path.join(out, "msjoe")))
            timers["trl"].append(time_trl(mllm_dir, trl_data, trl_processor, args, os.path.join(out, "trl")))
    msjoe, trl = summary(timers["msjoe"]), summary(timers["trl"])
    query_len = statistics.mean(t.mean_log("mllm/query_length") for t in timers["msjoe"])
    answer_len = statistics.mean(t.mean_log("mllm/answer_length") for t in timers["msjoe"])
    trl_len = statistics.mean(t.mean_log("completions/mean_length") for t in timers["trl"])

    print(f"tiny Qwen2.5-VL, 4 rows per step (1 prompt x 4 generations), K={args.key_frames} key frames "
          f"({reference.config.effective_num_preview_frames} preview frames), {args.steps} timed steps x {args.repeats} runs per trainer; {load_note()}")  # fmt: skip
    print(f"{width}x{height} video; prompt tokens: answer turn {answer_tokens} with the K key frames, identical for both "
          f"trainers (checked); MSJoE's query turn {query_tokens} with the preview frames")  # fmt: skip
    print(f"completion tokens per row: MSJoE query turn {query_len:.1f} + answer turn {answer_len:.1f}; plain TRL {trl_len:.1f}")  # fmt: skip
    print(f"seconds per optimizer step: {'min wall':>9s} {'median wall':>12s} {'min cpu':>8s}")
    for name, (low, mid, cpu) in (("MSJoE joint (2 turns)", msjoe), ("plain TRL (answer turn)", trl)):
        print(f"  {name:24s} {low:9.3f} {mid:12.3f} {cpu:8.3f}")
    ratio = msjoe[0] / trl[0]
    print(f"MSJoE step time / plain TRL GRPO step time = {ratio:.2f}x (min wall; median {msjoe[1] / trl[1]:.2f}x, "
          f"cpu {msjoe[2] / trl[2]:.2f}x) {verdict(ratio, GOAL, at_least=False)}")  # fmt: skip


if __name__ == "__main__":
    main()
