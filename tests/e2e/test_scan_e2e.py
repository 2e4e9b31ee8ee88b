"""`clusterip-guard scan` on the real API server: Services created before any webhook was
registered, judged and reported, as a table, JSON and PolicyReports in both formats; fixes,
deletions, relabels and expiries seen by the next scan; two scanners at once; the watch; and
the least RBAC the scanner needs, proven by running it as a ServiceAccount with only that.

A control plane of its own: `scan -A` sees every namespace, and those of other modules would
change its counts.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from localcluster import ControlPlane, start
from tests.support.chart import render, the
from tests.support.cli import clusterip_guard
from tests.support.gateway_api import gateway, install_crds, parent, route, service_parent
from tests.support.kubectl import Kubectl
from tests.support.paths import ROOT
from tests.support.polling import until
from tests.support.tools import go_module_dir

pytestmark = pytest.mark.e2e

MODE_LABEL = "clusterip-guard.io/mode"
POLICY = """\
exemptions:
  - namespace: edge
    name: ingress*
    reason: the ingress controller
  - namespace: legacy
    name: old-*
    reason: a migration that was due long ago
    expires: 2020-01-31
"""
WG = ("policyreports.wgpolicyk8s.io", "clusterpolicyreports.wgpolicyk8s.io")
OPEN = ("reports.openreports.io", "clusterreports.openreports.io")


class Cluster:
    def __init__(self, control_plane: ControlPlane, policy_file: Path) -> None:
        self.control_plane = control_plane
        self.kubectl = Kubectl(control_plane.kubeconfig)
        self.policy_file = policy_file

    def scan(
        self, *args: str, kubeconfig: Path | None = None, policy: bool = True
    ) -> subprocess.CompletedProcess[str]:
        extra = ["--policy-file", str(self.policy_file)] if policy else []
        where = kubeconfig or self.control_plane.kubeconfig
        return clusterip_guard(where, "scan", *extra, *args)

    def report(self, resource: str, namespace: str | None = None) -> dict[str, Any]:
        where = ["-n", namespace] if namespace else []
        got = self.kubectl(*where, "get", resource, "clusterip-guard", "-o", "json")
        found: dict[str, Any] = json.loads(got.stdout)
        return found

    def reports(self, resource: str) -> list[dict[str, Any]]:
        got = self.kubectl("get", resource, "-A", "-o", "json")
        items: list[dict[str, Any]] = json.loads(got.stdout)["items"]
        return items


HOST_PORT_DAEMON_SET = {
    "apiVersion": "apps/v1",
    "kind": "DaemonSet",
    "metadata": {"name": "agent"},
    "spec": {
        "selector": {"matchLabels": {"app": "agent"}},
        "template": {
            "metadata": {"labels": {"app": "agent"}},
            "spec": {
                "containers": [
                    {"name": "agent", "image": "agent:1",
                     "ports": [{"containerPort": 9100, "hostPort": 9100}]}
                ]
            },
        },
    },
}  # fmt: skip


def results_by_service(report: dict[str, Any]) -> dict[str, str]:
    return {r["resources"][0]["name"]: r["result"] for r in report["results"]}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    folder = tmp_path_factory.mktemp("scan")
    policy_file = folder / "policy.yaml"
    policy_file.write_text(POLICY)
    with start(folder / "cp", audit_log=False) as control_plane:
        found = Cluster(control_plane, policy_file)
        k = found.kubectl
        # Before clusterip-guard: nothing judged these when they were created.
        for namespace in ("edge", "legacy", "shop"):
            k("create", "namespace", namespace)
        k("label", "namespace", "shop", f"{MODE_LABEL}=audit")
        k("-n", "edge", "create", "service", "loadbalancer", "ingress", "--tcp=443")
        k("-n", "legacy", "create", "service", "nodeport", "old-app", "--tcp=80")
        k("-n", "legacy", "create", "service", "clusterip", "db", "--tcp=5432")
        k("-n", "shop", "create", "service", "nodeport", "web", "--tcp=80")
        k("-n", "shop", "create", "service", "clusterip", "inside", "--tcp=80")
        k("-n", "shop", "create", "service", "clusterip", "cache", "--tcp=6379")
        # A door that is not a Service: reported beside them.
        k("create", "namespace", "agents")
        k("-n", "agents", "apply", "-f", "-", stdin=json.dumps(HOST_PORT_DAEMON_SET))
        yield found


def readme_scan_example() -> tuple[str, str]:
    """The command and the output the README shows."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- scan-example:[^\n]*-->\n```\n(.*?)```", text, re.DOTALL)
    assert block is not None, "README has no scan example"
    command, _, output = block.group(1).partition("\n")
    return command.removeprefix("$ "), output


