"""The fields of an admission object that narrow what it judges, and where a stored object's
differ from ours (issue 30, item 6).

The writer leaves alone an object whose fields we set hold our values (`stored_as_wanted`),
so that what the API server adds never counts as a change. That rule is too lenient here: an
`objectSelector: {}` of ours "matches" any selector someone added, and a key we leave to its
default (`scope`, `matchPolicy`) may be set to a narrower one. So these fields are compared
whole, after filling in the defaults the API server fills in (admissionregistration.k8s.io/v1,
as v1.37 stores them): a stored value that differs is restored, and said.

Pure: plain data in, field names out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clusterip_guard.core.types import Manifest

# What the API server stores for a key left out (admissionregistration.k8s.io/v1 defaults).
_DEFAULTS: Mapping[str, object] = {
    "matchPolicy": "Equivalent",
    "failurePolicy": "Fail",
    "namespaceSelector": {},
    "objectSelector": {},
    "matchConditions": [],
}
_MATCH_DEFAULTS = ("matchPolicy", "namespaceSelector", "objectSelector")
_RULE_LISTS = ("rules", "resourceRules", "excludeResourceRules")

# A webhook entry's fields that narrow what it judges (or let it through when it fails).
WEBHOOK_ENTRY_FIELDS = (
    "objectSelector",
    "namespaceSelector",
    "rules",
    "matchConditions",
    "matchPolicy",
    "failurePolicy",
)
# An admission policy's (validating or mutating). `paramKind`: a policy that wants a parameter
# its bindings do not give fails every request, by its failure policy.
POLICY_FIELDS = ("matchConstraints", "matchConditions", "failurePolicy", "paramKind")
# A binding's: `matchResources` narrows the policy's constraints; a `paramRef` we did not set
# can make it fail or read what someone else wrote.
BINDING_FIELDS = ("matchResources", "paramRef")


def _rules(rules: object) -> object:
    if not isinstance(rules, list):
        return rules
    return [{"scope": "*", **rule} if isinstance(rule, Mapping) else rule for rule in rules]


def _match(value: object) -> object:
    """A matchConstraints or matchResources mapping with the API server's defaults."""
    if not isinstance(value, Mapping):
        return value
    filled: dict[str, Any] = {key: _DEFAULTS[key] for key in _MATCH_DEFAULTS}
    filled.update(value)
    for key in _RULE_LISTS:
        if key in filled:
            filled[key] = _rules(filled[key])
    return filled


def _normal(field: str, value: object) -> object:
    """`value` of `field` as the API server stores it; None where the field is absent and
    has no default (a binding without matchResources, a policy without paramKind)."""
    if value is None:
        value = _DEFAULTS.get(field)
    if field in ("matchConstraints", "matchResources"):
        return _match(value)
    if field == "rules":
        return _rules(value)
    return value


def _differing(
    wanted: Mapping[str, Any], stored: Mapping[str, Any], fields: tuple[str, ...]
) -> list[str]:
    return [
        field
        for field in fields
        if _normal(field, wanted.get(field)) != _normal(field, stored.get(field))
    ]


def narrowed_fields(wanted: Manifest, stored: Manifest) -> list[str]:
    """The fields of `stored` that narrow what it judges and are not what `wanted` says, by
    their place (`webhooks[enforce.clusterip-guard.io].objectSelector`, `spec.matchResources`).
    Entries are paired by name; a missing or extra entry is the writer's to see (it compares
    the list's length and names)."""
    kind = wanted.get("kind", "")
    if kind.endswith("WebhookConfiguration"):
        stored_entries = {
            entry.get("name"): entry
            for entry in stored.get("webhooks") or []
            if isinstance(entry, Mapping)
        }
        found = []
        for entry in wanted.get("webhooks") or []:
            name = entry["name"]
            if name not in stored_entries:
                continue
            found += [
                f"webhooks[{name}].{field}"
                for field in _differing(entry, stored_entries[name], WEBHOOK_ENTRY_FIELDS)
            ]
        return found
    fields = BINDING_FIELDS if kind.endswith("Binding") else POLICY_FIELDS
    wanted_spec = wanted.get("spec") or {}
    stored_spec = stored.get("spec") or {}
    if not isinstance(stored_spec, Mapping):
        return ["spec"]
    return [f"spec.{field}" for field in _differing(wanted_spec, stored_spec, fields)]
