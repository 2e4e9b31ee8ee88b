"""`clusterip-guard scan`: its flags, and the findings as a table, JSON or YAML. The use case
itself (read, judge, write reports) is `cluster.scanning.scan_cluster`."""

from __future__ import annotations

import argparse
import json
import os
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

from clusterip_guard.cli import options
from clusterip_guard.core.names import CONFIGURATION_NAME
from clusterip_guard.core.reports import REPORT_FORMATS, ReportFormat
from clusterip_guard.core.scan import Finding, Tally
from clusterip_guard.core.types import MODES, Mode, as_mode

if TYPE_CHECKING:
    from clusterip_guard.cluster.scanning import ScanScope
    from clusterip_guard.policyfile import PolicyHolder

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_CLUSTER = 3  # as cli.main maps a cluster that refused us

Output = Literal["table", "json", "yaml"]
FORMAT_CHOICES = ("wgpolicyk8s", "openreports", "both")


@dataclass(frozen=True)
class ScanSettings:
    namespace: str | None = None  # None: every namespace
    selector: str | None = None  # a label selector on namespaces
    policy_file: Path | None = None
    # None: what the registered webhook configurations say (off when none is registered).
    default_mode: Mode | None = None
    configuration_name: str = CONFIGURATION_NAME
    what_if: Mode | None = None
    output: Output = "table"
    write_reports: bool = False
    report_formats: tuple[ReportFormat, ...] = ("wgpolicyk8s",)
    install_crds: bool = False
    watch: bool = False
    resync_seconds: float = 300.0
    settle_seconds: float = 1.0
    lease_namespace: str | None = None  # None: $POD_NAMESPACE, else default
    lease_name: str = "clusterip-guard-scan"
    metrics_port: int = 0  # with --watch: serve /metrics here (0: off)
    page_size: int = 500  # objects per list request (cluster/listing.py)
    kubeconfig: str | None = None
    context: str | None = None


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "scan",
        help="judge the Services in the cluster and report them (exit 1 if any fails)",
        description=(
            "Judge every Service in the cluster (or some namespaces) as admission would, and "
            "report the result: a table of the exposed ones, JSON or YAML of all, and, with "
            "--write-reports, PolicyReports. Exit 1 if any Service fails (exposed, in a "
            "namespace that is judged, and not exempt)."
        ),
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("-n", "--namespace", help="only this namespace")
    where.add_argument(
        "-A", "--all-namespaces", action="store_true", help="every namespace (the default)"
    )
    parser.add_argument(
        "-l", "--selector", help="only namespaces with these labels (a label selector)"
    )
    parser.add_argument("--policy-file", type=Path, help="policy YAML (as given to serve)")
    parser.add_argument(
        "--default-mode",
        choices=MODES,
        help="the mode of unlabelled namespaces (default: what the registered webhook "
        "configurations say; off when clusterip-guard is not registered)",
    )
    parser.add_argument(
        "--configuration-name",
        default=options.default_of(ScanSettings, "configuration_name"),
        help="the webhook configurations to read the default mode from (default: %(default)s)",
    )
    parser.add_argument(
        "--what-if",
        choices=[m for m in MODES if m != "off"],
        help="judge every namespace as if it were in this mode: what would break",
    )
    parser.add_argument(
        "-o",
        "--output",
        choices=["table", "json", "yaml"],
        default=options.default_of(ScanSettings, "output"),
        help="table (the exposed Services), json or yaml (every Service); default: %(default)s",
    )
    parser.add_argument(
        "--write-reports",
        action="store_true",
        help="create, update and prune one report per namespace and a cluster-wide one",
    )
    parser.add_argument(
        "--report-format",
        choices=FORMAT_CHOICES,
        default="wgpolicyk8s",
        help="wgpolicyk8s.io/v1alpha2 PolicyReports, openreports.io/v1alpha1 Reports, or "
        "both (default: %(default)s)",
    )
    parser.add_argument(
        "--install-crds",
        action="store_true",
        help="create the report CRDs the cluster lacks (shipped with clusterip-guard)",
    )
    parser.add_argument(
        "--watch",
        action="store_true",
        help="keep the reports current: rescan on every change of a Service or Namespace, "
        "one writer among replicas (a Lease); needs --write-reports",
    )
    parser.add_argument(
        "--resync-seconds",
        type=options.positive_seconds,
        default=options.default_of(ScanSettings, "resync_seconds"),
        help="with --watch: a full rescan at least this often (default: %(default)s)",
    )
    parser.add_argument(
        "--lease-namespace",
        help="with --watch: where the Lease lives (default: $POD_NAMESPACE, else default)",
    )
    parser.add_argument(
        "--lease-name",
        default=options.default_of(ScanSettings, "lease_name"),
        help="with --watch: the Lease's name (default: %(default)s)",
    )
    parser.add_argument(
        "--metrics-port",
        type=options.port_or_zero,
        default=options.default_of(ScanSettings, "metrics_port"),
        help="with --watch: serve Prometheus metrics on this port (default: 0, off)",
    )
    parser.add_argument(
        "--page-size",
        type=options.page_size,
        default=options.default_of(ScanSettings, "page_size"),
        help="objects per list request: the scan holds about one page of each list, and one "
        "namespace's findings (default: %(default)s)",
    )
    options.add_cluster_flags(parser)
    parser.set_defaults(invoke=invoke)


