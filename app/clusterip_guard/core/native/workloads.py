"""The native engine for Pods and workloads: host ports and the host network (core/workloads.py)
compiled into a ValidatingAdmissionPolicy and a MutatingAdmissionPolicy that decide as
`core.decision` decides for a `WorkloadChange`: the same pieces (a host port not allowed; the
host network, covering the ports its Pod declares), UPDATEs judged on what they add, the
workload controllers' writes judged at their workload, exemptions by kind, the same denial
message. Bound as the table's workload entries judge (core/admission.py). Pure: plain dicts.
"""

from __future__ import annotations

import datetime
from typing import Final

from clusterip_guard.core import sentences as say
from clusterip_guard.core.addresses import cel_ip, let
from clusterip_guard.core.admission_policies import registered_object
from clusterip_guard.core.cel_literals import text, texts
from clusterip_guard.core.exposure import BOUND_TO
from clusterip_guard.core.match_conditions import host_exposed_match_condition
from clusterip_guard.core.names import MODE_LABEL
from clusterip_guard.core.native.cel import (
    exemption_terms,
    mode_of_namespace,
    name_variable,
    said_pieces,
    sentence,
)
from clusterip_guard.core.policy import PolicySettings
from clusterip_guard.core.registration import with_config_hash, workload_rules
from clusterip_guard.core.types import MODES, Manifest, Mode
from clusterip_guard.core.workloads import ALL_ADDRESSES, CONTROLLERS, WORKLOAD_KINDS

HOST_EXPOSURE_SUFFIX: Final = "-host-exposure"
HOST_CONVERSION_SUFFIX: Final = "-host-conversion"
# The container lists that may declare ports (ephemeral containers may not).
_LISTS: Final = ("containers", "initContainers")


def _by_resource(o: str, *, join: str) -> str:
    """CEL: for `o`, the path of its Pod spec, chosen by the request's resource (a pointer
    with join '/', a field path with '.'); `o` itself as the first step when join is '.'."""
    choices = []
    for kind in WORKLOAD_KINDS:
        steps = [o, *kind.pod_spec_path] if o else list(kind.pod_spec_path)
        choices.append((kind.resource, join.join(steps)))
    *rest, (_, last) = choices
    expression = last if o else text(("/" if join == "/" else "") + last)
    for resource, path in reversed(rest):
        value = path if o else text(("/" if join == "/" else "") + path)
        expression = f"request.resource.resource == {text(resource)} ? {value} : ({expression})"
    return f"({expression})"  # whole: a ternary would take in what follows it


_PROTOCOL: Final = "(has(p.protocol) ? string(p.protocol) : 'TCP')"


def _number(host_network: str) -> str:
    """CEL: the node port a port `p` takes: its hostPort, or on the host network its
    containerPort when no hostPort is written."""
    return (
        f"(has(p.hostPort) && p.hostPort > 0 ? p.hostPort : ({host_network} ? p.containerPort : 0))"
    )


def _port_key(host_network: str) -> str:
    """CEL: what the node opens for port `p` on all its addresses (core/workloads.py's key)."""
    return f"{_PROTOCOL} + '/' + string({_number(host_network)})"


def _key(host_network: str) -> str:
    """CEL: the key of port `p`'s piece: its port key, and the one address it binds, read as
    core/workloads._bound_address reads it (none on the host network)."""
    bound = (
        f"(has(p.hostIP) && !(p.hostIP in {texts(ALL_ADDRESSES)}) ? "
        + let(
            "h",
            cel_ip("p.hostIP"),
            f"h == '' || h in {texts(ALL_ADDRESSES)} ? '' : {text(BOUND_TO)} + h",
        )
        + " : '')"
    )
    return f"{_port_key(host_network)} + ({host_network} ? '' : {bound})"


def _allowed(policy: PolicySettings) -> str:
    if not policy.allowed_host_ports:
        return "false"
    return " || ".join(
        f"(p.hostPort >= {low} && p.hostPort <= {high})" for low, high in policy.allowed_host_ports
    )


def _is_piece(policy: PolicySettings) -> str:
    """CEL: port `p` of the new spec is a piece of exposure."""
    return (
        f"(variables.hostNetwork || (has(p.hostPort) && p.hostPort > 0 && !({_allowed(policy)})))"
    )


# A port is new unless the old spec opened it, on its address or on all (Violation.kept_from).
_IS_NEW: Final = (
    "(oldObject == null || !variables.oldKeys.exists(l, "
    f"{_key('variables.hostNetwork')} in l || {_port_key('variables.hostNetwork')} in l))"
)


