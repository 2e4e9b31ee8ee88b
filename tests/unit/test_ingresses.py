"""Ingresses (core/ingresses.py): the classes they name, and how admission, `check` and `scan`
judge them. Decisions per mode are rows of tests/unit/test_decision.py."""

from __future__ import annotations

import datetime
import json

from clusterip_guard.core.decision import decide
from clusterip_guard.core.ingresses import ANNOTATION_FIELD, CLASS_FIELD, named_classes
from clusterip_guard.core.match_conditions import exact_ingress_classes, ingress_match_condition
from clusterip_guard.core.native.ingresses import ingress_warning_policy
from clusterip_guard.core.offline import ManifestFile, check_files
from clusterip_guard.core.policy import Exemption, PolicySettings
from clusterip_guard.core.reports import INGRESS_RULE, build_reports
from clusterip_guard.core.review import change_of, parse_review
from clusterip_guard.core.scan import NamespaceInfo, scan
from tests.support.builders import admission_review, ingress

TODAY = datetime.date(2026, 11, 24)
ANNOTATION = "kubernetes.io/ingress.class"
POLICY = PolicySettings(allowed_ingress_classes=("internal", "private-*"))


def test_the_field_and_an_annotation_naming_another_class_are_both_named() -> None:
    assert named_classes(ingress("internal")) == [(CLASS_FIELD, "internal")]
    assert named_classes(ingress(annotations={ANNOTATION: "public"})) == [
        (ANNOTATION_FIELD, "public")
    ]
    both = ingress("internal", annotations={ANNOTATION: "public"})
    assert named_classes(both) == [(CLASS_FIELD, "internal"), (ANNOTATION_FIELD, "public")]
    same = ingress("internal", annotations={ANNOTATION: "internal"})
    assert named_classes(same) == [(CLASS_FIELD, "internal")]
    assert named_classes(ingress()) == []


def test_an_empty_class_is_never_allowed_whatever_the_glob() -> None:
    assert not PolicySettings(allowed_ingress_classes=("*",)).ingress_class_allowed("")
    assert PolicySettings(allowed_ingress_classes=("*",)).ingress_class_allowed("public")


def test_an_ingress_review_is_judged_and_its_status_writes_too() -> None:
    review = admission_review(
        ingress("public"), kind="Ingress", group="networking.k8s.io", operation="CREATE"
    )
    change = change_of(parse_review(json.dumps(review).encode()))
    assert change is not None
    decision = decide(change, "enforce", POLICY, today=TODAY)
    assert decision.verdict == "denied"
    assert decision.denial.startswith("Ingress shop/web would be reachable from outside")
    assert "use an allowed ingress class (internal, private-*)" in decision.denial
    status = admission_review(
        ingress("internal", annotations={ANNOTATION: "public"}),
        kind="Ingress",
        group="networking.k8s.io",
        operation="UPDATE",
        old=ingress("internal"),
        sub_resource="status",
    )
    change = change_of(parse_review(json.dumps(status).encode()))
    assert change is not None
    assert decide(change, "enforce", POLICY, today=TODAY).verdict == "denied"


def test_only_exact_allowed_classes_are_left_out_by_the_registration() -> None:
    assert exact_ingress_classes(("public", "private-*", "a[b]", "x?")) == ["public"]
    expression = ingress_match_condition(("internal", "private-*"))["expression"]
    assert "c in ['internal']" in expression


def test_check_judges_an_ingress_and_fix_leaves_it_for_its_author() -> None:
    files = [ManifestFile("f.yaml", [ingress("public"), ingress("internal", name="ok")])]
    report = check_files(files, mode="mutate", policy=POLICY, today=TODAY)
    verdicts = {(r.kind, r.name): r.decision.verdict for r in report.results}
    assert verdicts == {("Ingress", "web"): "denied", ("Ingress", "ok"): "allowed"}
    assert report.needs_change


def test_scan_reports_an_ingress_under_its_own_rule() -> None:
    findings = scan(
        [NamespaceInfo("shop", {"clusterip-guard.io/mode": "enforce"})],
        [],
        default_mode="off",
        policy=POLICY,
        today=TODAY,
        ingresses=[ingress("public"), ingress("internal", name="ok")],
    )
    by_name = {f.name: f for f in findings}
    assert by_name["web"].result == "fail"
    assert by_name["web"].kind == "Ingress"
    assert by_name["web"].api_version == "networking.k8s.io/v1"
    assert by_name["web"].severity == "high"
    assert by_name["ok"].result == "pass"
    now = datetime.datetime(2026, 11, 24, tzinfo=datetime.UTC)
    (report, *_) = build_reports(findings, report_format="wgpolicyk8s", now=now)
    rules = {r["resources"][0]["name"]: r["rule"] for r in report["results"]}
    assert rules == {"ok": INGRESS_RULE, "web": INGRESS_RULE}


def test_the_native_warning_policy_costs_a_create_nothing_without_an_ingress_exemption() -> None:
    """Only an UPDATE can keep a class; a CREATE is warned of only when an Ingress exemption
    is in force (a Service's or a Pod's exemption is not)."""

    def judged(policy: PolicySettings) -> tuple[list[str], list[list[str]]]:
        spec = ingress_warning_policy(policy, name="n", default_mode="off")["spec"]
        conditions = [c["name"] for c in spec["matchConditions"]]
        return conditions, [r["operations"] for r in spec["matchConstraints"]["resourceRules"]]

    others = (Exemption("*", "legacy-*", "appliance"), Exemption("*", "x", "node", kind="Pod"))
    assert judged(PolicySettings(exemptions=others)) == (
        ["ingress-class-not-allowed"], [["UPDATE"]],
    )  # fmt: skip
    exempted = (*others, Exemption("shop", "legacy-*", "portal", kind="Ingress"))
    assert judged(PolicySettings(exemptions=exempted)) == (
        ["ingress-class-not-allowed"], [["CREATE", "UPDATE"]],
    )  # fmt: skip
