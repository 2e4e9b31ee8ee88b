"""The admission objects that register clusterip-guard (docs/design.md, "What
bootstrap registers"): the webhook configurations, built from the table of admission entries
(core/admission.py), and the in-process policies on the mode label.

Pure: plain dicts (admissionregistration.k8s.io/v1) out. One entry per mode, each with its own
path and a namespaceSelector on the mode label, so the server never looks a namespace up.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from clusterip_guard.core.admission import (
    ADMISSION_ENTRIES,
    AdmissionEntry,
    Configuration,
    FailureRole,
    namespace_selector,
    registered_entries,
    union_selectors,
)
from clusterip_guard.core.names import (
    CONFIG_HASH_ANNOTATION,
    CONFIGURATION_NAME,
    DOMAIN,
    EXPOSED_SERVICE_MATCH_CONDITION,
    HOST_EXPOSED_MATCH_CONDITION,
    MANAGED_BY_BOOTSTRAP,
    MANAGED_BY_LABEL,
    MODE_ADMIN_GROUP,
    MODE_ADMIN_RESOURCE,
    MODE_ADMIN_VERB,
    MODE_LABEL,
    MODE_LABEL_POLICY,
    NAME_LABEL,
    NEVER_JUDGED_NAMESPACES,
    PROJECT,
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
) -> tuple[Manifest, Manifest]:
    """(MutatingWebhookConfiguration, ValidatingWebhookConfiguration) for the given target.

    `failure_policy` is for the enforce and mutate entries (fail closed by default: a webhook
    that is down must not let exposure through), `audit_failure_policy` for audit (fail open:
    reporting must never block a write).
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
    return [
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "operations": ["CREATE", "UPDATE"],
            "resources": entry_resources(entry),
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
) -> dict[str, Any]:
    """One webhook of a configuration, for one entry of the table. (The chart's generator
    passes Helm expressions for the values an installation chooses.)"""
    body: dict[str, Any] = {
        "name": entry.name,
        "clientConfig": client_config,
        "rules": entry_rules(entry),
        "namespaceSelector": namespace_selector(entry.selector(), never_judged),
        "objectSelector": {},
        # Only a Service that is exposed, or was, costs a webhook call; only a Pod spec that
        # opens a port on its node.
        "matchConditions": [
            exposed_match_condition()
            if entry.subject == "services"
            else host_exposed_match_condition()
        ],
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


# How much a mode keeps Services internal: creating a namespace with a weaker mode than the
# cluster default is as much a change of its mode as relabelling one.
MODE_STRENGTH: dict[Mode, int] = {"off": 0, "audit": 1, "mutate": 2, "enforce": 2}


def _label_of(obj: str) -> str:
    return (
        f"{obj} != null && has({obj}.metadata.labels) && '{MODE_LABEL}' in {obj}.metadata.labels"
        f" ? {obj}.metadata.labels['{MODE_LABEL}'] : ''"
    )


def mode_label_policy(
    *, default_mode: Mode = "off", name: str = MODE_LABEL_POLICY, default_strength: str = ""
) -> tuple[Manifest, Manifest]:
    """(ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding) that keep the mode label
    in the hands of cluster admins (docs/design.md, "Modes, per namespace").

    Adding, changing or removing `clusterip-guard.io/mode`, and creating a namespace with a
    mode weaker than the cluster default, need the verb `set-mode` on
    `namespaces.clusterip-guard.io` (for that namespace's name), which RBAC grants: cluster
    admins hold every verb, and a ClusterRole can delegate it. A value that is not a mode is
    refused, naming it. The API server evaluates it in-process: no webhook call, no lookup.
    `default_strength`, when given, is written in place of the default mode's strength (the
    chart's generator gives a Helm expression).
    """
    default_strength = default_strength or str(MODE_STRENGTH[default_mode])
    strengths = ", ".join(f"'{mode}': {strength}" for mode, strength in MODE_STRENGTH.items())
    modes = ", ".join(f"'{mode}'" for mode in MODES)
    may_set_mode = (
        f"authorizer.group('{MODE_ADMIN_GROUP}').resource('{MODE_ADMIN_RESOURCE}')"
        f".name(object.metadata.name).check('{MODE_ADMIN_VERB}').allowed()"
    )
    policy: Manifest = {
        **registered_object("ValidatingAdmissionPolicy", name),
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        # The status and finalize subresources change labels too.
                        "resources": ["namespaces", "namespaces/status", "namespaces/finalize"],
                    }
                ]
            },
            "variables": [
                {"name": "mode", "expression": _label_of("object")},
                {"name": "oldMode", "expression": _label_of("oldObject")},
                {
                    "name": "changesMode",
                    "expression": (
                        "request.operation == 'CREATE'"
                        " ? variables.mode != '' && variables.mode in {" + strengths + "}"
                        " && {" + strengths + "}[variables.mode] < "
                        f"{default_strength}"
                        " : variables.mode != variables.oldMode"
                    ),
                },
            ],
            "validations": [
                {
                    "expression": (
                        "variables.mode == variables.oldMode || variables.mode == ''"
                        f" || variables.mode in [{modes}]"
                    ),
                    "messageExpression": (
                        f"'{MODE_LABEL}=' + variables.mode + ' is not a mode: use one of "
                        f"{', '.join(MODES)}'"
                    ),
                    "reason": "Invalid",
                },
                {
                    "expression": f"!variables.changesMode || {may_set_mode}",
                    "messageExpression": (
                        "'setting the label " + MODE_LABEL + " of namespace ' + "
                        "object.metadata.name + ' to ' + (variables.mode == '' ? '(none)' : "
                        "variables.mode) + ' needs the verb "
                        + MODE_ADMIN_VERB
                        + " on "
                        + MODE_ADMIN_RESOURCE
                        + "."
                        + MODE_ADMIN_GROUP
                        + ": ask a cluster admin'"
                    ),
                    "reason": "Forbidden",
                },
            ],
        },
    }
    return with_config_hash(policy), _binding(name, ["Deny"])


