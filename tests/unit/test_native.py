"""The native engine's pure parts: name globs as RE2 patterns, and refusing what CEL cannot
say (docs/design.md, "Engines"). Equality with the webhook is shown on the real API server,
tests/e2e/test_native_e2e.py."""

from __future__ import annotations

import json
import re
from fnmatch import fnmatchcase

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clusterip_guard.core.admission import registered_entries
from clusterip_guard.core.admission_policies import policy_bindings
from clusterip_guard.core.names import NEVER_JUDGED_NAMESPACES
from clusterip_guard.core.native import NativeUnsupported, native_objects
from clusterip_guard.core.native.cel import glob_regex
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
