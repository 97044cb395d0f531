"""Content-addressed cache of candidate-frame CLIP features, one implementation shared by every front end.

A video is asked many questions (Video-MME 3 per video, LVBench ~15, GRPO G generations x epochs), and the
dense candidate frames' CLIP embeddings are the expensive part of MSJoE. They depend only on the video's
content and the CLIP/candidate settings, so they are computed once and stored here. `MSJoEForVideoQA.
candidate_features()` reads and fills the cache, so `answer()`, the trainer, the lmms-eval plugin and the
dataset tools all share it; `msjoe cache-features` fills it ahead of time.

Layout (one safetensors file per entry, readable anywhere, no pickle)::

    <root>/<key[:2]>/<key>.safetensors
        tensors   "timestamps" (T,) float64 seconds, "embeddings" (T, D) float32 unit-norm
        metadata  "format", "key", "settings" (canonical JSON), "fingerprint", "video" (the file name only),
                  "checksum" (sha256 of the tensor bytes), "created", plus extras (timestamp error ...)

Entries are shared (`push_feature_cache`), so "video" is the file's base name, never its folder (which names users
and folder layouts); `push` first rewrites entries of older versions that stored a whole path.

`key = sha256(canonical JSON {"video": <content fingerprint>, "settings": {...}})`, where the settings hold the
CLIP identity (`MSJoECLIPScorer.identity()`: model, pretrained tag, weights, preprocessing, dtype), candidate fps,
frame cap, candidate seek mode and the decoding pipeline version.

Content fingerprint (not the path): `fingerprints.fingerprint_video` (whole-file sha256 up to 16 MiB, else the
size plus 4 MiB of sampled bytes; `fingerprint="full"` hashes every byte). The CLIP identity names the weights
by their values where they have no stable name (`MSJoECLIPScorer.identity()`).

Writes are atomic: the entry goes to a temp file in the same folder, is fsync'ed, then `os.replace`d onto its
final name. A killed writer leaves only a hidden `.*.partial` temp (never served; `clean` removes it), and
concurrent writers of the same entry each replace it with identical, complete content. Reads verify format,
key, settings, shapes and the checksum; a bad entry is logged, deleted and recomputed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save
from transformers.utils import logging

from .atomic_files import atomic_write
from .fingerprints import FileState, Fingerprint, file_state, fingerprint_video

logger = logging.get_logger(__name__)

__all__ = [
    "ENV_CACHE_DIR",
    "ENV_DISABLE",
    "CacheReport",
    "CachedFeatures",
    "CleanResult",
    "MSJoEFeatureCache",
    "default_feature_cache",
    "fingerprint_video",
    "pull_feature_cache",
    "push_feature_cache",
    "resolve_feature_cache",
]

ENV_CACHE_DIR = "MSJOE_FEATURE_CACHE"  # folder of the cache (default: under the Hugging Face assets cache)
ENV_DISABLE = "MSJOE_DISABLE_FEATURE_CACHE"  # "1" turns the default cache off
FORMAT_VERSION = "1"
ENTRY_SUFFIX = ".safetensors"
TEMP_SUFFIX = ".partial"
HUB_METADATA_DIR = os.path.join(".cache", "huggingface")  # the bookkeeping `snapshot_download(local_dir=root)` leaves


# ------------------------------------------------------------------------------------------ helpers
def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _public_label(label: str) -> str:
    """The last component of a path (either separator): what an entry may say about its video when shared."""
    return label.replace("\\", "/").rsplit("/", 1)[-1][-300:]


def _read_file(path: str) -> tuple[bytes, FileState]:
    """The file's bytes in one read (one consistent snapshot, even if a writer replaces it meanwhile), and the
    identity of the file those bytes came from (`os.fstat` of the open handle, not a second lookup by name)."""
    with open(path, "rb") as handle:
        return handle.read(), file_state(handle.fileno())


def _read_settings(path: str) -> tuple[dict[str, str], dict[str, Any]] | None:
    """An entry's header metadata and parsed settings without reading its tensors; `None` if it is unreadable."""
    try:
        with safe_open(path, framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
        return metadata, json.loads(metadata["settings"])
    except (SafetensorError, OSError, KeyError, ValueError):
        return None


def _tensor_checksum(timestamps: torch.Tensor, embeddings: torch.Tensor) -> str:
    digest = hashlib.sha256()
    for tensor in (timestamps, embeddings):
        digest.update(str(tuple(tensor.shape)).encode() + str(tensor.dtype).encode())
        digest.update(tensor.contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------ results
@dataclass
class CachedFeatures:
    """One entry read back from the cache."""

    timestamps: torch.Tensor  # (T,) float64
    embeddings: torch.Tensor  # (T, D) float32
    metadata: dict[str, str]


@dataclass
class CacheReport:
    """What a cache folder holds: entries grouped by CLIP and candidate settings, plus leftover temp files."""

    root: str
    num_entries: int = 0
    total_bytes: int = 0
    groups: list[dict[str, Any]] = field(default_factory=list)
    temp_files: int = 0
    temp_bytes: int = 0
    hub_metadata_files: int = 0  # `pull` bookkeeping under <root>/.cache/huggingface
    hub_metadata_bytes: int = 0
    unreadable: list[str] = field(default_factory=list)  # entries whose header cannot be read (corrupt)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CleanResult:
    removed_entries: int = 0
    removed_temp_files: int = 0
    removed_hub_metadata_files: int = 0  # `pull` bookkeeping under <root>/.cache/huggingface (with `remove_all`)
    freed_bytes: int = 0
    kept_entries: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CorruptEntryError(ValueError):
    """A cache file that exists but cannot be trusted; the message says why."""


# ------------------------------------------------------------------------------------------ the cache
class MSJoEFeatureCache:
    """A folder of candidate-feature entries (see the module docstring for layout, keys and guarantees).

    Args:
        cache_dir: the folder; default `$MSJOE_FEATURE_CACHE`, else
            `~/.cache/huggingface/assets/transformers_msjoe/default/clip-features` (`huggingface_hub.cached_assets_path`,
            which follows `HF_HOME` / `HF_ASSETS_CACHE`).
        fingerprint: `"sampled"` (default, reads 4 MiB per video) or `"full"` (hashes every byte).
    """

    def __init__(self, cache_dir: str | os.PathLike | None = None, *, fingerprint: Fingerprint = "sampled"):
        if fingerprint not in ("sampled", "full"):
            raise ValueError(f"`fingerprint` must be 'sampled' or 'full', got {fingerprint!r}.")
        self._cache_dir = os.fspath(cache_dir) if cache_dir is not None else None
        self.fingerprint_mode: Fingerprint = fingerprint

    def __repr__(self) -> str:
        return f"MSJoEFeatureCache({self.root!r}, fingerprint={self.fingerprint_mode!r})"

    @property
    def root(self) -> str:
        """The cache folder (resolved lazily, so that `MSJOE_FEATURE_CACHE` set after import is honoured)."""
        if self._cache_dir is not None:
            return os.path.abspath(os.path.expanduser(self._cache_dir))
        if os.environ.get(ENV_CACHE_DIR):
            return os.path.abspath(os.path.expanduser(os.environ[ENV_CACHE_DIR]))
        from huggingface_hub import cached_assets_path, constants

        return os.fspath(
            cached_assets_path(
                library_name="transformers_msjoe", namespace="default", subfolder="clip-features",
                assets_dir=constants.HF_ASSETS_CACHE,
            )
        )  # fmt: skip

    # ---------------------------------------------------------------- keys
    def fingerprint(self, source: Any) -> str | None:
        """Content fingerprint of a path / bytes / `VideoReader`; `None` (logged) when there is no content to hash."""
        from .video_io import VideoReader

        if isinstance(source, VideoReader):
            if source.bytes_fingerprint is not None and self.fingerprint_mode == "sampled":
                return source.bytes_fingerprint  # computed when the bytes were opened: bytes cannot change
            source = source.content_source
        if isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)):
            return fingerprint_video(source, self.fingerprint_mode)
        logger.warning_once(
            f"Feature cache skipped for a {type(source).__name__}: its file content is unknown, so it cannot be "
            "fingerprinted. Pass the video's path, bytes or a `datasets` Video value to use the cache."
        )
        return None

    @staticmethod
    def entry_key(video_fingerprint: str, settings: Mapping[str, Any]) -> str:
        """The entry key: sha256 of the content fingerprint and every setting that changes the features."""
        payload = _canonical_json({"format": FORMAT_VERSION, "video": video_fingerprint, "settings": settings})
        return hashlib.sha256(payload.encode()).hexdigest()

    def path_for(self, key: str) -> str:
        return os.path.join(self.root, key[:2], key + ENTRY_SUFFIX)

    def contains(self, key: str) -> bool:
        """Whether an entry file exists (validity is checked on `load`)."""
        return os.path.isfile(self.path_for(key))

    # ---------------------------------------------------------------- read / write
    def load(self, key: str, *, settings: Mapping[str, Any], embed_dim: int | None = None) -> CachedFeatures | None:
        """The entry for `key`, or `None` on a miss. A corrupt entry is logged, deleted and reported as a miss.

        Only the file that was read is deleted: if another process replaced it with a fresh entry meanwhile (its
        `os.replace` gives the path a new inode), that entry is kept.
        """
        path = self.path_for(key)
        try:
            data, state = _read_file(path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):  # a miss (or removed meanwhile)
            return None
        try:
            entry = self._check_entry(data, key, settings, embed_dim)
        except CorruptEntryError as err:
            logger.warning(f"Feature cache entry {path} is corrupt ({err}); deleting it and recomputing the features.")
            if file_state(path) == state:  # a replacement landing between this check and the removal is not caught
                self._remove(path)
            else:
                logger.info(f"{path} was replaced by another process since it was read; keeping the new entry.")
            return None
        try:
            os.utime(path)  # marks the last use, for `clean(older_than_days=...)`
        except OSError as err:  # a read-only shared cache: reading still works
            logger.info(f"Could not mark {path} as used ({err}).")
        return entry

    def _check_entry(self, data: bytes, key: str, settings: Mapping[str, Any], embed_dim: int | None) -> CachedFeatures:
        """The entry in `data` (a file's bytes), or `CorruptEntryError` naming what does not match `key`."""
        metadata, tensors = _parse_entry(data)
        if metadata.get("format") != FORMAT_VERSION or metadata.get("key") != key:
            raise CorruptEntryError(f"format {metadata.get('format')!r} / key {metadata.get('key')!r} do not match")
        if metadata.get("settings") != _canonical_json(settings):
            raise CorruptEntryError("its settings differ from the ones its key was computed from")
        if self.entry_key(metadata.get("fingerprint", ""), settings) != key:
            raise CorruptEntryError("its fingerprint and settings do not hash to its key")
        timestamps, embeddings = tensors.get("timestamps"), tensors.get("embeddings")
        if timestamps is None or embeddings is None or timestamps.ndim != 1 or embeddings.ndim != 2:
            raise CorruptEntryError(f"expected timestamps (T,) and embeddings (T, D), found {sorted(tensors)}")
        if len(timestamps) != len(embeddings) or len(timestamps) == 0:
            raise CorruptEntryError(f"{len(timestamps)} timestamps for {len(embeddings)} embeddings")
        if embed_dim is not None and embeddings.shape[1] != embed_dim:
            raise CorruptEntryError(f"embedding width {embeddings.shape[1]} != CLIP's {embed_dim}")
        if metadata.get("checksum") != _tensor_checksum(timestamps, embeddings):
            raise CorruptEntryError("checksum mismatch: the tensor bytes were altered")
        return CachedFeatures(timestamps=timestamps, embeddings=embeddings, metadata=metadata)

    def save(
        self,
        key: str,
        timestamps: torch.Tensor,
        embeddings: torch.Tensor,
        *,
        settings: Mapping[str, Any],
        fingerprint: str,
        video_label: str = "",
        extra: Mapping[str, str] | None = None,
    ) -> str:
        """Write one entry atomically (temp file + fsync + `os.replace`) and return its path.

        `video_label` is reduced to its file name: entries are shared on the Hub, and a local folder is private.
        """
        timestamps = timestamps.detach().to("cpu", torch.float64).contiguous()  # (T,)
        embeddings = embeddings.detach().to("cpu", torch.float32).contiguous()  # (T, D)
        metadata = {
            "format": FORMAT_VERSION,
            "key": key,
            "settings": _canonical_json(settings),
            "fingerprint": fingerprint,
            "video": _public_label(video_label),
            "checksum": _tensor_checksum(timestamps, embeddings),
            "created": f"{time.time():.3f}",
            **dict(extra or {}),
        }
        payload = safetensors_save({"timestamps": timestamps, "embeddings": embeddings}, metadata=metadata)
        path = self.path_for(key)
        with atomic_write(path, binary=True, temp_suffix=TEMP_SUFFIX) as handle:
            handle.write(payload)
        return path

    def scrub_local_paths(self) -> int:
        """Rewrite entries whose "video" metadata holds a folder (written before it was reduced to the file name)
        so that it holds the file name only; returns how many were rewritten. Each rewrite is atomic and keeps
        the entry's last-use time. `push_feature_cache` calls it before uploading."""
        rewritten = 0
        for path in self.entry_paths():
            header = _read_settings(path)  # None: unreadable; `clean --verify` removes it, a reader recomputes it
            label = header[0].get("video", "") if header is not None else ""
            if _public_label(label) == label:
                continue
            before, (metadata, tensors) = os.stat(path), _parse_entry(_read_file(path)[0])
            with atomic_write(path, binary=True, temp_suffix=TEMP_SUFFIX) as handle:
                handle.write(safetensors_save(tensors, metadata={**metadata, "video": _public_label(label)}))
            os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
            rewritten += 1
        return rewritten

    @staticmethod
    def _remove(path: str) -> int:
        try:
            size = os.path.getsize(path)
            os.remove(path)
            return size
        except FileNotFoundError:
            return 0

    # ---------------------------------------------------------------- maintenance
    def _walk(self) -> Iterator[tuple[str, bool]]:
        """(path, is_temp) of every entry and leftover temp file under the root."""
        if not os.path.isdir(self.root):
            return
        for shard in sorted(os.listdir(self.root)):
            folder = os.path.join(self.root, shard)
            if len(shard) != 2 or not os.path.isdir(folder):
                continue
            for name in sorted(os.listdir(folder)):
                if name.startswith(".") and name.endswith(TEMP_SUFFIX):
                    yield os.path.join(folder, name), True
                elif not name.startswith(".") and name.endswith(ENTRY_SUFFIX):
                    yield os.path.join(folder, name), False

    def entry_paths(self) -> list[str]:
        """Paths of all entries (temp files excluded)."""
        return [path for path, is_temp in self._walk() if not is_temp]

    def report(self) -> CacheReport:
        """Entries and bytes, grouped by CLIP model / pretrained tag / candidate settings; leftover temp files."""
        report = CacheReport(root=self.root)
        groups: dict[str, dict[str, Any]] = {}
        for path, is_temp in self._walk():
            size = os.path.getsize(path)
            if is_temp:
                report.temp_files, report.temp_bytes = report.temp_files + 1, report.temp_bytes + size
                continue
            report.num_entries, report.total_bytes = report.num_entries + 1, report.total_bytes + size
            header = _read_settings(path)
            if header is None:
                report.unreadable.append(path)
                continue
            group = _group_of(header[1])
            slot = groups.setdefault(_canonical_json(group), {**group, "entries": 0, "bytes": 0})
            slot["entries"] += 1
            slot["bytes"] += size
        report.hub_metadata_files, report.hub_metadata_bytes = _tree_size(os.path.join(self.root, HUB_METADATA_DIR))
        report.groups = sorted(groups.values(), key=lambda g: -g["bytes"])
        return report

    def clean(
        self, *, remove_all: bool = False, older_than_days: float | None = None, clip_model_name: str | None = None,
        verify: bool = False, temp_grace_seconds: float = 3600.0,
    ) -> CleanResult:  # fmt: skip
        """Delete entries: all, unused for `older_than_days`, of one CLIP model, or (with `verify`) corrupt ones.

        Leftover temp files of killed writers are removed once older than `temp_grace_seconds` (a running writer's
        temp is younger), or all of them with `remove_all`, which also removes the bookkeeping a `pull` leaves
        (`<root>/.cache/huggingface`). Entries are touched on every cache hit, so their
        modification time is their last use.
        """
        result = CleanResult()
        now = time.time()
        for path, is_temp in self._walk():
            age = now - os.path.getmtime(path)
            if is_temp:
                if remove_all or age > temp_grace_seconds:
                    result.freed_bytes += self._remove(path)
                    result.removed_temp_files += 1
                continue
            if self._should_remove(path, age, remove_all, older_than_days, clip_model_name, verify):
                result.freed_bytes += self._remove(path)
                result.removed_entries += 1
            else:
                result.kept_entries += 1
        if remove_all:
            result.removed_hub_metadata_files, size = self._remove_hub_metadata()
            result.freed_bytes += size
        return result

    def _remove_hub_metadata(self) -> tuple[int, int]:
        """Delete the bookkeeping `pull` leaves (`<root>/.cache/huggingface`); (files, bytes) removed."""
        folder = os.path.join(self.root, HUB_METADATA_DIR)
        files, size = _tree_size(folder)
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):  # `<root>/.cache` too, if nothing else lives there
            os.rmdir(os.path.dirname(folder))
        return files, size

    def _should_remove(
        self, path: str, age: float, remove_all: bool, older_than_days: float | None, clip_model_name: str | None,
        verify: bool,
    ) -> bool:  # fmt: skip
        """Whether `clean` deletes the entry at `path` (`age`: seconds since its last use); unreadable entries go
        whenever the header must be read (a `clip_model_name` or `verify` selector)."""
        if remove_all or (older_than_days is not None and age > older_than_days * 86400):
            return True
        if clip_model_name is None and not verify:
            return False
        header = _read_settings(path)
        if header is None:
            logger.warning(f"Removing unreadable feature cache entry {path}.")
            return True
        settings = header[1]
        if clip_model_name is not None and settings.get("clip", {}).get("model_name") == clip_model_name:
            return True
        if verify:
            try:
                self._check_entry(_read_file(path)[0], os.path.basename(path)[: -len(ENTRY_SUFFIX)], settings, None)
            except CorruptEntryError as err:
                logger.warning(f"Removing corrupt feature cache entry {path} ({err}).")
                return True
        return False


