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
    GATEWAY_KIND,
    GATEWAY_RESOURCE,
    MESH_GROUP,
    MESH_KIND,
    ROUTE_RESOURCES,
)
from clusterip_guard.core.ingresses import GLOB_CHARACTERS, INGRESS_GROUP, INGRESS_RESOURCE
from clusterip_guard.core.names import (
    CONFIG_HASH_ANNOTATION,
    CONFIGURATION_NAME,
    EXPOSED_SERVICE_MATCH_CONDITION,
    GATEWAY_CLASS_MATCH_CONDITION,
    HOST_EXPOSED_MATCH_CONDITION,
    INGRESS_CLASS_ANNOTATION,
    INGRESS_CLASS_MATCH_CONDITION,
    MANAGED_BY_BOOTSTRAP,
    MANAGED_BY_LABEL,
    NAME_LABEL,
    NEVER_JUDGED_NAMESPACES,
    PROJECT,
    ROUTE_PARENT_MATCH_CONDITION,
)
from clusterip_guard.core.types import MODES, Manifest, Mode
from clusterip_guard.core.workloads import WORKLOAD_KINDS, WorkloadKind

# The API server accepts 1..30 s; a fail-closed webhook on its path should answer in far less.
MIN_TIMEOUT_SECONDS = 1
MAX_TIMEOUT_SECONDS = 30
DEFAULT_TIMEOUT_SECONDS = 5

FailurePolicy = Literal["Fail", "Ignore"]
FAILURE_POLICIES: tuple[FailurePolicy, ...] = ("Fail", "Ignore")

_EXPOSED = (
    "(has({o}.spec.type) && {o}.spec.type in ['NodePort', 'LoadBalancer'])"
    " || (has({o}.spec.externalIPs) && size({o}.spec.externalIPs) > 0)"
)
# Only requests whose object is exposed, or whose old object was, reach the webhook: a
# compliant Service never costs a call.
EXPOSED_SERVICE_EXPRESSION = (
    f"{_EXPOSED.format(o='object')} || (oldObject != null && ({_EXPOSED.format(o='oldObject')}))"
)


def _opens_host(spec: str) -> str:
    """CEL: the Pod spec at `spec` is on the host network or declares a host port."""
    ports = "has(c.ports) && c.ports.exists(p, has(p.hostPort) && p.hostPort > 0)"
    return (
        f"(has({spec}.hostNetwork) && {spec}.hostNetwork == true)"
        f" || (has({spec}.containers) && {spec}.containers.exists(c, {ports}))"
        f" || (has({spec}.initContainers) && {spec}.initContainers.exists(c, {ports}))"
    )


def _pod_spec_reached(kind: WorkloadKind) -> str:
    """CEL: `object` has its Pod spec (each step checked: admission runs before validation,
    and a missing key is an error, which a fail-closed entry would turn into a refusal)."""
    steps = ["object", *kind.pod_spec_path]
    return " && ".join(f"has({'.'.join(steps[: n + 1])})" for n in range(1, len(steps)))


def host_exposed_expression() -> str:
    """CEL: the Pod, or the template of the workload, opens a port on its node. A write of a
    workload's or Pod's that does not never reaches the webhook. Ephemeral containers are
    left out: the API server refuses ports on them. The old object is not needed: an UPDATE is
    judged on what it adds, and a new object that opens nothing adds nothing."""
    by_resource: dict[str, list[str]] = {}
    for kind in WORKLOAD_KINDS:
        spec = ".".join(["object", *kind.pod_spec_path])
        by_resource.setdefault(f"{_pod_spec_reached(kind)} && ({_opens_host(spec)})", []).append(
            kind.resource
        )
    terms = [
        f"(request.resource.resource in {sorted(resources)!r} && {test})".replace('"', "'")
        for test, resources in by_resource.items()
    ]
    return " || ".join(terms)


def host_exposed_match_condition() -> dict[str, str]:
    return {"name": HOST_EXPOSED_MATCH_CONDITION, "expression": host_exposed_expression()}


def ingress_classes_of(o: str) -> str:
    """CEL: the classes the Ingress `o` names, its field's and its annotation's (every step
    checked: admission runs before validation)."""
    # Quoted as the chart's YAML keeps it double-quoted (its Helm list is single-quoted).
    annotation = f"'{INGRESS_CLASS_ANNOTATION}'"
    return (
        f"(has({o}.spec) && has({o}.spec.ingressClassName) ? [{o}.spec.ingressClassName] : [])"
        f" + (has({o}.metadata.annotations) && {annotation} in {o}.metadata.annotations ? "
        f"[{o}.metadata.annotations[{annotation}]] : [])"
    )


def ingress_exposed(o: str, allowed: Callable[[str], str]) -> str:
    """CEL: the Ingress `o` names no class, or one that `allowed` (CEL of the class `c`) does
    not allow: exposure, as core/ingresses.py counts it."""
    return (
        f"(size({ingress_classes_of(o)}) == 0 || "
        f"({ingress_classes_of(o)}).exists(c, c == '' || !({allowed('c')})))"
    )


def exact_ingress_classes(allowed: Collection[str]) -> list[str]:
    """The allowed classes that are not globs: each matches only itself, so a registration can
    leave an Ingress of that class out with a plain `in` (and never one the policy denies)."""
    return sorted(name for name in allowed if not GLOB_CHARACTERS & set(name))


