"""What `bootstrap` can be told, with each default and the reason for it.

Apart from the bootstrap itself so that the CLI can show the defaults without loading the
Kubernetes client.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from clusterip_guard.certs.issuing import service_dns_names
from clusterip_guard.certs.rotation import DEFAULT_RENEWAL_MARGIN
from clusterip_guard.core import names
from clusterip_guard.core.registration import DEFAULT_TIMEOUT_SECONDS, FailurePolicy
from clusterip_guard.core.types import Mode


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

    @property
    def url_mode(self) -> bool:
        return self.url is not None

    def dns_names(self) -> list[str]:
        in_cluster = [] if self.url_mode else service_dns_names(self.service_name, self.namespace)
        return [*in_cluster, *(h for h in self.hosts if h not in in_cluster)]
