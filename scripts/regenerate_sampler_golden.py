"""Regenerate tests/artifacts/sampler_golden.safetensors, the pinned behaviour of the U-Net sampler.

The file holds the weights of a small seeded sampler, a fixed similarity input with padding, and the logits
the forward pass produced. tests/test_modeling_sampler.py reloads the weights and checks the logits, so any
change to the architecture or its maths fails loudly. Regenerate ONLY for an intended change:

    python scripts/regenerate_sampler_golden.py && git diff --stat tests/artifacts
"""

from pathlib import Path

import torch
from safetensors.torch import save_file

from transformers_msjoe import MSJoEFrameSampler, MSJoESamplerConfig

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "artifacts" / "sampler_golden.safetensors"
CONFIG = dict(base_channels=16, channel_multipliers=[1, 2, 4], kernel_size=3, num_groups=4)


def main() -> None:
    torch.manual_seed(0)
    sampler = MSJoEFrameSampler(MSJoESamplerConfig(**CONFIG)).eval()
    torch.nn.init.normal_(sampler.head.weight, std=0.5)  # non-trivial head so the logits pin every layer
    similarity = torch.rand(2, 3, 45) * 0.3  # (B, Q, T) cosine-like values
    frame_mask = torch.ones(2, 45, dtype=torch.bool)
    frame_mask[1, 30:] = False  # second row: a shorter video padded in the batch
    with torch.no_grad():
        logits = sampler(similarity, frame_mask=frame_mask)
    tensors = {f"weights.{k}": v.contiguous() for k, v in sampler.state_dict().items()}
    tensors.update(similarity=similarity, frame_mask=frame_mask, logits=logits)
    save_file(tensors, GOLDEN)
    print(f"wrote {GOLDEN} ({len(tensors)} tensors)")


if __name__ == "__main__":
    main()
