"""Judging the Services that already exist (docs/design.md, "Reporting what exists (scan)").
Pure: plain data in, findings out.

The same core as admission: the namespace's mode from its label and the cluster default,
never-judged namespaces, the policy file (exemptions and their expiry, internal load
balancers, allowed external IPs), and `decide` for what enforce and mutate would do to the
Service as it stands.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from clusterip_guard.core.admission import Selection, judging_entry
from clusterip_guard.core.decision import (
    Change,
    GatewayApiChange,
    IngressChange,
    ServiceChange,
    WorkloadChange,
    decide,
)
from clusterip_guard.core.exposure import LOAD_BALANCER_PIECE, Violation, exposure_of, reported
from clusterip_guard.core.gateways import (
    GATEWAY_CLASS_KEY_PREFIX,
    PARENT_KEY_PREFIX,
    gateway_api_exposure_of,
    gateway_api_kind,
)
from clusterip_guard.core.ingresses import (
    INGRESS_API_VERSION,
    INGRESS_CLASS_KEY_PREFIX,
    INGRESS_KIND,
    NO_INGRESS_CLASS,
    ingress_exposure_of,
)
from clusterip_guard.core.listing_order import listing_key
from clusterip_guard.core.names import MODE_LABEL, NEVER_JUDGED_NAMESPACES
from clusterip_guard.core.policy import PolicySettings
from clusterip_guard.core.services import display_name, namespace_of, service_type
from clusterip_guard.core.types import Manifest, Mode
from clusterip_guard.core.workloads import (
    WORKLOAD_KIND_NAMES,
    WorkloadKind,
    controlling_owner,
    host_exposure_of,
)

# As PolicyReport results say it (wgpolicyk8s.io and openreports.io alike).
Result = Literal["pass", "fail", "warn", "skip"]
RESULTS: tuple[Result, ...] = ("pass", "fail", "warn", "skip")


@dataclass(frozen=True)
class NamespaceMode:
    """The mode a namespace's Services are judged by, and where it comes from."""

    namespace: str
    mode: Mode
    source: str  # "label", "cluster default", "what-if", "not a mode", "never judged"
    label: str | None = None  # the label's value, when there is one

    @property
    def judged(self) -> bool:
        return self.source != "never judged"

    def describe(self) -> str:
        if self.source == "not a mode":
            return f"{self.mode} ({MODE_LABEL}={self.label} is not a mode)"
        if self.source == "never judged":
            return "never judged"
        return f"{self.mode} ({self.source})"


def namespace_mode(
    namespace: str,
    labels: Mapping[str, str],
    *,
    default_mode: Mode,
    never_judged: Collection[str] = NEVER_JUDGED_NAMESPACES,
    what_if: Mode | None = None,
) -> NamespaceMode:
    """The mode of the entry that would judge this namespace's Services (core/admission.py):
    the registration's own selectors, evaluated as the API server evaluates them. `what_if`
    answers "what if this namespace were in that mode" for every judged namespace."""
    label = labels.get(MODE_LABEL)
    if namespace in never_judged:
        return NamespaceMode(namespace, "off", "never judged", label)
    if what_if is not None:
        return NamespaceMode(namespace, what_if, "what-if", label)
    entry = judging_entry(namespace, labels, default_mode=default_mode, never_judged=never_judged)
    if entry is None:  # `off`, by its label or by the cluster default
        return NamespaceMode(
            namespace, "off", "cluster default" if label is None else "label", label
        )
    return NamespaceMode(namespace, entry.mode, _SOURCES[entry.selects], label)


_SOURCES: dict[Selection, str] = {
    "label": "label",
    "unlabelled": "cluster default",
    "not-a-mode": "not a mode",
}


# Pieces of exposure the internet may reach, beyond the nodes' own network (an ingress
# controller's own balancer among them).
_INTERNET_FACING = (
    LOAD_BALANCER_PIECE,
    "external-ip:",
    "source-range:",
    INGRESS_CLASS_KEY_PREFIX,
    NO_INGRESS_CLASS,
    GATEWAY_CLASS_KEY_PREFIX,
    PARENT_KEY_PREFIX,
)


