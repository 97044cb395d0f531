"""`msjoe data label-difficulty`: the n rollouts of a question decoding its K uniform frames once (what
`label_difficulty` does) vs once per rollout (baseline `decode_per_rollout`: `answer_batch` given the video n times,
as a plain `VideoReader` would be), and what one rollout's decode costs.

Corpus: 2 synthetic videos (`--duration` s, 30 fps, `--size`) with 2 questions each, built with
`build_longvideo_qa`; model: the tiny random Qwen2.5-VL, so generation is nearly free here. With a real MLLM the
seconds saved per question stay (n - 1) x one decode, while generation (n prefills of K frames: the core has no
shared-prefix sampling) grows, so the ratio printed here is an upper bound on the end-to-end gain.

The random model's answers never parse: the parse-failure warning of `label_difficulty` is silenced here.
Takes about 10 minutes on 2 CPU cores with the defaults (the tiny model's vision tower over 32 frames of 640x360).

Run: python benchmarks/difficulty_rollouts.py [--duration 600] [--size 640 360] [--rollouts 8] [--frames 32] [--repeats 3]
"""

from __future__ import annotations

import json
import os
import shutil

from _common import describe, interleaved, load_note, parser, setup, timing_basis, video

BASELINE = "decode_per_rollout"
QUESTIONS = [
    ("Which colour appears first?", ["red", "blue", "yellow", "green"], "A"),
    ("How many squares appear?", ["one", "two", "three"], "C"),
]


def build_corpus(workdir: str, duration: float, size: tuple[int, int]) -> str:
    """A built folder with 2 videos x 2 questions (rebuilt every run: cheap, hard links)."""
    from transformers_msjoe.data import build_longvideo_qa

    raw = os.path.join(workdir, "difficulty-raw")
    shutil.rmtree(raw, ignore_errors=True)
    os.makedirs(os.path.join(raw, "videos"))
    rows = []
    for v in range(2):
        os.link(video(workdir, duration=duration, size=size), os.path.join(raw, "videos", f"v{v}.mp4"))
        rows += [
            {"id": f"v{v}-{q}", "video": f"v{v}.mp4", "question": t, "options": o, "answer": a}
            for q, (t, o, a) in enumerate(QUESTIONS)
        ]
    with open(os.path.join(raw, "qa.jsonl"), "w") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in rows)
    out = os.path.join(workdir, "difficulty-built")
    build_longvideo_qa(
        os.path.join(raw, "qa.jsonl"),
        os.path.join(raw, "videos"),
        out,
        link="hardlink",
        overwrite=True,
        show_progress=False,
    )
    return out


def main() -> None:
    p = parser(__doc__, clip=None)
    p.add_argument(
        "--size", type=int, nargs=2, default=(640, 360), metavar=("W", "H"), help="Video size (default 640 360)."
    )
    p.add_argument("--rollouts", type=int, default=8, help="n, rollouts per question (default 8, the paper's).")
    p.add_argument("--frames", type=int, default=32, help="K, uniform frames per rollout (default 32).")
    args = p.parse_args()
    setup(args)
    import logging

    logging.getLogger("transformers_msjoe.data.difficulty").setLevel(logging.ERROR)  # random answers never parse
    from transformers_msjoe.data import DifficultySettings, difficulty, label_difficulty
    from transformers_msjoe.loading import load_msjoe_model
    from transformers_msjoe.tiny_models import save_tiny_mllm
    from transformers_msjoe.video_io import VideoReader, plan_uniform_timestamps

    folder = build_corpus(args.workdir, args.duration, tuple(args.size))
    mllm_dir = os.path.join(args.workdir, "tiny-qwen2_5_vl")
    if not os.path.exists(os.path.join(mllm_dir, "config.json")):
        save_tiny_mllm(mllm_dir, "qwen2_5_vl")
    model = load_msjoe_model(mllm_dir).to(args.device)
    settings = DifficultySettings(
        model="tiny", num_rollouts=args.rollouts, num_key_frames=args.frames, max_new_tokens=8
    )
    decode_once = difficulty._DecodeOnceReader
    path = os.path.join(folder, "data", "train", "videos", "v0.mp4")

    def label(reader_class) -> None:
        difficulty._DecodeOnceReader = reader_class
        # recompute: fresh rollouts on every call (the cache would otherwise answer all but the first)
        label_difficulty(folder, model, settings, recompute=True, rows_per_batch=2, show_progress=False)

    def one_decode() -> None:
        reader = VideoReader(path)
        reader.frames_at(plan_uniform_timestamps(reader.info.duration_seconds, args.frames, reader.begin_seconds), max_pixels=model.config.key_frame_max_pixels)  # fmt: skip

    label(decode_once)  # warm-up: first-call costs out of the way
    print(f"before: {load_note()}")
    times = interleaved({"one_rollout_decode": one_decode, "decode_once": lambda: label(decode_once), BASELINE: lambda: label(VideoReader)}, args.repeats, args.device)  # fmt: skip
    difficulty._DecodeOnceReader = decode_once
    print(f"after: {load_note()}")
    for name, seconds in times.items():
        print(describe(name, seconds))
    basis = timing_basis(args.device)
    per_question = {name: min(times[name][basis]) / (2 * len(QUESTIONS)) for name in ("decode_once", BASELINE)}
    decode = min(times["one_rollout_decode"][basis])
    print(
        f"{args.frames} uniform frames of a {args.duration:g} s {args.size[0]}x{args.size[1]} video: {decode:.3f} s ({basis}) per decode"
    )
    print(f"per question ({args.rollouts} rollouts, {basis}): decode_once {per_question['decode_once']:.3f} s, {BASELINE} {per_question[BASELINE]:.3f} s; "
          f"saved {per_question[BASELINE] - per_question['decode_once']:.3f} s (expected about (n - 1) x decode = {(args.rollouts - 1) * decode:.3f} s)")  # fmt: skip
    print(
        f"ratio {BASELINE} / decode_once ({basis} time, tiny model): {per_question[BASELINE] / per_question['decode_once']:.2f}x"
    )


if __name__ == "__main__":
    main()