def _parse_entry(data: bytes) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """Metadata and tensors of a safetensors file's bytes.

    Not `safe_open(path)`: it re-opens the file by name to read tensors, so a concurrent `os.replace` could pair
    one file's header with another's data.
    """
    if len(data) < 8:
        raise CorruptEntryError(f"{len(data)} bytes, shorter than a safetensors header")
    header_size = int.from_bytes(data[:8], "little")
    try:
        header = json.loads(data[8 : 8 + header_size])
        tensors = safetensors_load(data)
    except (SafetensorError, ValueError) as err:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise CorruptEntryError(f"unreadable safetensors file: {err}") from err
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    return dict(metadata or {}), tensors


def _tree_size(folder: str) -> tuple[int, int]:
    """(files, bytes) under `folder`; (0, 0) when it does not exist."""
    files = size = 0
    for dirpath, _, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(OSError):
                size += os.path.getsize(os.path.join(dirpath, name))
                files += 1
    return files, size


def _group_of(settings: Mapping[str, Any]) -> dict[str, Any]:
    clip = settings.get("clip", {})
    return {
        "clip": f"{clip.get('model_name')}/{clip.get('pretrained')}",
        "dtype": clip.get("dtype"),
        "candidate_fps": settings.get("candidate_fps"),
        "max_candidate_frames": settings.get("max_candidate_frames"),
        "seek_mode": settings.get("seek_mode"),
    }


