"""JSON Pointers (RFC 6901), as JSON Patch paths use them and as kubectl users read them."""

from __future__ import annotations


def escape_token(key: object) -> str:
    """One reference token: `~` and `/` escaped (`a/b` is `a~1b`)."""
    return str(key).replace("~", "~0").replace("/", "~1")


def unescape_token(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def pointer_to(*keys: object) -> str:
    """The pointer to a nested key: pointer_to("metadata", "annotations", "a/b")."""
    return "".join(f"/{escape_token(key)}" for key in keys)


def field_path(pointer: str) -> str:
    """A JSON Pointer as a kubectl user writes it: /spec/ports/0/x is spec.ports[0].x."""
    text = ""
    for raw in pointer.lstrip("/").split("/"):
        segment = unescape_token(raw)
        if segment.isdigit() or "." in segment or "/" in segment:
            text += f"[{segment}]"
        else:
            text += f".{segment}" if text else segment
    return text
