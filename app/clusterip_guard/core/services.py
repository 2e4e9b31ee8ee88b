"""Reading a Service given as plain data, however partial: one answer per question.

Fields that are missing or of the wrong shape read as absent; the API server has already
validated what reaches the webhook, and `check` must not crash on a half-written manifest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clusterip_guard.core.names import DEFAULT_NAMESPACE

CLUSTER_IP = "ClusterIP"
NODE_PORT = "NodePort"
LOAD_BALANCER = "LoadBalancer"
EXTERNAL_NAME = "ExternalName"

UNNAMED = "<unnamed>"


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def metadata_of(service: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(service.get("metadata"))


def spec_of(service: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(service.get("spec"))


def annotations_of(service: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(metadata_of(service).get("annotations"))


def service_type(service: Mapping[str, Any]) -> str:
    """spec.type, with the API server's default (ClusterIP) when it is not set."""
    kind = spec_of(service).get("type")
    return kind if isinstance(kind, str) and kind else CLUSTER_IP


def external_ips(service: Mapping[str, Any]) -> list[str]:
    ips = spec_of(service).get("externalIPs")
    return [str(ip) for ip in ips] if isinstance(ips, list) else []


def display_name(service: Mapping[str, Any]) -> str:
    """The Service's name for messages and reports.

    `web-*` when only `generateName: web-` is known (a CREATE before the API server picked
    the suffix), `<unnamed>` when neither is.
    """
    metadata = metadata_of(service)
    name = metadata.get("name")
    if isinstance(name, str) and name:
        return name
    prefix = metadata.get("generateName")
    if isinstance(prefix, str) and prefix:
        return f"{prefix}*"
    return UNNAMED


def namespace_of(service: Mapping[str, Any]) -> str:
    namespace = metadata_of(service).get("namespace")
    return namespace if isinstance(namespace, str) and namespace else DEFAULT_NAMESPACE
