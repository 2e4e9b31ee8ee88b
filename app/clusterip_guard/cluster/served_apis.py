"""What this API server serves that an installation needs: the admission-policy APIs the native
engine registers (docs/design.md, "Engines"), ServiceCIDR, which the Service-range policy
reads, and the Gateway API's kinds, which the scan lists where their CRDs are installed."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from kubernetes import client

from clusterip_guard.cluster.client import call
from clusterip_guard.core.gateways import GATEWAY_API_KIND_NAMES, GATEWAY_GROUP

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


@dataclass(frozen=True)
class ServedKind:
    """A kind a custom resource definition serves: where to list it."""

    kind: str
    group: str
    version: str
    resource: str


def served_gateway_api(api: client.ApiClient) -> list[ServedKind]:
    """The Gateway API's Gateway and routes this API server serves, each at the first version
    (the preferred one first) that lists it: a cluster may install the standard channel's
    CRDs (Gateway and HTTPRoute at v1) beside the experimental ones (TCPRoute at v1alpha2).
    A kind not served is not listed (nothing is said about it)."""
    groups = call("get", "API groups discovery", None, client.ApisApi(api).get_api_versions)
    group = next((g for g in groups.groups or () if g.name == GATEWAY_GROUP), None)
    if group is None:
        return []
    preferred = group.preferred_version.version if group.preferred_version else None
    versions = sorted(
        (v.version for v in group.versions or ()), key=lambda version: version != preferred
    )
    found: dict[str, ServedKind] = {}
    custom = client.CustomObjectsApi(api)
    for version in versions:
        resources = call(
            "get",
            f"{GATEWAY_GROUP}/{version} discovery",
            None,
            functools.partial(custom.get_api_resources, GATEWAY_GROUP, version),
        )
        for resource in resources.resources or ():
            if resource.kind in GATEWAY_API_KIND_NAMES and "/" not in resource.name:
                found.setdefault(
                    resource.kind, ServedKind(resource.kind, GATEWAY_GROUP, version, resource.name)
                )
    return [found[kind] for kind in GATEWAY_API_KIND_NAMES if kind in found]