def _port_judged(policy: PolicySettings) -> str:
    return (
        f"({_is_piece(policy)} && (variables.judgeAll || {_IS_NEW}) && "
        "!variables.hostNetworkJudged)"
    )


def _old_keys() -> str:
    """CEL: the keys of the old object's host-port pieces, a list per container."""
    old_network = "variables.oldHostNetwork"
    per_list = [
        f"(has(variables.oldSpec.{field}) ? variables.oldSpec.{field}.map(c, has(c.ports) ? "
        f"c.ports.filter(p, {old_network} || (has(p.hostPort) && p.hostPort > 0))"
        f".map(p, {_key(old_network)}) : []) : [])"
        for field in _LISTS
    ]
    return "oldObject == null ? [] : " + " + ".join(per_list)


def _controlled() -> str:
    """CEL: written by a workload controller from its workload (core/workloads.py,
    made_by_its_controller): its identity, and a controlling owner of the kind it makes."""
    table = ", ".join(
        f"{text(user)}: {texts(kinds)}" for user, kinds in sorted(CONTROLLERS.items())
    )
    return (
        f"request.userInfo.username in {{{table}}} && has(object.metadata.ownerReferences) && "
        "object.metadata.ownerReferences.exists(r, has(r.controller) && r.controller && "
        f"r.kind in {{{table}}}[request.userInfo.username])"
    )


def judging_variables(
    policy: PolicySettings, *, default_mode: Mode, today: datetime.date | None
) -> list[dict[str, str]]:
    """The variables that decide, shared by both policies: `refused` says the write is
    refused (or converted), `hostNetworkJudged` whether the host network is among its pieces."""
    keeps_existing = "true" if policy.allow_existing_violations else "false"
    added_any = " || ".join(
        [
            "variables.newHostNetwork",
            *(
                f"(has(variables.spec.{field}) && variables.spec.{field}.exists(c, "
                f"has(c.ports) && c.ports.exists(p, {_is_piece(policy)} && {_IS_NEW})))"
                for field in _LISTS
            ),
        ]
    )
    any_judged = " || ".join(
        f"(has(variables.spec.{field}) && variables.spec.{field}.exists(c, has(c.ports) && "
        f"c.ports.exists(p, {_port_judged(policy)})))"
        for field in _LISTS
    )
    return [
        name_variable(),
        {"name": "mode", "expression": mode_of_namespace(default_mode)},
        {"name": "spec", "expression": _by_resource("object", join=".")},
        {
            "name": "hostNetwork",
            "expression": "has(variables.spec.hostNetwork) && variables.spec.hostNetwork",
        },
        {
            "name": "oldSpec",
            "expression": f"oldObject == null ? null : ({_by_resource('oldObject', join='.')})",
        },
        {
            "name": "oldHostNetwork",
            "expression": (
                "oldObject != null && has(variables.oldSpec.hostNetwork) && "
                "variables.oldSpec.hostNetwork"
            ),
        },
        {"name": "oldKeys", "expression": _old_keys()},
        {
            "name": "newHostNetwork",
            "expression": (
                "variables.hostNetwork && (oldObject == null || !variables.oldHostNetwork)"
            ),
        },
        {
            "name": "allowed",
            "expression": (
                f"({exemption_terms(policy, today, workloads=True)}) || ({_controlled()})"
            ),
        },
        {"name": "addedAny", "expression": added_any},
        {
            "name": "judgeAll",
            "expression": f"oldObject == null || (!variables.addedAny && !{keeps_existing})",
        },
        {
            "name": "hostNetworkJudged",
            "expression": (
                "variables.hostNetwork && (variables.judgeAll || variables.newHostNetwork)"
            ),
        },
        {
            "name": "refused",
            "expression": f"!variables.allowed && (variables.hostNetworkJudged || {any_judged})",
        },
    ]