# ------------------------------------------------------------------------------------------ defaults
def default_feature_cache() -> MSJoEFeatureCache | None:
    """The cache a new model uses: under the HF cache (or `$MSJOE_FEATURE_CACHE`); `None` if `$MSJOE_DISABLE_FEATURE_CACHE=1`."""
    if os.environ.get(ENV_DISABLE, "").strip().lower() in ("1", "true", "yes", "on"):
        return None
    return MSJoEFeatureCache()


def resolve_feature_cache(setting: MSJoEFeatureCache | str | os.PathLike | bool | None) -> MSJoEFeatureCache | None:
    """`True` -> the default cache, `False`/`None` -> no cache, a folder -> a cache there, a cache -> itself."""
    if isinstance(setting, MSJoEFeatureCache):
        return setting
    if setting is True:
        return default_feature_cache()
    if setting is False or setting is None:
        return None
    if isinstance(setting, (str, os.PathLike)):
        return MSJoEFeatureCache(setting)
    raise TypeError(
        f"Feature cache setting of type {type(setting).__name__} is not supported: pass True (default location), "
        "False (off), a folder path or an `MSJoEFeatureCache`."
    )


# ------------------------------------------------------------------------------------------ Hub
def _card(cache: MSJoEFeatureCache, repo_id: str) -> str:
    report = cache.report()
    rows = "\n".join(
        f"| {g['clip']} | {g['dtype']} | {g['candidate_fps']} | {g['max_candidate_frames']} | {g['seek_mode']} | {g['entries']} |"
        for g in report.groups
    )
    return (
        "---\ntags:\n- msjoe\n- clip-features\n- video\n---\n\n"
        f"# MSJoE candidate-frame CLIP features\n\nA shared [transformers-msjoe](https://huggingface.co/papers/2602.22932) "
        f"feature cache: {report.num_entries} entries, one safetensors file per (video content, CLIP, candidate "
        "settings), keyed by content fingerprint. Pull it into your local cache with\n\n"
        f"```bash\nmsjoe cache pull {repo_id}\n```\n\n"
        "| CLIP | dtype | candidate fps | frame cap | seek mode | entries |\n|---|---|---|---|---|---|\n" + rows + "\n"
    )


