"""Listing what the scan reads (Services, Pods and the workloads that make them, Ingresses, and
the Gateway API's Gateways and routes where they are served), every kind through one pager: a
page at a time (`limit` and `continue`), as raw JSON (cluster/scanning.py says why), in the API
server's key order (core/listing_order.py), so that the scan holds one page of each list and
never the whole.

A continue token that expires while paging (410 Gone: etcd compacted the version the list was
reading, after about five minutes) is handled as client-go's pager does: the 410's Status
carries a token that continues the list at a newer version (an "inconsistent continue"), and
the pager takes it; without one, it lists again from the start and skips what it had read
(the order is the key's, so "already read" is "not past the last key"). Either is said in one
line and counted (cluster/limits.py); no namespace is dropped.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as TransportError

from clusterip_guard.cluster.client import HTTP_NOT_FOUND, described, failure
from clusterip_guard.cluster.errors import ClusterError
from clusterip_guard.cluster.limits import patiently, reached
from clusterip_guard.cluster.served_apis import ServedKind, served_gateway_api
from clusterip_guard.core import sentences as say
from clusterip_guard.core.ingresses import INGRESS_RESOURCE
from clusterip_guard.core.listing_order import listing_key
from clusterip_guard.core.types import Manifest
from clusterip_guard.core.workloads import WORKLOAD_KINDS, WorkloadKind

PAGE_SIZE = 500
HTTP_GONE = 410


@dataclass(frozen=True)
class Listing:
    """One list to page through: the client's list call with its query bound (`limit` and
    `_continue` are the pager's), and what it lists, named as RBAC names it for errors."""

    resource: str  # "services", "policyreports.wgpolicyk8s.io"
    namespace: str | None  # None: every namespace (or a cluster-scoped kind)
    request: Callable[..., Any]
    page_size: int = PAGE_SIZE
    when_missing: str | None = None  # what a 404 (the API server knows no such list) means


class _Expired(Exception):
    def __init__(self, token: str | None) -> None:
        super().__init__(token)
        self.token = token


def _key(item: Manifest) -> str:
    metadata = item.get("metadata") or {}
    return listing_key(str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))


def _page(listing: Listing, token: str | None) -> Manifest:
    what = described("list", listing.resource, listing.namespace)
    request = functools.partial(
        listing.request, limit=listing.page_size, _continue=token, _preload_content=False
    )
    try:
        body = json.loads(patiently(request, what).data)
    except ApiException as error:
        if error.status == HTTP_GONE and token is not None:
            raise _Expired(_continue_of(error)) from error
        if error.status == HTTP_NOT_FOUND and listing.when_missing is not None:
            raise ClusterError(listing.when_missing) from None
        raise failure(error, "list", listing.resource, listing.namespace) from error
    except (TransportError, OSError) as error:
        raise failure(error, "list", listing.resource, listing.namespace) from error
    return body if isinstance(body, dict) else {}


def _continue_of(error: ApiException) -> str | None:
    """The token a 410's Status offers to continue the list at a newer version."""
    try:
        status = json.loads(error.body or "")
    except (ValueError, TypeError):
        return None
    metadata = status.get("metadata") if isinstance(status, dict) else None
    token = metadata.get("continue") if isinstance(metadata, dict) else None
    return token if isinstance(token, str) and token else None


def pages(listing: Listing) -> Iterator[Manifest]:
    """Every item of a list, a page at a time, in the API server's order; each item once,
    even when the list expires while paging."""
    token: str | None = None
    last: str | None = None  # the key of the last item yielded
    skip_through: str | None = None  # after a restart: what was yielded already
    read = 0
    while True:
        try:
            body = _page(listing, token)
        except _Expired as expired:
            if expired.token is not None:
                reached("list-expired", say.LIST_CONTINUED.format(resource=listing.resource))
                token = expired.token
            else:
                reached(
                    "list-expired",
                    say.LIST_RESTARTED.format(resource=listing.resource, read=read),
                )
                token, skip_through = None, last
            continue
        for item in body.get("items") or []:
            key = _key(item)
            if skip_through is not None:
                if key <= skip_through:
                    continue
                skip_through = None
            last = key
            read += 1
            yield item
        token = (body.get("metadata") or {}).get("continue") or None
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


def _scoped(all_namespaces: Callable[..., Any], namespaced: Callable[..., Any],
            namespace: str | None) -> Callable[..., Any]:  # fmt: skip
    return all_namespaces if namespace is None else functools.partial(namespaced, namespace)


def service_listing(api: client.ApiClient, namespace: str | None = None) -> Listing:
    core = client.CoreV1Api(api)
    request = _scoped(core.list_service_for_all_namespaces, core.list_namespaced_service, namespace)
    return Listing("services", namespace, request)


def workload_listings(
    api: client.ApiClient, namespace: str | None = None
) -> list[tuple[WorkloadKind, Listing]]:
    """Every kind of Pod and workload that makes Pods (the items of a list carry no kind)."""
    found = []
    for kind in WORKLOAD_KINDS:
        api_class, all_namespaces, namespaced = _WORKLOAD_LISTS[kind.kind]
        reader = api_class(api)
        request = _scoped(getattr(reader, all_namespaces), getattr(reader, namespaced), namespace)
        found.append((kind, Listing(kind.resource, namespace, request)))
    return found


def ingress_listing(api: client.ApiClient, namespace: str | None = None) -> Listing:
    """Ingresses (networking.k8s.io/v1)."""
    networking = client.NetworkingV1Api(api)
    request = _scoped(
        networking.list_ingress_for_all_namespaces, networking.list_namespaced_ingress, namespace
    )
    return Listing(INGRESS_RESOURCE, namespace, request)


def namespace_listing(api: client.ApiClient, selector: str | None = None) -> Listing:
    core = client.CoreV1Api(api)
    request = (
        functools.partial(core.list_namespace, label_selector=selector)
        if selector
        else core.list_namespace
    )
    return Listing("namespaces", None, request)


def gateway_api_listings(
    api: client.ApiClient, namespace: str | None = None
) -> list[tuple[ServedKind, Listing]]:
    """Each Gateway API kind the API server serves (a kind whose CRD is not installed is not
    listed); its items carry no kind or apiVersion in a list: the caller stamps them."""
    return [
        (served, Listing(served.resource, namespace, _custom_list(api, served, namespace)))
        for served in served_gateway_api(api)
    ]


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
