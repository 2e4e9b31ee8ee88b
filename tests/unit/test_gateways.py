"""The Gateway API (core/gateways.py): a Gateway's class, a route's parents (every parentRef
edge case, generated), and how admission, `check`, `scan`, the registration and the native
engine take them. Decisions per mode are rows of tests/unit/test_decision.py."""

from __future__ import annotations

import datetime
import itertools
import json
from typing import Any

import pytest

from clusterip_guard.core.cel_literals import text
from clusterip_guard.core.decision import decide
from clusterip_guard.core.gateways import (
    GATEWAY_API_KIND_NAMES,
    GATEWAY_GROUP,
    gateway_api_kind,
    gateway_exposure_of,
    parents_of,
    route_exposure_of,
)
from clusterip_guard.core.match_conditions import (
    exact_gateways,
    gateway_match_condition,
    route_match_condition,
)
from clusterip_guard.core.native import native_objects, native_supports
from clusterip_guard.core.native.cel import glob_regex
from clusterip_guard.core.native.gateways import gateway_warning_policy
from clusterip_guard.core.offline import ManifestFile, check_files, fixed_documents
from clusterip_guard.core.policy import Exemption, PolicySettings
from clusterip_guard.core.registration import ServiceTarget, webhook_configurations
from clusterip_guard.core.reports import GATEWAY_RULE, ROUTE_RULE, build_reports
from clusterip_guard.core.review import change_of, parse_review
from clusterip_guard.core.scan import NamespaceInfo, scan
from tests.support.builders import admission_review, gateway, mesh_parent, parent, route

TODAY = datetime.date(2026, 11, 24)
POLICY = PolicySettings(
    allowed_gateway_classes=("internal", "private-*"),
    allowed_gateways=(("infra", "internal"), ("team-*", "edge-?")),
)
LISTENER_SET_GROUP = "gateway.networking.x-k8s.io"

# --- the parentRef edge cases, generated ---------------------------------------------------------
# Each part of a parentRef: left out (None here), or a value; `5` stands for a value that is not
# text (admission can run before the schema is checked).
_ABSENT = None
GROUPS: list[Any] = [_ABSENT, GATEWAY_GROUP, "", LISTENER_SET_GROUP, 5]
KINDS: list[Any] = [_ABSENT, "Gateway", "Service", "ListenerSet", "", 5]
NAMESPACES: list[Any] = [_ABSENT, "infra", "shop", "team-a", "", 5]
NAMES: list[Any] = [_ABSENT, "internal", "public", "edge-1", "", 5]


def _ref(group: Any, kind: Any, namespace: Any, name: Any) -> dict[str, Any]:
    parts = {"group": group, "kind": kind, "namespace": namespace, "name": name}
    return {key: value for key, value in parts.items() if value is not _ABSENT}


def _expected_piece(group: Any, kind: Any, namespace: Any, name: Any) -> bool:
    """The design, read afresh (docs/concepts.md): defaults filled, anything unreadable is
    exposure, a Service of the core group is mesh, a Gateway in allowedGateways is allowed."""
    group = GATEWAY_GROUP if group is _ABSENT else group
    kind = "Gateway" if kind is _ABSENT else kind
    namespace = "shop" if namespace is _ABSENT else namespace
    readable = (
        isinstance(group, str)
        and isinstance(kind, str)
        and kind != ""
        and isinstance(namespace, str)
        and namespace != ""
        and isinstance(name, str)
        and name != ""
    )
    if not readable:
        return True
    if group == "" and kind == "Service":
        return False
    allowed = (namespace, name) in {("infra", "internal"), ("team-a", "edge-1")}
    return not (group == GATEWAY_GROUP and kind == "Gateway" and allowed)


EDGE_CASES = list(itertools.product(GROUPS, KINDS, NAMESPACES, NAMES))


@pytest.mark.parametrize(("group", "kind", "namespace", "name"), EDGE_CASES)
def test_each_parent_ref_is_a_piece_unless_mesh_or_an_allowed_gateway(
    group: Any, kind: Any, namespace: Any, name: Any
) -> None:
    pieces = route_exposure_of(route(_ref(group, kind, namespace, name)), "shop", POLICY)
    assert bool(pieces) == _expected_piece(group, kind, namespace, name)
    for piece in pieces:
        assert piece.field == "spec.parentRefs[0]"
        assert piece.key.startswith("parent:")
        assert "\n" not in piece.detail


