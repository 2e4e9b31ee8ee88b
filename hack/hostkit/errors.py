"""The toolkit's one error type; each tool's own (ControlPlaneError, ClusterError) derives
from it, so that a tool catches what the toolkit raises under its own name."""

from __future__ import annotations


class HostError(RuntimeError):
    """The message's first line is the summary a command prints; the rest holds log lines."""
