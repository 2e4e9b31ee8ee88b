"""What this API server serves that an installation needs: the admission-policy APIs the native
engine registers (docs/design.md, "Engines"), and ServiceCIDR, which the Service-range policy
reads."""

from __future__ import annotations

from kubernetes import client

from clusterip_guard.cluster.client import call

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
