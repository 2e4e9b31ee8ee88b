"""The policy file: YAML in, `PolicySettings` out, checked once at load; and the holder that
keeps the policy in force while the file changes on disk (docs/design.md, "Modes, per namespace").

Every error names the key it is about. A broken new file never replaces a good one.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import re
from pathlib import Path
from typing import Any

from clusterip_guard.core.addresses import MAPPED_BITS, read_range
from clusterip_guard.core.cloud_providers import CLASS_READERS, PROVIDERS, Provider
from clusterip_guard.core.gateways import GATEWAY_API_KIND_NAMES
from clusterip_guard.core.ingresses import INGRESS_KIND
from clusterip_guard.core.policy import (
    SERVICE_KIND,
    Exemption,
    IPNetwork,
    PolicySettings,
)
from clusterip_guard.core.workloads import WORKLOAD_KIND_NAMES
from clusterip_guard.reloading import PolledFiles, ReloadResult
from clusterip_guard.yamltext import YAMLTextError, load_yaml

log = logging.getLogger("clusterip_guard.policy")


class PolicyError(ValueError):
    """The policy file is not valid; the message is one line and names the key."""


DEFAULTS = PolicySettings()

POLICY_KEYS = (
    "allowedExternalIPCIDRs",
    "allowInternalLoadBalancers",
    "allowInternalLoadBalancerNodePorts",
    "internalLoadBalancerProviders",
    "internalLoadBalancerClasses",
    "allowExistingViolations",
    "allowedHostPorts",
    "allowedIngressClasses",
    "allowedGatewayClasses",
    "allowedGateways",
    "exemptions",
)
_EXEMPTION_KEYS = ("namespace", "name", "kind", "reason", "expires")
_EXEMPTION_KINDS = (SERVICE_KIND, *WORKLOAD_KIND_NAMES, INGRESS_KIND, *GATEWAY_API_KIND_NAMES)
_MAX_PORT = 65535


def parse_policy(text: str) -> PolicySettings:
    """Parse and validate a policy file's YAML text."""
    try:
        document = load_yaml(text)
    except YAMLTextError as error:
        raise PolicyError(f"policy file: {error}") from error
    if document is None:
        return PolicySettings()
    return policy_from_mapping(document)


