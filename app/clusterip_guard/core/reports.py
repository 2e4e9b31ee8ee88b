"""Findings as the reports the policy ecosystem reads (docs/design.md, "Reporting what exists
(scan)"). Pure: findings in, manifests out.

Two formats with the same shape: `wgpolicyk8s.io/v1alpha2` PolicyReport and
ClusterPolicyReport (what Kyverno and Policy Reporter read today), and `openreports.io/v1alpha1`
Report and ClusterReport (their successor). Per namespace one report with one result per
Service, pass and fail alike, so that a fixed Service is seen to pass; one cluster-scoped
report with one result per namespace.

A report holds at most `MAX_RESULTS` results and `MAX_REPORT_BYTES` of them: a namespace with
more Services gets as many reports as it needs (`clusterip-guard`, `clusterip-guard-2`, ...,
Services in name order), each well under what etcd stores in one object (1.5 MiB by default;
at about 700 bytes a result, one report broke near 2,200 Services). Reports, rather than one
object per Service as Kubewarden moved to: 5,000 Services make 10 objects, not 5,000, for the
API server to keep and every report reader to watch.

A result keeps the timestamp of the report it replaces while it says the same thing, so the
timestamp says since when, and a scan that finds nothing new changes nothing.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from clusterip_guard.core.gateways import GATEWAY_KIND, ROUTE_KIND_NAMES
from clusterip_guard.core.listing_order import listing_key
from clusterip_guard.core.names import MANAGED_BY_LABEL, NAME_LABEL, PROJECT
from clusterip_guard.core.scan import RESULTS, Finding, NamespaceMode, Result, summary
from clusterip_guard.core.types import Manifest

ReportFormat = Literal["wgpolicyk8s", "openreports"]
REPORT_FORMATS: tuple[ReportFormat, ...] = ("wgpolicyk8s", "openreports")

REPORT_NAME = PROJECT  # one per namespace, and the cluster-scoped one
SOURCE = PROJECT
POLICY = PROJECT
SERVICE_RULE = "services-stay-internal"
WORKLOAD_RULE = "pods-open-no-host-ports"
INGRESS_RULE = "ingresses-use-allowed-classes"
GATEWAY_RULE = "gateways-use-allowed-classes"
ROUTE_RULE = "routes-attach-to-allowed-gateways"
NAMESPACE_RULE = "namespace-summary"
# The rule a finding's kind is reported under; Pods and workloads under WORKLOAD_RULE.
_RULES = {
    "Service": SERVICE_RULE,
    "Ingress": INGRESS_RULE,
    GATEWAY_KIND: GATEWAY_RULE,
    **dict.fromkeys(ROUTE_KIND_NAMES, ROUTE_RULE),
}
CATEGORY = "Service exposure"
MANAGED_BY = PROJECT  # the label value reports carry, so a scan finds (and prunes) its own


@dataclass(frozen=True)
class ReportKind:
    api_version: str
    namespaced: str  # the kind of the per-namespace report
    cluster: str  # the kind of the cluster-scoped one
    plural: str
    cluster_plural: str

    @property
    def group(self) -> str:
        return self.api_version.split("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.split("/")[1]


REPORT_KINDS: dict[ReportFormat, ReportKind] = {
    "wgpolicyk8s": ReportKind(
        "wgpolicyk8s.io/v1alpha2",
        "PolicyReport",
        "ClusterPolicyReport",
        "policyreports",
        "clusterpolicyreports",
    ),
    "openreports": ReportKind(
        "openreports.io/v1alpha1", "Report", "ClusterReport", "reports", "clusterreports"
    ),
}


def _timestamp(now: datetime.datetime) -> dict[str, int]:
    return {"seconds": int(now.timestamp()), "nanos": 0}


def service_result(finding: Finding, now: datetime.datetime) -> Manifest:
    properties = {"mode": finding.namespace.describe()}
    if finding.service_type:
        properties["type"] = finding.service_type
    properties["enforce"] = finding.enforce
    if finding.mutate:
        properties["mutate"] = ", ".join(finding.mutate)
    if finding.exemption:
        properties["exemption"] = finding.exemption
    resource: dict[str, str] = {
        "apiVersion": finding.api_version,
        "kind": finding.kind,
        "namespace": finding.namespace.namespace,
        "name": finding.name,
    }
    if finding.uid:
        resource["uid"] = finding.uid
    return {
        "source": SOURCE,
        "policy": POLICY,
        "rule": _RULES.get(finding.kind, WORKLOAD_RULE),
        "category": CATEGORY,
        "result": finding.result,
        "severity": finding.severity,
        "scored": True,
        "message": finding.message,
        "properties": properties,
        "resources": [resource],
        "timestamp": _timestamp(now),
    }


def _worst(results: Iterable[Result]) -> Result:
    found = set(results)
    for result in ("fail", "warn", "pass", "skip"):
        if result in found:
            return result
    return "pass"


def namespace_result(
    namespace: NamespaceMode, findings: Sequence[Finding], now: datetime.datetime
) -> Manifest:
    counts = summary(findings)
    exposed = sum(1 for f in findings if f.exposed)
    noun = "Service" if all(f.kind == "Service" for f in findings) else "object"
    noun += "" if len(findings) == 1 else "s"
    return {
        "source": SOURCE,
        "policy": POLICY,
        "rule": NAMESPACE_RULE,
        "category": CATEGORY,
        "result": _worst(f.result for f in findings),
        "severity": max(
            (f.severity for f in findings), key=["info", "medium", "high"].index, default="info"
        ),
        "scored": True,
        "message": f"{exposed} of {len(findings)} {noun} exposed; mode {namespace.describe()}",
        "properties": {"mode": namespace.describe(), **{k: str(v) for k, v in counts.items()}},
        "resources": [{"apiVersion": "v1", "kind": "Namespace", "name": namespace.namespace}],
        "timestamp": _timestamp(now),
    }


def _metadata(name: str, namespace: str | None) -> Manifest:
    metadata: Manifest = {
        "name": name,
        "labels": {MANAGED_BY_LABEL: MANAGED_BY, NAME_LABEL: PROJECT},
    }
    if namespace is not None:
        metadata["namespace"] = namespace
    return metadata


def _report(
    kind: ReportKind, cluster: bool, namespace: str | None, results: list[Manifest]
) -> Manifest:
    counts: dict[str, int] = dict.fromkeys(RESULTS, 0)
    for result in results:
        counts[result["result"]] += 1
    report: Manifest = {
        "apiVersion": kind.api_version,
        "kind": kind.cluster if cluster else kind.namespaced,
        "metadata": _metadata(REPORT_NAME, namespace),
        "summary": {**counts, "error": 0},
        "results": results,
    }
    if kind.group == "openreports.io":
        report["source"] = SOURCE
    return report


# A report's share of etcd's 1.5 MiB object limit: a third, leaving room for what the API
# server adds (managedFields) and for results that grow.
MAX_RESULTS = 1000
MAX_REPORT_BYTES = 512 * 1024


def report_name(part: int) -> str:
    """The name of a namespace's `part`-th report (0: the first)."""
    return REPORT_NAME if part == 0 else f"{REPORT_NAME}-{part + 1}"


