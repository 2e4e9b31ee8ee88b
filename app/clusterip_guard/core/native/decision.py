"""The native engine's decision for a Service write, as core/decision.py decides it: the
variables that judge (shared with the conversion), the denial message, and the
ValidatingAdmissionPolicy that denies, warns and audits by the namespace's mode. Pure: plain
dicts out."""

from __future__ import annotations

import datetime

from clusterip_guard.core import sentences as say
from clusterip_guard.core.admission_policies import registered_object, service_writes
from clusterip_guard.core.cel_literals import text, texts
from clusterip_guard.core.exposure import NODE_PORT_KEY_PREFIX
from clusterip_guard.core.match_conditions import exposed_match_condition
from clusterip_guard.core.names import MODE_LABEL
from clusterip_guard.core.native.cel import (
    exemption_described,
    exemption_terms,
    kept_exposure_allowed,
    mode_of_namespace,
    name_variable,
    said_pieces,
    sentence,
    warned_writes,
)
from clusterip_guard.core.native.exposure import (
    KEPT,
    KEPT_LISTS,
    exposed,
    pieces_expression,
    renamed_piece,
    reported,
)
from clusterip_guard.core.native.services import annotations_of, type_of
from clusterip_guard.core.policy import PolicySettings
from clusterip_guard.core.registration import with_config_hash
from clusterip_guard.core.types import MODES, Manifest, Mode


def judging_variables(
    policy: PolicySettings, *, default_mode: Mode, today: datetime.date | None = None
) -> list[dict[str, str]]:
    """The variables that decide, shared by the validating and the mutating policy:
    `judged` holds the pieces a write is refused (or converted) for, empty when it passes."""
    keeps_existing = kept_exposure_allowed(policy)
    return [
        name_variable(),
        {"name": "mode", "expression": mode_of_namespace(default_mode)},
        {"name": "objectType", "expression": type_of("object")},
        {
            "name": "oldObjectType",
            "expression": f"oldObject == null ? '' : {type_of('oldObject')}",
        },
        {"name": "pieces", "expression": pieces_expression("object", policy)},
        {
            "name": "oldPieces",
            "expression": f"oldObject == null ? [] : {pieces_expression('oldObject', policy)}",
        },
        # What exposure is read from (the spec and the annotations) unchanged: every piece is
        # kept, said without comparing the pieces (a label-only UPDATE of a Service with
        # hundreds of them stays inside the CEL cost budget).
        {
            "name": "unchanged",
            "expression": (
                "oldObject != null && object.spec == oldObject.spec && "
                f"{annotations_of('object')} == {annotations_of('oldObject')}"
            ),
        },
        *({"name": name, "expression": value} for name, value in KEPT_LISTS.items()),
        {"name": "reported", "expression": reported("variables.pieces")},
        {
            "name": "new",
            "expression": f"variables.pieces.filter(p, !{KEPT}).map(p, {renamed_piece()})",
        },
        {"name": "added", "expression": reported("variables.new")},
        {
            "name": "judged",
            "expression": (
                f"size(variables.reported) == 0 || ({exemption_terms(policy, today)}) ? [] : "
                # Nothing exposed before: every piece is new, and none was renamed.
                "oldObject == null || size(variables.oldPieces) == 0 ? variables.reported : "
                "!variables.unchanged && size(variables.added) > 0 ? variables.added : "
                f"({keeps_existing}) ? [] : variables.reported"
            ),
        },
        {
            # Whether the write is refused (converted): `size(variables.judged) > 0`. When
            # nothing was exposed before (a CREATE, or an UPDATE of a Service with no piece),
            # every piece is new, so it is said without building them (`_exposed`).
            "name": "refused",
            "expression": (
                f"oldObject == null || !{exposed('oldObject', policy)} ? "
                f"{exposed('object', policy)} && !({exemption_terms(policy, today)}) : "
                "size(variables.judged) > 0"
            ),
        },
    ]


def _summary_of(v: str) -> str:
    """A piece's summary: its own, or for a node port, said from its key and node port."""
    opened = (
        f"({v}.nodePort != '' ? {sentence(say.EXPLICIT_NODE_PORT, node_port=f'{v}.nodePort')}"
        f" : {text(say.ANY_NODE_PORT)})"
    )
    port = f"{v}.key.substring({len(NODE_PORT_KEY_PREFIX)})"
    return (
        f"({v}.summary != '' ? {v}.summary : {sentence(say.NODE_PORT, port=port, opened=opened)})"
    )


