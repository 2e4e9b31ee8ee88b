"""clusterip-guard: an admission webhook that keeps Kubernetes Services internal."""

from __future__ import annotations

__version__ = "0.1.0"
