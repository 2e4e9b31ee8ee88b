"""A registration someone narrowed is not "as wanted" (cluster/narrowing.py): every field that
narrows what an admission object judges is compared whole, after the API server's defaults."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from clusterip_guard.cluster.narrowing import narrowed_fields
from clusterip_guard.cluster.writing import stored_as_wanted

SELECTOR = {"matchExpressions": [{"key": "clusterip-guard.io/mode", "operator": "In",
                                  "values": ["enforce"]}]}  # fmt: skip
ENTRY = {
    "name": "enforce.clusterip-guard.io",
    "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
               "resources": ["services"], "scope": "Namespaced"}],
    "namespaceSelector": SELECTOR,
    "objectSelector": {},
    "matchConditions": [{"name": "exposed", "expression": "true"}],
    "matchPolicy": "Equivalent",
    "failurePolicy": "Fail",
}  # fmt: skip
WEBHOOKS = {"kind": "ValidatingWebhookConfiguration", "metadata": {"name": "guard"},
            "webhooks": [ENTRY]}  # fmt: skip
POLICY = {
    "kind": "ValidatingAdmissionPolicy",
    "metadata": {"name": "guard-exposure"},
    "spec": {
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": [
            {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
             "resources": ["services", "services/status"]}]},
        "validations": [{"expression": "true"}],
    },
}  # fmt: skip
BINDING = {
    "kind": "ValidatingAdmissionPolicyBinding",
    "metadata": {"name": "guard-exposure-deny"},
    "spec": {"policyName": "guard-exposure", "validationActions": ["Deny"],
             "matchResources": {"namespaceSelector": SELECTOR}},
}  # fmt: skip


def as_stored(manifest: dict[str, Any]) -> dict[str, Any]:
    """`manifest` as v1.37 stores it: the defaults it fills in."""
    stored = copy.deepcopy(manifest)
    stored["metadata"]["resourceVersion"] = "7"
    spec = stored.get("spec", {})
    for key in ("matchConstraints", "matchResources"):
        if key in spec:
            match = spec[key]
            match.setdefault("matchPolicy", "Equivalent")
            match.setdefault("namespaceSelector", {})
            match.setdefault("objectSelector", {})
            for rule in match.get("resourceRules", []):
                rule.setdefault("scope", "*")
    return stored


def changed(manifest: dict[str, Any], path: str, value: object) -> dict[str, Any]:
    """The stored `manifest` with `path` (dotted; `webhooks.0.x`) set to `value`."""
    stored = as_stored(manifest)
    *parents, last = path.split(".")
    node: Any = stored
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[last] = value
    return stored


@pytest.mark.parametrize("manifest", [WEBHOOKS, POLICY, BINDING], ids=lambda m: m["kind"])
def test_what_the_api_server_stores_for_ours_is_as_wanted(manifest: dict[str, Any]) -> None:
    assert narrowed_fields(manifest, as_stored(manifest)) == []


NARROWED = [
    pytest.param(WEBHOOKS, "webhooks.0.objectSelector", {"matchLabels": {"a": "b"}},
                 "webhooks[enforce.clusterip-guard.io].objectSelector",
                 id="an object selector added to a webhook entry"),
    pytest.param(WEBHOOKS, "webhooks.0.namespaceSelector", {},
                 "webhooks[enforce.clusterip-guard.io].namespaceSelector",
                 id="a webhook entry's namespace selector changed"),
    pytest.param(WEBHOOKS, "webhooks.0.rules.0.scope", "Cluster",
                 "webhooks[enforce.clusterip-guard.io].rules", id="a rule's scope narrowed"),
    pytest.param(WEBHOOKS, "webhooks.0.matchConditions",
                 [*ENTRY["matchConditions"], {"name": "skip", "expression": "false"}],
                 "webhooks[enforce.clusterip-guard.io].matchConditions",
                 id="a match condition added to a webhook entry"),
    pytest.param(WEBHOOKS, "webhooks.0.matchPolicy", "Exact",
                 "webhooks[enforce.clusterip-guard.io].matchPolicy", id="matchPolicy Exact"),
    pytest.param(WEBHOOKS, "webhooks.0.failurePolicy", "Ignore",
                 "webhooks[enforce.clusterip-guard.io].failurePolicy",
                 id="a guard made to fail open"),
    pytest.param(POLICY, "spec.matchConstraints.excludeResourceRules",
                 [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                   "resources": ["services"]}],
                 "spec.matchConstraints", id="resources excluded from a policy"),
    pytest.param(POLICY, "spec.matchConstraints.objectSelector", {"matchLabels": {"a": "b"}},
                 "spec.matchConstraints", id="an object selector added to a policy"),
    pytest.param(POLICY, "spec.matchConstraints.resourceRules.0.scope", "Cluster",
                 "spec.matchConstraints", id="a policy's rule given a narrower scope"),
    pytest.param(POLICY, "spec.matchConditions", [{"name": "skip", "expression": "false"}],
                 "spec.matchConditions", id="a match condition added to a policy"),
    pytest.param(POLICY, "spec.failurePolicy", "Ignore", "spec.failurePolicy",
                 id="a policy made to fail open"),
    pytest.param(POLICY, "spec.paramKind", {"apiVersion": "v1", "kind": "ConfigMap"},
                 "spec.paramKind", id="a parameter its bindings do not give"),
    pytest.param(BINDING, "spec.matchResources.objectSelector", {"matchLabels": {"a": "b"}},
                 "spec.matchResources", id="an object selector added to a binding"),
    pytest.param(BINDING, "spec.matchResources.excludeResourceRules",
                 [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                   "resources": ["services"]}],
                 "spec.matchResources", id="resources excluded from a binding"),
]  # fmt: skip


@pytest.mark.parametrize(("manifest", "path", "value", "field"), NARROWED)
def test_a_narrowed_field_is_found_though_the_writer_would_call_it_as_wanted(
    manifest: dict[str, Any], path: str, value: object, field: str
) -> None:
    stored = changed(manifest, path, value)
    assert narrowed_fields(manifest, stored) == [field]


def test_the_writers_own_rule_alone_misses_an_added_selector() -> None:
    """Why narrowing.py exists: `objectSelector: {}` matches any stored selector."""
    stored = changed(WEBHOOKS, "webhooks.0.objectSelector", {"matchLabels": {"a": "b"}})
    assert stored_as_wanted(WEBHOOKS, stored)
    assert narrowed_fields(WEBHOOKS, stored)


def test_a_binding_we_register_without_match_resources_keeps_none() -> None:
    bare = {**BINDING, "spec": {"policyName": "guard-mode-label", "validationActions": ["Deny"]}}
    assert narrowed_fields(bare, as_stored(bare)) == []
    scoped = changed(bare, "spec.matchResources", {"objectSelector": {"matchLabels": {"a": "b"}}})
    assert narrowed_fields(bare, scoped) == ["spec.matchResources"]
