"""An installation's admission objects on the API server (docs/design.md, "What bootstrap
registers" and "Engines"): written where they differ from what is wanted, removed by the
inventory of the names an installation registers (core/installation.py), and the settings the
last bootstrap recorded on them."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from clusterip_guard.cluster.client import RunLog, read_or_none
from clusterip_guard.cluster.errors import ClusterRefused
from clusterip_guard.cluster.narrowing import narrowed_fields
from clusterip_guard.cluster.served_apis import serves_native_policies
from clusterip_guard.cluster.settings import RecordError
from clusterip_guard.cluster.writing import (
    ObjectAPI,
    as_plain,
    read_stored,
    stored_as_wanted,
    write_object,
)
from clusterip_guard.core.installation import (
    ADMISSION_KINDS,
    SERVICE_CONVERSION,
    WEBHOOK_CONFIGURATION_KINDS,
    installed_names,
)
from clusterip_guard.core.names import BOOTSTRAP_SETTINGS_ANNOTATION
from clusterip_guard.core.types import Manifest


@dataclass(frozen=True)
class _Kind:
    name: str
    read: Callable[[str], Any]
    create: Callable[[Any], Any]
    replace: Callable[[str, Any], Any]
    delete: Callable[[str], Any]


def _kinds(api: client.ApiClient) -> dict[str, _Kind]:
    admission = client.AdmissionregistrationV1Api(api)
    kinds = [
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
    return {kind.name: kind for kind in kinds}


def _resource(kind: str) -> str:
    """The plural resource name of a kind, as RBAC and kubectl spell it."""
    lower = kind.lower()
    return lower[:-1] + "ies" if lower.endswith("y") else lower + "s"


def apply_admission_objects(
    api: client.ApiClient, objects: Sequence[Manifest], report: RunLog
) -> None:
    """Each object written unless the API server already holds it as wanted, its fields that
    narrow what it judges included (cluster/narrowing.py): one someone narrowed is put back,
    and the report names each field restored."""
    kinds = _kinds(api)
    for manifest in objects:
        kind = kinds[manifest["kind"]]
        name = manifest["metadata"]["name"]
        where = ObjectAPI(
            resource=_resource(kind.name),
            namespace=None,
            read=functools.partial(_plain, api, kind.read, name),
            create=kind.create,
            replace=functools.partial(kind.replace, name),
        )
        stored = read_stored(where)
        narrowed = narrowed_fields(manifest, stored) if stored is not None else []
        written = write_object(where, manifest, stored=stored, as_wanted=_as_wanted)
        report.say(f"{written} {kind.name} {name}")
        if written == "updated":
            for field in narrowed:
                report.say(f"restored {kind.name} {name} {field}")


def _as_wanted(wanted: Manifest, stored: Manifest) -> bool:
    return stored_as_wanted(wanted, stored) and not narrowed_fields(wanted, stored)


def _plain(api: client.ApiClient, read: Callable[[str], Any], name: str) -> Manifest:
    return as_plain(api, read(name))


def remove_admission_objects(
    api: client.ApiClient,
    installation: str,
    report: RunLog,
    *,
    dry_run: bool = False,
    keep: Sequence[Manifest] = (),
) -> None:
    """Every object the inventory names for `installation`: the webhook configurations first
    (fail-closed), then the policies and their bindings; but not the objects in `keep` (a
    bootstrap removes only what its registration no longer holds: the other engine's,
    another default mode's bindings)."""
    kept = {(manifest["kind"], manifest["metadata"]["name"]) for manifest in keep}
    kinds = _kinds(api)
    for kind_name in ADMISSION_KINDS:
        kind = kinds[kind_name]
        resource = _resource(kind.name)
        for named in installed_names(kind_name, installation):
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


def any_stored(api: client.ApiClient, named: Sequence[tuple[str, str]]) -> bool:
    """Whether the API server holds any of the objects named (kind, name); reads until one."""
    kinds = _kinds(api)
    return any(
        read_or_none("get", _resource(kind), None, functools.partial(kinds[kind].read, name))
        is not None
        for kind, name in named
    )


def remove_named(api: client.ApiClient, named: Sequence[tuple[str, str]], report: RunLog) -> None:
    """The objects named (kind, name), where they exist."""
    kinds = _kinds(api)
    for kind, name in named:
        delete = functools.partial(kinds[kind].delete, name)
        if read_or_none("delete", _resource(kind), None, delete) is not None:
            report.say(f"deleted {kind} {name}")


# Where a registration records its settings: the webhook engine's configurations, the native
# engine's MutatingAdmissionPolicies.
RECORD_KINDS = (*WEBHOOK_CONFIGURATION_KINDS, "MutatingAdmissionPolicy")


def with_record(objects: Sequence[Manifest], record: dict[str, object]) -> list[Manifest]:
    """The webhook configurations (or the native engine's mutating policies) carrying the
    settings they were registered with."""
    text = json.dumps(record, sort_keys=True, separators=(",", ":"))
    recorded: list[Manifest] = []
    for manifest in objects:
        if manifest["kind"] not in RECORD_KINDS:
            recorded.append(manifest)
            continue
        metadata = manifest["metadata"]
        annotations = {**metadata["annotations"], BOOTSTRAP_SETTINGS_ANNOTATION: text}
        recorded.append({**manifest, "metadata": {**metadata, "annotations": annotations}})
    return recorded


def read_record(api: client.ApiClient, installation: str) -> dict[str, object] | None:
    """The settings the last bootstrap recorded; None when there is none we may read (the
    chart's Jobs may not read, and give every flag)."""
    admission = client.AdmissionregistrationV1Api(api)
    found: Any
    try:
        found = read_or_none(
            "get",
            "mutatingwebhookconfigurations",
            None,
            functools.partial(admission.read_mutating_webhook_configuration, installation),
        )
        if found is None and serves_native_policies(api) is None:
            found = read_or_none(
                "get",
                "mutatingadmissionpolicies",
                None,
                functools.partial(
                    admission.read_mutating_admission_policy,
                    SERVICE_CONVERSION.name(installation),
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
