"""`clusterip-guard bootstrap`: certificates and webhook registration (docs/design.md,
"Command line" and "What bootstrap registers")."""

from __future__ import annotations

import argparse
import datetime
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO
from urllib.parse import urlsplit

from clusterip_guard.cli import options
from clusterip_guard.cli.options import UsageError
from clusterip_guard.cluster.settings import BootstrapSettings, RecordError, resolve
from clusterip_guard.core.registration import (
    FAILURE_POLICIES,
    MAX_TIMEOUT_SECONDS,
    MIN_TIMEOUT_SECONDS,
)
from clusterip_guard.core.types import ENGINES, MODES, as_mode

EXIT_OK = 0

Action = Literal["install", "uninstall"]

DESCRIPTION = (
    "Make the webhook's certificates, register its webhook configurations, renew both when "
    "they near their end; safe to re-run. The settings a run is given are recorded on the "
    "webhook configurations it registers (annotation clusterip-guard.io/bootstrap-settings): a "
    "re-run without a flag keeps what the last one recorded, and one that changes a recorded "
    "setting prints the change before applying it. So renewal from cron is `clusterip-guard "
    "bootstrap` (with --name if it is not the default). Flags marked (kept) are remembered."
)


@dataclass(frozen=True)
class BootstrapCommand:
    """Which cluster, what to do there, and the bootstrap's own settings."""

    settings: BootstrapSettings
    kubeconfig: str | None = None
    context: str | None = None
    action: Action = "install"
    keep_certificates: bool = False  # with uninstall
    stop_sync: str | None = None  # with uninstall: the sync component's Deployment
    dry_run: bool = False
    # The remembered settings this command line gave; the others come from the record.
    given: frozenset[str] = field(default_factory=frozenset)