# What the service-range policy reads: the cluster's Service ranges, as the API server itself
# allocates ClusterIPs from them (networking.k8s.io/v1 ServiceCIDR; the default one mirrors
# kube-apiserver's --service-cluster-ip-range).
SERVICE_CIDR_PARAM: Final = {"apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR"}

# The new external IPs of a write that fall in one of the ServiceCIDR's ranges. Kept ones (in
# the old object, same spelling) are judged as existing exposure is: allowed.
_ADDED_EXTERNAL_IPS = (
    "object.spec.externalIPs.filter(a, oldObject == null || !has(oldObject.spec.externalIPs)"
    " || !(a in oldObject.spec.externalIPs))"
)
_IN_SERVICE_RANGE = (
    "variables.added.filter(a, isIP(a)"
    " && params.spec.cidrs.exists(c, isCIDR(c) && cidr(c).containsIP(a)))"
)


def service_writes(resources: Collection[str] = ("services",)) -> dict[str, Any]:
    """matchConstraints of an admission policy on Service CREATEs and UPDATEs."""
    return {
        "resourceRules": [
            {
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "operations": ["CREATE", "UPDATE"],
                "resources": list(resources),
            }
        ]
    }


# Bindings of an in-process policy, one per effect: (name part, its actions, the failure role
# of the entries it stands for). A mutating policy has one effect, named "convert".
_VALIDATING_EFFECTS: Final = (("deny", ["Deny"], "guard"), ("warn", ["Warn", "Audit"], "reporter"))
_CONVERT: Final = "convert"


