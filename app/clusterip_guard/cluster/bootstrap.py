"""The bootstrap against a cluster, in a safe order (docs/design.md, "Command line" and
"What bootstrap registers"): the webhook's certificates made or renewed, then what the
installation registers (cluster/registrations.py) applied; and the uninstall.

What to do is decided by the pure `certs.rotation.plan_certificates` and
`core.installation.objects_for`; this module reads the current state from a store and the API
server, applies the difference so that nothing ever presents a certificate the API server does
not yet trust, and reports what it did. The native engine needs no certificate: its bootstrap
is `registrations.bootstrap_native`.
"""

from __future__ import annotations

import datetime
import functools
import time
from collections.abc import Callable, Sequence

import yaml
from kubernetes import client

from clusterip_guard.certs.issuing import (
    KeyPair,
    needs_renewal,
    new_client_certificate,
    signed_by,
)
from clusterip_guard.certs.rotation import CertificatePlan, plan_certificates
from clusterip_guard.cluster.admission_objects import (
    any_stored,
    apply_admission_objects,
    remove_admission_objects,
    with_record,
)
from clusterip_guard.cluster.client import RunLog, call, read_or_none
from clusterip_guard.cluster.errors import (
    ClusterError,
    ClusterRefused,
    NamespaceMissing,
    NoReadyEndpoint,
)
from clusterip_guard.cluster.registrations import bootstrap_native, registrations_for
from clusterip_guard.cluster.served_apis import serves_service_cidrs
from clusterip_guard.cluster.settings import BootstrapSettings, record_of
from clusterip_guard.cluster.stores import (
    CertificateStore,
    FileStore,
    SecretStore,
    read_file,
    write_files,
)
from clusterip_guard.cluster.switching import (
    engine_only_objects,
    remove_probe_namespace,
    switch_engine,
)
from clusterip_guard.cluster.uninstalled import lift_marker, marker_name, stop_sync, write_marker
from clusterip_guard.core.policy import PolicySettings
from clusterip_guard.core.types import Manifest
from clusterip_guard.policyfile import PolicyError, read_policy_file

# Set by the EndpointSlice controller on every slice of a Service.
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def _store(api: client.ApiClient, settings: BootstrapSettings) -> CertificateStore:
    if settings.url_mode:
        if settings.cert_dir is None:
            raise ClusterError("--url needs --cert-dir: where the webhook reads its certificate")
        return FileStore(settings.cert_dir)
    return _secret_store(api, settings)


def _secret_store(api: client.ApiClient, settings: BootstrapSettings) -> SecretStore:
    return SecretStore(
        api,
        namespace=settings.namespace,
        secret_name=settings.secret_name,
        ca_secret_name=settings.ca_secret_name,
    )


def _require_namespace(api: client.ApiClient, namespace: str) -> None:
    """A clear error for a missing namespace, when we may look (the chart's pre-install Job
    may not: namespaces are cluster-scoped, and it holds a Role only)."""
    core = client.CoreV1Api(api)
    try:
        found = read_or_none(
            "get", "namespaces", None, functools.partial(core.read_namespace, namespace)
        )
    except ClusterRefused:
        return  # the writes that follow name their own failure
    if found is None:
        raise NamespaceMissing(f"namespace {namespace} does not exist; create it first")


def _policy_for_registration(settings: BootstrapSettings, report: RunLog) -> PolicySettings:
    """The policy the webhook engine's registration reads its allowed ingress and gateway
    classes and allowed Gateways from. One it cannot read (a broken edit of the chart's
    ConfigMap) costs calls, never a renewal: registered without them, every Ingress, Gateway
    and route write is sent to the webhook, which judges it by its own last good policy."""
    try:
        return read_policy_file(settings.policy_file)
    except PolicyError as error:
        report.say(
            f"{error}: registered without its allowed ingress classes, gateway classes and "
            "Gateways (every Ingress, Gateway and route write costs a webhook call until a "
            "bootstrap reads a good one)"
        )
        return PolicySettings()


