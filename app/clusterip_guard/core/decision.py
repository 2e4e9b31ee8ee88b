"""The decision for one Service change in one mode (docs/design.md, "Modes, per namespace").
Pure: plain data."""

from __future__ import annotations

import datetime
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from clusterip_guard.core import sentences as say
from clusterip_guard.core.conversion import conversion_patch
from clusterip_guard.core.exposure import (
    Violation,
    added_exposure,
    exposure_of,
    is_allowed_internal_load_balancer,
    reported,
)
from clusterip_guard.core.gateways import GATEWAY_KIND, gateway_api_exposure_of
from clusterip_guard.core.ingresses import INGRESS_KIND, ingress_exposure_of
from clusterip_guard.core.names import (
    AUDIT_CONVERTED_FROM,
    AUDIT_DENIED,
    AUDIT_EXEMPTED_BY,
    AUDIT_EXISTING_EXPOSURE,
    AUDIT_EXPOSURE,
    CONVERTED_FROM_ANNOTATION,
    MODE_LABEL,
    NEVER_JUDGED_NAMESPACES,
)
from clusterip_guard.core.pointers import field_path, pointer_to
from clusterip_guard.core.policy import PolicySettings
from clusterip_guard.core.services import external_ips, service_type
from clusterip_guard.core.types import MODES, Manifest, Mode, PatchOperation, Verdict
from clusterip_guard.core.workloads import (
    HOST_NETWORK_PIECE,
    WorkloadKind,
    describe_removal,
    host_exposure_of,
    host_port_removal,
    made_by_its_controller,
)


@dataclass(frozen=True)
class ServiceChange:
    """A CREATE or UPDATE of a Service, as the API server sends it (defaults applied)."""

    operation: str  # CREATE or UPDATE
    namespace: str
    name: str  # for messages: `display_name` of the Service when the request has none
    service: Manifest
    old_service: Manifest | None = None
    # "status": a write through services/status. The API server keeps the spec as it was, but
    # labels and annotations change, and annotations decide what a cloud builds (an internal
    # balancer turned internet-facing, a source range widened). Judged on what it adds, like
    # any UPDATE; what it keeps is always allowed, since load-balancer controllers write the
    # status of Services that were exposed before the namespace was governed.
    subresource: str = ""


@dataclass(frozen=True)
class WorkloadChange:
    """A CREATE or UPDATE of a Pod or of a workload that makes Pods (core/workloads.py)."""

    operation: str
    namespace: str
    name: str
    kind: WorkloadKind
    workload: Manifest
    old_workload: Manifest | None = None
    user: str = ""  # request.userInfo.username: the workload controllers are known by it


@dataclass(frozen=True)
class IngressChange:
    """A CREATE or UPDATE of an Ingress (core/ingresses.py)."""

    operation: str
    namespace: str
    name: str
    ingress: Manifest
    old_ingress: Manifest | None = None
    # "status": a write through ingresses/status, which keeps the spec but takes annotations,
    # the deprecated class among them (judged as a Service's status write is).
    subresource: str = ""


@dataclass(frozen=True)
class GatewayApiChange:
    """A CREATE or UPDATE of a Gateway or of a Gateway API route (core/gateways.py)."""

    operation: str
    namespace: str
    name: str
    kind: str  # Gateway, or one of gateways.ROUTE_KIND_NAMES
    manifest: Manifest
    old_manifest: Manifest | None = None
    # "status": a write through the status subresource, which keeps the spec (judged as an
    # Ingress's status write is: what it keeps is allowed).
    subresource: str = ""


Change = ServiceChange | WorkloadChange | IngressChange | GatewayApiChange


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    violations: tuple[Violation, ...] = ()
    patch: list[PatchOperation] = field(default_factory=list)
    warnings: tuple[str, ...] = ()
    audit_annotations: Mapping[str, str] = field(default_factory=dict)
    denial: str = ""  # the one-line reason, when denied
    # Why a Service that is exposed was only warned: audit mode, the named exemption, or
    # existing exposure kept. For the log and the reports.
    why_warned: str = ""
    changes: tuple[str, ...] = ()  # what a mutation changed, in words ("set spec.type=...")
    converted: bool = False  # a mutation that made the Service a ClusterIP one

    @property
    def allowed(self) -> bool:
        return self.verdict != "denied"


ALLOWED = Decision(verdict="allowed")


