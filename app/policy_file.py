"""The policy file: what a cluster admin allows, parsed and checked once at load.

Parsing is pure (text in, `PolicySettings` out); reading the file from disk and reloading it
when it changes live in `reload.py`. Every error names the key it is about.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

import yaml

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Annotation -> value (compared case-insensitively) that makes a LoadBalancer internal.
DEFAULT_INTERNAL_LOAD_BALANCER_ANNOTATIONS: Mapping[str, str] = {
    "service.beta.kubernetes.io/aws-load-balancer-internal": "true",
    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
    "networking.gke.io/load-balancer-type": "Internal",
    "cloud.google.com/load-balancer-type": "Internal",
    "service.beta.kubernetes.io/azure-load-balancer-internal": "true",
    "service.beta.kubernetes.io/oci-load-balancer-internal": "true",
    "service.beta.kubernetes.io/openstack-internal-load-balancer": "true",
}


class PolicyError(ValueError):
    """The policy file is not valid; the message is one line and names the key."""


@dataclass(frozen=True)
class Exemption:
    """A Service the cluster admin lets stay exposed, with the reason and an optional end."""

    namespace: str
    name: str  # a glob: "legacy-*"
    reason: str
    expires: datetime.date | None = None

    def applies_to(self, namespace: str, name: str, today: datetime.date) -> bool:
        if self.expires is not None and today > self.expires:
            return False
        return self.namespace == namespace and fnmatchcase(name, self.name)

    def describe(self) -> str:
        until = f", until {self.expires.isoformat()}" if self.expires else ""
        return f"exemption {self.namespace}/{self.name} ({self.reason}{until})"


@dataclass(frozen=True)
class PolicySettings:
    allowed_external_ip_cidrs: tuple[IPNetwork, ...] = ()
    allow_internal_load_balancers: bool = False
    allow_internal_load_balancer_node_ports: bool = False
    internal_load_balancer_annotations: Mapping[str, str] = field(
        default_factory=lambda: dict(DEFAULT_INTERNAL_LOAD_BALANCER_ANNOTATIONS)
    )
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


_TOP_LEVEL_KEYS = (
    "allowedExternalIPCIDRs",
    "allowInternalLoadBalancers",
    "allowInternalLoadBalancerNodePorts",
    "internalLoadBalancerAnnotations",
    "allowExistingViolations",
    "exemptions",
)
_EXEMPTION_KEYS = ("namespace", "name", "reason", "expires")


def parse_policy(text: str) -> PolicySettings:
    """Parse and validate a policy file's YAML text."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise PolicyError(f"policy file is not valid YAML{where}") from error
    if document is None:
        return PolicySettings()
    return policy_from_mapping(document)


def policy_from_mapping(document: object) -> PolicySettings:
    if not isinstance(document, dict):
        raise PolicyError("policy file: the top level must be a mapping of settings")
    _reject_unknown_keys(document, _TOP_LEVEL_KEYS, "")
    annotations = document.get("internalLoadBalancerAnnotations")
    return PolicySettings(
        allowed_external_ip_cidrs=_cidrs(document.get("allowedExternalIPCIDRs", [])),
        allow_internal_load_balancers=_boolean(document, "allowInternalLoadBalancers", False),
        allow_internal_load_balancer_node_ports=_boolean(
            document, "allowInternalLoadBalancerNodePorts", False
        ),
        internal_load_balancer_annotations=(
            dict(DEFAULT_INTERNAL_LOAD_BALANCER_ANNOTATIONS)
            if annotations is None
            else _annotations(annotations)
        ),
        allow_existing_violations=_boolean(document, "allowExistingViolations", True),
        exemptions=_exemptions(document.get("exemptions", [])),
    )


def _reject_unknown_keys(mapping: dict[Any, Any], known: tuple[str, ...], prefix: str) -> None:
    for key in mapping:
        if key not in known:
            raise PolicyError(
                f"policy file: unknown key {prefix}{key!s} (expected one of: {', '.join(known)})"
            )


def _boolean(document: dict[str, Any], key: str, default: bool) -> bool:
    value = document.get(key, default)
    if not isinstance(value, bool):
        raise PolicyError(f"policy file: {key}: expected true or false, got {value!r}")
    return value


def _cidrs(value: object) -> tuple[IPNetwork, ...]:
    key = "allowedExternalIPCIDRs"
    if not isinstance(value, list):
        raise PolicyError(f"policy file: {key}: expected a list of CIDRs")
    networks: list[IPNetwork] = []
    for index, item in enumerate(value):
        try:
            networks.append(ipaddress.ip_network(str(item), strict=True))
        except ValueError as error:
            raise PolicyError(f"policy file: {key}[{index}]: {error}") from error
    return tuple(networks)


def _annotations(value: object) -> dict[str, str]:
    key = "internalLoadBalancerAnnotations"
    if not isinstance(value, dict):
        raise PolicyError(f"policy file: {key}: expected a mapping of annotation to value")
    result: dict[str, str] = {}
    for annotation, marker in value.items():
        if not isinstance(annotation, str) or not isinstance(marker, str | bool):
            raise PolicyError(f"policy file: {key}.{annotation!s}: expected a string value")
        result[annotation] = str(marker).lower() if isinstance(marker, bool) else marker
    return result


def _exemptions(value: object) -> tuple[Exemption, ...]:
    if not isinstance(value, list):
        raise PolicyError("policy file: exemptions: expected a list")
    exemptions: list[Exemption] = []
    for index, item in enumerate(value):
        where = f"exemptions[{index}]"
        if not isinstance(item, dict):
            raise PolicyError(f"policy file: {where}: expected a mapping")
        _reject_unknown_keys(item, _EXEMPTION_KEYS, f"{where}.")
        for required in ("namespace", "name", "reason"):
            text = item.get(required)
            if not isinstance(text, str) or not text.strip():
                raise PolicyError(f"policy file: {where}.{required}: required, a non-empty string")
        exemptions.append(
            Exemption(
                namespace=item["namespace"],
                name=item["name"],
                reason=item["reason"],
                expires=_date(item.get("expires"), f"{where}.expires"),
            )
        )
    return tuple(exemptions)


def _date(value: object, where: str) -> datetime.date | None:
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            pass
    raise PolicyError(f"policy file: {where}: expected a date YYYY-MM-DD, got {value!r}")