def test_the_table_is_what_the_readme_shows(cluster: Cluster) -> None:
    command, shown = readme_scan_example()
    assert command == "clusterip-guard scan --policy-file policy.yaml"
    run = cluster.scan()
    assert run.returncode == 1, run.stderr  # shop/web fails
    assert run.stdout == shown


def test_json_judges_every_service_and_honours_exemptions_and_their_expiry(
    cluster: Cluster,
) -> None:
    run = cluster.scan("-o", "json")
    found = {(f["namespace"], f["name"]): f for f in json.loads(run.stdout)}
    assert len(found) == 8  # default/kubernetes too, and the DaemonSet
    agent = found["agents", "agent"]
    assert (agent["kind"], agent["result"], agent["enforce"]) == ("DaemonSet", "warn", "deny")
    assert agent["mutate"] == ["removed spec.template.spec.containers[0].ports[0].hostPort"]
    ingress = found["edge", "ingress"]
    assert ingress["result"] == "skip"
    assert ingress["exemption"] == "exemption edge/ingress* (the ingress controller)"
    old = found["legacy", "old-app"]  # its exemption ended in 2020
    assert (old["result"], old["mode"], old["modeSource"]) == ("warn", "off", "cluster default")
    assert "exemption" not in old
    web = found["shop", "web"]
    assert (web["result"], web["mode"], web["enforce"]) == ("fail", "audit", "deny")
    assert "set spec.type=ClusterIP" in web["mutate"]
    assert web["exposure"] == [
        {
            "field": "spec.type",
            "message": "type NodePort opens a port on every node; use type ClusterIP",
        }
    ]
    assert found["shop", "inside"]["result"] == "pass"
    yaml_run = cluster.scan("-o", "yaml")
    assert yaml.safe_load(yaml_run.stdout) == json.loads(run.stdout)


def test_what_if_enforce_answers_what_would_break(cluster: Cluster) -> None:
    run = cluster.scan("--what-if", "enforce", "-n", "legacy")
    assert run.returncode == 1
    assert "legacy     enforce (what-if)" in run.stdout
    assert "old-app" in run.stdout
    assert run.stdout.splitlines()[-1] == "2 Services in 1 namespace: 1 fail, 1 pass"


def test_a_selector_on_namespaces_scans_only_those(cluster: Cluster) -> None:
    run = cluster.scan("-l", f"{MODE_LABEL}=audit", "-o", "json")
    assert {f["namespace"] for f in json.loads(run.stdout)} == {"shop"}


def test_reports_in_both_formats_one_result_per_service(cluster: Cluster) -> None:
    run = cluster.scan("--write-reports", "--install-crds", "--report-format", "both")
    assert run.returncode == 1, run.stderr
    assert "created CRD policyreports.wgpolicyk8s.io" in run.stderr
    assert "created PolicyReport shop/clusterip-guard" in run.stderr
    for namespaced, cluster_wide in (WG, OPEN):
        shop = cluster.report(namespaced, "shop")
        assert results_by_service(shop) == {"cache": "pass", "inside": "pass", "web": "fail"}
        assert shop["summary"] == {"pass": 2, "fail": 1, "warn": 0, "error": 0, "skip": 0}
        (web,) = [r for r in shop["results"] if r["resources"][0]["name"] == "web"]
        assert web["source"] == "clusterip-guard"
        assert web["policy"] == "clusterip-guard"
        assert web["rule"] == "services-stay-internal"
        assert web["severity"] == "medium"
        assert "audit mode reports it" in web["message"]
        assert web["resources"][0]["kind"] == "Service"
        assert web["timestamp"]["seconds"] > 0
        summary = cluster.report(cluster_wide)
        namespaces = {r["resources"][0]["name"]: r["result"] for r in summary["results"]}
        assert namespaces == {
            "agents": "warn", "default": "pass", "edge": "skip", "legacy": "warn", "shop": "fail",
        }  # fmt: skip
        (agent,) = cluster.report(namespaced, "agents")["results"]
        assert agent["rule"] == "pods-open-no-host-ports"
        assert agent["resources"][0]["kind"] == "DaemonSet"
        assert agent["resources"][0]["apiVersion"] == "apps/v1"
    assert cluster.report(OPEN[0], "shop")["source"] == "clusterip-guard"


