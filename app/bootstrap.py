"""The cert bootstrap against a cluster: certificates, where they live, and the registration.

The only module besides `scan` that talks to the Kubernetes API. What to do is decided by the
pure `rotation.plan_certificates` and `registration.webhook_configurations`; this module reads
the current state, applies the difference in a safe order, and reports what it did.
"""

from __future__ import annotations

import base64
import datetime
import functools
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from urllib3.exceptions import HTTPError as TransportError

from app.certs import KeyPair, service_dns_names
from app.registration import (
    CONFIG_HASH_ANNOTATION,
    ServiceTarget,
    UrlTarget,
    webhook_configurations,
)
from app.rotation import (
    DEFAULT_RENEWAL_MARGIN,
    CertificatePlan,
    CertificateState,
    plan_certificates,
)
from app.types import Manifest, Mode

T = TypeVar("T")

HTTP_FORBIDDEN = 403
HTTP_NOT_FOUND = 404
TLS_SECRET_TYPE = "kubernetes.io/tls"


class BootstrapError(Exception):
    """Something the admin can fix: no cluster, a missing permission, a missing namespace."""


@dataclass(frozen=True)
class BootstrapSettings:
    namespace: str = "clusterip-guard"
    service_name: str = "clusterip-guard"
    service_port: int = 443
    secret_name: str = "clusterip-guard-tls"
    ca_secret_name: str = "clusterip-guard-ca"
    configuration_name: str = "clusterip-guard"
    url: str | None = None  # url mode: the webhook runs outside the cluster
    cert_dir: Path | None = None  # url mode: where the certificate files go
    hosts: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    default_mode: Mode = "off"
    renew_before: datetime.timedelta = DEFAULT_RENEWAL_MARGIN
    rotate_ca: bool = False
    timeout_seconds: int = 5
    # After a new CA is published, how long the API server gets to load the new caBundle
    # into its webhook clients (an informer, so not instant) before anything signs with it.
    trust_propagation_seconds: float = 5.0

    @property
    def url_mode(self) -> bool:
        return self.url is not None

    def dns_names(self) -> list[str]:
        names = [] if self.url_mode else service_dns_names(self.service_name, self.namespace)
        return [*names, *(h for h in self.hosts if h not in names)]


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    objects: list[Manifest] = field(default_factory=list)  # filled by --dry-run

    def say(self, line: str) -> None:
        self.lines.append(line)


# --- talking to the API server ---------------------------------------------------------------


def connect(kubeconfig: str | None = None, context: str | None = None) -> client.ApiClient:
    try:
        if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config()  # type: ignore[no-untyped-call]
            return client.ApiClient()
        api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context
        )
    except (ConfigException, OSError) as error:
        raise BootstrapError(f"no usable kubeconfig: {error}") from error
    return api


def _failure(error: Exception, verb: str, resource: str, namespace: str | None) -> BootstrapError:
    """One line for the admin, naming what was tried where."""
    where = f" in namespace {namespace}" if namespace else ""
    if isinstance(error, ApiException):
        if error.status == HTTP_FORBIDDEN:
            return BootstrapError(
                f"permission denied: cannot {verb} {resource}{where}; "
                f"grant it with RBAC or run as a cluster admin"
            )
        return BootstrapError(f"cannot {verb} {resource}{where}: {error.status} {error.reason}")
    reason = getattr(error, "reason", None) or error
    return BootstrapError(f"no cluster reachable: {' '.join(str(reason).split())}")


def call(verb: str, resource: str, namespace: str | None, request: Callable[[], T]) -> T:
    """Run one API request; turn its failure into a one-line BootstrapError."""
    try:
        return request()
    except (ApiException, TransportError, OSError) as error:
        raise _failure(error, verb, resource, namespace) from error


def read_or_none(
    verb_resource: tuple[str, str], namespace: str | None, read: Callable[[], T]
) -> T | None:
    """Like `call`, but a missing object is None rather than an error."""
    try:
        return read()
    except ApiException as error:
        if error.status == HTTP_NOT_FOUND:
            return None
        raise _failure(error, *verb_resource, namespace) from error
    except (TransportError, OSError) as error:
        raise _failure(error, *verb_resource, namespace) from error


# --- where certificates live ------------------------------------------------------------------


class CertificateStore(Protocol):
    def load(self) -> CertificateState: ...
    def save(self, state: CertificateState, report: Report) -> None: ...
    def manifests(self, state: CertificateState) -> list[Manifest]: ...
    def remove(self, report: Report) -> None: ...


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


def _secret_data(values: dict[str, bytes]) -> dict[str, str]:
    return {k: base64.b64encode(v).decode("ascii") for k, v in values.items()}


def _secret(manifest: Manifest) -> client.V1Secret:
    secret = client.V1Secret.from_dict(manifest)
    if secret is None:
        raise ValueError("a Secret manifest gave no Secret")
    return secret


