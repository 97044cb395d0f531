"""Small Hub helpers shared by every front end: optional files, commit hashes, write tokens."""

from __future__ import annotations

import os

from huggingface_hub import get_token, hf_hub_download, try_to_load_from_cache
from huggingface_hub.errors import EntryNotFoundError, RemoteEntryNotFoundError

__all__ = ["MissingHubTokenError", "find_optional_file", "require_hub_token", "resolved_commit_hash"]


class MissingHubTokenError(ValueError):
    """Raised before any upload when no token is available."""


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
    """The Hub commit whose files were loaded (read from the local cache, no network); `None` for folders.

    `filename` is a file the loader fetched (open_clip repos may have no `config.json`: `open_clip_config.json`).
    """
    if not name_or_path or os.path.isdir(name_or_path):
        return None
    cached = try_to_load_from_cache(str(name_or_path), filename, revision=revision)
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
