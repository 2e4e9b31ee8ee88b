"""The native engine for the Gateway API: Gateways' classes and routes' parents
(core/gateways.py) compiled into a ValidatingAdmissionPolicy that decides as `core.decision`
decides for a `GatewayApiChange`: the same pieces, UPDATEs judged on what they add, exemptions
by kind, the same denial message (in mutate too: nothing converts a Gateway or a route), and a
warning policy beside it, as for Ingresses (native/ingresses.py). One policy judges every kind
(request.kind.kind says which), bound as the table's validating entries judge. The CEL reads
every field defensively (`has()`): the object's schema is a CRD's, of whichever version the
cluster installed. Pure: plain dicts.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Final

from clusterip_guard.core import sentences as say
from clusterip_guard.core.admission_policies import registered_object
from clusterip_guard.core.cel_literals import text, texts
from clusterip_guard.core.gateways import (
    GATEWAY_API_KIND_NAMES,
    GATEWAY_CLASS_FIELD,
    GATEWAY_CLASS_KEY_PREFIX,
    GATEWAY_GROUP,
    GATEWAY_KIND,
    MESH_GROUP,
    PARENT_KEY_PREFIX,
    PARENT_REFS_FIELD,
    allowed_gateways_fix,
    gateway_classes_fix,
)
from clusterip_guard.core.match_conditions import (
    gateway_class_exposed,
    parent_allowed,
    parent_group,
    parent_kind,
    parent_name,
    parent_namespace,
    parent_readable,
    route_exposed,
)
from clusterip_guard.core.names import (
    GATEWAY_CLASS_MATCH_CONDITION,
    MODE_LABEL,
    ROUTE_PARENT_MATCH_CONDITION,
)
from clusterip_guard.core.native.cel import (
    exemption_described,
    glob_regex,
    keyed_judging_variables,
    keyed_warning_spec,
    said_pieces,
    sentence,
)
from clusterip_guard.core.policy import PolicySettings
from clusterip_guard.core.registration import gateway_api_rules, with_config_hash
from clusterip_guard.core.types import MODES, Manifest, Mode

GATEWAY_EXPOSURE_SUFFIX: Final = "-gateway-exposure"
GATEWAY_WARNINGS_SUFFIX: Final = "-gateway-exposure-warnings"
IS_GATEWAY: Final = f"request.kind.kind == {text(GATEWAY_KIND)}"


def allowed_gateway_class(policy: PolicySettings, c: str) -> str:
    """CEL: the class `c` is one the policy allows (a glob as fnmatchcase reads it)."""
    terms = [f"{c}.matches({text(glob_regex(glob))})" for glob in policy.allowed_gateway_classes]
    return f"{c} != '' && ({' || '.join(terms) or 'false'})"


def allowed_gateway(policy: PolicySettings, namespace: str, name: str) -> str:
    """CEL: the Gateway `namespace`/`name` is one the policy allows (each part a glob)."""
    terms = [
        f"({namespace}.matches({text(glob_regex(ns))}) && {name}.matches({text(glob_regex(n))}))"
        for ns, n in policy.allowed_gateways
    ]
    return f"{namespace} != '' && {name} != '' && ({' || '.join(terms) or 'false'})"


def rules() -> list[dict[str, object]]:
    """What the policies match: Gateways and every route, with their status."""
    return [*gateway_api_rules("gateways"), *gateway_api_rules("routes")]


def _gateway_pieces(o: str, policy: PolicySettings) -> str:
    """CEL: the Gateway `o`'s piece, as core/gateways.gateway_exposure_of counts it."""
    named = f"has({o}.spec) && has({o}.spec.gatewayClassName)"
    summary = f"c == '' ? {text(say.UNREADABLE_GATEWAY_CLASS)} : " + sentence(
        say.GATEWAY_CLASS, gateway_class="c"
    )
    return (
        f"[{named} ? string({o}.spec.gatewayClassName) : '']"
        f".filter(c, !({allowed_gateway_class(policy, 'c')}))"
        f".map(c, {{'key': {text(GATEWAY_CLASS_KEY_PREFIX)} + c, "
        f"'field': {text(GATEWAY_CLASS_FIELD)}, 'summary': string({summary})}})"
    )


def _route_pieces(o: str, policy: PolicySettings) -> str:
    """CEL: a piece for each parent of the route `o` the policy does not allow, as
    core/gateways.route_exposure_of counts them."""
    group, kind = parent_group("p"), parent_kind("p")
    namespace, name = parent_namespace("p"), parent_name("p")
    shown_kind = (
        f"({group} == {text(GATEWAY_GROUP)} || {group} == {text(MESH_GROUP)} ? {kind} : "
        f"{kind} + '.' + {group})"
    )
    described = sentence(say.PARENT_REF, kind=shown_kind, namespace=namespace, name=name)
    summary = (
        f"{parent_readable('p')} ? {sentence(say.ROUTE_PARENT, parent=described)} : "
        f"{sentence(say.UNREADABLE_ROUTE_PARENT, parent=described)}"
    )
    allowed = parent_allowed("p", lambda ns, n: allowed_gateway(policy, ns, n))
    return (
        f"has({o}.spec) && has({o}.spec.parentRefs) ? {o}.spec.parentRefs.transformList(i, p, "
        f"!{allowed}, "
        f"{{'key': {text(PARENT_KEY_PREFIX)} + {group} + '/' + {kind} + '/' + {namespace} + '/' "
        f"+ {name}, 'field': {text(PARENT_REFS_FIELD + '[')} + string(i) + ']', "
        f"'summary': string({summary})}}) : []"
    )


