"""Decisions for every row of docs/design.md, "Modes, per namespace", table-driven."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass, field
from typing import Any

import pytest

from clusterip_guard.core.decision import (
    Change,
    GatewayApiChange,
    IngressChange,
    ServiceChange,
    decide,
)
from clusterip_guard.core.pointers import field_path
from clusterip_guard.core.policy import Exemption, PolicySettings
from clusterip_guard.core.types import Manifest, Mode, Verdict
from clusterip_guard.policyfile import policy_from_mapping
from tests.support.builders import gateway, ingress, mesh_parent, parent, route, service

TODAY = datetime.date(2026, 11, 24)
INTERNAL_AWS = {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"}
ALLOW_INTERNAL = policy_from_mapping(
    {"allowInternalLoadBalancers": True, "internalLoadBalancerProviders": ["aws"]}
)
ALLOW_INTERNAL_WITH_NODE_PORTS = policy_from_mapping(
    {
        "allowInternalLoadBalancers": True,
        "internalLoadBalancerProviders": ["aws"],
        "allowInternalLoadBalancerNodePorts": True,
    }
)
ALLOW_EVERY_PROVIDER = policy_from_mapping(
    {
        "allowInternalLoadBalancers": True,
        "internalLoadBalancerProviders": ["aws", "gcp", "azure", "oci", "openstack"],
    }
)
# One internal annotation per provider, as that provider reads it.
INTERNAL_ANNOTATIONS = {
    "aws": {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"},
    "gcp": {"networking.gke.io/load-balancer-type": "Internal"},
    "azure": {"service.beta.kubernetes.io/azure-load-balancer-internal": "true"},
    "oci": {"service.beta.kubernetes.io/oci-load-balancer-internal": "true"},
    "openstack": {"service.beta.kubernetes.io/openstack-internal-load-balancer": "true"},
}
ALLOW_TEN = policy_from_mapping({"allowedExternalIPCIDRs": ["10.0.0.0/8"]})
STRICT_UPDATES = policy_from_mapping({"allowExistingViolations": False})
EXEMPT_LEGACY = PolicySettings(
    exemptions=(Exemption(namespace="shop", name="legacy-*", reason="vendor appliance"),)
)
EXPIRED_EXEMPTION = PolicySettings(
    exemptions=(
        Exemption(
            namespace="shop",
            name="legacy-*",
            reason="migration",
            expires=datetime.date(2026, 11, 23),
        ),
    )
)


# Ingresses: the classes whose controllers stay inside the cluster, and a legacy one exempted.
INGRESS_POLICY = PolicySettings(
    allowed_ingress_classes=("internal", "private-*"),
    exemptions=(
        Exemption(namespace="shop", name="legacy-*", reason="vendor portal", kind="Ingress"),
    ),
)
CLASS_ANNOTATION = "kubernetes.io/ingress.class"
ANNOTATION_FIELD = f"metadata.annotations[{CLASS_ANNOTATION}]"

# Gateway API: the internal class, the sanctioned Gateways, a legacy route and Gateway exempted.
GATEWAY_POLICY = PolicySettings(
    allowed_gateway_classes=("internal", "private-*"),
    allowed_gateways=(("infra", "internal"), ("infra", "private-*")),
    exemptions=(
        Exemption(namespace="shop", name="legacy-*", reason="vendor portal", kind="HTTPRoute"),
        Exemption(namespace="shop", name="legacy-*", reason="vendor edge", kind="Gateway"),
    ),
)
CLASS_FIELD = "spec.gatewayClassName"
ALLOWED_PARENT = parent("internal", "infra")
PUBLIC_PARENT = parent("public", "infra")


@dataclass(frozen=True)
class Case:
    name: str
    mode: Mode
    service: Manifest  # the object written: a Service, or an Ingress
    verdict: Verdict
    fields: tuple[str, ...] = ()
    operation: str = "CREATE"
    old: Manifest | None = None
    policy: PolicySettings = field(default_factory=PolicySettings)
    namespace: str = "shop"


NODE_PORT = service("NodePort")
LOAD_BALANCER = service("LoadBalancer")
EXTERNAL_IPS = service(externalIPs=["203.0.113.7"])
CLUSTER_IP = service()

CASES = [
    # Compliant Services are allowed in every mode.
    *(Case(f"ClusterIP in {m}", m, CLUSTER_IP, "allowed") for m in ("enforce", "mutate", "audit")),
    *(
        Case(f"headless in {m}", m, service(clusterIP="None"), "allowed")
        for m in ("enforce", "mutate", "audit")
    ),
    *(
        Case(
            f"ExternalName in {m}",
            m,
            service("ExternalName", externalName="db.example.com"),
            "allowed",
        )
        for m in ("enforce", "mutate", "audit")
    ),
    # Exposed Services by mode.
    Case("NodePort in enforce", "enforce", NODE_PORT, "denied", ("spec.type",)),
    Case("NodePort in mutate", "mutate", NODE_PORT, "mutated", ("spec.type",)),
    Case("NodePort in audit", "audit", NODE_PORT, "warned", ("spec.type",)),
    Case("NodePort in off", "off", NODE_PORT, "allowed"),
    Case("LoadBalancer in enforce", "enforce", LOAD_BALANCER, "denied", ("spec.type",)),
    Case("LoadBalancer in mutate", "mutate", LOAD_BALANCER, "mutated", ("spec.type",)),
    Case("LoadBalancer in audit", "audit", LOAD_BALANCER, "warned", ("spec.type",)),
    Case("external IP in enforce", "enforce", EXTERNAL_IPS, "denied", ("spec.externalIPs",)),
    Case("external IP in mutate", "mutate", EXTERNAL_IPS, "mutated", ("spec.externalIPs",)),
    Case("external IP in audit", "audit", EXTERNAL_IPS, "warned", ("spec.externalIPs",)),
    Case(
        "NodePort with external IP names both fields",
        "enforce",
        service("NodePort", externalIPs=["198.51.100.1"]),
        "denied",
        ("spec.type", "spec.externalIPs"),
    ),
    # External IPs inside the allowed CIDRs are not exposure.
    Case(
        "external IP inside allowed CIDR",
        "enforce",
        service(externalIPs=["10.1.2.3"]),
        "allowed",
        policy=ALLOW_TEN,
    ),
    Case(
        "one external IP outside allowed CIDR",
        "enforce",
        service(externalIPs=["10.1.2.3", "192.0.2.1"]),
        "denied",
        ("spec.externalIPs",),
        policy=ALLOW_TEN,
    ),
    Case(
        "an external IP that is not an IP is never allowed",
        "enforce",
        service(externalIPs=["not-an-ip"]),
        "denied",
        ("spec.externalIPs",),
        policy=ALLOW_TEN,
    ),
    # Internal load balancers.
    Case(
        "internal LB when the policy does not allow them",
        "enforce",
        service("LoadBalancer", annotations=INTERNAL_AWS),
        "denied",
        ("spec.type",),
    ),
    Case(
        "allowed internal LB still opens node ports",
        "enforce",
        service("LoadBalancer", annotations=INTERNAL_AWS),
        "denied",
        ("spec.allocateLoadBalancerNodePorts",),
        policy=ALLOW_INTERNAL,
    ),
    Case(
        "allowed internal LB without node ports",
        "enforce",
        service("LoadBalancer", annotations=INTERNAL_AWS, allocateLoadBalancerNodePorts=False),
        "allowed",
        policy=ALLOW_INTERNAL,
    ),
    Case(
        "allowed internal LB whose node ports are accepted",
        "enforce",
        service("LoadBalancer", annotations=INTERNAL_AWS),
        "allowed",
        policy=ALLOW_INTERNAL_WITH_NODE_PORTS,
    ),
    Case(
        "allowed internal LB in mutate loses its node ports",
        "mutate",
        service("LoadBalancer", annotations=INTERNAL_AWS),
        "mutated",
        ("spec.allocateLoadBalancerNodePorts",),
        policy=ALLOW_INTERNAL,
    ),
    Case(
        "allowed internal LB in audit is reported",
        "audit",
        service("LoadBalancer", annotations=INTERNAL_AWS),
        "warned",
        ("spec.allocateLoadBalancerNodePorts",),
        policy=ALLOW_INTERNAL,
    ),
    *(
        Case(
            f"internal LB of {provider}",
            "enforce",
            service("LoadBalancer", annotations=annotations, allocateLoadBalancerNodePorts=False),
            "allowed",
            policy=ALLOW_EVERY_PROVIDER,
        )
        for provider, annotations in INTERNAL_ANNOTATIONS.items()
    ),
    *(
        Case(
            f"internal LB of {provider} on a cluster whose policy names only aws",
            "enforce",
            service("LoadBalancer", annotations=annotations, allocateLoadBalancerNodePorts=False),
            "denied",
            ("spec.type",),
            policy=ALLOW_INTERNAL,
        )
        for provider, annotations in INTERNAL_ANNOTATIONS.items()
        if provider != "aws"
    ),
    Case(
        "internal LB annotation with another value is not internal",
        "enforce",
        service(
            "LoadBalancer",
            annotations={"service.beta.kubernetes.io/aws-load-balancer-internal": "false"},
            allocateLoadBalancerNodePorts=False,
        ),
        "denied",
        ("spec.type",),
        policy=ALLOW_INTERNAL,
    ),
    # UPDATE is judged on the exposure it adds.
    Case(
        "UPDATE ClusterIP to NodePort in enforce",
        "enforce",
        NODE_PORT,
        "denied",
        ("spec.type",),
        operation="UPDATE",
        old=CLUSTER_IP,
    ),
    Case(
        "UPDATE ClusterIP to NodePort in mutate",
        "mutate",
        NODE_PORT,
        "mutated",
        ("spec.type",),
        operation="UPDATE",
        old=CLUSTER_IP,
    ),
    Case(
        "UPDATE of an already exposed Service that adds nothing",
        "enforce",
        service("NodePort", selector={"app": "web-v2"}),
        "warned",
        ("spec.type",),
        operation="UPDATE",
        old=NODE_PORT,
    ),
    Case(
        "UPDATE of an already exposed Service in mutate keeps it",
        "mutate",
        NODE_PORT,
        "warned",
        ("spec.type",),
        operation="UPDATE",
        old=NODE_PORT,
    ),
    Case(
        "UPDATE of an exposed Service when existing violations are not allowed",
        "enforce",
        NODE_PORT,
        "denied",
        ("spec.type",),
        operation="UPDATE",
        old=NODE_PORT,
        policy=STRICT_UPDATES,
    ),
    Case(
        "UPDATE that adds an external IP to a NodePort is judged on the IP",
        "enforce",
        service("NodePort", externalIPs=["192.0.2.9"]),
        "denied",
        ("spec.externalIPs",),
        operation="UPDATE",
        old=NODE_PORT,
    ),
    Case(
        "UPDATE NodePort to LoadBalancer adds a load balancer",
        "enforce",
        LOAD_BALANCER,
        "denied",
        ("spec.type",),
        operation="UPDATE",
        old=NODE_PORT,
    ),
    Case(
        "UPDATE that removes exposure",
        "enforce",
        CLUSTER_IP,
        "allowed",
        operation="UPDATE",
        old=NODE_PORT,
    ),
    # Exemptions belong to the cluster admin.
    Case(
        "exempted Service",
        "enforce",
        service("NodePort", name="legacy-billing"),
        "warned",
        ("spec.type",),
        policy=EXEMPT_LEGACY,
    ),
    Case(
        "exemption glob does not match",
        "enforce",
        service("NodePort", name="billing"),
        "denied",
        ("spec.type",),
        policy=EXEMPT_LEGACY,
    ),
    Case(
        "exemption in another namespace does not apply",
        "enforce",
        service("NodePort", name="legacy-billing", namespace="other"),
        "denied",
        ("spec.type",),
        policy=EXEMPT_LEGACY,
        namespace="other",
    ),
    Case(
        "expired exemption no longer applies",
        "enforce",
        service("NodePort", name="legacy-billing"),
        "denied",
        ("spec.type",),
        policy=EXPIRED_EXEMPTION,
    ),
    # System namespaces are never selected.
    *(
        Case(
            f"NodePort in {ns}",
            "enforce",
            service("NodePort", namespace=ns),
            "allowed",
            namespace=ns,
        )
        for ns in ("kube-system", "kube-public", "kube-node-lease")
    ),
    # Ingresses: exposure unless every class they name is allowed.
    *(
        Case(f"Ingress of an allowed class in {m}", m, ingress("internal"), "allowed",
             policy=INGRESS_POLICY)
        for m in ("enforce", "mutate", "audit")
    ),
    Case("Ingress of a class a glob allows", "enforce", ingress("private-web"), "allowed",
         policy=INGRESS_POLICY),
    Case("Ingress of another class in enforce", "enforce", ingress("public"), "denied",
         ("spec.ingressClassName",), policy=INGRESS_POLICY),
    Case("Ingress of another class in mutate (cannot be converted)", "mutate", ingress("public"),
         "denied", ("spec.ingressClassName",), policy=INGRESS_POLICY),
    Case("Ingress of another class in audit", "audit", ingress("public"), "warned",
         ("spec.ingressClassName",), policy=INGRESS_POLICY),
    Case("Ingress of another class in off", "off", ingress("public"), "allowed",
         policy=INGRESS_POLICY),
    Case("Ingress without a class", "enforce", ingress(name="classless"), "denied",
         ("spec.ingressClassName",), policy=INGRESS_POLICY),
    Case("no ingress class is allowed by default", "enforce", ingress("internal"), "denied",
         ("spec.ingressClassName",)),
    Case("Ingress classed by the annotation", "enforce",
         ingress(annotations={CLASS_ANNOTATION: "public"}), "denied", (ANNOTATION_FIELD,),
         policy=INGRESS_POLICY),
    Case("Ingress of an allowed class by the annotation", "enforce",
         ingress(annotations={CLASS_ANNOTATION: "internal"}), "allowed", policy=INGRESS_POLICY),
    # Allowed with a warning in every mode (both engines, tests/e2e/test_native_table_e2e.py).
    *(
        Case(f"exempted Ingress in {m}", m, ingress("public", name="legacy-portal"), "warned",
             ("spec.ingressClassName",), policy=INGRESS_POLICY)
        for m in ("enforce", "mutate", "audit")
    ),
    *(
        Case(f"UPDATE keeping an Ingress's class in {m}", m,
             ingress("public", annotations={"team": "shop"}), "warned",
             ("spec.ingressClassName",), operation="UPDATE", old=ingress("public"),
             policy=INGRESS_POLICY)
        for m in ("enforce", "mutate", "audit")
    ),
    Case("UPDATE keeping an Ingress without a class and the annotation of another",
         "enforce", ingress(annotations={CLASS_ANNOTATION: "public", "team": "shop"}),
         "warned", (ANNOTATION_FIELD,), operation="UPDATE",
         old=ingress(annotations={CLASS_ANNOTATION: "public"}), policy=INGRESS_POLICY),
    Case("UPDATE moving an Ingress to another class", "enforce", ingress("public"), "denied",
         ("spec.ingressClassName",), operation="UPDATE", old=ingress("internal"),
         policy=INGRESS_POLICY),
    Case("UPDATE adding an annotation that names another class", "enforce",
         ingress("internal", annotations={CLASS_ANNOTATION: "public"}), "denied",
         (ANNOTATION_FIELD,), operation="UPDATE", old=ingress("internal"),
         policy=INGRESS_POLICY),
    Case("Ingress in kube-system", "enforce", ingress("public", namespace="kube-system"),
         "allowed", policy=INGRESS_POLICY, namespace="kube-system"),
    # Gateways: exposure unless their class is allowed.
    *(
        Case(f"Gateway of an allowed class in {m}", m, gateway("internal"), "allowed",
             policy=GATEWAY_POLICY)
        for m in ("enforce", "mutate", "audit")
    ),
    Case("Gateway of a class a glob allows", "enforce", gateway("private-lan"), "allowed",
         policy=GATEWAY_POLICY),
    Case("Gateway of another class in enforce", "enforce", gateway("public"), "denied",
         (CLASS_FIELD,), policy=GATEWAY_POLICY),
    Case("Gateway of another class in mutate (cannot be converted)", "mutate",
         gateway("public"), "denied", (CLASS_FIELD,), policy=GATEWAY_POLICY),
    Case("Gateway of another class in audit", "audit", gateway("public"), "warned",
         (CLASS_FIELD,), policy=GATEWAY_POLICY),
    Case("Gateway of another class in off", "off", gateway("public"), "allowed",
         policy=GATEWAY_POLICY),
    Case("Gateway without a class", "enforce", gateway(), "denied", (CLASS_FIELD,),
         policy=GATEWAY_POLICY),
    Case("Gateway of an empty class", "enforce", gateway(""), "denied", (CLASS_FIELD,),
         policy=GATEWAY_POLICY),
    Case("no gateway class is allowed by default", "enforce", gateway("internal"), "denied",
         (CLASS_FIELD,)),
    Case("Gateway of an older served version", "enforce",
         gateway("public", api_version="gateway.networking.k8s.io/v1beta1"), "denied",
         (CLASS_FIELD,), policy=GATEWAY_POLICY),
    *(
        Case(f"exempted Gateway in {m}", m, gateway("public", name="legacy-edge"), "warned",
             (CLASS_FIELD,), policy=GATEWAY_POLICY)
        for m in ("enforce", "mutate", "audit")
    ),
    Case("a route's exemption does not exempt a Gateway", "enforce",
         gateway("public", name="legacy-edge"), "denied", (CLASS_FIELD,),
         policy=PolicySettings(exemptions=GATEWAY_POLICY.exemptions[:1])),
    *(
        Case(f"UPDATE keeping a Gateway's class in {m}", m, gateway("public"), "warned",
             (CLASS_FIELD,), operation="UPDATE", old=gateway("public"), policy=GATEWAY_POLICY)
        for m in ("enforce", "mutate", "audit")
    ),
    Case("UPDATE moving a Gateway to another class", "enforce", gateway("public"), "denied",
         (CLASS_FIELD,), operation="UPDATE", old=gateway("internal"), policy=GATEWAY_POLICY),
    Case("Gateway in kube-system", "enforce", gateway("public", namespace="kube-system"),
         "allowed", policy=GATEWAY_POLICY, namespace="kube-system"),
    # Routes: exposure for each parent that is neither an allowed Gateway nor a Service.
    *(
        Case(f"route attached to an allowed Gateway in {m}", m, route(ALLOWED_PARENT),
             "allowed", policy=GATEWAY_POLICY)
        for m in ("enforce", "mutate", "audit")
    ),
    *(
        Case(f"{kind} attached to another Gateway in enforce", "enforce",
             route(PUBLIC_PARENT, kind=kind), "denied", ("spec.parentRefs[0]",),
             policy=GATEWAY_POLICY)
        for kind in ("HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute")
    ),
    Case("route attached to another Gateway in mutate (cannot be converted)", "mutate",
         route(PUBLIC_PARENT), "denied", ("spec.parentRefs[0]",), policy=GATEWAY_POLICY),
    Case("route attached to another Gateway in audit", "audit", route(PUBLIC_PARENT),
         "warned", ("spec.parentRefs[0]",), policy=GATEWAY_POLICY),
    Case("route attached to another Gateway in off", "off", route(PUBLIC_PARENT), "allowed",
         policy=GATEWAY_POLICY),
    Case("route attached to a Gateway a glob allows, by another listener", "enforce",
         route(parent("private-lan", "infra", section="https")), "allowed",
         policy=GATEWAY_POLICY),
    Case("route of an older served version", "enforce",
         route(PUBLIC_PARENT, kind="TCPRoute", api_version="gateway.networking.k8s.io/v1alpha2"),
         "denied",
         ("spec.parentRefs[0]",), policy=GATEWAY_POLICY),
    Case("route naming an allowed Gateway's name in its own namespace", "enforce",
         route(parent("internal")), "denied", ("spec.parentRefs[0]",), policy=GATEWAY_POLICY),
    Case("route for mesh routing (a Service parent)", "enforce", route(mesh_parent()),
         "allowed"),
    Case("route with no parentRefs attaches to nothing", "enforce",
         route(no_parent_refs=True), "allowed"),
    Case("route with one allowed and one other parent names the other", "enforce",
         route(ALLOWED_PARENT, mesh_parent(), PUBLIC_PARENT), "denied",
         ("spec.parentRefs[2]",), policy=GATEWAY_POLICY),
    Case("route attached to a ListenerSet", "enforce",
         route(parent("internal", "infra", kind="ListenerSet",
                      group="gateway.networking.x-k8s.io")),
         "denied", ("spec.parentRefs[0]",), policy=GATEWAY_POLICY),
    Case("no Gateway is allowed by default", "enforce", route(ALLOWED_PARENT), "denied",
         ("spec.parentRefs[0]",)),
    *(
        Case(f"exempted route in {m}", m, route(PUBLIC_PARENT, name="legacy-portal"), "warned",
             ("spec.parentRefs[0]",), policy=GATEWAY_POLICY)
        for m in ("enforce", "mutate", "audit")
    ),
    Case("an HTTPRoute's exemption does not exempt a GRPCRoute", "enforce",
         route(PUBLIC_PARENT, kind="GRPCRoute", name="legacy-portal"), "denied",
         ("spec.parentRefs[0]",), policy=GATEWAY_POLICY),
    *(
        Case(f"UPDATE keeping a route's parent in {m}", m, route(PUBLIC_PARENT), "warned",
             ("spec.parentRefs[0]",), operation="UPDATE", old=route(PUBLIC_PARENT),
             policy=GATEWAY_POLICY)
        for m in ("enforce", "mutate", "audit")
    ),
    Case("UPDATE moving a kept parent to another listener adds nothing", "enforce",
         route(parent("public", "infra", section="https")), "warned", ("spec.parentRefs[0]",),
         operation="UPDATE", old=route(PUBLIC_PARENT), policy=GATEWAY_POLICY),
    Case("UPDATE adding a parent names only it", "enforce",
         route(PUBLIC_PARENT, parent("other", "infra")), "denied", ("spec.parentRefs[1]",),
         operation="UPDATE", old=route(PUBLIC_PARENT), policy=GATEWAY_POLICY),
    Case("UPDATE keeping a parent without allowExistingViolations", "enforce",
         route(PUBLIC_PARENT), "denied", ("spec.parentRefs[0]",), operation="UPDATE",
         old=route(PUBLIC_PARENT),
         policy=PolicySettings(allow_existing_violations=False)),
    Case("route in kube-system", "enforce", route(PUBLIC_PARENT, namespace="kube-system"),
         "allowed", policy=GATEWAY_POLICY, namespace="kube-system"),
]  # fmt: skip


def _decide(case: Case) -> Any:
    name = case.service["metadata"]["name"]
    kind = case.service["kind"]
    change: Change = (
        IngressChange(case.operation, case.namespace, name, case.service, case.old)
        if kind == "Ingress"
        else ServiceChange(case.operation, case.namespace, name, case.service, case.old)
        if kind == "Service"
        else GatewayApiChange(case.operation, case.namespace, name, kind, case.service, case.old)
    )
    return decide(change, case.mode, case.policy, today=TODAY)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_decision_matches_the_design(case: Case) -> None:
    decision = _decide(case)
    assert decision.verdict == case.verdict
    assert tuple(v.field for v in decision.violations) == case.fields


@pytest.mark.parametrize("case", [c for c in CASES if c.verdict == "denied"], ids=lambda c: c.name)
def test_denial_names_the_field_and_the_fix(case: Case) -> None:
    decision = _decide(case)
    assert not decision.allowed
    for violation in decision.violations:
        assert violation.field in decision.denial
        assert violation.fix in decision.denial
    assert "\n" not in decision.denial
    assert decision.audit_annotations


@pytest.mark.parametrize("case", [c for c in CASES if c.verdict == "mutated"], ids=lambda c: c.name)
def test_mutation_carries_a_patch_and_a_warning(case: Case) -> None:
    decision = _decide(case)
    assert decision.allowed
    assert decision.patch
    assert len(decision.warnings) == 1
    assert decision.warnings[0].startswith("clusterip-guard ")


@pytest.mark.parametrize("case", [c for c in CASES if c.verdict == "warned"], ids=lambda c: c.name)
def test_warned_services_are_allowed_unchanged_with_a_warning_and_audit_entry(case: Case) -> None:
    decision = _decide(case)
    assert decision.allowed
    assert not decision.patch
    assert decision.warnings
    assert decision.audit_annotations


def test_exemption_warning_names_the_exemption() -> None:
    case = next(c for c in CASES if c.name == "exempted Service")
    warning = _decide(case).warnings[0]
    assert "legacy-*" in warning
    assert "vendor appliance" in warning


def test_audit_warning_is_one_line_per_violation() -> None:
    decision = _decide(next(c for c in CASES if c.name == "NodePort in audit"))
    assert decision.warnings == (
        "audit: Service shop/web: spec.type: type NodePort opens a port on every node",
    )
    assert "spec.type" in decision.audit_annotations["exposure"]


def test_the_webhooks_own_namespace_can_be_protected() -> None:
    change = ServiceChange("CREATE", "guard", "web", service("NodePort", namespace="guard"))
    decision = decide(change, "enforce", PolicySettings(), today=TODAY, never_judged={"guard"})
    assert decision.verdict == "allowed"


@pytest.mark.parametrize(
    ("pointer", "field"),
    [
        ("/spec/type", "spec.type"),
        ("/spec/ports/0/nodePort", "spec.ports[0].nodePort"),
        (
            "/metadata/annotations/service.beta.kubernetes.io~1load-balancer-source-ranges",
            "metadata.annotations[service.beta.kubernetes.io/load-balancer-source-ranges]",
        ),
    ],
)
def test_patch_paths_are_written_as_kubectl_fields(pointer: str, field: str) -> None:
    assert field_path(pointer) == field


def test_a_label_that_is_not_a_mode_is_named_as_the_reason_for_the_denial() -> None:
    change = ServiceChange("CREATE", "shop", "web", service("NodePort"))
    typo = decide(change, "enforce", PolicySettings(), today=TODAY, label_not_a_mode=True)
    enforced = decide(change, "enforce", PolicySettings(), today=TODAY)
    assert typo.verdict == enforced.verdict == "denied"
    assert typo.violations == enforced.violations
    assert "label clusterip-guard.io/mode of namespace shop is not a mode" in typo.denial
    assert "judged as enforce" in typo.denial
    assert "judged as enforce" not in enforced.denial


def test_a_clusterip_service_that_only_loses_external_ips_is_not_converted() -> None:
    exposed = service("ClusterIP", externalIPs=["203.0.113.7", "10.1.2.3"])
    policy = PolicySettings(allowed_external_ip_cidrs=(ipaddress.ip_network("10.0.0.0/8"),))
    change = ServiceChange("CREATE", "shop", "web", exposed)
    decision = decide(change, "mutate", policy, today=TODAY)
    assert decision.verdict == "mutated"
    (warning,) = decision.warnings
    assert "from ClusterIP to ClusterIP" not in warning
    assert warning == (
        "clusterip-guard removed external IPs from this ClusterIP Service: removed 203.0.113.7 "
        "from spec.externalIPs (kept 10.1.2.3: inside allowedExternalIPCIDRs)"
    )
    assert "converted-from" not in decision.audit_annotations


def test_a_conversion_says_which_external_ips_it_dropped_and_which_it_kept() -> None:
    exposed = service("NodePort", externalIPs=["203.0.113.7", "10.1.2.3", "198.51.100.1"])
    policy = PolicySettings(allowed_external_ip_cidrs=(ipaddress.ip_network("10.0.0.0/8"),))
    decision = decide(
        ServiceChange("CREATE", "shop", "web", exposed), "mutate", policy, today=TODAY
    )
    assert (
        "removed 203.0.113.7, 198.51.100.1 from spec.externalIPs "
        "(kept 10.1.2.3: inside allowedExternalIPCIDRs)"
    ) in decision.changes
    assert "set spec.externalIPs" not in decision.warnings[0]
    every_one = decide(
        ServiceChange("CREATE", "shop", "web", service("NodePort", externalIPs=["203.0.113.7"])),
        "mutate",
        policy,
        today=TODAY,
    )
    assert "removed 203.0.113.7 from spec.externalIPs" in every_one.changes


# --- writes through services/status ---------------------------------------------------------

INTERNAL_LB = service("LoadBalancer", annotations=INTERNAL_AWS, allocateLoadBalancerNodePorts=False)
PUBLIC_LB = service(
    "LoadBalancer",
    annotations={"service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing"},
    allocateLoadBalancerNodePorts=False,
)


def status_write(old: Manifest, new: Manifest) -> ServiceChange:
    return ServiceChange("UPDATE", "shop", "web", new, old, subresource="status")


@pytest.mark.parametrize("mode", ["enforce", "mutate"])
def test_a_status_write_that_makes_an_internal_balancer_public_is_denied(mode: Mode) -> None:
    decision = decide(status_write(INTERNAL_LB, PUBLIC_LB), mode, ALLOW_INTERNAL, today=TODAY)
    assert decision.verdict == "denied"
    assert decision.patch == []  # a write through status cannot be converted
    assert "Service shop/web (written through services/status) would be reachable" in (
        decision.denial
    )


def test_a_status_write_that_keeps_existing_exposure_is_allowed_even_under_strict_updates() -> None:
    # A load-balancer controller writing the status of a balancer that predates the label.
    with_ingress = {**PUBLIC_LB, "status": {"loadBalancer": {"ingress": [{"ip": "10.1.2.3"}]}}}
    decision = decide(status_write(PUBLIC_LB, with_ingress), "enforce", STRICT_UPDATES, today=TODAY)
    assert decision.verdict == "warned"
    assert decision.allowed


def test_a_status_write_is_reported_in_audit() -> None:
    decision = decide(status_write(INTERNAL_LB, PUBLIC_LB), "audit", ALLOW_INTERNAL, today=TODAY)
    assert decision.verdict == "warned"
    assert decision.allowed


# The API server drops a denial message over 5 KiB (the native engine's would say only its
# expression): both engines name MAX_PIECES_SAID pieces, then how many more.
MESSAGE_LIMIT_BYTES = 5 * 1024


def test_a_denial_names_a_dozen_pieces_then_how_many_more() -> None:
    ips = [f"203.0.113.{i}" for i in range(1, 61)]
    change = ServiceChange("CREATE", "ns", "web", service("ClusterIP", externalIPs=ips))
    decision = decide(change, "enforce", PolicySettings(), today=TODAY)
    assert len(decision.violations) == 60
    assert decision.denial.endswith("203.0.113.12 is outside the allowed CIDRs; remove it from "
                                    "spec.externalIPs (and 48 more)")  # fmt: skip
    assert "203.0.113.13 " not in decision.denial


def test_the_longest_denial_stays_under_the_api_servers_limit() -> None:
    """Every value at the largest the API server takes (a 63-character namespace, a 253-
    character name, a 316-character class, unreadable values as long as an annotation holds)."""
    unreadable = "x" * 10_000
    spec: dict[str, Any] = {
        "loadBalancerClass": "a" * 253 + "/" + "b" * 62,
        "externalIPs": [unreadable + str(i) for i in range(40)],
        "externalTrafficPolicy": "Local",
        "ports": [{"name": f"p{i}", "port": 1000 + i, "nodePort": 30000 + i} for i in range(40)],
    }
    annotations = {"service.beta.kubernetes.io/load-balancer-source-ranges": ",".join(
        [unreadable] * 40)}  # fmt: skip
    manifest = service("LoadBalancer", annotations=annotations, **spec)
    change = ServiceChange("CREATE", "n" * 63, "s" * 253, manifest, subresource="status")
    policy = policy_from_mapping({"allowInternalLoadBalancers": True,
                                  "internalLoadBalancerProviders": ["aws"]})  # fmt: skip
    decision = decide(change, "enforce", policy, today=TODAY, label_not_a_mode=True)
    assert decision.verdict == "denied"
    assert len(decision.denial.encode()) < MESSAGE_LIMIT_BYTES, len(decision.denial.encode())