def test_a_parents_defaults_are_the_gateway_api_group_a_gateway_and_the_routes_namespace() -> None:
    (only,) = parents_of(route(parent("web")), "shop")
    assert (only.group, only.kind, only.namespace, only.name) == (
        GATEWAY_GROUP,
        "Gateway",
        "shop",
        "web",
    )
    assert only.key == f"parent:{GATEWAY_GROUP}/Gateway/shop/web"
    assert only.readable


def test_the_listener_is_not_part_of_the_key() -> None:
    plain = parents_of(route(parent("public", "infra")), "shop")
    https = parents_of(route(parent("public", "infra", section="https")), "shop")
    assert [p.key for p in plain] == [p.key for p in https]
    ported = route({**parent("public", "infra"), "port": 8443})
    assert [p.key for p in parents_of(ported, "shop")] == [p.key for p in plain]


def test_a_route_without_parent_refs_or_with_none_attaches_to_nothing() -> None:
    assert route_exposure_of(route(no_parent_refs=True), "shop", PolicySettings()) == ()
    assert route_exposure_of(route(), "shop", PolicySettings()) == ()
    assert route_exposure_of({"kind": "HTTPRoute"}, "shop", PolicySettings()) == ()


@pytest.mark.parametrize("refs", ["infra/public", {"name": "x"}, 7])
def test_parent_refs_that_are_not_a_list_count_as_exposure(refs: Any) -> None:
    manifest = route(no_parent_refs=True)
    manifest["spec"]["parentRefs"] = refs
    (piece,) = route_exposure_of(manifest, "shop", POLICY)
    assert piece.field == "spec.parentRefs"
    assert "not one clusterip-guard can read" in piece.summary


def test_an_entry_that_is_not_a_mapping_counts_as_exposure() -> None:
    manifest = route(mesh_parent())
    manifest["spec"]["parentRefs"].insert(0, "infra/internal")
    pieces = route_exposure_of(manifest, "shop", POLICY)
    assert [p.field for p in pieces] == ["spec.parentRefs[0]"]


def test_a_parent_of_another_group_says_its_group() -> None:
    ref = parent("edge", "infra", kind="ListenerSet", group=LISTENER_SET_GROUP)
    (piece,) = route_exposure_of(route(ref), "shop", POLICY)
    assert f"ListenerSet.{LISTENER_SET_GROUP} infra/edge" in piece.summary
    assert piece.key == f"parent:{LISTENER_SET_GROUP}/ListenerSet/infra/edge"
    (plain,) = route_exposure_of(route(parent("public", "infra")), "shop", POLICY)
    assert "parent Gateway infra/public is not an allowed Gateway" in plain.summary
    assert "attach the route to an allowed Gateway (infra/internal, team-*/edge-?)" in plain.fix


def test_globs_match_each_part_as_fnmatchcase_does() -> None:
    assert POLICY.gateway_allowed("team-a", "edge-1")
    assert not POLICY.gateway_allowed("team-a", "edge-10")
    assert not POLICY.gateway_allowed("Team-a", "edge-1")
    assert not POLICY.gateway_allowed("", "internal")
    anything = PolicySettings(allowed_gateways=(("*", "*"),))
    assert anything.gateway_allowed("a", "b")
    assert not anything.gateway_allowed("a", "")


@pytest.mark.parametrize(
    ("gateway_class", "piece"),
    [
        ("internal", None),
        ("private-lan", None),
        ("public", "gateway-class:public"),
        ("", "gateway-class:"),
        (None, "gateway-class:"),
        (5, "gateway-class:"),
    ],
)
def test_a_gateway_is_a_piece_unless_its_class_is_allowed(
    gateway_class: Any, piece: str | None
) -> None:
    manifest = gateway()
    if gateway_class is not None:
        manifest["spec"]["gatewayClassName"] = gateway_class
    pieces = gateway_exposure_of(manifest, POLICY)
    assert [p.key for p in pieces] == ([piece] if piece else [])
    assert all(p.field == "spec.gatewayClassName" for p in pieces)


def test_a_gateway_without_a_spec_is_a_piece() -> None:
    assert [p.key for p in gateway_exposure_of({"kind": "Gateway"}, POLICY)] == ["gateway-class:"]


@pytest.mark.parametrize(
    ("api_version", "kind", "expected"),
    [
        ("gateway.networking.k8s.io/v1", "Gateway", "Gateway"),
        ("gateway.networking.k8s.io/v1beta1", "HTTPRoute", "HTTPRoute"),
        ("gateway.networking.k8s.io/v1alpha2", "TCPRoute", "TCPRoute"),
        ("gateway.networking.k8s.io/v1", "GatewayClass", None),
        ("gateway.networking.x-k8s.io/v1alpha1", "ListenerSet", None),
        ("gateway.networking.k8s.io", "Gateway", None),
        ("networking.k8s.io/v1", "Gateway", None),
    ],
)
def test_check_and_scan_take_every_served_version(
    api_version: str, kind: str, expected: str | None
) -> None:
    assert gateway_api_kind({"apiVersion": api_version, "kind": kind}) == expected


