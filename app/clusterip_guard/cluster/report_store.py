"""The reports `scan` writes back (docs/design.md, "Reporting what exists (scan)"): this
tool's reports as stored (listed a few at a time), each created, updated or pruned by the one
writer of objects (cluster/writing.py), written only when it says something new, each write
retried and a failure recorded rather than raised; and the report CRDs `scan --install-crds`
creates.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml
from kubernetes import client

from clusterip_guard.cluster.client import call, read_or_none
from clusterip_guard.cluster.errors import ClusterError
from clusterip_guard.cluster.listing import Listing, pages
from clusterip_guard.cluster.writing import ObjectAPI, write_object
from clusterip_guard.core.names import MANAGED_BY_LABEL
from clusterip_guard.core.reports import MANAGED_BY, REPORT_KINDS, ReportFormat, carry_timestamps
from clusterip_guard.core.types import Manifest

log = logging.getLogger("clusterip_guard.scan")

# Reports are listed a few at a time: one may be half a MiB (core/reports.py, MAX_REPORT_BYTES).
REPORT_PAGE_SIZE = 10


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
        self.report_format = report_format
        self.kind = REPORT_KINDS[report_format]

    def _plural(self, manifest: Manifest) -> str:
        namespaced = "namespace" in manifest["metadata"]
        return self.kind.plural if namespaced else self.kind.cluster_plural

    def stored(
        self, *, cluster: bool, namespace: str | None = None, page_size: int = REPORT_PAGE_SIZE
    ) -> Iterator[Manifest]:
        """This tool's reports (by label) as stored, a few at a time (a report may be half a
        MiB): the namespaced ones of every namespace or of one, or the cluster-scoped ones."""
        plural = self.kind.cluster_plural if cluster else self.kind.plural
        selector = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
        custom = self.custom
        request: Callable[..., Any] = (
            functools.partial(
                custom.list_namespaced_custom_object,
                self.kind.group, self.kind.version, namespace, plural, label_selector=selector,
            )
            if namespace is not None
            else functools.partial(
                custom.list_cluster_custom_object,
                self.kind.group, self.kind.version, plural, label_selector=selector,
            )
        )  # fmt: skip
        return pages(
            Listing(
                f"{plural}.{self.kind.group}",
                namespace,
                request,
                page_size=min(page_size, REPORT_PAGE_SIZE),
                when_missing=(
                    f"the cluster has no {plural}.{self.kind.group} (CRD missing): add "
                    "--install-crds, or install Kyverno or the report CRDs first"
                ),
            )
        )

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


def write_namespace_reports(
    writer: ReportWriter,
    wanted: Sequence[Manifest],
    stored: Sequence[Manifest],
    summary: WriteSummary,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Make one namespace's reports of this format (or the cluster-scoped ones) what `wanted`
    says: each written unless stored as wanted, and the stored ones it no longer holds pruned
    (a namespace with fewer Services needs fewer parts; one with none, no report)."""
    by_name = {report["metadata"]["name"]: report for report in stored}
    for report in wanted:
        existing = by_name.pop(report["metadata"]["name"], None)
        attempt(
            _where(report),
            functools.partial(writer.write, report, existing, summary),
            summary,
            sleep=sleep,
        )
    for name in sorted(by_name):
        attempt(
            f"prune {_where(by_name[name])}",
            functools.partial(writer.delete, by_name[name], summary),
            summary,
            sleep=sleep,
        )


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
