"""The CLI's output layer: human lines on stdout, or one JSON document with `--json`."""

from __future__ import annotations

import json
import sys
from typing import Any

__all__ = ["emit", "emit_json"]


def emit(line: str = "") -> None:
    """One line of human-readable output on stdout (logs and progress bars go to stderr). Non-printable characters
    (model output can hold any token, escape sequences included) show as U+FFFD instead of driving the terminal."""
    sys.stdout.write("".join(c if c.isprintable() else "\ufffd" for c in line) + "\n")
    sys.stdout.flush()


def emit_json(payload: Any) -> None:
    """A machine-readable result on stdout."""
    sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    sys.stdout.flush()