@pytest.mark.parametrize("kind", GATEWAY_API_KIND_NAMES)
def test_a_review_of_each_kind_is_judged_and_its_status_writes_too(kind: str) -> None:
    obj = gateway("public") if kind == "Gateway" else route(parent("public", "infra"), kind=kind)
    review = admission_review(obj, kind=kind, group=GATEWAY_GROUP)
    change = change_of(parse_review(json.dumps(review).encode()))
    assert change is not None
    decision = decide(change, "enforce", POLICY, today=TODAY)
    assert decision.verdict == "denied"
    assert decision.denial.startswith(f"{kind} shop/")
    status = admission_review(
        obj, kind=kind, group=GATEWAY_GROUP, operation="UPDATE", old=obj, sub_resource="status"
    )
    change = change_of(parse_review(json.dumps(status).encode()))
    assert change is not None
    # A status write keeps the spec: kept pieces, allowed with a warning even when strict.
    strict = PolicySettings(allow_existing_violations=False)
    assert decide(change, "enforce", strict, today=TODAY).verdict == "warned"


def test_a_review_of_another_group_or_kind_is_not_ours() -> None:
    listener_set = admission_review(route(), kind="ListenerSet", group=LISTENER_SET_GROUP)
    assert change_of(parse_review(json.dumps(listener_set).encode())) is None
    deleted = admission_review(gateway("public"), kind="Gateway", group=GATEWAY_GROUP)
    deleted["request"]["operation"] = "DELETE"
    assert change_of(parse_review(json.dumps(deleted).encode())) is None


def test_mutate_denies_saying_nothing_converts_a_gateway_or_a_route() -> None:
    for obj, said in (
        (gateway("public"), "a Gateway cannot be made internal"),
        (route(parent("public", "infra")), "a route cannot be made internal"),
    ):
        review = admission_review(obj, kind=obj["kind"], group=GATEWAY_GROUP)
        change = change_of(parse_review(json.dumps(review).encode()))
        assert change is not None
        decision = decide(change, "mutate", POLICY, today=TODAY)
        assert decision.verdict == "denied"
        assert said in decision.denial
        assert not decision.patch


def test_only_exact_allowed_classes_and_gateways_are_left_out_by_the_registration() -> None:
    assert exact_gateways((("infra", "internal"), ("team-*", "edge"), ("a", "b?"))) == [
        "infra/internal"
    ]
    classes = gateway_match_condition(("internal", "private-*"))["expression"]
    assert "c in ['internal']" in classes
    routes = route_match_condition(POLICY.allowed_gateways)["expression"]
    assert "in ['infra/internal']" in routes
    # Without the policy's, every write of theirs is sent.
    assert "in []" in route_match_condition(())["expression"]


def test_the_registration_takes_the_policys_exact_classes_and_gateways() -> None:
    _, validating = webhook_configurations(
        target=ServiceTarget("guard", "guard"),
        ca_bundle=b"ca",
        allowed_gateway_classes=("internal",),
        allowed_gateways=(("infra", "internal"),),
    )
    by_name = {w["name"]: w for w in validating["webhooks"]}
    assert by_name["enforce-gateways.clusterip-guard.io"]["matchConditions"] == [
        gateway_match_condition(("internal",))
    ]
    assert by_name["enforce-routes.clusterip-guard.io"]["matchConditions"] == [
        route_match_condition((("infra", "internal"),))
    ]


def test_check_judges_gateways_and_routes_and_fix_leaves_them_for_their_author() -> None:
    documents = [
        gateway("public"),
        gateway("internal", name="ok-gateway"),
        route(parent("public", "infra"), kind="GRPCRoute"),
        route(parent("internal", "infra"), name="ok-route"),
    ]
    files = [ManifestFile("f.yaml", documents)]
    report = check_files(files, mode="mutate", policy=POLICY, today=TODAY)
    verdicts = {(r.kind, r.name): r.decision.verdict for r in report.results}
    assert verdicts == {
        ("Gateway", "edge"): "denied",
        ("Gateway", "ok-gateway"): "allowed",
        ("GRPCRoute", "web"): "denied",
        ("HTTPRoute", "ok-route"): "allowed",
    }
    assert report.needs_change
    assert fixed_documents(files[0], report, POLICY) == documents


