"""The local control plane: throwaway PKI (`pki`), process supervision (`processes`), and the
launcher (`launcher`): `start(workdir)` for tests, `up`/`down` for `make up`/`make down`."""

from __future__ import annotations

from localcluster.errors import ControlPlaneError
from localcluster.launcher import (
    HOLD_AT_VARIABLE,
    ControlPlane,
    admin_context,
    apiserver_flags,
    assets_dir,
    down,
    etcd_flags,
    read_state,
    record_extra_pid,
    start,
    up,
    user_kubeconfig,
)
from localcluster.pki import LOOPBACK, SERVICE_CIDR, Credentials, kubeconfig, write_credentials
from localcluster.processes import free_port, free_ports, started_at, stop_pid

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
