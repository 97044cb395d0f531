"""Two CPU processes (gloo) via `accelerate launch`: both stages train to identical weights on both ranks while the
ranks do different work (turns split into different numbers of frame-shape chunks, a micro-batch whose videos all
fail on one rank), also when rollouts are reused (old log-probs scored in the same number of forwards on both ranks).
A collective mismatch would hang or crash the run; unsynchronised gradients would diverge."""

import json
import os
import subprocess
import sys

import torch
from safetensors.torch import load_file

from transformers_msjoe.synthetic_video import make_synthetic_video

WORKER = """
import json, os, sys
import torch
from datasets import Dataset
from safetensors.torch import save_file
from transformers_msjoe.grpo_config import MSJoEGRPOConfig
from transformers_msjoe.grpo_trainer import MSJoEGRPOTrainer

init_dir, wide, tall, broken, out = sys.argv[1:6]
# shuffle_dataset=False and 2 prompts x 2 generations per rank: step 1 gives rank 0 [wide, tall] (two frame shapes,
# so two chunks per turn) and rank 1 [wide, broken]; step 2 gives rank 0 [wide, broken], rank 1 [broken, broken].
rows = {
    "video": [wide, tall, wide, broken, wide, broken, broken, broken],
    "question": [f"Which box appears first? ({i})" for i in range(8)],
    "options": [["red", "blue"]] * 8, "answer": ["A", "B"] * 4, "pass_rate": [0.5, 0.25] * 4,
}
# Old log-probs (reused rollouts) are scored without gradient: count those forwards, which ZeRO-3 needs equal per rank.
no_grad_forwards = [0]
score = MSJoEGRPOTrainer._get_per_token_logps_and_entropies
def counted(self, *args, **kwargs):
    no_grad_forwards[0] += not torch.is_grad_enabled()
    return score(self, *args, **kwargs)
MSJoEGRPOTrainer._get_per_token_logps_and_entropies = counted
# "joint_reused": one generation of 8 rows per rank optimised in 2 steps (old log-probs); rank 0 has 6 valid rollouts
# (wide x 4, tall x 2: 2 forwards per turn), rank 1 has 2 (wide: 1 forward, plus 1 placeholder forward).
runs = {"sampler_pretrain": {}, "joint": {}, "joint_reused": {"steps_per_generation": 2}}
for run, extra in runs.items():
    stage = "joint" if run == "joint_reused" else run
    no_grad_forwards[0] = 0
    args = MSJoEGRPOConfig(
        output_dir=os.path.join(out, run), per_device_train_batch_size=4, num_generations=2, max_steps=2,
        use_cpu=True, report_to="none", save_strategy="no", logging_steps=1, learning_rate=1e-2,
        sampler_learning_rate=1e-2, loss_type="grpo", activation_checkpointing=False, lr_scheduler_type="constant",
        seed=0, bf16=False, shuffle_dataset=False, training_stage=stage, disable_tqdm=True, **extra,
    )
    alternating = lambda completions, **kw: [float(i % 2) for i in range(len(completions))]
    rewards = None if stage == "sampler_pretrain" else [alternating]
    trainer = MSJoEGRPOTrainer(model=init_dir, args=args, train_dataset=Dataset.from_dict(rows), reward_funcs=rewards)
    trainer.train()
    rank = trainer.accelerator.process_index  # the trainer's use_cpu=True makes the launch a gloo process group
    state = {k: v.contiguous() for k, v in trainer.msjoe_model.state_dict().items()}
    save_file(state, os.path.join(out, f"{run}-rank{rank}.safetensors"))
    with open(os.path.join(out, f"{run}-rank{rank}.json"), "w") as handle:
        json.dump({"logs": trainer.state.log_history, "no_grad_forwards": no_grad_forwards[0]}, handle)
"""


def test_two_processes_train_both_stages_to_identical_weights(grpo_init_dir, short_video, tmp_path):
    tall = make_synthetic_video(tmp_path / "tall.mp4", duration_seconds=30.0, fps=1.0, size=(96, 160))
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        str(worker), grpo_init_dir, short_video, tall, str(broken), str(tmp_path),
    ]  # fmt: skip
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env, check=False, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    initial = load_file(os.path.join(grpo_init_dir, "model.safetensors"))
    for run in ("sampler_pretrain", "joint", "joint_reused"):
        ranks = [load_file(tmp_path / f"{run}-rank{rank}.safetensors") for rank in (0, 1)]
        assert ranks[0].keys() == ranks[1].keys()
        for name, value in ranks[0].items():
            assert torch.equal(value, ranks[1][name]), (run, name)  # gradients were averaged over both ranks
        moved = {name for name, value in ranks[0].items() if name in initial and not torch.equal(value, initial[name])}
        assert any(name.startswith("sampler.") for name in moved), run
        assert any(name.startswith("mllm.") for name in moved) == (run != "sampler_pretrain"), run
        records = [json.loads((tmp_path / f"{run}-rank{rank}.json").read_text()) for rank in (0, 1)]
        skipped = [log["data/skipped_rollouts"] for log in records[0]["logs"] if "data/skipped_rollouts" in log]
        # step 2: all of rank 1's rollouts failed; reused: one generation (8 of 16 rollouts failed) for both steps
        assert skipped == ([8.0] if run == "joint_reused" else [2.0, 6.0]), (run, skipped)
        forwards = [record["no_grad_forwards"] for record in records]
        assert forwards == ([4, 4] if run == "joint_reused" else [0, 0]), (run, forwards)  # 2 per turn on each rank