def policy_bindings(
    policy_name: str,
    entries: Collection[AdmissionEntry],
    *,
    never_judged: Collection[str] | str,
    configuration: Configuration = "validating",
    param_ref: dict[str, Any] | None = None,
) -> list[Manifest]:
    """The bindings of an in-process policy that judges as the table's entries of this
    configuration do: the namespaces they select, Deny where they guard (enforce, the mutate
    backstop, a value that is not a mode), Warn and Audit where they report (audit); for a
    mutating policy, the namespaces its entries convert in. Entries of one effect share a
    binding wherever a selector can say their union (`union_selectors`): the API server
    evaluates every binding's selector on every write the policy may match. So an in-process
    policy keeps the modes exactly as the webhook's entries do. (`never_judged` may be a Helm
    expression.)"""
    kind = (
        "ValidatingAdmissionPolicyBinding"
        if configuration == "validating"
        else "MutatingAdmissionPolicyBinding"
    )
    effects: tuple[tuple[str, list[str] | None, str | None], ...] = (
        _VALIDATING_EFFECTS if configuration == "validating" else ((_CONVERT, None, None),)
    )
    bindings: list[Manifest] = []
    for effect, actions, role in effects:
        members = [
            entry
            for entry in entries
            if entry.configuration == configuration and role in (None, entry.failure_role)
        ]
        for part, expressions in union_selectors(members) if members else []:
            if isinstance(never_judged, str):  # a Helm expression
                selector = namespace_selector(expressions, ["placeholder"])
                selector["matchExpressions"][-1]["values"] = never_judged
            else:
                selector = namespace_selector(expressions, never_judged)
            spec: dict[str, Any] = {"policyName": policy_name}
            if actions is not None:
                spec["validationActions"] = actions
            spec["matchResources"] = {"namespaceSelector": selector}
            if param_ref is not None:
                spec["paramRef"] = param_ref
            name = f"{policy_name}-{effect}" + (f"-{part}" if part else "")
            bindings.append(with_config_hash({**registered_object(kind, name), "spec": spec}))
    return bindings


def policy_binding_names(policy_name: str, configuration: Configuration) -> list[str]:
    """Every binding name `policy_bindings` gives this policy, whatever the default mode, and
    the names of the one binding per entry that builds before 0.2.0 registered (so that a
    bootstrap or an uninstall removes those too)."""
    names: dict[str, None] = {
        f"{policy_name}-{entry.name.removesuffix('.' + DOMAIN)}": None
        for entry in ADMISSION_ENTRIES
        if entry.configuration == configuration and entry.subject == "services"
    }
    for default_mode in MODES:
        for binding in policy_bindings(
            policy_name,
            registered_entries(default_mode),
            never_judged=(),
            configuration=configuration,
        ):
            names[binding["metadata"]["name"]] = None
    return list(names)


def service_range_policy(*, name: str) -> Manifest:
    """The ValidatingAdmissionPolicy that refuses an external IP inside the cluster's own
    Service range (docs/design.md, "What counts as exposed"), whatever allowedExternalIPCIDRs
    says: such an address takes over the traffic of a ClusterIP (CVE-2020-8554).

    The API server evaluates it in-process against each ServiceCIDR object (paramRef selects
    them all), so the ranges are always the cluster's current ones and the webhook needs no
    cluster access; `entry_bindings` gives it the modes. No ServiceCIDR at all (an API server
    older than 1.33, or one without the API) evaluates nothing: the bootstrap says so.
    """
    policy: Manifest = {
        **registered_object("ValidatingAdmissionPolicy", name),
        "spec": {
            "failurePolicy": "Fail",
            "paramKind": dict(SERVICE_CIDR_PARAM),
            # services/status cannot change the spec.
            "matchConstraints": service_writes(),
            "matchConditions": [
                {
                    "name": "has-external-ips",
                    "expression": (
                        "has(object.spec.externalIPs) && size(object.spec.externalIPs) > 0"
                    ),
                }
            ],
            "variables": [
                {"name": "added", "expression": _ADDED_EXTERNAL_IPS},
                {"name": "inRange", "expression": _IN_SERVICE_RANGE},
            ],
            "validations": [
                {
                    "expression": "size(variables.inRange) == 0",
                    "messageExpression": (
                        "'Service ' + object.metadata.namespace + '/' + object.metadata.name"
                        " + ': spec.externalIPs: ' + variables.inRange.join(', ')"
                        " + (size(variables.inRange) == 1 ? ' is' : ' are')"
                        " + ' inside the Service range ' + params.spec.cidrs.join(', ')"
                        " + ' (ServiceCIDR ' + params.metadata.name + '): an external IP there"
                        " takes over the traffic of a ClusterIP (CVE-2020-8554), whatever"
                        " allowedExternalIPCIDRs says; remove it from spec.externalIPs'"
                    ),
                    "reason": "Forbidden",
                }
            ],
        },
    }
    return with_config_hash(policy)


