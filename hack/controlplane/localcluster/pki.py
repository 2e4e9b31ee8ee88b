"""Throwaway certificates for the local control plane: a CA, the API server's serving
certificate, a service-account key, and client certificates for admin and test users.

Valid for a week: the control plane lives for a test run or a demo, never longer.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from localcluster.errors import ControlPlaneError

LOOPBACK = "127.0.0.1"
# envtest uses a /24; a /16 so that tests streaming Service creates never run out of ClusterIPs.
# Either way the first address, 10.0.0.1 (the `kubernetes` Service), is in the serving cert.
SERVICE_CIDR = "10.0.0.0/16"
VALIDITY = datetime.timedelta(days=7)
# Issued a little in the past, so a clock that runs behind still accepts them.
CLOCK_SKEW = datetime.timedelta(minutes=5)


class PKIError(ControlPlaneError):
    """A certificate or key of the local PKI cannot be read or made."""


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem_cert(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _issue(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *,
    usage: x509.ObjectIdentifier | None = None,
    names: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, signing_key = (subject, key) if issuer is None else (issuer[0].subject, issuer[1])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def _common_name(name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


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
    """A CA, the API server's serving certificate, a service-account key and an admin client."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca = _issue(_common_name("clusterip-guard-local-ca"), ca_key, None)
    service_ip = ipaddress.IPv4Network(SERVICE_CIDR)[1]  # the `kubernetes` Service
    serving_key = _key()
    serving = _issue(
        _common_name("kube-apiserver"),
        serving_key,
        (ca, ca_key),
        usage=x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
        names=[
            x509.DNSName("localhost"),
            x509.DNSName("kubernetes.default.svc"),
            x509.IPAddress(ipaddress.ip_address(LOOPBACK)),
            x509.IPAddress(service_ip),
        ],
    )
    admin_key = _key()
    admin = _issue(
        _common_name("admin", "system:masters"),
        admin_key,
        (ca, ca_key),
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    account_key = _key()
    files = Credentials.in_folder(folder, "admin")
    files.ca_file.write_bytes(_pem_cert(ca))
    (folder / "ca.key").write_bytes(_pem_key(ca_key))  # kept to mint users for RBAC tests
    files.serving_cert.write_bytes(_pem_cert(serving))
    files.serving_key.write_bytes(_pem_key(serving_key))
    files.admin_cert.write_bytes(_pem_cert(admin))
    files.admin_key.write_bytes(_pem_key(admin_key))
    files.service_account_key.write_bytes(_pem_key(account_key))
    files.service_account_public.write_bytes(
        account_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return files


def kubeconfig(url: str, credentials: Credentials) -> dict[str, object]:
    def data(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "local",
                "cluster": {
                    "server": url,
                    "certificate-authority-data": data(credentials.ca_file),
                },
            }
        ],
        "users": [
            {
                "name": "admin",
                "user": {
                    "client-certificate-data": data(credentials.admin_cert),
                    "client-key-data": data(credentials.admin_key),
                },
            }
        ],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "admin"}}],
        "current-context": "local",
    }


def write_user_credentials(pki: Path, user: str, groups: tuple[str, ...] = ()) -> Credentials:
    """A client certificate for another user, signed by the local CA kept in `pki`."""
    ca_key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise PKIError("the local CA key is not an ECDSA key")
    ca = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, user)]
    attributes += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, group) for group in groups]
    key = _key()
    certificate = _issue(
        x509.Name(attributes), key, (ca, ca_key), usage=ExtendedKeyUsageOID.CLIENT_AUTH
    )
    (pki / f"{user}.crt").write_bytes(_pem_cert(certificate))
    (pki / f"{user}.key").write_bytes(_pem_key(key))
    return Credentials.in_folder(pki, user)
