"""The native engine for Ingresses: their classes (core/ingresses.py) compiled into a
ValidatingAdmissionPolicy that decides as `core.decision` decides for an `IngressChange`: the
same pieces (each class named that the policy does not allow, or none named), UPDATEs judged on
what they add, exemptions by kind, the same denial message (in mutate too: nothing converts an
Ingress). Bound as the table's validating entries judge (core/admission.py). Pure: plain dicts.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Final

from clusterip_guard.core import sentences as say
from clusterip_guard.core.admission_policies import registered_object
from clusterip_guard.core.cel_literals import text, texts
from clusterip_guard.core.ingresses import (
    ANNOTATION_FIELD,
    CLASS_FIELD,
    INGRESS_CLASS_KEY_PREFIX,
    INGRESS_KIND,
    NO_INGRESS_CLASS,
    allowed_classes_fix,
)
from clusterip_guard.core.match_conditions import ingress_exposed
from clusterip_guard.core.names import (
    INGRESS_CLASS_ANNOTATION,
    INGRESS_CLASS_MATCH_CONDITION,
    MODE_LABEL,
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
from clusterip_guard.core.registration import ingress_rules, with_config_hash
from clusterip_guard.core.types import MODES, Manifest, Mode

INGRESS_EXPOSURE_SUFFIX: Final = "-ingress-exposure"
INGRESS_WARNINGS_SUFFIX: Final = "-ingress-exposure-warnings"


def allowed_class(policy: PolicySettings, c: str) -> str:
    """CEL: the class `c` is one the policy allows (a glob as fnmatchcase reads it)."""
    terms = [f"{c}.matches({text(glob_regex(glob))})" for glob in policy.allowed_ingress_classes]
    return f"{c} != '' && ({' || '.join(terms) or 'false'})"


def _named(o: str) -> str:
    """CEL: (field, class) of each class `o` names, as core/ingresses.named_classes lists them."""
    annotation = text(INGRESS_CLASS_ANNOTATION)
    has_field = f"has({o}.spec) && has({o}.spec.ingressClassName)"
    annotated = f"{o}.metadata.annotations[{annotation}]"
    return (
        f"({has_field} ? [{{'field': {text(CLASS_FIELD)}, "
        f"'class': string({o}.spec.ingressClassName)}}]"
        " : []) + "
        f"(has({o}.metadata.annotations) && {annotation} in {o}.metadata.annotations && "
        f"!({has_field} && {o}.spec.ingressClassName == {annotated}) ? "
        f"[{{'field': {text(ANNOTATION_FIELD)}, 'class': string({annotated})}}] : [])"
    )


def _pieces(o: str, policy: PolicySettings) -> str:
    """CEL: the pieces of `o`, each {key, field, summary}, as core/ingresses.py counts them."""
    summary = f"n['class'] == '' ? {text(say.UNREADABLE_INGRESS_CLASS)} : " + sentence(
        say.INGRESS_CLASS, ingress_class="n['class']"
    )
    none = (
        f"{{'key': {text(NO_INGRESS_CLASS)}, 'field': {text(CLASS_FIELD)}, "
        f"'summary': {text(say.INGRESS_WITHOUT_CLASS)}}}"
    )
    allowed = allowed_class(policy, "n['class']")
    return (
        f"size({_named(o)}) == 0 ? [{none}] : ({_named(o)}).filter(n, "
        f"!({allowed})).map(n, "
        f"{{'key': {text(INGRESS_CLASS_KEY_PREFIX)} + string(n['class']), "
        f"'field': string(n['field']), 'summary': string({summary})}})"
    )


def judging_variables(
    policy: PolicySettings, *, default_mode: Mode, today: datetime.date | None
) -> list[dict[str, str]]:
    return keyed_judging_variables(
        lambda o: _pieces(o, policy), policy, default_mode=default_mode, today=today
    )


def _denial(policy: PolicySettings) -> str:
    namespace = "namespaceObject.metadata.name"
    subject = sentence(say.INGRESS_SUBJECT, namespace=namespace, name="variables.name")
    label = text(say.BY_LABEL.format(label=MODE_LABEL))
    not_a_mode = sentence(
        say.NOT_A_MODE,
        label=text(MODE_LABEL),
        namespace=namespace,
        modes=text(", ".join(MODES)),
    )
    in_mutate = sentence(say.INGRESS_IN_MUTATE, namespace=namespace, label=text(MODE_LABEL))
    keeps = sentence(say.KEEPS_WORKLOADS_INTERNAL, namespace=namespace)
    # A write through ingresses/status in a mutate namespace is judged by the backstop, as
    # enforce judges it (the mutating entries do not take subresources).
    through_status = "has(request.subResource) && request.subResource != ''"
    why = (
        f"(!(variables.mode in {texts(MODES)}) ? {not_a_mode} : "
        f"(variables.mode == 'mutate' && !({through_status}) ? {in_mutate} : {keeps}) + {label})"
    )
    fix = text(allowed_classes_fix(policy))
    line = sentence(say.PIECE_LINE, field="v['field']", summary="v['summary']", fix=fix)
    return sentence(
        say.DENIAL, subject=subject, why=why, pieces=said_pieces("variables.judged", line)
    )


def ingress_match_condition(policy: PolicySettings) -> dict[str, str]:
    """As the webhook's (core/registration.py), with the policy's globs read as the webhook
    reads them: an Ingress of an allowed class, that was one, costs no evaluation."""

    def exposed(o: str) -> str:
        return ingress_exposed(o, lambda c: allowed_class(policy, c))

    return {
        "name": INGRESS_CLASS_MATCH_CONDITION,
        "expression": f"{exposed('object')} || (oldObject != null && {exposed('oldObject')})",
    }


def ingress_exposure_policy(
    policy: PolicySettings, *, name: str, default_mode: Mode, today: datetime.date | None = None
) -> Manifest:
    """The ValidatingAdmissionPolicy that judges Ingresses as the validating ingress entries
    do (bound with Deny and Warn as they are)."""
    body: Manifest = {
        **registered_object("ValidatingAdmissionPolicy", name),
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": ingress_rules("validating")},
            "matchConditions": [ingress_match_condition(policy)],
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


def ingress_warning_policy(
    policy: PolicySettings, *, name: str, default_mode: Mode, today: datetime.date | None = None
) -> Manifest:
    """The ValidatingAdmissionPolicy that warns where the webhook allows an Ingress with a
    warning in every mode: an exempted one (naming the exemption), and an UPDATE that keeps
    its pieces and adds none. Bound with Warn wherever a validating entry judges
    (WARNING_EFFECTS), as the Services' warning policy (native/decision.py) is; audit mode's
    own warning is the exposure policy's."""
    of_ingresses = dataclasses.replace(
        policy, exemptions=tuple(e for e in policy.exemptions if e.kind == INGRESS_KIND)
    )
    exemption = exemption_described(of_ingresses, today, workloads=True)
    # Without an Ingress exemption in force only an UPDATE can keep a piece: a CREATE costs
    # nothing.
    subject = sentence(
        say.INGRESS_SUBJECT, namespace="namespaceObject.metadata.name", name="variables.name"
    )
    return with_config_hash(
        {
            **registered_object("ValidatingAdmissionPolicy", name),
            "spec": keyed_warning_spec(
                policy,
                rules=ingress_rules("validating"),
                match_conditions=[ingress_match_condition(policy)],
                deciding=judging_variables(policy, default_mode=default_mode, today=today),
                exemption=exemption,
                subject=subject,
            ),
        }
    )