def resource_versions(cluster: Cluster) -> dict[str, str]:
    return {
        f"{item['kind']} {item['metadata'].get('namespace')}": item["metadata"]["resourceVersion"]
        for resource in (*WG, *OPEN)
        for item in cluster.reports(resource)
    }


def test_a_scan_that_finds_nothing_new_writes_nothing(cluster: Cluster) -> None:
    before = resource_versions(cluster)
    run = cluster.scan("--write-reports", "--report-format", "both")
    assert run.stderr.count("reports unchanged") == 2, run.stderr
    assert "updated" not in run.stderr
    assert resource_versions(cluster) == before


def test_a_fixed_service_passes_a_deleted_one_disappears_and_an_empty_namespace_is_pruned(
    cluster: Cluster,
) -> None:
    k = cluster.kubectl
    since = cluster.report(WG[0], "shop")["results"]
    k("-n", "shop", "patch", "service", "web", "--type=json", "-p", json.dumps([
        {"op": "replace", "path": "/spec/type", "value": "ClusterIP"},
        {"op": "remove", "path": "/spec/ports/0/nodePort"},
        {"op": "remove", "path": "/spec/externalTrafficPolicy"},
    ]))  # fmt: skip
    k("-n", "shop", "delete", "service", "cache")
    k("-n", "edge", "delete", "service", "ingress")
    run = cluster.scan("--write-reports")
    assert run.returncode == 0, run.stdout + run.stderr  # nothing fails any more
    assert "updated PolicyReport shop/clusterip-guard" in run.stderr
    assert "pruned PolicyReport edge/clusterip-guard" in run.stderr
    shop = cluster.report(WG[0], "shop")
    assert results_by_service(shop) == {"inside": "pass", "web": "pass"}
    # A result that says what it said keeps its timestamp: since when it has been so.
    kept = {r["resources"][0]["name"]: r["timestamp"] for r in since}
    (inside,) = [r for r in shop["results"] if r["resources"][0]["name"] == "inside"]
    assert inside["timestamp"] == kept["inside"]
    assert "edge" not in {r["metadata"]["namespace"] for r in cluster.reports(WG[0])}


def test_a_relabelled_namespace_shows_its_new_mode(cluster: Cluster) -> None:
    cluster.kubectl("label", "namespace", "legacy", f"{MODE_LABEL}=enforce")
    try:
        run = cluster.scan("--write-reports")
        assert "legacy     enforce (label)" in run.stdout
        (old,) = [
            r for r in cluster.report(WG[0], "legacy")["results"]
            if r["resources"][0]["name"] == "old-app"
        ]  # fmt: skip
        assert old["result"] == "fail"
        assert old["properties"]["mode"] == "enforce (label)"
        assert "kept as an existing violation" in old["message"]
    finally:
        cluster.kubectl("label", "namespace", "legacy", f"{MODE_LABEL}-")


def test_a_server_dry_run_leaves_no_trace(cluster: Cluster) -> None:
    cluster.kubectl("-n", "shop", "create", "service", "nodeport", "probe", "--tcp=81",
                    "--dry-run=server")  # fmt: skip
    run = cluster.scan("-n", "shop", "-o", "json")
    assert "probe" not in {f["name"] for f in json.loads(run.stdout)}


