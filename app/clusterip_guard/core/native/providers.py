"""Internal load balancers in CEL: each provider's reading, as core/cloud_providers.py reads
it, built from the same annotation keys and value sets. Pure: strings out."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from clusterip_guard.core.cel_literals import text, texts
from clusterip_guard.core.cloud_providers import (
    AWS_LOAD_BALANCER_INTERNAL,
    AWS_LOAD_BALANCER_SCHEME,
    AWS_LOAD_BALANCER_TYPE,
    AWS_NOT_INTERNAL,
    AWS_SCHEME_INTERNAL,
    AWS_TYPES_FOR_THE_LOAD_BALANCER_CONTROLLER,
    AZURE_LOAD_BALANCER_INTERNAL,
    EXACTLY_TRUE,
    GCP_INTERNAL,
    GKE_DEPRECATED_LOAD_BALANCER_TYPE,
    GKE_LOAD_BALANCER_TYPE,
    GO_TRUE,
    OCI_LOAD_BALANCER_INTERNAL,
    OCI_LOAD_BALANCER_TYPE,
    OCI_NETWORK_LOAD_BALANCER,
    OCI_NETWORK_LOAD_BALANCER_INTERNAL,
    OPENSTACK_INTERNAL_LOAD_BALANCER,
    Provider,
)
from clusterip_guard.core.native.services import annotations_of, object_type
from clusterip_guard.core.policy import PolicySettings


def _has(m: str, key: str) -> str:
    return f"({text(key)} in {m})"


def _value(m: str, key: str) -> str:
    return f"{m}[{text(key)}]"


def _go_true(m: str, key: str) -> str:
    return f"({_has(m, key)} && {_value(m, key)} in {texts(GO_TRUE)})"


def _aws_load_balancer_controller(m: str) -> str:
    scheme = AWS_LOAD_BALANCER_SCHEME
    return (
        f"({_has(m, scheme)} ? {_value(m, scheme)} == {text(AWS_SCHEME_INTERNAL)}"
        f" : {_go_true(m, AWS_LOAD_BALANCER_INTERNAL)})"
    )


def _aws(m: str) -> str:
    internal = AWS_LOAD_BALANCER_INTERNAL
    cloud_controller = (
        f"({_has(m, internal)} && !({_value(m, internal)} in {texts(AWS_NOT_INTERNAL)}))"
    )
    lbc = _aws_load_balancer_controller(m)
    handed_over = (
        f"({_has(m, AWS_LOAD_BALANCER_TYPE)} && {_value(m, AWS_LOAD_BALANCER_TYPE)} in "
        f"{texts(AWS_TYPES_FOR_THE_LOAD_BALANCER_CONTROLLER)})"
    )
    return f"({handed_over} ? {lbc} : ({lbc} && {cloud_controller}))"


def _gcp(m: str) -> str:
    internal = texts(GCP_INTERNAL)
    new, old = GKE_LOAD_BALANCER_TYPE, GKE_DEPRECATED_LOAD_BALANCER_TYPE
    return (
        f"({_has(m, new)} ? {_value(m, new)} in {internal}"
        f" : ({_has(m, old)} && {_value(m, old)} in {internal}))"
    )


def _oci(m: str) -> str:
    network = (
        f"({_has(m, OCI_LOAD_BALANCER_TYPE)} && "
        f"{_value(m, OCI_LOAD_BALANCER_TYPE)}.lowerAscii() == {text(OCI_NETWORK_LOAD_BALANCER)})"
    )
    return (
        f"({network} ? {_go_true(m, OCI_NETWORK_LOAD_BALANCER_INTERNAL)}"
        f" : {_go_true(m, OCI_LOAD_BALANCER_INTERNAL)})"
    )


def _exactly_true(key: str) -> Callable[[str], str]:
    return lambda m: f"({_has(m, key)} && {_value(m, key)} == {text(EXACTLY_TRUE)})"


# The same providers as cloud_providers.INTERNAL_READERS and CLASS_READERS, each read the same
# way (tests/unit/test_native.py holds the keys equal; the differential test the readings).
READERS: Final[Mapping[Provider, Callable[[str], str]]] = {
    "aws": _aws,
    "gcp": _gcp,
    "azure": _exactly_true(AZURE_LOAD_BALANCER_INTERNAL),
    "oci": _oci,
    "openstack": _exactly_true(OPENSTACK_INTERNAL_LOAD_BALANCER),
}
CLASS_READERS: Final[Mapping[Provider, Callable[[str], str]]] = {
    "aws": _aws_load_balancer_controller
}


def has_class(o: str) -> str:
    return f"(has({o}.spec.loadBalancerClass) && {o}.spec.loadBalancerClass != '')"


def internal_load_balancer(o: str, policy: PolicySettings) -> str:
    """Whether the policy accepts this LoadBalancer as internal (is_allowed_internal_...)."""
    if not policy.allow_internal_load_balancers:
        return "false"
    m = annotations_of(o)
    providers: list[Provider] = list(policy.internal_load_balancer_providers)
    unclassed = " || ".join(READERS[p](m) for p in providers) or "false"
    classed = (
        " || ".join(
            f"({o}.spec.loadBalancerClass == {text(name)} && {CLASS_READERS[p](m)})"
            for name, p in policy.internal_load_balancer_classes
        )
        or "false"
    )
    return f"({object_type(o)} == 'LoadBalancer' && ({has_class(o)} ? ({classed}) : ({unclassed})))"
