"""A scan reads every list a page at a time and one namespace at a time, and rides out the API
server's throttling without losing a report (docs/design.md, "Reporting what exists (scan)";
cluster/listing.py, cluster/limits.py).

On a control plane of its own: its API Priority and Fairness objects throttle one user.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from localcluster import ControlPlane, start, user_kubeconfig
from tests.support.cli import clusterip_guard
from tests.support.kubectl import Kubectl
from tests.support.polling import until

pytestmark = pytest.mark.e2e

SUITE = "paging-suite=yes"
# `paging-a-b` lists before `paging-a` (the API server's key order: `-` before `/`).
NAMESPACES = ["paging-a", "paging-a-b", "paging-a0", *(f"paging-{n:02}" for n in range(24))]
SCANNER = "throttled-scanner"
TOO_MANY_REQUESTS = 429
SEATS = 4  # more than a level with no shares of its own is given
PRIORITY_LEVELS = "/debug/api_priority_and_fairness/dump_priority_levels"
THROTTLE = f"""\
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: PriorityLevelConfiguration
metadata: {{name: {SCANNER}}}
spec:
  type: Limited
  limited:
    nominalConcurrencyShares: 0
    lendablePercent: 0
    borrowingLimitPercent: 0
    limitResponse: {{type: Reject}}
---
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: FlowSchema
metadata: {{name: {SCANNER}}}
spec:
  priorityLevelConfiguration: {{name: {SCANNER}}}
  matchingPrecedence: 100
  distinguisherMethod: {{type: ByUser}}
  rules:
    - subjects: [{{kind: User, user: {{name: {SCANNER}}}}}]
      resourceRules:
        - verbs: ["*"]
          apiGroups: ["*"]
          resources: ["*"]
          namespaces: ["*"]
          clusterScope: true
      nonResourceRules:
        - verbs: ["*"]
          nonResourceURLs: ["*"]
"""


def service(name: str, service_type: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"type": service_type, "selector": {"app": name}, "ports": [{"port": 80}]},
    }


def objects_of(index: int) -> list[dict[str, Any]]:
    """Three Services a namespace, and a Deployment with a host port in every fifth."""
    found = [service("web", "NodePort"), service("db", "ClusterIP"), service("api", "ClusterIP")]
    if index % 5 == 0:
        found.append({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "agent"},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": {
                    "metadata": {"labels": {"app": "agent"}},
                    "spec": {"containers": [{"name": "agent", "image": "agent:1", "ports": [
                        {"containerPort": 9100, "hostPort": 9100}]}]},
                },
            },
        })  # fmt: skip
    return found


EXPECTED = {
    (namespace, item["kind"], item["metadata"]["name"])
    for index, namespace in enumerate(NAMESPACES)
    for item in objects_of(index)
}


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    folder = tmp_path_factory.mktemp("scan-paging")
    with start(folder / "cp", audit_log=False) as control_plane:
        k = Kubectl(control_plane.kubeconfig)
        items: list[dict[str, Any]] = []
        for index, namespace in enumerate(NAMESPACES):
            labels = {"paging-suite": "yes"}
            if index % 2:
                labels["clusterip-guard.io/mode"] = "audit"
            items.append({"apiVersion": "v1", "kind": "Namespace",
                          "metadata": {"name": namespace, "labels": labels}})  # fmt: skip
        k(
            "apply",
            "-f",
            "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
        )
        items = [
            {**item, "metadata": {**item["metadata"], "namespace": namespace}}
            for index, namespace in enumerate(NAMESPACES)
            for item in objects_of(index)
        ]
        k(
            "apply",
            "-f",
            "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
        )
        # Something outside the selector, between the suite's namespaces in the key order.
        k("create", "namespace", "paging-b")
        k("-n", "paging-b", "create", "service", "nodeport", "outside", "--tcp=80")
        crds = clusterip_guard(control_plane.kubeconfig, "scan", "--install-crds", "-n", "default")
        assert crds.returncode in (0, 1), crds.stderr
        yield control_plane


def scanned(run: subprocess.CompletedProcess[str]) -> list[tuple[str, str, str]]:
    return [(f["namespace"], f["kind"], f["name"]) for f in json.loads(run.stdout)]


def reports_by_namespace(kubeconfig: Path) -> dict[str, list[str]]:
    """Each suite namespace's report results, as "Kind/name"."""
    api = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    try:
        found: Any = client.CustomObjectsApi(api).list_cluster_custom_object(
            "wgpolicyk8s.io", "v1alpha2", "policyreports"
        )
    finally:
        api.close()
    by_namespace: dict[str, list[str]] = {}
    for report in found["items"]:
        namespace = report["metadata"]["namespace"]
        by_namespace.setdefault(namespace, []).extend(
            f"{r['resources'][0]['kind']}/{r['resources'][0]['name']}" for r in report["results"]
        )
    return by_namespace


