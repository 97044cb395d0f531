"""Shared helpers of the speed/memory benchmarks (issue 6): arguments, test videos, timing, peak RSS.

Every benchmark measures MSJoE's code and its named baseline in the same run, on the same input, and prints
its ratio line last. Timings are the minimum over interleaved repeats (the machine may be shared: the minimum
is the run least disturbed by other processes); medians are printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

WORKDIR = os.environ.get("MSJOE_BENCH_DIR", os.path.join("/tmp", "msjoe-bench"))


def parser(description: str, *, clip: str | None, duration: float = 600.0, repeats: int = 3) -> argparse.ArgumentParser:
    """The arguments every benchmark takes: `--clip`, `--device`, `--duration`, `--repeats`, `--workdir`."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--clip", default=clip, help=f"CLIP identity (default: {clip}); e.g. ViT-L-14/openai on a GPU box.")
    p.add_argument("--device", default="cpu", help="Device for CLIP / the models (cpu or cuda).")
    p.add_argument("--duration", type=float, default=duration, help="Length of the synthetic video in seconds.")
    p.add_argument("--repeats", type=int, default=repeats, help="Timed repeats per method (interleaved).")
    p.add_argument("--workdir", default=WORKDIR, help="Where test videos and tiny models are kept between runs.")
    p.add_argument(
        "--threads", type=int, default=None,
        help="torch intra-op threads (default: torch's). On a shared CPU, 1 avoids OpenMP barrier stalls: with other "
        "processes on the cores, every small parallel op waits for a descheduled thread.",
    )  # fmt: skip
    return p


def setup(args: argparse.Namespace) -> None:
    """Apply `--threads` and create the work folder."""
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    os.makedirs(args.workdir, exist_ok=True)


def video(
    workdir: str, *, duration: float, fps: float = 30.0, size: tuple[int, int] = (320, 240), gop: int | None = None
) -> str:
    """A synthetic H.264 video with planted events, rendered once and reused."""
    from transformers_msjoe.synthetic_video import make_synthetic_video

    name = f"synthetic_{int(duration)}s_{int(fps)}fps_{size[0]}x{size[1]}" + (f"_gop{gop}" if gop else "") + ".mp4"
    path = os.path.join(workdir, name)
    if not os.path.exists(path):
        start = time.perf_counter()
        make_synthetic_video(path, duration_seconds=duration, fps=fps, size=size, gop=gop)
        print(f"rendered {path} in {time.perf_counter() - start:.1f} s")
    return path


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def interleaved(
    methods: dict[str, Callable[[], object]], repeats: int, device: str = "cpu"
) -> dict[str, dict[str, list[float]]]:
    """Run each method `repeats` times, alternating; per method the wall seconds and this process's CPU seconds.

    CPU seconds (`time.process_time`, all threads) are what a CPU-bound method costs whatever else runs on the
    machine; wall seconds on a shared machine also count the time other processes held the cores.
    """
    times: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name in methods}
    for _ in range(repeats):
        for name, fn in methods.items():
            sync(device)
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            sync(device)
            times[name]["wall"].append(time.perf_counter() - wall)
            times[name]["cpu"].append(time.process_time() - cpu)
    return times


def describe(name: str, seconds: dict[str, list[float]]) -> str:
    wall, cpu = seconds["wall"], seconds["cpu"]
    return (
        f"{name}: wall min {min(wall):.3f} s (median {statistics.median(wall):.3f}), "
        f"CPU min {min(cpu):.3f} s (median {statistics.median(cpu):.3f}) over {len(wall)} runs"
    )


def timing_basis(device: str) -> str:
    """Which clock the ratio uses: CPU time for CPU runs (robust on a shared machine), wall time on a GPU."""
    return "wall" if device.startswith("cuda") else "cpu"


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS to its current RSS (Linux >= 4.0); `False` where that is not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _proc_status_mib(field: str) -> float:
    """A memory field of /proc/self/status (reported in KiB), in MiB."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status (this measurement needs Linux)")


def peak_rss_since_reset_mib() -> float:
    """Peak RSS (`VmHWM`) since the last `reset_peak_rss()`, or since the process started."""
    return _proc_status_mib("VmHWM")


def current_rss_mib() -> float:
    return _proc_status_mib("VmRSS")


def run_isolated(script: str, *args: str) -> dict:
    """Run `python script args` in a fresh process (its own peak RSS) and return the JSON it prints last."""
    result = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{script} {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def load_note() -> str:
    """The machine's load average and torch's threads: timings on a shared machine are only as quiet as it is."""
    import torch

    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} CPUs; torch threads {torch.get_num_threads()}"


def verdict(ratio: float, goal: float, *, at_least: bool) -> str:
    met = ratio >= goal if at_least else ratio <= goal
    return f"(goal {'>=' if at_least else '<='} {goal:g}x: {'met' if met else 'MISSED'})"


def tiny_model(workdir: str, clip: str, device: str = "cpu", **config):
    """A tiny random MLLM (Qwen2.5-VL family, saved once under `workdir`) wrapped by MSJoE with `clip`
    (`"tiny"`: the built-in 3M-parameter random CLIP) and the demo's generation budgets."""
    from transformers_msjoe import MSJoEForVideoQA
    from transformers_msjoe.tiny_models import save_tiny_clip, save_tiny_mllm

    mllm_dir = os.path.join(workdir, "tiny-qwen2_5_vl")
    if not os.path.exists(os.path.join(mllm_dir, "config.json")):
        save_tiny_mllm(mllm_dir, "qwen2_5_vl")
    if clip == "tiny":
        clip = os.path.join(workdir, "tiny-clip")
        if not os.path.exists(os.path.join(clip, "open_clip_model.safetensors")):
            save_tiny_clip(clip)
    settings = {"num_key_frames": 16, "query_max_new_tokens": 48, "answer_max_new_tokens": 16}  # as `msjoe demo`
    settings.update(config)
    return MSJoEForVideoQA.from_mllm(mllm_dir, clip=clip, **settings).to(device)
