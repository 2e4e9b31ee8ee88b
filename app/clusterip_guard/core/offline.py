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
from clusterip_guard.core.decision import Decision, ServiceChange, decide
from clusterip_guard.core.policy import PolicySettings
from clusterip_guard.core.services import display_name, namespace_of
from clusterip_guard.core.types import Manifest, Mode

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
    service: Manifest = field(repr=False, compare=False)

    @property
    def needs_change(self) -> bool:
        return self.decision.verdict in ("denied", "mutated")


@dataclass
class CheckResults:
    results: list[ServiceResult] = field(default_factory=list)

    @property
    def needs_change(self) -> bool:
        return any(r.needs_change for r in self.results)


def services_in(document: Any) -> Iterator[Manifest]:
    """Every Service in a document, looking inside `List`s (v1 List, ServiceList, ...)."""
    if not isinstance(document, dict):
        return
    kind = document.get("kind")
    if kind == "Service" and str(document.get("apiVersion", "v1")) == "v1":
        yield document
    elif (
        isinstance(kind, str) and kind.endswith("List") and isinstance(document.get("items"), list)
    ):
        for item in document["items"]:
            yield from services_in(item)


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
            for service in services_in(document):
                report.results.append(
                    check_service(service, source=source, mode=mode, policy=policy, today=today)
                )
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
    if id(document) in to_fix:
        return internalize(document, policy)
    items = document.get("items")
    if isinstance(items, list) and str(document.get("kind", "")).endswith("List"):
        return {**document, "items": [_replace_services(i, to_fix, policy) for i in items]}
    return document