def decide(
    change: Change,
    mode: Mode,
    policy: PolicySettings,
    *,
    today: datetime.date,
    never_judged: Collection[str] = NEVER_JUDGED_NAMESPACES,
    label_not_a_mode: bool = False,
) -> Decision:
    """`label_not_a_mode`: the namespace's mode label holds a value that is not a mode; it is
    judged as enforce (the mode given), and a denial says why."""
    if mode == "off" or change.namespace in never_judged:
        return ALLOWED
    if isinstance(change, WorkloadChange):
        return _decide_workload(change, mode, policy, today, label_not_a_mode)
    if isinstance(change, IngressChange):
        return _decide_ingress(change, mode, policy, today, label_not_a_mode)
    if isinstance(change, GatewayApiChange):
        return _decide_gateway_api(change, mode, policy, today, label_not_a_mode)
    violations = reported(exposure_of(change.service, policy))
    if not violations:
        return ALLOWED
    subject = _subject(change)

    exemption = policy.exemption_for(change.namespace, change.name, today)
    if exemption is not None:
        return _exempted(subject, violations, exemption.describe())

    if change.operation == "UPDATE" and change.old_service is not None:
        # Judged on every piece it adds, like a CREATE; kept pieces are existing violations.
        added = reported(added_exposure(change.service, change.old_service, policy))
        keeps_existing = policy.allow_existing_violations or change.subresource == "status"
        if not added and keeps_existing:
            return _existing_kept(violations)
        if added:
            violations = added

    if mode == "enforce" or (mode == "mutate" and change.subresource):
        # A write through a subresource cannot be converted (the API server keeps the spec,
        # and a conversion is a change of spec): in mutate namespaces it is denied instead.
        return _deny(subject, change.namespace, violations, label_not_a_mode=label_not_a_mode)
    if mode == "mutate":
        return _convert(change.service, violations, policy)
    return _audited(subject, violations)


def _exempted(subject: str, violations: tuple[Violation, ...], exemption: str) -> Decision:
    return Decision(
        verdict="warned",
        violations=violations,
        warnings=(say.EXEMPTED.format(subject=subject, exemption=exemption),),
        audit_annotations={AUDIT_EXEMPTED_BY: exemption},
        why_warned=f"allowed by {exemption}",
    )


def _audited(subject: str, violations: tuple[Violation, ...]) -> Decision:
    return Decision(
        verdict="warned",
        violations=violations,
        warnings=tuple(
            say.AUDITED.format(subject=subject, field=v.field, summary=v.summary)
            for v in violations
        ),
        audit_annotations={AUDIT_EXPOSURE: _joined(violations)},
        why_warned="audit mode: exposure is reported, not denied",
    )


def _existing_kept(violations: tuple[Violation, ...]) -> Decision:
    return Decision(
        verdict="warned",
        violations=violations,
        warnings=tuple(
            say.EXISTING_KEPT.format(field=v.field, summary=v.summary) for v in violations
        ),
        audit_annotations={AUDIT_EXISTING_EXPOSURE: _joined(violations)},
        why_warned=say.KEPT_WHY,
    )


def _decide_workload(
    change: WorkloadChange,
    mode: Mode,
    policy: PolicySettings,
    today: datetime.date,
    label_not_a_mode: bool,
) -> Decision:
    """A Pod spec's host ports and host network, judged as a Service's exposure is."""
    kind = change.kind
    violations = reported(host_exposure_of(change.workload, kind, policy))
    if not violations:
        return ALLOWED
    subject = say.WORKLOAD_SUBJECT.format(
        kind=kind.kind, namespace=change.namespace, name=change.name
    )
    exemption = policy.exemption_for(change.namespace, change.name, today, kind.kind)
    if exemption is not None:
        return _exempted(subject, violations, exemption.describe())
    owner = made_by_its_controller(change.workload, change.user)
    if owner is not None:
        # Its Pod spec is its workload's template: judged (converted, denied, exempted or kept
        # as existing) when the workload was written. Denying here would only stall a running
        # workload where nobody reads it, in the controller's events.
        why = f"written by the {owner[0]} controller from {owner[0]} {owner[1]}, judged there"
        return Decision(
            verdict="warned",
            violations=violations,
            warnings=(f"{subject} is exposed: {why}",),
            audit_annotations={AUDIT_EXISTING_EXPOSURE: _joined(violations)},
            why_warned=why,
        )
    if change.operation == "UPDATE" and change.old_workload is not None:
        before = host_exposure_of(change.old_workload, kind, policy)
        added = reported(
            tuple(
                v
                for v in host_exposure_of(change.workload, kind, policy)
                if not v.kept_from(before)
            )
        )
        if not added and policy.allow_existing_violations:
            return _existing_kept(violations)
        if added:
            violations = added
    keeps = say.KEEPS_WORKLOADS_INTERNAL.format(namespace=change.namespace)
    if mode == "enforce":
        return _deny(
            subject, change.namespace, violations, label_not_a_mode=label_not_a_mode, keeps=keeps
        )
    if mode == "mutate":
        if any(v.key == HOST_NETWORK_PIECE for v in violations):
            return _deny(
                subject,
                change.namespace,
                violations,
                label_not_a_mode=False,
                keeps=say.HOST_NETWORK_IN_MUTATE.format(
                    namespace=change.namespace, label=MODE_LABEL
                ),
            )
        patch = host_port_removal(change.workload, kind, violations)
        changes = tuple(describe_removal(op) for op in patch)
        return Decision(
            verdict="mutated",
            violations=violations,
            patch=patch,
            warnings=(
                f"clusterip-guard removed host ports from this {kind.kind}: {', '.join(changes)}",
            ),
            audit_annotations={AUDIT_EXPOSURE: _joined(violations)},
            changes=changes,
        )
    return _audited(subject, violations)


