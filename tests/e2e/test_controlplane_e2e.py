"""The local control plane, and the API server calling `clusterip-guard serve` on loopback."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from localcluster import ControlPlane, start
from tests.support.kubectl import Kubectl
from tests.support.paths import LOCALCLUSTER, TEST_DATA
from tests.support.polling import until
from tests.support.webhook_process import ServingFiles, WebhookProcess

pytestmark = pytest.mark.e2e

HANDWRITTEN_LABEL = "e2e.clusterip-guard.io/handwritten"


def create_namespace(kubectl: Kubectl, name: str, **labels: str) -> None:
    kubectl("create", "namespace", name)
    if labels:
        kubectl("label", "namespace", name, *(f"{k}={v}" for k, v in labels.items()))


def test_the_api_server_is_ready(kubectl: Kubectl) -> None:
    assert kubectl("get", "--raw", "/readyz").stdout.strip() == "ok"


def test_kubectl_creates_exposed_services_when_nothing_guards_them(kubectl: Kubectl) -> None:
    create_namespace(kubectl, "unguarded")
    kubectl("-n", "unguarded", "create", "service", "nodeport", "web", "--tcp=80:8080")
    kubectl("-n", "unguarded", "create", "service", "loadbalancer", "lb", "--tcp=80:8080")
    web = json.loads(kubectl("-n", "unguarded", "get", "service", "web", "-o", "json").stdout)
    lb = json.loads(kubectl("-n", "unguarded", "get", "service", "lb", "-o", "json").stdout)
    assert web["spec"]["type"] == "NodePort"
    assert 30000 <= web["spec"]["ports"][0]["nodePort"] <= 32767
    assert lb["spec"]["type"] == "LoadBalancer"
    assert lb["spec"]["allocateLoadBalancerNodePorts"] is True


def test_the_python_client_creates_external_ip_services(api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="unguarded-py")))
    service = client.V1Service(
        metadata=client.V1ObjectMeta(name="ext"),
        spec=client.V1ServiceSpec(
            type="LoadBalancer",
            external_ips=["203.0.113.10"],
            ports=[client.V1ServicePort(port=80)],
        ),
    )
    created = core.create_namespaced_service("unguarded-py", service)
    assert created.spec is not None
    assert created.spec.type == "LoadBalancer"
    assert created.spec.external_ips == ["203.0.113.10"]


@pytest.fixture(scope="module")
def handwritten_webhook(
    tmp_path_factory: pytest.TempPathFactory, kubectl: Kubectl
) -> Iterator[WebhookProcess]:
    """`serve` on loopback, registered by a webhook configuration written here by hand."""
    files = ServingFiles(tmp_path_factory.mktemp("handwritten"))
    webhook = WebhookProcess(files).start()
    configuration = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "handwritten-clusterip-guard"},
        "webhooks": [
            {
                "name": "mutate.handwritten.clusterip-guard.io",
                "clientConfig": {
                    "url": f"{webhook.url}/mutate",
                    "caBundle": base64.b64encode(files.ca.cert_pem).decode(),
                },
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["services"],
                    }
                ],
                "namespaceSelector": {"matchLabels": {HANDWRITTEN_LABEL: "true"}},
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "failurePolicy": "Fail",
                "timeoutSeconds": 5,
            }
        ],
    }
    kubectl("apply", "-f", "-", stdin=json.dumps(configuration))
    yield webhook
    kubectl("delete", "mutatingwebhookconfiguration", "handwritten-clusterip-guard")
    webhook.stop()


def test_the_api_server_calls_the_webhook_and_stores_its_patch(
    handwritten_webhook: WebhookProcess, kubectl: Kubectl
) -> None:
    create_namespace(kubectl, "handwritten", **{HANDWRITTEN_LABEL: "true"})
    created = kubectl("-n", "handwritten", "create", "service", "nodeport", "web", "--tcp=80:8080")
    assert "converted this Service from NodePort to ClusterIP" in created.stderr
    stored = json.loads(kubectl("-n", "handwritten", "get", "service", "web", "-o", "json").stdout)
    assert stored["spec"]["type"] == "ClusterIP"
    assert "nodePort" not in stored["spec"]["ports"][0]
    assert "externalTrafficPolicy" not in stored["spec"]
    assert stored["metadata"]["annotations"]["clusterip-guard.io/converted-from"] == "NodePort"
    assert any(e.get("verdict") == "mutated" for e in handwritten_webhook.log_entries())


@pytest.fixture(scope="module")
def baseline_policies(kubectl: Kubectl) -> Iterator[None]:
    for name in ("validating-admission-policy.yaml", "mutating-admission-policy.yaml"):
        kubectl("apply", "-f", str(TEST_DATA / name))
    yield
    for name in ("validating-admission-policy.yaml", "mutating-admission-policy.yaml"):
        kubectl("delete", "-f", str(TEST_DATA / name))


def test_the_validating_admission_policy_baseline_denies_node_ports(
    baseline_policies: None, kubectl: Kubectl
) -> None:
    create_namespace(kubectl, "baseline-vap", **{"clusterip-guard-baseline.io/mode": "enforce"})
    create = ("-n", "baseline-vap", "create", "service", "nodeport", "web", "--tcp=80:8080")
    runs: list[subprocess.CompletedProcess[str]] = []

    def denied() -> bool:
        runs.append(kubectl(*create, check=False))
        if runs[-1].returncode == 0:
            kubectl("-n", "baseline-vap", "delete", "service", "web")
        return runs[-1].returncode != 0

    assert until(denied, timeout=15)  # policies reach the API server's informers a moment later
    assert "ValidatingAdmissionPolicy 'clusterip-guard-baseline'" in runs[-1].stderr
    assert "spec.type" in runs[-1].stderr


def test_the_mutating_admission_policy_baseline_converts_node_ports(
    baseline_policies: None, kubectl: Kubectl
) -> None:
    create_namespace(kubectl, "baseline-map", **{"clusterip-guard-baseline.io/mode": "mutate"})
    stored: dict[str, Any] = {}

    def converted() -> bool:
        kubectl("-n", "baseline-map", "create", "service", "nodeport", "web", "--tcp=80:8080")
        get = kubectl("-n", "baseline-map", "get", "service", "web", "-o", "json")
        stored.update(json.loads(get.stdout))
        if stored["spec"]["type"] != "ClusterIP":
            kubectl("-n", "baseline-map", "delete", "service", "web")
            return False
        return True

    assert until(converted, timeout=15)
    assert "nodePort" not in stored["spec"]["ports"][0]


def test_stopping_leaves_no_process_behind(tmp_path: Path) -> None:
    cluster: ControlPlane = start(tmp_path / "short-lived", audit_log=False)
    pids = list(cluster.pids)
    assert len(pids) == 2
    cluster.stop()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in command:
            found.append(int(entry.name))
    return found


def test_ctrl_c_while_starting_leaves_no_orphans(tmp_path: Path) -> None:
    state = tmp_path / "interrupted"
    up = subprocess.Popen(
        [sys.executable, str(LOCALCLUSTER), "up", "--dir", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Interrupt once etcd runs and the API server is on its way.
    assert until((state / "controlplane" / "kube-apiserver.log").exists, timeout=30)
    up.send_signal(signal.SIGINT)
    _, err = up.communicate(timeout=30)
    assert up.returncode == 130, err
    assert "interrupted" in err
    assert "Traceback" not in err
    assert until(lambda: not _processes_mentioning(str(state)), timeout=15)


def test_make_up_state_is_stopped_by_down(tmp_path: Path) -> None:
    state = tmp_path / "detached"
    up = subprocess.run(
        [sys.executable, str(LOCALCLUSTER), "up", "--dir", str(state)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert up.returncode == 0, up.stderr
    assert "control plane ready at https://127.0.0.1:" in up.stdout
    assert _processes_mentioning(str(state))
    down = subprocess.run(
        [sys.executable, str(LOCALCLUSTER), "down", "--dir", str(state)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert down.returncode == 0, down.stderr
    assert not _processes_mentioning(str(state))
