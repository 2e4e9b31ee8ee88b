"""The one way every CEL expression clusterip-guard generates quotes a string (the native
engine's compiler, core/native/, and the address readers, core/addresses.py). Pure."""

from __future__ import annotations

import json
from collections.abc import Iterable


def text(value: str) -> str:
    """A CEL string literal (JSON's quoting is a subset of CEL's)."""
    return json.dumps(value)


def texts(values: Iterable[str]) -> str:
    """A CEL list of string literals, sorted (a rendering does not depend on set order)."""
    return "[" + ", ".join(text(v) for v in sorted(values)) + "]"
