"""Small Hub helpers shared by every front end: optional files, commit hashes, write tokens."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from huggingface_hub import get_token, hf_hub_download, try_to_load_from_cache
from huggingface_hub.errors import EntryNotFoundError, HFValidationError, RemoteEntryNotFoundError

__all__ = [
    "HUB_KWARGS",
    "MissingHubTokenError",
    "find_optional_file",
    "hub_kwargs",
    "require_hub_token",
    "resolved_commit_hash",
    "upload_folder_to_repo",
]

# The `from_pretrained` arguments that say where files come from; every loader forwards exactly these.
HUB_KWARGS = ("revision", "token", "cache_dir", "local_files_only")


class MissingHubTokenError(ValueError):
    """Raised before any upload when no token is available."""


def hub_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The `HUB_KWARGS` present in `kwargs` (e.g. `mllm_kwargs`), for the config / processor / file look-ups that
    must read the same revision and cache as the weights."""
    return {key: kwargs[key] for key in HUB_KWARGS if key in kwargs}


def find_optional_file(
    name_or_path: str | os.PathLike,
    filename: str,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
) -> str | None:
    """Path of `filename` in a local folder or Hub repo, or `None` when the repo/folder has no such file.

    Network and auth failures still raise: only "this file does not exist" means `None`.
    """
    if os.path.isdir(name_or_path):
        path = os.path.join(name_or_path, filename)
        return path if os.path.isfile(path) else None
    try:
        return hf_hub_download(
            str(name_or_path),
            filename,
            revision=revision,
            token=token,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
        )
    except RemoteEntryNotFoundError:
        return None
    except EntryNotFoundError:
        # offline: absent from the local cache. Known to be missing only if another file of the repo is cached.
        if local_files_only or os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
            return None
        raise


def resolved_commit_hash(
    name_or_path: str | os.PathLike, *, revision: str | None = None, filename: str = "config.json"
) -> str | None:
    """The Hub commit whose files were loaded (read from the local cache, no network); `None` for folders, names
    that are no repo id (e.g. a path that does not exist) and repos not in the cache.

    `filename` is a file the loader fetched (open_clip repos may have no `config.json`: `open_clip_config.json`).
    """
    if not name_or_path or os.path.isdir(name_or_path):
        return None
    try:
        cached = try_to_load_from_cache(str(name_or_path), filename, revision=revision)
    except HFValidationError:
        return None
    if not isinstance(cached, str):
        return None
    parts = os.path.normpath(cached).split(os.sep)
    return parts[parts.index("snapshots") + 1] if "snapshots" in parts else None


def require_hub_token(token: str | None, *, action: str) -> str:
    """The given token or the logged-in one; a clear error naming the fixes when there is none."""
    resolved = token or get_token()
    if not resolved:
        raise MissingHubTokenError(
            f"No Hugging Face token found, so {action} is not possible. Log in with `hf auth login`, set the HF_TOKEN "
            "environment variable, or pass --token (a token with write access to the target namespace)."
        )
    return resolved


def upload_folder_to_repo(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    repo_type: str = "model",
    private: bool | None = None,
    token: str | bool | None = None,
    commit_message: str | None = None,
    **commit: Any,
) -> Any:
    """Create the repo if needed and upload `folder` as one commit: the end of every push (model, built dataset,
    feature cache).

    `commit` takes `upload_folder`'s other options (`commit_description`, `revision`, `create_pr`,
    `allow_patterns`, `ignore_patterns`).
    """
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True).repo_id
    return api.upload_folder(
        repo_id=repo_id,
        repo_type=repo_type,
        folder_path=os.fspath(folder),
        commit_message=commit_message or "Upload MSJoE model",
        **commit,
    )
