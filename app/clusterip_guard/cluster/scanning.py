"""The `scan` use case (`scan_cluster`): what it reads from the cluster, and the reports it
writes back (docs/design.md, "Reporting what exists (scan)").

Reads page through large lists (`limit`/`continue`) and skip the typed models (raw JSON is
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
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml
from kubernetes import client

from clusterip_guard.cluster.client import call, read_or_none
from clusterip_guard.cluster.errors import ClusterError
from clusterip_guard.cluster.listing import (
    pages,
    read_gateway_api,
    read_ingresses,
    read_workloads,
)
from clusterip_guard.cluster.mode_admins import read_mode_admins
from clusterip_guard.cluster.serviceranges import read_service_ranges
from clusterip_guard.cluster.writing import ObjectAPI, write_object
from clusterip_guard.core.admission import default_mode_of
from clusterip_guard.core.mode_admins import ModeAdminGrant
from clusterip_guard.core.names import CONFIGURATION_NAME, MANAGED_BY_LABEL
from clusterip_guard.core.policy import PolicySettings
from clusterip_guard.core.reports import (
    MANAGED_BY,
    REPORT_KINDS,
    ReportFormat,
    build_reports,
    carry_timestamps,
)
from clusterip_guard.core.scan import Finding, NamespaceInfo, scan
from clusterip_guard.core.types import Manifest, Mode
from clusterip_guard.policyfile import PolicyHolder
from clusterip_guard.telemetry.metrics import ScanMetrics

log = logging.getLogger("clusterip_guard.scan")


HTTP_NOT_FOUND = 404


def read_namespaces(api: client.ApiClient, selector: str | None = None) -> list[NamespaceInfo]:
    core = client.CoreV1Api(api)
    query = {"label_selector": selector} if selector else {}
    return [
        NamespaceInfo(item["metadata"]["name"], item["metadata"].get("labels") or {})
        for item in pages("list", "namespaces", None, core.list_namespace, **query)
    ]


def read_namespace(api: client.ApiClient, name: str) -> NamespaceInfo:
    core = client.CoreV1Api(api)
    found = read_or_none("get", "namespaces", None, functools.partial(core.read_namespace, name))
    if found is None:
        raise ClusterError(f"namespace {name} does not exist")
    labels = found.metadata.labels if found.metadata is not None else None
    return NamespaceInfo(name, labels or {})


def read_services(api: client.ApiClient, namespace: str | None = None) -> list[Manifest]:
    """Every Service, or a namespace's, as the API server stores them (plain dicts)."""
    core = client.CoreV1Api(api)
    if namespace is None:
        return list(pages("list", "services", None, core.list_service_for_all_namespaces))
    return list(
        pages(
            "list",
            "services",
            namespace,
            functools.partial(core.list_namespaced_service, namespace),
        )
    )


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


# --- reports ------------------------------------------------------------------------------------


@dataclass
class WriteSummary:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "<report>: <why>", after its retries

    def lines(self) -> list[str]:
        return [
            *(f"created {name}" for name in self.created),
            *(f"updated {name}" for name in self.updated),
            *(f"pruned {name}" for name in self.pruned),
            *(f"failed {line}" for line in self.failed),
            f"{len(self.unchanged)} reports unchanged",
        ]


# A write refused for a passing reason (a conflict the writer could not settle, a timeout, an
# API server restarting) is tried again, this many times, after these pauses.
WRITE_RETRY_PAUSES: tuple[float, ...] = (0.2, 1.0)


