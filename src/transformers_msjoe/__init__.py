"""transformers-msjoe: MSJoE (arXiv 2602.22932) for Hugging Face transformers, TRL, datasets and lmms-eval.

Importing the package registers `MSJoEConfig` / `MSJoEForVideoQA` (and the stand-alone sampler) with the
transformers Auto classes, so `AutoModel.from_pretrained(<msjoe checkpoint>)` works without
`trust_remote_code`.
"""

from transformers import AutoConfig, AutoModel

from .clip_scoring import MSJoECLIPScorer
from .configuration_msjoe import MSJoEConfig, MSJoESamplerConfig
from .loading import load_msjoe_model
from .modeling_msjoe import MSJoEForVideoQA, MSJoEPreTrainedModel
from .modeling_outputs import MSJoEVideoQAOutput
from .modeling_sampler import MSJoEFrameSampler
from .processing_msjoe import MSJoEProcessor
from .selection import FrameSelection, FrameSelector, available_selectors, build_selector, register_selector
from .video_io import VideoDecodeError, open_video

__version__ = "0.1.0"

__all__ = [
    "FrameSelection",
    "FrameSelector",
    "MSJoECLIPScorer",
    "MSJoEConfig",
    "MSJoEForVideoQA",
    "MSJoEFrameSampler",
    "MSJoEGRPOConfig",
    "MSJoEGRPOTrainer",
    "MSJoEPreTrainedModel",
    "MSJoEProcessor",
    "MSJoESamplerConfig",
    "MSJoEVideoQAOutput",
    "VideoDecodeError",
    "available_selectors",
    "build_selector",
    "load_msjoe_model",
    "open_video",
    "register_selector",
]

# The trainer pulls in TRL: import it only when asked for (PEP 562), so inference does not pay for it.
_LAZY = {"MSJoEGRPOConfig": ".grpo_config", "MSJoEGRPOTrainer": ".grpo_trainer"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


AutoConfig.register(MSJoEConfig.model_type, MSJoEConfig, exist_ok=True)
AutoConfig.register(MSJoESamplerConfig.model_type, MSJoESamplerConfig, exist_ok=True)
AutoModel.register(MSJoEConfig, MSJoEForVideoQA, exist_ok=True)
AutoModel.register(MSJoESamplerConfig, MSJoEFrameSampler, exist_ok=True)