class SecretStore:
    """Service mode: the serving pair in a kubernetes.io/tls Secret (with ca.crt) that the
    webhook mounts, and the CA in a second Secret that the webhook never sees."""

    def __init__(self, api: client.ApiClient, settings: BootstrapSettings) -> None:
        self.core = client.CoreV1Api(api)
        self.settings = settings

    def _read(self, name: str) -> client.V1Secret | None:
        ns = self.settings.namespace
        return read_or_none(
            ("get", "secrets"), ns, functools.partial(self.core.read_namespaced_secret, name, ns)
        )

    def load(self) -> CertificateState:
        tls = self._read(self.settings.secret_name)
        ca = self._read(self.settings.ca_secret_name)
        tls_data = tls.data if tls is not None else None
        ca_data = ca.data if ca is not None else None
        return CertificateState(
            ca=_pair(_pem(ca_data, "tls.crt"), _pem(ca_data, "tls.key")),
            ca_bundle=_pem(ca_data, "bundle.crt") or b"",
            serving=_pair(_pem(tls_data, "tls.crt"), _pem(tls_data, "tls.key")),
        )

    def manifests(self, state: CertificateState) -> list[Manifest]:
        ca, serving = _complete(state)
        labels = {"app.kubernetes.io/name": "clusterip-guard"}
        return [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": TLS_SECRET_TYPE,
                "metadata": {
                    "name": self.settings.ca_secret_name,
                    "namespace": self.settings.namespace,
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
                    "name": self.settings.secret_name,
                    "namespace": self.settings.namespace,
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

    def save(self, state: CertificateState, report: Report) -> None:
        ns = self.settings.namespace
        create, replace = self.core.create_namespaced_secret, self.core.replace_namespaced_secret
        for manifest in self.manifests(state):
            name = manifest["metadata"]["name"]
            existing = self._read(name)
            if existing is None:
                secret = _secret(manifest)
                call("create", "secrets", ns, functools.partial(create, ns, secret))
                report.say(f"created Secret {ns}/{name}")
            elif existing.data != manifest["data"]:
                version = existing.metadata.resource_version if existing.metadata else None
                manifest["metadata"]["resourceVersion"] = version
                secret = _secret(manifest)
                call("update", "secrets", ns, functools.partial(replace, name, ns, secret))
                report.say(f"updated Secret {ns}/{name}")
            else:
                report.say(f"unchanged Secret {ns}/{name}")

    def remove(self, report: Report) -> None:
        ns = self.settings.namespace
        for name in (self.settings.secret_name, self.settings.ca_secret_name):
            deleted = read_or_none(
                ("delete", "secrets"),
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
        path = self.folder / name
        try:
            return path.read_bytes() if path.exists() else None
        except OSError as error:
            raise BootstrapError(f"cannot read {path}: {error}") from error

    def load(self) -> CertificateState:
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

    def manifests(self, state: CertificateState) -> list[Manifest]:
        return [
            {"file": str(self.folder / name), "bytes": len(data)}
            for name, data in self._contents(state).items()
        ]

    def save(self, state: CertificateState, report: Report) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            for name, data in self._contents(state).items():
                path = self.folder / name
                if path.exists() and path.read_bytes() == data:
                    continue
                # Write beside, then rename: a reader sees the old file or the new, never half.
                partial = path.with_name(f".{name}.partial")
                partial.write_bytes(data)
                partial.chmod(0o600 if name.endswith(".key") else 0o644)
                partial.replace(path)
                report.say(f"wrote {path}")
        except OSError as error:
            raise BootstrapError(f"cannot write certificates to {self.folder}: {error}") from error

    def remove(self, report: Report) -> None:
        for name in self.FILES:
            path = self.folder / name
            if path.exists():
                path.unlink()
                report.say(f"deleted {path}")


# --- the webhook configurations -------------------------------------------------------------


@dataclass(frozen=True)
class _Kind:
    name: str
    model: Any
    read: Callable[[str], Any]
    create: Callable[[Any], Any]
    replace: Callable[[str, Any], Any]
    delete: Callable[[str], Any]


def _kinds(api: client.ApiClient) -> list[_Kind]:
    admission = client.AdmissionregistrationV1Api(api)
    return [
        _Kind(
            "MutatingWebhookConfiguration",
            client.V1MutatingWebhookConfiguration,
            admission.read_mutating_webhook_configuration,
            admission.create_mutating_webhook_configuration,
            admission.replace_mutating_webhook_configuration,
            admission.delete_mutating_webhook_configuration,
        ),
        _Kind(
            "ValidatingWebhookConfiguration",
            client.V1ValidatingWebhookConfiguration,
            admission.read_validating_webhook_configuration,
            admission.create_validating_webhook_configuration,
            admission.replace_validating_webhook_configuration,
            admission.delete_validating_webhook_configuration,
        ),
    ]


def _resource(kind: str) -> str:
    return kind.lower() + "s"


def apply_configurations(
    api: client.ApiClient, configurations: Sequence[Manifest], report: Report
) -> None:
    kinds = {kind.name: kind for kind in _kinds(api)}
    for manifest in configurations:
        kind = kinds[manifest["kind"]]
        name = manifest["metadata"]["name"]
        resource = _resource(kind.name)
        existing = read_or_none(("get", resource), None, functools.partial(kind.read, name))
        if existing is None:
            body = kind.model.from_dict(manifest)
            call("create", resource, None, functools.partial(kind.create, body))
            report.say(f"created {kind.name} {name}")
            continue
        annotations = existing.metadata.annotations or {}
        wanted = manifest["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
        if annotations.get(CONFIG_HASH_ANNOTATION) == wanted:
            report.say(f"unchanged {kind.name} {name}")
            continue
        update = {
            **manifest,
            "metadata": {
                **manifest["metadata"],
                "resourceVersion": existing.metadata.resource_version,
            },
        }
        body = kind.model.from_dict(update)
        call("update", resource, None, functools.partial(kind.replace, name, body))
        report.say(f"updated {kind.name} {name}")


def remove_configurations(api: client.ApiClient, name: str, report: Report) -> None:
    for kind in _kinds(api):
        resource = _resource(kind.name)
        deleted = read_or_none(("delete", resource), None, functools.partial(kind.delete, name))
        report.say(
            f"deleted {kind.name} {name}" if deleted is not None else f"no {kind.name} {name}"
        )


# --- the bootstrap itself -----------------------------------------------------------------------


def _store(api: client.ApiClient, settings: BootstrapSettings) -> CertificateStore:
    if settings.url_mode:
        if settings.cert_dir is None:
            raise BootstrapError("--url needs --cert-dir: where the webhook reads its certificate")
        return FileStore(settings.cert_dir)
    return SecretStore(api, settings)


def _target(settings: BootstrapSettings) -> ServiceTarget | UrlTarget:
    if settings.url is not None:
        return UrlTarget(settings.url)
    return ServiceTarget(settings.namespace, settings.service_name, settings.service_port)


def _require_namespace(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    found = read_or_none(
        ("get", "namespaces"), None, functools.partial(core.read_namespace, namespace)
    )
    if found is None:
        raise BootstrapError(f"namespace {namespace} does not exist; create it first")


def bootstrap(
    api: client.ApiClient,
    settings: BootstrapSettings,
    *,
    now: datetime.datetime,
    dry_run: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> Report:
    """Make or renew the certificates and register the webhooks; a second run changes nothing."""
    report = Report()
    target = _target(settings)
    if not settings.url_mode:
        _require_namespace(api, settings.namespace)
    store = _store(api, settings)
    current = store.load()
    plan: CertificatePlan = plan_certificates(
        current,
        now=now,
        dns_names=settings.dns_names(),
        ip_addresses=settings.ips,
        margin=settings.renew_before,
        rotate_ca=settings.rotate_ca,
    )
    configurations = webhook_configurations(
        target=target,
        ca_bundle=plan.state.ca_bundle,
        default_mode=settings.default_mode,
        own_namespace=None if settings.url_mode else settings.namespace,
        timeout_seconds=settings.timeout_seconds,
        name=settings.configuration_name,
    )
    for reason in plan.reasons:
        report.say(f"certificates: {reason}")
    if dry_run:
        report.objects = [*store.manifests(plan.state), *configurations]
        return report
    if plan.adds_trust(current.ca_bundle):
        # A new CA is trusted by the API server before anything is signed by it.
        apply_configurations(api, configurations, report)
        if current.ca_bundle:
            report.say(f"waited {settings.trust_propagation_seconds:g}s for the new caBundle")
            sleep(settings.trust_propagation_seconds)
        store.save(plan.state, report)
    else:
        store.save(plan.state, report)
        apply_configurations(api, configurations, report)
    return report


def uninstall(api: client.ApiClient, settings: BootstrapSettings) -> Report:
    """Webhook configurations first, so no fail-closed webhook outlives its certificates."""
    report = Report()
    remove_configurations(api, settings.configuration_name, report)
    if settings.url_mode and settings.cert_dir is not None:
        FileStore(settings.cert_dir).remove(report)
    elif not settings.url_mode:
        SecretStore(api, settings).remove(report)
    return report


def render(objects: Sequence[Manifest]) -> str:
    return yaml.safe_dump_all(list(objects), sort_keys=False)


@contextmanager
def session(kubeconfig: str | None, context: str | None) -> Iterator[client.ApiClient]:
    api = connect(kubeconfig, context)
    try:
        yield api
    finally:
        api.close()  # type: ignore[no-untyped-call]
