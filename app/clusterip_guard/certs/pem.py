"""Why PEM bytes are not the certificate or key they should be, in words an admin can act on.

OpenSSL says "PEM lib" for a missing BEGIN line, a key given as the certificate and a file
that is not PEM at all alike; these say which. Pure: bytes in, a reason (or None) out.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

_BEGIN = b"-----BEGIN "
_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
_PRIVATE_KEY = b"PRIVATE KEY-----"


def certificate_problem(data: bytes) -> str | None:
    """Why `data` is not one or more PEM certificates; None when it is."""
    if not data.strip():
        return "it is empty"
    if _BEGIN not in data:
        return "it is not PEM (no -----BEGIN line)"
    if _CERTIFICATE not in data:
        if _PRIVATE_KEY in data:
            return "it holds a private key, not a certificate"
        return "it holds no PEM certificate"
    try:
        x509.load_pem_x509_certificates(data)
    except ValueError:
        return "its certificate cannot be read (damaged PEM)"
    return None


def key_problem(data: bytes) -> str | None:
    """Why `data` is not an unencrypted PEM private key; None when it is."""
    if not data.strip():
        return "it is empty"
    if _BEGIN not in data:
        return "it is not PEM (no -----BEGIN line)"
    if _PRIVATE_KEY not in data:
        if _CERTIFICATE in data:
            return "it holds a certificate, not a private key"
        return "it holds no PEM private key"
    try:
        serialization.load_pem_private_key(data, password=None)
    except TypeError:
        return "the key is encrypted; give it unencrypted (openssl pkey -in FILE)"
    except (ValueError, UnsupportedAlgorithm):
        return "its private key cannot be read (damaged PEM)"
    return None


def pair_problem(cert_pem: bytes, key_pem: bytes) -> str | None:
    """Why the key is not the first certificate's key; None when it is (or either is
    unreadable: `certificate_problem` and `key_problem` say why)."""
    try:
        certificate = x509.load_pem_x509_certificates(cert_pem)[0]
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm, IndexError):
        return None
    public = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if certificate.public_key().public_bytes(*public) != key.public_key().public_bytes(*public):
        return "the key does not match the certificate (they are from different pairs)"
    return None