def policy_from_mapping(document: object) -> PolicySettings:
    if not isinstance(document, dict):
        raise PolicyError("policy file: the top level must be a mapping of settings")
    if "internalLoadBalancerAnnotations" in document:
        raise PolicyError(
            "policy file: internalLoadBalancerAnnotations is gone: each cloud provider's own "
            "reading of its annotations counts now; name the providers in "
            f"internalLoadBalancerProviders (any of: {', '.join(PROVIDERS)})"
        )
    _reject_unknown_keys(document, POLICY_KEYS, "")
    allow_internal = _boolean(
        document, "allowInternalLoadBalancers", DEFAULTS.allow_internal_load_balancers
    )
    providers = _providers(document.get("internalLoadBalancerProviders", []))
    if allow_internal and not providers:
        raise PolicyError(
            "policy file: allowInternalLoadBalancers needs internalLoadBalancerProviders: the "
            f"cloud providers whose internal load balancers count (any of: {', '.join(PROVIDERS)})"
        )
    return PolicySettings(
        allowed_external_ip_cidrs=_cidrs(document.get("allowedExternalIPCIDRs", [])),
        allow_internal_load_balancers=allow_internal,
        allow_internal_load_balancer_node_ports=_boolean(
            document,
            "allowInternalLoadBalancerNodePorts",
            DEFAULTS.allow_internal_load_balancer_node_ports,
        ),
        internal_load_balancer_providers=providers,
        internal_load_balancer_classes=_classes(
            document.get("internalLoadBalancerClasses", {}), providers
        ),
        allow_existing_violations=_boolean(
            document, "allowExistingViolations", DEFAULTS.allow_existing_violations
        ),
        exemptions=_exemptions(document.get("exemptions", [])),
        allowed_host_ports=_host_ports(document.get("allowedHostPorts", [])),
        allowed_ingress_classes=_ingress_classes(document.get("allowedIngressClasses", [])),
        allowed_gateway_classes=_gateway_classes(document.get("allowedGatewayClasses", [])),
        allowed_gateways=_gateways(document.get("allowedGateways", [])),
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
            network = ipaddress.ip_network(str(item), strict=True)
        except ValueError as error:
            raise PolicyError(f"policy file: {key}[{index}]: {error}") from error
        mapped = isinstance(network, ipaddress.IPv6Network) and (
            network.network_address.ipv4_mapped is not None
        )
        if mapped:
            # An IPv4-mapped range means the IPv4 range under it, as the API server reads it
            # (core/addresses.py); held as that range, which both engines read the same way.
            unmapped = read_range(str(item))
            if unmapped is None:
                raise PolicyError(
                    f"policy file: {key}[{index}]: {item} is IPv4-mapped in a form neither "
                    f"engine reads (dotted, /{MAPPED_BITS} or longer): write the IPv4 range"
                )
            network = unmapped
        networks.append(network)
    return tuple(networks)


def _providers(value: object) -> tuple[Provider, ...]:
    key = "internalLoadBalancerProviders"
    if not isinstance(value, list):
        raise PolicyError(f"policy file: {key}: expected a list of cloud providers")
    providers: list[Provider] = []
    for index, item in enumerate(value):
        provider = next((p for p in PROVIDERS if p == item), None)
        if provider is None:
            raise PolicyError(
                f"policy file: {key}[{index}]: {item!r} is not one of {', '.join(PROVIDERS)}"
            )
        providers.append(provider)
    return tuple(providers)


def _classes(value: object, providers: tuple[Provider, ...]) -> tuple[tuple[str, Provider], ...]:
    """internalLoadBalancerClasses: each loadBalancerClass the admin runs, with the provider
    whose controller claims it; only providers with a cited reading of a class
    (cloud_providers.CLASS_READERS), and only those the policy names."""
    key = "internalLoadBalancerClasses"
    if not isinstance(value, dict):
        raise PolicyError(
            f"policy file: {key}: expected a mapping of loadBalancerClass to provider, "
            "like service.k8s.aws/nlb: aws"
        )
    classes: list[tuple[str, Provider]] = []
    for name, item in value.items():
        where = f"{key}.{name!s}"
        if not isinstance(name, str) or not _CLASS_NAME.fullmatch(name):
            raise PolicyError(
                f"policy file: {where}: not a loadBalancerClass (a domain-prefixed name, like "
                "service.k8s.aws/nlb)"
            )
        provider = next((p for p in CLASS_READERS if p == item), None)
        if provider is None:
            raise PolicyError(
                f"policy file: {where}: {item!r}: a class can be read as internal only for "
                f"{', '.join(CLASS_READERS)} (no other provider's controller reading of a class "
                "is known); a balancer of any other class is exposed"
            )
        if provider not in providers:
            raise PolicyError(
                f"policy file: {where}: {provider} is not in internalLoadBalancerProviders"
            )
        classes.append((name, provider))
    return tuple(classes)


def _host_ports(value: object) -> tuple[tuple[int, int], ...]:
    """allowedHostPorts: ports (8088) and inclusive ranges ("9100-9110")."""
    key = "allowedHostPorts"
    if not isinstance(value, list):
        raise PolicyError(f"policy file: {key}: expected a list of ports and ranges like 9100-9110")
    ranges: list[tuple[int, int]] = []
    for index, item in enumerate(value):
        where = f"{key}[{index}]"
        low: object = item
        high: object = item
        if isinstance(item, str) and _PORT_RANGE.fullmatch(item.strip()):
            low, high = (int(part) for part in item.strip().split("-"))
        elif isinstance(item, str) and item.strip().isdigit():
            low = high = int(item.strip())
        if (
            not isinstance(low, int)
            or not isinstance(high, int)
            or isinstance(item, bool)
            or not 1 <= low <= high <= _MAX_PORT
        ):
            raise PolicyError(
                f"policy file: {where}: {item!r} is not a port (1-{_MAX_PORT}) or a range "
                "of ports low-high, like 9100-9110"
            )
        ranges.append((low, high))
    return tuple(ranges)


def _ingress_classes(value: object) -> tuple[str, ...]:
    """allowedIngressClasses: IngressClass names, or globs of them (`internal-*`)."""
    key = "allowedIngressClasses"
    if not isinstance(value, list):
        raise PolicyError(f"policy file: {key}: expected a list of ingress class names")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not _CLASS_GLOB.fullmatch(item):
            raise PolicyError(
                f"policy file: {key}[{index}]: {item!r} can never match an ingress class: class "
                "names are lowercase letters, digits, '-' and '.' (a glob may add * ? [...])"
            )
    return tuple(value)


def _gateway_classes(value: object) -> tuple[str, ...]:
    """allowedGatewayClasses: GatewayClass names, or globs of them (`internal-*`)."""
    key = "allowedGatewayClasses"
    if not isinstance(value, list):
        raise PolicyError(f"policy file: {key}: expected a list of gateway class names")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not _CLASS_GLOB.fullmatch(item):
            raise PolicyError(
                f"policy file: {key}[{index}]: {item!r} can never match a gateway class: class "
                "names are lowercase letters, digits, '-' and '.' (a glob may add * ? [...])"
            )
    return tuple(value)


def _gateways(value: object) -> tuple[tuple[str, str], ...]:
    """allowedGateways: "namespace/name", each part a name or a glob (`infra/internal-*`)."""
    key = "allowedGateways"
    if not isinstance(value, list):
        raise PolicyError(f"policy file: {key}: expected a list of namespace/name Gateways")
    gateways: list[tuple[str, str]] = []
    for index, item in enumerate(value):
        namespace, slash, name = item.partition("/") if isinstance(item, str) else ("", "", "")
        if not slash or not _NAME_GLOB.fullmatch(namespace) or not _CLASS_GLOB.fullmatch(name):
            raise PolicyError(
                f"policy file: {key}[{index}]: {item!r} is not namespace/name: a namespace (or "
                "glob), a slash, and a Gateway name (or glob), like infra/internal"
            )
        gateways.append((namespace, name))
    return tuple(gateways)


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
        kind = item.get("kind", SERVICE_KIND)
        if kind not in _EXEMPTION_KINDS:
            raise PolicyError(
                f"policy file: {where}.kind: {kind!r} is not a kind clusterip-guard judges "
                f"(one of: {', '.join(_EXEMPTION_KINDS)})"
            )
        # A namespace's and a Service's name is a DNS label; every other kind's (Ingress,
        # Gateway, route, Deployment, Pod...) a DNS subdomain, which may hold dots.
        name_glob, characters = (
            (_NAME_GLOB, "lowercase letters, digits and '-'")
            if kind == SERVICE_KIND
            else (_CLASS_GLOB, "lowercase letters, digits, '-' and '.'")
        )
        for key, what, glob, allowed in (
            ("namespace", "a namespace", _NAME_GLOB, "lowercase letters, digits and '-'"),
            ("name", f"a {kind}", name_glob, characters),
        ):
            if not glob.fullmatch(item[key]):
                raise PolicyError(
                    f"policy file: {where}.{key}: {item[key]!r} can never match {what}: names "
                    f"are {allowed} (a glob may add * ? [...])"
                )
        exemptions.append(
            Exemption(
                namespace=item["namespace"],
                name=item["name"],
                reason=item["reason"],
                expires=_date(item.get("expires"), f"{where}.expires"),
                kind=kind,
            )
        )
    return tuple(exemptions)


# What a namespace or Service name glob may hold: DNS label characters, and fnmatch's own.
_NAME_GLOB = re.compile(r"[a-z0-9*?\[\]!-]+")
# An IngressClass, GatewayClass or Gateway name glob, or any name but a Service's or a
# namespace's: a DNS subdomain's characters, and fnmatch's own.
_CLASS_GLOB = re.compile(r"[a-z0-9.*?\[\]!-]+")
# A loadBalancerClass, as the API server validates it: a qualified name with a domain prefix.
_CLASS_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PORT_RANGE = re.compile(r"\d{1,5}-\d{1,5}")


def _date(value: object, where: str) -> datetime.date | None:
    if value is None:
        return None
    text = str(value)
    if isinstance(value, str) and _DATE.fullmatch(value):
        try:
            return datetime.date.fromisoformat(value)
        except ValueError as error:  # 2027-02-30: "day is out of range for month"
            raise PolicyError(
                f"policy file: {where}: {value} is not a date ({error}); "
                f"write the last day the exemption applies, YYYY-MM-DD"
            ) from None
    raise PolicyError(
        f"policy file: {where}: expected a date YYYY-MM-DD (the last day the exemption "
        f"applies), got {text!r}"
    )


def read_policy_file(path: Path | None) -> PolicySettings:
    """Read and validate a policy file; no file means the default policy."""
    if path is None:
        return PolicySettings()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise PolicyError(f"policy file {path}: not UTF-8 text ({error.reason})") from None
    except OSError as error:
        raise PolicyError(f"cannot read policy file {path}: {error.strerror or error}") from None
    try:
        return parse_policy(text)
    except PolicyError as error:
        raise PolicyError(str(error).replace("policy file", f"policy file {path}", 1)) from error


class PolicyHolder:
    """The policy in force; swapped whole on a good reload, kept on a bad one."""

    name = "policy"

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.current = read_policy_file(path)
        self._files = PolledFiles(path) if path is not None else None

    def reload_if_changed(self) -> ReloadResult:
        if self._files is None or not self._files.changed():
            return "unchanged"
        try:
            self.current = read_policy_file(self.path)
        except PolicyError as error:
            log.error("policy reload failed; keeping the last good policy: %s", error)
            return "failed"
        log.info("policy reloaded from %s", self.path)
        return "reloaded"
