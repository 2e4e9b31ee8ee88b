"""The serving TLS context, and loading a changed certificate into it without a restart."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

from cryptography import x509

from clusterip_guard.certs.pem import certificate_problem, key_problem, pair_problem
from clusterip_guard.reloading import PolledFiles, ReloadResult, Signature

log = logging.getLogger("clusterip_guard.tls")

# The API server speaks TLS 1.2 and 1.3; nothing older is offered.
MINIMUM_TLS_VERSION = ssl.TLSVersion.TLSv1_2


def serving_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A server TLS context (TLS 1.2 or newer) holding the given certificate and key."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = MINIMUM_TLS_VERSION
    _load_pair(context, cert_file, key_file)
    return context


def not_after(cert_file: Path) -> float:
    """When the (first) certificate in the file expires, as Unix time; 0 when unreadable."""
    try:
        certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except (OSError, ValueError):
        return 0.0
    return certificate.not_valid_after_utc.timestamp()


class EncryptedKey(ssl.SSLError):
    """The key asks for a pass phrase: OpenSSL would prompt on the terminal and wait."""


def _no_pass_phrase() -> bytes:
    raise EncryptedKey("the key is encrypted")


def _load_pair(context: ssl.SSLContext, cert_file: Path, key_file: Path) -> None:
    context.load_cert_chain(
        certfile=str(cert_file), keyfile=str(key_file), password=_no_pass_phrase
    )


def pair_failure(
    cert_file: Path,
    key_file: Path,
    error: Exception,
    *,
    cert_label: str = "certificate",
    key_label: str = "key",
) -> str:
    """One line on why a certificate and key did not load: which file, and what is wrong with
    it (missing, not PEM, the other half of the pair, a key from another pair)."""
    contents: list[bytes] = []
    for label, path, problem in (
        (cert_label, cert_file, certificate_problem),
        (key_label, key_file, key_problem),
    ):
        try:
            data = path.read_bytes()
        except OSError as read_error:
            return f"{label} {path}: {read_error.strerror or read_error}"
        reason = problem(data)
        if reason is not None:
            return f"{label} {path}: {reason}"
        contents.append(data)
    reason = pair_problem(*contents)
    if reason is not None:
        return f"{key_label} {key_file} and {cert_label} {cert_file}: {reason}"
    return f"{cert_label} {cert_file} / {key_label} {key_file}: {error}"


def ca_failure(ca_file: Path, error: Exception, *, label: str = "CA") -> str:
    """One line on why a CA file did not load."""
    try:
        reason = certificate_problem(ca_file.read_bytes())
    except OSError as read_error:
        reason = str(read_error.strerror or read_error)
    return f"{label} {ca_file}: {reason or error}"


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
        self._files = PolledFiles(cert_file, key_file)
        self.not_after = not_after(cert_file)  # of the certificate being served
        # The files and the reason of a failure already logged: a broken pair is tried again
        # at every look (the second half of a pair may land later) but said once per change.
        self._failure: tuple[Signature, str] | None = None

    def reload_if_changed(self) -> ReloadResult:
        if not self._files.changed() and self._failure is None:
            return "unchanged"
        try:
            # Check the pair in a scratch context first: the two files are often written one
            # after the other, and a half-written pair must not reach the live context.
            serving_context(self.cert_file, self.key_file)
            _load_pair(self.context, self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as error:
            failure = (self._files.seen, pair_failure(self.cert_file, self.key_file, error))
            if failure == self._failure:
                return "unchanged"  # said already, about these very files
            self._failure = failure
            log.error("certificate reload failed; keeping the current one: %s", failure[1])
            return "failed"
        self.not_after = not_after(self.cert_file)
        self._failure = None
        log.info("serving certificate reloaded from %s", self.cert_file)
        return "reloaded"
