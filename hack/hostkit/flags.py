"""The flags etcd and kube-apiserver take in every cluster of ours; each tool adds its own."""

from __future__ import annotations

from pathlib import Path

from hostkit.processes import LOOPBACK


def etcd_flags(data_dir: Path, port: int, peer_port: int) -> list[str]:
    client_url = f"http://{LOOPBACK}:{port}"  # plain http: loopback only, throwaway data
    peer_url = f"http://{LOOPBACK}:{peer_port}"
    return [
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client_url}",
        f"--advertise-client-urls={client_url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster=default={peer_url}",
        "--unsafe-no-fsync=true",  # throwaway data: durability buys nothing here
        "--log-level=warn",
    ]


def apiserver_flags(
    *,
    etcd_url: str,
    address: str,
    port: int,
    pki: Path,
    service_cidr: str,
    service_account_issuer: str,
    authorization_mode: str,
    cert_dir: Path,
) -> list[str]:
    """`pki` holds ca.crt, apiserver.crt and .key, sa.key and sa.pub (hostkit.pki's names).
    Kubernetes 1.37 serves MutatingAdmissionPolicy at v1 by default, so no --feature-gates or
    --runtime-config is needed for either admission policy API."""
    return [
        f"--etcd-servers={etcd_url}",
        f"--advertise-address={address}",
        f"--bind-address={address}",
        f"--secure-port={port}",
        f"--tls-cert-file={pki / 'apiserver.crt'}",
        f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        f"--service-account-issuer={service_account_issuer}",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        f"--service-cluster-ip-range={service_cidr}",
        "--service-node-port-range=30000-32767",
        f"--authorization-mode={authorization_mode}",
        "--allow-privileged=true",
        f"--cert-dir={cert_dir}",
    ]
