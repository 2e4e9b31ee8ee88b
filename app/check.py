"""`clusterip-guard check`: offline evaluation of manifests (DESIGN §5).

Reading files is this module's edge; judging a Service is the same pure `decide` the webhook
uses, on the object as written (the API server's defaults are not applied offline).
"""

from __future__ import annotations

import datetime
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from app.conversion import internalize
from app.policy import Decision, ServiceChange, decide
from app.policy_file import PolicySettings
from app.types import Manifest, Mode

STDIN = "-"
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
DEFAULT_NAMESPACE = "default"


class InputError(ValueError):
    """A manifest cannot be read or parsed; the message is one line naming the source."""


@dataclass
class ManifestFile:
    """One source (a file or stdin) and the YAML documents in it."""

    source: str
    documents: list[Any]
    path: Path | None = None  # None for stdin


@dataclass(frozen=True)
class ServiceResult:
    source: str
    namespace: str
    name: str
    decision: Decision
    service: Manifest = field(repr=False, compare=False)

    @property
    def needs_change(self) -> bool:
        return self.decision.verdict in ("denied", "mutated")

    def as_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "kind": "Service",
            "namespace": self.namespace,
            "name": self.name,
            "source": self.source,
            "verdict": self.decision.verdict,
            "violations": [
                {"field": v.field, "message": v.message} for v in self.decision.violations
            ],
        }
        if self.decision.patch:
            result["patch"] = self.decision.patch
        if self.decision.denial:
            result["denial"] = self.decision.denial
        if self.decision.warnings:
            result["warnings"] = list(self.decision.warnings)
        return result


@dataclass
class CheckReport:
    results: list[ServiceResult] = field(default_factory=list)

    @property
    def needs_change(self) -> bool:
        return any(r.needs_change for r in self.results)


def read_manifests(paths: Iterable[str], stdin: TextIO | None = None) -> list[ManifestFile]:
    files: list[ManifestFile] = []
    for given in paths:
        if given == STDIN:
            text = (stdin or sys.stdin).read()
            files.append(ManifestFile(source="<stdin>", documents=_parse(text, "<stdin>")))
            continue
        path = Path(given)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in MANIFEST_SUFFIXES)
            files.extend(_read_file(p) for p in found if p.is_file())
        elif path.exists():
            files.append(_read_file(path))
        else:
            raise InputError(f"{given}: no such file or folder")
    return files


def _read_file(path: Path) -> ManifestFile:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot read: {error}") from error
    return ManifestFile(source=str(path), documents=_parse(text, str(path)), path=path)


def _parse(text: str, source: str) -> list[Any]:
    try:
        return [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise InputError(f"{source}{where}: not valid YAML: {problem}") from error


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
    service: Manifest,
    *,
    source: str,
    mode: Mode,
    policy: PolicySettings,
    today: datetime.date,
) -> ServiceResult:
    metadata = service.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    namespace = str(metadata.get("namespace") or DEFAULT_NAMESPACE)
    name = str(metadata.get("name") or metadata.get("generateName") or "<unnamed>")
    change = ServiceChange(operation="CREATE", namespace=namespace, name=name, service=service)
    decision = decide(change, mode, policy, today=today)
    return ServiceResult(source, namespace, name, decision, service)


def check_files(
    files: list[ManifestFile], *, mode: Mode, policy: PolicySettings, today: datetime.date
) -> CheckReport:
    report = CheckReport()
    for manifest_file in files:
        for index, document in enumerate(manifest_file.documents, start=1):
            source = f"{manifest_file.source}#{index}"
            for service in services_in(document):
                report.results.append(
                    check_service(service, source=source, mode=mode, policy=policy, today=today)
                )
    return report


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


def write_fixed(
    files: list[ManifestFile], policy: PolicySettings, report: CheckReport, stdout: TextIO
) -> list[str]:
    """Write converted manifests back: changed files in place (through YAML, so comments do
    not survive), and stdin always to stdout so `check --fix -` can sit in a pipeline.
    Returns the sources written."""
    to_fix = {id(r.service) for r in report.results if r.needs_change}
    written: list[str] = []
    for manifest_file in files:
        fixed = [_replace_services(doc, to_fix, policy) for doc in manifest_file.documents]
        if fixed == manifest_file.documents and manifest_file.path is not None:
            continue
        text = yaml.safe_dump_all(fixed, sort_keys=False, explicit_start=len(fixed) > 1)
        if manifest_file.path is None:
            stdout.write(text)
        else:
            try:
                manifest_file.path.write_text(text, encoding="utf-8")
            except OSError as error:
                raise InputError(f"{manifest_file.path}: cannot write: {error}") from error
        written.append(manifest_file.source)
    return written


def render_table(report: CheckReport) -> str:
    header = ("SOURCE", "NAMESPACE", "NAME", "VERDICT", "FINDING")
    rows: list[tuple[str, ...]] = []
    for r in report.results:
        findings = [v.detail for v in r.decision.violations] or ["-"]
        for finding in findings:
            rows.append((r.source, r.namespace, r.name, r.decision.verdict, finding))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = [
        "  ".join(
            [*(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)), row[-1]]
        ).rstrip()
        for row in [header, *rows]
    ]
    counts: dict[str, int] = {}
    for r in report.results:
        counts[r.decision.verdict] = counts.get(r.decision.verdict, 0) + 1
    summary = ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items()))
    noun = "Service" if len(report.results) == 1 else "Services"
    lines.append(f"{len(report.results)} {noun} checked" + (f": {summary}" if summary else ""))
    return "\n".join(lines) + "\n"


def render_json(report: CheckReport) -> str:
    return json.dumps([r.as_json() for r in report.results], indent=2) + "\n"
