"""The admission objects that register clusterip-guard (docs/design.md, "What
bootstrap registers"): the webhook configurations, built from the table of admission entries
(core/admission.py); the in-process policies beside them are core/admission_policies.py.

Pure: plain dicts (admissionregistration.k8s.io/v1) out. One entry per mode, each with its own
path and a namespaceSelector on the mode label, so the server never looks a namespace up.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from clusterip_guard.core.admission import (
    AdmissionEntry,
    FailureRole,
    namespace_selector,
    registered_entries,
)
from clusterip_guard.core.gateways import (
    GATEWAY_GROUP,
    GATEWAY_RESOURCE,
    ROUTE_RESOURCES,
)
from clusterip_guard.core.ingresses import INGRESS_GROUP, INGRESS_RESOURCE
from clusterip_guard.core.match_conditions import (
    exposed_match_condition,
    gateway_match_condition,
    host_exposed_match_condition,
    ingress_match_condition,
    route_match_condition,
)
from clusterip_guard.core.names import (
    CONFIG_HASH_ANNOTATION,
    CONFIGURATION_NAME,
    MANAGED_BY_BOOTSTRAP,
    MANAGED_BY_LABEL,
    NAME_LABEL,
    NEVER_JUDGED_NAMESPACES,
    PROJECT,
)
from clusterip_guard.core.types import MODES, Manifest, Mode
from clusterip_guard.core.workloads import WORKLOAD_KINDS

# The API server accepts 1..30 s; a fail-closed webhook on its path should answer in far less.
MIN_TIMEOUT_SECONDS = 1
MAX_TIMEOUT_SECONDS = 30
DEFAULT_TIMEOUT_SECONDS = 5

FailurePolicy = Literal["Fail", "Ignore"]
FAILURE_POLICIES: tuple[FailurePolicy, ...] = ("Fail", "Ignore")


class RegistrationError(ValueError):
    """The registration settings are not valid; the message is one line."""


@dataclass(frozen=True)
class ServiceTarget:
    """The webhook runs in the cluster behind a Service."""

    namespace: str
    name: str
    port: int = 443


@dataclass(frozen=True)
class UrlTarget:
    """The webhook runs outside the cluster (as in the demo) at an HTTPS base URL."""

    base_url: str

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme != "https" or not parts.hostname:
            raise RegistrationError(f"the webhook's URL must be https://, got {self.base_url!r}")
        if parts.query or parts.fragment:
            raise RegistrationError(
                f"the webhook's URL must not have a query or fragment: {self.base_url!r}"
            )


def webhook_configurations(
    *,
    target: ServiceTarget | UrlTarget,
    ca_bundle: bytes,
    default_mode: Mode = "off",
    own_namespace: str | None = None,
    excluded_namespaces: Collection[str] = (),
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
    failure_policy: FailurePolicy = "Fail",
    audit_failure_policy: FailurePolicy = "Ignore",
    name: str = CONFIGURATION_NAME,
    allowed_ingress_classes: Collection[str] = (),
    allowed_gateway_classes: Collection[str] = (),
    allowed_gateways: Collection[tuple[str, str]] = (),
) -> tuple[Manifest, Manifest]:
    """(MutatingWebhookConfiguration, ValidatingWebhookConfiguration) for the given target.

    `failure_policy` is for the enforce and mutate entries (fail closed by default: a webhook
    that is down must not let exposure through), `audit_failure_policy` for audit (fail open:
    reporting must never block a write). `allowed_ingress_classes`: the policy's, so that an
    Ingress of one of them never costs a call (none given: every Ingress does); likewise
    `allowed_gateway_classes` for Gateways and `allowed_gateways` for routes.
    """
    if default_mode not in MODES:
        raise RegistrationError(f"default mode must be one of {', '.join(MODES)}: {default_mode!r}")
    if not MIN_TIMEOUT_SECONDS <= timeout_seconds <= MAX_TIMEOUT_SECONDS:
        allowed = f"{MIN_TIMEOUT_SECONDS}..{MAX_TIMEOUT_SECONDS}"
        raise RegistrationError(f"timeout must be {allowed} seconds: {timeout_seconds}")
    for policy in (failure_policy, audit_failure_policy):
        if policy not in FAILURE_POLICIES:
            raise RegistrationError(f"failure policy must be Fail or Ignore: {policy!r}")
    excluded = never_judged_namespaces(own_namespace, excluded_namespaces)
    policies: dict[FailureRole, FailurePolicy] = {
        "guard": failure_policy,
        "reporter": audit_failure_policy,
    }
    entries = registered_entries(default_mode)

    def webhooks(configuration: str) -> list[dict[str, Any]]:
        return [
            webhook_entry(
                entry,
                client_config=_client_config(target, entry.path, ca_bundle),
                never_judged=excluded,
                failure_policy=policies[entry.failure_role],
                timeout_seconds=timeout_seconds,
                allowed_ingress_classes=allowed_ingress_classes,
                allowed_gateway_classes=allowed_gateway_classes,
                allowed_gateways=allowed_gateways,
            )
            for entry in entries
            if entry.configuration == configuration
        ]

    metadata_labels = {
        NAME_LABEL: PROJECT,
        MANAGED_BY_LABEL: MANAGED_BY_BOOTSTRAP,
    }
    return (
        _configuration(
            "MutatingWebhookConfiguration",
            name,
            metadata_labels,
            webhooks("mutating"),
        ),
        _configuration(
            "ValidatingWebhookConfiguration",
            name,
            metadata_labels,
            webhooks("validating"),
        ),
    )


def never_judged_namespaces(
    own_namespace: str | None = None, excluded_namespaces: Collection[str] = ()
) -> list[str]:
    """The namespaces no entry selects: the cluster's own, the webhook's, and those excluded."""
    return sorted(
        {
            *NEVER_JUDGED_NAMESPACES,
            *excluded_namespaces,
            *([own_namespace] if own_namespace else []),
        }
    )


def entry_resources(entry: AdmissionEntry) -> list[str]:
    """Services, and for a validating entry services/status too: through it annotations and
    labels change (an internal balancer turned internet-facing) while no webhook on
    `services` sees it. A mutating entry leaves it out: a patch of the spec through status is
    thrown away, so the validating entries judge it (in mutate namespaces, the backstop)."""
    return ["services"] if entry.configuration == "mutating" else ["services", "services/status"]


def entry_rules(entry: AdmissionEntry) -> list[dict[str, Any]]:
    """What an entry's webhook is called for. For workloads: every kind that makes Pods, on
    CREATE and UPDATE (a template can gain a host port), and Pods on CREATE (the API server
    refuses an UPDATE that changes a Pod's ports or host network, so one adds nothing); none
    of their subresources writes a Pod spec."""
    if entry.subject == "workloads":
        return workload_rules()
    if entry.subject == "ingresses":
        return ingress_rules(entry.configuration)
    if entry.subject in ("gateways", "routes"):
        return gateway_api_rules(entry.subject, entry.configuration)
    return [
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "operations": ["CREATE", "UPDATE"],
            "resources": entry_resources(entry),
            "scope": "Namespaced",
        }
    ]


def ingress_rules(configuration: str = "validating") -> list[dict[str, Any]]:
    """Ingresses, CREATE and UPDATE; for a validating entry ingresses/status too (it takes
    annotations, the deprecated class among them), as for Services."""
    resources = [INGRESS_RESOURCE]
    if configuration == "validating":
        resources.append(f"{INGRESS_RESOURCE}/status")
    return [
        {
            "apiGroups": [INGRESS_GROUP],
            "apiVersions": ["v1"],
            "operations": ["CREATE", "UPDATE"],
            "resources": resources,
            "scope": "Namespaced",
        }
    ]


def gateway_api_rules(subject: str, configuration: str = "validating") -> list[dict[str, Any]]:
    """Gateways (`subject` "gateways") or the routes ("routes"), any version the API server
    serves (the Gateway API's CRDs serve several), CREATE and UPDATE; for a validating entry
    their status too, as for Ingresses. A rule may name a resource the server does not serve
    yet: the entry judges it once its CRD is installed."""
    plain = [GATEWAY_RESOURCE] if subject == "gateways" else list(ROUTE_RESOURCES)
    resources = (
        [*plain, *(f"{r}/status" for r in plain)] if configuration == "validating" else plain
    )
    return [
        {
            "apiGroups": [GATEWAY_GROUP],
            "apiVersions": ["*"],
            "operations": ["CREATE", "UPDATE"],
            "resources": resources,
            "scope": "Namespaced",
        }
    ]


def workload_rules() -> list[dict[str, Any]]:
    """The rules of every workload entry, and of the native engine's workload policies."""
    by_group: dict[str, list[str]] = {}
    for kind in WORKLOAD_KINDS:
        if kind.kind != "Pod":
            by_group.setdefault(kind.group, []).append(kind.resource)
    rules = [
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "operations": ["CREATE"],
            "resources": ["pods"],
            "scope": "Namespaced",
        }
    ]
    for group, resources in by_group.items():
        rules.append(
            {
                "apiGroups": [group],
                "apiVersions": ["v1"],
                "operations": ["CREATE", "UPDATE"],
                "resources": resources,
                "scope": "Namespaced",
            }
        )
    return rules


def webhook_entry(
    entry: AdmissionEntry,
    *,
    client_config: dict[str, Any],
    never_judged: Collection[str],
    failure_policy: str,
    timeout_seconds: int | str,
    allowed_ingress_classes: Collection[str] | str = (),
    allowed_gateway_classes: Collection[str] | str = (),
    allowed_gateways: Collection[tuple[str, str]] | str = (),
) -> dict[str, Any]:
    """One webhook of a configuration, for one entry of the table. (The chart's generator
    passes Helm expressions for the values an installation chooses.)"""
    conditions: dict[str, Callable[[], dict[str, str]]] = {
        "services": exposed_match_condition,
        "workloads": host_exposed_match_condition,
        "ingresses": lambda: ingress_match_condition(allowed_ingress_classes),
        "gateways": lambda: gateway_match_condition(allowed_gateway_classes),
        "routes": lambda: route_match_condition(allowed_gateways),
    }
    body: dict[str, Any] = {
        "name": entry.name,
        "clientConfig": client_config,
        "rules": entry_rules(entry),
        "namespaceSelector": namespace_selector(entry.selector(), never_judged),
        "objectSelector": {},
        # Only a Service that is exposed, or was, costs a webhook call; only a Pod spec that
        # opens a port on its node; only an Ingress or a Gateway of a class not known to be
        # allowed; only a route with a parent not known to be allowed.
        "matchConditions": [conditions[entry.subject]()],
        "matchPolicy": "Equivalent",
        "failurePolicy": failure_policy,
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "timeoutSeconds": timeout_seconds,
    }
    if entry.configuration == "mutating":
        # Our patch is idempotent; run again if a later webhook re-exposes the Service.
        body["reinvocationPolicy"] = "IfNeeded"
    return body


def _client_config(
    target: ServiceTarget | UrlTarget, path: str, ca_bundle: bytes
) -> dict[str, Any]:
    encoded = base64.b64encode(ca_bundle).decode("ascii")
    if isinstance(target, UrlTarget):
        return {"url": target.base_url.rstrip("/") + path, "caBundle": encoded}
    return {
        "service": {
            "namespace": target.namespace,
            "name": target.name,
            "path": path,
            "port": target.port,
        },
        "caBundle": encoded,
    }


def _configuration(
    kind: str, name: str, labels: dict[str, str], webhooks: list[dict[str, Any]]
) -> Manifest:
    return with_config_hash(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": kind,
            "metadata": {"name": name, "labels": labels},
            "webhooks": webhooks,
        }
    )


def with_config_hash(manifest: Manifest) -> Manifest:
    # A digest of what we asked for, so a second bootstrap can tell "already so" without
    # comparing against the fields the API server defaults.
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()
    manifest["metadata"]["annotations"] = {CONFIG_HASH_ANNOTATION: digest[:32]}
    return manifest
