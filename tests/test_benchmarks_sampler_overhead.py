"""`benchmarks/sampler_overhead.py` measures any selection strategy and never touches the user's feature cache."""

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "sampler_overhead.py"


def test_selection_flag_and_no_write_to_the_default_feature_cache(tmp_path):
    default_cache = tmp_path / "user-feature-cache"  # where a model's default cache would write
    env = {k: v for k, v in os.environ.items() if k != "MSJOE_DISABLE_FEATURE_CACHE"}
    env.update(MSJOE_FEATURE_CACHE=str(default_cache), HF_HUB_OFFLINE="1")
    args = ["--selection", "clip_topk", "--duration", "20", "--repeats", "1", "--workdir", str(tmp_path / "work")]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, cwd=SCRIPT.parent
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "selection clip_topk" in result.stdout
    assert result.stdout.strip().splitlines()[-1].startswith("clip_topk selection share of the whole answer()")
    assert not default_cache.exists() or not any(default_cache.rglob("*.safetensors"))
