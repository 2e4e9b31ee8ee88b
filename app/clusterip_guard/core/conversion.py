"""The ClusterIP conversion (docs/design.md, "The conversion (`mutate`)"). Pure: a Service in,
a new Service out.

The API server defaults a Service before mutating admission and validates it after, so the
conversion removes every field that is only valid on an exposed Service, and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clusterip_guard.core.exposure import exposure_of, is_allowed_internal_load_balancer
from clusterip_guard.core.names import CONVERTED_FROM_ANNOTATION, SOURCE_RANGES_ANNOTATION
from clusterip_guard.core.pointers import escape_token
from clusterip_guard.core.policy import PolicySettings
from clusterip_guard.core.services import CLUSTER_IP, external_ips, service_type
from clusterip_guard.core.types import Manifest, PatchOperation

# Spec fields that only an exposed Service may carry (externalTrafficPolicy is handled apart:
# it stays while allowed external IPs remain).
EXPOSED_ONLY_SPEC_FIELDS = (
    "healthCheckNodePort",
    "allocateLoadBalancerNodePorts",
    "loadBalancerClass",
    "loadBalancerSourceRanges",
    "loadBalancerIP",
)


def internalize(
    service: Mapping[str, Any], policy: PolicySettings, *, exposed: bool | None = None
) -> Manifest:
    """The Service as `mutate` stores it: unchanged when it is not exposed. `exposed`: the
    caller has judged that already (the webhook has), so it is not judged twice."""
    if exposed is None:
        exposed = bool(exposure_of(service, policy))
    if not exposed:
        unchanged: Manifest = json_copy(dict(service))
        return unchanged
    if is_allowed_internal_load_balancer(service, policy):
        return drop_load_balancer_node_ports(service, policy)
    return convert_to_cluster_ip(service, policy)


def json_copy(value: Any) -> Any:
    """A deep copy of parsed JSON (dicts, lists and immutable leaves), several times faster
    than copy.deepcopy, which handles any object. Reviews are nested at most MAX_NESTING
    levels (core.review), so the recursion is bounded."""
    if isinstance(value, dict):
        return {key: json_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_copy(item) for item in value]
    return value


def _editable(service: Mapping[str, Any]) -> Manifest:
    """A copy of the Service that a conversion may edit: its spec copied whole, its metadata
    and annotations one level; the rest (managedFields above all, often most of the object)
    shared with the original, which nothing here edits."""
    converted: Manifest = dict(service)
    if "spec" in converted:
        converted["spec"] = json_copy(converted["spec"])
    metadata = converted.get("metadata")
    if isinstance(metadata, dict):
        converted["metadata"] = metadata = dict(metadata)
        if isinstance(metadata.get("annotations"), dict):
            metadata["annotations"] = dict(metadata["annotations"])
    return converted


def convert_to_cluster_ip(service: Mapping[str, Any], policy: PolicySettings) -> Manifest:
    converted = _editable(service)
    spec: dict[str, Any] = converted.setdefault("spec", {})
    old_type = service_type(service)

    spec["type"] = CLUSTER_IP
    _drop_node_ports(spec)
    for name in EXPOSED_ONLY_SPEC_FIELDS:
        spec.pop(name, None)
    remaining_ips = _keep_allowed_external_ips(spec, service, policy)
    if not remaining_ips:
        spec.pop("externalTrafficPolicy", None)

    metadata = converted.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if isinstance(annotations, dict):
        annotations.pop(SOURCE_RANGES_ANNOTATION, None)
    if old_type != CLUSTER_IP:
        # A ClusterIP Service that only lost external IPs was not converted from anything.
        if not isinstance(metadata, dict):
            metadata = converted["metadata"] = {}
        if not isinstance(annotations, dict):
            annotations = metadata["annotations"] = {}
        annotations[CONVERTED_FROM_ANNOTATION] = old_type
    return converted


def drop_load_balancer_node_ports(service: Mapping[str, Any], policy: PolicySettings) -> Manifest:
    converted = _editable(service)
    spec: dict[str, Any] = converted.setdefault("spec", {})
    if not policy.allow_internal_load_balancer_node_ports:
        spec["allocateLoadBalancerNodePorts"] = False
        _drop_node_ports(spec)
        if spec.get("externalTrafficPolicy") == "Local" or "healthCheckNodePort" in spec:
            # Local brings a health-check node port on every node; Cluster brings none.
            spec["externalTrafficPolicy"] = "Cluster"
            spec.pop("healthCheckNodePort", None)
    _keep_allowed_external_ips(spec, service, policy)
    return converted


def conversion_patch(
    service: Mapping[str, Any], policy: PolicySettings, *, exposed: bool | None = None
) -> list[PatchOperation]:
    """The JSON Patch that turns `service` into `internalize(service)`; empty when compliant."""
    return json_patch_between(service, internalize(service, policy, exposed=exposed))


def json_patch_between(before: Any, after: Any, pointer: str = "") -> list[PatchOperation]:
    """A JSON Patch from `before` to `after`, computed by diff.

    Objects are compared key by key and equal-length lists item by item; anything else that
    differs is replaced whole. That is all a conversion needs, and it is several times faster
    than jsonpatch.JsonPatch.from_diff, whose list matching dominated the mutate path.
    The tests apply every patch with jsonpatch itself and compare with the converted object.
    """
    if before == after:
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        operations: list[PatchOperation] = []
        for key in before:
            if key not in after:
                operations.append({"op": "remove", "path": f"{pointer}/{escape_token(key)}"})
        for key, value in after.items():
            if key not in before:
                path = f"{pointer}/{escape_token(key)}"
                operations.append({"op": "add", "path": path, "value": json_copy(value)})
            elif before[key] != value:  # most of an object is unchanged: no path, no call
                path = f"{pointer}/{escape_token(key)}"
                operations.extend(json_patch_between(before[key], value, path))
        return operations
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        operations = []
        for index, (old, new) in enumerate(zip(before, after, strict=True)):
            if old != new:
                operations.extend(json_patch_between(old, new, f"{pointer}/{index}"))
        return operations
    return [{"op": "replace", "path": pointer, "value": json_copy(after)}]


def _drop_node_ports(spec: dict[str, Any]) -> None:
    ports = spec.get("ports")
    if isinstance(ports, list):
        for port in ports:
            if isinstance(port, dict):
                port.pop("nodePort", None)


def _keep_allowed_external_ips(
    spec: dict[str, Any], service: Mapping[str, Any], policy: PolicySettings
) -> list[str]:
    ips = external_ips(service)
    allowed = [ip for ip in ips if policy.external_ip_allowed(ip)]
    if len(allowed) == len(ips):
        return allowed
    if allowed:
        spec["externalIPs"] = allowed
    else:
        spec.pop("externalIPs")
    return allowed