def test_two_scanners_at_once_leave_one_consistent_set(cluster: Cluster) -> None:
    cluster.kubectl("-n", "shop", "create", "service", "nodeport", "again", "--tcp=82")
    runs: list[subprocess.CompletedProcess[str]] = []
    scanners = [
        threading.Thread(target=lambda: runs.append(cluster.scan("--write-reports")))
        for _ in range(2)
    ]
    for scanner in scanners:
        scanner.start()
    for scanner in scanners:
        scanner.join()
    assert [r.returncode for r in runs] == [1, 1], [r.stderr for r in runs]
    namespaces = [r["metadata"]["namespace"] for r in cluster.reports(WG[0])]
    assert sorted(namespaces) == sorted(set(namespaces))  # one report per namespace
    assert results_by_service(cluster.report(WG[0], "shop"))["again"] == "fail"
    settled = cluster.scan("--write-reports")  # a third finds nothing to change
    assert "updated" not in settled.stderr
    assert "created" not in settled.stderr
    cluster.kubectl("-n", "shop", "delete", "service", "again")


def test_the_scanner_needs_no_more_than_its_role(cluster: Cluster, tmp_path: Path) -> None:
    k = cluster.kubectl
    # The chart's reports component's own ClusterRole, as the chart renders it.
    role = the("ClusterRole", render("reports.enabled=true", namespace="scanning"),
               "clusterip-guard-reports-scanning")  # fmt: skip
    k("apply", "-f", "-", stdin=json.dumps(role))
    k("create", "namespace", "scanning")
    k("-n", "scanning", "create", "serviceaccount", "scanner")
    k("create", "clusterrolebinding", "scanner", f"--clusterrole={role['metadata']['name']}",
      "--serviceaccount=scanning:scanner")  # fmt: skip
    token = k("-n", "scanning", "create", "token", "scanner").stdout.strip()
    admin = yaml.safe_load(cluster.control_plane.kubeconfig.read_text())
    config = {
        **admin,
        "users": [{"name": "scanner", "user": {"token": token}}],
        "contexts": [{"name": "scanner", "context": {
            "cluster": admin["clusters"][0]["name"], "user": "scanner"}}],
        "current-context": "scanner",
    }  # fmt: skip
    kubeconfig = tmp_path / "scanner-kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    # The chart gives it the default mode; it never reads the webhook configurations.
    run = cluster.scan("--write-reports", "--report-format", "both", "--default-mode", "off",
                       kubeconfig=kubeconfig)  # fmt: skip
    assert run.returncode in (0, 1), run.stderr
    assert "Traceback" not in run.stderr
    # And no more: it may not touch Services, nor install CRDs.
    denied = cluster.scan("--install-crds", kubeconfig=kubeconfig)
    assert denied.returncode == 3, denied.stderr


def test_the_shipped_crds_are_the_upstream_ones() -> None:
    shipped = ROOT / "app" / "clusterip_guard" / "crds"
    kyverno = go_module_dir("github.com/kyverno/kyverno", "v1.15.2")
    openreports = go_module_dir("github.com/openreports/reports-api", "v0.2.1")
    upstream = {
        **{p.name: p for p in (kyverno / "config" / "crds" / "policyreport").glob("*.yaml")},
        **{p.name: p for p in (openreports / "config" / "crd").glob("*.yaml")},
    }
    files = sorted(shipped.glob("*.yaml"))
    assert [f.name for f in files] == sorted(upstream)
    for file in files:
        assert file.read_bytes() == upstream[file.name].read_bytes(), file.name


