"""`clusterip-guard sync`: keeps the native engine's admission policies what the policy's
ConfigMap says (docs/design.md, "Engines")."""

from __future__ import annotations

import argparse
import os
import socket
import threading
from typing import Any, TextIO

from clusterip_guard.cli import options
from clusterip_guard.cli.options import UsageError
from clusterip_guard.core.types import as_mode

EXIT_OK = 0
LEASE_NAME = "clusterip-guard-sync"


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "sync",
        help="keep the native engine's admission policies what the policy ConfigMap says",
        description=(
            "Render the policy in a ConfigMap into admission policies (the native engine) and "
            "apply them; again within seconds of every change of the ConfigMap, and on the day "
            "an exemption ends. A broken policy is logged and never applied. One writer among "
            "replicas, by a Lease."
        ),
    )
    options.add_cluster_flags(parser)
    parser.add_argument(
        "--policy-configmap",
        required=True,
        metavar="NAMESPACE/NAME",
        help="the ConfigMap holding the policy",
    )
    parser.add_argument("--key", default="policy.yaml", help="its key (default: %(default)s)")
    options.add_installation_flags(parser)
    parser.add_argument(
        "--resync-seconds",
        type=options.non_negative_seconds,
        default=300.0,
        help="render again at least this often (default: %(default)s)",
    )
    parser.add_argument(
        "--lease-namespace", help="the Lease's namespace (default: POD_NAMESPACE, or default)"
    )
    parser.add_argument("--once", action="store_true", help="render and apply once, then exit")
    parser.set_defaults(invoke=invoke)


def invoke(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    # Loaded here, not at import: the Kubernetes client takes a while to import.
    import datetime

    from clusterip_guard.cluster.client import session
    from clusterip_guard.cluster.settings import BootstrapSettings
    from clusterip_guard.cluster.syncing import PolicySource, StandDown, keep_synced, sync_once
    from clusterip_guard.cluster.watching import lead
    from clusterip_guard.telemetry.logs import configure_json_logging

    namespace, _, name = args.policy_configmap.partition("/")
    if not namespace or not name:
        raise UsageError(f"--policy-configmap {args.policy_configmap}: give NAMESPACE/NAME")
    source = PolicySource(namespace, name, args.key)
    settings = BootstrapSettings(
        namespace=args.namespace,
        configuration_name=args.name,
        default_mode=as_mode(args.default_mode),
        excluded_namespaces=tuple(args.exclude_namespace),
        engine="native",
        # In the chart, the sync runs in the release's namespace, which it names.
        runs_in_namespace=os.environ.get("POD_NAMESPACE") == args.namespace,
    )
    with session(args.kubeconfig, args.context) as api:
        if args.once:
            try:
                sync_once(api, settings, source, datetime.datetime.now(datetime.UTC).date())
            except StandDown as error:
                print(f"standing down: {error}", file=stdout)
            return EXIT_OK
        configure_json_logging("info")
        stop = threading.Event()
        lead(
            api,
            namespace=args.lease_namespace or os.environ.get("POD_NAMESPACE") or "default",
            name=LEASE_NAME,
            identity=f"{socket.gethostname()}-{os.getpid()}",
            work=lambda: keep_synced(
                api, settings, source, resync_seconds=args.resync_seconds, stop=stop
            ),
        )
    return EXIT_OK
