"""The policy file: defaults, every key, and errors that name the key."""

from __future__ import annotations

import datetime
import ipaddress

import pytest

from clusterip_guard.core.policy import SERVICE_KIND, PolicySettings
from clusterip_guard.policyfile import _EXEMPTION_KINDS, PolicyError, parse_policy

FULL = """
allowedExternalIPCIDRs: [10.0.0.0/8, "fd00::/8"]
allowInternalLoadBalancers: true
allowInternalLoadBalancerNodePorts: true
internalLoadBalancerProviders: [aws, gcp]
internalLoadBalancerClasses:
  service.k8s.aws/nlb: aws
allowExistingViolations: false
exemptions:
  - namespace: shop
    name: legacy-*
    reason: vendor appliance
    expires: 2027-01-31
  - namespace: edge
    name: ingress
    reason: the cluster's ingress
"""


def test_an_empty_file_is_the_default_policy() -> None:
    assert parse_policy("") == PolicySettings()


def test_defaults_are_strict_but_keep_legacy_objects_working() -> None:
    policy = PolicySettings()
    assert policy.allowed_external_ip_cidrs == ()
    assert policy.allow_internal_load_balancers is False
    assert policy.allow_internal_load_balancer_node_ports is False
    assert policy.allow_existing_violations is True
    assert policy.internal_load_balancer_providers == ()


def test_every_key_is_read() -> None:
    policy = parse_policy(FULL)
    assert policy.allowed_external_ip_cidrs == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("fd00::/8"),
    )
    assert policy.allow_internal_load_balancers is True
    assert policy.allow_internal_load_balancer_node_ports is True
    assert policy.internal_load_balancer_providers == ("aws", "gcp")
    assert policy.internal_load_balancer_classes == (("service.k8s.aws/nlb", "aws"),)
    assert policy.allow_existing_violations is False
    assert [e.name for e in policy.exemptions] == ["legacy-*", "ingress"]
    assert policy.exemptions[0].expires == datetime.date(2027, 1, 31)
    assert policy.exemptions[1].expires is None


def test_an_exemption_applies_until_its_expiry_day_inclusive() -> None:
    exemption = parse_policy(FULL).exemptions[0]
    assert exemption.applies_to("shop", "legacy-billing", datetime.date(2027, 1, 31))
    assert not exemption.applies_to("shop", "legacy-billing", datetime.date(2027, 2, 1))


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("allowedCIDRs: []", "allowedCIDRs"),
        ("allowedExternalIPCIDRs: 10.0.0.0/8", "allowedExternalIPCIDRs"),
        ("allowedExternalIPCIDRs: [10.0.0.1/8]", "allowedExternalIPCIDRs[0]"),
        ("allowedExternalIPCIDRs: [banana]", "allowedExternalIPCIDRs[0]"),
        ("allowInternalLoadBalancers: yes please", "allowInternalLoadBalancers"),
        ("allowExistingViolations: 1", "allowExistingViolations"),
        ("internalLoadBalancerAnnotations: {a: b}", "internalLoadBalancerProviders"),
        ("internalLoadBalancerProviders: aws", "internalLoadBalancerProviders"),
        ("internalLoadBalancerProviders: [AWS]", "internalLoadBalancerProviders[0]"),
        ("allowInternalLoadBalancers: true", "internalLoadBalancerProviders"),
        ("internalLoadBalancerClasses: [service.k8s.aws/nlb]", "internalLoadBalancerClasses"),
        ("{allowInternalLoadBalancers: true, internalLoadBalancerProviders: [gcp], "
         "internalLoadBalancerClasses: {networking.gke.io/l4-regional-internal: gcp}}",
         "internalLoadBalancerClasses.networking.gke.io/l4-regional-internal: 'gcp': a class "
         "can be read as internal only for aws"),
        ("{internalLoadBalancerProviders: [gcp], internalLoadBalancerClasses: "
         "{service.k8s.aws/nlb: aws}}",
         "internalLoadBalancerClasses.service.k8s.aws/nlb: aws is not in "
         "internalLoadBalancerProviders"),
        ("{internalLoadBalancerProviders: [aws], internalLoadBalancerClasses: {nlb: aws}}",
         "internalLoadBalancerClasses.nlb: not a loadBalancerClass"),
        ("exemptions: {}", "exemptions"),
        ("exemptions: [{namespace: a, name: b}]", "exemptions[0].reason"),
        ("exemptions: [{namespace: a, name: b, reason: c, until: x}]", "exemptions[0].until"),
        (
            "exemptions: [{namespace: a, name: b, reason: c, expires: soon}]",
            "exemptions[0].expires",
        ),
        ("exemptions: [{namespace: a, name: b, reason: c, expires: 2027-02-30}]",
         "exemptions[0].expires: 2027-02-30 is not a date (day is out of range for month)"),
        ("exemptions: [{namespace: a, name: b, reason: c, expires: 2027-13-01}]",
         "exemptions[0].expires: 2027-13-01 is not a date"),
        ("exemptions: [{namespace: a, name: b, reason: c, expires: '2027-1-31'}]",
         "exemptions[0].expires: expected a date YYYY-MM-DD"),
        ("exemptions: [{namespace: Shop, name: b, reason: c}]",
         "exemptions[0].namespace: 'Shop' can never match a namespace"),
        ("exemptions: [{namespace: shop, name: web/1, reason: c}]",
         "exemptions[0].name: 'web/1' can never match a Service"),
        ("exemptions: [{namespace: shop, name: web.v1, reason: c}]",
         "exemptions[0].name: 'web.v1' can never match a Service: names are lowercase letters, "
         "digits and '-'"),
        ("exemptions: [{namespace: shop.eu, name: web.v1, reason: c, kind: Ingress}]",
         "exemptions[0].namespace: 'shop.eu' can never match a namespace"),
        ("allowedGatewayClasses: internal", "allowedGatewayClasses: expected a list"),
        ("allowedGatewayClasses: [Internal]",
         "allowedGatewayClasses[0]: 'Internal' can never match a gateway class"),
        ("allowedGatewayClasses: [3]", "allowedGatewayClasses[0]: 3 can never match"),
        ("allowedGateways: infra/internal", "allowedGateways: expected a list"),
        ("allowedGateways: [internal]", "allowedGateways[0]: 'internal' is not namespace/name"),
        ("allowedGateways: [infra/]", "allowedGateways[0]: 'infra/' is not namespace/name"),
        ("allowedGateways: [/internal]", "allowedGateways[0]: '/internal' is not namespace/name"),
        ("allowedGateways: [a/b/c]", "allowedGateways[0]: 'a/b/c' is not namespace/name"),
        ("allowedGateways: [Infra/internal]", "allowedGateways[0]: 'Infra/internal'"),
        ("allowedGateways: [{infra: internal}]", "allowedGateways[0]: {'infra': 'internal'}"),
        ("exemptions: [{namespace: a, name: b, reason: c, kind: ListenerSet}]",
         "exemptions[0].kind: 'ListenerSet' is not a kind clusterip-guard judges"),
        ("- a list", "top level"),
        ("key: [unclosed", "line 1, column"),
    ],
)  # fmt: skip
def test_errors_name_the_key_in_one_line(text: str, names: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text)
    message = str(caught.value)
    assert names in message
    assert "\n" not in message