def test_watch_keeps_reports_current_with_one_writer(cluster: Cluster, tmp_path: Path) -> None:
    logs = [tmp_path / f"scanner-{n}.log" for n in range(2)]
    command = [sys.executable, "-m", "clusterip_guard.cli.main", "scan", "--watch",
               "--write-reports", "--install-crds", "--policy-file", str(cluster.policy_file),
               "--lease-namespace", "default"]  # fmt: skip
    env = {**os.environ, "KUBECONFIG": str(cluster.control_plane.kubeconfig)}
    scanners = []
    for log in logs:
        with log.open("w") as out:
            scanners.append(subprocess.Popen(command, env=env, stdout=out, stderr=out))
    try:
        lease = ["-n", "default", "get", "lease", "clusterip-guard-scan", "-o",
                 "jsonpath={.spec.holderIdentity}"]  # fmt: skip
        assert until(lambda: cluster.kubectl(*lease, check=False).stdout, timeout=30)
        assert until(lambda: any("scanned" in log.read_text() for log in logs), timeout=30)
        cluster.kubectl("label", "namespace", "legacy", f"{MODE_LABEL}=audit")

        def relabelled() -> bool:
            results = cluster.report(WG[0], "legacy")["results"]
            return any(r["properties"]["mode"] == "audit (label)" for r in results)

        assert until(relabelled, timeout=20)
        writers = [log for log in logs if "scanned" in log.read_text()]
        assert len(writers) == 1, [log.read_text() for log in logs]
        # A broken policy file keeps the last good policy; the reports stay current.
        cluster.policy_file.write_text("exemptions: [{namespace: shop}]\n")
        cluster.kubectl("label", "namespace", "legacy", f"{MODE_LABEL}=enforce", "--overwrite")

        def enforced() -> bool:
            results = cluster.report(WG[0], "legacy")["results"]
            return any(r["properties"]["mode"] == "enforce (label)" for r in results)

        assert until(enforced, timeout=20)
        assert "keeping the last good policy" in writers[0].read_text()
    finally:
        cluster.policy_file.write_text(POLICY)
        cluster.kubectl("label", "namespace", "legacy", f"{MODE_LABEL}-")
        for scanner in scanners:
            scanner.terminate()
        for scanner in scanners:
            scanner.wait(timeout=10)
        time.sleep(0)


def test_scan_reports_a_service_account_of_a_tenant_namespace_that_may_set_the_mode(
    cluster: Cluster,
) -> None:
    """`edit` in a namespace may impersonate its ServiceAccounts: one that holds set-mode lends
    it to every editor there (issue 30, item 7; docs/security.md, "The RBAC a tenant must
    lack")."""
    k = cluster.kubectl
    k("apply", "-f", "-", stdin=json.dumps({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "mode-setter"},
        "rules": [{"apiGroups": ["clusterip-guard.io"], "resources": ["namespaces"],
                   "verbs": ["set-mode"]}]}))  # fmt: skip
    k("create", "clusterrolebinding", "deployer-sets-modes", "--clusterrole=mode-setter",
      "--serviceaccount=shop:deployer")  # fmt: skip
    k("create", "clusterrolebinding", "system-sets-modes", "--clusterrole=mode-setter",
      "--serviceaccount=kube-system:operator")  # fmt: skip
    try:
        run = cluster.scan()
        assert run.returncode == 1
        said = [line for line in run.stderr.splitlines() if "gives set-mode" in line]
        assert said == [
            "clusterip-guard: ClusterRoleBinding deployer-sets-modes gives set-mode (mode-setter)"
            " to ServiceAccount shop/deployer: whoever may impersonate ServiceAccounts in "
            "namespace shop (edit and admin may) may change the mode of the namespaces it "
            "covers; bind it to people or to a ServiceAccount in a namespace only admins edit"
        ], run.stderr
    finally:
        k("delete", "clusterrolebinding", "deployer-sets-modes", "system-sets-modes")
        k("delete", "clusterrole", "mode-setter")


# --- Gateway API: reported where the API server serves it ---------------------------------------

GATEWAY_POLICY = """\
allowedGatewayClasses: [gw-internal]
allowedGateways: [gw-infra/internal]
"""


def scanner_kubeconfig(kubectl: Kubectl, admin_kubeconfig: Path, path: Path) -> Path:
    """A kubeconfig for a ServiceAccount bound to the chart's reports ClusterRole, nothing more."""
    role = the("ClusterRole", render("reports.enabled=true", namespace="scanning"),
               "clusterip-guard-reports-scanning")  # fmt: skip
    kubectl("apply", "-f", "-", stdin=json.dumps(role))
    kubectl("create", "namespace", "scanning")
    kubectl("-n", "scanning", "create", "serviceaccount", "scanner")
    kubectl("create", "clusterrolebinding", "scanner", f"--clusterrole={role['metadata']['name']}",
            "--serviceaccount=scanning:scanner")  # fmt: skip
    token = kubectl("-n", "scanning", "create", "token", "scanner").stdout.strip()
    admin = yaml.safe_load(admin_kubeconfig.read_text())
    config = {
        **admin,
        "users": [{"name": "scanner", "user": {"token": token}}],
        "contexts": [{"name": "scanner", "context": {
            "cluster": admin["clusters"][0]["name"], "user": "scanner"}}],
        "current-context": "scanner",
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config))
    return path


