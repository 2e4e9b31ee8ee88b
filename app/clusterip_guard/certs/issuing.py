"""Certificates for the webhook: a CA and a serving certificate. Pure: PEM bytes in and out.

ECDSA P-256 keys: the API server accepts them, and they are made in microseconds where RSA
takes a noticeable pause, which matters to the tests and to a bootstrap that runs often.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALIDITY = datetime.timedelta(days=3650)
SERVING_VALIDITY = datetime.timedelta(days=365)
# Issued a little in the past, so a node whose clock runs behind still accepts it.
CLOCK_SKEW = datetime.timedelta(minutes=5)
PEM_END = b"-----END CERTIFICATE-----"


class CertificateError(ValueError):
    """A certificate cannot be made or read; the message is one line."""


@dataclass(frozen=True)
class KeyPair:
    cert_pem: bytes
    key_pem: bytes


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )


def new_certificate_authority(
    *,
    now: datetime.datetime,
    valid_for: datetime.timedelta = CA_VALIDITY,
    common_name: str = "clusterip-guard-ca",
) -> KeyPair:
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + valid_for)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signs_certificates=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(certificate.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def service_dns_names(service: str, namespace: str) -> list[str]:
    """The names the API server may use to reach an in-cluster Service."""
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


def new_serving_certificate(
    ca: KeyPair,
    *,
    now: datetime.datetime,
    dns_names: Sequence[str],
    ip_addresses: Sequence[str] = (),
    valid_for: datetime.timedelta = SERVING_VALIDITY,
) -> KeyPair:
    try:
        ips = [ipaddress.ip_address(ip) for ip in ip_addresses]
    except ValueError as error:
        raise CertificateError(str(error)) from error
    if not dns_names and not ips:
        raise CertificateError("a serving certificate needs at least one DNS name or IP")
    alternative_names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    alternative_names += [x509.IPAddress(ip) for ip in ips]
    return _issue_leaf(
        ca,
        now=now,
        valid_for=valid_for,
        common_name=dns_names[0] if dns_names else str(ips[0]),
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        alternative_names=alternative_names,
    )


def new_client_certificate(
    ca: KeyPair,
    *,
    now: datetime.datetime,
    common_name: str = "kube-apiserver",
    valid_for: datetime.timedelta = SERVING_VALIDITY,
) -> KeyPair:
    """A client certificate signed by `ca`: what the API server presents to the webhook when
    `serve --client-ca` requires one (an AdmissionConfiguration names it)."""
    return _issue_leaf(
        ca,
        now=now,
        valid_for=valid_for,
        common_name=common_name,
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
    )


def _issue_leaf(
    ca: KeyPair,
    *,
    now: datetime.datetime,
    valid_for: datetime.timedelta,
    common_name: str,
    usage: x509.ObjectIdentifier,
    alternative_names: list[x509.GeneralName] | None = None,
) -> KeyPair:
    """A certificate for one use (serving or client), signed by `ca`, never outliving it."""
    ca_certificate = _load(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise CertificateError("the CA key is not an ECDSA key")
    key = _new_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(min(now + valid_for, ca_certificate.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signs_certificates=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if alternative_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(alternative_names), critical=False
        )
    certificate = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
    ).sign(ca_key, hashes.SHA256())
    return KeyPair(certificate.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _load(cert_pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(cert_pem)
    except ValueError as error:
        raise CertificateError(f"not a PEM certificate: {error}") from error


def not_after(cert_pem: bytes) -> datetime.datetime:
    return _load(cert_pem).not_valid_after_utc


def needs_renewal(cert_pem: bytes, *, now: datetime.datetime, margin: datetime.timedelta) -> bool:
    """True when the certificate is unreadable, not yet valid, or expires within `margin`."""
    try:
        certificate = _load(cert_pem)
    except CertificateError:
        return True
    return not (certificate.not_valid_before_utc <= now < certificate.not_valid_after_utc - margin)


def subject_alternative_names(cert_pem: bytes) -> tuple[list[str], list[str]]:
    try:
        extension = _load(cert_pem).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return [], []
    names = extension.value
    return (
        names.get_values_for_type(x509.DNSName),
        [str(ip) for ip in names.get_values_for_type(x509.IPAddress)],
    )


def covers(cert_pem: bytes, dns_names: Sequence[str], ip_addresses: Sequence[str]) -> bool:
    """Whether the certificate names every given host and IP."""
    try:
        dns, ips = subject_alternative_names(cert_pem)
        wanted_ips = {str(ipaddress.ip_address(ip)) for ip in ip_addresses}
    except (CertificateError, ValueError):
        return False
    return set(dns_names) <= set(dns) and wanted_ips <= set(ips)


def signed_by(cert_pem: bytes, ca_cert_pem: bytes) -> bool:
    try:
        certificate = _load(cert_pem)
        certificate.verify_directly_issued_by(_load(ca_cert_pem))
    except (CertificateError, ValueError, TypeError, InvalidSignature):
        return False
    return True


def split_pem_bundle(bundle: bytes) -> list[bytes]:
    """The certificates of a PEM bundle, each ending in a newline."""
    certificates: list[bytes] = []
    for part in bundle.split(PEM_END):
        start = part.find(b"-----BEGIN CERTIFICATE-----")
        if start != -1:
            certificates.append(part[start:] + PEM_END + b"\n")
    return certificates


def join_ca_bundle(*bundles: bytes) -> bytes:
    """One PEM bundle of every certificate given, each once, in order (old CA, then new)."""
    seen: list[bytes] = []
    for bundle in bundles:
        for certificate in split_pem_bundle(bundle):
            if certificate not in seen:
                seen.append(certificate)
    return b"".join(seen)
