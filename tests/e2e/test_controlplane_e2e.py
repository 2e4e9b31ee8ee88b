"""The API server calling `clusterip-guard serve` on loopback through a hand-written webhook
configuration, and the hand-written in-process baselines. The launcher itself (start, stop,
`up`, `down`, an interrupted start) is tested in test_localcluster_e2e.py."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.kubectl import Kubectl
from tests.support.paths import TEST_DATA
from tests.support.polling import until
from tests.support.webhook_process import ServingFiles, WebhookProcess

pytestmark = pytest.mark.e2e

HANDWRITTEN_LABEL = "e2e.clusterip-guard.io/handwritten"


def create_namespace(kubectl: Kubectl, name: str, **labels: str) -> None:
    kubectl("create", "namespace", name)
    if labels:
        kubectl("label", "namespace", name, *(f"{k}={v}" for k, v in labels.items()))


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