def ingress_match_condition(allowed: Collection[str] | str = ()) -> dict[str, str]:
    """Only an Ingress that names a class not in `allowed` (exact names; a Helm expression
    giving a JSON list, in the chart), or none, or whose old object did, reaches the webhook:
    an Ingress of an allowed class never costs a call. Without the policy's classes (a
    registration that was not given them) every Ingress does."""
    # Single-quoted as the chart's helper writes them (a class name holds no quote: the policy
    # file allows DNS subdomain characters only), so both registrations are the same text.
    listed = (
        allowed
        if isinstance(allowed, str)
        else "[" + ", ".join(f"'{name}'" for name in exact_ingress_classes(allowed)) + "]"
    )

    def exposed(o: str) -> str:
        return ingress_exposed(o, lambda c: f"{c} in {listed}")

    return {
        "name": INGRESS_CLASS_MATCH_CONDITION,
        "expression": f"{exposed('object')} || (oldObject != null && {exposed('oldObject')})",
    }


def gateway_class_exposed(o: str, allowed: Callable[[str], str]) -> str:
    """CEL: the Gateway `o` names no class, an empty one, or one that `allowed` (CEL of the
    class `c`) does not allow: exposure, as core/gateways.py counts it."""
    named = f"has({o}.spec) && has({o}.spec.gatewayClassName)"
    return f"(!({named}) || [{o}.spec.gatewayClassName].exists(c, c == '' || !({allowed('c')})))"


def parent_group(p: str) -> str:
    """CEL: the group of the parentRef `p` (core/gateways.py: the Gateway API's by default)."""
    return f"(has({p}.group) ? {p}.group : '{GATEWAY_GROUP}')"


def parent_kind(p: str) -> str:
    return f"(has({p}.kind) ? {p}.kind : '{GATEWAY_KIND}')"


def parent_namespace(p: str) -> str:
    """The route's namespace by default (request.namespace: the route is namespaced)."""
    return f"(has({p}.namespace) ? {p}.namespace : request.namespace)"


def parent_name(p: str) -> str:
    return f"(has({p}.name) ? {p}.name : '')"


def parent_readable(p: str) -> str:
    """CEL: the parentRef `p` has a name, and no empty kind or namespace (a validated object
    always does: the schema requires it; admission can run before validation)."""
    return (
        f"({parent_name(p)} != '' && !(has({p}.kind) && {p}.kind == '')"
        f" && !(has({p}.namespace) && {p}.namespace == ''))"
    )


def parent_allowed(p: str, allowed_gateway: Callable[[str, str], str]) -> str:
    """CEL: the parentRef `p` is mesh routing (a Service), or a Gateway that `allowed_gateway`
    (CEL of its namespace and name) allows: no exposure, as core/gateways.py counts it."""
    group, kind = parent_group(p), parent_kind(p)
    mesh = f"{group} == '{MESH_GROUP}' && {kind} == '{MESH_KIND}'"
    gateway = (
        f"{group} == '{GATEWAY_GROUP}' && {kind} == '{GATEWAY_KIND}' && "
        f"({allowed_gateway(parent_namespace(p), parent_name(p))})"
    )
    return f"({parent_readable(p)} && (({mesh}) || ({gateway})))"


def route_exposed(o: str, allowed_gateway: Callable[[str, str], str]) -> str:
    """CEL: a parent of the route `o` is neither mesh routing nor an allowed Gateway."""
    return (
        f"(has({o}.spec) && has({o}.spec.parentRefs) && "
        f"{o}.spec.parentRefs.exists(p, !{parent_allowed('p', allowed_gateway)}))"
    )


def exact_gateways(allowed: Collection[tuple[str, str]]) -> list[str]:
    """The allowed Gateways, `namespace/name`, neither part a glob: each matches only itself."""
    return sorted(
        f"{namespace}/{name}"
        for namespace, name in allowed
        if not GLOB_CHARACTERS & set(namespace + name)
    )


def _cel_list(allowed: Collection[str] | str, exact: Callable[[Collection[str]], list[str]]) -> str:
    """A CEL list of the exact names (single-quoted, as the chart's helpers write them); a str
    is a Helm expression giving such a list."""
    if isinstance(allowed, str):
        return allowed
    return "[" + ", ".join(f"'{name}'" for name in exact(allowed)) + "]"


def gateway_match_condition(allowed: Collection[str] | str = ()) -> dict[str, str]:
    """Only a Gateway of a class not in `allowed` (exact names; a Helm expression giving a CEL
    list, in the chart), or of none, or whose old object was, reaches the webhook."""
    listed = _cel_list(allowed, exact_ingress_classes)

    def exposed(o: str) -> str:
        return gateway_class_exposed(o, lambda c: f"{c} in {listed}")

    return {
        "name": GATEWAY_CLASS_MATCH_CONDITION,
        "expression": f"{exposed('object')} || (oldObject != null && {exposed('oldObject')})",
    }


def route_match_condition(allowed: Collection[tuple[str, str]] | str = ()) -> dict[str, str]:
    """Only a route with a parent that is neither a Service nor an exact allowed Gateway
    (`allowed`: the policy's; a Helm expression giving a CEL list of `namespace/name`, in the
    chart), or whose old object had one, reaches the webhook."""
    listed = allowed if isinstance(allowed, str) else _cel_list(exact_gateways(allowed), sorted)

    def exposed(o: str) -> str:
        return route_exposed(o, lambda namespace, name: f"({namespace} + '/' + {name}) in {listed}")

    return {
        "name": ROUTE_PARENT_MATCH_CONDITION,
        "expression": f"{exposed('object')} || (oldObject != null && {exposed('oldObject')})",
    }


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


def exposed_match_condition() -> dict[str, str]:
    return {"name": EXPOSED_SERVICE_MATCH_CONDITION, "expression": EXPOSED_SERVICE_EXPRESSION}


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