def _decide_ingress(
    change: IngressChange,
    mode: Mode,
    policy: PolicySettings,
    today: datetime.date,
    label_not_a_mode: bool,
) -> Decision:
    """An Ingress's classes, judged as a Service's exposure is; nothing converts an Ingress, so
    mutate denies it, saying why."""
    violations = ingress_exposure_of(change.ingress, policy)
    if not violations:
        return ALLOWED
    subject = say.INGRESS_SUBJECT.format(namespace=change.namespace, name=change.name)
    exemption = policy.exemption_for(change.namespace, change.name, today, INGRESS_KIND)
    if exemption is not None:
        return _exempted(subject, violations, exemption.describe())
    if change.operation == "UPDATE" and change.old_ingress is not None:
        before = ingress_exposure_of(change.old_ingress, policy)
        added = tuple(v for v in violations if not v.kept_from(before))
        if not added and (policy.allow_existing_violations or change.subresource == "status"):
            return _existing_kept(violations)
        if added:
            violations = added
    if mode == "mutate":
        keeps = say.INGRESS_IN_MUTATE.format(namespace=change.namespace, label=MODE_LABEL)
        return _deny(subject, change.namespace, violations, label_not_a_mode=False, keeps=keeps)
    if mode == "enforce":
        keeps = say.KEEPS_WORKLOADS_INTERNAL.format(namespace=change.namespace)
        return _deny(
            subject, change.namespace, violations, label_not_a_mode=label_not_a_mode, keeps=keeps
        )
    return _audited(subject, violations)


def _decide_gateway_api(
    change: GatewayApiChange,
    mode: Mode,
    policy: PolicySettings,
    today: datetime.date,
    label_not_a_mode: bool,
) -> Decision:
    """A Gateway's class or a route's parents, judged as an Ingress's classes are; nothing
    converts either, so mutate denies, saying why."""
    violations = gateway_api_exposure_of(change.kind, change.manifest, change.namespace, policy)
    if not violations:
        return ALLOWED
    subject = say.GATEWAY_API_SUBJECT.format(
        kind=change.kind, namespace=change.namespace, name=change.name
    )
    exemption = policy.exemption_for(change.namespace, change.name, today, change.kind)
    if exemption is not None:
        return _exempted(subject, violations, exemption.describe())
    if change.operation == "UPDATE" and change.old_manifest is not None:
        before = gateway_api_exposure_of(change.kind, change.old_manifest, change.namespace, policy)
        added = tuple(v for v in violations if not v.kept_from(before))
        if not added and (policy.allow_existing_violations or change.subresource == "status"):
            return _existing_kept(violations)
        if added:
            violations = added
    if mode == "mutate":
        in_mutate = say.GATEWAY_IN_MUTATE if change.kind == GATEWAY_KIND else say.ROUTE_IN_MUTATE
        keeps = in_mutate.format(namespace=change.namespace, label=MODE_LABEL)
        return _deny(subject, change.namespace, violations, label_not_a_mode=False, keeps=keeps)
    if mode == "enforce":
        keeps = say.KEEPS_WORKLOADS_INTERNAL.format(namespace=change.namespace)
        return _deny(
            subject, change.namespace, violations, label_not_a_mode=label_not_a_mode, keeps=keeps
        )
    return _audited(subject, violations)