def settings_from(args: argparse.Namespace) -> ScanSettings:
    if args.watch and not args.write_reports:
        raise options.UsageError("--watch keeps reports current: add --write-reports")
    if args.what_if and args.write_reports:
        raise options.UsageError(
            "--what-if asks what would happen; reports say what is: drop one of "
            "--what-if and --write-reports"
        )
    formats = tuple(f for f in REPORT_FORMATS if args.report_format in (f, "both"))
    return ScanSettings(
        namespace=args.namespace,
        selector=args.selector,
        policy_file=args.policy_file,
        default_mode=as_mode(args.default_mode) if args.default_mode else None,
        configuration_name=args.configuration_name,
        what_if=as_mode(args.what_if) if args.what_if else None,
        output=args.output,
        write_reports=args.write_reports,
        report_formats=formats,
        install_crds=args.install_crds,
        watch=args.watch,
        resync_seconds=args.resync_seconds,
        lease_namespace=args.lease_namespace,
        lease_name=args.lease_name,
        metrics_port=args.metrics_port,
        page_size=args.page_size,
        kubeconfig=args.kubeconfig,
        context=args.context,
    )


def invoke(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    return run(settings_from(args), stdout=stdout, stderr=stderr)


def run(settings: ScanSettings, *, stdout: TextIO, stderr: TextIO) -> int:
    from clusterip_guard.cluster.client import session
    from clusterip_guard.cluster.scanning import scan_cluster
    from clusterip_guard.policyfile import PolicyHolder

    # Read once, before the cluster is asked anything: a broken file is bad input (exit 2).
    # With --watch a changed file applies at the next scan; a broken one keeps the last good.
    policy = PolicyHolder(settings.policy_file)
    with session(settings.kubeconfig, settings.context) as api:
        if settings.install_crds:
            from clusterip_guard.cluster.report_store import install_crds

            for report_format in settings.report_formats:
                for line in install_crds(api, report_format):
                    print(line, file=stderr)
        if settings.watch:
            return _watch(api, settings, policy)
        printer = FindingsPrinter(settings.output, stdout)
        outcome = scan_cluster(api, scope_of(settings), policy.current, on_findings=printer.add)
        printer.finish(outcome.tally)
        for line in outcome.written:
            print(line, file=stderr)
        for grant in outcome.mode_admins or []:
            print(f"clusterip-guard: {grant.describe()}", file=stderr)
        if outcome.failed:
            # Everything else was written; the cluster refused these (exit 3, as any refusal).
            noun = "report was" if len(outcome.failed) == 1 else "reports were"
            print(
                f"clusterip-guard: {len(outcome.failed)} {noun} not written (first: "
                f"{outcome.failed[0]})",
                file=stderr,
            )
            return EXIT_CLUSTER
        return EXIT_FINDINGS if outcome.fails else EXIT_OK


def scope_of(settings: ScanSettings) -> ScanScope:
    from clusterip_guard.cluster.scanning import ScanScope

    return ScanScope(
        namespace=settings.namespace,
        selector=settings.selector,
        default_mode=settings.default_mode,
        configuration_name=settings.configuration_name,
        what_if=settings.what_if,
        write_reports=settings.write_reports,
        report_formats=settings.report_formats,
        page_size=settings.page_size,
    )


def _watch(api: Any, settings: ScanSettings, policy: PolicyHolder) -> int:
    from clusterip_guard.cluster.limits import count_limits
    from clusterip_guard.cluster.scanning import scan_and_record
    from clusterip_guard.cluster.watching import keep_current, lead
    from clusterip_guard.telemetry.logs import configure_json_logging
    from clusterip_guard.telemetry.metrics import ScanMetrics

    configure_json_logging("info")  # the same JSON lines as serve's
    metrics = ScanMetrics()
    count_limits(lambda limit: metrics.limits_reached.labels(limit).inc())
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, registry=metrics.registry)

    def rescan() -> None:
        scan_and_record(api, scope_of(settings), policy, metrics)

    stop = threading.Event()
    namespace = settings.lease_namespace or os.environ.get("POD_NAMESPACE") or "default"
    identity = f"{socket.gethostname()}-{os.getpid()}"
    lead(
        api,
        namespace=namespace,
        name=settings.lease_name,
        identity=identity,
        work=lambda: keep_current(
            api,
            rescan,
            resync_seconds=settings.resync_seconds,
            settle_seconds=settings.settle_seconds,
            stop=stop,
        ),
    )
    return EXIT_OK


