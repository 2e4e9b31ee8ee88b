"""The serving TLS context, and loading a changed certificate into it without a restart."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

from cryptography import x509

from clusterip_guard.server.watch import ReloadResult, WatchedFiles

log = logging.getLogger("clusterip_guard.tls")

# The API server speaks TLS 1.2 and 1.3; nothing older is offered.
MINIMUM_TLS_VERSION = ssl.TLSVersion.TLSv1_2


def serving_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A server TLS context (TLS 1.2 or newer) holding the given certificate and key."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = MINIMUM_TLS_VERSION
    context.load_cert_chain(certfile=str(cert_file), keyfile=str(key_file))
    return context


def not_after(cert_file: Path) -> float:
    """When the (first) certificate in the file expires, as Unix time; 0 when unreadable."""
    try:
        certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except (OSError, ValueError):
        return 0.0
    return certificate.not_valid_after_utc.timestamp()


def require_client_certificates(context: ssl.SSLContext, client_ca: Path) -> None:
    """Every client must present a certificate `client_ca` signed (the API server does, when
    its AdmissionConfiguration names one). Probes then use the plain-HTTP port."""
    context.load_verify_locations(cafile=str(client_ca))
    context.verify_mode = ssl.CERT_REQUIRED


class CertificateReloader:
    """Loads a changed certificate and key into the live TLS context.

    OpenSSL copies the certificate into each connection when its handshake starts, so new
    handshakes get the new certificate while open connections finish on the old one.
    """

    name = "certificate"

    def __init__(self, context: ssl.SSLContext, cert_file: Path, key_file: Path) -> None:
        self.context = context
        self.cert_file = cert_file
        self.key_file = key_file
        self._files = WatchedFiles(cert_file, key_file)
        self.not_after = not_after(cert_file)  # of the certificate being served

    def reload_if_changed(self) -> ReloadResult:
        if not self._files.changed():
            return "unchanged"
        try:
            # Check the pair in a scratch context first: the two files are often written one
            # after the other, and a half-written pair must not reach the live context.
            serving_context(self.cert_file, self.key_file)
            self.context.load_cert_chain(certfile=str(self.cert_file), keyfile=str(self.key_file))
        except (OSError, ssl.SSLError) as error:
            log.error("certificate reload failed; keeping the current one: %s", error)
            # The second half of a pair may land later without changing the first again:
            # look afresh at the next tick.
            self._files.forget()
            return "failed"
        self.not_after = not_after(self.cert_file)
        log.info("serving certificate reloaded from %s", self.cert_file)
        return "reloaded"
