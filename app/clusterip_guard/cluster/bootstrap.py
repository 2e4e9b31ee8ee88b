"""The cert bootstrap against a cluster, in a safe order (docs/design.md, "Command line" and
"What bootstrap registers").

What to do is decided by the pure `certs.rotation.plan_certificates` and
`core.registration.webhook_configurations`; this module reads the current state from a store
and the API server, applies the difference so that nothing ever presents a certificate the API
server does not yet trust, and reports what it did.
"""

from __future__ import annotations

import datetime
import functools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from kubernetes import client

from clusterip_guard.certs.issuing import (
    KeyPair,
    needs_renewal,
    new_client_certificate,
    signed_by,
)
from clusterip_guard.certs.rotation import CertificatePlan, plan_certificates
from clusterip_guard.cluster.client import RunLog, call, read_or_none
from clusterip_guard.cluster.errors import (
    ApiMissing,
    ClusterError,
    ClusterRefused,
    NamespaceMissing,
    NoReadyEndpoint,
)
from clusterip_guard.cluster.settings import BootstrapSettings, RecordError, record_of
from clusterip_guard.cluster.stores import (
    CertificateStore,
    FileStore,
    SecretStore,
    read_file,
    write_files,
)
from clusterip_guard.cluster.writing import ObjectAPI, as_plain, write_object
from clusterip_guard.core.admission_policies import (
    companion_policies,
    policy_binding_names,
)
from clusterip_guard.core.names import BOOTSTRAP_SETTINGS_ANNOTATION
from clusterip_guard.core.native import (
    CONVERSION_SUFFIX,
    EXPOSURE_SUFFIX,
    HOST_CONVERSION_SUFFIX,
    HOST_EXPOSURE_SUFFIX,
    NativeUnsupported,
    native_objects,
)
from clusterip_guard.core.policy import PolicySettings
from clusterip_guard.core.registration import (
    ServiceTarget,
    UrlTarget,
    never_judged_namespaces,
    webhook_configurations,
)
from clusterip_guard.core.types import Manifest
from clusterip_guard.policyfile import PolicyError, read_policy_file

# Set by the EndpointSlice controller on every slice of a Service.
SERVICE_NAME_LABEL = "kubernetes.io/service-name"

# --- the webhook configurations -------------------------------------------------------------


@dataclass(frozen=True)
class _Kind:
    name: str
    read: Callable[[str], Any]
    create: Callable[[Any], Any]
    replace: Callable[[str, Any], Any]
    delete: Callable[[str], Any]


def _kinds(api: client.ApiClient) -> list[_Kind]:
    admission = client.AdmissionregistrationV1Api(api)
    return [
        _Kind(
            "MutatingWebhookConfiguration",
            admission.read_mutating_webhook_configuration,
            admission.create_mutating_webhook_configuration,
            admission.replace_mutating_webhook_configuration,
            admission.delete_mutating_webhook_configuration,
        ),
        _Kind(
            "ValidatingWebhookConfiguration",
            admission.read_validating_webhook_configuration,
            admission.create_validating_webhook_configuration,
            admission.replace_validating_webhook_configuration,
            admission.delete_validating_webhook_configuration,
        ),
        _Kind(
            "MutatingAdmissionPolicy",
            admission.read_mutating_admission_policy,
            admission.create_mutating_admission_policy,
            admission.replace_mutating_admission_policy,
            admission.delete_mutating_admission_policy,
        ),
        _Kind(
            "MutatingAdmissionPolicyBinding",
            admission.read_mutating_admission_policy_binding,
            admission.create_mutating_admission_policy_binding,
            admission.replace_mutating_admission_policy_binding,
            admission.delete_mutating_admission_policy_binding,
        ),
        _Kind(
            "ValidatingAdmissionPolicy",
            admission.read_validating_admission_policy,
            admission.create_validating_admission_policy,
            admission.replace_validating_admission_policy,
            admission.delete_validating_admission_policy,
        ),
        _Kind(
            "ValidatingAdmissionPolicyBinding",
            admission.read_validating_admission_policy_binding,
            admission.create_validating_admission_policy_binding,
            admission.replace_validating_admission_policy_binding,
            admission.delete_validating_admission_policy_binding,
        ),
    ]


def _resource(kind: str) -> str:
    """The plural resource name of a kind, as RBAC and kubectl spell it."""
    lower = kind.lower()
    return lower[:-1] + "ies" if lower.endswith("y") else lower + "s"


