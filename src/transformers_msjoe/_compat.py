"""Version-specific shims: the only module that branches on the versions of the libraries we plug into.

Each shim names the upstream API it relies on and has a test that fails when upstream changes.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from typing import Any

import torch

__all__ = [
    "EpochSeededRepeatSampler",
    "datasets_video_source",
    "folder_loader_video_extensions",
    "grpo_checkpointing_field",
    "import_lmms_eval_task_utils",
    "probe_video_container",
    "record_lmms_eval_model_info",
    "route_fused_lm_head_to_mllm",
    "scan_key_frame_seconds",
    "trl_unwrap_model_for_generation",
    "upstream_gradient_checkpointing_flag_ok",
]


# ---------------------------------------------------------------------------------------------- torchcodec
# torchcodec >= 0.17 exports its low-level "blocks" API (`Demuxer`, `FrameIndex`, `get_container_metadata`)
# from `torchcodec.decoders`. Earlier releases ship it only under a private module, which we do not use: the
# features below then raise a clear error (key frames) or are skipped (error diagnosis).
# Drift test: tests/test_video_io.py::test_compat_key_frame_scan_matches_decoder.
def _torchcodec_blocks() -> Any | None:
    try:
        from torchcodec.decoders import Demuxer, get_container_metadata  # noqa: F401 (the >= 0.17 public names)
    except ImportError:
        return None
    from torchcodec import decoders

    return decoders


def scan_key_frame_seconds(source: str | bytes) -> torch.Tensor:
    """Presentation times `(K,)` float64 of the key frames of the best video stream, read by demuxing only.

    Uses torchcodec's public `Demuxer(...).streams[0].scan()` (a pass over packets, no decoding: ~25 ms for a
    10-minute 30 fps video).
    """
    blocks = _torchcodec_blocks()
    if blocks is None:
        import torchcodec

        raise RuntimeError(
            f"Reading key frames needs torchcodec >= 0.17 (public `torchcodec.decoders.Demuxer`), found "
            f"{torchcodec.__version__}: upgrade torchcodec, or use candidate_seek_mode='exact'."
        )
    index = blocks.Demuxer(source, streams="video").streams[0].scan()
    return index.pts_seconds[index.key_frame_indices].to(torch.float64)  # (K,)


def probe_video_container(source: str | bytes) -> dict[str, Any] | None:
    """What the container header lists, to explain why a decoder failed: `{"readable", "video_streams",
    "media_types"}`, or `None` when this torchcodec cannot tell (it then has no public container probe)."""
    blocks = _torchcodec_blocks()
    if blocks is None:
        return None
    try:
        meta = blocks.get_container_metadata(source)
    except (RuntimeError, ValueError):
        return {"readable": False, "video_streams": 0, "media_types": []}
    media_types = [stream.media_type for stream in meta.streams]
    return {"readable": True, "video_streams": media_types.count("video"), "media_types": media_types}


# ---------------------------------------------------------------------------------------------- lmms-eval 0.7.3
# `lmms_eval.tasks.longvideobench.utils` imports `decord` at module level, yet lmms-eval does not depend on decord
# and only its frame-list variant (`longvideobench_*_i`, `load_video`) uses it. We import the module with a
# placeholder `decord` present during the import only; its `load_video` then raises a clear error if called.
# Drift test: tests/test_lmms_eval_benchmarks.py::test_compat_longvideobench_utils_import_decord.
def _decord_unavailable(*args: Any, **kwargs: Any) -> Any:
    raise ImportError(
        "decord is not installed: lmms-eval's frame-list variants (longvideobench_*_i) decode with it "
        "(`pip install decord`); the msjoe tasks pass the video path and do not need it."
    )


def import_lmms_eval_task_utils(benchmark: str) -> Any:
    """`lmms_eval.tasks.<benchmark>.utils`, importable even without decord (see above)."""
    import importlib
    import sys
    import types

    name = f"lmms_eval.tasks.{benchmark}.utils"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name != "decord":
            raise
    placeholder = types.ModuleType("decord", "Placeholder: decord is not installed.")
    placeholder.VideoReader = placeholder.cpu = _decord_unavailable
    sys.modules["decord"] = placeholder
    try:
        return importlib.import_module(name)
    finally:
        if sys.modules.get("decord") is placeholder:
            del sys.modules["decord"]


# lmms-eval never asks a model to describe itself: `evaluator.simple_evaluate` has
# `results["config"].update(lm.get_model_info())` commented out (a TODO), so the results file of a `--model NAME`
# run holds only the raw `--model_args` string. The MSJoE plugin model calls this when it is built: `evaluate`,
# which `simple_evaluate` looks up by its module-global name after building the model, then adds the model's
# `get_model_info()` to its results as `results["model_info"]`. Other models' results are untouched.
# Drift test: tests/test_lmms_eval_model.py::test_compat_lmms_eval_has_no_model_info_hook.
def record_lmms_eval_model_info() -> None:
    """Install (once) the `evaluate` wrapper that stores an MSJoE model's `get_model_info()` in the results."""
    import functools
    import inspect

    from lmms_eval import evaluator

    original = evaluator.evaluate
    if getattr(original, "_msjoe_records_model_info", False):
        return
    signature = inspect.signature(original)

    @functools.wraps(original)
    def evaluate(*args: Any, **kwargs: Any) -> Any:
        from .lmms_eval_plugin.model import MSJoELmmsEvalModel

        results = original(*args, **kwargs)
        lm = signature.bind_partial(*args, **kwargs).arguments.get("lm")
        if results is not None and isinstance(lm, MSJoELmmsEvalModel):  # None on ranks other than 0
            results["model_info"] = lm.get_model_info()
        return results

    evaluate._msjoe_records_model_info = True
    evaluator.evaluate = evaluate