def push_feature_cache(
    repo_id: str, *, cache: MSJoEFeatureCache | None = None, token: str | None = None, private: bool | None = None,
    commit_message: str | None = None,
) -> str:  # fmt: skip
    """Upload every entry of `cache` to the Hub dataset repo `repo_id` (created if needed); returns the commit URL.

    Entries hold no local path (see the module docstring); entries of older versions that do are rewritten in
    place first (`MSJoEFeatureCache.scrub_local_paths`).
    """
    from huggingface_hub import HfApi

    from .hub_utils import require_hub_token, upload_folder_to_repo

    cache = cache or MSJoEFeatureCache()
    token = require_hub_token(token, action=f"pushing the feature cache to {repo_id!r}")
    entries = cache.entry_paths()
    if not entries:
        raise ValueError(
            f"The feature cache at {cache.root} has no entries to push: fill it with `msjoe cache-features` first."
        )
    scrubbed = cache.scrub_local_paths()  # entries of older versions named the video's whole local path
    if scrubbed:
        logger.info(f"Removed local folder names from {scrubbed} entries before pushing them.")
    commit = upload_folder_to_repo(
        cache.root, repo_id, repo_type="dataset", private=private, token=token,
        commit_message=commit_message or f"Upload {len(entries)} MSJoE feature cache entries",
        allow_patterns=[f"??/*{ENTRY_SUFFIX}"],
    )  # fmt: skip
    HfApi(token=token).upload_file(
        path_or_fileobj=_card(cache, repo_id).encode(), path_in_repo="README.md", repo_id=repo_id, repo_type="dataset",
        commit_message="Describe the MSJoE feature cache",
    )  # fmt: skip
    return commit.commit_url


def pull_feature_cache(
    repo_id: str, *, cache: MSJoEFeatureCache | None = None, token: str | None = None, revision: str | None = None
) -> int:
    """Download the entries of the Hub dataset repo `repo_id` into `cache`; returns the number of entries there.

    Downloaded entries are verified like any other on first use (a bad one is recomputed). `huggingface_hub` keeps
    its download bookkeeping in `<root>/.cache/huggingface`, which makes a later pull fetch only new entries;
    `clean(remove_all=True)` (`msjoe cache clean --all`) removes it with the entries.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    cache = cache or MSJoEFeatureCache()
    try:
        snapshot_download(
            repo_id, repo_type="dataset", local_dir=cache.root, allow_patterns=[f"??/*{ENTRY_SUFFIX}"],
            revision=revision, token=token,
        )  # fmt: skip
    except (OfflineModeIsEnabled, LocalEntryNotFoundError, HfHubHTTPError) as err:
        raise ValueError(
            f"Could not pull the feature cache from the Hub dataset repo {repo_id!r}: {str(err).splitlines()[0]}. "
            "Check the repo id, the network (and that HF_HUB_OFFLINE is not set), and pass a token for a private repo."
        ) from err
    return len(cache.entry_paths())
