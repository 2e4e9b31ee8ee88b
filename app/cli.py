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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            return run_serve(args)
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
    if args.fix and args.paths.count("-") and args.output == "json":
        raise UsageError("--fix with stdin writes manifests to stdout; use -o table with it")
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
        for source in write_fixed(files, policy, report, stdout):
            if source != "<stdin>":
                print(f"fixed {source}", file=stderr)
        return EXIT_OK
    return EXIT_FINDINGS if report.needs_change else EXIT_OK


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