def test_scan_reports_gateways_and_routes_under_their_own_rules() -> None:
    findings = scan(
        [NamespaceInfo("shop", {"clusterip-guard.io/mode": "enforce"})],
        [],
        default_mode="off",
        policy=POLICY,
        today=TODAY,
        gateway_api=[
            gateway("public"),
            route(parent("public", "infra"), api_version="gateway.networking.k8s.io/v1beta1"),
            route(mesh_parent(), name="mesh"),
        ],
    )
    by_name = {f.name: f for f in findings}
    assert by_name["edge"].result == "fail"
    assert by_name["edge"].severity == "high"
    assert by_name["web"].kind == "HTTPRoute"
    assert by_name["web"].api_version == "gateway.networking.k8s.io/v1beta1"
    assert "exposed, kept as an existing violation" in by_name["web"].message
    assert by_name["mesh"].result == "pass"
    now = datetime.datetime(2026, 11, 24, tzinfo=datetime.UTC)
    (report, *_) = build_reports(findings, report_format="wgpolicyk8s", now=now)
    rules = {
        (r["resources"][0]["kind"], r["resources"][0]["name"]): r["rule"] for r in report["results"]
    }
    assert rules == {
        ("Gateway", "edge"): GATEWAY_RULE,
        ("HTTPRoute", "web"): ROUTE_RULE,
        ("HTTPRoute", "mesh"): ROUTE_RULE,
    }


# --- the native engine ------------------------------------------------------------------------


def _named(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(o for o in objects if o["metadata"]["name"] == name)


def test_the_native_policies_match_every_kind_at_every_version() -> None:
    objects = native_objects(POLICY, name="n")
    for name in ("n-gateway-exposure", "n-gateway-exposure-warnings"):
        rules = _named(objects, name)["spec"]["matchConstraints"]["resourceRules"]
        assert {g for r in rules for g in r["apiGroups"]} == {GATEWAY_GROUP}
        assert {v for r in rules for v in r["apiVersions"]} == {"*"}
        resources = {res for r in rules for res in r["resources"]}
        plain = {"gateways", "httproutes", "grpcroutes", "tlsroutes", "tcproutes", "udproutes"}
        assert resources == plain | {f"{r}/status" for r in plain}
    bindings = [o for o in objects if o["metadata"]["name"].startswith("n-gateway-exposure-")]
    assert bindings


def test_the_native_policies_read_the_policys_globs_and_say_its_fix() -> None:
    policy = _named(native_objects(POLICY, name="n"), "n-gateway-exposure")
    pieces = next(v for v in policy["spec"]["variables"] if v["name"] == "pieces")["expression"]
    assert text(glob_regex("edge-?")) in pieces
    assert text(glob_regex("private-*")) in pieces
    rendered = json.dumps(policy)
    assert "attach the route to an allowed Gateway (infra/internal, team-*/edge-?)" in rendered
    assert "use an allowed gateway class (internal, private-*)" in rendered
    # Every field read defensively: the object's schema is a CRD's, of any version.
    assert "has(object.spec) && has(object.spec.parentRefs)" in rendered
    assert "has(p.group)" in rendered
    assert "has(p.namespace)" in rendered


def test_the_native_warning_policy_costs_a_create_nothing_without_such_an_exemption() -> None:
    """Only an UPDATE can keep a piece: without a Gateway API exemption the policy's rules
    match UPDATEs alone (matched before any CEL input is built, unlike a match condition)."""

    def judged(policy: PolicySettings) -> tuple[list[str], list[list[str]]]:
        spec = gateway_warning_policy(policy, name="n", default_mode="off")["spec"]
        conditions = [c["name"] for c in spec["matchConditions"]]
        return conditions, [r["operations"] for r in spec["matchConstraints"]["resourceRules"]]

    base = ["gateway-class-not-allowed", "route-parent-not-allowed"]
    others = (Exemption("*", "legacy-*", "appliance"), Exemption("*", "x", "p", kind="Ingress"))
    assert judged(PolicySettings(exemptions=others)) == (base, [["UPDATE"], ["UPDATE"]])
    exempted = (*others, Exemption("shop", "legacy-*", "portal", kind="TCPRoute"))
    both = ["CREATE", "UPDATE"]
    assert judged(PolicySettings(exemptions=exempted)) == (base, [both, both])


def test_the_native_engine_takes_every_glob_the_policy_file_takes() -> None:
    """(No glob fnmatch translates becomes a pattern RE2 refuses: tests/unit/test_native.py.)"""
    policy = PolicySettings(
        allowed_gateway_classes=("a[!b]c", "*", "x?"), allowed_gateways=(("[a-c]*", "*"),)
    )
    assert native_supports(policy) is None