@dataclass(frozen=True)
class Finding:
    """One Service, Pod or workload, judged as it stands."""

    namespace: NamespaceMode
    name: str
    uid: str
    service_type: str  # a Service's type; "" for the rest
    exposure: tuple[Violation, ...]  # every piece that would be reported
    result: Result
    message: str  # why this result, in one line: the report's message
    enforce: str  # what enforce would do to it: "deny" or "allow"
    mutate: tuple[str, ...]  # what mutate would change ("set spec.type=ClusterIP", ...)
    mutate_converts: bool = False  # whether mutate would make it a ClusterIP Service
    exemption: str = ""  # the exemption that allows it, described
    kind: str = "Service"
    api_version: str = "v1"

    @property
    def exposed(self) -> bool:
        return bool(self.exposure)

    @property
    def severity(self) -> str:
        """High for what the internet may reach (a load balancer, an external IP); medium for
        node ports; info for the rest (the PolicyReport severities)."""
        if not self.exposed or self.result in ("pass", "skip"):
            return "info"
        if any(v.key.startswith(_INTERNET_FACING) for v in self.exposure):
            return "high"
        return "medium"


def judge_service(
    service: Manifest, namespace: NamespaceMode, policy: PolicySettings, today: datetime.date
) -> Finding:
    name = display_name(service)
    metadata = service.get("metadata")
    uid = str(metadata.get("uid", "")) if isinstance(metadata, dict) else ""
    exposure = reported(exposure_of(service, policy))
    kind = service_type(service)
    if not exposure:
        return Finding(
            namespace, name, uid, kind, (), "pass", "not reachable from outside the cluster",
            enforce="allow", mutate=(),
        )  # fmt: skip
    change = ServiceChange("CREATE", namespace.namespace, name, service)
    return _finding(
        change, namespace, exposure, uid=uid, service_kind=kind, policy=policy, today=today
    )


def judge_workload(
    workload: Manifest,
    kind: WorkloadKind,
    namespace: NamespaceMode,
    policy: PolicySettings,
    today: datetime.date,
) -> Finding:
    """A Pod or workload: its host ports and host network."""
    name = display_name(workload)
    metadata = workload.get("metadata")
    uid = str(metadata.get("uid", "")) if isinstance(metadata, dict) else ""
    change = WorkloadChange("CREATE", namespace.namespace, name, kind, workload)
    exposure = reported(host_exposure_of(workload, kind, policy))
    return _finding(
        change, namespace, exposure, uid=uid, service_kind="", policy=policy, today=today
    )


def judge_ingress(
    ingress: Manifest, namespace: NamespaceMode, policy: PolicySettings, today: datetime.date
) -> Finding:
    """An Ingress: its classes."""
    name = display_name(ingress)
    metadata = ingress.get("metadata")
    uid = str(metadata.get("uid", "")) if isinstance(metadata, dict) else ""
    change = IngressChange("CREATE", namespace.namespace, name, ingress)
    exposure = ingress_exposure_of(ingress, policy)
    return _finding(
        change, namespace, exposure, uid=uid, service_kind="", policy=policy, today=today
    )


def judge_gateway_api(
    manifest: Manifest, namespace: NamespaceMode, policy: PolicySettings, today: datetime.date
) -> Finding:
    """A Gateway (its class) or a route (its parents); its kind read from the object."""
    name = display_name(manifest)
    metadata = manifest.get("metadata")
    uid = str(metadata.get("uid", "")) if isinstance(metadata, dict) else ""
    kind = gateway_api_kind(manifest) or str(manifest.get("kind", ""))
    change = GatewayApiChange("CREATE", namespace.namespace, name, kind, manifest)
    exposure = gateway_api_exposure_of(kind, manifest, namespace.namespace, policy)
    return _finding(
        change, namespace, exposure, uid=uid, service_kind="", policy=policy, today=today
    )


def reported_workloads(
    workloads: Iterable[tuple[WorkloadKind, Manifest]],
) -> list[tuple[WorkloadKind, Manifest]]:
    """The workloads and Pods a report names: those no workload controls. A Deployment's
    ReplicaSets and Pods, a CronJob's Jobs, carry its template and are reported as it."""
    return [
        (kind, workload)
        for kind, workload in workloads
        if (owner := controlling_owner(workload)) is None or owner[0] not in WORKLOAD_KIND_NAMES
    ]


