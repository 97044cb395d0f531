"""Atomic, durable file replacement: the one implementation behind the feature cache and the dataset tools.

A reader sees the old file or the new one, never a part, and a crash or a power loss never leaves a truncated file
under the final name.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from typing import IO

__all__ = ["atomic_write"]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, *, binary: bool = False, temp_suffix: str = ".tmp") -> Iterator[IO]:
    """Yield a handle on a temporary file next to `path`; on success it is fsync'ed and renamed onto `path`.

    Why each step: the temporary file lives in the same folder so `os.replace` is an atomic rename (readers see
    the old file or the new one, never a part); the fsync before the rename makes sure a power loss cannot leave
    the new name pointing at data still in the page cache (an empty or truncated file); the folder is fsync'ed
    after it so the rename itself survives. On an error the temporary file is removed and `path` is untouched.
    The temporary file is hidden (`.<name>.<pid>.<random><temp_suffix>`) so that cleaners can recognise what a
    killed writer left. Text mode writes UTF-8 with no newline translation.
    """
    path = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.{secrets.token_hex(4)}{temp_suffix}")
    # os.open with 0o666 (less the umask) like open(); mkstemp's 0600 would hide the file from the rest of a team
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: str) -> None:
    """Persist a rename in `folder` (POSIX; a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a folder; the file itself is already durable
    finally:
        os.close(fd)
