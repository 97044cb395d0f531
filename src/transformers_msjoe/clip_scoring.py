"""The frozen CLIP scorer: embeds candidate frames and visual queries, returns their cosine similarity.

This is the only module that knows open_clip. CLIP is frozen (eval mode, no gradients) and is never part
of an MSJoE state dict: the MSJoE config names it and it is loaded from open_clip, so a pretrained tag, an
`hf-hub:` repo or a local folder all work.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from transformers.utils import logging

from .configuration_msjoe import parse_clip_identity

logger = logging.get_logger(__name__)

__all__ = ["MSJoECLIPScorer"]

_INTERPOLATIONS = {"bicubic": "bicubic", "bilinear": "bilinear", "nearest": "nearest"}


class MSJoECLIPScorer:
    """Frozen open_clip model with tensor-only preprocessing of decoded uint8 frames.

    Args:
        model_name: open_clip architecture (`"ViT-L-14"`), or a schema `"hf-hub:org/repo"` / `"local-dir:/path"`.
        pretrained: open_clip pretrained tag (`"openai"`), a weights file, or `None`.
        device: where CLIP runs.
        dtype: CLIP's compute dtype; `torch.float16` halves memory and time on a GPU.
    """

    def __init__(
        self,
        model_name: str = "ViT-L-14",
        pretrained: str | None = "openai",
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ):
        import open_clip

        self.model_name = model_name
        self.pretrained = pretrained
        try:
            model = open_clip.create_model(model_name, pretrained=pretrained, device=device, precision="fp32")
        except RuntimeError as err:
            raise ValueError(
                f"open_clip could not build CLIP {model_name!r} with pretrained={pretrained!r}: {err}. "
                "Check `open_clip.list_pretrained()` for valid (architecture, tag) pairs, or pass a local folder."
            ) from err
        self.model = model.to(dtype=dtype).eval().requires_grad_(False)
        self.tokenizer = open_clip.get_tokenizer(model_name)
        self.dtype = dtype
        cfg = open_clip.get_model_preprocess_cfg(model)
        size = cfg.get("size", 224)
        self.image_size: tuple[int, int] = (size, size) if isinstance(size, int) else tuple(size)
        self.mean = torch.tensor(cfg.get("mean", (0.48145466, 0.4578275, 0.40821073)), dtype=torch.float32)
        self.std = torch.tensor(cfg.get("std", (0.26862954, 0.26130258, 0.27577711)), dtype=torch.float32)
        self.interpolation = _INTERPOLATIONS.get(cfg.get("interpolation", "bicubic"), "bicubic")
        self.resize_mode = cfg.get("resize_mode", "shortest")
        self._weights_identity: str | None = None  # computed on first `identity()` (hashing can take ~1 s)

    @classmethod
    def from_identity(cls, clip: str, **kwargs: Any) -> MSJoECLIPScorer:
        """Build from the short form `"ViT-L-14/openai"`, a schema, or a local folder."""
        model_name, pretrained = parse_clip_identity(clip)
        return cls(model_name, pretrained, **kwargs)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def embed_dim(self) -> int:
        return int(self.model.visual.output_dim)

    def to(self, device: str | torch.device) -> MSJoECLIPScorer:
        """Move CLIP (it is no sub-module of the MSJoE model, so `model.to` alone does not move it)."""
        self.model.to(device)
        return self

    def identity(self) -> dict[str, Any]:
        """Everything that changes the frame embeddings; the feature cache keys entries on it.

        `weights` names the weights this scorer loaded: the open_clip tag for published weights, the cached commit
        of an `hf-hub:` repo, else a sha256 of the loaded model (`fingerprints.fingerprint_module`). The last covers
        random weights, `local-dir:` folders and weights files, which no name pins down (two random inits differ;
        a file can be re-saved in place). It is computed once per scorer, on first use (~1 s for ViT-L/14).
        """
        if self._weights_identity is None:
            self._weights_identity = self._identify_weights()
        return {
            "model_name": self.model_name,
            "pretrained": self.pretrained,
            "weights": self._weights_identity,
            "image_size": list(self.image_size),
            "mean": [round(v, 6) for v in self.mean.tolist()],
            "std": [round(v, 6) for v in self.std.tolist()],
            "interpolation": self.interpolation,
            "resize_mode": self.resize_mode,
            "dtype": str(self.dtype),
        }

    def _identify_weights(self) -> str:
        """The `weights` entry of `identity()`."""
        import open_clip

        from .fingerprints import fingerprint_module
        from .hub_utils import resolved_commit_hash

        if self.model_name.startswith("hf-hub:"):
            commit = resolved_commit_hash(self.model_name[len("hf-hub:") :], filename="open_clip_config.json")
            if commit:
                return f"hf-hub-commit:{commit}"
            logger.info(f"No cached commit found for {self.model_name}: its weights are identified by their values.")
        elif self.pretrained and open_clip.get_pretrained_cfg(self.model_name.replace("/", "-"), self.pretrained):
            return f"tag:{self.pretrained}"
        return fingerprint_module(self.model)

    def decode_size(self, height: int, width: int) -> tuple[int, int]:
        """Frame size to ask the decoder for, so that FFmpeg does the big downscale before any tensor exists."""
        target_h, target_w = self.image_size
        if self.resize_mode == "squash":
            return target_h, target_w
        scale = (
            max(target_h / height, target_w / width)
            if self.resize_mode == "shortest"
            else min(target_h / height, target_w / width)
        )
        return max(target_h, math.ceil(height * scale)), max(target_w, math.ceil(width * scale))

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames `(N, 3, H, W)` -> CLIP input `(N, 3, S, S)`: resize shortest side, centre crop, normalise.

        Pure tensor ops on the CLIP device, matching open_clip's PIL pipeline up to resampling round-off.
        """
        target_h, target_w = self.image_size
        x = frames.to(self.device, non_blocking=True).float()  # (N, 3, H, W)
        height, width = x.shape[-2:]
        if self.resize_mode == "squash":
            new_h, new_w = target_h, target_w
        else:
            new_h, new_w = self.decode_size(height, width)
        if (new_h, new_w) != (height, width):
            x = F.interpolate(x, size=(new_h, new_w), mode=self.interpolation, antialias=True, align_corners=False)
            x = x.clamp_(0, 255)
        top, left = (new_h - target_h) // 2, (new_w - target_w) // 2
        x = x[..., top : top + target_h, left : left + target_w]  # (N, 3, S, S)
        mean = self.mean.to(x.device).view(1, 3, 1, 1)
        std = self.std.to(x.device).view(1, 3, 1, 1)
        return ((x / 255.0 - mean) / std).to(self.dtype)

    @torch.inference_mode()
    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames `(N, 3, H, W)` -> unit-norm embeddings `(N, D)` float32 on the CPU."""
        if frames.numel() == 0:
            return torch.empty(0, self.embed_dim)
        emb = self.model.encode_image(self.preprocess(frames))  # (N, D)
        return F.normalize(emb.float(), dim=-1).cpu()

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Queries -> unit-norm embeddings `(Q, D)` float32 on the CPU. CLIP truncates past its context length."""
        tokens = self.tokenizer(list(texts)).to(self.device)  # (Q, context_length)
        emb = self.model.encode_text(tokens)  # (Q, D)
        return F.normalize(emb.float(), dim=-1).cpu()

    @staticmethod
    def similarity(query_embeddings: torch.Tensor, frame_embeddings: torch.Tensor) -> torch.Tensor:
        """Cosine similarity S `(Q, T)` of unit-norm query `(Q, D)` and frame `(T, D)` embeddings (paper §3.2)."""
        return query_embeddings @ frame_embeddings.T