def _finding(
    change: Change,
    namespace: NamespaceMode,
    exposure: tuple[Violation, ...],
    *,
    uid: str,
    service_kind: str,
    policy: PolicySettings,
    today: datetime.date,
) -> Finding:
    name = change.name
    is_service = isinstance(change, ServiceChange)
    kind, api_version = "Service", "v1"
    if isinstance(change, WorkloadChange):
        kind = change.kind.kind
        api_version = f"{change.kind.group}/v1" if change.kind.group else "v1"
    if isinstance(change, IngressChange):
        kind, api_version = INGRESS_KIND, INGRESS_API_VERSION
    if isinstance(change, GatewayApiChange):
        kind, api_version = change.kind, str(change.manifest.get("apiVersion", ""))
    if not exposure:
        return Finding(
            namespace, name, uid, service_kind, (), "pass",
            "not reachable from outside the cluster", enforce="allow", mutate=(),
            kind=kind, api_version=api_version,
        )  # fmt: skip
    enforced = decide(change, "enforce", policy, today=today, never_judged=())
    mutated = decide(change, "mutate", policy, today=today, never_judged=())
    enforce = "deny" if enforced.verdict == "denied" else "allow"
    exposed = "; ".join(v.detail for v in exposure)
    exemption = policy.exemption_for(namespace.namespace, name, today, kind)
    if not namespace.judged:
        result: Result = "skip"
        message = f"never judged (a system namespace): {exposed}"
    elif exemption is not None:
        result, message = "skip", f"allowed by {exemption.describe()}: {exposed}"
    elif namespace.mode == "off":
        result = "warn"
        message = f"exposed, in a namespace that is not judged (mode off): {exposed}"
    elif namespace.mode == "audit":
        result, message = "fail", f"exposed; audit mode reports it, enforce would deny: {exposed}"
    elif namespace.source == "what-if":
        verb = (
            "deny it"
            if namespace.mode == "enforce" or mutated.verdict == "denied"
            else "convert it to ClusterIP"
            if is_service
            else "remove its host ports"
        )
        result, message = "fail", f"exposed; {namespace.mode} would {verb}: {exposed}"
    else:
        # In an enforce or mutate namespace an exposed Service predates the label (or the
        # webhook): kept as an existing violation, judged again on any change that adds.
        result = "fail"
        message = f"exposed, kept as an existing violation ({namespace.mode} mode): {exposed}"
    return Finding(
        namespace, name, uid, service_kind, exposure, result, message,
        enforce=enforce, mutate=mutated.changes, mutate_converts=mutated.converted,
        exemption=exemption.describe() if exemption is not None else "",
        kind=kind, api_version=api_version,
    )  # fmt: skip


@dataclass(frozen=True)
class NamespaceInfo:
    name: str
    labels: Mapping[str, str]


@dataclass(frozen=True)
class Judge:
    """Judges one object at a time, as admission would, in the mode its namespace is in: what
    `scan` does to a whole list, and the streaming scan to one page after another."""

    modes: Mapping[str, NamespaceMode]
    default_mode: Mode
    policy: PolicySettings
    today: datetime.date
    what_if: Mode | None = None
    never_judged: Collection[str] = NEVER_JUDGED_NAMESPACES

    @classmethod
    def of(
        cls,
        namespaces: Iterable[NamespaceInfo],
        *,
        default_mode: Mode,
        policy: PolicySettings,
        today: datetime.date,
        what_if: Mode | None = None,
        never_judged: Collection[str] = NEVER_JUDGED_NAMESPACES,
    ) -> Judge:
        judge = cls({}, default_mode, policy, today, what_if, never_judged)
        modes = {ns.name: judge.labelled(ns.name, ns.labels) for ns in namespaces}
        return dataclasses.replace(judge, modes=modes)

    def labelled(self, namespace: str, labels: Mapping[str, str]) -> NamespaceMode:
        """The mode a namespace with these labels is in, for this scan."""
        return namespace_mode(
            namespace,
            labels,
            default_mode=self.default_mode,
            never_judged=self.never_judged,
            what_if=self.what_if,
        )

    def mode_of(self, namespace: str) -> NamespaceMode:
        """The namespace's mode; one that was not listed (deleted meanwhile) is unlabelled."""
        return self.modes.get(namespace) or self.labelled(namespace, {})

    def service(self, service: Manifest) -> Finding:
        return judge_service(service, self.mode_of(namespace_of(service)), self.policy, self.today)

    def workload(self, kind: WorkloadKind, workload: Manifest) -> Finding | None:
        """None for what a workload controls (reported as that workload)."""
        if not reported_workloads([(kind, workload)]):
            return None
        mode = self.mode_of(namespace_of(workload))
        return judge_workload(workload, kind, mode, self.policy, self.today)

    def ingress(self, ingress: Manifest) -> Finding:
        return judge_ingress(ingress, self.mode_of(namespace_of(ingress)), self.policy, self.today)

    def gateway_api(self, manifest: Manifest) -> Finding:
        """A Gateway or a route, its kind read from the object."""
        mode = self.mode_of(namespace_of(manifest))
        return judge_gateway_api(manifest, mode, self.policy, self.today)