def apply_configurations(
    api: client.ApiClient, configurations: Sequence[Manifest], report: RunLog
) -> None:
    kinds = {kind.name: kind for kind in _kinds(api)}
    for manifest in configurations:
        kind = kinds[manifest["kind"]]
        name = manifest["metadata"]["name"]
        written = write_object(
            ObjectAPI(
                resource=_resource(kind.name),
                namespace=None,
                read=functools.partial(_plain, api, kind.read, name),
                create=kind.create,
                replace=functools.partial(kind.replace, name),
            ),
            manifest,
        )
        report.say(f"{written} {kind.name} {name}")


def _plain(api: client.ApiClient, read: Callable[[str], Any], name: str) -> Manifest:
    return as_plain(api, read(name))


WEBHOOK_KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")


# Where a registration records its settings: the webhook engine's configurations, the native
# engine's MutatingAdmissionPolicy.
RECORD_KINDS = (*WEBHOOK_KINDS, "MutatingAdmissionPolicy")


def with_record(configurations: Sequence[Manifest], record: dict[str, object]) -> list[Manifest]:
    """The webhook configurations (or the native engine's mutating policy) carrying the
    settings they were registered with."""
    text = json.dumps(record, sort_keys=True, separators=(",", ":"))
    recorded: list[Manifest] = []
    for manifest in configurations:
        if manifest["kind"] not in RECORD_KINDS:
            recorded.append(manifest)
            continue
        metadata = manifest["metadata"]
        annotations = {**metadata["annotations"], BOOTSTRAP_SETTINGS_ANNOTATION: text}
        recorded.append({**manifest, "metadata": {**metadata, "annotations": annotations}})
    return recorded


def read_record(api: client.ApiClient, configuration_name: str) -> dict[str, object] | None:
    """The settings the last bootstrap recorded; None when there is none we may read (the
    chart's Jobs may not read, and give every flag)."""
    admission = client.AdmissionregistrationV1Api(api)
    found: Any
    try:
        found = read_or_none(
            "get",
            "mutatingwebhookconfigurations",
            None,
            functools.partial(admission.read_mutating_webhook_configuration, configuration_name),
        )
        if found is None and serves_native_policies(api) is None:
            found = read_or_none(
                "get",
                "mutatingadmissionpolicies",
                None,
                functools.partial(
                    admission.read_mutating_admission_policy,
                    configuration_name + CONVERSION_SUFFIX,
                ),
            )
    except ClusterRefused:
        return None
    metadata = found.metadata if found is not None else None
    annotations = (metadata.annotations or {}) if metadata is not None else {}
    text = annotations.get(BOOTSTRAP_SETTINGS_ANNOTATION)
    if text is None:
        return None
    try:
        record = json.loads(text)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        raise RecordError(f"not a JSON object: {text[:40]!r}")
    return record


def _names_of(kind: str, configuration_name: str) -> list[str]:
    """Every object of `kind` a registration of either engine may hold, whatever its default
    mode: what an uninstall removes, and what a bootstrap removes when its registration no
    longer holds it (another engine's, another default mode's bindings)."""
    if "Webhook" in kind:
        return [configuration_name]
    conversions = [
        configuration_name + CONVERSION_SUFFIX,
        configuration_name + HOST_CONVERSION_SUFFIX,
    ]
    if kind == "MutatingAdmissionPolicy":
        return conversions
    if kind == "MutatingAdmissionPolicyBinding":
        return [name for policy in conversions for name in policy_binding_names(policy, "mutating")]
    per_entry = [
        service_range_policy_name(configuration_name),
        configuration_name + EXPOSURE_SUFFIX,
        configuration_name + HOST_EXPOSURE_SUFFIX,
    ]
    if kind == "ValidatingAdmissionPolicy":
        return [
            mode_label_policy_name(configuration_name),
            unknown_mode_warning_name(configuration_name),
            *per_entry,
        ]
    return [
        mode_label_policy_name(configuration_name),
        unknown_mode_warning_name(configuration_name),
        *(name for policy in per_entry for name in policy_binding_names(policy, "validating")),
    ]


