"""What a results file records about the run, beyond the config: package versions and the identity of the
weights (Hub commits from the local cache only, file hashes), so that a score can be traced to what produced it.
"""

from __future__ import annotations

import hashlib
import os
from importlib import metadata
from typing import Any

import torch

from ..fingerprints import file_sha256
from ..hub_utils import resolved_commit_hash

__all__ = ["clip_provenance", "package_versions", "sampler_weights", "text_sha256"]

# recorded in `model_info["versions"]`: key -> distribution name
_VERSIONED_PACKAGES = {
    "torch": "torch",
    "transformers": "transformers",
    "open_clip": "open_clip_torch",
    "torchcodec": "torchcodec",
    "transformers_msjoe": "transformers-msjoe",
    "lmms_eval": "lmms-eval",
}
# the weights files a sampler folder (`MSJoEFrameSampler.save_pretrained`) or Hub repo may hold
_SAMPLER_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


def text_sha256(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages a score depends on (`None`: not installed); torch's with its build tag
    (`2.14.1+cu130`), which the package metadata drops."""
    versions: dict[str, str | None] = {}
    for key, distribution in _VERSIONED_PACKAGES.items():
        try:
            versions[key] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            versions[key] = None
    versions["torch"] = torch.__version__
    return versions


def sampler_weights(sampler: str) -> dict[str, Any]:
    """`sampler=`'s weights: the sha256 of each weights file, and the Hub commit for a Hub id (cache only, offline).

    A folder is identified by its files' hashes (a path says nothing about what was in it); a Hub id also by the
    commit its cached files came from.
    """
    from huggingface_hub import try_to_load_from_cache

    if os.path.isdir(sampler):
        files = {name: os.path.join(sampler, name) for name in sorted(os.listdir(sampler))}
        files = {n: p for n, p in files.items() if n.endswith((".safetensors", ".bin")) and os.path.isfile(p)}
        return {"sampler_revision": None, "sampler_weights_sha256": {n: file_sha256(p) for n, p in files.items()}}
    for name in _SAMPLER_WEIGHTS:
        cached = try_to_load_from_cache(sampler, name)
        if isinstance(cached, str):
            return {
                "sampler_revision": resolved_commit_hash(sampler, filename=name),
                "sampler_weights_sha256": {name: file_sha256(cached)},
            }
    return {"sampler_revision": None, "sampler_weights_sha256": None}


def clip_provenance(clip_model_name: str, clip_pretrained: str | None) -> dict[str, Any]:
    """Which Hub repo the CLIP weights come from and its commit, from the local Hub cache only (never the network).

    Built-in open_clip tags (`ViT-L-14/openai`) are downloaded by open_clip from the repo in its pretrained table
    (`get_pretrained_cfg(...)["hf_hub"]`, e.g. `timm/vit_large_patch14_clip_224.openai/`), so the tag alone does not
    pin the weights. `clip_revision_note` says why `clip_revision` is `None` when it is.
    """
    repo, files, note = None, (), None
    if clip_model_name.startswith("hf-hub:"):
        repo, files = clip_model_name.removeprefix("hf-hub:"), ("open_clip_config.json",)
    elif clip_model_name.startswith("local-dir:"):
        note = "a local open_clip folder: no Hub commit"
    elif not clip_pretrained:
        note = "no pretrained tag: random weights"
    elif os.path.isfile(clip_pretrained):
        note = f"weights file {clip_pretrained}: no Hub commit"
    else:
        import open_clip
        from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

        cfg = open_clip.get_pretrained_cfg(clip_model_name, clip_pretrained)
        hub = cfg.get("hf_hub", "")
        if hub:
            repo, filename = os.path.split(hub)  # "org/repo/" (open_clip's default file names) or "org/repo/file"
            # open_clip tries a .safetensors twin of the file first
            if not filename:
                files = (HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME)
            elif filename.endswith((".bin", ".pth")):
                files = (filename[:-4] + ".safetensors", filename)
            else:
                files = (filename,)
        elif cfg.get("url"):
            note = f"downloaded by open_clip from {cfg['url']}: no Hub commit"
        else:
            note = f"{clip_pretrained!r} is not an open_clip pretrained tag of {clip_model_name}"
    revision = next(filter(None, (resolved_commit_hash(repo, filename=f) for f in files)), None) if repo else None
    if repo and revision is None:
        note = f"{repo} is not in the local Hub cache (weights loaded from elsewhere, or not loaded yet)"
    return {"clip_hub_repo": repo, "clip_revision": revision, "clip_revision_note": note}
