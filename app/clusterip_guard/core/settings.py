"""What a cluster admin allows: the policy as typed settings (docs/design.md §1, §2).

Pure: the policy file's YAML is parsed in `clusterip_guard.policyfile`; every default lives here.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from types import MappingProxyType

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Annotation -> value (compared case-insensitively) that makes a LoadBalancer internal.
DEFAULT_INTERNAL_LOAD_BALANCER_ANNOTATIONS: Mapping[str, str] = MappingProxyType(
    {
        "service.beta.kubernetes.io/aws-load-balancer-internal": "true",
        "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
        "networking.gke.io/load-balancer-type": "Internal",
        "cloud.google.com/load-balancer-type": "Internal",
        "service.beta.kubernetes.io/azure-load-balancer-internal": "true",
        "service.beta.kubernetes.io/oci-load-balancer-internal": "true",
        "service.beta.kubernetes.io/openstack-internal-load-balancer": "true",
    }
)


@dataclass(frozen=True)
class Exemption:
    """A Service the cluster admin lets stay exposed, with the reason and an optional end."""

    namespace: str
    name: str  # a glob: "legacy-*"
    reason: str
    expires: datetime.date | None = None  # the last day it applies

    def applies_to(self, namespace: str, name: str, today: datetime.date) -> bool:
        if self.expires is not None and today > self.expires:
            return False
        return self.namespace == namespace and fnmatchcase(name, self.name)

    def describe(self) -> str:
        until = f", until {self.expires.isoformat()}" if self.expires else ""
        return f"exemption {self.namespace}/{self.name} ({self.reason}{until})"


@dataclass(frozen=True)
class PolicySettings:
    # External IPs inside these CIDRs are not exposure: none by default.
    allowed_external_ip_cidrs: tuple[IPNetwork, ...] = ()
    # An internal load balancer is still a load balancer: allowed only when the admin says so.
    allow_internal_load_balancers: bool = False
    # Node ports are reachable on every node whatever the balancer: refused unless accepted.
    allow_internal_load_balancer_node_ports: bool = False
    internal_load_balancer_annotations: Mapping[str, str] = field(
        default_factory=lambda: dict(DEFAULT_INTERNAL_LOAD_BALANCER_ANNOTATIONS)
    )
    # Legacy objects keep working while they are reported.
    allow_existing_violations: bool = True
    exemptions: tuple[Exemption, ...] = ()

    def external_ip_allowed(self, ip: str) -> bool:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in network for network in self.allowed_external_ip_cidrs)

    def exemption_for(self, namespace: str, name: str, today: datetime.date) -> Exemption | None:
        for exemption in self.exemptions:
            if exemption.applies_to(namespace, name, today):
                return exemption
        return None