def test_gateways_and_routes_are_reported_where_served_and_unsaid_where_not(
    tmp_path: Path,
) -> None:
    """A control plane of its own, first without Gateway API (the scan says nothing of it, and
    fails on nothing), then with its CRDs and a Gateway and routes stored before any guard:
    each judged, under the rules gateways-use-allowed-classes and
    routes-attach-to-allowed-gateways, also as the chart's reports role may read them."""
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(GATEWAY_POLICY)
    with start(tmp_path / "cp", audit_log=False) as plane:
        cluster = Cluster(plane, policy_file)
        k = cluster.kubectl
        k("create", "namespace", "gw-shop")
        k("label", "namespace", "gw-shop", f"{MODE_LABEL}=audit")
        k("-n", "gw-shop", "create", "service", "clusterip", "web", "--tcp=80")
        unserved = cluster.scan("-o", "json")
        assert unserved.returncode == 0, unserved.stdout + unserved.stderr
        assert {f["kind"] for f in json.loads(unserved.stdout)} == {"Service"}
        assert "gateway" not in unserved.stderr.lower()

        install_crds(k)
        objects = [
            gateway("public", "gw-public"),
            gateway("inside", "gw-internal", version="v1beta1"),
            route("HTTPRoute", "out", [parent("public")]),
            route("HTTPRoute", "in", [parent("internal", namespace="gw-infra")]),
            route("TCPRoute", "mesh", [service_parent("web")], version="v1alpha2"),
            route("TLSRoute", "split", [parent("internal", namespace="gw-infra"),
                                        parent("edge", namespace="gw-infra", section="tls")]),
        ]  # fmt: skip
        for manifest in objects:
            k("-n", "gw-shop", "create", "-f", "-", stdin=json.dumps(manifest))
        run = cluster.scan("-o", "json")
        assert run.returncode == 1, run.stderr  # audit reports what it would deny
        found = {(f["kind"], f["name"]): f for f in json.loads(run.stdout)}
        results = {key: f["result"] for key, f in found.items() if key[0] != "Service"}
        assert results == {
            ("Gateway", "public"): "fail", ("Gateway", "inside"): "pass",
            ("HTTPRoute", "out"): "fail", ("HTTPRoute", "in"): "pass",
            ("TCPRoute", "mesh"): "pass", ("TLSRoute", "split"): "fail",
        }  # fmt: skip
        assert "gateway class gw-public is not an allowed class" in str(
            found["Gateway", "public"]["exposure"]
        )
        assert "parent Gateway gw-infra/edge is not an allowed Gateway" in str(
            found["TLSRoute", "split"]["exposure"]
        )
        assert found["HTTPRoute", "out"]["enforce"] == "deny"

        written = cluster.scan("--write-reports", "--install-crds")
        assert written.returncode == 1, written.stderr
        rules = {
            (r["resources"][0]["kind"], r["resources"][0]["name"]): r["rule"]
            for r in cluster.report(WG[0], "gw-shop")["results"]
        }
        assert rules == {
            ("Service", "web"): "services-stay-internal",
            ("Gateway", "public"): "gateways-use-allowed-classes",
            ("Gateway", "inside"): "gateways-use-allowed-classes",
            ("HTTPRoute", "out"): "routes-attach-to-allowed-gateways",
            ("HTTPRoute", "in"): "routes-attach-to-allowed-gateways",
            ("TCPRoute", "mesh"): "routes-attach-to-allowed-gateways",
            ("TLSRoute", "split"): "routes-attach-to-allowed-gateways",
        }
        # The chart's reports role may read every kind it lists.
        kubeconfig = scanner_kubeconfig(k, plane.kubeconfig, tmp_path / "scanner")
        as_chart = cluster.scan("-o", "json", "--default-mode", "off", kubeconfig=kubeconfig)
        assert as_chart.returncode == 1, as_chart.stderr
        read = {(f["kind"], f["name"]): f["result"] for f in json.loads(as_chart.stdout)}
        assert {key: read[key] for key in results} == results
