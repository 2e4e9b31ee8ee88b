"""Listing what the scan judges beside Services: Pods, the workloads that make them,
Ingresses, and the Gateway API's Gateways and routes where they are served, a page at a time
as raw JSON (cluster/scanning.py says why)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from typing import Any

from kubernetes import client

from clusterip_guard.cluster.client import call
from clusterip_guard.cluster.served_apis import ServedKind, served_gateway_api
from clusterip_guard.core.ingresses import INGRESS_RESOURCE
from clusterip_guard.core.types import Manifest
from clusterip_guard.core.workloads import WORKLOAD_KINDS, WorkloadKind

PAGE_SIZE = 500


def pages(
    verb: str, resource: str, namespace: str | None, request: Callable[..., Any], **query: Any
) -> Iterator[Manifest]:
    """Every item of a list, a page at a time."""
    token: str | None = None
    while True:
        page = call(
            verb,
            resource,
            namespace,
            functools.partial(
                request, limit=PAGE_SIZE, _continue=token, _preload_content=False, **query
            ),
        )
        body = json.loads(page.data)
        yield from body.get("items") or []
        token = (body.get("metadata") or {}).get("continue")
        if not token:
            return


# How each kind is listed: (client API class, all namespaces, one namespace).
_WORKLOAD_LISTS: dict[str, tuple[Callable[[client.ApiClient], Any], str, str]] = {
    "Pod": (client.CoreV1Api, "list_pod_for_all_namespaces", "list_namespaced_pod"),
    "Deployment": (
        client.AppsV1Api, "list_deployment_for_all_namespaces", "list_namespaced_deployment"
    ),
    "ReplicaSet": (
        client.AppsV1Api, "list_replica_set_for_all_namespaces", "list_namespaced_replica_set"
    ),
    "StatefulSet": (
        client.AppsV1Api, "list_stateful_set_for_all_namespaces", "list_namespaced_stateful_set"
    ),
    "DaemonSet": (
        client.AppsV1Api, "list_daemon_set_for_all_namespaces", "list_namespaced_daemon_set"
    ),
    "Job": (client.BatchV1Api, "list_job_for_all_namespaces", "list_namespaced_job"),
    "CronJob": (client.BatchV1Api, "list_cron_job_for_all_namespaces", "list_namespaced_cron_job"),
    "ReplicationController": (
        client.CoreV1Api,
        "list_replication_controller_for_all_namespaces",
        "list_namespaced_replication_controller",
    ),
}  # fmt: skip


def read_workloads(
    api: client.ApiClient, namespace: str | None = None
) -> list[tuple[WorkloadKind, Manifest]]:
    """Every Pod and workload that makes Pods, or a namespace's, with its kind (the items of a
    list do not carry one)."""
    found: list[tuple[WorkloadKind, Manifest]] = []
    for kind in WORKLOAD_KINDS:
        api_class, all_namespaces, namespaced = _WORKLOAD_LISTS[kind.kind]
        reader = api_class(api)
        request = (
            getattr(reader, all_namespaces)
            if namespace is None
            else functools.partial(getattr(reader, namespaced), namespace)
        )
        found += [(kind, item) for item in pages("list", kind.resource, namespace, request)]
    return found


def read_ingresses(api: client.ApiClient, namespace: str | None = None) -> list[Manifest]:
    """Every Ingress, or a namespace's (networking.k8s.io/v1)."""
    networking = client.NetworkingV1Api(api)
    request = (
        networking.list_ingress_for_all_namespaces
        if namespace is None
        else functools.partial(networking.list_namespaced_ingress, namespace)
    )
    return list(pages("list", INGRESS_RESOURCE, namespace, request))


def read_gateway_api(api: client.ApiClient, namespace: str | None = None) -> list[Manifest]:
    """Every Gateway and route the API server serves, or a namespace's, each with its apiVersion
    and kind (as served); a kind whose CRD is not installed is not listed."""
    found: list[Manifest] = []
    for served in served_gateway_api(api):
        for item in pages("list", served.resource, namespace, _custom_list(api, served, namespace)):
            item.setdefault("apiVersion", f"{served.group}/{served.version}")
            item.setdefault("kind", served.kind)
            found.append(item)
    return found


def _custom_list(
    api: client.ApiClient, served: ServedKind, namespace: str | None
) -> Callable[..., Any]:
    custom = client.CustomObjectsApi(api)
    if namespace is None:
        return functools.partial(
            custom.list_cluster_custom_object, served.group, served.version, served.resource
        )
    return functools.partial(
        custom.list_namespaced_custom_object,
        served.group,
        served.version,
        namespace,
        served.resource,
    )


def gateway_api_list_calls(api: client.ApiClient) -> list[tuple[Callable[..., Any], str]]:
    """(list call over all namespaces, resource) of each Gateway API kind served, to watch."""
    return [
        (_custom_list(api, served, None), served.resource) for served in served_gateway_api(api)
    ]