# --- output -------------------------------------------------------------------------------------


def finding_as_json(finding: Finding) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "namespace": finding.namespace.namespace,
        "mode": finding.namespace.mode,
        "modeSource": finding.namespace.source,
        "kind": finding.kind,
        "name": finding.name,
        "type": finding.service_type,
        "result": finding.result,
        "message": finding.message,
        "exposure": [{"field": v.field, "message": v.message} for v in finding.exposure],
        "enforce": finding.enforce,
        "mutate": list(finding.mutate),
    }
    if finding.namespace.label is not None:
        shown["modeLabel"] = finding.namespace.label
    if finding.exemption:
        shown["exemption"] = finding.exemption
    return shown


class FindingsPrinter:
    """The findings printed as the scan hands them over, one namespace at a time: JSON and
    YAML as they come (the same text as one list printed at the end), the table from the
    exposed findings alone (its columns need them all) and the tally."""

    def __init__(self, output: Output, stdout: TextIO) -> None:
        self.output = output
        self.stdout = stdout
        self.printed = 0
        self.exposed: list[Finding] = []

    def add(self, findings: Sequence[Finding]) -> None:
        if self.output == "table":
            self.exposed += [f for f in findings if f.exposed]
            return
        if not findings:
            return
        if self.output == "json":
            for finding in findings:
                text = json.dumps(finding_as_json(finding), indent=2)
                self.stdout.write(("[\n" if not self.printed else ",\n") + _indented(text))
                self.printed += 1
            return
        from clusterip_guard.yamltext import dump_yaml_documents

        self.stdout.write(dump_yaml_documents([[finding_as_json(f) for f in findings]]))
        self.printed += len(findings)

    def finish(self, tally: Tally) -> None:
        if self.output == "table":
            self.stdout.write(render_table(self.exposed, tally))
        elif self.output == "json":
            self.stdout.write("\n]\n" if self.printed else "[]\n")
        elif not self.printed:
            self.stdout.write("[]\n")


def _indented(text: str) -> str:
    return "".join(f"  {line}" for line in text.splitlines(keepends=True))


def mutate_in_short(finding: Finding) -> str:
    """What mutate would do, in a table cell; -o json and yaml list every change."""
    if not finding.mutate:
        return "-"
    if finding.mutate_converts:
        return "to ClusterIP"
    if finding.kind != "Service":
        return "no host ports"
    return f"{len(finding.mutate)} changes"


def render_table(exposed: Sequence[Finding], tally: Tally) -> str:
    """The exposed Services, workloads and Pods, grouped by namespace (the namespace and its
    mode shown once), then a count of every result (the tally). A Service by its name, the
    rest as kind/name."""
    header = ("NAMESPACE", "MODE", "NAME", "TYPE", "RESULT", "ENFORCE", "MUTATE",
              "EXEMPTION", "EXPOSURE")  # fmt: skip
    rows: list[tuple[str, ...]] = []
    previous = None
    for f in exposed:
        first = f.namespace.namespace != previous
        previous = f.namespace.namespace
        rows.append((
            f.namespace.namespace if first else "",
            f.namespace.describe() if first else "",
            f.name if f.kind == "Service" else f"{f.kind.lower()}/{f.name}",
            f.service_type or "-", f.result, f.enforce, mutate_in_short(f),
            f.exemption or "-",
            "; ".join(v.summary for v in f.exposure),
        ))  # fmt: skip
    lines = []
    if rows:
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
        lines = [
            "  ".join(
                [*(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)), row[-1]]
            ).rstrip()
            for row in [header, *rows]
        ]
    counts = tally.results
    namespaces = tally.namespaces
    noun = "Service" if tally.only_services else "object"
    noun += "" if tally.objects == 1 else "s"
    spread = "namespace" if namespaces == 1 else "namespaces"
    shown = ", ".join(f"{counts[r]} {r}" for r in ("fail", "warn", "skip", "pass") if counts[r])
    lines.append(
        f"{tally.objects} {noun} in {namespaces} {spread}" + (f": {shown}" if shown else "")
    )
    return "\n".join(lines) + "\n"