def add_parser(commands: Any) -> None:
    def default(name: str) -> Any:
        value = options.default_of(BootstrapSettings, name)
        return value.days if isinstance(value, datetime.timedelta) else value

    def kept(text: str, name: str | None = None) -> str:
        """Help for a remembered flag: its default, and that a re-run keeps it."""
        shown = "" if name is None else f"default: {default(name)}; "
        return f"{text} ({shown}kept)"

    parser: argparse.ArgumentParser = commands.add_parser(
        "bootstrap",
        help="make certificates and register the webhooks with a cluster (idempotent)",
        description=DESCRIPTION,
    )
    options.add_cluster_flags(parser)
    parser.add_argument(
        "--namespace", type=options.dns_label, help=kept("the webhook's namespace", "namespace")
    )
    parser.add_argument(
        "--service-name",
        type=options.dns_label,
        help=kept("the webhook's Service", "service_name"),
    )
    parser.add_argument("--service-port", type=options.port, help=kept("its port", "service_port"))
    parser.add_argument(
        "--secret-name",
        type=options.dns_name,
        help=kept("Secret of the serving certificate", "secret_name"),
    )
    parser.add_argument(
        "--ca-secret-name",
        type=options.dns_name,
        help=kept("Secret of the CA", "ca_secret_name"),
    )
    parser.add_argument(
        "--name",
        type=options.dns_name,
        default=default("configuration_name"),
        help="webhook configurations' name, where the settings are recorded (default: %(default)s)",
    )
    parser.add_argument(
        "--url",
        type=options.https_url,
        help=kept("url mode: the webhook's https:// base URL, for a webhook outside the cluster"),
    )
    parser.add_argument("--cert-dir", type=Path, help=kept("url mode: where certificate files go"))
    parser.add_argument(
        "--host",
        action="append",
        type=options.host_name,
        help=kept("a DNS name the certificate is for (repeat); url mode needs --host or --ip"),
    )
    parser.add_argument(
        "--ip",
        action="append",
        type=options.ip_address,
        help=kept("an IP address the certificate is for (repeat)"),
    )
    parser.add_argument(
        "--default-mode",
        choices=list(MODES),
        help=kept("mode of namespaces without the clusterip-guard.io/mode label", "default_mode"),
    )
    parser.add_argument(
        "--renew-before-days",
        type=options.non_negative_integer,
        help=kept("renew certificates that expire within this many days", "renew_before"),
    )
    parser.add_argument("--rotate-ca", action="store_true", help="make a new CA now")
    parser.add_argument(
        "--timeout-seconds",
        type=options.integer_between(MIN_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS),
        help=kept(
            f"webhook call timeout, {MIN_TIMEOUT_SECONDS}-{MAX_TIMEOUT_SECONDS}", "timeout_seconds"
        ),
    )
    parser.add_argument(
        "--failure-policy",
        choices=FAILURE_POLICIES,
        help=kept("of the enforce and mutate webhooks", "failure_policy"),
    )
    parser.add_argument(
        "--audit-failure-policy",
        choices=FAILURE_POLICIES,
        help=kept("of the audit webhooks", "audit_failure_policy"),
    )
    parser.add_argument(
        "--exclude-namespace",
        action="append",
        type=options.dns_label,
        metavar="NS",
        help=kept("never judge this namespace too (repeat)"),
    )
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        help=kept(
            "webhook, or native: admission policies the API server runs itself, compiled from "
            "--policy-file (Kubernetes 1.36+); the other engine's objects are removed",
            "engine",
        ),
    )
    parser.add_argument(
        "--policy-file",
        type=Path,
        help=(
            "the policy: the native engine compiles it (default: the default policy); the "
            "webhook engine's match conditions leave out Ingresses and Gateways of its allowed "
            "classes and routes attached only to its allowed Gateways (without it, every "
            "Ingress, Gateway and route write costs a webhook call)"
        ),
    )
    parser.add_argument(
        "--wait-ready-seconds",
        type=options.non_negative_seconds,
        default=default("wait_ready_seconds"),
        help="service mode: wait this long for a ready replica before registering "
        "(default: %(default)s, no wait)",
    )
    parser.add_argument(
        "--trust-propagation-seconds",
        type=options.non_negative_seconds,
        default=default("trust_propagation_seconds"),
        help="after publishing a new CA, wait this long before using it (default: %(default)s)",
    )
    parser.add_argument(
        "--switch-timeout-seconds",
        type=options.non_negative_seconds,
        default=default("switch_timeout_seconds"),
        help="an engine switch removes the old engine only once the new one answers a server "
        "dry run in namespace <name>-probe (labelled audit; made if missing); fail, keeping the "
        "old engine, after this long (default: %(default)s)",
    )
    parser.add_argument(
        "--client-cert-dir",
        type=Path,
        help=kept(
            "also write a client certificate for the API server (client.crt, client.key), "
            "signed by the webhook's CA, for serve --client-ca"
        ),
    )
    parser.add_argument(
        "--certificates-only",
        action="store_true",
        help="store certificates when there are none; never renew, rotate or register",
    )
    parser.add_argument(
        "--keep-certificates",
        action="store_true",
        help="with --uninstall: remove only the webhook configurations",
    )
    parser.add_argument(
        "--uninstall", action="store_true", help="remove webhook configurations, then certificates"
    )
    parser.add_argument(
        "--stop-sync",
        type=options.dns_name,
        metavar="DEPLOYMENT",
        help="with --uninstall: first scale this Deployment of --namespace (the chart's sync "
        "component) to 0 and wait until none of its Pods is left, so that nothing re-creates a "
        "policy; without it, a marker tells a running sync to stand down",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="change nothing: print the objects as YAML for kubectl apply -f - (private keys "
        "redacted, files as comments); with --uninstall, what would be removed",
    )
    parser.set_defaults(invoke=invoke)