def companion_policies(
    *,
    name: str,
    default_mode: Mode,
    never_judged: Collection[str],
    service_cidrs: bool = True,
) -> list[Manifest]:
    """The in-process policies either engine registers beside its own objects, named after
    `name`: the mode label's keeper, the warning naming a label value that is not a mode, and
    (where the API server serves ServiceCIDR) the Service-range refusal, bound as the entries
    judge."""
    companions = [
        *mode_label_policy(default_mode=default_mode, name=f"{name}-mode-label"),
        *unknown_mode_warning(name=f"{name}-unknown-mode"),
    ]
    if service_cidrs:
        service_range = f"{name}-service-range"
        companions.append(service_range_policy(name=service_range))
        companions += policy_bindings(
            service_range,
            registered_entries(default_mode),
            never_judged=never_judged,
            param_ref={"selector": {}, "parameterNotFoundAction": "Allow"},
        )
    return companions


def unknown_mode_warning(*, name: str) -> tuple[Manifest, Manifest]:
    """(ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding) that warn, on every write
    of a Service in a namespace whose mode label is not a mode, which value that is.

    Such a label predates the installation (the mode-label policy refuses new ones). The
    webhook judges those namespaces as enforce but never sees a namespace's labels; the API
    server does, in-process (`namespaceObject`), so this names the value beside the denial.
    """
    modes = ", ".join(f"'{mode}'" for mode in MODES)
    policy: Manifest = {
        **registered_object("ValidatingAdmissionPolicy", name),
        "spec": {
            # A warning must never block a write.
            "failurePolicy": "Ignore",
            "matchConstraints": service_writes(),
            "variables": [{"name": "mode", "expression": _label_of("namespaceObject")}],
            "validations": [
                {
                    "expression": f"variables.mode == '' || variables.mode in [{modes}]",
                    "messageExpression": (
                        "'namespace ' + namespaceObject.metadata.name + ' has "
                        + MODE_LABEL
                        + "=' + variables.mode + ', which is not a mode (one of "
                        + ", ".join(MODES)
                        + "): clusterip-guard judges its Services as enforce; a cluster admin "
                        "can fix the label'"
                    ),
                    "reason": "Invalid",
                }
            ],
        },
    }
    # Only namespaces labelled with a value that is not a mode: a binding without a selector
    # would have the API server evaluate the policy on every Service write of the cluster.
    not_a_mode = next(entry for entry in ADMISSION_ENTRIES if entry.label_not_a_mode)
    return with_config_hash(policy), _binding(
        name, ["Warn"], namespace_selector(not_a_mode.selector(), never_judged=())
    )


def registered_object(kind: str, name: str) -> Manifest:
    """apiVersion, kind and metadata of an admission object the bootstrap registers."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind,
        "metadata": {
            "name": name,
            "labels": {NAME_LABEL: PROJECT, MANAGED_BY_LABEL: MANAGED_BY_BOOTSTRAP},
        },
    }


def _binding(
    policy_name: str, actions: list[str], namespaces: dict[str, Any] | None = None
) -> Manifest:
    spec: dict[str, Any] = {"policyName": policy_name, "validationActions": actions}
    if namespaces is not None:
        spec["matchResources"] = {"namespaceSelector": namespaces}
    binding: Manifest = {
        **registered_object("ValidatingAdmissionPolicyBinding", policy_name),
        "spec": spec,
    }
    return with_config_hash(binding)
