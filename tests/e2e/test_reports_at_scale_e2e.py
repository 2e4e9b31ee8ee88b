"""Reports at any size, and one failed write never stops the others (docs/design.md,
"Reporting what exists (scan)"; docs/security.md, catalogue entry 23).

On a control plane of its own: a namespace with 2,600 Services (about 1.8 MB of results, past
what etcd stores in one object), a small one, and one whose reports an admission policy
refuses, as a cluster's own policy or quota might.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from localcluster import ControlPlane, start
from tests.support.cli import clusterip_guard
from tests.support.kubectl import Kubectl
from tests.support.polling import until

pytestmark = pytest.mark.e2e

CROWDED = 2600
KEPT = 900  # after the shrink
REPORTS = "policyreports.wgpolicyk8s.io"
REFUSE_REPORTS_IN_BLOCKED = """\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: no-reports-in-blocked}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - apiGroups: [wgpolicyk8s.io]
        apiVersions: ["*"]
        operations: [CREATE, UPDATE]
        resources: [policyreports]
  validations:
    - expression: "false"
      message: reports are not wanted here
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: no-reports-in-blocked}
spec:
  policyName: no-reports-in-blocked
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels: {kubernetes.io/metadata.name: blocked}
"""


def headless(name: str, **labels: str) -> dict[str, Any]:
    # Headless: no ClusterIP to allocate, and a report result as long as any other's.
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels},
        "spec": {"clusterIP": "None", "selector": {"app": name}, "ports": [{"port": 80}]},
    }


@pytest.fixture(scope="module")
def crowded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    folder = tmp_path_factory.mktemp("reports-at-scale")
    with start(folder / "cp", audit_log=False) as control_plane:
        k = Kubectl(control_plane.kubeconfig)
        for namespace in ("crowded", "small", "blocked"):
            k("create", "namespace", namespace)
        k("-n", "small", "create", "service", "nodeport", "web", "--tcp=80")
        k("-n", "blocked", "create", "service", "nodeport", "web", "--tcp=80")
        api = config.new_client_from_config(config_file=str(control_plane.kubeconfig))  # type: ignore[no-untyped-call]
        core = client.CoreV1Api(api)

        def create(index: int) -> None:
            extra = {"extra": "yes"} if index >= KEPT else {}
            core.create_namespaced_service(
                "crowded",
                headless(f"svc-{index:05d}", **extra),  # type: ignore[arg-type]
            )

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(create, range(CROWDED)))
        installed = clusterip_guard(
            control_plane.kubeconfig, "scan", "--install-crds", "-n", "small"
        )
        assert installed.returncode in (0, 1), installed.stderr
        yield control_plane
        api.close()


def reports_of(k: Kubectl, namespace: str) -> dict[str, dict[str, Any]]:
    listed = json.loads(k("-n", namespace, "get", REPORTS, "-o", "json").stdout)["items"]
    return {item["metadata"]["name"]: item for item in listed}


def test_a_namespace_past_one_objects_limit_gets_as_many_reports_as_it_needs(
    crowded: ControlPlane,
) -> None:
    k = Kubectl(crowded.kubeconfig)
    run = clusterip_guard(crowded.kubeconfig, "scan", "--write-reports", "-o", "json")
    assert run.returncode == 0, run.stderr  # every write went (mode off: nothing fails)
    reports = reports_of(k, "crowded")
    assert sorted(reports) == ["clusterip-guard", "clusterip-guard-2", "clusterip-guard-3"]
    names = [r["resources"][0]["name"] for report in reports.values() for r in report["results"]]
    assert sorted(names) == [f"svc-{i:05d}" for i in range(CROWDED)]
    for report in reports.values():
        assert len(json.dumps(report)) < 1024 * 1024  # well under etcd's 1.5 MiB
        assert report["summary"]["pass"] == len(report["results"])
    # Shrunk below one report's worth: the parts no longer needed go.
    api = config.new_client_from_config(config_file=str(crowded.kubeconfig))  # type: ignore[no-untyped-call]
    with api:  # one deletecollection: kubectl deletes one at a time
        client.CoreV1Api(api).delete_collection_namespaced_service(
            "crowded", label_selector="extra=yes"
        )
    again = clusterip_guard(crowded.kubeconfig, "scan", "--write-reports")
    assert again.returncode == 0, again.stderr
    assert "pruned PolicyReport crowded/clusterip-guard-3" in again.stderr
    assert sorted(reports_of(k, "crowded")) == ["clusterip-guard"]
    assert len(reports_of(k, "crowded")["clusterip-guard"]["results"]) == KEPT


def test_a_refused_report_never_stops_the_others(crowded: ControlPlane) -> None:
    k = Kubectl(crowded.kubeconfig)
    k("apply", "-f", "-", stdin=REFUSE_REPORTS_IN_BLOCKED)
    k("-n", "blocked", "delete", REPORTS, "--all")
    k("-n", "small", "delete", REPORTS, "--all")
    k("delete", "clusterpolicyreports.wgpolicyk8s.io", "--all")
    try:

        def refused() -> subprocess.CompletedProcess[str] | None:
            # The policy reaches admission a moment after it is created.
            run = clusterip_guard(crowded.kubeconfig, "scan", "--write-reports")
            return run if run.returncode == 3 else None

        assert until(refused, timeout=30)
        run = clusterip_guard(crowded.kubeconfig, "scan", "--write-reports")
        assert run.returncode == 3, run.stderr
        last = run.stderr.strip().splitlines()[-1]
        assert last.startswith(
            "clusterip-guard: 1 report was not written (first: PolicyReport "
            "blocked/clusterip-guard: "
        ), last
        assert "reports are not wanted here" in last
        assert "Traceback" not in run.stderr
        # Every other report was written, the cluster-wide one too.
        assert "clusterip-guard" in reports_of(k, "small")
        assert not reports_of(k, "blocked")
        cluster = json.loads(
            k("get", "clusterpolicyreports.wgpolicyk8s.io", "clusterip-guard", "-o", "json").stdout
        )
        summarized = {r["resources"][0]["name"] for r in cluster["results"]}
        assert {"blocked", "crowded", "small"} <= summarized
    finally:
        k("delete", "-f", "-", stdin=REFUSE_REPORTS_IN_BLOCKED, check=False)


def test_watch_counts_a_refused_report_and_keeps_going(
    crowded: ControlPlane, tmp_path: Path
) -> None:
    k = Kubectl(crowded.kubeconfig)
    k("apply", "-f", "-", stdin=REFUSE_REPORTS_IN_BLOCKED)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tmp_path / "watch.log"
    command = [sys.executable, "-m", "clusterip_guard.cli.main", "scan", "--watch",
               "--write-reports", "--lease-namespace", "default",
               "--metrics-port", str(port)]  # fmt: skip
    env = {**os.environ, "KUBECONFIG": str(crowded.kubeconfig)}
    with log.open("w") as out:
        watcher = subprocess.Popen(command, env=env, stdout=out, stderr=out)
    try:

        def failures() -> float:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    text = r.read().decode()
            except OSError:  # not listening yet
                return 0.0
            for line in text.splitlines():
                if line.startswith("clusterip_guard_report_write_failures_total "):
                    return float(line.split()[1])
            return 0.0

        assert until(lambda: failures() >= 1, timeout=60), log.read_text()
        assert "report not written after 3 tries: PolicyReport blocked/clusterip-guard" in (
            log.read_text()
        )
        assert watcher.poll() is None, log.read_text()  # still watching
        # Once the refusal goes, the next rescan writes the report.
        k("delete", "-f", "-", stdin=REFUSE_REPORTS_IN_BLOCKED)
        k("label", "namespace", "blocked", "clusterip-guard.io/mode=audit")
        assert until(lambda: "clusterip-guard" in reports_of(k, "blocked"), timeout=60), (
            log.read_text()
        )
        assert watcher.poll() is None
    finally:
        k("delete", "-f", "-", stdin=REFUSE_REPORTS_IN_BLOCKED, check=False)
        watcher.terminate()
        watcher.wait(timeout=10)
