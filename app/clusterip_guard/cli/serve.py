"""`clusterip-guard serve`: the webhook over HTTPS, metrics over plain HTTP (docs/design.md,
"HTTP (HTTPS only)")."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import ssl
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from clusterip_guard.cli import options
from clusterip_guard.cli.options import UsageError
from clusterip_guard.server.settings import ServeSettings

EXIT_OK = 0
EXIT_USAGE = 2
LOG_LEVELS = ("debug", "info", "warning", "error")


def add_parser(commands: Any) -> None:
    def default(name: str) -> Any:
        return options.default_of(ServeSettings, name)

    parser: argparse.ArgumentParser = commands.add_parser(
        "serve", help="run the webhook server (HTTPS)"
    )
    parser.add_argument("--cert-file", type=Path, required=True, help="PEM serving certificate")
    parser.add_argument("--key-file", type=Path, required=True, help="PEM private key")
    parser.add_argument(
        "--host",
        type=options.listen_address,
        default=default("host"),
        help="address to listen on (default: %(default)s)",
    )
    parser.add_argument(
        "--port",
        type=options.port,
        default=default("port"),
        help="HTTPS port (default: %(default)s)",
    )
    parser.add_argument("--policy-file", type=Path, help="policy YAML (reloaded on change)")
    parser.add_argument(
        "--client-ca",
        type=Path,
        help="require a client certificate signed by this CA on the HTTPS port (the API "
        "server's, named by its AdmissionConfiguration); probes use the metrics port",
    )
    parser.add_argument(
        "--metrics-port",
        type=options.port_or_zero,
        default=default("metrics_port"),
        help="plain-HTTP port for Prometheus /metrics, 0 turns it off (default: %(default)s)",
    )
    parser.add_argument(
        "--own-namespace",
        type=options.dns_label,
        default=os.environ.get("POD_NAMESPACE") or default("own_namespace"),
        help="the webhook's own namespace, never judged (default: $POD_NAMESPACE)",
    )
    parser.add_argument(
        "--reload-interval",
        type=options.positive_seconds,
        default=default("reload_interval"),
        help="seconds between looks at the certificate and policy files (default: %(default)s)",
    )
    parser.add_argument(
        "--shutdown-delay",
        type=options.non_negative_seconds,
        default=default("shutdown_delay_seconds"),
        help="after SIGTERM, seconds of serving while not ready, for endpoints to catch up "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=options.non_negative_integer,
        default=default("drain_timeout_seconds"),
        help="then, seconds for requests in flight to finish (default: %(default)s)",
    )
    parser.add_argument(
        "--max-connections-per-client",
        type=options.port,  # 1-65535
        default=default("max_connections_per_client"),
        help="open connections one client address may hold, per port (default: %(default)s)",
    )
    parser.add_argument(
        "--header-timeout",
        type=options.positive_seconds,
        default=default("header_timeout_seconds"),
        help="seconds for a request's head to arrive (default: %(default)s)",
    )
    parser.add_argument(
        "--handshake-timeout",
        type=options.positive_seconds,
        default=default("handshake_timeout_seconds"),
        help="seconds for a TLS handshake to finish (default: %(default)s)",
    )
    parser.add_argument(
        "--body-timeout",
        type=options.positive_seconds,
        default=default("body_timeout_seconds"),
        help="seconds for a request's body to arrive (default: %(default)s)",
    )
    parser.add_argument(
        "--access-log", action="store_true", help="log every request (halves throughput)"
    )
    parser.add_argument(
        "--log-level", default=default("log_level"), choices=LOG_LEVELS, help="default: %(default)s"
    )
    parser.set_defaults(invoke=invoke)


def invoke(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    if args.metrics_port == args.port:
        raise UsageError(
            f"--port and --metrics-port are both {args.port}; give the metrics another port "
            f"(or 0 to turn it off)"
        )
    settings = ServeSettings(
        cert_file=args.cert_file,
        key_file=args.key_file,
        host=args.host,
        port=args.port,
        policy_file=args.policy_file,
        client_ca=args.client_ca,
        metrics_port=args.metrics_port,
        own_namespace=args.own_namespace,
        reload_interval=args.reload_interval,
        access_log=args.access_log,
        log_level=args.log_level,
        shutdown_delay_seconds=args.shutdown_delay,
        drain_timeout_seconds=args.drain_timeout,
        max_connections_per_client=args.max_connections_per_client,
        header_timeout_seconds=args.header_timeout,
        handshake_timeout_seconds=args.handshake_timeout,
        body_timeout_seconds=args.body_timeout,
    )
    return run(settings)


def run(settings: ServeSettings) -> int:
    # Loaded here, not at import: `check` and `bootstrap` start without uvicorn.
    from clusterip_guard.core.names import NEVER_JUDGED_NAMESPACES
    from clusterip_guard.policyfile import PolicyHolder
    from clusterip_guard.server.app import create_app, create_health_app
    from clusterip_guard.server.lifecycle import Lifecycle
    from clusterip_guard.server.runner import bind, serve_forever
    from clusterip_guard.server.tls import (
        CertificateReloader,
        ca_failure,
        pair_failure,
        require_client_certificates,
        serving_context,
    )
    from clusterip_guard.telemetry.logs import configure_json_logging
    from clusterip_guard.telemetry.metrics import WebhookMetrics

    policy = PolicyHolder(settings.policy_file)
    try:
        context = serving_context(settings.cert_file, settings.key_file)
    except (OSError, ssl.SSLError) as error:
        failure = pair_failure(
            settings.cert_file, settings.key_file, error, cert_label="--cert-file",
            key_label="--key-file",
        )  # fmt: skip
        raise UsageError(f"cannot load the serving certificate: {failure}") from None
    if settings.client_ca is not None:
        try:
            require_client_certificates(context, settings.client_ca)
        except (OSError, ssl.SSLError) as error:
            failure = ca_failure(settings.client_ca, error, label="--client-ca")
            raise UsageError(f"cannot load the client CA: {failure}") from None
    metrics = WebhookMetrics()

    def listen(flag: str, port: int) -> socket.socket:
        try:
            return bind(settings.host, port)
        except OSError as error:
            raise UsageError(f"cannot listen on {flag} {port}: {error.strerror}") from None

    webhook_socket = listen("--port", settings.port)
    try:
        health_socket = (
            listen("--metrics-port", settings.metrics_port) if settings.metrics_port else None
        )
    except UsageError:
        webhook_socket.close()
        raise
    # Logs begin once every input loaded and both ports are ours: a mistake before that is
    # one line on stderr, with nothing logged as started.
    configure_json_logging(settings.log_level)
    never_judged = set(NEVER_JUDGED_NAMESPACES)
    if settings.own_namespace:
        never_judged.add(settings.own_namespace)
    lifecycle = Lifecycle()
    certificate = CertificateReloader(context, settings.cert_file, settings.key_file)
    metrics.certificate_expiry.set_function(lambda: certificate.not_after)
    app = create_app(
        policy=lambda: policy.current,
        metrics=metrics,
        never_judged=never_judged,
        reloaders=[policy, certificate],
        reload_interval=settings.reload_interval,
        max_body_bytes=settings.max_body_bytes,
        lifecycle=lifecycle,
    )
    health_app = create_health_app(metrics=metrics, lifecycle=lifecycle)
    # After a graceful stop uvicorn raises the signal it caught again; a SIGTERM that stopped
    # us cleanly is a clean exit, not a death by signal.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    started = serve_forever(
        app=app,
        health_app=health_app,
        settings=settings,
        context=context,
        lifecycle=lifecycle,
        metrics=metrics,
        webhook_socket=webhook_socket,
        health_socket=health_socket,
    )
    return EXIT_OK if started else EXIT_USAGE


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(EXIT_OK)