def split_results(
    results: Sequence[Manifest],
    *,
    max_results: int = MAX_RESULTS,
    max_bytes: int = MAX_REPORT_BYTES,
) -> list[list[Manifest]]:
    """`results` in order, cut into parts of at most `max_results` results and `max_bytes` of
    JSON each (a part holds at least one result); one empty part when there are none."""
    parts: list[list[Manifest]] = [[]]
    size = 0
    for result in results:
        length = len(json.dumps(result, separators=(",", ":")))
        if parts[-1] and (len(parts[-1]) >= max_results or size + length > max_bytes):
            parts.append([])
            size = 0
        parts[-1].append(result)
        size += length
    return parts


def _reports(
    kind: ReportKind, cluster: bool, namespace: str | None, results: list[Manifest]
) -> list[Manifest]:
    reports = []
    for part, results_of_part in enumerate(split_results(results)):
        report = _report(kind, cluster, namespace, results_of_part)
        report["metadata"]["name"] = report_name(part)
        reports.append(report)
    return reports


def namespace_reports(
    namespace: str,
    findings: Sequence[Finding],
    *,
    report_format: ReportFormat,
    now: datetime.datetime,
) -> list[Manifest]:
    """One namespace's reports: its findings (sorted by name and kind) as results, split into
    parts that each fit in etcd; none when it has no findings."""
    if not findings:
        return []
    found = sorted(findings, key=lambda f: (f.name, f.kind))
    results = [service_result(f, now) for f in found]
    return _reports(REPORT_KINDS[report_format], False, namespace, results)


def cluster_reports(
    namespace_results: Sequence[Manifest], *, report_format: ReportFormat
) -> list[Manifest]:
    """The cluster-scoped reports: one result per namespace that has findings
    (`namespace_result`), in namespace order."""
    return _reports(REPORT_KINDS[report_format], True, None, list(namespace_results))


def build_reports(
    findings: Sequence[Finding], *, report_format: ReportFormat, now: datetime.datetime
) -> list[Manifest]:
    """The reports of each namespace that has Services (results sorted by Service name, split
    into parts that each fit in etcd), then the cluster-scoped ones (one result per namespace
    that has Services, in the mode its findings carry)."""
    by_namespace: dict[str, list[Finding]] = {}
    for finding in findings:
        by_namespace.setdefault(finding.namespace.namespace, []).append(finding)
    reports = []
    cluster_results = []
    for namespace in sorted(by_namespace, key=listing_key):  # as a streaming scan meets them
        found = by_namespace[namespace]
        reports += namespace_reports(namespace, found, report_format=report_format, now=now)
        cluster_results.append(namespace_result(found[0].namespace, found, now))
    return reports + cluster_reports(cluster_results, report_format=report_format)


def _result_identity(result: Mapping[str, Any]) -> str:
    """A result says the same thing as another when all but its timestamp is equal."""
    return json.dumps({k: v for k, v in result.items() if k != "timestamp"}, sort_keys=True)


def carry_timestamps(new: Manifest, existing: Mapping[str, Any] | None) -> Manifest:
    """`new` with each result that says what a result of `existing` said keeping that one's
    timestamp: since when it has been so."""
    if not existing:
        return new
    old_results = existing.get("results") or []
    since = {
        _result_identity(r): r.get("timestamp")
        for r in old_results
        if isinstance(r, Mapping) and r.get("timestamp")
    }
    results = [
        {**r, "timestamp": since.get(_result_identity(r), r["timestamp"])} for r in new["results"]
    ]
    return {**new, "results": results}
