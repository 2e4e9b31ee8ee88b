"""The ClusterIP conversion (docs/design.md, "The conversion (`mutate`)"): every field,
idempotence, and properties."""

from __future__ import annotations

import copy
import datetime
from typing import Any

import jsonpatch
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clusterip_guard.core.cloud_providers import ANNOTATIONS_READ
from clusterip_guard.core.conversion import conversion_patch, internalize
from clusterip_guard.core.decision import ServiceChange, decide
from clusterip_guard.core.exposure import exposure_of
from clusterip_guard.core.names import CONVERTED_FROM_ANNOTATION, SOURCE_RANGES_ANNOTATION
from clusterip_guard.core.policy import PolicySettings
from clusterip_guard.core.types import MODES, Manifest
from clusterip_guard.policyfile import policy_from_mapping
from tests.support.builders import service

TODAY = datetime.date(2026, 11, 24)
NO_POLICY = PolicySettings()
ALLOW_TEN = policy_from_mapping({"allowedExternalIPCIDRs": ["10.0.0.0/8"]})
INTERNAL = {"networking.gke.io/load-balancer-type": "Internal"}

EVERY_LB_FIELD = service(
    "LoadBalancer",
    annotations={SOURCE_RANGES_ANNOTATION: "1.2.3.0/24", "team": "shop"},
    ports=[
        {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP", "nodePort": 30080},
        {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP", "nodePort": 30443},
    ],
    externalTrafficPolicy="Local",
    healthCheckNodePort=32000,
    loadBalancerClass="example.com/lb",
    loadBalancerSourceRanges=["1.2.3.0/24"],
    loadBalancerIP="198.51.100.10",
    externalIPs=["10.0.0.5", "203.0.113.5"],
    clusterIP="10.96.0.42",
    clusterIPs=["10.96.0.42"],
    selector={"app": "web"},
)


@pytest.mark.parametrize(
    ("removed", "where"),
    [
        ("healthCheckNodePort", "spec"),
        ("allocateLoadBalancerNodePorts", "spec"),
        ("loadBalancerClass", "spec"),
        ("loadBalancerSourceRanges", "spec"),
        ("loadBalancerIP", "spec"),
        (SOURCE_RANGES_ANNOTATION, "annotations"),
    ],
)
def test_conversion_removes_every_load_balancer_only_field(removed: str, where: str) -> None:
    converted = internalize(EVERY_LB_FIELD, NO_POLICY)
    container = converted["spec"] if where == "spec" else converted["metadata"]["annotations"]
    assert removed not in container


def test_conversion_sets_cluster_ip_and_records_the_old_type() -> None:
    converted = internalize(EVERY_LB_FIELD, NO_POLICY)
    assert converted["spec"]["type"] == "ClusterIP"
    assert converted["metadata"]["annotations"][CONVERTED_FROM_ANNOTATION] == "LoadBalancer"


def test_conversion_removes_every_node_port() -> None:
    converted = internalize(EVERY_LB_FIELD, NO_POLICY)
    assert all("nodePort" not in port for port in converted["spec"]["ports"])


def test_conversion_keeps_everything_else() -> None:
    converted = internalize(EVERY_LB_FIELD, NO_POLICY)
    assert converted["spec"]["selector"] == {"app": "web"}
    assert converted["spec"]["clusterIP"] == "10.96.0.42"
    assert converted["spec"]["clusterIPs"] == ["10.96.0.42"]
    assert converted["spec"]["ports"][1] == {
        "name": "https",
        "port": 443,
        "targetPort": 8443,
        "protocol": "TCP",
    }
    assert converted["metadata"]["annotations"]["team"] == "shop"
    assert converted["metadata"]["labels"] == {"app": "web"}


def test_external_ips_outside_allowed_cidrs_are_removed() -> None:
    assert "externalIPs" not in internalize(EVERY_LB_FIELD, NO_POLICY)["spec"]
    assert internalize(EVERY_LB_FIELD, ALLOW_TEN)["spec"]["externalIPs"] == ["10.0.0.5"]


def test_external_traffic_policy_stays_while_allowed_external_ips_remain() -> None:
    assert "externalTrafficPolicy" not in internalize(EVERY_LB_FIELD, NO_POLICY)["spec"]
    assert internalize(EVERY_LB_FIELD, ALLOW_TEN)["spec"]["externalTrafficPolicy"] == "Local"


def test_node_port_as_the_api_server_defaults_it_is_converted() -> None:
    # The API server sets externalTrafficPolicy: Cluster on a NodePort before admission.
    patch = conversion_patch(service("NodePort"), NO_POLICY)
    assert sorted((op["op"], op["path"]) for op in patch) == [
        ("add", "/metadata/annotations"),
        ("remove", "/spec/externalTrafficPolicy"),
        ("replace", "/spec/type"),
    ]


def test_cluster_ip_with_a_public_external_ip_only_loses_the_ip() -> None:
    patch = conversion_patch(service(externalIPs=["203.0.113.5"]), NO_POLICY)
    assert patch == [{"op": "remove", "path": "/spec/externalIPs"}]


def test_allowed_internal_load_balancer_stays_but_leaves_the_nodes() -> None:
    policy = policy_from_mapping(
        {"allowInternalLoadBalancers": True, "internalLoadBalancerProviders": ["gcp"]}
    )
    lb = service(
        "LoadBalancer",
        annotations=INTERNAL,
        ports=[{"port": 80, "nodePort": 30080, "protocol": "TCP"}],
    )
    converted = internalize(lb, policy)
    assert converted["spec"]["type"] == "LoadBalancer"
    assert converted["spec"]["allocateLoadBalancerNodePorts"] is False
    assert "nodePort" not in converted["spec"]["ports"][0]
    assert not exposure_of(converted, policy)


def test_compliant_service_gets_no_patch() -> None:
    assert conversion_patch(service(), NO_POLICY) == []


@pytest.mark.parametrize("source", [service("NodePort"), EVERY_LB_FIELD], ids=["NodePort", "LB"])
def test_applying_the_conversion_twice_gives_the_same_object(source: Manifest) -> None:
    once = jsonpatch.apply_patch(source, conversion_patch(source, NO_POLICY))
    assert conversion_patch(once, NO_POLICY) == []
    assert internalize(once, NO_POLICY) == once


def test_conversion_does_not_change_its_input() -> None:
    before = copy.deepcopy(EVERY_LB_FIELD)
    internalize(EVERY_LB_FIELD, NO_POLICY)
    assert before == EVERY_LB_FIELD


# --- properties -----------------------------------------------------------------------------

# Paths (as tuples) that the conversion may change; everything else must stay.
_CONVERTIBLE_SPEC = {
    "type",
    "externalTrafficPolicy",
    "healthCheckNodePort",
    "allocateLoadBalancerNodePorts",
    "loadBalancerClass",
    "loadBalancerSourceRanges",
    "loadBalancerIP",
    "externalIPs",
}
_CONVERTIBLE_ANNOTATIONS = {SOURCE_RANGES_ANNOTATION, CONVERTED_FROM_ANNOTATION}


def _without_convertible_fields(obj: Manifest) -> Manifest:
    stripped = copy.deepcopy(obj)
    spec = stripped.get("spec")
    if isinstance(spec, dict):
        for name in _CONVERTIBLE_SPEC:
            spec.pop(name, None)
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.pop("nodePort", None)
    metadata = stripped.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("annotations"), dict):
        for name in _CONVERTIBLE_ANNOTATIONS:
            metadata["annotations"].pop(name, None)
        if not metadata["annotations"]:
            metadata.pop("annotations")
    return stripped


ips = st.sampled_from(["10.0.0.5", "10.200.1.1", "203.0.113.5", "198.51.100.7", "fd00::1", "x"])
annotation_keys = st.sampled_from(
    [
        SOURCE_RANGES_ANNOTATION,
        "team",
        *(key for keys in ANNOTATIONS_READ.values() for key in keys),
    ]
)
annotation_values = st.sampled_from(["true", "Internal", "internal", "false", "1.2.3.0/24"])
ports = st.lists(
    st.fixed_dictionaries(
        {"port": st.integers(1, 65535), "protocol": st.sampled_from(["TCP", "UDP"])},
        optional={"nodePort": st.integers(30000, 32767), "name": st.text(max_size=5)},
    ),
    max_size=3,
)
specs = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"]),
        "ports": ports,
        "externalIPs": st.lists(ips, max_size=3),
        "externalTrafficPolicy": st.sampled_from(["Cluster", "Local"]),
        "healthCheckNodePort": st.integers(30000, 32767),
        "allocateLoadBalancerNodePorts": st.booleans(),
        "loadBalancerClass": st.just("example.com/lb"),
        "loadBalancerSourceRanges": st.lists(st.just("1.2.3.0/24"), max_size=2),
        "loadBalancerIP": st.just("198.51.100.1"),
        "selector": st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
        "clusterIP": st.sampled_from(["None", "10.96.0.10"]),
    },
)
services = st.builds(
    lambda spec, annotations, name: {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "shop", "annotations": annotations},
        "spec": spec,
    },
    specs,
    st.dictionaries(annotation_keys, annotation_values, max_size=3),
    st.sampled_from(["web", "legacy-a"]),
)
policies = st.builds(
    lambda cidrs, internal, node_ports, existing: policy_from_mapping(
        {
            "allowedExternalIPCIDRs": cidrs,
            "allowInternalLoadBalancers": internal,
            "internalLoadBalancerProviders": ["aws", "gcp", "azure", "oci", "openstack"],
            "allowInternalLoadBalancerNodePorts": node_ports,
            "allowExistingViolations": existing,
        }
    ),
    st.lists(st.sampled_from(["10.0.0.0/8", "203.0.113.0/24", "fd00::/8"]), max_size=2),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)


