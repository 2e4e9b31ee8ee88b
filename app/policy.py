"""The decision for one Service change in one mode (DESIGN §2). Pure: plain data in and out."""

from __future__ import annotations

import datetime
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.conversion import (
    CONVERTED_FROM_ANNOTATION,
    conversion_patch,
    keeps_internal_load_balancer,
)
from app.exposure import Violation, exposure_of, service_type
from app.policy_file import PolicySettings
from app.types import Manifest, Mode, PatchOperation, Verdict

# Namespaces that are never selected, whatever their label says (DESIGN §2).
SYSTEM_NAMESPACES: frozenset[str] = frozenset({"kube-system", "kube-public", "kube-node-lease"})


@dataclass(frozen=True)
class ServiceChange:
    """A CREATE or UPDATE of a Service, as the API server sends it (defaults applied)."""

    operation: str  # CREATE or UPDATE
    namespace: str
    name: str
    service: Manifest
    old_service: Manifest | None = None


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    violations: tuple[Violation, ...] = ()
    patch: list[PatchOperation] = field(default_factory=list)
    warnings: tuple[str, ...] = ()
    audit_annotations: Mapping[str, str] = field(default_factory=dict)
    denial: str = ""  # the one-line reason, when denied

    @property
    def allowed(self) -> bool:
        return self.verdict != "denied"


ALLOWED = Decision(verdict="allowed")


def decide(
    change: ServiceChange,
    mode: Mode,
    policy: PolicySettings,
    *,
    today: datetime.date,
    protected_namespaces: Collection[str] = SYSTEM_NAMESPACES,
) -> Decision:
    if mode == "off" or change.namespace in protected_namespaces:
        return ALLOWED
    violations = exposure_of(change.service, policy)
    if not violations:
        return ALLOWED
    subject = _subject(change)

    exemption = policy.exemption_for(change.namespace, change.name, today)
    if exemption is not None:
        return Decision(
            verdict="warned",
            violations=violations,
            warnings=(f"{subject} is exposed but allowed by {exemption.describe()}",),
            audit_annotations={"exempted-by": exemption.describe()},
        )

    if change.operation == "UPDATE" and change.old_service is not None:
        already = {violation.key for violation in exposure_of(change.old_service, policy)}
        added = tuple(v for v in violations if v.key not in already)
        if not added and policy.allow_existing_violations:
            return Decision(
                verdict="warned",
                violations=violations,
                warnings=tuple(
                    f"existing exposure kept (allowExistingViolations): {v.field}: {v.summary}"
                    for v in violations
                ),
                audit_annotations={"existing-exposure": _joined(violations)},
            )
        if added:
            violations = added

    if mode == "enforce":
        return _deny(subject, change.namespace, violations)
    if mode == "mutate":
        return _convert(change.service, violations, policy)
    return Decision(
        verdict="warned",
        violations=violations,
        warnings=tuple(f"audit: {subject}: {v.field}: {v.summary}" for v in violations),
        audit_annotations={"exposure": _joined(violations)},
    )


def _subject(change: ServiceChange) -> str:
    return f"Service {change.namespace}/{change.name}"


def _joined(violations: tuple[Violation, ...]) -> str:
    return "; ".join(violation.detail for violation in violations)


def _deny(subject: str, namespace: str, violations: tuple[Violation, ...]) -> Decision:
    # The enforce path also backs up mutate namespaces, so the mode is not named here.
    reason = (
        f"{subject} would be reachable from outside the cluster, and namespace {namespace} "
        f"keeps Services internal (label clusterip-guard.io/mode): {_joined(violations)}"
    )
    return Decision(
        verdict="denied",
        violations=violations,
        audit_annotations={"denied": _joined(violations)},
        denial=reason,
    )


def _convert(
    service: Mapping[str, Any], violations: tuple[Violation, ...], policy: PolicySettings
) -> Decision:
    patch = conversion_patch(service, policy)
    old_type = service_type(service)
    if keeps_internal_load_balancer(service, policy):
        what = "clusterip-guard kept this internal LoadBalancer off the nodes"
    else:
        what = f"clusterip-guard converted this Service from {old_type} to ClusterIP"
    changes = [_describe(op) for op in patch if not _is_own_annotation(op)]
    return Decision(
        verdict="mutated",
        violations=violations,
        patch=patch,
        warnings=(f"{what}: {', '.join(changes)}",),
        audit_annotations={"converted-from": old_type, "exposure": _joined(violations)},
    )


_PATCH_VERBS = {"remove": "removed", "add": "set", "replace": "set"}


def _is_own_annotation(operation: PatchOperation) -> bool:
    path = str(operation.get("path", ""))
    value = operation.get("value")
    own = CONVERTED_FROM_ANNOTATION.replace("/", "~1")
    return path.endswith(own) or (
        path == "/metadata/annotations"
        and isinstance(value, dict)
        and set(value) == {CONVERTED_FROM_ANNOTATION}
    )


def field_path(pointer: str) -> str:
    """A JSON Pointer as a kubectl user writes it: /spec/ports/0/x is spec.ports[0].x."""
    text = ""
    for raw in pointer.lstrip("/").split("/"):
        segment = raw.replace("~1", "/").replace("~0", "~")
        if segment.isdigit() or "." in segment or "/" in segment:
            text += f"[{segment}]"
        else:
            text += f".{segment}" if text else segment
    return text


def _describe(operation: PatchOperation) -> str:
    verb = _PATCH_VERBS.get(str(operation.get("op")), "changed")
    path = field_path(str(operation.get("path", "")))
    value = operation.get("value")
    if verb == "set" and isinstance(value, str | bool | int):
        shown = str(value).lower() if isinstance(value, bool) else value
        return f"{verb} {path}={shown}"
    return f"{verb} {path}"
