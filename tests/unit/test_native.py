"""The native engine's pure parts: name globs as RE2 patterns, and refusing what CEL cannot
say (docs/design.md, "Engines"). Equality with the webhook is shown on the real API server,
tests/e2e/test_native_e2e.py."""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import json
import re
from fnmatch import fnmatchcase
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clusterip_guard.core.admission import registered_entries
from clusterip_guard.core.admission_policies import policy_bindings
from clusterip_guard.core.cloud_providers import CLASS_READERS, INTERNAL_READERS
from clusterip_guard.core.names import NEVER_JUDGED_NAMESPACES
from clusterip_guard.core.native import (
    COMPILED_FIELDS,
    NOT_COMPILED_FIELDS,
    NativeUnsupported,
    native_objects,
    native_supports,
)
from clusterip_guard.core.native.cel import glob_regex, re2_refuses
from clusterip_guard.core.native.decision import warning_policy
from clusterip_guard.core.native.providers import CLASS_READERS as native_class_readers
from clusterip_guard.core.native.providers import READERS
from clusterip_guard.core.policy import Exemption, PolicySettings
from clusterip_guard.policyfile import parse_policy

GLOB_CHARACTERS = st.text(alphabet="ab-1*?[]!", max_size=8)
NAMES = st.text(alphabet="ab-1", max_size=8)


@given(glob=GLOB_CHARACTERS, name=NAMES)
def test_a_glob_matches_as_fnmatchcase_does(glob: str, name: str) -> None:
    # RE2's end of text, \\z, is Python's \\Z: the only spelling the two differ in here.
    pattern = re.compile(glob_regex(glob).replace("\\z", "\\Z"))
    assert bool(pattern.search(name)) == fnmatchcase(name, glob), (glob, glob_regex(glob))


def test_an_exemption_with_an_end_is_refused_naming_the_key() -> None:
    policy = parse_policy("exemptions: [{namespace: a, name: b, reason: c, expires: 2030-01-01}]")
    with pytest.raises(NativeUnsupported, match=r"^exemptions\[0\]\.expires: "):
        native_objects(policy, name="n")


@pytest.mark.parametrize("default_mode", ["off", "audit", "mutate", "enforce"])
def test_every_entry_of_the_table_is_bound(default_mode: str) -> None:
    objects = native_objects(parse_policy(""), name="n", default_mode=default_mode)  # type: ignore[arg-type]
    entries = registered_entries(default_mode)  # type: ignore[arg-type]
    mutating = [o for o in objects if o["kind"] == "MutatingAdmissionPolicyBinding"]
    assert mutating == [
        binding
        for policy in ("n-conversion", "n-host-conversion")  # Services', Pods' and workloads'
        for binding in policy_bindings(
            policy, entries, never_judged=NEVER_JUDGED_NAMESPACES, configuration="mutating"
        )
    ]
    exposure = [
        o
        for o in objects
        if o["kind"] == "ValidatingAdmissionPolicyBinding"
        and o["spec"]["policyName"] in ("n-exposure", "n-host-exposure")
    ]
    # Bound as the entries judge (tests/unit/test_registration.py shows what that means).
    assert exposure == [
        binding
        for policy in ("n-exposure", "n-host-exposure")
        for binding in policy_bindings(policy, entries, never_judged=NEVER_JUDGED_NAMESPACES)
    ]
    # Scope lives in each binding (Kyverno once lost it converting a policy).
    assert all(b["spec"]["matchResources"]["namespaceSelector"] for b in [*mutating, *exposure])
    assert not [o for o in objects if "Webhook" in o["kind"]]


def test_a_rendering_is_due_again_the_day_after_an_exemption_ends() -> None:
    import datetime

    from clusterip_guard.core.native import next_rendering

    policy = parse_policy(
        "exemptions: [{namespace: a, name: b, reason: c, expires: 2027-01-31},"
        " {namespace: a, name: d, reason: c, expires: 2027-03-01},"
        " {namespace: a, name: e, reason: c}]"
    )
    assert next_rendering(policy, datetime.date(2027, 1, 1)) == datetime.date(2027, 2, 1)
    assert next_rendering(policy, datetime.date(2027, 1, 31)) == datetime.date(2027, 2, 1)
    assert next_rendering(policy, datetime.date(2027, 2, 1)) == datetime.date(2027, 3, 2)
    assert next_rendering(policy, datetime.date(2027, 3, 2)) is None
    # Rendered on a day, only the exemptions in force that day are compiled in.
    rendered = json.dumps(native_objects(policy, name="n", today=datetime.date(2027, 2, 1)))
    assert "(?s:b)" not in rendered
    assert "(?s:d)" in rendered


@pytest.mark.parametrize("never_judged", [(), ("kube-system", "guard")])
def test_no_selector_the_api_server_would_refuse(never_judged: tuple[str, ...]) -> None:
    # The API server refuses In and NotIn without values: none excluded, no such expression.
    for document in native_objects(parse_policy(""), name="n", never_judged=never_judged):
        selector = document["spec"].get("matchResources", {}).get("namespaceSelector", {})
        for expression in selector.get("matchExpressions", []):
            if expression["operator"] in ("In", "NotIn"):
                assert expression["values"], document["metadata"]["name"]


@given(glob=GLOB_CHARACTERS)
def test_no_glob_becomes_a_pattern_re2_refuses(glob: str) -> None:
    # Every fnmatch construct: *, ?, sets, negated sets, ranges, empty ranges ([b-a]).
    assert not re2_refuses(glob_regex(glob)), glob_regex(glob)


