"""Files that are reloaded when they change on disk: the policy and the serving certificate.

Kubernetes updates a mounted Secret or ConfigMap by swapping a symlink, so a change is seen
as a new (inode, size, mtime) of the file the path resolves to. A broken new file never
replaces a good one: the last good policy or certificate stays in use and the reason is logged.
"""

from __future__ import annotations

import logging
import os
import ssl
from pathlib import Path
from typing import Literal, Protocol

from app.policy_file import PolicyError, PolicySettings, parse_policy

log = logging.getLogger("clusterip_guard.reload")

MINIMUM_TLS_VERSION = ssl.TLSVersion.TLSv1_2

Signature = tuple[tuple[int, int, int], ...]


ReloadResult = Literal["unchanged", "reloaded", "failed"]


class Reloadable(Protocol):
    name: str

    def reload_if_changed(self) -> ReloadResult: ...


def _signature(paths: tuple[Path, ...]) -> Signature:
    signatures: list[tuple[int, int, int]] = []
    for path in paths:
        try:
            stat = os.stat(path)
        except OSError:
            signatures.append((0, 0, 0))
        else:
            signatures.append((stat.st_ino, stat.st_size, stat.st_mtime_ns))
    return tuple(signatures)


class WatchedFiles:
    """Tells whether any of a few files changed since the last look."""

    def __init__(self, *paths: Path) -> None:
        self.paths = paths
        self._seen = _signature(paths)

    def changed(self) -> bool:
        current = _signature(self.paths)
        if current == self._seen:
            return False
        self._seen = current
        return True

    def forget(self) -> None:
        """Count the files as changed at the next look."""
        self._seen = ()


def read_policy_file(path: Path | None) -> PolicySettings:
    """Read and validate a policy file; no file means the default policy."""
    if path is None:
        return PolicySettings()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PolicyError(f"cannot read policy file {path}: {error}") from error
    return parse_policy(text)


class PolicyHolder:
    """The policy in force; swapped whole on a good reload, kept on a bad one."""

    name = "policy"

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.current = read_policy_file(path)
        self._files = WatchedFiles(path) if path is not None else None

    def reload_if_changed(self) -> ReloadResult:
        if self._files is None or not self._files.changed():
            return "unchanged"
        try:
            self.current = read_policy_file(self.path)
        except PolicyError as error:
            log.error("policy reload failed; keeping the last good policy: %s", error)
            return "failed"
        log.info("policy reloaded from %s", self.path)
        return "reloaded"


def serving_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A server TLS context (TLS 1.2 or newer) holding the given certificate and key."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = MINIMUM_TLS_VERSION
    context.load_cert_chain(certfile=str(cert_file), keyfile=str(key_file))
    return context


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
        log.info("serving certificate reloaded from %s", self.cert_file)
        return "reloaded"
