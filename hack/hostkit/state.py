"""A tool's record of what it started and changed, kept in one JSON file that is written whole
or not at all: a stop after an interrupted write still finds everything recorded before it."""

from __future__ import annotations

import json
from pathlib import Path


def read_state(path: Path) -> dict[str, object] | None:
    """The recorded object, or None when there is none or it cannot be read."""
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def write_state(path: Path, state: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(state, indent=2) + "\n")
    partial.replace(path)
