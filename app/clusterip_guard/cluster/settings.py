"""What `bootstrap` can be told, with each default and the reason for it.

Apart from the bootstrap itself so that the CLI can show the defaults without loading the
Kubernetes client.
"""

from __future__ import annotations

import dataclasses
import datetime
from dataclasses import dataclass
from pathlib import Path

from clusterip_guard.certs.issuing import service_dns_names
from clusterip_guard.certs.rotation import DEFAULT_RENEWAL_MARGIN
from clusterip_guard.core import names
from clusterip_guard.core.registration import DEFAULT_TIMEOUT_SECONDS, FailurePolicy
from clusterip_guard.core.types import ENGINES, Engine, Mode


@dataclass(frozen=True)
class BootstrapSettings:
    namespace: str = names.INSTALL_NAMESPACE
    service_name: str = names.SERVICE_NAME
    # The API server calls webhooks on 443 unless told otherwise.
    service_port: int = 443
    secret_name: str = names.TLS_SECRET_NAME
    ca_secret_name: str = names.CA_SECRET_NAME
    configuration_name: str = names.CONFIGURATION_NAME
    url: str | None = None  # url mode: the webhook runs outside the cluster
    cert_dir: Path | None = None  # url mode: where the certificate files go
    hosts: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    # Opt-in: unlabelled namespaces are not looked at unless the admin says so.
    default_mode: Mode = "off"
    renew_before: datetime.timedelta = DEFAULT_RENEWAL_MARGIN
    rotate_ca: bool = False
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS
    # Fail closed: a webhook that is down must not let exposure through.
    failure_policy: FailurePolicy = "Fail"
    # Fail open: reporting must never block a write.
    audit_failure_policy: FailurePolicy = "Ignore"
    # Only store certificates when there are none (the chart's pre-install Job): never renew,
    # rotate or register.
    certificates_only: bool = False
    # Service mode: wait up to this long for a ready replica before registering (0: don't);
    # the chart's Job waits, so a first install never registers a webhook nothing answers.
    wait_ready_seconds: float = 0.0
    # Where to write a client certificate for the API server (signed by the webhook's CA), for
    # `serve --client-ca`; None: none is issued.
    client_cert_dir: Path | None = None
    # Beyond kube-system, kube-public, kube-node-lease and the webhook's own namespace.
    excluded_namespaces: tuple[str, ...] = ()
    # After a new CA is published, how long the API server gets to load the new caBundle
    # into its webhook clients (an informer, so not instant) before anything signs with it.
    trust_propagation_seconds: float = 5.0
    # An engine switch removes the old engine only once the new one answers a probe (admission
    # policies are compiled on a poll of about a second); this long, then it fails closed.
    switch_timeout_seconds: float = 60.0
    # Which engine enforces the policy (docs/design.md, "Engines"): the webhook, or admission
    # policies the API server runs itself, compiled from `policy_file`.
    engine: Engine = "webhook"
    # The policy: the native engine compiles it; the webhook engine's match conditions take its
    # allowed ingress and gateway classes and Gateways (without it, every write of an Ingress,
    # a Gateway or a route costs a webhook call).
    policy_file: Path | None = None
    # The native engine runs something of its own in `namespace` (the sync component, in the
    # release's namespace): only then is that namespace never judged. Nothing of the native
    # engine runs there otherwise, and nothing says it exists: a tenant could create it.
    runs_in_namespace: bool = False

    @property
    def url_mode(self) -> bool:
        return self.url is not None

    def dns_names(self) -> list[str]:
        in_cluster = [] if self.url_mode else service_dns_names(self.service_name, self.namespace)
        return [*in_cluster, *(h for h in self.hosts if h not in in_cluster)]


# --- what a bootstrap remembers ---------------------------------------------------------------
# The settings that shape what is registered and issued, recorded on the webhook
# configurations (names.BOOTSTRAP_SETTINGS_ANNOTATION) so that a re-run with fewer flags keeps
# them: field -> the flag that sets it. Actions (--rotate-ca, --uninstall) and waits are not.
REMEMBERED: dict[str, str] = {
    "namespace": "--namespace",
    "service_name": "--service-name",
    "service_port": "--service-port",
    "secret_name": "--secret-name",
    "ca_secret_name": "--ca-secret-name",
    "url": "--url",
    "cert_dir": "--cert-dir",
    "hosts": "--host",
    "ips": "--ip",
    "default_mode": "--default-mode",
    "renew_before": "--renew-before-days",
    "timeout_seconds": "--timeout-seconds",
    "failure_policy": "--failure-policy",
    "audit_failure_policy": "--audit-failure-policy",
    "excluded_namespaces": "--exclude-namespace",
    "client_cert_dir": "--client-cert-dir",
    "engine": "--engine",
}
# Giving one of these without --url means service mode: a recorded URL is then dropped.
SERVICE_TARGET = frozenset({"namespace", "service_name", "service_port"})


class RecordError(ValueError):
    """A recorded settings annotation that cannot be read back (edited by hand)."""


def _plain(value: object) -> object:
    """A setting as JSON holds it."""
    if isinstance(value, datetime.timedelta):
        return value.days
    if isinstance(value, Path):
        return str(value.absolute())
    if isinstance(value, tuple):
        return list(value)
    return value


def record_of(settings: BootstrapSettings) -> dict[str, object]:
    """What the annotation records: the remembered settings, as plain JSON values."""
    return {name: _plain(getattr(settings, name)) for name in REMEMBERED}


def _typed(name: str, value: object) -> object:
    """A recorded value back in the settings' own type; RecordError when it cannot be."""
    default = getattr(BootstrapSettings(), name)
    if name == "renew_before" and isinstance(value, int) and not isinstance(value, bool):
        return datetime.timedelta(days=value)
    if name == "engine":
        if value in ENGINES:
            return value
    elif name in ("cert_dir", "client_cert_dir", "url"):
        if value is None or isinstance(value, str):
            return Path(value) if value is not None and name != "url" else value
    elif isinstance(default, tuple):
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
    elif isinstance(value, type(default)) and not isinstance(value, bool):
        return value
    raise RecordError(f"{REMEMBERED[name]}: {value!r}")


def _shown(name: str, value: object) -> str:
    plain = _plain(value)
    if isinstance(plain, list):
        return ",".join(str(v) for v in plain) or "none"
    return "none" if plain is None else str(plain)


def resolve(
    settings: BootstrapSettings, given: frozenset[str], record: dict[str, object] | None
) -> tuple[BootstrapSettings, list[str]]:
    """The settings of this run: what the flags gave, else what the last bootstrap recorded,
    else the defaults; and one line per recorded setting that this run changes."""
    if record is None:
        return settings, []
    kept: dict[str, object] = {}
    for name in REMEMBERED:
        if name in given or name not in record:
            continue
        if name in ("url", "cert_dir") and "url" not in given and given & SERVICE_TARGET:
            continue  # service-mode flags without --url: the recorded URL is left behind
        kept[name] = _typed(name, record[name])
    resolved = dataclasses.replace(settings, **kept)  # type: ignore[arg-type]
    changes = [
        f"{REMEMBERED[name]}: {_shown(name, _typed(name, record[name]))} -> "
        f"{_shown(name, getattr(resolved, name))}"
        for name in REMEMBERED
        if name in record and _plain(getattr(resolved, name)) != record[name]
    ]
    return resolved, changes