def _subject(change: ServiceChange) -> str:
    through = (
        say.THROUGH_SUBRESOURCE.format(subresource=change.subresource) if change.subresource else ""
    )
    return say.SERVICE_SUBJECT.format(namespace=change.namespace, name=change.name) + through


def _joined(violations: tuple[Violation, ...]) -> str:
    return say.PIECES_JOINED.join(violation.detail for violation in violations)


def _deny(
    subject: str,
    namespace: str,
    violations: tuple[Violation, ...],
    *,
    label_not_a_mode: bool,
    keeps: str = "",
) -> Decision:
    # The enforce path also backs up mutate namespaces, so the mode is not named here.
    why = (
        say.NOT_A_MODE.format(label=MODE_LABEL, namespace=namespace, modes=", ".join(MODES))
        if label_not_a_mode
        else (keeps or say.KEEPS_SERVICES_INTERNAL.format(namespace=namespace))
        + say.BY_LABEL.format(label=MODE_LABEL)
    )
    said = violations[: say.MAX_PIECES_SAID]
    more = len(violations) - len(said)
    reason = say.DENIAL.format(
        subject=subject,
        why=why,
        pieces=_joined(said) + (say.MORE_PIECES.format(count=more) if more else ""),
    )
    return Decision(
        verdict="denied",
        violations=violations,
        audit_annotations={AUDIT_DENIED: _joined(violations)},
        denial=reason,
    )


def _convert(
    service: Mapping[str, Any], violations: tuple[Violation, ...], policy: PolicySettings
) -> Decision:
    patch = conversion_patch(service, policy, exposed=True)  # judged by decide already
    old_type = service_type(service)
    type_changed = any(op.get("path") == TYPE_POINTER for op in patch)
    if is_allowed_internal_load_balancer(service, policy):
        what = "clusterip-guard kept this internal LoadBalancer off the nodes"
    elif not type_changed:  # a ClusterIP Service with external IPs: not "converted"
        what = f"clusterip-guard removed external IPs from this {old_type} Service"
    else:
        what = f"clusterip-guard converted this Service from {old_type} to ClusterIP"
    changes = [_describe(op, service, policy) for op in patch if not _is_own_annotation(op)]
    audit = {AUDIT_CONVERTED_FROM: old_type} if type_changed else {}
    return Decision(
        verdict="mutated",
        violations=violations,
        patch=patch,
        warnings=(f"{what}: {', '.join(changes)}",),
        audit_annotations={**audit, AUDIT_EXPOSURE: _joined(violations)},
        changes=tuple(changes),
        converted=type_changed,
    )


TYPE_POINTER = pointer_to("spec", "type")
_OWN_ANNOTATION_POINTER = pointer_to("metadata", "annotations", CONVERTED_FROM_ANNOTATION)


_PATCH_VERBS = {"remove": "removed", "add": "set", "replace": "set"}


def _is_own_annotation(operation: PatchOperation) -> bool:
    path = str(operation.get("path", ""))
    value = operation.get("value")
    return path == _OWN_ANNOTATION_POINTER or (
        path == "/metadata/annotations"
        and isinstance(value, dict)
        and set(value) == {CONVERTED_FROM_ANNOTATION}
    )


_EXTERNAL_IPS_POINTER = pointer_to("spec", "externalIPs")


def _external_ips_change(service: Mapping[str, Any], policy: PolicySettings) -> str:
    """Which external IPs the conversion dropped, and which it kept (the allowed ones)."""
    ips = external_ips(service)
    dropped = [ip for ip in ips if not policy.external_ip_allowed(ip)]
    kept = [ip for ip in ips if policy.external_ip_allowed(ip)]
    text = f"removed {', '.join(dropped)} from spec.externalIPs"
    if kept:
        text += f" (kept {', '.join(kept)}: inside allowedExternalIPCIDRs)"
    return text


def _describe(operation: PatchOperation, service: Mapping[str, Any], policy: PolicySettings) -> str:
    verb = _PATCH_VERBS.get(str(operation.get("op")), "changed")
    if operation.get("path") == _EXTERNAL_IPS_POINTER:
        return _external_ips_change(service, policy)
    path = field_path(str(operation.get("path", "")))
    value = operation.get("value")
    if verb == "set" and isinstance(value, str | bool | int):
        shown = str(value).lower() if isinstance(value, bool) else value
        return f"{verb} {path}={shown}"
    return f"{verb} {path}"
