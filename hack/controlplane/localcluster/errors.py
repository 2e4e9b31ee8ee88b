"""The launcher's one error type: the control plane could not be built, started or reached."""

from __future__ import annotations


class ControlPlaneError(RuntimeError):
    """The message's first line is the summary the CLI prints; the rest holds log lines."""
