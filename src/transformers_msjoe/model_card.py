"""The Hub model card written next to every saved MSJoE checkpoint."""

from __future__ import annotations

import os

from huggingface_hub import ModelCard, ModelCardData

from .citation import MSJOE_CITATION
from .configuration_msjoe import MSJoEConfig

__all__ = ["render_model_card"]

_TEMPLATE = """---
{{ card_data }}
---

# {{ title }}

An [MSJoE](https://huggingface.co/papers/2602.22932) checkpoint for long-video question answering: a multimodal LLM
and a 1-D U-Net frame sampler evolved jointly, with a frozen CLIP scoring candidate frames.

| part | value |
|---|---|
| MLLM | `{{ mllm }}` (`{{ mllm_type }}`) |
| CLIP (frozen, not in these weights) | `{{ clip }}` |
| sampler | 1-D U-Net, {{ sampler_params }} parameters, {{ sampler_state }} |
| key frames K | {{ k }} |
| preview frames | {{ preview }} |
| queries per question | {{ num_queries }} |
| candidates | {{ fps }} fps, at most {{ max_candidates }} |
| pixel budgets (preview / key frame) | {{ preview_pixels }} / {{ key_pixels }} |
| inference selection | `{{ selection }}` ({{ selection_mode }}) |

## Use

```python
import transformers_msjoe  # registers MSJoE with the Auto classes; no trust_remote_code needed
from transformers_msjoe import MSJoEForVideoQA

model = MSJoEForVideoQA.from_pretrained("{{ repo_id }}")
out = model.answer("video.mp4", "What happens after the goal?", options=["A. ...", "B. ...", "C. ...", "D. ..."])
print(out.option, out.key_frame_timestamps)
```

Install with `pip install transformers-msjoe`. CLIP weights are loaded from open_clip (`{{ clip }}`) at first use.

## Citation

```bibtex
{{ citation }}
```
"""


def _is_hub_id(name: str) -> bool:
    """`org/name` on the Hub (a local folder is not a valid `base_model`)."""
    return name.count("/") == 1 and not os.path.exists(name) and not name.startswith((".", "/", "~"))


def render_model_card(config: MSJoEConfig, *, repo_id: str, sampler_params: int) -> ModelCard:
    """A model card naming the MLLM, the CLIP and every MSJoE setting of `config`."""
    mllm = config.mllm_config.name_or_path or config.mllm_config.model_type
    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag="video-text-to-text",
        tags=["msjoe", "video-question-answering", "frame-selection", "long-video"],
        base_model=mllm if _is_hub_id(mllm) else None,
    )
    return ModelCard.from_template(
        card_data,
        template_str=_TEMPLATE,
        title=f"MSJoE: {repo_id}",
        repo_id=repo_id,
        mllm=mllm,
        mllm_type=config.mllm_config.model_type,
        clip=config.clip,
        sampler_params=f"{sampler_params / 1e6:.2f}M",
        sampler_state="trained"
        if config.sampler_is_trained
        else "**untrained (random init): use a training-free selection**",
        k=config.num_key_frames,
        preview=config.effective_num_preview_frames,
        num_queries=config.num_queries,
        fps=config.candidate_fps,
        max_candidates=config.max_candidate_frames,
        preview_pixels=config.preview_max_pixels,
        key_pixels=config.key_frame_max_pixels,
        selection=config.selection,
        selection_mode=config.sampler_selection_mode,
        citation=MSJOE_CITATION,
    )
