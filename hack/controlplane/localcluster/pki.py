"""The local control plane's certificates (made with hostkit.pki): a CA, the API server's
serving certificate, a service-account key, and client certificates for admin and test users.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from hostkit.kubeconfig import kubeconfig as kubeconfig_for
from hostkit.pki import CertificateAuthority, write_service_account_key
from hostkit.processes import LOOPBACK

# envtest uses a /24; a /16 so that tests streaming Service creates never run out of ClusterIPs.
# Either way the first address, 10.0.0.1 (the `kubernetes` Service), is in the serving cert.
SERVICE_CIDR = "10.0.0.0/16"

__all__ = ["LOOPBACK", "SERVICE_CIDR", "Credentials", "kubeconfig", "write_credentials"]


@dataclass(frozen=True)
class Credentials:
    ca_file: Path
    serving_cert: Path
    serving_key: Path
    service_account_key: Path
    service_account_public: Path
    admin_cert: Path
    admin_key: Path

    @classmethod
    def in_folder(cls, folder: Path, user: str) -> Credentials:
        """Where the files live; `user` names the client certificate."""
        return cls(
            ca_file=folder / "ca.crt",
            serving_cert=folder / "apiserver.crt",
            serving_key=folder / "apiserver.key",
            service_account_key=folder / "sa.key",
            service_account_public=folder / "sa.pub",
            admin_cert=folder / f"{user}.crt",
            admin_key=folder / f"{user}.key",
        )


def write_credentials(folder: Path) -> Credentials:
    """A CA, the API server's serving certificate, a service-account key and an admin client.
    The CA key is kept, to mint users for RBAC tests."""
    authority = CertificateAuthority.create(folder, "clusterip-guard-local-ca")
    service_ip = str(ipaddress.IPv4Network(SERVICE_CIDR)[1])  # the `kubernetes` Service
    authority.issue_server(
        "apiserver", "kube-apiserver",
        dns=["localhost", "kubernetes.default.svc"], ips=[LOOPBACK, service_ip],
    )  # fmt: skip
    authority.issue_client("admin", "admin", ["system:masters"])
    write_service_account_key(folder)
    return Credentials.in_folder(folder, "admin")


def kubeconfig(url: str, credentials: Credentials) -> dict[str, object]:
    return kubeconfig_for(
        url,
        ca_file=credentials.ca_file,
        cert_file=credentials.admin_cert,
        key_file=credentials.admin_key,
        cluster="local",
        user="admin",
    )


def write_user_credentials(pki: Path, user: str, groups: tuple[str, ...] = ()) -> Credentials:
    """A client certificate for another user, signed by the local CA kept in `pki`."""
    CertificateAuthority.load(pki).issue_client(user, user, groups)
    return Credentials.in_folder(pki, user)
