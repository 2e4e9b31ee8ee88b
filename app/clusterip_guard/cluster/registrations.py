"""What a bootstrap (or the sync component) registers for its settings: the installation they
describe, and its objects by the core's `objects_for`, as `render` prints them (docs/design.md,
"What bootstrap registers" and "Engines"); and the native engine's bootstrap: its policies
registered, then everything of the installation they do not hold removed.
"""

from __future__ import annotations

import datetime

from kubernetes import client

from clusterip_guard.cluster.admission_objects import (
    apply_admission_objects,
    remove_admission_objects,
    with_record,
)
from clusterip_guard.cluster.client import RunLog
from clusterip_guard.cluster.errors import ApiMissing
from clusterip_guard.cluster.served_apis import serves_native_policies, serves_service_cidrs
from clusterip_guard.cluster.settings import BootstrapSettings, record_of
from clusterip_guard.cluster.switching import switch_engine
from clusterip_guard.core.installation import Installation, objects_for
from clusterip_guard.core.native import NativeUnsupported
from clusterip_guard.core.policy import PolicySettings
from clusterip_guard.core.registration import ServiceTarget
from clusterip_guard.core.types import Manifest
from clusterip_guard.policyfile import PolicyError, read_policy_file


def installation_of(
    settings: BootstrapSettings, *, ca_bundle: bytes | None = None, service_cidrs: bool = True
) -> Installation:
    return Installation(
        name=settings.configuration_name,
        service=ServiceTarget(settings.namespace, settings.service_name, settings.service_port),
        url=settings.url,
        default_mode=settings.default_mode,
        excluded_namespaces=settings.excluded_namespaces,
        ca_bundle=ca_bundle,
        timeout_seconds=settings.timeout_seconds,
        failure_policy=settings.failure_policy,
        audit_failure_policy=settings.audit_failure_policy,
        service_cidrs=service_cidrs,
        native_runs_in_namespace=settings.runs_in_namespace,
    )


def registrations_for(
    settings: BootstrapSettings,
    ca_bundle: bytes,
    *,
    service_cidrs: bool = True,
    policy: PolicySettings | None = None,
) -> list[Manifest]:
    """What the webhook engine registers for these settings: the webhook configurations, the
    policy that keeps the mode label in the hands of cluster admins, the one that names a
    label value that is not a mode, and (where the API server serves ServiceCIDR) the one that
    refuses external IPs inside the Service range, bound as the entries judge (the chart
    renders the same). `policy`: given, else read from `settings.policy_file` when there is
    one: its allowed ingress classes leave Ingresses of them out of the match conditions.
    Without either every Ingress write costs a call: a registration that does not know the
    policy never skips a judgement."""
    if policy is None and settings.policy_file is not None:
        policy = read_policy_file(settings.policy_file)
    installation = installation_of(settings, ca_bundle=ca_bundle, service_cidrs=service_cidrs)
    return objects_for("webhook", installation, policy)


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
    component's), else read from `settings.policy_file`; `today`: see `objects_for`."""
    missing = serves_native_policies(api)
    if missing is not None:
        raise ApiMissing(missing)
    if policy is None:
        policy = read_policy_file(settings.policy_file)
    service_cidrs = serves_service_cidrs(api)
    if not service_cidrs:
        report.say("no ServiceCIDR on this API server: no Service-range policy")
    installation = installation_of(settings, service_cidrs=service_cidrs)
    try:
        return objects_for("native", installation, policy, today=today)
    except NativeUnsupported as error:
        where = f"policy file {settings.policy_file}" if settings.policy_file else "policy"
        raise PolicyError(f"{where}: {error}") from None


def bootstrap_native(
    api: client.ApiClient,
    settings: BootstrapSettings,
    *,
    dry_run: bool = False,
    policy: PolicySettings | None = None,
    today: datetime.date | None = None,
) -> RunLog:
    """Register the native engine's policies; where the webhook engine is registered, wait
    until the policies answer (`switch_engine`); then remove the webhook engine's objects (and
    anything else of ours the new registration does not hold): no moment without a guard.
    Certificates are left as they are (the native engine uses none). An object that already
    says the same is not written."""
    report = RunLog()
    registered = native_registrations(api, settings, report, policy=policy, today=today)
    objects = with_record(registered, record_of(settings))
    if dry_run:
        report.objects = objects
        return report
    apply_admission_objects(api, objects, report)
    switch_engine(
        api,
        "native",
        settings.configuration_name,
        objects,
        report,
        timeout=settings.switch_timeout_seconds,
    )
    remove_admission_objects(api, settings.configuration_name, report, keep=objects)
    return report