def invoke(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    return run(command_from(args), stdout=stdout, stderr=stderr)


def command_from(args: argparse.Namespace) -> BootstrapCommand:
    """The typed command a parsed `bootstrap` command line asks for: the flags given over the
    defaults (a run then puts what the last bootstrap recorded in place of the defaults)."""
    if args.url is None and args.cert_dir is not None:
        raise UsageError("--cert-dir is for url mode; give --url too")
    if args.keep_certificates and not args.uninstall:
        raise UsageError("--keep-certificates is for --uninstall")
    if args.stop_sync is not None and not args.uninstall:
        raise UsageError("--stop-sync is for --uninstall")
    if args.certificates_only and args.uninstall:
        raise UsageError("--certificates-only and --uninstall do opposite things; give one")
    given: dict[str, Any] = {}
    for name, value in (
        ("namespace", args.namespace),
        ("service_name", args.service_name),
        ("service_port", args.service_port),
        ("secret_name", args.secret_name),
        ("ca_secret_name", args.ca_secret_name),
        ("url", args.url),
        ("cert_dir", args.cert_dir),
        ("hosts", None if args.host is None else tuple(args.host)),
        ("ips", None if args.ip is None else tuple(args.ip)),
        ("default_mode", None if args.default_mode is None else as_mode(args.default_mode)),
        (
            "renew_before",
            None
            if args.renew_before_days is None
            else datetime.timedelta(days=args.renew_before_days),
        ),
        ("timeout_seconds", args.timeout_seconds),
        ("failure_policy", args.failure_policy),
        ("audit_failure_policy", args.audit_failure_policy),
        (
            "excluded_namespaces",
            None if args.exclude_namespace is None else tuple(args.exclude_namespace),
        ),
        ("client_cert_dir", args.client_cert_dir),
        ("engine", args.engine),
    ):
        if value is not None:
            given[name] = value
    settings = BootstrapSettings(
        configuration_name=args.name,
        rotate_ca=args.rotate_ca,
        wait_ready_seconds=args.wait_ready_seconds,
        certificates_only=args.certificates_only,
        trust_propagation_seconds=args.trust_propagation_seconds,
        switch_timeout_seconds=args.switch_timeout_seconds,
        policy_file=args.policy_file,
        **given,
    )
    return BootstrapCommand(
        settings,
        args.kubeconfig,
        args.context,
        "uninstall" if args.uninstall else "install",
        keep_certificates=args.keep_certificates,
        stop_sync=args.stop_sync,
        dry_run=args.dry_run,
        given=frozenset(given),
    )


def check_target(settings: BootstrapSettings) -> None:
    """What only the whole set of settings can tell (some may come from the record)."""
    if not settings.url_mode:
        return
    if settings.cert_dir is None:
        raise UsageError("--url needs --cert-dir: where the webhook reads its certificate")
    if not settings.hosts and not settings.ips:
        raise UsageError(
            "url mode needs --host NAME or --ip ADDRESS: the names the webhook's certificate "
            "is for, so the API server can verify it at --url"
        )
    host = (urlsplit(settings.url or "").hostname or "").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        flag = "--host"
        names = {h.lower() for h in settings.hosts}
        covered = host in names or any(
            n.startswith("*.") and host.endswith(n[1:]) and "." not in host[: -len(n) + 1]
            for n in names
        )
    else:
        flag = "--ip"
        covered = address in {ipaddress.ip_address(ip) for ip in settings.ips}
    if not covered:
        raise UsageError(
            f"--url {settings.url}: {host} is not among --host/--ip, so the API server would "
            f"refuse the webhook's certificate; add {flag} {host}"
        )


def run(command: BootstrapCommand, *, stdout: TextIO, stderr: TextIO) -> int:
    # Loaded here, not at import: the Kubernetes client takes a while to import.
    from clusterip_guard.cluster.admission_objects import read_record
    from clusterip_guard.cluster.bootstrap import bootstrap, render, uninstall
    from clusterip_guard.cluster.client import session

    # Notes beside a dry run's YAML go to stderr as comments, so stdout stays apply-able.
    notes = stderr if command.dry_run else stdout
    prefix = "# " if command.dry_run else ""
    with session(command.kubeconfig, command.context) as api:
        settings = command.settings
        if not settings.certificates_only:
            try:
                record = read_record(api, settings.configuration_name)
                settings, changes = resolve(settings, command.given, record)
            except RecordError as error:
                print(
                    f"{prefix}the settings recorded on {settings.configuration_name} cannot be "
                    f"read ({error}); using the flags given and the defaults",
                    file=notes,
                )
                changes = []
            if changes and command.action == "install":
                verb = "would change" if command.dry_run else "changing"
                print(f"{prefix}{verb} what the last bootstrap recorded:", file=notes)
                for change in changes:
                    print(f"{prefix}  {change}", file=notes)
        if command.action == "uninstall":
            report = uninstall(
                api,
                settings,
                keep_certificates=command.keep_certificates,
                dry_run=command.dry_run,
                stop_sync_deployment=command.stop_sync,
            )
        else:
            check_target(settings)
            now = datetime.datetime.now(datetime.UTC)
            report = bootstrap(api, settings, now=now, dry_run=command.dry_run)
    if command.dry_run and command.action == "install":
        stdout.write(render(report.objects, report.comments))
        for line in report.lines:
            print(f"# {line}", file=stderr)
    else:
        for line in report.lines:
            print(line, file=stdout)
    return EXIT_OK