# ---------------------------------------------------------------------------------------------- trl 1.16
# `GRPOTrainer.__init__` patches `model.forward` (an instance attribute) with `trl.trainer.utils.add_fused_lm_head`:
# called with `fused_lm_head=True` it runs `model.base_model` for hidden states and projects them through
# `model.get_output_embeddings()`. On `MSJoEForVideoQA` the backbone is the wrapped MLLM's, so the patch must sit
# on the MLLM; `MSJoEForVideoQA.forward` passes `fused_lm_head`/`labels` through to it.
# Drift test: tests/test_grpo_trainer.py::test_compat_fused_lm_head_is_routed_to_the_mllm.
def route_fused_lm_head_to_mllm(model: Any, *, temperature: float, cast_lm_head_to_fp32: bool) -> None:
    """Undo TRL's fused-LM-head patch on the MSJoE wrapper `model` and apply it to `model.mllm` instead."""
    from trl.trainer.utils import add_fused_lm_head

    if "forward" not in vars(model):
        raise RuntimeError(
            "TRL no longer patches `model.forward` with a fused LM head in GRPOTrainer.__init__ (the TRL 1.16 "
            "behaviour MSJoEGRPOTrainer adapts); update transformers_msjoe._compat.route_fused_lm_head_to_mllm."
        )
    del model.forward  # back to MSJoEForVideoQA.forward, which delegates to the MLLM
    add_fused_lm_head(
        model.mllm, temperature=temperature, cast_lm_head_to_fp32=cast_lm_head_to_fp32, outputs=("log_probs", "entropy")
    )


# TRL 1.16 (`unwrap_model_for_generation`) and PEFT 0.21 (`PeftModel.__init__`) read `model.is_gradient_checkpointing`,
# which transformers >= 5.2x deprecates with a FutureWarning about *their* call (users cannot act on it; our
# test-suite turns transformers FutureWarnings into errors). Silence exactly that message around those calls.
# Drift test: tests/test_grpo_trainer.py::test_compat_upstream_still_reads_the_deprecated_flag (fails once TRL and
# PEFT read `is_activation_checkpointing`, so the shim can go).
_GC_DEPRECATION = r"`is_gradient_checkpointing` is deprecated"


