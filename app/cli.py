"""The `clusterip-guard` command: wires flags to the core and the edges, nothing more.

Exit codes: 0 success; 1 `check` found something that would be denied or changed;
2 bad input or a failure the user can fix (one line on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import datetime
import os
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO, cast

from app import __version__
from app.policy_file import PolicyError
from app.reload import PolicyHolder, read_policy_file
from app.types import MODES, Mode

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2

DEFAULT_PORT = 8443
DEFAULT_METRICS_PORT = 9090


class UsageError(Exception):
    """Something the user can fix; printed as one line, exit 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clusterip-guard",
        description="Admission webhook that keeps Kubernetes Services internal.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the webhook server (HTTPS)")
    serve.add_argument("--cert-file", type=Path, required=True, help="PEM serving certificate")
    serve.add_argument("--key-file", type=Path, required=True, help="PEM private key")
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help="HTTPS port")
    serve.add_argument("--policy-file", type=Path, help="policy YAML (reloaded on change)")
    serve.add_argument(
        "--metrics-port",
        type=int,
        default=DEFAULT_METRICS_PORT,
        help="plain-HTTP port for Prometheus /metrics (0 turns it off)",
    )
    serve.add_argument(
        "--own-namespace",
        default=os.environ.get("POD_NAMESPACE"),
        help="the webhook's own namespace, never judged (default: $POD_NAMESPACE)",
    )
    serve.add_argument(
        "--reload-interval",
        type=float,
        default=2.0,
        help="seconds between looks at the certificate and policy files",
    )
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])

    check = commands.add_parser(
        "check", help="evaluate manifests offline (exit 1 if anything would be denied or changed)"
    )
    check.add_argument("paths", nargs="+", metavar="PATH", help="file, folder, or - for stdin")
    check.add_argument("--mode", choices=[m for m in MODES if m != "off"], default="enforce")
    check.add_argument("--policy-file", type=Path, help="policy YAML")
    check.add_argument("-o", "--output", choices=["table", "json"], default="table")
    check.add_argument(
        "--fix",
        action="store_true",
        help="write converted manifests back (files in place, stdin to stdout)",
    )
    bootstrap = commands.add_parser(
        "bootstrap",
        help="make certificates and register the webhooks with a cluster (idempotent)",
    )
    bootstrap.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, in-cluster)"
    )
    bootstrap.add_argument("--context", help="kubeconfig context")
    bootstrap.add_argument("--namespace", default="clusterip-guard", help="the webhook's namespace")
    bootstrap.add_argument("--service-name", default="clusterip-guard")
    bootstrap.add_argument("--service-port", type=int, default=443)
    bootstrap.add_argument("--secret-name", default="clusterip-guard-tls")
    bootstrap.add_argument("--ca-secret-name", default="clusterip-guard-ca")
    bootstrap.add_argument("--name", default="clusterip-guard", help="webhook configurations' name")
    bootstrap.add_argument(
        "--url", help="url mode: the webhook's https:// base URL, for a webhook outside the cluster"
    )
    bootstrap.add_argument("--cert-dir", type=Path, help="url mode: where certificate files go")
    bootstrap.add_argument("--host", action="append", default=[], help="extra DNS name (repeat)")
    bootstrap.add_argument("--ip", action="append", default=[], help="extra IP address (repeat)")
    bootstrap.add_argument(
        "--default-mode",
        choices=list(MODES),
        default="off",
        help="mode of namespaces without the clusterip-guard.io/mode label",
    )
    bootstrap.add_argument(
        "--renew-before-days",
        type=int,
        default=30,
        help="renew certificates that expire within this many days",
    )
    bootstrap.add_argument("--rotate-ca", action="store_true", help="make a new CA now")
    bootstrap.add_argument("--timeout-seconds", type=int, default=5, help="webhook call timeout")
    bootstrap.add_argument(
        "--trust-propagation-seconds",
        type=float,
        default=5.0,
        help="after publishing a new CA, wait this long before using it",
    )
    action = bootstrap.add_mutually_exclusive_group()
    action.add_argument(
        "--uninstall", action="store_true", help="remove webhook configurations, then certificates"
    )
    action.add_argument("--dry-run", action="store_true", help="print every object as YAML")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            return run_serve(args)
        if args.command == "bootstrap":
            return run_bootstrap(args)
        return run_check(args, stdout=sys.stdout, stderr=sys.stderr)
    except (UsageError, PolicyError) as error:
        print(f"clusterip-guard: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_USAGE


def run_check(args: argparse.Namespace, *, stdout: TextIO, stderr: TextIO) -> int:
    from app.check import (
        InputError,
        check_files,
        read_manifests,
        render_json,
        render_table,
        write_fixed,
    )

    policy = read_policy_file(args.policy_file)
    try:
        files = read_manifests(args.paths)
    except InputError as error:
        raise UsageError(str(error)) from error
    today = datetime.datetime.now(datetime.UTC).date()
    report = check_files(files, mode=cast(Mode, args.mode), policy=policy, today=today)
    # With --fix the manifests go to stdout when they came from stdin; the report then
    # goes to stderr so the two never mix.
    out = stderr if args.fix and "-" in args.paths else stdout
    out.write(render_json(report) if args.output == "json" else render_table(report))
    if args.fix:
        try:
            fixed = write_fixed(files, policy, report, stdout)
        except InputError as error:
            raise UsageError(str(error)) from error
        for source in fixed:
            if source != "<stdin>":
                print(f"fixed {source}", file=stderr)
        return EXIT_OK
    return EXIT_FINDINGS if report.needs_change else EXIT_OK


def run_bootstrap(args: argparse.Namespace) -> int:
    from app.bootstrap import (
        BootstrapError,
        BootstrapSettings,
        bootstrap,
        render,
        session,
        uninstall,
    )
    from app.certs import CertificateError
    from app.registration import RegistrationError

    if args.url is None and args.cert_dir is not None:
        raise UsageError("--cert-dir is for url mode; give --url too")
    if args.renew_before_days < 0:
        raise UsageError("--renew-before-days must be 0 or more")
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
        default_mode=cast(Mode, args.default_mode),
        renew_before=datetime.timedelta(days=args.renew_before_days),
        rotate_ca=args.rotate_ca,
        timeout_seconds=args.timeout_seconds,
        trust_propagation_seconds=args.trust_propagation_seconds,
    )
    try:
        with session(args.kubeconfig, args.context) as api:
            if args.uninstall:
                report = uninstall(api, settings)
            else:
                now = datetime.datetime.now(datetime.UTC)
                report = bootstrap(api, settings, now=now, dry_run=args.dry_run)
    except (BootstrapError, CertificateError, RegistrationError) as error:
        raise UsageError(str(error)) from error
    if args.dry_run:
        sys.stdout.write(render(report.objects))
        for line in report.lines:
            print(f"# {line}", file=sys.stderr)
    else:
        for line in report.lines:
            print(line)
    return EXIT_OK


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn
    from prometheus_client import start_http_server

    from app.logs import configure_json_logging
    from app.metrics import WebhookMetrics
    from app.policy import SYSTEM_NAMESPACES
    from app.reload import CertificateReloader, serving_context
    from app.server import create_app

    configure_json_logging(args.log_level)
    policy = PolicyHolder(args.policy_file)
    try:
        context = serving_context(args.cert_file, args.key_file)
    except (OSError, ssl.SSLError) as error:
        raise UsageError(
            f"cannot load certificate {args.cert_file} / key {args.key_file}: {error}"
        ) from None
    metrics = WebhookMetrics()
    if args.metrics_port:
        try:
            start_http_server(args.metrics_port, addr=args.host, registry=metrics.registry)
        except OSError as error:
            raise UsageError(
                f"cannot listen on metrics port {args.metrics_port}: {error}"
            ) from None
    protected = set(SYSTEM_NAMESPACES)
    if args.own_namespace:
        protected.add(args.own_namespace)
    app = create_app(
        policy=lambda: policy.current,
        metrics=metrics,
        protected_namespaces=protected,
        reloaders=[policy, CertificateReloader(context, args.cert_file, args.key_file)],
        reload_interval=args.reload_interval,
    )
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        ssl_certfile=str(args.cert_file),
        ssl_keyfile=str(args.key_file),
        # Our own context, so a reloaded certificate reaches the next handshake.
        ssl_context_factory=lambda _config, _default: context,
        access_log=args.access_log,
        log_config=None,
        server_header=False,
        timeout_keep_alive=30,
    )
    server = uvicorn.Server(config)
    server.run()
    # uvicorn returns after a clean shutdown, or early when it could not bind.
    return EXIT_OK if server.started else EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
