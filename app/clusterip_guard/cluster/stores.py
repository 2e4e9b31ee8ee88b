"""Where the certificates live: a Secret pair in the cluster, or files beside a webhook
that runs outside it. Each store loads the current state, saves a planned one, and removes it.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from kubernetes import client

from clusterip_guard.certs.issuing import KeyPair
from clusterip_guard.certs.pem import certificate_problem, key_problem, pair_problem
from clusterip_guard.certs.rotation import CertificateState
from clusterip_guard.cluster.client import RunLog, read_or_none
from clusterip_guard.cluster.errors import CertificateFilesError
from clusterip_guard.cluster.writing import ObjectAPI, as_plain, write_object
from clusterip_guard.core.names import NAME_LABEL, PROJECT
from clusterip_guard.core.types import Manifest

TLS_SECRET_TYPE = "kubernetes.io/tls"


# What a dry run shows in place of a private key: never the key itself.
REDACTED = "REDACTED: a private key; bootstrap without --dry-run stores it"


class CertificateStore(Protocol):
    def load(self) -> CertificateState: ...
    def save(self, state: CertificateState, report: RunLog) -> None: ...
    def preview(self, state: CertificateState) -> tuple[list[Manifest], list[str]]:
        """What a dry run prints: objects (private keys redacted), and comments for the rest."""
        ...

    def remove(self, report: RunLog, *, dry_run: bool = False) -> None: ...


def redacted(secret: Manifest) -> Manifest:
    """A Secret whose private keys (`*.key`) read REDACTED: still a valid Secret of its type
    (stringData fills data), never a key."""
    data = dict(secret.get("data", {}))
    hidden = {key: REDACTED for key in data if key.endswith(".key")}
    shown = {key: value for key, value in data.items() if key not in hidden}
    return {**secret, "data": shown, "stringData": hidden}


def _pem(data: Mapping[str, str | bytes] | None, key: str) -> bytes | None:
    if not data or key not in data:
        return None
    return base64.b64decode(data[key])


def _complete(state: CertificateState) -> tuple[KeyPair, KeyPair]:
    """The CA and serving pair of a planned state (a plan always has both)."""
    if state.ca is None or state.serving is None:
        raise ValueError("certificate state without a CA or a serving certificate")
    return state.ca, state.serving


def _pair(cert: bytes | None, key: bytes | None) -> KeyPair | None:
    return KeyPair(cert, key) if cert and key else None


def check_loaded(
    files: Mapping[str, bytes | None], where: Callable[[str], str], remedy: str
) -> None:
    """Every certificate and key found must load, and each key match its certificate: a
    damaged one is named (`where(name)`) with why, rather than failing deep in the renewal."""
    for name, data in files.items():
        if data is None:
            continue
        problem = key_problem if name.endswith(".key") else certificate_problem
        reason = problem(data)
        if reason is not None:
            raise CertificateFilesError(f"{where(name)}: {reason}; {remedy}")
    for cert_name, key_name in (("tls.crt", "tls.key"), ("ca-signing.crt", "ca-signing.key")):
        cert, key = files.get(cert_name), files.get(key_name)
        reason = pair_problem(cert, key) if cert and key else None
        if reason is not None:
            raise CertificateFilesError(
                f"{where(key_name)} and {where(cert_name)}: {reason}; {remedy}"
            )


def _secret_data(values: dict[str, bytes]) -> dict[str, str]:
    return {k: base64.b64encode(v).decode("ascii") for k, v in values.items()}


def _in_secret(secret: str) -> Callable[[str], str]:
    return lambda key: f"Secret {secret} key {key}"


class SecretStore:
    """Service mode: the serving pair in a kubernetes.io/tls Secret (with ca.crt) that the
    webhook mounts, and the CA in a second Secret that the webhook never sees."""

    def __init__(
        self, api: client.ApiClient, *, namespace: str, secret_name: str, ca_secret_name: str
    ) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.secret_name = secret_name
        self.ca_secret_name = ca_secret_name

    def _read(self, name: str) -> client.V1Secret | None:
        ns = self.namespace
        return read_or_none(
            "get", "secrets", ns, functools.partial(self.core.read_namespaced_secret, name, ns)
        )

    def load(self) -> CertificateState:
        tls = self._read(self.secret_name)
        ca = self._read(self.ca_secret_name)
        tls_data = tls.data if tls is not None else None
        ca_data = ca.data if ca is not None else None
        ns = self.namespace
        for name, data in ((self.secret_name, tls_data), (self.ca_secret_name, ca_data)):
            check_loaded(
                {key: _pem(data, key) for key in ("tls.crt", "tls.key", "ca.crt", "bundle.crt")},
                _in_secret(f"{ns}/{name}"),
                f"restore it, or delete Secret {ns}/{name} for the bootstrap to issue anew",
            )
        return CertificateState(
            ca=_pair(_pem(ca_data, "tls.crt"), _pem(ca_data, "tls.key")),
            ca_bundle=_pem(ca_data, "bundle.crt") or b"",
            serving=_pair(_pem(tls_data, "tls.crt"), _pem(tls_data, "tls.key")),
        )

    def manifests(self, state: CertificateState) -> list[Manifest]:
        ca, serving = _complete(state)
        labels = {NAME_LABEL: PROJECT}
        return [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": TLS_SECRET_TYPE,
                "metadata": {
                    "name": self.ca_secret_name,
                    "namespace": self.namespace,
                    "labels": labels,
                },
                "data": _secret_data(
                    {
                        "tls.crt": ca.cert_pem,
                        "tls.key": ca.key_pem,
                        "bundle.crt": state.ca_bundle,
                    }
                ),
            },
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": TLS_SECRET_TYPE,
                "metadata": {
                    "name": self.secret_name,
                    "namespace": self.namespace,
                    "labels": labels,
                },
                "data": _secret_data(
                    {
                        "tls.crt": serving.cert_pem,
                        "tls.key": serving.key_pem,
                        "ca.crt": state.ca_bundle,
                    }
                ),
            },
        ]

    def preview(self, state: CertificateState) -> tuple[list[Manifest], list[str]]:
        return [redacted(secret) for secret in self.manifests(state)], []

    def save(self, state: CertificateState, report: RunLog) -> None:
        ns = self.namespace
        for manifest in self.manifests(state):
            name = manifest["metadata"]["name"]
            written = write_object(
                ObjectAPI(
                    resource="secrets",
                    namespace=ns,
                    read=functools.partial(self._read_plain, name),
                    create=functools.partial(self.core.create_namespaced_secret, ns),
                    replace=functools.partial(self.core.replace_namespaced_secret, name, ns),
                ),
                manifest,
            )
            report.say(f"{written} Secret {ns}/{name}")

    def _read_plain(self, name: str) -> Manifest:
        return as_plain(self.api, self.core.read_namespaced_secret(name, self.namespace))

    def remove(self, report: RunLog, *, dry_run: bool = False) -> None:
        ns = self.namespace
        for name in (self.secret_name, self.ca_secret_name):
            if dry_run:
                found = self._read(name)
                report.say(
                    f"would delete Secret {ns}/{name}" if found else f"no Secret {ns}/{name}"
                )
                continue
            deleted = read_or_none(
                "delete",
                "secrets",
                ns,
                functools.partial(self.core.delete_namespaced_secret, name, ns),
            )
            report.say(
                f"deleted Secret {ns}/{name}" if deleted is not None else f"no Secret {ns}/{name}"
            )


class FileStore:
    """Url mode: files for a webhook outside the cluster (the demo, a VM, a laptop)."""

    FILES = ("ca.crt", "ca-signing.crt", "ca-signing.key", "tls.crt", "tls.key")

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _read(self, name: str) -> bytes | None:
        return read_file(self.folder / name)

    def load(self) -> CertificateState:
        check_loaded(
            {name: self._read(name) for name in self.FILES},
            lambda name: str(self.folder / name),
            "restore it, or delete it (and its pair) for the bootstrap to issue anew",
        )
        return CertificateState(
            ca=_pair(self._read("ca-signing.crt"), self._read("ca-signing.key")),
            ca_bundle=self._read("ca.crt") or b"",
            serving=_pair(self._read("tls.crt"), self._read("tls.key")),
        )

    def _contents(self, state: CertificateState) -> dict[str, bytes]:
        ca, serving = _complete(state)
        return {
            "ca.crt": state.ca_bundle,
            "ca-signing.crt": ca.cert_pem,
            "ca-signing.key": ca.key_pem,
            # The key before the certificate: a server that reloads in between sees a
            # mismatched pair, refuses it and keeps the old one until the certificate lands.
            "tls.key": serving.key_pem,
            "tls.crt": serving.cert_pem,
        }

    def preview(self, state: CertificateState) -> tuple[list[Manifest], list[str]]:
        notes = []
        for name, data in self._contents(state).items():
            path = self.folder / name
            same = read_file(path) == data
            notes.append(f"unchanged {path}" if same else f"would write {path} ({len(data)} bytes)")
        return [], notes

    def save(self, state: CertificateState, report: RunLog) -> None:
        write_files(self.folder, self._contents(state), report)

    def remove(self, report: RunLog, *, dry_run: bool = False) -> None:
        for name in self.FILES:
            path = self.folder / name
            if dry_run:
                if path.exists():
                    report.say(f"would delete {path}")
                continue
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as error:
                raise CertificateFilesError(f"cannot delete {path}: {error}") from error
            report.say(f"deleted {path}")


def write_files(folder: Path, contents: Mapping[str, bytes], report: RunLog) -> None:
    """Write each file that differs, in order; keys (`*.key`) readable by the owner only."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in contents.items():
            path = folder / name
            if path.exists() and path.read_bytes() == data:
                continue
            # Write beside, then rename: a reader sees the old file or the new, never half.
            partial = path.with_name(f".{name}.partial")
            partial.write_bytes(data)
            partial.chmod(0o600 if name.endswith(".key") else 0o644)
            partial.replace(path)
            report.say(f"wrote {path}")
    except OSError as error:
        raise CertificateFilesError(f"cannot write certificates to {folder}: {error}") from error


def read_file(path: Path) -> bytes | None:
    try:
        return path.read_bytes() if path.exists() else None
    except OSError as error:
        raise CertificateFilesError(f"cannot read {path}: {error}") from error
