"""`clusterip-guard bootstrap`: certificates and webhook registration (docs/design.md §5, §6)."""

from __future__ import annotations

import argparse
import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

from clusterip_guard.cli import options
from clusterip_guard.cli.options import UsageError
from clusterip_guard.cluster.settings import BootstrapSettings
from clusterip_guard.core.registration import FAILURE_POLICIES
from clusterip_guard.core.types import MODES, as_mode

EXIT_OK = 0

Action = Literal["install", "uninstall", "dry-run"]


@dataclass(frozen=True)
class BootstrapCommand:
    """Which cluster, what to do there, and the bootstrap's own settings."""

    settings: BootstrapSettings
    kubeconfig: str | None = None
    context: str | None = None
    action: Action = "install"
    keep_certificates: bool = False  # with uninstall


def add_parser(commands: Any) -> None:
    def default(name: str) -> Any:
        return options.default_of(BootstrapSettings, name)

    parser: argparse.ArgumentParser = commands.add_parser(
        "bootstrap",
        help="make certificates and register the webhooks with a cluster (idempotent)",
    )
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, in-cluster)")
    parser.add_argument("--context", help="kubeconfig context")
    parser.add_argument(
        "--namespace",
        default=default("namespace"),
        help="the webhook's namespace (default: %(default)s)",
    )
    parser.add_argument(
        "--service-name", default=default("service_name"), help="default: %(default)s"
    )
    parser.add_argument(
        "--service-port",
        type=options.port,
        default=default("service_port"),
        help="default: %(default)s",
    )
    parser.add_argument(
        "--secret-name", default=default("secret_name"), help="default: %(default)s"
    )
    parser.add_argument(
        "--ca-secret-name", default=default("ca_secret_name"), help="default: %(default)s"
    )
    parser.add_argument(
        "--name",
        default=default("configuration_name"),
        help="webhook configurations' name (default: %(default)s)",
    )
    parser.add_argument(
        "--url", help="url mode: the webhook's https:// base URL, for a webhook outside the cluster"
    )
    parser.add_argument("--cert-dir", type=Path, help="url mode: where certificate files go")
    parser.add_argument("--host", action="append", default=[], help="extra DNS name (repeat)")
    parser.add_argument("--ip", action="append", default=[], help="extra IP address (repeat)")
    parser.add_argument(
        "--default-mode",
        choices=list(MODES),
        default=default("default_mode"),
        help="mode of namespaces without the clusterip-guard.io/mode label (default: %(default)s)",
    )
    parser.add_argument(
        "--renew-before-days",
        type=options.non_negative_integer,
        default=default("renew_before").days,
        help="renew certificates that expire within this many days (default: %(default)s)",
    )
    parser.add_argument("--rotate-ca", action="store_true", help="make a new CA now")
    parser.add_argument(
        "--timeout-seconds",
        type=int,
        default=default("timeout_seconds"),
        help="webhook call timeout, 1-30 (default: %(default)s)",
    )
    parser.add_argument(
        "--failure-policy",
        choices=FAILURE_POLICIES,
        default=default("failure_policy"),
        help="of the enforce and mutate webhooks (default: %(default)s)",
    )
    parser.add_argument(
        "--audit-failure-policy",
        choices=FAILURE_POLICIES,
        default=default("audit_failure_policy"),
        help="of the audit webhooks (default: %(default)s)",
    )
    parser.add_argument(
        "--exclude-namespace",
        action="append",
        default=[],
        metavar="NS",
        help="never judge this namespace too (repeat)",
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
        "--client-cert-dir",
        type=Path,
        help="also write a client certificate for the API server (client.crt, client.key), "
        "signed by the webhook's CA, for serve --client-ca",
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
    action = parser.add_mutually_exclusive_group()
    action.add_argument(
        "--uninstall", action="store_true", help="remove webhook configurations, then certificates"
    )
    action.add_argument("--dry-run", action="store_true", help="print every object as YAML")
    parser.set_defaults(invoke=invoke)


def invoke(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    return run(command_from(args), stdout=stdout, stderr=stderr)


def command_from(args: argparse.Namespace) -> BootstrapCommand:
    """The typed command a parsed `bootstrap` command line asks for."""
    if args.url is None and args.cert_dir is not None:
        raise UsageError("--cert-dir is for url mode; give --url too")
    if args.keep_certificates and not args.uninstall:
        raise UsageError("--keep-certificates is for --uninstall")
    if args.certificates_only and args.uninstall:
        raise UsageError("--certificates-only and --uninstall do opposite things; give one")
    settings = BootstrapSettings(
        namespace=args.namespace,
        service_name=args.service_name,
        service_port=args.service_port,
        secret_name=args.secret_name,
        ca_secret_name=args.ca_secret_name,
        configuration_name=args.name,
        url=args.url,
        cert_dir=args.cert_dir,
        hosts=tuple(args.host),
        ips=tuple(args.ip),
        default_mode=as_mode(args.default_mode),
        renew_before=datetime.timedelta(days=args.renew_before_days),
        rotate_ca=args.rotate_ca,
        timeout_seconds=args.timeout_seconds,
        failure_policy="Ignore" if args.failure_policy == "Ignore" else "Fail",
        audit_failure_policy="Fail" if args.audit_failure_policy == "Fail" else "Ignore",
        excluded_namespaces=tuple(args.exclude_namespace),
        wait_ready_seconds=args.wait_ready_seconds,
        certificates_only=args.certificates_only,
        client_cert_dir=args.client_cert_dir,
        trust_propagation_seconds=args.trust_propagation_seconds,
    )
    action: Action = "uninstall" if args.uninstall else "dry-run" if args.dry_run else "install"
    return BootstrapCommand(
        settings, args.kubeconfig, args.context, action, keep_certificates=args.keep_certificates
    )


def run(command: BootstrapCommand, *, stdout: TextIO, stderr: TextIO) -> int:
    # Loaded here, not at import: the Kubernetes client takes a while to import.
    from clusterip_guard.cluster.bootstrap import bootstrap, render, uninstall
    from clusterip_guard.cluster.client import session

    with session(command.kubeconfig, command.context) as api:
        if command.action == "uninstall":
            report = uninstall(api, command.settings, keep_certificates=command.keep_certificates)
        else:
            now = datetime.datetime.now(datetime.UTC)
            dry_run = command.action == "dry-run"
            report = bootstrap(api, command.settings, now=now, dry_run=dry_run)
    if command.action == "dry-run":
        stdout.write(render(report.objects))
        for line in report.lines:
            print(f"# {line}", file=stderr)
    else:
        for line in report.lines:
            print(line, file=stdout)
    return EXIT_OK
