"""Throwaway certificates for a cluster of ours: a CA, serving and client certificates issued by
it, and a service-account key pair. ECDSA P-256, valid for a week: these clusters live for a
test run or a demo, never longer.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hostkit.errors import HostError

VALIDITY = datetime.timedelta(days=7)
# Issued a little in the past, so a clock that runs behind still accepts them.
CLOCK_SKEW = datetime.timedelta(minutes=5)


class PKIError(HostError):
    """A certificate or key of the PKI cannot be read or made."""


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str, organizations: Sequence[str] = ()) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    attributes += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    return x509.Name(attributes)


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + VALIDITY)
    )


def _usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=not ca,
        data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip


class CertificateAuthority:
    """A CA whose certificate and key live in `folder` (ca.crt, ca.key), and what it issues
    there (NAME.crt, NAME.key)."""

    def __init__(
        self, folder: Path, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey
    ) -> None:
        self.folder = folder
        self.certificate = certificate
        self.key = key

    @property
    def cert_file(self) -> Path:
        return self.folder / "ca.crt"

    @property
    def key_file(self) -> Path:
        return self.folder / "ca.key"

    @classmethod
    def create(cls, folder: Path, common_name: str) -> CertificateAuthority:
        folder.mkdir(parents=True, exist_ok=True)
        key = _key()
        subject = _name(common_name)
        certificate = (
            _builder(subject, subject, key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_usage(ca=True), critical=True)
            .sign(key, hashes.SHA256())
        )
        authority = cls(folder, certificate, key)
        authority.cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        authority.key_file.write_bytes(_pem_key(key))
        authority.key_file.chmod(0o600)
        return authority

    @classmethod
    def load(cls, folder: Path) -> CertificateAuthority:
        try:
            key = serialization.load_pem_private_key(
                (folder / "ca.key").read_bytes(), password=None
            )
            certificate = x509.load_pem_x509_certificate((folder / "ca.crt").read_bytes())
        except (OSError, ValueError) as error:
            raise PKIError(f"the CA in {folder} cannot be loaded: {error}") from error
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise PKIError(f"the CA key in {folder} is not an ECDSA key")
        return cls(folder, certificate, key)

    def _issue(
        self,
        name: str,
        subject: x509.Name,
        usage: x509.ObjectIdentifier,
        names: list[x509.GeneralName],
    ) -> Pair:
        key = _key()
        builder = (
            _builder(subject, self.certificate.subject, key)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        certificate = builder.sign(self.key, hashes.SHA256())
        pair = Pair(self.folder / f"{name}.crt", self.folder / f"{name}.key")
        pair.cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        pair.key.write_bytes(_pem_key(key))
        pair.key.chmod(0o600)
        return pair

    def issue_server(
        self, name: str, common_name: str, *, dns: Sequence[str] = (), ips: Sequence[str] = ()
    ) -> Pair:
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        return self._issue(name, _name(common_name), ExtendedKeyUsageOID.SERVER_AUTH, names)

    def issue_client(self, name: str, common_name: str, groups: Sequence[str] = ()) -> Pair:
        """A client certificate: the API server reads the user from CN and groups from O."""
        return self._issue(name, _name(common_name, groups), ExtendedKeyUsageOID.CLIENT_AUTH, [])


def write_service_account_key(folder: Path) -> Pair:
    """sa.key and sa.pub: what signs and verifies service-account tokens."""
    key = _key()
    pair = Pair(folder / "sa.pub", folder / "sa.key")
    pair.key.write_bytes(_pem_key(key))
    pair.key.chmod(0o600)
    pair.cert.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pair