def remove_configurations(
    api: client.ApiClient,
    name: str,
    report: RunLog,
    *,
    dry_run: bool = False,
    keep: Sequence[Manifest] = (),
) -> None:
    """The webhook configurations first (fail-closed), then the policies and their bindings;
    but not the objects in `keep` (a bootstrap removes only what its registration no longer
    holds: the bindings of another default mode's entries)."""
    kept = {(manifest["kind"], manifest["metadata"]["name"]) for manifest in keep}
    for kind in _kinds(api):
        resource = _resource(kind.name)
        for named in _names_of(kind.name, name):
            if (kind.name, named) in kept:
                continue
            if dry_run:
                found = read_or_none("get", resource, None, functools.partial(kind.read, named))
                report.say(
                    f"would delete {kind.name} {named}" if found else f"no {kind.name} {named}"
                )
                continue
            deleted = read_or_none("delete", resource, None, functools.partial(kind.delete, named))
            if deleted is not None:
                report.say(f"deleted {kind.name} {named}")
            elif not keep:
                report.say(f"no {kind.name} {named}")


def mode_label_policy_name(configuration_name: str) -> str:
    """One per registration, so several installations (and tests) never share one."""
    return f"{configuration_name}-mode-label"


def unknown_mode_warning_name(configuration_name: str) -> str:
    return f"{configuration_name}-unknown-mode"


def service_range_policy_name(configuration_name: str) -> str:
    return f"{configuration_name}-service-range"


# What the native engine needs, and the release that serves it as v1.
NATIVE_APIS = {"validatingadmissionpolicies": "1.30", "mutatingadmissionpolicies": "1.36"}


def serves_native_policies(api: client.ApiClient) -> str | None:
    """None when the API server serves every admission-policy API the native engine needs as
    admissionregistration.k8s.io/v1; else one line naming the first missing one."""
    resources = call(
        "get",
        "admissionregistration.k8s.io/v1 discovery",
        None,
        lambda: client.AdmissionregistrationV1Api(api).get_api_resources(),
    )
    served = {resource.name for resource in resources.resources or ()}
    for name, release in NATIVE_APIS.items():
        if name not in served:
            return (
                f"this API server does not serve admissionregistration.k8s.io/v1 {name} "
                f"(Kubernetes {release} has it), which the native engine needs; "
                "use --engine webhook"
            )
    return None


def native_registrations(
    api: client.ApiClient,
    settings: BootstrapSettings,
    report: RunLog,
    *,
    policy: PolicySettings | None = None,
    today: datetime.date | None = None,
) -> list[Manifest]:
    """What `--engine native` registers: the policy compiled (docs/design.md, "Engines"),
    the Service-range policy only where ServiceCIDR is served. `policy`: given (the sync
    component's), else read from `settings.policy_file`; `today`: see native_objects."""
    missing = serves_native_policies(api)
    if missing is not None:
        raise ApiMissing(missing)
    try:
        objects = native_objects(
            policy if policy is not None else read_policy_file(settings.policy_file),
            name=settings.configuration_name,
            default_mode=settings.default_mode,
            never_judged=never_judged_namespaces(
                None if settings.url_mode else settings.namespace, settings.excluded_namespaces
            ),
            today=today,
        )
    except NativeUnsupported as error:
        where = f"policy file {settings.policy_file}" if settings.policy_file else "policy"
        raise PolicyError(f"{where}: {error}") from None
    if not serves_service_cidrs(api):
        report.say("no ServiceCIDR on this API server: no Service-range policy")
        service_range = service_range_policy_name(settings.configuration_name)
        objects = [o for o in objects if not o["metadata"]["name"].startswith(service_range)]
    return objects


def bootstrap_native(
    api: client.ApiClient,
    settings: BootstrapSettings,
    *,
    dry_run: bool = False,
    policy: PolicySettings | None = None,
    today: datetime.date | None = None,
) -> RunLog:
    """Register the native engine's policies, then remove the webhook engine's objects (and
    anything else of ours the new registration does not hold): no moment without a guard.
    Certificates are left as they are (the native engine uses none). An object that already
    says the same is not written."""
    report = RunLog()
    registered = native_registrations(api, settings, report, policy=policy, today=today)
    objects = with_record(registered, record_of(settings))
    if dry_run:
        report.objects = objects
        return report
    apply_configurations(api, objects, report)
    remove_configurations(api, settings.configuration_name, report, keep=objects)
    return report


def serves_service_cidrs(api: client.ApiClient) -> bool:
    """Whether the API server serves networking.k8s.io/v1 ServiceCIDR (Kubernetes 1.33 and
    later), which the service-range policy reads as its parameter."""
    resources = call(
        "get",
        "networking.k8s.io/v1 discovery",
        None,
        lambda: client.NetworkingV1Api(api).get_api_resources(),
    )
    return any(resource.name == "servicecidrs" for resource in resources.resources or ())


