"""What makes a Service reachable from outside the cluster (docs/design.md §1). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clusterip_guard.core.services import (
    EXTERNAL_NAME,
    LOAD_BALANCER,
    NODE_PORT,
    annotations_of,
    external_ips,
    service_type,
    spec_of,
)
from clusterip_guard.core.settings import PolicySettings


@dataclass(frozen=True, order=True)
class Violation:
    """One way a Service is exposed.

    `key` identifies the exposure itself, so that an UPDATE can be judged on the exposure it
    adds: an old NodePort Service that only changes a label adds nothing.
    """

    key: str
    field: str
    summary: str  # what is exposed, short enough for a kubectl warning line
    fix: str  # what to do instead

    @property
    def message(self) -> str:
        return f"{self.summary}; {self.fix}"

    @property
    def detail(self) -> str:
        """The message with the field it is about, for denials, logs and tables."""
        return f"{self.field}: {self.message}"


def is_internal_load_balancer(service: Mapping[str, Any], policy: PolicySettings) -> bool:
    annotations = annotations_of(service)
    for annotation, marker in policy.internal_load_balancer_annotations.items():
        value = annotations.get(annotation)
        if isinstance(value, str) and value.strip().lower() == marker.lower():
            return True
    return False


def is_allowed_internal_load_balancer(service: Mapping[str, Any], policy: PolicySettings) -> bool:
    """A LoadBalancer that the policy accepts as internal: it stays a LoadBalancer (its node
    ports are judged apart)."""
    return (
        service_type(service) == LOAD_BALANCER
        and policy.allow_internal_load_balancers
        and is_internal_load_balancer(service, policy)
    )


def opens_load_balancer_node_ports(service: Mapping[str, Any]) -> bool:
    # The API server defaults allocateLoadBalancerNodePorts to true; only an explicit false
    # keeps a LoadBalancer off the nodes.
    return spec_of(service).get("allocateLoadBalancerNodePorts") is not False


def exposure_of(service: Mapping[str, Any], policy: PolicySettings) -> tuple[Violation, ...]:
    """Every way `service` is reachable from outside the cluster that `policy` does not allow."""
    violations: list[Violation] = []
    kind = service_type(service)
    if kind == EXTERNAL_NAME:
        return ()  # a DNS alias: no cluster IP, no node port, nothing to reach
    if kind == NODE_PORT:
        violations.append(
            Violation(
                key="node-ports",
                field="spec.type",
                summary="type NodePort opens a port on every node",
                fix="use type ClusterIP",
            )
        )
    elif kind == LOAD_BALANCER:
        violations.extend(_load_balancer_exposure(service, policy))
    disallowed = [ip for ip in external_ips(service) if not policy.external_ip_allowed(ip)]
    for ip in disallowed:
        violations.append(
            Violation(
                key=f"external-ip:{ip}",
                field="spec.externalIPs",
                summary=f"external IP {ip} is outside the allowed CIDRs",
                fix="remove it from spec.externalIPs",
            )
        )
    return tuple(violations)


def _load_balancer_exposure(service: Mapping[str, Any], policy: PolicySettings) -> list[Violation]:
    if not is_allowed_internal_load_balancer(service, policy):
        return [
            Violation(
                key="load-balancer",
                field="spec.type",
                summary="type LoadBalancer exposes the Service outside the cluster",
                fix="use type ClusterIP",
            )
        ]
    if (
        opens_load_balancer_node_ports(service)
        and not policy.allow_internal_load_balancer_node_ports
    ):
        return [
            Violation(
                key="node-ports",
                field="spec.allocateLoadBalancerNodePorts",
                summary="this internal load balancer opens a port on every node",
                fix="set spec.allocateLoadBalancerNodePorts: false",
            )
        ]
    return []
