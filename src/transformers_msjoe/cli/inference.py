"""`msjoe answer`, `msjoe select` and `msjoe demo`."""

from __future__ import annotations

import argparse
from typing import Any

from .output import emit, emit_json

DEFAULT_MODEL = "Qwen/Qwen2.5-VL-7B-Instruct"


def positive_int(text: str) -> int:
    """argparse type for a frame budget: K = 0 would silently mean "the default" further down."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer (a number of key frames), got {text!r}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `answer`, `select` and `demo`."""
    from ..selection import available_selectors

    strategies = ", ".join(available_selectors())
    for name, func, help_text in (
        ("answer", _answer, "Answer a question about a video with the full MSJoE pipeline."),
        ("select", _select, "Select the key frames for a question (no answer turn)."),
    ):
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("video", help="Path to the video file.")
        sub.add_argument("question", help="The question about the video.")
        sub.add_argument(
            "--options",
            nargs="+",
            metavar="OPTION",
            help='Multiple-choice options: "A. red" "B. blue" ... or plain texts.',
        )
        sub.add_argument(
            "--model",
            default=DEFAULT_MODEL,
            help=f"MSJoE checkpoint or image-text-to-text MLLM (id or path). Default: {DEFAULT_MODEL}.",
        )
        sub.add_argument(
            "--clip", default=None, help='CLIP identity, e.g. "ViT-L-14/openai" or a local open_clip folder.'
        )
        sub.add_argument("--sampler", default=None, help="Trained sampler folder (only when --model is a plain MLLM).")
        sub.add_argument(
            "--frames",
            type=positive_int,
            default=None,
            metavar="K",
            help="Number of key frames K (default: the model's).",
        )
        sub.add_argument(
            "--selection", default=None, help=f"Frame selection strategy, one of {strategies} (default: the model's)."
        )
        sub.add_argument(
            "--selection-option", action="append", default=None, metavar="KEY=VALUE",
            help="A hyper-parameter of the selection strategy, repeatable, e.g. temperature=0.5 (see docs/selectors.md).",
        )  # fmt: skip
        sub.add_argument(
            "--queries", nargs="+", default=None, help="Skip the query turn and score frames against these queries."
        )
        sub.add_argument("--device", default=None, help="Device for the models, e.g. cuda or cpu.")
        sub.add_argument("--dtype", default=None, choices=("float32", "float16", "bfloat16"), help="MLLM dtype.")
        sub.add_argument("--plot", default=None, metavar="PNG", help="Write the selection figure here.")
        sub.add_argument("--json", action="store_true", help="Print the full result as JSON.")
        sub.set_defaults(func=func)
    _register_demo(subparsers, strategies)


def _register_demo(subparsers: argparse._SubParsersAction, strategies: str) -> None:
    """Add `demo`: the whole pipeline offline, on tiny random models."""
    demo = subparsers.add_parser(
        "demo",
        help="Run the whole pipeline offline on a generated video with tiny random models.",
        description="Builds tiny random models and a 10-minute synthetic video, answers one question, writes a plot "
        "and a JSON report. Weights are random: this shows the pipeline, not accuracy.",
    )
    demo.add_argument("--output-dir", default="msjoe-demo", help="Where models, video, plot and report go.")
    demo.add_argument(
        "--family", default="qwen2_5_vl", help="Tiny MLLM family: qwen2_5_vl, qwen3_vl, llava_onevision, smolvlm."
    )
    demo.add_argument("--duration", type=float, default=600.0, help="Length of the generated video in seconds.")
    demo.add_argument("--frames", type=positive_int, default=16, metavar="K", help="Number of key frames K.")
    demo.add_argument("--selection", default="msjoe", help=f"Frame selection strategy, one of {strategies}.")
    demo.set_defaults(func=_demo)


def _load(args: argparse.Namespace):
    import torch

    from ..loading import load_msjoe_model

    mllm_kwargs: dict[str, Any] = {}
    if args.dtype:
        mllm_kwargs["dtype"] = getattr(torch, args.dtype)
    if args.device:
        mllm_kwargs["device_map"] = args.device  # load straight onto the device, never a full copy on the CPU first
    overrides = {} if args.frames is None else {"num_key_frames": args.frames}
    return load_msjoe_model(args.model, clip=args.clip, sampler=args.sampler, mllm_kwargs=mllm_kwargs, **overrides)


def _report(output, args: argparse.Namespace) -> None:
    if args.plot:
        from ..plotting import plot_selection

        plot_selection(output, args.video, args.plot)
    if args.json:
        emit_json(output.to_dict())
        return
    _emit_output(output, plot=args.plot)


def _emit_output(output, *, plot: str | None, fallback_note: str = "fallback: question") -> None:
    """The human-readable lines of one result, shared by `answer`, `select` and `demo`."""
    emit(f"queries: {output.queries}" + (f"  ({fallback_note})" if output.queries_fallback else ""))
    emit("key frames (s): " + ", ".join(f"{t:.1f}" for t in output.key_frame_timestamps.tolist()))
    if output.answer is not None:
        emit(f"answer: {output.answer}" + (f"  [option {output.option}]" if output.option else ""))
    emit("seconds: " + ", ".join(f"{k} {v:.3f}" for k, v in output.timings.items()))
    if plot:
        emit(f"plot: {plot}")


def _common(args: argparse.Namespace) -> dict[str, Any]:
    from ..selection import parse_selection_options

    options = parse_selection_options(args.selection_option)
    return dict(selection=args.selection, selection_options=options, queries=args.queries, show_progress=True)


def _answer(args: argparse.Namespace) -> int:
    model = _load(args)
    _report(model.answer(args.video, args.question, args.options, **_common(args)), args)
    return 0


def _select(args: argparse.Namespace) -> int:
    model = _load(args)
    _report(model.select_frames(args.video, args.question, args.options, **_common(args)), args)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    emit(
        "msjoe demo: tiny RANDOM models (built offline) on a generated video. Outputs are noise; the pipeline is real."
    )
    result = run_demo(
        args.output_dir,
        family=args.family,
        duration_seconds=args.duration,
        num_key_frames=args.frames,
        selection=args.selection,
    )
    out = result.output
    emit(f"video: {result.video_path} ({out.candidate_timestamps.numel()} candidates at 1 fps)")
    _emit_output(out, plot=result.plot_path, fallback_note="fallback: question, the random MLLM wrote no <query> tags")
    emit(f"report: {result.report_path}")
    return 0