@settings(max_examples=300)
@given(services, policies)
def test_a_converted_service_is_never_exposed_and_differs_only_in_design_fields(
    svc: Manifest, policy: PolicySettings
) -> None:
    before = copy.deepcopy(svc)
    converted = internalize(svc, policy)
    assert svc == before  # the conversion shares what it does not edit, and edits no input
    assert exposure_of(converted, policy) == ()
    assert _without_convertible_fields(converted) == _without_convertible_fields(svc)
    assert conversion_patch(converted, policy) == []
    assert jsonpatch.apply_patch(svc, conversion_patch(svc, policy)) == converted


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
shaped_like_services = st.fixed_dictionaries(
    {},
    optional={
        "apiVersion": json_values,
        "kind": json_values,
        "metadata": json_values
        | st.fixed_dictionaries({}, optional={"annotations": json_values, "name": json_values}),
        "spec": json_values
        | st.fixed_dictionaries(
            {},
            optional={
                "type": json_values | st.sampled_from(["NodePort", "LoadBalancer"]),
                "ports": json_values | st.lists(json_values, max_size=2),
                "externalIPs": json_values | st.lists(json_values, max_size=2),
                "allocateLoadBalancerNodePorts": json_values,
            },
        ),
    },
)


@settings(max_examples=300)
@given(shaped_like_services, st.none() | shaped_like_services, st.sampled_from(MODES), policies)
def test_any_service_shaped_input_gets_a_decision(
    svc: dict[str, Any], old: dict[str, Any] | None, mode: Any, policy: PolicySettings
) -> None:
    change = ServiceChange("UPDATE" if old else "CREATE", "shop", "web", svc, old)
    decision = decide(change, mode, policy, today=TODAY)
    assert decision.verdict in ("allowed", "denied", "mutated", "warned")
    if decision.patch:
        jsonpatch.apply_patch(svc, decision.patch)