def test_gateway_classes_and_gateways_are_read_as_globs() -> None:
    policy = parse_policy(
        "allowedGatewayClasses: [internal, private-*]\n"
        "allowedGateways: [infra/internal, 'team-*/edge.example-?']\n"
        "exemptions: [{namespace: shop, name: legacy-*, reason: r, kind: TLSRoute}]\n"
    )
    assert policy.allowed_gateway_classes == ("internal", "private-*")
    assert policy.allowed_gateways == (("infra", "internal"), ("team-*", "edge.example-?"))
    assert policy.gateway_allowed("team-a", "edge.example-1")
    assert policy.exemptions[0].kind == "TLSRoute"
    assert parse_policy("").allowed_gateways == ()
    assert parse_policy("").allowed_gateway_classes == ()


def test_exemption_namespaces_are_globs_as_names_are() -> None:
    policy = parse_policy("exemptions: [{namespace: team-*, name: '*', reason: teams' own}]")
    today = datetime.date(2026, 1, 1)
    assert policy.exemption_for("team-a", "web", today) is not None
    assert policy.exemption_for("shop", "web", today) is None


def test_the_references_policy_example_is_a_valid_policy_that_allows_no_service_range() -> None:
    import re
    from pathlib import Path

    reference = Path(__file__).resolve().parents[2] / "docs" / "reference" / "policy.md"
    section = reference.read_text().split("## A whole policy file", 1)[1]
    example = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert example is not None
    policy = parse_policy(example.group(1))
    assert policy.internal_load_balancer_classes == (("service.k8s.aws/nlb", "aws"),)
    # The README's example once allowed 10.0.0.0/8: the Service range of most clusters.
    for service_range in ("10.0.0.0/16", "10.96.0.0/12", "172.20.0.0/16"):
        network = ipaddress.ip_network(service_range)
        assert not any(c.overlaps(network) for c in policy.allowed_external_ip_cidrs)


@pytest.mark.parametrize("kind", [k for k in _EXEMPTION_KINDS if k != SERVICE_KIND])
def test_exemptions_of_kinds_named_as_subdomains_may_name_dots(kind: str) -> None:
    """Every kind but a Service is named as a DNS subdomain (web.v1): its exemption's name glob
    may hold dots, and applies to such a name."""
    policy = parse_policy(
        f"exemptions: [{{namespace: shop, name: 'web.v*', reason: legacy, kind: {kind}}}]"
    )
    today = datetime.date(2026, 12, 7)
    assert policy.exemption_for("shop", "web.v1", today, kind) is not None
    assert policy.exemption_for("shop", "webxv1", today, kind) is None
