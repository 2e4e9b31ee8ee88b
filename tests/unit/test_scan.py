"""Judging existing Services (core/scan.py) and the reports made of them (core/reports.py)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from clusterip_guard.cluster.writing import stored_as_wanted
from clusterip_guard.core.policy import Exemption, PolicySettings
from clusterip_guard.core.reports import build_reports, carry_timestamps
from clusterip_guard.core.scan import NamespaceInfo, namespace_mode, scan, summary
from clusterip_guard.core.workloads import workload_kind
from tests.support.builders import service

TODAY = datetime.date(2026, 11, 29)
NOW = datetime.datetime(2026, 11, 29, 12, 0, tzinfo=datetime.UTC)
LABEL = "clusterip-guard.io/mode"


@pytest.mark.parametrize(
    ("namespace", "labels", "default", "mode", "source"),
    [
        ("shop", {LABEL: "audit"}, "off", "audit", "label"),
        ("shop", {}, "mutate", "mutate", "cluster default"),
        ("shop", {LABEL: "Enforce"}, "off", "enforce", "not a mode"),
        ("kube-system", {LABEL: "enforce"}, "enforce", "off", "never judged"),
    ],
)  # fmt: skip
def test_a_namespace_is_judged_as_the_webhook_configurations_select_it(
    namespace: str, labels: dict[str, str], default: str, mode: str, source: str
) -> None:
    found = namespace_mode(namespace, labels, default_mode=default)  # type: ignore[arg-type]
    assert (found.mode, found.source) == (mode, source)


def test_what_if_overrides_every_judged_namespace_but_not_the_system_ones() -> None:
    assert namespace_mode("shop", {LABEL: "off"}, default_mode="off", what_if="enforce").mode == (
        "enforce"
    )
    assert namespace_mode("kube-system", {}, default_mode="off", what_if="enforce").source == (
        "never judged"
    )


def judged(
    labels: dict[str, str], *services: dict[str, Any], policy: PolicySettings | None = None
) -> dict[str, tuple[str, str]]:
    findings = scan(
        [NamespaceInfo("shop", labels)], list(services), default_mode="off",
        policy=policy or PolicySettings(), today=TODAY,
    )  # fmt: skip
    return {f.name: (f.result, f.enforce) for f in findings}


@pytest.mark.parametrize(
    ("labels", "result"),
    [({LABEL: "audit"}, "fail"), ({LABEL: "enforce"}, "fail"), ({LABEL: "mutate"}, "fail"),
     ({LABEL: "off"}, "warn"), ({}, "warn")],
)  # fmt: skip
def test_an_exposed_service_fails_where_it_is_judged_and_warns_where_it_is_not(
    labels: dict[str, str], result: str
) -> None:
    found = judged(labels, service("NodePort"), service("ClusterIP", name="inside"))
    assert found == {"web": (result, "deny"), "inside": ("pass", "allow")}


def test_an_exemption_skips_until_its_last_day() -> None:
    def exempt(expires: datetime.date) -> PolicySettings:
        return PolicySettings(exemptions=(Exemption("shop", "we*", "vendor", expires),))

    assert judged({LABEL: "audit"}, service("NodePort"), policy=exempt(TODAY)) == {
        "web": ("skip", "allow")
    }
    yesterday = TODAY - datetime.timedelta(days=1)
    assert judged({LABEL: "audit"}, service("NodePort"), policy=exempt(yesterday)) == {
        "web": ("fail", "deny")
    }


def test_a_service_whose_namespace_is_gone_is_judged_as_unlabelled() -> None:
    findings = scan([], [service("NodePort", namespace="gone")], default_mode="enforce",
                    policy=PolicySettings(), today=TODAY)  # fmt: skip
    assert [(f.namespace.source, f.result) for f in findings] == [("cluster default", "fail")]


def test_mutate_says_what_it_would_change_and_severity_follows_what_the_internet_reaches() -> None:
    findings = scan(
        [NamespaceInfo("shop", {LABEL: "audit"})],
        [service("NodePort"), service("LoadBalancer", name="public")],
        default_mode="off", policy=PolicySettings(), today=TODAY,
    )  # fmt: skip
    by_name = {f.name: f for f in findings}
    assert "set spec.type=ClusterIP" in by_name["web"].mutate
    assert by_name["web"].severity == "medium"
    assert by_name["public"].severity == "high"


def reports_of(*services: dict[str, Any]) -> list[dict[str, Any]]:
    namespaces = [NamespaceInfo("shop", {LABEL: "audit"}), NamespaceInfo("edge", {})]
    findings = scan(namespaces, list(services), default_mode="off", policy=PolicySettings(),
                    today=TODAY)  # fmt: skip
    return build_reports(findings, report_format="wgpolicyk8s", now=NOW)


def test_one_report_per_namespace_with_services_and_a_cluster_summary() -> None:
    reports = reports_of(service("NodePort"), service(name="inside"),
                         service("NodePort", name="gate", namespace="edge"))  # fmt: skip
    assert [(r["kind"], r["metadata"].get("namespace")) for r in reports] == [
        ("PolicyReport", "edge"), ("PolicyReport", "shop"), ("ClusterPolicyReport", None),
    ]  # fmt: skip
    shop = reports[1]
    assert shop["summary"] == {"pass": 1, "fail": 1, "warn": 0, "skip": 0, "error": 0}
    assert [r["result"] for r in shop["results"]] == ["pass", "fail"]  # inside, web
    cluster = reports[2]
    assert [r["result"] for r in cluster["results"]] == ["warn", "fail"]  # edge, shop


def test_the_openreports_format_has_the_same_results_under_its_own_kinds() -> None:
    findings = scan([NamespaceInfo("shop", {})], [service("NodePort")], default_mode="audit",
                    policy=PolicySettings(), today=TODAY)  # fmt: skip
    wg = build_reports(findings, report_format="wgpolicyk8s", now=NOW)
    opened = build_reports(findings, report_format="openreports", now=NOW)
    assert [r["apiVersion"] for r in opened] == ["openreports.io/v1alpha1"] * 2
    assert [r["kind"] for r in opened] == ["Report", "ClusterReport"]
    assert [r["results"] for r in opened] == [r["results"] for r in wg]
    assert opened[0]["source"] == "clusterip-guard"


def test_a_result_that_says_the_same_keeps_its_timestamp_and_nothing_differs() -> None:
    first = reports_of(service("NodePort"))[0]
    later = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
    findings = scan([NamespaceInfo("shop", {LABEL: "audit"})], [service("NodePort")],
                    default_mode="off", policy=PolicySettings(), today=later.date())  # fmt: skip
    again = build_reports(findings, report_format="wgpolicyk8s", now=later)[0]
    assert again["results"][0]["timestamp"] != first["results"][0]["timestamp"]
    carried = carry_timestamps(again, first)
    assert carried["results"][0]["timestamp"] == first["results"][0]["timestamp"]
    assert stored_as_wanted(carried, first)


def test_a_changed_result_differs_and_takes_the_new_timestamp() -> None:
    first = reports_of(service("NodePort"))[0]
    fixed = reports_of(service("ClusterIP"))[0]
    carried = carry_timestamps(fixed, first)
    assert not stored_as_wanted(carried, first)
    assert carried["results"][0]["result"] == "pass"


def test_summary_counts_every_result() -> None:
    findings = scan([NamespaceInfo("shop", {LABEL: "audit"})],
                    [service("NodePort"), service(name="a"), service(name="b")],
                    default_mode="off", policy=PolicySettings(), today=TODAY)  # fmt: skip
    assert summary(findings) == {"pass": 2, "fail": 1, "warn": 0, "skip": 0}


def test_workloads_and_pods_no_workload_controls_are_reported_beside_services() -> None:
    apps, core = workload_kind("apps", "Deployment"), workload_kind("", "Pod")
    assert apps is not None
    assert core is not None

    def pod_spec(host_port: int | None) -> dict[str, Any]:
        port: dict[str, Any] = {"containerPort": 80}
        if host_port is not None:
            port["hostPort"] = host_port
        return {"containers": [{"name": "nginx", "ports": [port]}]}

    def meta(name: str, owner: str | None = None) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": name, "namespace": "shop", "uid": f"uid-{name}"}
        if owner is not None:
            metadata["ownerReferences"] = [{"kind": owner, "name": "x", "controller": True}]
        return metadata

    workloads = [
        (apps, {"metadata": meta("web"), "spec": {"template": {"spec": pod_spec(8088)}}}),
        (apps, {"metadata": meta("api"), "spec": {"template": {"spec": pod_spec(None)}}}),
        # Made from the Deployment's template: reported as the Deployment.
        (core, {"metadata": meta("web-1", owner="ReplicaSet"), "spec": pod_spec(8088)}),
        # A custom controller's Pod, and a bare one: judged as they are.
        (core, {"metadata": meta("job-1", owner="Rollout"), "spec": pod_spec(9000)}),
    ]
    findings = scan(
        [NamespaceInfo("shop", {LABEL: "enforce"})], [service("web", type="NodePort")],
        default_mode="off", policy=PolicySettings(), today=TODAY, workloads=workloads,
    )  # fmt: skip
    assert [(f.kind, f.name, f.result) for f in findings] == [
        ("Deployment", "api", "pass"),
        ("Pod", "job-1", "fail"),
        ("Deployment", "web", "fail"),
        ("Service", "web", "fail"),
    ]
    reports = build_reports(findings, report_format="wgpolicyk8s", now=NOW)
    results = {
        (r["resources"][0]["kind"], r["resources"][0]["name"]): r for r in reports[0]["results"]
    }
    web = results["Deployment", "web"]
    assert web["resources"][0]["apiVersion"] == "apps/v1"
    assert web["rule"] == "pods-open-no-host-ports"
    assert "type" not in web["properties"]
    assert (
        web["properties"]["mutate"] == "removed spec.template.spec.containers[0].ports[0].hostPort"
    )
    assert results["Service", "web"]["rule"] == "services-stay-internal"
    # The namespace's summary counts every object.
    assert reports[-1]["results"][0]["message"].startswith("3 of 4 objects exposed")


def test_findings_printed_a_namespace_at_a_time_read_as_one_list_printed_at_the_end() -> None:
    import io
    import json as json_module

    import yaml

    from clusterip_guard.cli.scan import FindingsPrinter, Output, finding_as_json
    from clusterip_guard.core.scan import Tally
    from clusterip_guard.yamltext import dump_yaml_documents

    findings = scan(
        [NamespaceInfo("shop", {LABEL: "audit"}), NamespaceInfo("edge", {})],
        [service("NodePort", name="a"), service(name="b"), service("NodePort", namespace="edge")],
        default_mode="off", policy=PolicySettings(), today=TODAY,
    )  # fmt: skip
    whole = [finding_as_json(f) for f in findings]
    outputs: tuple[tuple[Output, str], ...] = (
        ("json", json_module.dumps(whole, indent=2) + "\n"),
        ("yaml", dump_yaml_documents([whole])),
    )
    for output, expected in outputs:
        printed = io.StringIO()
        printer = FindingsPrinter(output, printed)
        for namespace in ("edge", "shop"):
            printer.add([f for f in findings if f.namespace.namespace == namespace])
        printer.finish(Tally.of(findings))
        assert printed.getvalue() == expected
    for output, read in (("json", json_module.loads), ("yaml", yaml.safe_load)):
        printed = io.StringIO()
        FindingsPrinter(output, printed).finish(Tally())
        assert read(printed.getvalue()) == []
