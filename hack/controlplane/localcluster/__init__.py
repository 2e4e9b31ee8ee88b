"""The local control plane: its certificates (`pki`) and the launcher (`launcher`):
`start(workdir)` for tests, `up`/`down` for `make up`/`make down`. What it shares with the
real node (processes, PKI, kubeconfigs, state, flags) is in hack/hostkit."""

from __future__ import annotations

from hostkit.flags import etcd_flags
from hostkit.processes import free_port, free_ports, started_at, stop_pid
from localcluster.errors import ControlPlaneError
from localcluster.launcher import (
    HOLD_AT_VARIABLE,
    ControlPlane,
    admin_context,
    apiserver_flags,
    assets_dir,
    down,
    read_state,
    record_extra_pid,
    start,
    up,
    user_kubeconfig,
)
from localcluster.pki import LOOPBACK, SERVICE_CIDR, Credentials, kubeconfig, write_credentials

__all__ = [
    "HOLD_AT_VARIABLE",
    "LOOPBACK",
    "SERVICE_CIDR",
    "ControlPlane",
    "ControlPlaneError",
    "Credentials",
    "admin_context",
    "apiserver_flags",
    "assets_dir",
    "down",
    "etcd_flags",
    "free_port",
    "free_ports",
    "kubeconfig",
    "read_state",
    "record_extra_pid",
    "start",
    "started_at",
    "stop_pid",
    "up",
    "user_kubeconfig",
    "write_credentials",
]