def _lines(policy: PolicySettings) -> str:
    """CEL: the judged pieces, each as the webhook says it (field: summary; fix), as a list."""
    prefix = _by_resource("", join=".")
    bound = (
        f"(has(p.hostIP) && !(p.hostIP in {texts(ALL_ADDRESSES)}) ? "
        f"{sentence(say.ON_ITS_ADDRESS, host_ip='p.hostIP')} : '')"
    )
    port = f"{_PROTOCOL} + '/' + string(p.containerPort)"
    on_network = sentence(say.HOST_NETWORK_PORT, container="c.name", port=port)
    opens = sentence(say.HOST_PORT, container="c.name", port=port, host_port="string(p.hostPort)")
    summary = f"(variables.hostNetwork ? {on_network} : {opens} + {bound})"
    network = sentence(
        say.PIECE_LINE,
        field=f"{prefix} + '.hostNetwork'",
        summary=text(say.HOST_NETWORK),
        fix=text(say.REMOVE_HOST_NETWORK),
    )
    ports = [
        f"(has(variables.spec.{field}) ? variables.spec.{field}.transformList(i, c, has(c.ports), "
        f"c.ports.transformList(j, p, {_port_judged(policy)}, "
        + sentence(
            say.PIECE_LINE,
            field=f"{prefix} + '.{field}[' + string(i) + '].ports[' + string(j) + '].hostPort'",
            summary=summary,
            fix=text(say.REMOVE_HOST_PORT),
        )
        + ")).flatten() : [])"
        for field in _LISTS
    ]
    return f"((variables.hostNetworkJudged ? [{network}] : []) + {' + '.join(ports)})"


def _denial(policy: PolicySettings) -> str:
    namespace = "namespaceObject.metadata.name"
    subject = sentence(
        say.WORKLOAD_SUBJECT, kind="request.kind.kind", namespace=namespace, name="variables.name"
    )
    by_label = text(say.BY_LABEL.format(label=MODE_LABEL))
    not_a_mode = sentence(
        say.NOT_A_MODE, label=text(MODE_LABEL), namespace=namespace, modes=text(", ".join(MODES))
    )
    in_mutate = sentence(say.HOST_NETWORK_IN_MUTATE, namespace=namespace, label=text(MODE_LABEL))
    keeps = sentence(say.KEEPS_WORKLOADS_INTERNAL, namespace=namespace)
    why = (
        f"(!(variables.mode in {texts(MODES)}) ? {not_a_mode} : "
        f"(variables.mode == 'mutate' && variables.hostNetworkJudged ? {in_mutate} : {keeps})"
        f" + {by_label})"
    )
    pieces = said_pieces(_lines(policy), "v")
    return sentence(say.DENIAL, subject=subject, why=why, pieces=pieces)


def host_exposure_policy(
    policy: PolicySettings, *, name: str, default_mode: Mode, today: datetime.date | None = None
) -> Manifest:
    """The ValidatingAdmissionPolicy that judges Pods and workloads as the validating workload
    entries do (bound with Deny and Warn as they are)."""
    body: Manifest = {
        **registered_object("ValidatingAdmissionPolicy", name),
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": workload_rules()},
            "matchConditions": [host_exposed_match_condition()],
            "variables": judging_variables(policy, default_mode=default_mode, today=today),
            "validations": [
                {
                    "expression": "!variables.refused",
                    "messageExpression": f"variables.refused ? {_denial(policy)} : ''",
                    "reason": "Forbidden",
                }
            ],
        },
    }
    return with_config_hash(body)


def host_conversion_policy(
    policy: PolicySettings, *, name: str, default_mode: Mode, today: datetime.date | None = None
) -> Manifest:
    """The MutatingAdmissionPolicy that removes judged host ports (and their hostIP) as the
    mutating workload entries do; a Pod spec on the host network is left to the validating
    policy, which denies it."""
    pointer = _by_resource("", join="/")
    removals = [
        f"(has(variables.spec.{field}) ? variables.spec.{field}.transformList(i, c, "
        f"has(c.ports), c.ports.transformList(j, p, {_port_judged(policy)}, "
        f"[JSONPatch{{op: 'remove', path: {pointer} + '/{field}/' + string(i) + '/ports/' + "
        "string(j) + '/hostPort'}] + (has(p.hostIP) ? [JSONPatch{op: 'remove', path: "
        f"{pointer} + '/{field}/' + string(i) + '/ports/' + string(j) + '/hostIP'}}] : []))"
        ").flatten().flatten() : [])"
        for field in _LISTS
    ]
    body: Manifest = {
        **registered_object("MutatingAdmissionPolicy", name),
        "spec": {
            "failurePolicy": "Fail",
            "reinvocationPolicy": "IfNeeded",
            "matchConstraints": {"resourceRules": workload_rules()},
            "matchConditions": [host_exposed_match_condition()],
            "variables": judging_variables(policy, default_mode=default_mode, today=today),
            "mutations": [
                {
                    "patchType": "JSONPatch",
                    "jsonPatch": {
                        "expression": (
                            "!variables.refused || variables.hostNetworkJudged ? [] : "
                            + " + ".join(removals)
                        )
                    },
                }
            ],
        },
    }
    return with_config_hash(body)