def expected_reports() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for namespace, kind, name in sorted(EXPECTED):
        found.setdefault(namespace, []).append(f"{kind}/{name}")
    return {namespace: sorted(results) for namespace, results in found.items()}


def test_two_objects_a_page_across_many_namespaces_finds_every_object_once(
    plane: ControlPlane,
) -> None:
    paged = clusterip_guard(plane.kubeconfig, "scan", "-l", SUITE, "-o", "json",
                            "--page-size", "2", "--write-reports")  # fmt: skip
    assert paged.returncode == 1, paged.stderr  # the audit namespaces' NodePorts fail
    found = scanned(paged)
    assert sorted(found) == sorted(EXPECTED)  # every object, none twice, none outside
    assert [n for n, _, _ in found] == sorted((n for n, _, _ in found), key=lambda n: f"{n}/")
    reports = reports_by_namespace(plane.kubeconfig)
    assert {n: sorted(r) for n, r in reports.items()} == expected_reports()
    # One page of 500 says the same, in the same order; and finds nothing new to write.
    whole = clusterip_guard(plane.kubeconfig, "scan", "-l", SUITE, "-o", "json",
                            "--write-reports")  # fmt: skip
    assert whole.stdout == paged.stdout
    assert f"{len(NAMESPACES)} reports unchanged" in whole.stderr, whole.stderr
    assert "created" not in whole.stderr
    assert "updated" not in whole.stderr


def throttled(kubeconfig: Path) -> bool:
    api = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    try:
        client.CoreV1Api(api).list_namespace(limit=1)
    except ApiException as error:
        return bool(error.status == TOO_MANY_REQUESTS)
    finally:
        api.close()
    return False


@contextlib.contextmanager
def seats_held(plane: ControlPlane, user: str, count: int) -> Iterator[None]:
    """Requests of `user` that hold their priority level's seats: API Priority and Fairness
    seats a request once its headers are in, and the body these never send keeps it seated.
    With every seat taken, a level that rejects (no queues) answers the user's other requests
    429; closing the connections frees the seats."""
    pki = plane.workdir / "pki"
    context = ssl.create_default_context(cafile=str(plane.ca_file))
    context.load_cert_chain(str(pki / f"{user}.crt"), str(pki / f"{user}.key"))
    host, port = plane.url.removeprefix("https://").rsplit(":", 1)
    held = []
    try:
        for _ in range(count):
            connection = context.wrap_socket(
                socket.create_connection((host, int(port))), server_hostname=host
            )
            connection.sendall(
                f"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: {host}\r\n"
                "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n".encode()
            )
            held.append(connection)
        yield
    finally:
        for connection in held:
            connection.close()


def test_a_throttled_scanner_waits_says_so_and_writes_every_report(
    plane: ControlPlane, tmp_path: Path
) -> None:
    k = Kubectl(plane.kubeconfig)
    scanner = user_kubeconfig(plane, SCANNER)
    k("create", "clusterrolebinding", SCANNER, "--clusterrole=cluster-admin", f"--user={SCANNER}")
    k("delete", "policyreports", "-A", "-l", "app.kubernetes.io/managed-by=clusterip-guard")
    k("apply", "-f", "-", stdin=THROTTLE)
    # API Priority and Fairness takes its objects up a moment later: wait until the user's
    # requests are seated at the level of their own.
    assert until(lambda: SCANNER in k("get", "--raw", PRIORITY_LEVELS).stdout, timeout=60)
    with seats_held(plane, SCANNER, SEATS):
        assert until(lambda: throttled(scanner), timeout=60), "the seats were never taken"
        said = tmp_path / "scan.stderr"
        with said.open("w") as stderr:
            scan = subprocess.Popen(
                [sys.executable, "-m", "clusterip_guard.cli.main", "scan", "-l", SUITE,
                 "--write-reports", "-o", "json", "--kubeconfig", str(scanner)],
                stdout=subprocess.DEVNULL, stderr=stderr,
            )  # fmt: skip
            try:
                assert until(lambda: "429 Too Many Requests" in said.read_text(), timeout=60), (
                    said.read_text()
                )
            except BaseException:
                scan.kill()
                scan.wait()
                raise
    # The seats are free again: the scanner's next try gets through.
    try:
        assert scan.wait(timeout=180) == 1, said.read_text()
    finally:
        if scan.poll() is None:
            scan.kill()
            scan.wait()
    text = said.read_text()
    lines = [line for line in text.splitlines() if "429 Too Many Requests" in line]
    assert lines, text
    assert all("nothing is skipped" in line for line in lines), text
    assert "Traceback" not in text
    assert "not written" not in text
    reports = reports_by_namespace(plane.kubeconfig)
    assert {n: sorted(r) for n, r in reports.items()} == expected_reports()
