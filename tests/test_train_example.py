"""`accelerate launch examples/train_grpo.py` with the tiny CPU config: 2 steps in a subprocess, loadable output."""

import json
import os
import re
import subprocess
import sys

import pytest

from transformers_msjoe import MSJoEForVideoQA
from transformers_msjoe.data import build_longvideo_qa

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def dataset_folder(longvideo_corpus, tmp_path_factory):
    """A local folder in the msjoe/longvideo-qa layout, built from the shared raw corpus."""
    raw = tmp_path_factory.mktemp("raw-qa")
    qa_file = raw / "qa.jsonl"
    qa_file.write_text("".join(json.dumps(row) + "\n" for row in longvideo_corpus["rows"]))
    out = tmp_path_factory.mktemp("longvideo-qa") / "folder"
    build_longvideo_qa(qa_file, longvideo_corpus["videos_dir"], out, show_progress=False)
    return str(out)


def test_accelerate_launch_trains_two_steps_and_saves_a_loadable_checkpoint(
    tiny_mllm_dir, tiny_clip_dir, dataset_folder, tmp_path
):
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "1", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        os.path.join(ROOT, "examples", "train_grpo.py"), "--config", os.path.join(ROOT, "examples", "configs", "tiny_cpu.yaml"),
        "--model_name_or_path", tiny_mllm_dir("qwen2_5_vl"), "--clip", tiny_clip_dir, "--dataset_name", dataset_folder,
        "--output_dir", str(out),
    ]  # fmt: skip
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert len(re.findall(r"'sampler/loss'", output)) == 2, output[-4000:]  # one training log line per step
    model = MSJoEForVideoQA.from_pretrained(out)
    assert model.processor is not None
    assert model.config.num_key_frames == 4  # the config's override is saved with the checkpoint
    assert model.config.query_max_new_tokens == 8
