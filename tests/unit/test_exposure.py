"""Exposure piece by piece: an UPDATE is judged on every piece it adds (docs/design.md, "What
counts as exposed")."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

import pytest

from clusterip_guard.core.decision import ServiceChange, decide
from clusterip_guard.core.exposure import added_exposure, exposure_of, reported
from clusterip_guard.core.policy import PolicySettings
from clusterip_guard.core.types import Manifest, Mode, Verdict
from clusterip_guard.policyfile import policy_from_mapping
from tests.support.builders import service

INTERNAL_AWS = {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"}
ALLOW_INTERNAL = policy_from_mapping(
    {"allowInternalLoadBalancers": True, "internalLoadBalancerProviders": ["aws"]}
)
SOURCE_RANGES = "service.beta.kubernetes.io/load-balancer-source-ranges"


def port(number: int, node_port: int | None = None, protocol: str = "TCP") -> dict[str, Any]:
    entry: dict[str, Any] = {"port": number, "targetPort": number, "protocol": protocol}
    if node_port is not None:
        entry["nodePort"] = node_port
    return entry


def node_port_service(*ports: dict[str, Any], **spec: Any) -> Manifest:
    return service("NodePort", ports=list(ports), **spec)


def load_balancer(*ports: dict[str, Any], annotations: dict[str, str] | None = None,
                  **spec: Any) -> Manifest:  # fmt: skip
    return service("LoadBalancer", ports=list(ports), annotations=annotations, **spec)


@dataclass(frozen=True)
class Update:
    name: str
    old: Manifest
    new: Manifest
    verdict: Verdict
    fields: tuple[str, ...] = ()
    policy: PolicySettings = field(default_factory=PolicySettings)
    mode: Mode = "enforce"


UPDATES = [
    # Kept exposure is an existing violation: allowed with a warning.
    Update("a label change on a NodePort Service",
           node_port_service(port(80, 30080)), node_port_service(port(80, 30080)), "warned"),
    Update("a replace that leaves the kept node port unset (the API server keeps it)",
           node_port_service(port(80, 30080)), node_port_service(port(80)), "warned"),
    # Each new node port is judged like a CREATE.
    Update("a port added to a NodePort Service opens a new node port",
           node_port_service(port(80, 30080)), node_port_service(port(80, 30080), port(443)),
           "denied", ("spec.ports[1]",)),
    Update("a kept port moved to another node port",
           node_port_service(port(80, 30080)), node_port_service(port(80, 30081)),
           "denied", ("spec.ports[0]",)),
    Update("the same port number over another protocol is another node port",
           node_port_service(port(53, 30053)),
           node_port_service(port(53, 30053), port(53, protocol="UDP")),
           "denied", ("spec.ports[1]",)),
    Update("a port added to an exposed load balancer opens a node port",
           load_balancer(port(80, 30080)), load_balancer(port(80, 30080), port(443)),
           "denied", ("spec.ports[1]",)),
    Update("allocateLoadBalancerNodePorts turned on",
           load_balancer(port(80), allocateLoadBalancerNodePorts=False),
           load_balancer(port(80), allocateLoadBalancerNodePorts=True),
           "denied", ("spec.ports[0]",)),
    Update("an explicit node port on a load balancer that allocates none",
           load_balancer(port(80), allocateLoadBalancerNodePorts=False),
           load_balancer(port(80, 30080), allocateLoadBalancerNodePorts=False),
           "denied", ("spec.ports[0].nodePort",)),
    Update("externalTrafficPolicy Local brings a health-check node port",
           load_balancer(port(80, 30080)),
           load_balancer(port(80, 30080), externalTrafficPolicy="Local"),
           "denied", ("spec.externalTrafficPolicy",)),
    Update("a change between exposed types: NodePort to LoadBalancer",
           node_port_service(port(80, 30080)), load_balancer(port(80, 30080)),
           "denied", ("spec.type",)),
    Update("a change between exposed types: LoadBalancer to NodePort",
           load_balancer(port(80, 30080)), node_port_service(port(80, 30080)),
           "denied", ("spec.type",)),
    # Source ranges: widening admits more of the world.
    Update("a source range added",
           load_balancer(port(80, 30080), loadBalancerSourceRanges=["10.0.0.0/8"]),
           load_balancer(port(80, 30080), loadBalancerSourceRanges=["10.0.0.0/8", "0.0.0.0/0"]),
           "denied", ("spec.loadBalancerSourceRanges",)),
    Update("every source range removed admits everyone",
           load_balancer(port(80, 30080), loadBalancerSourceRanges=["10.0.0.0/8"]),
           load_balancer(port(80, 30080)),
           "denied", ("spec.loadBalancerSourceRanges",) * 2),  # 0.0.0.0/0 and ::/0
    Update("the source-range annotation widened",
           load_balancer(port(80, 30080), annotations={SOURCE_RANGES: "10.1.0.0/16"}),
           load_balancer(port(80, 30080), annotations={SOURCE_RANGES: "10.0.0.0/8"}),
           "denied", ("spec.loadBalancerSourceRanges",)),
    Update("a source range narrowed is kept exposure",
           load_balancer(port(80, 30080), loadBalancerSourceRanges=["10.0.0.0/8"]),
           load_balancer(port(80, 30080), loadBalancerSourceRanges=["10.1.0.0/16"]),
           "warned"),
    # External IPs, by address.
    Update("a new external IP",
           service(externalIPs=["203.0.113.7"]),
           service(externalIPs=["203.0.113.7", "203.0.113.8"]),
           "denied", ("spec.externalIPs",)),
    Update("a replaced external IP",
           service(externalIPs=["203.0.113.7"]), service(externalIPs=["203.0.113.9"]),
           "denied", ("spec.externalIPs",)),
    Update("an IPv6 external IP re-spelt in capitals",
           service(externalIPs=["2001:db8::7"]), service(externalIPs=["2001:DB8:0::7"]),
           "warned"),
    Update("an IPv4 external IP re-spelt with leading zeros",
           service(externalIPs=["203.0.113.7"]), service(externalIPs=["203.000.113.007"]),
           "warned"),
    # An internal load balancer the policy accepts: only node ports are exposure.
    Update("an allowed internal load balancer gains an explicit node port",
           load_balancer(port(80), annotations=INTERNAL_AWS, allocateLoadBalancerNodePorts=False),
           load_balancer(port(80, 30080), annotations=INTERNAL_AWS,
                         allocateLoadBalancerNodePorts=False),
           "denied", ("spec.ports[0].nodePort",), ALLOW_INTERNAL),
    Update("an allowed internal load balancer turns to Local",
           load_balancer(port(80), annotations=INTERNAL_AWS, allocateLoadBalancerNodePorts=False),
           load_balancer(port(80), annotations=INTERNAL_AWS, allocateLoadBalancerNodePorts=False,
                         externalTrafficPolicy="Local"),
           "denied", ("spec.externalTrafficPolicy",), ALLOW_INTERNAL),
    Update("an allowed internal load balancer turned external",
           load_balancer(port(80), annotations=INTERNAL_AWS, allocateLoadBalancerNodePorts=False),
           load_balancer(port(80), allocateLoadBalancerNodePorts=False),
           "denied", ("spec.type",), ALLOW_INTERNAL),
    # In mutate the whole Service is converted, as on a CREATE.
    Update("mutate converts the whole Service when a port is added",
           node_port_service(port(80, 30080)), node_port_service(port(80, 30080), port(443)),
           "mutated", ("spec.ports[1]",), mode="mutate"),
]  # fmt: skip


@pytest.mark.parametrize("case", UPDATES, ids=lambda case: case.name)
def test_an_update_is_judged_on_the_pieces_it_adds(case: Update) -> None:
    change = ServiceChange("UPDATE", "shop", "web", case.new, case.old)
    decision = decide(change, case.mode, case.policy, today=datetime.date(2026, 11, 29))
    assert decision.verdict == case.verdict, decision
    if case.fields:
        assert tuple(v.field for v in decision.violations) == case.fields
    if case.verdict == "mutated":
        assert {"op": "replace", "path": "/spec/type", "value": "ClusterIP"} in decision.patch


@pytest.mark.parametrize(
    "created",
    [
        pytest.param(node_port_service(port(80), port(443)), id="a NodePort Service"),
        pytest.param(load_balancer(port(80), port(443), externalTrafficPolicy="Local",
                                   loadBalancerSourceRanges=["10.0.0.0/8"]),
                     id="a load balancer with everything"),
    ],
)  # fmt: skip
def test_a_create_reports_the_type_alone_for_what_comes_with_it(created: Manifest) -> None:
    pieces = exposure_of(created, PolicySettings())
    assert len(pieces) > 2  # the type, each port, and more
    assert [v.field for v in reported(pieces)] == ["spec.type"]


def test_an_update_adding_nothing_adds_no_piece() -> None:
    lb = load_balancer(port(80, 30080), port(443, 30443), externalTrafficPolicy="Local")
    assert added_exposure(lb, lb, PolicySettings()) == ()


def test_a_port_renamed_into_a_new_node_port_says_to_keep_its_name() -> None:
    old = node_port_service({**port(80, 30080), "name": "http"})
    # The API server keeps node ports by port name: the renamed port got one it chose.
    new = node_port_service({**port(80, 30441), "name": "web"})
    (piece,) = added_exposure(new, old, PolicySettings())
    assert piece.summary == (
        "port TCP/80 was renamed from http to web, so the API server gave it node port 30441 "
        "for its node port 30080"
    )
    assert piece.fix == "keep the port's name http, or set nodePort: 30080"
    # A node port moved by the writer, under the same name, is a plain new node port.
    moved = node_port_service({**port(80, 30441), "name": "http"})
    (plain,) = added_exposure(moved, old, PolicySettings())
    assert plain.summary == "port TCP/80 opens node port 30441 on every node"


AWS_SCHEME_INTERNAL = {"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"}
ALLOW_NLB_CLASS = policy_from_mapping(
    {
        "allowInternalLoadBalancers": True,
        "internalLoadBalancerProviders": ["aws"],
        "internalLoadBalancerClasses": {"service.k8s.aws/nlb": "aws"},
    }
)
CLOSED_LB = {"allocateLoadBalancerNodePorts": False}


@pytest.mark.parametrize(
    ("annotations", "spec", "policy", "internal"),
    [
        # Without a class, the cloud providers' readings (both AWS controllers must agree).
        ({**INTERNAL_AWS, **AWS_SCHEME_INTERNAL}, {}, ALLOW_INTERNAL, True),
        # Any class the policy does not name is exposed, whatever its annotations say.
        ({**INTERNAL_AWS, **AWS_SCHEME_INTERNAL},
         {"loadBalancerClass": "metallb.io/metallb"}, ALLOW_INTERNAL, False),
        ({**INTERNAL_AWS, **AWS_SCHEME_INTERNAL},
         {"loadBalancerClass": "metallb.io/metallb", "loadBalancerIP": "203.0.113.50"},
         ALLOW_NLB_CLASS, False),
        ({**INTERNAL_AWS, **AWS_SCHEME_INTERNAL},
         {"loadBalancerClass": "service.k8s.aws/nlb"}, ALLOW_INTERNAL, False),
        # The class the policy names, read as its controller (the AWS Load Balancer
        # Controller) reads it: the scheme decides alone, the legacy key only without it.
        (AWS_SCHEME_INTERNAL, {"loadBalancerClass": "service.k8s.aws/nlb"}, ALLOW_NLB_CLASS, True),
        ({"service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing", **INTERNAL_AWS},
         {"loadBalancerClass": "service.k8s.aws/nlb"}, ALLOW_NLB_CLASS, False),
        (INTERNAL_AWS, {"loadBalancerClass": "service.k8s.aws/nlb"}, ALLOW_NLB_CLASS, True),
        ({}, {"loadBalancerClass": "service.k8s.aws/nlb"}, ALLOW_NLB_CLASS, False),
        # Exactly the class named (Go ==): no prefix, no case folding.
        (AWS_SCHEME_INTERNAL, {"loadBalancerClass": "service.k8s.aws/NLB"}, ALLOW_NLB_CLASS, False),
    ],
    ids=[
        "no class: the cloud controllers",
        "a class the policy does not name",
        "a class the policy does not name, with a loadBalancerIP",
        "the LBC's class, not named by the policy",
        "the named class, scheme internal",
        "the named class, scheme internet-facing wins over the legacy key",
        "the named class, the legacy key alone",
        "the named class, no annotation (left to an existing balancer)",
        "another spelling of the named class",
    ],
)  # fmt: skip
def test_a_load_balancer_class_is_internal_only_as_its_named_controller_reads_it(
    annotations: dict[str, str], spec: dict[str, Any], policy: PolicySettings, internal: bool
) -> None:
    created = load_balancer(port(80), annotations=annotations, **CLOSED_LB, **spec)
    pieces = exposure_of(created, policy)
    assert (pieces == ()) is internal, pieces
    if not internal and "loadBalancerClass" in spec:
        assert pieces[0].field == "spec.loadBalancerClass"
        assert spec["loadBalancerClass"] in pieces[0].summary