def bootstrap(
    api: client.ApiClient,
    settings: BootstrapSettings,
    *,
    now: datetime.datetime,
    dry_run: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> RunLog:
    """Make or renew the certificates and register the webhooks; a second run changes nothing.
    With `--engine native`, register the compiled policies instead (`bootstrap_native`). Where
    the native engine is registered, its objects go only once the webhook answers
    (`switch_engine`)."""
    if settings.engine == "native" and not settings.certificates_only:
        report = bootstrap_native(api, settings, dry_run=dry_run)
        if not dry_run:
            lift_marker(api, settings.namespace, settings.configuration_name, report)
        return report
    report = RunLog()
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
    service_cidrs = serves_service_cidrs(api)
    if not service_cidrs:
        report.say(
            "this API server does not serve networking.k8s.io/v1 ServiceCIDR (Kubernetes 1.33 "
            "has it): external IPs inside the Service range are refused only by "
            "allowedExternalIPCIDRs, which must not cover it"
        )
    policy = _policy_for_registration(settings, report)
    registered = with_record(
        registrations_for(
            settings, plan.state.ca_bundle, service_cidrs=service_cidrs, policy=policy
        ),
        record_of(settings),
    )
    if settings.certificates_only and current.ca is not None and current.serving is not None:
        # Renewal and rotation are the full bootstrap's: only it can publish a new CA first.
        report.say("certificates: kept (--certificates-only never renews or rotates)")
        return report
    for reason in plan.reasons:
        report.say(f"certificates: {reason}")
    if settings.certificates_only:
        if dry_run:
            report.objects, report.comments = store.preview(plan.state)
        else:
            store.save(plan.state, report)
        return report
    if dry_run:
        secrets, report.comments = store.preview(plan.state)
        report.objects = [*secrets, *registered]
        return report
    if settings.client_cert_dir is not None and plan.state.ca is not None:
        _issue_client_certificate(settings, plan.state.ca, now, report)
    if current.ca_bundle and plan.adds_trust(current.ca_bundle):
        # A new CA is trusted by the API server before anything is signed by it.
        apply_admission_objects(api, registered, report)
        report.say(f"waited {settings.trust_propagation_seconds:g}s for the new caBundle")
        sleep(settings.trust_propagation_seconds)
        store.save(plan.state, report)
    else:
        store.save(plan.state, report)
        if settings.wait_ready_seconds > 0 and not settings.url_mode:
            # A fail-closed webhook registered before a replica answers would refuse every
            # exposed Service write in the namespaces it selects until one does.
            _wait_for_ready_endpoint(api, settings, report, sleep)
        apply_admission_objects(api, registered, report)
    switch_engine(
        api,
        "webhook",
        settings.configuration_name,
        registered,
        report,
        timeout=settings.switch_timeout_seconds,
    )
    # What an earlier registration held and this one does not (another default mode's
    # bindings, the native engine's policies) goes, so that no namespace stays judged by a
    # mode it no longer has.
    remove_admission_objects(api, settings.configuration_name, report, keep=registered)
    lift_marker(api, settings.namespace, settings.configuration_name, report)
    return report


CLIENT_CERT_FILE = "client.crt"
CLIENT_KEY_FILE = "client.key"


def _issue_client_certificate(
    settings: BootstrapSettings, ca: KeyPair, now: datetime.datetime, report: RunLog
) -> None:
    """The API server's client certificate, kept while it is signed by the current CA and
    outside the renewal margin (`serve --client-ca` trusts that CA)."""
    folder = settings.client_cert_dir
    if folder is None:
        return
    cert = read_file(folder / CLIENT_CERT_FILE)
    key = read_file(folder / CLIENT_KEY_FILE)
    if (
        cert is not None
        and key is not None
        and signed_by(cert, ca.cert_pem)
        and not needs_renewal(cert, now=now, margin=settings.renew_before)
    ):
        return
    issued = new_client_certificate(ca, now=now)
    write_files(
        folder, {CLIENT_KEY_FILE: issued.key_pem, CLIENT_CERT_FILE: issued.cert_pem}, report
    )


def _wait_for_ready_endpoint(
    api: client.ApiClient,
    settings: BootstrapSettings,
    report: RunLog,
    sleep: Callable[[float], None],
    poll_seconds: float = 1.0,
) -> None:
    discovery = client.DiscoveryV1Api(api)
    ns, service = settings.namespace, settings.service_name
    selector = f"{SERVICE_NAME_LABEL}={service}"
    waited = 0.0
    while True:
        slices = call(
            "list",
            "endpointslices",
            ns,
            functools.partial(
                discovery.list_namespaced_endpoint_slice, ns, label_selector=selector
            ),
        )
        if any(
            endpoint.conditions is not None and endpoint.conditions.ready
            for endpoint_slice in slices.items
            for endpoint in endpoint_slice.endpoints or []
        ):
            report.say(f"Service {ns}/{service} has a ready endpoint")
            return
        if waited >= settings.wait_ready_seconds:
            raise NoReadyEndpoint(
                f"Service {ns}/{service} has no ready endpoint after {waited:g}s; "
                f"webhooks not registered (is the Deployment running?)"
            )
        sleep(poll_seconds)
        waited += poll_seconds


def uninstall(
    api: client.ApiClient,
    settings: BootstrapSettings,
    *,
    keep_certificates: bool = False,
    dry_run: bool = False,
    stop_sync_deployment: str | None = None,
    now: datetime.datetime | None = None,
) -> RunLog:
    """Webhook configurations first, so no fail-closed webhook outlives its certificates.
    A dry run reads and says what would go. Nothing re-creates a policy afterwards: the
    chart's sync is stopped first (`stop_sync_deployment`), one run by hand is told to stand
    down by a marker written before anything goes (cluster/uninstalled.py)."""
    report = RunLog()
    said_after: list[str] = []
    if stop_sync_deployment is not None:
        if dry_run:
            report.say(f"would stop Deployment {settings.namespace}/{stop_sync_deployment}")
        else:
            stop_sync(api, settings.namespace, stop_sync_deployment, report)
    elif _native_registered(api, settings.configuration_name):
        marker = f"ConfigMap {settings.namespace}/{marker_name(settings.configuration_name)}"
        said_after.append(
            f"would write {marker}"
            if dry_run
            else _mark_uninstalled(api, settings, now or datetime.datetime.now(datetime.UTC))
        )
    remove_admission_objects(api, settings.configuration_name, report, dry_run=dry_run)
    remove_probe_namespace(api, settings.configuration_name, report, dry_run=dry_run)
    for line in said_after:
        report.say(line)
    if keep_certificates:  # someone else's, e.g. cert-manager's
        report.say("certificates kept")
    elif settings.url_mode and settings.cert_dir is not None:
        FileStore(settings.cert_dir).remove(report, dry_run=dry_run)
    elif not settings.url_mode:
        _secret_store(api, settings).remove(report, dry_run=dry_run)
    return report


def _native_registered(api: client.ApiClient, installation: str) -> bool:
    """Whether the native engine's policies are there, which a sync may be keeping (the
    chart's pre-delete Job may not read them: it stops its sync instead)."""
    try:
        return any_stored(api, engine_only_objects("native", installation))
    except ClusterRefused:
        return False


def _mark_uninstalled(
    api: client.ApiClient, settings: BootstrapSettings, now: datetime.datetime
) -> str:
    try:
        return write_marker(api, settings.namespace, settings.configuration_name, now)
    except ClusterError as error:
        return (
            f"no uninstall marker ({error}): a sync of {settings.configuration_name} run by "
            "hand would apply its policies again; stop it"
        )


def render(objects: Sequence[Manifest], comments: Sequence[str] = ()) -> str:
    """A dry run's output for `kubectl apply -f -`: comments first (what is not an object),
    then the objects."""
    head = "".join(f"# {line}\n" for line in comments)
    return head + yaml.safe_dump_all(list(objects), sort_keys=False)