def attempt(
    what: str,
    write: Callable[[], None],
    summary: WriteSummary,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """One report's write, retried; a failure after the retries is recorded and logged in one
    line, never raised: one report must not stop the others."""
    for pause in (*WRITE_RETRY_PAUSES, None):
        try:
            write()
            return
        except ClusterError as error:
            if pause is None:
                summary.failed.append(f"{what}: {error}")
                log.warning("report not written after %d tries: %s: %s",
                            len(WRITE_RETRY_PAUSES) + 1, what, error)  # fmt: skip
                return
            sleep(pause)


def _where(manifest: Manifest) -> str:
    metadata = manifest["metadata"]
    namespace = metadata.get("namespace")
    where = f"{namespace}/" if namespace else ""
    return f"{manifest['kind']} {where}{metadata['name']}"


class ReportWriter:
    """Creates, updates and prunes this tool's reports of one format."""

    def __init__(self, api: client.ApiClient, report_format: ReportFormat) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.kind = REPORT_KINDS[report_format]

    def _plural(self, manifest: Manifest) -> str:
        namespaced = "namespace" in manifest["metadata"]
        return self.kind.plural if namespaced else self.kind.cluster_plural

    def existing(self, cluster: bool) -> dict[tuple[str, str], Manifest]:
        """This tool's reports (by label), by (namespace, name)."""
        plural = self.kind.cluster_plural if cluster else self.kind.plural
        found = read_or_none(
            "list",
            f"{plural}.{self.kind.group}",
            None,
            functools.partial(
                self.custom.list_cluster_custom_object,
                self.kind.group,
                self.kind.version,
                plural,
                label_selector=f"{MANAGED_BY_LABEL}={MANAGED_BY}",
            ),
        )
        if found is None:  # the API server knows no such resource
            raise ClusterError(
                f"the cluster has no {plural}.{self.kind.group} (CRD missing): add "
                "--install-crds, or install Kyverno or the report CRDs first"
            )
        items: list[Manifest] = (found.get("items") or []) if isinstance(found, dict) else []
        return {
            (item["metadata"].get("namespace", ""), item["metadata"]["name"]): item
            for item in items
        }

    def _request(self, action: str, manifest: Manifest, *rest: Any) -> Callable[[], Any]:
        """One custom-objects call (get, create, replace, delete) on this report, namespaced
        or cluster-scoped as it is."""
        namespace = manifest["metadata"].get("namespace")
        scope = "namespaced" if namespace else "cluster"
        method = getattr(self.custom, f"{action}_{scope}_custom_object")
        where = (namespace,) if namespace else ()
        return functools.partial(
            method, self.kind.group, self.kind.version, *where, self._plural(manifest), *rest
        )

    def _resource(self, manifest: Manifest) -> str:
        return f"{self._plural(manifest)}.{self.kind.group}"

    def write(self, manifest: Manifest, existing: Manifest | None, summary: WriteSummary) -> None:
        """Create or update one report, unless it already says the same (a result keeps its
        timestamp while it says the same); conflicts as every write of ours (cluster.writing)."""
        metadata = manifest["metadata"]
        written = write_object(
            ObjectAPI(
                resource=self._resource(manifest),
                namespace=metadata.get("namespace"),
                read=self._request("get", manifest, metadata["name"]),
                create=lambda body: self._request("create", body, body)(),
                replace=lambda body: self._request("replace", body, metadata["name"], body)(),
            ),
            manifest,
            prepare=carry_timestamps,
            stored=existing,
        )
        getattr(summary, written).append(_where(manifest))

    def delete(self, manifest: Manifest, summary: WriteSummary) -> None:
        metadata = manifest["metadata"]
        delete = self._request("delete", manifest, metadata["name"])
        # Gone already (another scanner pruned it) is as good as pruned.
        read_or_none("delete", self._resource(manifest), metadata.get("namespace"), delete)
        summary.pruned.append(_where(manifest))


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


@dataclass
class ScanOutcome:
    findings: list[Finding]
    written: list[str]  # one line per report written, updated, pruned or left unchanged
    failed: list[str] = field(default_factory=list)  # reports not written, one line each
    # ServiceAccounts of tenant namespaces that may set the mode (core/mode_admins.py);
    # None when RBAC could not be read (the scanner may not list it).
    mode_admins: list[ModeAdminGrant] | None = None

    @property
    def fails(self) -> int:
        return sum(1 for f in self.findings if f.result == "fail") + len(self.mode_admins or [])


def scan_cluster(api: client.ApiClient, scope: ScanScope, policy: PolicySettings) -> ScanOutcome:
    """The `scan` use case: read the namespaces, Services, workloads, Ingresses, Gateways and
    routes (where served) in scope, judge them with the core, and (if asked) write the reports,
    pruning only inside the scope."""
    default_mode = scope.default_mode
    if default_mode is None:
        default_mode = registered_default_mode(api, scope.configuration_name) or "off"
    if scope.namespace is not None:
        namespaces = [read_namespace(api, scope.namespace)]
        services = read_services(api, scope.namespace)
        workloads = read_workloads(api, scope.namespace)
        ingresses = read_ingresses(api, scope.namespace)
        gateway_api = read_gateway_api(api, scope.namespace)
    else:
        namespaces = read_namespaces(api, scope.selector)
        services = read_services(api)
        workloads = read_workloads(api)
        ingresses = read_ingresses(api)
        gateway_api = read_gateway_api(api)
        if scope.selector:
            chosen = {ns.name for ns in namespaces}
            services = [s for s in services if s["metadata"].get("namespace") in chosen]
            workloads = [w for w in workloads if w[1]["metadata"].get("namespace") in chosen]
            ingresses = [i for i in ingresses if i["metadata"].get("namespace") in chosen]
            gateway_api = [g for g in gateway_api if g["metadata"].get("namespace") in chosen]
    now = datetime.datetime.now(datetime.UTC)
    # External IPs inside the Service range are judged as admission judges them.
    policy = dataclasses.replace(policy, service_ranges=read_service_ranges(api))
    findings = scan(
        namespaces, services, default_mode=default_mode, policy=policy, today=now.date(),
        what_if=scope.what_if, workloads=workloads, ingresses=ingresses, gateway_api=gateway_api,
    )  # fmt: skip
    written: list[str] = []
    failed: list[str] = []
    if scope.write_reports:
        whole_cluster = scope.namespace is None and not scope.selector
        pruned_in = None if whole_cluster else {ns.name for ns in namespaces}
        for report_format in scope.report_formats:
            reports = build_reports(findings, report_format=report_format, now=now)
            summary = write_reports(api, reports, report_format, scope=pruned_in)
            written += summary.lines()
            failed += summary.failed
    mode_admins = read_mode_admins(api) if scope.namespace is None else None
    return ScanOutcome(findings, written, failed, mode_admins)


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
    exposed: Counter[tuple[str, str, str]] = Counter(
        (f.namespace.namespace, f.namespace.mode, f.result) for f in outcome.findings if f.exposed
    )
    metrics.record(dict(exposed), ended=time.time(), seconds=time.monotonic() - started)
    metrics.report_write_failures.inc(len(outcome.failed))
    changes = [line for line in outcome.written if not line.endswith("unchanged")]
    log.info(
        "scanned %d Services: %d fail%s",
        len(outcome.findings), outcome.fails,
        "; " + ", ".join(changes) if changes else "; reports unchanged",
    )  # fmt: skip
    return outcome


def write_reports(
    api: client.ApiClient,
    reports: Sequence[Manifest],
    report_format: ReportFormat,
    *,
    scope: set[str] | None,
    sleep: Callable[[float], None] = time.sleep,
) -> WriteSummary:
    """Make the cluster's reports of this format what `reports` say. `scope`: the namespaces
    scanned (None: all); reports of other namespaces are left alone, and the cluster-scoped
    report is written only when every namespace was scanned."""
    writer = ReportWriter(api, report_format)
    summary = WriteSummary()
    namespaced = writer.existing(cluster=False)
    cluster = writer.existing(cluster=True) if scope is None else {}
    wanted_keys = set()
    for report in reports:
        metadata = report["metadata"]
        is_cluster = "namespace" not in metadata
        if is_cluster and scope is not None:
            continue
        key = (metadata.get("namespace", ""), metadata["name"])
        wanted_keys.add((is_cluster, key))
        existing = (cluster if is_cluster else namespaced).get(key)
        attempt(
            _where(report),
            functools.partial(writer.write, report, existing, summary),
            summary,
            sleep=sleep,
        )
    stale = [
        existing
        for key, existing in sorted(namespaced.items())
        if (False, key) not in wanted_keys and (scope is None or key[0] in scope)
    ]
    stale += [
        existing for key, existing in sorted(cluster.items()) if (True, key) not in wanted_keys
    ]
    for existing in stale:
        attempt(
            f"prune {_where(existing)}",
            functools.partial(writer.delete, existing, summary),
            summary,
            sleep=sleep,
        )
    return summary


# --- CRDs ---------------------------------------------------------------------------------------


def shipped_crds(report_format: ReportFormat) -> list[Manifest]:
    """The CRDs of one report format, as shipped in the package (crds/README.md)."""
    group = REPORT_KINDS[report_format].group
    folder = resources.files("clusterip_guard") / "crds"
    return [
        yaml.safe_load(entry.read_text())
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.startswith(f"{group}_") and entry.name.endswith(".yaml")
    ]


def install_crds(api: client.ApiClient, report_format: ReportFormat) -> list[str]:
    """Create the report CRDs a cluster lacks; one that exists (Kyverno's) is left as is."""
    extensions = client.ApiextensionsV1Api(api)
    said = []
    for crd in shipped_crds(report_format):
        name = crd["metadata"]["name"]
        resource = "customresourcedefinitions"
        found = read_or_none(
            "get",
            resource,
            None,
            functools.partial(extensions.read_custom_resource_definition, name),
        )
        if found is not None:
            said.append(f"CRD {name} exists, kept")
            continue
        call(
            "create",
            resource,
            None,
            functools.partial(extensions.create_custom_resource_definition, _crd_body(crd)),
        )
        said.append(f"created CRD {name}")
    return said


def _crd_body(crd: Manifest) -> client.V1CustomResourceDefinition:
    body = client.V1CustomResourceDefinition.from_dict(crd)
    if body is None:
        raise ClusterError(f"CRD {crd['metadata']['name']} could not be read")
    return body
