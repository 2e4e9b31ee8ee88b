"""Builders for Services and AdmissionReviews shaped as the API server sends them."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from clusterip_guard.core.types import Manifest


def service(
    service_type: str = "ClusterIP",
    *,
    name: str = "web",
    namespace: str = "shop",
    annotations: dict[str, str] | None = None,
    defaulted: bool = True,
    **spec: Any,
) -> Manifest:
    """A Service; with `defaulted`, the fields the API server fills in before admission."""
    body: dict[str, Any] = {"type": service_type, "ports": [{"port": 80, "targetPort": 8080}]}
    if defaulted:
        body.update(
            {
                "sessionAffinity": "None",
                "ipFamilyPolicy": "SingleStack",
                "internalTrafficPolicy": "Cluster",
            }
        )
        body["ports"][0]["protocol"] = "TCP"
        if service_type in ("NodePort", "LoadBalancer"):
            body["externalTrafficPolicy"] = "Cluster"
        if service_type == "LoadBalancer":
            body["allocateLoadBalancerNodePorts"] = True
    body.update(spec)
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": {"app": name}}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": body}


def ingress(
    ingress_class: str | None = None,
    *,
    name: str = "web",
    namespace: str = "shop",
    annotations: dict[str, str] | None = None,
) -> Manifest:
    """An Ingress (networking.k8s.io/v1) sending everything to Service `web`, of this class."""
    spec: dict[str, Any] = {
        "defaultBackend": {"service": {"name": "web", "port": {"number": 80}}},
    }
    if ingress_class is not None:
        spec["ingressClassName"] = ingress_class
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata,
        "spec": spec,
    }


GATEWAY_API_VERSION = "gateway.networking.k8s.io/v1"


def gateway(
    gateway_class: str | None = None,
    *,
    name: str = "edge",
    namespace: str = "shop",
    api_version: str = GATEWAY_API_VERSION,
) -> Manifest:
    """A Gateway (gateway.networking.k8s.io) of this class, with one HTTP listener on port 80."""
    spec: dict[str, Any] = {"listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}
    if gateway_class is not None:
        spec["gatewayClassName"] = gateway_class
    return {
        "apiVersion": api_version,
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def parent(
    name: str,
    namespace: str | None = None,
    *,
    kind: str | None = None,
    group: str | None = None,
    section: str | None = None,
) -> dict[str, Any]:
    """One entry of a route's spec.parentRefs; the parts left None are left out (defaults)."""
    ref: dict[str, Any] = {"name": name}
    for key, value in (
        ("namespace", namespace),
        ("kind", kind),
        ("group", group),
        ("sectionName", section),
    ):
        if value is not None:
            ref[key] = value
    return ref


def mesh_parent(name: str = "web", namespace: str | None = None) -> dict[str, Any]:
    """A parentRef to a Service (GAMMA mesh routing): group "" and kind Service."""
    return parent(name, namespace, kind="Service", group="")


def route(
    *parents: dict[str, Any],
    kind: str = "HTTPRoute",
    name: str = "web",
    namespace: str = "shop",
    api_version: str = GATEWAY_API_VERSION,
    no_parent_refs: bool = False,
) -> Manifest:
    """A Gateway API route of `kind` sending to Service `web`, attached to `parents`
    (`no_parent_refs`: no spec.parentRefs at all)."""
    spec: dict[str, Any] = {"rules": [{"backendRefs": [{"name": "web", "port": 80}]}]}
    if not no_parent_refs:
        spec["parentRefs"] = list(parents)
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def admission_review(
    obj: Manifest | None,
    *,
    operation: str = "CREATE",
    old: Manifest | None = None,
    uid: str | None = None,
    dry_run: bool = False,
    kind: str = "Service",
    group: str = "",
    sub_resource: str | None = None,
) -> dict[str, Any]:
    metadata = (obj or old or {}).get("metadata", {})
    request: dict[str, Any] = {
        "uid": uid or str(uuid.uuid4()),
        "kind": {"group": group, "version": "v1", "kind": kind},
        "resource": {"group": group, "version": "v1", "resource": kind.lower() + "s"},
        "requestKind": {"group": group, "version": "v1", "kind": kind},
        "name": metadata.get("name", ""),
        "namespace": metadata.get("namespace", ""),
        "operation": operation,
        "userInfo": {"username": "admin", "groups": ["system:masters"]},
        "object": copy.deepcopy(obj),
        "oldObject": copy.deepcopy(old),
        "dryRun": dry_run,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
    }
    if sub_resource:
        request["subResource"] = sub_resource
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
