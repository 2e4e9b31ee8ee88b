"""The `scan` use case (`scan_cluster`): what it reads from the cluster, and when it writes
the reports back (docs/design.md, "Reporting what exists (scan)"; the writing itself is
cluster/report_store.py).

Memory is bounded by design, not by the cluster's size: every list (Services, each kind of
workload, Ingresses, this tool's reports) is read a page at a time through one pager
(cluster/listing.py), and the lists are merged one namespace at a time in the API server's
order (core/listing_order.py). Each namespace is judged, printed and written before the next
is read, so a scan holds one page of each list and one namespace's findings and reports, plus
one line per namespace for the cluster-wide report. Reads skip the typed models (raw JSON is
several times faster on 10,000 Services). Writing creates, updates and prunes only this
tool's reports (by label), writes nothing when nothing changed, and retries on conflicts, so
that two scanners at once leave one consistent set.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from clusterip_guard.cluster.client import read_or_none
from clusterip_guard.cluster.errors import ClusterError
from clusterip_guard.cluster.limits import MemoryWatch
from clusterip_guard.cluster.listing import (
    PAGE_SIZE,
    Listing,
    gateway_api_listings,
    ingress_listing,
    namespace_listing,
    pages,
    service_listing,
    workload_listings,
)
from clusterip_guard.cluster.mode_admins import read_mode_admins
from clusterip_guard.cluster.report_store import ReportWriter, WriteSummary, write_namespace_reports
from clusterip_guard.cluster.served_apis import ServedKind
from clusterip_guard.cluster.serviceranges import read_service_ranges
from clusterip_guard.core.admission import default_mode_of
from clusterip_guard.core.listing_order import OutOfOrder, by_namespace
from clusterip_guard.core.mode_admins import ModeAdminGrant
from clusterip_guard.core.names import CONFIGURATION_NAME
from clusterip_guard.core.policy import PolicySettings
from clusterip_guard.core.reports import (
    ReportFormat,
    cluster_reports,
    namespace_reports,
    namespace_result,
)
from clusterip_guard.core.scan import Finding, Judge, NamespaceInfo, Tally, in_report_order
from clusterip_guard.core.types import Manifest, Mode
from clusterip_guard.policyfile import PolicyHolder
from clusterip_guard.telemetry.metrics import ScanMetrics

log = logging.getLogger("clusterip_guard.scan")


def read_namespaces(
    api: client.ApiClient, selector: str | None = None, page_size: int = PAGE_SIZE
) -> list[NamespaceInfo]:
    """The namespaces (names and labels: one small entry each, what the modes need)."""
    return [
        NamespaceInfo(item["metadata"]["name"], item["metadata"].get("labels") or {})
        for item in pages(
            dataclasses.replace(namespace_listing(api, selector), page_size=page_size)
        )
    ]


def read_namespace(api: client.ApiClient, name: str) -> NamespaceInfo:
    core = client.CoreV1Api(api)
    found = read_or_none("get", "namespaces", None, functools.partial(core.read_namespace, name))
    if found is None:
        raise ClusterError(f"namespace {name} does not exist")
    labels = found.metadata.labels if found.metadata is not None else None
    return NamespaceInfo(name, labels or {})


def judged_objects(
    api: client.ApiClient, judge: Judge, namespace: str | None = None, page_size: int = PAGE_SIZE
) -> list[Iterator[tuple[str, Finding]]]:
    """Every Service, workload, Ingress, Gateway and route (or a namespace's), each list
    judged as it is paged: (namespace, finding), in the API server's order."""

    def judged(
        listing: Listing, judging: Callable[[Manifest], Finding | None]
    ) -> Iterator[tuple[str, Finding]]:
        for item in pages(dataclasses.replace(listing, page_size=page_size)):
            finding = judging(item)
            if finding is not None:
                yield finding.namespace.namespace, finding

    streams = [judged(service_listing(api, namespace), judge.service)]
    streams += [
        judged(listing, functools.partial(judge.workload, kind))
        for kind, listing in workload_listings(api, namespace)
    ]
    streams.append(judged(ingress_listing(api, namespace), judge.ingress))
    streams += [
        judged(listing, functools.partial(_judge_gateway_api, judge, served))
        for served, listing in gateway_api_listings(api, namespace)
    ]
    return streams


def _judge_gateway_api(judge: Judge, served: ServedKind, item: Manifest) -> Finding:
    """A Gateway or route of a list (whose items carry no kind), stamped as served."""
    item.setdefault("apiVersion", f"{served.group}/{served.version}")
    item.setdefault("kind", served.kind)
    return judge.gateway_api(item)


def registered_default_mode(api: client.ApiClient, configuration_name: str) -> Mode | None:
    """The cluster default mode the registered webhook configurations say (which `*-default`
    entries they have), or None when clusterip-guard is not registered."""
    admission = client.AdmissionregistrationV1Api(api)
    validating = read_or_none(
        "get",
        "validatingwebhookconfigurations",
        None,
        functools.partial(admission.read_validating_webhook_configuration, configuration_name),
    )
    if validating is None:
        return None
    return default_mode_of({webhook.name for webhook in validating.webhooks or []})


@dataclass(frozen=True)
class ScanScope:
    """What one scan looks at, and whether it writes reports."""

    namespace: str | None = None  # None: every namespace
    selector: str | None = None  # a label selector on namespaces
    # None: what the registered webhook configurations say (off when none is registered).
    default_mode: Mode | None = None
    configuration_name: str = CONFIGURATION_NAME
    what_if: Mode | None = None
    write_reports: bool = False
    report_formats: tuple[ReportFormat, ...] = ("wgpolicyk8s",)
    page_size: int = PAGE_SIZE  # objects per list request (reports: at most REPORT_PAGE_SIZE)


@dataclass
class ScanOutcome:
    tally: Tally  # what was found, counted (the findings went to `on_findings`)
    written: list[str]  # one line per report written, updated, pruned or left unchanged
    failed: list[str] = field(default_factory=list)  # reports not written, one line each
    # ServiceAccounts of tenant namespaces that may set the mode (core/mode_admins.py);
    # None when RBAC could not be read (the scanner may not list it).
    mode_admins: list[ModeAdminGrant] | None = None

    @property
    def fails(self) -> int:
        return self.tally.results["fail"] + len(self.mode_admins or [])


@dataclass
class _Reports:
    """One format's writing during a scan: its writer, what it did, and the cluster-wide
    report's results so far (one per namespace)."""

    writer: ReportWriter
    summary: WriteSummary = field(default_factory=WriteSummary)
    namespace_results: list[Manifest] = field(default_factory=list)


def scan_cluster(
    api: client.ApiClient,
    scope: ScanScope,
    policy: PolicySettings,
    *,
    on_findings: Callable[[Sequence[Finding]], None] = lambda findings: None,
    sleep: Callable[[float], None] = time.sleep,
) -> ScanOutcome:
    """The `scan` use case: judge the Services, workloads, Ingresses,
    Gateways and routes (where served) in scope one namespace
    at a time, hand each namespace's findings to `on_findings` (in namespace order, each sorted
    by name and kind), and (if asked) write that namespace's reports before reading the next;
    prune only inside the scope."""
    default_mode = scope.default_mode
    if default_mode is None:
        default_mode = registered_default_mode(api, scope.configuration_name) or "off"
    if scope.namespace is not None:
        namespaces = [read_namespace(api, scope.namespace)]
    else:
        namespaces = read_namespaces(api, scope.selector, scope.page_size)
    chosen = {ns.name for ns in namespaces} if scope.selector else None
    now = datetime.datetime.now(datetime.UTC)
    # External IPs inside the Service range are judged as admission judges them.
    policy = dataclasses.replace(policy, service_ranges=read_service_ranges(api))
    judge = Judge.of(
        namespaces, default_mode=default_mode, policy=policy, today=now.date(),
        what_if=scope.what_if,
    )  # fmt: skip
    streams: list[Iterator[tuple[str, Any]]] = list(
        judged_objects(api, judge, scope.namespace, scope.page_size)
    )
    objects = len(streams)
    writing = (
        [_Reports(ReportWriter(api, f)) for f in scope.report_formats]
        if scope.write_reports
        else []
    )
    streams += [
        ((r["metadata"].get("namespace", ""), r) for r in w.writer.stored(
            cluster=False, namespace=scope.namespace, page_size=scope.page_size))
        for w in writing
    ]  # fmt: skip
    tally = Tally()
    memory = MemoryWatch()
    try:
        for namespace, group in by_namespace(streams):
            findings: list[Finding] = []
            stored: list[list[Manifest]] = [[] for _ in writing]
            for index, item in group:
                if index < objects:
                    findings.append(item)
                else:
                    stored[index - objects].append(item)
            if chosen is not None and namespace not in chosen:
                continue  # outside the selector: neither judged nor pruned
            findings = in_report_order(findings)
            tally.add(findings)
            on_findings(findings)
            for reports, stored_here in zip(writing, stored, strict=True):
                wanted = namespace_reports(
                    namespace, findings, report_format=reports.writer.report_format, now=now
                )
                write_namespace_reports(reports.writer, wanted, stored_here, reports.summary,
                                        sleep=sleep)  # fmt: skip
                if findings:
                    reports.namespace_results.append(
                        namespace_result(findings[0].namespace, findings, now)
                    )
            memory.check(namespace)
    except OutOfOrder as error:
        raise ClusterError(f"cannot scan one namespace at a time: {error}") from None
    whole_cluster = scope.namespace is None and not scope.selector
    written: list[str] = []
    failed: list[str] = []
    for reports in writing:
        if whole_cluster:
            wanted = cluster_reports(
                reports.namespace_results, report_format=reports.writer.report_format
            )
            stored_reports = list(reports.writer.stored(cluster=True, page_size=scope.page_size))
            write_namespace_reports(reports.writer, wanted, stored_reports, reports.summary,
                                    sleep=sleep)  # fmt: skip
        written += reports.summary.lines()
        failed += reports.summary.failed
    mode_admins = read_mode_admins(api) if scope.namespace is None else None
    return ScanOutcome(tally, written, failed, mode_admins)


def scan_and_record(
    api: client.ApiClient, scope: ScanScope, policy: PolicyHolder, metrics: ScanMetrics
) -> ScanOutcome:
    """One scan of `scan --watch`: the policy file reloaded if it changed, the scan, its
    figures in the metrics and one log line. A failed scan is counted, then raised."""
    started = time.monotonic()
    policy.reload_if_changed()
    try:
        outcome = scan_cluster(api, scope, policy.current)
    except Exception:
        metrics.scans.labels("error").inc()
        raise
    metrics.record(outcome.tally.exposed, ended=time.time(), seconds=time.monotonic() - started)
    metrics.report_write_failures.inc(len(outcome.failed))
    changes = [line for line in outcome.written if not line.endswith("unchanged")]
    log.info(
        "scanned %d Services: %d fail%s",
        outcome.tally.objects, outcome.fails,
        "; " + ", ".join(changes) if changes else "; reports unchanged",
    )  # fmt: skip
    return outcome