def _pieces(o: str, policy: PolicySettings) -> str:
    return f"({IS_GATEWAY} ? {_gateway_pieces(o, policy)} : {_route_pieces(o, policy)})"


def judging_variables(
    policy: PolicySettings, *, default_mode: Mode, today: datetime.date | None
) -> list[dict[str, str]]:
    return keyed_judging_variables(
        lambda o: _pieces(o, policy), policy, default_mode=default_mode, today=today
    )


def _subject() -> str:
    return sentence(
        say.GATEWAY_API_SUBJECT,
        kind="request.kind.kind",
        namespace="namespaceObject.metadata.name",
        name="variables.name",
    )


def _denial(policy: PolicySettings) -> str:
    namespace = "namespaceObject.metadata.name"
    label = text(say.BY_LABEL.format(label=MODE_LABEL))
    not_a_mode = sentence(
        say.NOT_A_MODE,
        label=text(MODE_LABEL),
        namespace=namespace,
        modes=text(", ".join(MODES)),
    )
    in_mutate = (
        f"({IS_GATEWAY} ? "
        f"{sentence(say.GATEWAY_IN_MUTATE, namespace=namespace, label=text(MODE_LABEL))} : "
        f"{sentence(say.ROUTE_IN_MUTATE, namespace=namespace, label=text(MODE_LABEL))})"
    )
    keeps = sentence(say.KEEPS_WORKLOADS_INTERNAL, namespace=namespace)
    # A status write in a mutate namespace is judged by the backstop, as enforce judges it.
    through_status = "has(request.subResource) && request.subResource != ''"
    why = (
        f"(!(variables.mode in {texts(MODES)}) ? {not_a_mode} : "
        f"(variables.mode == 'mutate' && !({through_status}) ? {in_mutate} : {keeps}) + {label})"
    )
    fix = (
        f"({IS_GATEWAY} ? {text(gateway_classes_fix(policy))} : "
        f"{text(allowed_gateways_fix(policy))})"
    )
    line = sentence(say.PIECE_LINE, field="v['field']", summary="v['summary']", fix=fix)
    return sentence(
        say.DENIAL, subject=_subject(), why=why, pieces=said_pieces("variables.judged", line)
    )


def gateway_api_match_condition(policy: PolicySettings) -> list[dict[str, str]]:
    """As the webhook's (core/registration.py), with the policy's globs read as the webhook
    reads them, one per kind: a Gateway of an allowed class, a route whose every parent is an
    allowed Gateway or a Service (and that was one), costs no evaluation."""

    def gateway(o: str) -> str:
        return gateway_class_exposed(o, lambda c: allowed_gateway_class(policy, c))

    def route(o: str) -> str:
        return route_exposed(o, lambda ns, n: allowed_gateway(policy, ns, n))

    return [
        {
            "name": GATEWAY_CLASS_MATCH_CONDITION,
            "expression": (
                f"!({IS_GATEWAY}) || {gateway('object')} || "
                f"(oldObject != null && {gateway('oldObject')})"
            ),
        },
        {
            "name": ROUTE_PARENT_MATCH_CONDITION,
            "expression": (
                f"{IS_GATEWAY} || {route('object')} || (oldObject != null && {route('oldObject')})"
            ),
        },
    ]


def gateway_exposure_policy(
    policy: PolicySettings, *, name: str, default_mode: Mode, today: datetime.date | None = None
) -> Manifest:
    """The ValidatingAdmissionPolicy that judges Gateways and routes as the validating
    gateways and routes entries do (bound with Deny and Warn as they are)."""
    body: Manifest = {
        **registered_object("ValidatingAdmissionPolicy", name),
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": rules()},
            "matchConditions": gateway_api_match_condition(policy),
            "variables": judging_variables(policy, default_mode=default_mode, today=today),
            "validations": [
                {
                    "expression": "size(variables.judged) == 0",
                    "messageExpression": (f"size(variables.judged) > 0 ? {_denial(policy)} : ''"),
                    "reason": "Forbidden",
                }
            ],
        },
    }
    return with_config_hash(body)


def gateway_warning_policy(
    policy: PolicySettings, *, name: str, default_mode: Mode, today: datetime.date | None = None
) -> Manifest:
    """The ValidatingAdmissionPolicy that warns where the webhook allows a Gateway or a route
    with a warning in every mode: an exempted one (naming the exemption), and an UPDATE that
    keeps its pieces and adds none (native/ingresses.py's twin)."""
    of_gateway_api = dataclasses.replace(
        policy,
        exemptions=tuple(e for e in policy.exemptions if e.kind in GATEWAY_API_KIND_NAMES),
    )
    exemption = exemption_described(of_gateway_api, today, workloads=True)
    # Without such an exemption in force only an UPDATE can keep a piece: a CREATE costs
    # nothing.
    return with_config_hash(
        {
            **registered_object("ValidatingAdmissionPolicy", name),
            "spec": keyed_warning_spec(
                policy,
                rules=rules(),
                match_conditions=gateway_api_match_condition(policy),
                deciding=judging_variables(policy, default_mode=default_mode, today=today),
                exemption=exemption,
                subject=_subject(),
            ),
        }
    )
