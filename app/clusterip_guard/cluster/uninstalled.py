"""An uninstall that stays done (issue 30, item 9): a running `sync` used to re-create every
native policy at its next resync after `bootstrap --uninstall`.

Two ways, for the two ways a sync runs:

- The chart's sync is a Deployment: its pre-delete Job stops it first (`stop_sync`: scaled to
  0, then waited for until none of its Pods is left), so nothing is running that could write
  when the policies go.
- A sync run by hand cannot be stopped from here: the uninstall leaves a marker, the ConfigMap
  `<name>-uninstalled` in the installation's namespace, written before anything is removed.
  The sync reads it before each rendering and stands down (applies nothing, and says so); one
  that was writing while the uninstall ran reads it again after writing and removes what it
  wrote. A marker counts for the policy it was written after: a new installation (a policy
  ConfigMap made after it, as a reinstall of the chart makes one) or a `bootstrap` lifts it.
"""

from __future__ import annotations

import datetime
import functools
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as TransportError

from clusterip_guard.cluster.client import RunLog, failure, read_or_none
from clusterip_guard.cluster.errors import ClusterError, ClusterRefused

MARKER_SUFFIX = "-uninstalled"
MARKER_KEY = "uninstalled"
STOP_SYNC_TIMEOUT_SECONDS = 120.0
POLL_SECONDS = 1.0
HTTP_CONFLICT = 409


class SyncStillRunning(ClusterError):
    """The sync's Pods did not go within the timeout: nothing was removed."""


def marker_name(installation: str) -> str:
    return f"{installation}{MARKER_SUFFIX}"


def write_marker(
    api: client.ApiClient, namespace: str, installation: str, now: datetime.datetime
) -> str:
    """The marker written (or renewed); what to report."""
    core = client.CoreV1Api(api)
    name = marker_name(installation)
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {MARKER_KEY: now.isoformat(timespec="seconds")},
    }
    create: Callable[..., Any] = core.create_namespaced_config_map
    try:
        create(namespace, manifest)
    except ApiException as error:
        if error.status != HTTP_CONFLICT:
            raise failure(error, "create", "configmaps", namespace) from error
        # One from an earlier uninstall: replaced, so that it is newer than any policy since.
        _delete(api, namespace, name)
        try:
            create(namespace, manifest)
        except ApiException as again:
            raise failure(again, "create", "configmaps", namespace) from again
    except (TransportError, OSError) as error:
        raise failure(error, "create", "configmaps", namespace) from error
    return f"wrote ConfigMap {namespace}/{name}: a running sync of {installation} stands down"


def _delete(api: client.ApiClient, namespace: str, name: str) -> bool:
    core = client.CoreV1Api(api)
    deleted = read_or_none(
        "delete",
        "configmaps",
        namespace,
        functools.partial(core.delete_namespaced_config_map, name, namespace),
    )
    return deleted is not None


def marked_at(api: client.ApiClient, namespace: str, installation: str) -> datetime.datetime | None:
    """When the marker was written; None when there is none."""
    core = client.CoreV1Api(api)
    found = read_or_none(
        "get",
        "configmaps",
        namespace,
        functools.partial(core.read_namespaced_config_map, marker_name(installation), namespace),
    )
    if found is None or found.metadata is None:
        return None
    created = found.metadata.creation_timestamp
    return created if isinstance(created, datetime.datetime) else None


def lift_marker(api: client.ApiClient, namespace: str, installation: str, report: RunLog) -> None:
    """A new bootstrap of the installation lifts an earlier uninstall's marker (where it may:
    the chart's Jobs need not)."""
    try:
        if _delete(api, namespace, marker_name(installation)):
            report.say(f"deleted ConfigMap {namespace}/{marker_name(installation)}")
    except ClusterRefused:
        return


def stop_sync(
    api: client.ApiClient,
    namespace: str,
    deployment: str,
    report: RunLog,
    *,
    timeout: float = STOP_SYNC_TIMEOUT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """The sync's Deployment scaled to 0, then waited for until none of its Pods is left (a
    terminating one may still write). No Deployment: nothing to stop."""
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    found = read_or_none(
        "get",
        "deployments",
        namespace,
        functools.partial(apps.read_namespaced_deployment, deployment, namespace),
    )
    if found is None:
        report.say(f"no Deployment {namespace}/{deployment}")
        return
    labels = (found.spec.selector.match_labels if found.spec else None) or {}
    if not labels:
        raise ClusterError(f"Deployment {namespace}/{deployment}: no matchLabels to find its Pods")
    selector = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
    scale: Callable[..., Any] = apps.patch_namespaced_deployment_scale
    try:
        scale(deployment, namespace, {"spec": {"replicas": 0}})
    except (ApiException, TransportError, OSError) as error:
        raise failure(error, "patch", "deployments/scale", namespace) from error
    list_pods = functools.partial(core.list_namespaced_pod, namespace, label_selector=selector)
    deadline = clock() + timeout
    while True:
        pods = read_or_none("list", "pods", namespace, list_pods)
        left = len(pods.items) if pods is not None else 0
        if not left:
            report.say(f"stopped Deployment {namespace}/{deployment}: no Pod of it is left")
            return
        if clock() >= deadline:
            raise SyncStillRunning(
                f"Deployment {namespace}/{deployment} scaled to 0, but {left} of its Pods "
                f"still there after {timeout:g}s; nothing removed (run the uninstall again)"
            )
        sleep(POLL_SECONDS)