def in_report_order(findings: Iterable[Finding]) -> list[Finding]:
    """By namespace (in the API server's order: core/listing_order.py), name and kind: the
    order of the table and the reports."""
    return sorted(findings, key=lambda f: (listing_key(f.namespace.namespace), f.name, f.kind))


def scan(
    namespaces: Iterable[NamespaceInfo],
    services: Iterable[Manifest],
    *,
    default_mode: Mode,
    policy: PolicySettings,
    today: datetime.date,
    what_if: Mode | None = None,
    never_judged: Collection[str] = NEVER_JUDGED_NAMESPACES,
    workloads: Iterable[tuple[WorkloadKind, Manifest]] = (),
    ingresses: Iterable[Manifest] = (),
    gateway_api: Iterable[Manifest] = (),
) -> list[Finding]:
    """Every Service, every workload and Pod no workload controls, every Ingress, and every
    Gateway and route (`gateway_api`, their kind read from each), judged;
    sorted by namespace, name and kind. An object whose namespace is not in `namespaces` (deleted
    meanwhile) is judged as an unlabelled one."""
    judge = Judge.of(
        namespaces, default_mode=default_mode, policy=policy, today=today, what_if=what_if,
        never_judged=never_judged,
    )  # fmt: skip
    findings = [judge.service(service) for service in services]
    findings += [
        found
        for kind, workload in workloads
        if (found := judge.workload(kind, workload)) is not None
    ]
    findings += [judge.ingress(ingress) for ingress in ingresses]
    findings += [judge.gateway_api(manifest) for manifest in gateway_api]
    return in_report_order(findings)


@dataclass
class Tally:
    """What a scan found, counted as it goes (a streaming scan keeps no list of findings): by
    result, the namespaces and kinds seen, and the exposed objects by namespace, mode and
    result (the metrics' gauge)."""

    results: dict[Result, int] = field(default_factory=lambda: dict.fromkeys(RESULTS, 0))
    namespaces: int = 0
    only_services: bool = True
    exposed: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def add(self, findings: Sequence[Finding]) -> None:
        """One namespace's findings (each namespace is added once)."""
        if not findings:
            return
        self.namespaces += 1
        for finding in findings:
            self.results[finding.result] += 1
            self.only_services = self.only_services and finding.kind == "Service"
            if finding.exposed:
                key = (finding.namespace.namespace, finding.namespace.mode, finding.result)
                self.exposed[key] = self.exposed.get(key, 0) + 1

    @property
    def objects(self) -> int:
        return sum(self.results.values())

    @classmethod
    def of(cls, findings: Sequence[Finding]) -> Tally:
        tally = cls()
        by_namespace: dict[str, list[Finding]] = {}
        for finding in findings:
            by_namespace.setdefault(finding.namespace.namespace, []).append(finding)
        for found in by_namespace.values():
            tally.add(found)
        return tally


def summary(findings: Iterable[Finding]) -> dict[Result, int]:
    counts: dict[Result, int] = dict.fromkeys(RESULTS, 0)
    for finding in findings:
        counts[finding.result] += 1
    return counts