def test_an_empty_range_is_a_glob_that_matches_nothing_in_both_engines() -> None:
    policy = parse_policy("exemptions: [{namespace: '*', name: '[z-a]*', reason: none}]")
    assert native_supports(policy) is None
    assert "[^\\s\\S]" in glob_regex("[z-a]*")
    assert policy.exemption_for("ns", "zebra", datetime.date(2030, 1, 1)) is None


# A value for each compiled field that differs from its default.
NOT_DEFAULT: dict[str, Any] = {
    "allowed_external_ip_cidrs": (ipaddress.ip_network("192.0.2.0/24"),),
    "allow_internal_load_balancers": True,
    "allow_internal_load_balancer_node_ports": True,
    "internal_load_balancer_providers": ("aws",),
    "internal_load_balancer_classes": (("service.k8s.aws/nlb", "aws"),),
    "allow_existing_violations": False,
    "exemptions": (Exemption(namespace="*", name="vendor-*", reason="r"),),
    "allowed_host_ports": ((8080, 8080),),
    "allowed_ingress_classes": ("internal-*",),
    "allowed_gateway_classes": ("internal-*",),
    "allowed_gateways": (("infra", "internal-*"),),
}
# Fields read only with another set (internal balancers' settings need them allowed).
NEEDS: dict[str, dict[str, Any]] = {
    "allow_internal_load_balancer_node_ports": {
        "allow_internal_load_balancers": True,
        "internal_load_balancer_providers": ("aws",),
    },
    "internal_load_balancer_providers": {"allow_internal_load_balancers": True},
    "internal_load_balancer_classes": {"allow_internal_load_balancers": True},
}


def test_every_policy_key_is_compiled_or_refused_by_the_native_engine() -> None:
    fields = {field.name for field in dataclasses.fields(PolicySettings)}
    assert fields == COMPILED_FIELDS | NOT_COMPILED_FIELDS.keys()
    assert not COMPILED_FIELDS & NOT_COMPILED_FIELDS.keys()
    assert NOT_DEFAULT.keys() == COMPILED_FIELDS


@pytest.mark.parametrize("field", sorted(COMPILED_FIELDS))
def test_each_compiled_key_changes_what_the_native_engine_registers(field: str) -> None:
    base = PolicySettings(**NEEDS.get(field, {}))
    changed = dataclasses.replace(base, **{field: NOT_DEFAULT[field]})
    assert native_objects(base, name="n") != native_objects(changed, name="n"), field


def test_the_native_provider_readers_are_the_cores() -> None:
    assert READERS.keys() == INTERNAL_READERS.keys()
    assert native_class_readers.keys() == CLASS_READERS.keys()


def test_a_policy_too_large_for_the_api_server_is_refused_in_one_line_naming_the_key() -> None:
    exemptions = [{"namespace": "*", "name": f"vendor-{i}-*", "reason": "r"} for i in range(950)]
    said = native_supports(parse_policy(json.dumps({"exemptions": exemptions})))
    assert said is not None
    assert "\n" not in said
    assert said.startswith("exemptions: 950 exemptions make an expression of ")
    assert "over the API server's limit of 100,000" in said
    assert native_supports(parse_policy(json.dumps({"exemptions": exemptions[:100]}))) is None


def test_too_many_allowed_gateways_are_refused_naming_that_key() -> None:
    gateways = [f"team-{i}/edge-{i}-*" for i in range(400)]
    said = native_supports(parse_policy(json.dumps({"allowedGateways": gateways})))
    assert said is not None
    assert said.startswith("allowedGateways: 400 Gateways make an expression of ")
    assert native_supports(parse_policy(json.dumps({"allowedGateways": gateways[:20]}))) is None


def test_an_ipv4_mapped_cidr_is_read_as_the_ipv4_range_it_means() -> None:
    policy = parse_policy("allowedExternalIPCIDRs: ['::ffff:198.51.100.0/120']")
    assert policy.allowed_external_ip_cidrs == (ipaddress.ip_network("198.51.100.0/24"),)
    assert native_supports(policy) is None
    assert policy.external_ip_allowed("198.51.100.7")
    assert policy.external_ip_allowed("::ffff:198.51.100.7")


def test_the_name_of_a_generated_name_is_read_without_failing() -> None:
    # A MutatingAdmissionPolicy sees a CREATE with generateName before the name exists.
    name = next(v for v in native_objects(parse_policy(""), name="n")[0]["spec"]["variables"]
                if v["name"] == "name")  # fmt: skip
    assert name["expression"].startswith("has(object.metadata.name) && ")


def test_the_service_warning_policy_matches_only_updates_without_a_service_exemption() -> None:
    """Only an UPDATE can keep exposure: without a Service exemption in force the warning
    policy's rules match UPDATEs alone, so a CREATE costs the API server no CEL at all (a
    match condition on the operation would still build the CEL input of every CREATE)."""

    def operations(policy: PolicySettings) -> list[list[str]]:
        rendered = warning_policy(
            policy, name="n", default_mode="off", today=datetime.date(2021, 1, 1)
        )
        return [
            rule["operations"] for rule in rendered["spec"]["matchConstraints"]["resourceRules"]
        ]

    pods = (Exemption("*", "x", "node", kind="Pod"),)
    assert operations(PolicySettings(exemptions=pods)) == [["UPDATE"]]
    exempted = (*pods, Exemption("*", "legacy-*", "appliance"))
    assert operations(PolicySettings(exemptions=exempted)) == [["CREATE", "UPDATE"]]
    lapsed = (Exemption("*", "legacy-*", "appliance", expires=datetime.date(2020, 1, 1)),)
    assert operations(PolicySettings(exemptions=lapsed)) == [["UPDATE"]]
