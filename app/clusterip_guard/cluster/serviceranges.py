"""The cluster's Service ranges, read from its ServiceCIDR objects (networking.k8s.io/v1,
Kubernetes 1.33 and later), so that `scan` refuses an external IP inside one as admission
does (core/registration.service_range_policy, evaluated by the API server itself)."""

from __future__ import annotations

import ipaddress

from kubernetes import client

from clusterip_guard.cluster.client import read_or_none
from clusterip_guard.cluster.errors import ClusterRefused
from clusterip_guard.core.policy import IPNetwork


def read_service_ranges(api: client.ApiClient) -> tuple[IPNetwork, ...]:
    """Every range of every ServiceCIDR; none where the API server has no ServiceCIDR (an
    older one: a 404, as for an object that is not there) or will not show them to us (a
    scan of one namespace by someone without cluster-wide reads: judged as the policy file
    alone says, as `check` judges)."""
    networking = client.NetworkingV1Api(api)
    try:
        found = read_or_none("list", "servicecidrs", None, networking.list_service_cidr)
    except ClusterRefused:
        return ()
    ranges: list[IPNetwork] = []
    for item in (found.items if found is not None else None) or ():
        for text in (item.spec.cidrs if item.spec is not None else None) or ():
            try:
                ranges.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                continue
    return tuple(ranges)
