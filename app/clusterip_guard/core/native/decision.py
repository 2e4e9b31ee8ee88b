"""The native engine's decision for a Service write, as core/decision.py decides it: the
variables that judge (shared with the conversion), the denial message, and the
ValidatingAdmissionPolicy that denies, warns and audits by the namespace's mode. Pure: plain
dicts out."""

from __future__ import annotations

import datetime

from clusterip_guard.core.admission_policies import registered_object, service_writes
from clusterip_guard.core.names import MODE_LABEL
from clusterip_guard.core.native.cel import (
    exemption_terms,
    mode_of_namespace,
    name_variable,
    texts,
)
from clusterip_guard.core.native.exposure import (
    KEPT,
    exposed,
    pieces_expression,
    renamed_piece,
    reported,
)
from clusterip_guard.core.native.services import type_of
from clusterip_guard.core.policy import PolicySettings
from clusterip_guard.core.registration import exposed_match_condition, with_config_hash
from clusterip_guard.core.types import MODES, Manifest, Mode


def judging_variables(
    policy: PolicySettings, *, default_mode: Mode, today: datetime.date | None = None
) -> list[dict[str, str]]:
    """The variables that decide, shared by the validating and the mutating policy:
    `judged` holds the pieces a write is refused (or converted) for, empty when it passes."""
    keeps_existing = (
        "true"
        if policy.allow_existing_violations
        else "has(request.subResource) && request.subResource == 'status'"
    )
    added = f"pieces.filter(p, !{KEPT}).map(p, {renamed_piece()})"
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
        {"name": "reported", "expression": reported("variables.pieces")},
        {
            "name": "new",
            "expression": added.replace("pieces.", "variables.pieces.").replace(
                "oldPieces.", "variables.oldPieces."
            ),
        },
        {"name": "added", "expression": reported("variables.new")},
        {
            "name": "judged",
            "expression": (
                f"size(variables.reported) == 0 || ({exemption_terms(policy, today)}) ? [] : "
                # Nothing exposed before: every piece is new, and none was renamed.
                "oldObject == null || size(variables.oldPieces) == 0 ? variables.reported : "
                f"size(variables.added) > 0 ? variables.added : "
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
    return (
        f"({v}.summary != '' ? {v}.summary : 'port ' + {v}.key.substring(10) + ' opens ' + "
        f"({v}.nodePort != '' ? 'node port ' + {v}.nodePort : 'a node port') + ' on every node')"
    )


def _denial() -> str:
    subject = (
        "'Service ' + namespaceObject.metadata.name + '/' + variables.name + "
        "(has(request.subResource) && request.subResource != '' ? ' (written through services/' "
        "+ request.subResource + ')' : '')"
    )
    modes = ", ".join(MODES)
    why = (
        f"(variables.mode in {texts(MODES)} ? 'namespace ' + namespaceObject.metadata.name + "
        f"' keeps Services internal (label {MODE_LABEL})' : 'the label {MODE_LABEL} of "
        f"namespace ' + namespaceObject.metadata.name + ' is not a mode ({modes}), so it is "
        "judged as enforce')"
    )
    joined = (
        f"variables.judged.map(v, v.field + ': ' + {_summary_of('v')} + '; ' + v.fix).join('; ')"
    )
    return (
        f"{subject} + ' would be reachable from outside the cluster, and ' + {why} + ': ' + "
        f"{joined}"
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