# --- the bootstrap itself -----------------------------------------------------------------------


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


def _target(settings: BootstrapSettings) -> ServiceTarget | UrlTarget:
    if settings.url is not None:
        return UrlTarget(settings.url)
    return ServiceTarget(settings.namespace, settings.service_name, settings.service_port)


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


def registrations_for(
    settings: BootstrapSettings, ca_bundle: bytes, *, service_cidrs: bool = True
) -> list[Manifest]:
    """Everything these settings register: the webhook configurations, the policy that keeps
    the mode label in the hands of cluster admins, the one that names a label value that is
    not a mode, and (where the API server serves ServiceCIDR) the one that refuses external
    IPs inside the Service range, bound as the entries judge (the chart renders the same)."""
    return [
        *configurations_for(settings, ca_bundle),
        *companion_policies(
            name=settings.configuration_name,
            default_mode=settings.default_mode,
            never_judged=never_judged_namespaces(
                None if settings.url_mode else settings.namespace, settings.excluded_namespaces
            ),
            service_cidrs=service_cidrs,
        ),
    ]


def configurations_for(settings: BootstrapSettings, ca_bundle: bytes) -> tuple[Manifest, Manifest]:
    """The webhook configurations these settings register (the chart renders the same)."""
    return webhook_configurations(
        target=_target(settings),
        ca_bundle=ca_bundle,
        default_mode=settings.default_mode,
        own_namespace=None if settings.url_mode else settings.namespace,
        timeout_seconds=settings.timeout_seconds,
        failure_policy=settings.failure_policy,
        audit_failure_policy=settings.audit_failure_policy,
        excluded_namespaces=settings.excluded_namespaces,
        name=settings.configuration_name,
    )


def bootstrap(
    api: client.ApiClient,
    settings: BootstrapSettings,
    *,
    now: datetime.datetime,
    dry_run: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> RunLog:
    """Make or renew the certificates and register the webhooks; a second run changes nothing.
    With `--engine native`, register the compiled policies instead (`bootstrap_native`)."""
    if settings.engine == "native" and not settings.certificates_only:
        return bootstrap_native(api, settings, dry_run=dry_run)
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
    configurations = with_record(
        registrations_for(settings, plan.state.ca_bundle, service_cidrs=service_cidrs),
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
        report.objects = [*secrets, *configurations]
        return report
    if settings.client_cert_dir is not None and plan.state.ca is not None:
        _issue_client_certificate(settings, plan.state.ca, now, report)
    if current.ca_bundle and plan.adds_trust(current.ca_bundle):
        # A new CA is trusted by the API server before anything is signed by it.
        apply_configurations(api, configurations, report)
        report.say(f"waited {settings.trust_propagation_seconds:g}s for the new caBundle")
        sleep(settings.trust_propagation_seconds)
        store.save(plan.state, report)
    else:
        store.save(plan.state, report)
        if settings.wait_ready_seconds > 0 and not settings.url_mode:
            # A fail-closed webhook registered before a replica answers would refuse every
            # exposed Service write in the namespaces it selects until one does.
            _wait_for_ready_endpoint(api, settings, report, sleep)
        apply_configurations(api, configurations, report)
    # What an earlier registration held and this one does not (another default mode's
    # bindings) goes, so that no namespace stays judged by a mode it no longer has.
    remove_configurations(api, settings.configuration_name, report, keep=configurations)
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
) -> RunLog:
    """Webhook configurations first, so no fail-closed webhook outlives its certificates.
    A dry run reads and says what would go."""
    report = RunLog()
    remove_configurations(api, settings.configuration_name, report, dry_run=dry_run)
    if keep_certificates:  # someone else's, e.g. cert-manager's
        report.say("certificates kept")
    elif settings.url_mode and settings.cert_dir is not None:
        FileStore(settings.cert_dir).remove(report, dry_run=dry_run)
    elif not settings.url_mode:
        _secret_store(api, settings).remove(report, dry_run=dry_run)
    return report


def render(objects: Sequence[Manifest], comments: Sequence[str] = ()) -> str:
    """A dry run's output for `kubectl apply -f -`: comments first (what is not an object),
    then the objects."""
    head = "".join(f"# {line}\n" for line in comments)
    return head + yaml.safe_dump_all(list(objects), sort_keys=False)
