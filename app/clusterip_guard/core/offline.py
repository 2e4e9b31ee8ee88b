"""Judging manifests offline (`check`, docs/design.md, "Command line"). Pure: parsed documents
in, results out.

The same `decide` the webhook uses, on each Service as written: offline, the API server's
defaults are not applied, so a patch can be shorter than the one the webhook returns.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clusterip_guard.core.conversion import internalize
from clusterip_guard.core.decision import (
    Decision,
    GatewayApiChange,
    IngressChange,
    ServiceChange,
    WorkloadChange,
    decide,
)
from clusterip_guard.core.gateways import gateway_api_kind
from clusterip_guard.core.ingresses import INGRESS_KIND, is_ingress
from clusterip_guard.core.policy import PolicySettings
from clusterip_guard.core.services import display_name, namespace_of
from clusterip_guard.core.types import Manifest, Mode
from clusterip_guard.core.workloads import WorkloadKind, without_host_ports, workload_kind_of

STDIN_SOURCE = "<stdin>"


@dataclass
class ManifestFile:
    """One source (a file or stdin) and the YAML documents in it."""

    source: str
    documents: list[Any]
    path: Path | None = None  # None for stdin


@dataclass(frozen=True)
class ServiceResult:
    source: str  # file#document
    namespace: str
    name: str
    decision: Decision
    service: Manifest = field(repr=False, compare=False)  # the object: a Service or a workload
    kind: str = "Service"

    @property
    def needs_change(self) -> bool:
        return self.decision.verdict in ("denied", "mutated")


@dataclass
class CheckResults:
    results: list[ServiceResult] = field(default_factory=list)

    @property
    def needs_change(self) -> bool:
        return any(r.needs_change for r in self.results)


def objects_in(document: Any) -> Iterator[tuple[Manifest, WorkloadKind | str | None]]:
    """Every object `check` judges in a document: Services (kind None), Pods and workloads
    (their kind), Ingresses ("Ingress"), Gateways and routes (their kind), looking inside
    `List`s."""
    if not isinstance(document, dict):
        return
    kind = workload_kind_of(document)
    if kind is not None:
        yield document, kind
    elif is_ingress(document):
        yield document, INGRESS_KIND
    elif (gateway_api := gateway_api_kind(document)) is not None:
        yield document, gateway_api
    elif document.get("kind") == "Service" and str(document.get("apiVersion", "v1")) == "v1":
        yield document, None
    elif isinstance(document.get("kind"), str) and str(document["kind"]).endswith("List"):
        items = document.get("items")
        for item in items if isinstance(items, list) else []:
            yield from objects_in(item)


def check_workload(
    workload: Manifest,
    kind: WorkloadKind,
    *,
    source: str,
    mode: Mode,
    policy: PolicySettings,
    today: datetime.date,
) -> ServiceResult:
    namespace, name = namespace_of(workload), display_name(workload)
    change = WorkloadChange("CREATE", namespace, name, kind, workload)
    decision = decide(change, mode, policy, today=today)
    return ServiceResult(source, namespace, name, decision, workload, kind=kind.kind)


def check_ingress(
    ingress: Manifest, *, source: str, mode: Mode, policy: PolicySettings, today: datetime.date
) -> ServiceResult:
    """An Ingress: its classes (nothing to fix: mutate denies what it cannot convert)."""
    namespace, name = namespace_of(ingress), display_name(ingress)
    change = IngressChange("CREATE", namespace, name, ingress)
    decision = decide(change, mode, policy, today=today)
    return ServiceResult(source, namespace, name, decision, ingress, kind=INGRESS_KIND)


def check_gateway_api(
    manifest: Manifest,
    kind: str,
    *,
    source: str,
    mode: Mode,
    policy: PolicySettings,
    today: datetime.date,
) -> ServiceResult:
    """A Gateway (its class) or a route (its parents): nothing to fix, as for an Ingress."""
    namespace, name = namespace_of(manifest), display_name(manifest)
    change = GatewayApiChange("CREATE", namespace, name, kind, manifest)
    decision = decide(change, mode, policy, today=today)
    return ServiceResult(source, namespace, name, decision, manifest, kind=kind)


def check_service(
    service: Manifest, *, source: str, mode: Mode, policy: PolicySettings, today: datetime.date
) -> ServiceResult:
    namespace, name = namespace_of(service), display_name(service)
    change = ServiceChange(operation="CREATE", namespace=namespace, name=name, service=service)
    return ServiceResult(
        source, namespace, name, decide(change, mode, policy, today=today), service
    )


def check_files(
    files: Sequence[ManifestFile], *, mode: Mode, policy: PolicySettings, today: datetime.date
) -> CheckResults:
    report = CheckResults()
    for manifest_file in files:
        for index, document in enumerate(manifest_file.documents, start=1):
            source = f"{manifest_file.source}#{index}"
            for found, kind in objects_in(document):
                if kind is None:
                    result = check_service(
                        found, source=source, mode=mode, policy=policy, today=today
                    )
                elif kind == INGRESS_KIND:
                    result = check_ingress(
                        found, source=source, mode=mode, policy=policy, today=today
                    )
                elif isinstance(kind, str):
                    result = check_gateway_api(
                        found, kind, source=source, mode=mode, policy=policy, today=today
                    )
                else:
                    result = check_workload(
                        found, kind, source=source, mode=mode, policy=policy, today=today
                    )
                report.results.append(result)
    return report


def fixed_documents(
    manifest_file: ManifestFile, report: CheckResults, policy: PolicySettings
) -> list[Any]:
    """The file's documents with every Service the report would change converted."""
    to_fix = {id(r.service) for r in report.results if r.needs_change}
    return [_replace_services(document, to_fix, policy) for document in manifest_file.documents]


def _replace_services(document: Any, to_fix: set[int], policy: PolicySettings) -> Any:
    """The document with the Services in `to_fix` (by identity) converted."""
    if not isinstance(document, dict):
        return document
    if id(document) in to_fix and (is_ingress(document) or gateway_api_kind(document)):
        return document  # denied, never converted: --fix leaves it for its author
    if id(document) in to_fix:
        kind = workload_kind_of(document)
        if kind is not None:
            return without_host_ports(document, kind, policy)
        return internalize(document, policy)
    items = document.get("items")
    if isinstance(items, list) and str(document.get("kind", "")).endswith("List"):
        return {**document, "items": [_replace_services(i, to_fix, policy) for i in items]}
    return document
