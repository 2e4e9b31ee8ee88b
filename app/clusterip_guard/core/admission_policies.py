"""The in-process admission policies clusterip-guard registers beside its webhook
configurations (docs/design.md, "What bootstrap registers"): the mode label's guard, the
check of external IPs against the cluster's Service ranges, the warning on a label that is not
a mode, and the pieces every in-process policy (either engine's) is built from: its object,
its Service-write constraints and its bindings, one per effect.

Pure: plain dicts (admissionregistration.k8s.io/v1) out.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Final

from clusterip_guard.core.addresses import cel_ip, let
from clusterip_guard.core.admission import (
    ADMISSION_ENTRIES,
    AdmissionEntry,
    Configuration,
    namespace_selector,
    registered_entries,
    union_selectors,
)
from clusterip_guard.core.names import (
    DOMAIN,
    MANAGED_BY_BOOTSTRAP,
    MANAGED_BY_LABEL,
    MODE_ADMIN_GROUP,
    MODE_ADMIN_RESOURCE,
    MODE_ADMIN_VERB,
    MODE_LABEL,
    MODE_LABEL_POLICY,
    NAME_LABEL,
    PROJECT,
)
from clusterip_guard.core.registration import with_config_hash
from clusterip_guard.core.types import MODES, Manifest, Mode

# How much a mode keeps Services internal: creating a namespace with a weaker mode than the
# cluster default is as much a change of its mode as relabelling one.
MODE_STRENGTH: dict[Mode, int] = {"off": 0, "audit": 1, "mutate": 2, "enforce": 2}


# The mode label's value when there is none: no label value can be spelt so, so an empty value
# ('') is a value like any other (judged as enforce, changed or removed only with set-mode).
NO_LABEL: Final = "(none)"


def _label_of(obj: str) -> str:
    return (
        f"{obj} != null && has({obj}.metadata.labels) && '{MODE_LABEL}' in {obj}.metadata.labels"
        f" ? {obj}.metadata.labels['{MODE_LABEL}'] : '{NO_LABEL}'"
    )


def mode_label_policy(
    *, default_mode: Mode = "off", name: str = MODE_LABEL_POLICY, default_strength: str = ""
) -> tuple[Manifest, Manifest]:
    """(ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding) that keep the mode label
    in the hands of cluster admins (docs/design.md, "Modes, per namespace").

    Adding, changing or removing `clusterip-guard.io/mode` (an empty value too), creating a
    namespace with any mode label but `enforce` (a label equal to today's default still pins
    the namespace against tomorrow's), and deleting a namespace whose mode is stronger than
    the cluster default (created again, it would fall back to the default) need the verb
    `set-mode` on `namespaces.clusterip-guard.io` (for that namespace's name), which RBAC
    grants: cluster admins hold every verb, and a ClusterRole can delegate it. A value that is
    not a mode is refused, naming it. The API server evaluates it in-process: no webhook call,
    no lookup.
    `default_strength`, when given, is written in place of the default mode's strength (the
    chart's generator gives a Helm expression).
    """
    default_strength = default_strength or str(MODE_STRENGTH[default_mode])
    strengths = ", ".join(f"'{mode}': {strength}" for mode, strength in MODE_STRENGTH.items())
    modes = ", ".join(f"'{mode}'" for mode in MODES)
    may_set_mode = (
        f"authorizer.group('{MODE_ADMIN_GROUP}').resource('{MODE_ADMIN_RESOURCE}')"
        f".name(variables.namespaceName).check('{MODE_ADMIN_VERB}').allowed()"
    )
    # A mode stronger than the default: a value that is not a mode is judged as enforce.
    strength = f"{{{strengths}}}"
    stronger = (
        f"variables.oldMode != '{NO_LABEL}' && (!(variables.oldMode in {strength}) || "
        f"{strength}[variables.oldMode] > {default_strength})"
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
                        "operations": ["CREATE", "UPDATE", "DELETE"],
                        # The status and finalize subresources change labels too.
                        "resources": ["namespaces", "namespaces/status", "namespaces/finalize"],
                    }
                ]
            },
            "variables": [
                {
                    "name": "namespaceName",
                    "expression": (
                        "object != null ? object.metadata.name : oldObject.metadata.name"
                    ),
                },
                {"name": "mode", "expression": _label_of("object")},
                {"name": "oldMode", "expression": _label_of("oldObject")},
                {
                    "name": "changesMode",
                    "expression": (
                        f"request.operation == 'CREATE' ? variables.mode != '{NO_LABEL}'"
                        " && variables.mode != 'enforce'"
                        f" : request.operation == 'DELETE' ? {stronger}"
                        " : variables.mode != variables.oldMode"
                    ),
                },
            ],
            "validations": [
                {
                    "expression": (
                        "variables.mode == variables.oldMode || variables.mode == ''"
                        f" || variables.mode == '{NO_LABEL}' || variables.mode in [{modes}]"
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
                        "(request.operation == 'DELETE' ? 'deleting namespace ' + "
                        "variables.namespaceName + ' (label "
                        + MODE_LABEL
                        + "=' + variables.oldMode"
                        " + ', stronger than the cluster default)' : 'setting the label "
                        + MODE_LABEL
                        + " of namespace ' + variables.namespaceName + ' to ' + "
                        "(variables.mode == '' ? '\\'\\' (empty)' : variables.mode))"
                        " + ' needs the verb "
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

# The new external IPs of a write that fall in one of the ServiceCIDR's ranges, read as kube-proxy
# reads them (core/addresses.py: `010.000.000.050` is 10.0.0.50). Kept ones (in the old object,
# however spelt) are judged as existing exposure is: allowed.
_OLD_EXTERNAL_IPS = (
    "oldObject == null || !has(oldObject.spec.externalIPs) ? [] : "
    f"oldObject.spec.externalIPs.map(b, {cel_ip('b')})"
)
_ADDED_EXTERNAL_IPS = f"object.spec.externalIPs.filter(a, !({cel_ip('a')} in variables.oldIPs))"
_IN_SERVICE_RANGE = (
    "variables.added.filter(a, "
    + let(
        "q",
        cel_ip("a"),
        "q != '' && params.spec.cidrs.exists(c, isCIDR(c) && cidr(c).containsIP(q))",
    )
    + ")"
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
Effects = tuple[tuple[str, list[str] | None, str | None], ...]
VALIDATING_EFFECTS: Final[Effects] = (
    ("deny", ["Deny"], "guard"),
    ("warn", ["Warn", "Audit"], "reporter"),
)
# A policy that only ever warns, wherever a validating entry judges (a role of None: all).
WARNING_EFFECTS: Final[Effects] = (("warnings", ["Warn"], None),)
_CONVERT: Final = "convert"


def policy_bindings(
    policy_name: str,
    entries: Collection[AdmissionEntry],
    *,
    never_judged: Collection[str] | str,
    configuration: Configuration = "validating",
    param_ref: dict[str, Any] | None = None,
    effects: Effects = VALIDATING_EFFECTS,
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
    if configuration == "mutating":
        effects = ((_CONVERT, None, None),)
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


def policy_binding_names(
    policy_name: str, configuration: Configuration, effects: Effects = VALIDATING_EFFECTS
) -> list[str]:
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
            effects=effects,
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
                {"name": "oldIPs", "expression": _OLD_EXTERNAL_IPS},
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
                    "expression": f"variables.mode == '{NO_LABEL}' || variables.mode in [{modes}]",
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
