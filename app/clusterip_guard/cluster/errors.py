"""The cluster edge's errors: one base type, and the kinds the CLI maps to exit codes.

Apart from the client so that the CLI can name them without loading the Kubernetes client.
"""

from __future__ import annotations


class ClusterError(Exception):
    """Something about the cluster or its credentials the admin can fix; one line."""


class KubeconfigError(ClusterError):
    """No usable kubeconfig: a missing file, a bad one, no in-cluster credentials."""


class ClusterUnreachable(ClusterError):
    """The API server could not be reached (refused, timed out, TLS failed)."""


class ClusterRefused(ClusterError):
    """The API server answered, but refused the request (RBAC, admission, validation)."""


class NamespaceMissing(ClusterError):
    """Service mode needs the webhook's namespace to exist first."""


class NoReadyEndpoint(ClusterError):
    """The webhook's Service has no ready endpoint to register."""


class CertificateFilesError(ClusterError):
    """The certificate folder of url mode cannot be read or written."""


class ApiMissing(ClusterError):
    """The API server does not serve an API this needs (an older Kubernetes)."""


class EngineNotInForce(ClusterError):
    """An engine switch whose new engine never answered the probe: the old one stays."""
