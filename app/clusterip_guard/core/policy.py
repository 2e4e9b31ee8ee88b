"""What a cluster admin allows: the policy as typed settings (docs/design.md, "What counts as
exposed" and "Modes, per namespace").

Pure: the policy file's YAML is parsed in `clusterip_guard.policyfile`; every default lives here.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from fnmatch import fnmatchcase

from clusterip_guard.core.addresses import IPAddress, IPNetwork, read_ip
from clusterip_guard.core.cloud_providers import Provider

__all__ = ["SERVICE_KIND", "Exemption", "IPAddress", "IPNetwork", "PolicySettings"]

SERVICE_KIND = "Service"


@dataclass(frozen=True)
class Exemption:
    """An object the cluster admin lets stay exposed, with the reason and an optional end: a
    Service, or a workload of the kind named (its Pods and the objects its controller makes
    from it are judged at the workload, core/workloads.made_by_its_controller)."""

    namespace: str  # a glob, like the name: "team-*"
    name: str  # a glob: "legacy-*"
    reason: str
    expires: datetime.date | None = None  # the last day it applies
    kind: str = SERVICE_KIND  # Service, Ingress, or one of core/workloads.WORKLOAD_KIND_NAMES

    def applies_to(
        self, namespace: str, name: str, today: datetime.date, kind: str = SERVICE_KIND
    ) -> bool:
        if self.expires is not None and today > self.expires:
            return False
        return (
            kind == self.kind
            and fnmatchcase(namespace, self.namespace)
            and fnmatchcase(name, self.name)
        )

    def describe(self) -> str:
        until = f", until {self.expires.isoformat()}" if self.expires else ""
        what = "" if self.kind == SERVICE_KIND else f"{self.kind} "
        return f"exemption {what}{self.namespace}/{self.name} ({self.reason}{until})"


@dataclass(frozen=True)
class PolicySettings:
    # External IPs inside these CIDRs are not exposure: none by default.
    allowed_external_ip_cidrs: tuple[IPNetwork, ...] = ()
    # An internal load balancer is still a load balancer: allowed only when the admin says so.
    allow_internal_load_balancers: bool = False
    # Node ports are reachable on every node whatever the balancer: refused unless accepted.
    allow_internal_load_balancer_node_ports: bool = False
    # Whose reading of "internal" counts: the providers this cluster runs on (none by default,
    # so an annotation for a cloud the cluster is not on buys nothing).
    internal_load_balancer_providers: tuple[Provider, ...] = ()
    # A balancer with a spec.loadBalancerClass is internal only when its class is named here,
    # with the provider whose controller claims it (class, provider): every other class is an
    # exposed load balancer, whatever its annotations say.
    internal_load_balancer_classes: tuple[tuple[str, Provider], ...] = ()
    # Legacy objects keep working while they are reported.
    allow_existing_violations: bool = True
    exemptions: tuple[Exemption, ...] = ()
    # Host ports a Pod may open on its node: inclusive ranges (a single port is a range of
    # one). None by default: a host port is a door on every node the Pod may land on.
    allowed_host_ports: tuple[tuple[int, int], ...] = ()
    # Ingress classes whose controllers keep what they serve inside the cluster: globs, as an
    # exemption's names are. None by default: an Ingress is a door its controller opens.
    allowed_ingress_classes: tuple[str, ...] = ()
    # Gateway classes whose controllers keep what they serve inside the cluster: globs. None by
    # default: a Gateway is a door its class's controller opens.
    allowed_gateway_classes: tuple[str, ...] = ()
    # Gateways a route may attach to, (namespace glob, name glob): the sanctioned ones an admin
    # runs. None by default: a route attached to a Gateway is served wherever it listens.
    allowed_gateways: tuple[tuple[str, str], ...] = ()
    # The cluster's Service ranges (its ServiceCIDR objects), where the caller can read them
    # (scan); not a key of the policy file. An external IP inside one is never allowed: it
    # would take over a ClusterIP's traffic (CVE-2020-8554). Admission has the API server
    # read them itself (core/registration.service_range_policy).
    service_ranges: tuple[IPNetwork, ...] = ()

    def service_range_of(self, ip: str) -> IPNetwork | None:
        """The Service range this external IP falls in, if any."""
        address = read_ip(ip)
        if address is None:
            return None
        return next((network for network in self.service_ranges if address in network), None)

    def external_ip_allowed(self, ip: str) -> bool:
        address = read_ip(ip)
        if address is None or self.service_range_of(ip) is not None:
            return False
        return any(address in network for network in self.allowed_external_ip_cidrs)

    def host_port_allowed(self, port: object) -> bool:
        return isinstance(port, int) and any(
            low <= port <= high for low, high in self.allowed_host_ports
        )

    def ingress_class_allowed(self, name: str) -> bool:
        """An empty class is none the policy can name (it counts as exposure)."""
        return bool(name) and any(fnmatchcase(name, glob) for glob in self.allowed_ingress_classes)

    def gateway_class_allowed(self, name: str) -> bool:
        """An empty class is none the policy can name (it counts as exposure)."""
        return bool(name) and any(fnmatchcase(name, glob) for glob in self.allowed_gateway_classes)

    def gateway_allowed(self, namespace: str, name: str) -> bool:
        """A Gateway a route may attach to; an empty part matches nothing."""
        return (
            bool(namespace)
            and bool(name)
            and any(
                fnmatchcase(namespace, namespace_glob) and fnmatchcase(name, name_glob)
                for namespace_glob, name_glob in self.allowed_gateways
            )
        )

    def exemption_for(
        self, namespace: str, name: str, today: datetime.date, kind: str = SERVICE_KIND
    ) -> Exemption | None:
        for exemption in self.exemptions:
            if exemption.applies_to(namespace, name, today, kind):
                return exemption
        return None