def _subject() -> str:
    namespace = "namespaceObject.metadata.name"
    subresource = "has(request.subResource) && request.subResource != ''"
    return (
        f"{sentence(say.SERVICE_SUBJECT, namespace=namespace, name='variables.name')} + "
        f"({subresource} ? "
        f"{sentence(say.THROUGH_SUBRESOURCE, subresource='request.subResource')} : '')"
    )


def _denial() -> str:
    namespace = "namespaceObject.metadata.name"
    subject = _subject()
    keeps = sentence(say.KEEPS_SERVICES_INTERNAL, namespace=namespace)
    by_label = text(say.BY_LABEL.format(label=MODE_LABEL))
    not_a_mode = sentence(
        say.NOT_A_MODE, label=text(MODE_LABEL), namespace=namespace, modes=text(", ".join(MODES))
    )
    why = f"(variables.mode in {texts(MODES)} ? {keeps} + {by_label} : {not_a_mode})"
    line = sentence(say.PIECE_LINE, field="v.field", summary=_summary_of("v"), fix="v.fix")
    return sentence(
        say.DENIAL, subject=subject, why=why, pieces=said_pieces("variables.judged", line)
    )


def exposure_policy(
    policy: PolicySettings,
    *,
    name: str,
    default_mode: Mode,
    today: datetime.date | None = None,
) -> Manifest:
    """The ValidatingAdmissionPolicy that judges as the validating entries do: bound with Deny
    for enforce, the mutate backstop and a label that is not a mode, Warn and Audit for audit."""
    body: Manifest = {
        **registered_object("ValidatingAdmissionPolicy", name),
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": service_writes(("services", "services/status")),
            # As for the webhook: a Service that is not exposed, and was not, costs nothing.
            "matchConditions": [exposed_match_condition()],
            "variables": judging_variables(policy, default_mode=default_mode, today=today),
            "validations": [
                {
                    "expression": "!variables.refused",
                    # The API server evaluates the message apart from the validation, with
                    # the variables computed again, and whatever the verdict: built only for a
                    # write that is refused.
                    "messageExpression": f"variables.refused ? {_denial()} : ''",
                    "reason": "Forbidden",
                }
            ],
        },
    }
    return with_config_hash(body)


def warning_policy(
    policy: PolicySettings,
    *,
    name: str,
    default_mode: Mode,
    today: datetime.date | None = None,
) -> Manifest:
    """The ValidatingAdmissionPolicy that warns where the webhook allows exposure with a
    warning in every mode: an exempted Service (naming the exemption), and an UPDATE that keeps
    existing exposure and adds none. Bound with Warn wherever a validating entry judges
    (WARNING_EFFECTS). Audit mode's own warning is the exposure policy's."""
    keeps_existing = kept_exposure_allowed(policy)
    kept = sentence(say.EXISTING_KEPT, field="v.field", summary=_summary_of("v"))
    exemption = exemption_described(policy, today)
    exempted = sentence(say.EXEMPTED, subject=_subject(), exemption="variables.exemption")
    return with_config_hash(
        {
            **registered_object("ValidatingAdmissionPolicy", name),
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": warned_writes(
                        service_writes(("services", "services/status"))["resourceRules"],
                        exemption,
                    )
                },
                "matchConditions": [exposed_match_condition()],
                "variables": [
                    *judging_variables(policy, default_mode=default_mode, today=today),
                    {"name": "exemption", "expression": exemption},
                    {
                        "name": "kept",
                        "expression": (
                            "variables.exemption == '' && oldObject != null && "
                            # Said from the types and addresses where they decide, as `refused`
                            # is: an UPDATE that keeps exposure builds pieces for its message.
                            f"{exposed('object', policy)} && {exposed('oldObject', policy)} && "
                            "(variables.unchanged || size(variables.added) == 0) && "
                            f"({keeps_existing})"
                        ),
                    },
                ],
                "validations": [
                    {
                        "expression": (
                            f"!({exposed('object', policy)} && variables.exemption != '') && "
                            "!variables.kept"
                        ),
                        "messageExpression": (
                            f"variables.kept ? {said_pieces('variables.reported', kept)} : "
                            f"variables.exemption != '' ? "
                            f"{exempted} : ''"
                        ),
                        "reason": "Forbidden",
                    }
                ],
            },
        }
    )
