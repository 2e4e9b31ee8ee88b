"""The node's certificates and kubeconfigs (made with hostkit), and the few API requests `up`
and `down` make themselves (readiness, the node's condition, deleting pods)."""

from __future__ import annotations

import json
import ssl
import urllib.request
from pathlib import Path

from hostkit.kubeconfig import client_context, kubeconfig, write_kubeconfig
from localnode.base import APISERVER_PORT, LOOPBACK, NODE_IP, NODE_NAME, SERVICE_IP

API_URL = f"https://{NODE_IP}:{APISERVER_PORT}"
# The clients of the API server, and the groups RBAC knows them by.
CLIENTS = {
    "admin": ("admin", ["system:masters"]),
    "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", ["system:masters"]),
    "kubelet": (f"system:node:{NODE_NAME}", ["system:nodes"]),
    "controller-manager": ("system:kube-controller-manager", []),
    "scheduler": ("system:kube-scheduler", []),
    "kube-proxy": ("system:kube-proxy", []),
}


def write_pki(pki: Path) -> None:
    """A throwaway CA, serving and client certificates for every component, an SA key pair.
    (cryptography is imported here only: `down` and `check` run on the standard library.)"""
    from hostkit.pki import CertificateAuthority, write_service_account_key  # noqa: PLC0415

    authority = CertificateAuthority.create(pki, "clusterip-guard-node-ca")
    authority.issue_server(
        "apiserver",
        "kube-apiserver",
        dns=[
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ],
        ips=[NODE_IP, LOOPBACK, SERVICE_IP],
    )
    authority.issue_server("kubelet-serving", NODE_NAME, dns=[NODE_NAME], ips=[NODE_IP])
    for name, (common_name, groups) in CLIENTS.items():
        authority.issue_client(name, common_name, groups)
    write_service_account_key(pki)


def write_node_kubeconfig(path: Path, pki: Path, user: str) -> None:
    config = kubeconfig(
        API_URL,
        ca_file=pki / "ca.crt",
        cert_file=pki / f"{user}.crt",
        key_file=pki / f"{user}.key",
        cluster="clusterip-guard-node",
        user=user,
    )
    write_kubeconfig(path, config)


def admin_context(pki: Path) -> ssl.SSLContext:
    return client_context(pki / "ca.crt", pki / "admin.crt", pki / "admin.key")


def api_request(
    pki: Path, method: str, path: str, body: dict[str, object] | None = None
) -> dict[str, object]:
    request = urllib.request.Request(
        f"{API_URL}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    with urllib.request.urlopen(request, context=admin_context(pki), timeout=5) as reply:
        decoded = json.loads(reply.read())
    return decoded if isinstance(decoded, dict) else {}