@contextlib.contextmanager
def upstream_gradient_checkpointing_flag_ok() -> Iterator[None]:
    """Ignore transformers' deprecation warning for `is_gradient_checkpointing` raised inside TRL/PEFT code."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_GC_DEPRECATION, category=FutureWarning)
        yield


@contextlib.contextmanager
def trl_unwrap_model_for_generation(model: Any, accelerator: Any, **kwargs: Any) -> Iterator[Any]:
    """`trl.models.unwrap_model_for_generation` without the deprecation warning about TRL's own call."""
    from trl.models import unwrap_model_for_generation

    with (
        upstream_gradient_checkpointing_flag_ok(),
        unwrap_model_for_generation(model, accelerator, **kwargs) as unwrapped,
    ):
        yield unwrapped


# TRL 1.16's `GRPOConfig` still defaults the deprecated `gradient_checkpointing=True`, which makes transformers >= 5.2x
# emit a FutureWarning for every config. `MSJoEGRPOConfig` declares these two fields instead: TRL's default
# (checkpointing on) kept under the new name, with TRL's help texts.
# Drift test: tests/test_grpo_config.py::test_compat_trl_still_sets_deprecated_gradient_checkpointing (fails once
# upstream no longer needs this, so the two fields can be dropped).
def grpo_checkpointing_field(name: str) -> Any:
    """The dataclass field `MSJoEGRPOConfig` declares for `gradient_checkpointing` or `activation_checkpointing`."""
    import dataclasses

    from trl import GRPOConfig

    defaults = {"gradient_checkpointing": None, "activation_checkpointing": True}
    help_text = GRPOConfig.__dataclass_fields__[name].metadata["help"]
    return dataclasses.field(default=defaults[name], metadata={"help": help_text})


# TRL 1.16's `RepeatSampler` draws every epoch's order from one generator stream and has no `set_epoch`; `Trainer`
# skips the finished epochs of a resumed run without iterating them, so the resumed run would replay epoch 1's order.
# `Trainer`/accelerate call `set_epoch` at every epoch: this wrapper reseeds the generator from `seed + epoch` there.
# Drift test: tests/test_grpo_trainer.py::test_compat_trl_repeat_sampler_is_still_not_epoch_seeded.
class EpochSeededRepeatSampler(torch.utils.data.Sampler):
    """TRL's `RepeatSampler` whose order in each epoch depends on `seed + epoch` only (unshuffled: unchanged)."""

    def __init__(self, sampler: Any):
        self.sampler = sampler

    def set_epoch(self, epoch: int) -> None:
        if self.sampler.shuffle and self.sampler.seed is not None:
            self.sampler.generator.manual_seed(self.sampler.seed + epoch)

    def __iter__(self) -> Iterator[int]:
        return iter(self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)


# ---------------------------------------------------------------------------------------------- datasets 5.2
# The folder-based loader (`videofolder`, and a Hub repo whose card has `configs`) keeps only files whose extension
# is in `VideoFolder.EXTENSIONS`; `datasets` publishes that list nowhere else (the class lives in the private
# `datasets.packaged_modules`). The dataset builder rejects other containers, whose videos the loader would skip.
# Drift test: tests/test_data_schema.py::test_compat_folder_loader_video_extensions.
def folder_loader_video_extensions() -> tuple[str, ...]:
    """Lower-case extensions (with the dot) of the video files `datasets`' folder-based loader picks up."""
    from datasets.packaged_modules.videofolder.videofolder import VideoFolder

    return tuple(ext.lower() for ext in VideoFolder.EXTENSIONS)


# `datasets` 5.2's `Video(decode=True)` yields a torchcodec `VideoDecoder` tagged with the private attribute
# `_hf_encoded = {"path", "bytes"}` it was built from, which `datasets.features.video.encode_torchcodec_video` returns
# (and raises NotImplementedError for other decoders). No public API gives the source back; the reader needs it to
# open resized decoders, read the key-frame index and fingerprint the content for the feature cache.
# Drift test: tests/test_video_io.py::test_compat_datasets_video_source.
def datasets_video_source(decoder: Any) -> str | bytes | None:
    """The path or bytes a `datasets` `Video(decode=True)` decoder was built from; `None` for other decoders."""
    try:
        from datasets.features.video import encode_torchcodec_video

        encoded = encode_torchcodec_video(decoder)
    except (ImportError, NotImplementedError):
        return None
    if encoded.get("bytes"):
        return bytes(encoded["bytes"])
    path = encoded.get("path")
    return path if isinstance(path, str) and os.path.isfile(path) else None
