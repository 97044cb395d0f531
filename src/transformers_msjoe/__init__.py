"""transformers-msjoe: MSJoE (arXiv 2602.22932) for Hugging Face transformers, TRL, datasets and lmms-eval.

Importing the package registers `MSJoEConfig` / `MSJoEForVideoQA` (and the stand-alone sampler) with the
transformers Auto classes, so `AutoModel.from_pretrained(<msjoe checkpoint>)` works without
`trust_remote_code`.
"""

from transformers import AutoConfig, AutoModel

from .clip_scoring import MSJoECLIPScorer
from .configuration_msjoe import MSJoEConfig, MSJoESamplerConfig
from .modeling_msjoe import MSJoEForVideoQA, MSJoEPreTrainedModel, MSJoEVideoQAOutput
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
    "MSJoEPreTrainedModel",
    "MSJoEProcessor",
    "MSJoESamplerConfig",
    "MSJoEVideoQAOutput",
    "VideoDecodeError",
    "available_selectors",
    "build_selector",
    "open_video",
    "register_selector",
]

AutoConfig.register(MSJoEConfig.model_type, MSJoEConfig, exist_ok=True)
AutoConfig.register(MSJoESamplerConfig.model_type, MSJoESamplerConfig, exist_ok=True)
AutoModel.register(MSJoEConfig, MSJoEForVideoQA, exist_ok=True)
AutoModel.register(MSJoESamplerConfig, MSJoEFrameSampler, exist_ok=True)
