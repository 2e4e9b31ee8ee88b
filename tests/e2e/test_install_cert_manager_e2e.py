"""clusterip-guard installed by its Helm chart with `certificates.mode=certManager` on a real
node, with a real cert-manager: its CRDs, its controllers and its cainjector (built from the
release pinned in hack/certmanager/go.mod, run as host processes against the node).

One node for the module; the tests run in order, each building on the one before: cert-manager
up, install, the caBundle injected, a Service converted, upgrade, uninstall, all stopped.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.cert_manager import CertManagerProcess, leftover_processes, running_cert_manager
from tests.support.node import Node, cluster, running_node
from tests.support.polling import until
from tests.support.release import (
    CHART,
    GUARD_NAMESPACE,
    IMAGE_ARCHIVE,
    RELEASE,
    api,
    build_and_import_image,
    create_service,
    helm,
    node_port_service,
    reachable_through_its_service,
    ready_replicas,
    serving_secret,
    webhook_configuration,
    webhook_configurations,
)

pytestmark = [pytest.mark.e2e, pytest.mark.node]

CERT_MANAGER = ("--set", "certificates.mode=certManager")
WEBHOOK_KINDS = ("mutatingwebhookconfiguration", "validatingwebhookconfiguration")
INJECTION_TIMEOUT = 120


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    with running_node(tmp_path_factory.mktemp("certmanager")) as started:
        yield started


@pytest.fixture(scope="module")
def cert_manager(
    node: Node, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[CertManagerProcess]]:
    with running_cert_manager(node, tmp_path_factory.mktemp("certmanager-logs")) as processes:
        yield processes


def certificates(node: Node) -> dict[str, dict[str, Any]]:
    listed = node.kubectl("-n", GUARD_NAMESPACE, "get", "certificates.cert-manager.io",
                          "-o", "json")  # fmt: skip
    return {c["metadata"]["name"]: c for c in json.loads(listed.stdout)["items"]}


def is_ready(resource: dict[str, Any]) -> bool:
    conditions = resource.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def ca_bundles(node: Node, kind: str) -> set[str]:
    """The caBundle of every entry of the release's webhook configuration of this kind."""
    found = webhook_configuration(node, kind)
    return {w["clientConfig"].get("caBundle", "") for w in found["webhooks"]}


def injected_everywhere(node: Node, ca: str) -> bool:
    """Whether every entry of both webhook configurations carries exactly this CA."""
    return all(ca_bundles(node, kind) == {ca} for kind in WEBHOOK_KINDS)


def test_the_image_is_built_from_the_repositorys_dockerfile_and_imported(node: Node) -> None:
    build_and_import_image(node, "build.sh", IMAGE_ARCHIVE)


def test_cert_manager_runs_beside_the_node(
    node: Node, cert_manager: list[CertManagerProcess]
) -> None:
    assert [p.command for p in cert_manager] == ["controller", "cainjector"]
    assert all(p.process.poll() is None for p in cert_manager)
    established = node.kubectl("get", "crd", "-o", "name").stdout.split()
    assert "customresourcedefinition.apiextensions.k8s.io/certificates.cert-manager.io" in (
        established
    )


def test_helm_install_brings_ready_certificates_and_two_ready_replicas(
    node: Node, cert_manager: list[CertManagerProcess]
) -> None:
    helm(node, "install", RELEASE, str(CHART), "--namespace", GUARD_NAMESPACE,
         "--create-namespace", *CERT_MANAGER, "--wait", "--timeout=5m")  # fmt: skip
    assert ready_replicas(node) == 2
    found = certificates(node)
    assert sorted(found) == [f"{RELEASE}-ca", f"{RELEASE}-serving"]
    assert all(is_ready(certificate) for certificate in found.values()), found
    assert sorted(webhook_configurations(node)) == [
        f"mutatingwebhookconfigurations/{RELEASE}",
        f"validatingwebhookconfigurations/{RELEASE}",
    ]


def test_cainjector_puts_the_ca_into_both_webhook_configurations(node: Node) -> None:
    ca = serving_secret(node)["ca.crt"]
    assert base64.b64decode(ca).startswith(b"-----BEGIN CERTIFICATE-----")
    assert until(lambda: injected_everywhere(node, ca), timeout=INJECTION_TIMEOUT), {
        kind: ca_bundles(node, kind) for kind in WEBHOOK_KINDS
    }


def test_the_api_server_calls_the_webhook_and_a_mutate_namespace_gets_cluster_ip(
    node: Node,
) -> None:
    node.kubectl("create", "namespace", "shop")
    node.kubectl("label", "namespace", "shop", "clusterip-guard.io/mode=mutate")
    assert reachable_through_its_service(node, "shop")
    run = node.kubectl("-n", "shop", "create", "-f", "-", "-o", "json",
                       stdin=json.dumps(node_port_service("probe")))  # fmt: skip
    assert "clusterip-guard converted this Service from NodePort to ClusterIP" in run.stderr
    assert json.loads(run.stdout)["spec"]["type"] == "ClusterIP"


def test_helm_test_reaches_the_webhook_through_its_service(node: Node) -> None:
    run = helm(node, "test", RELEASE, "--namespace", GUARD_NAMESPACE, "--timeout=3m")
    assert "Phase:          Succeeded" in run.stdout


def test_helm_upgrade_keeps_the_serving_certificate_and_the_ca_bundle(node: Node) -> None:
    before = serving_secret(node)
    revisions = {name: c["status"].get("revision") for name, c in certificates(node).items()}
    helm(node, "upgrade", RELEASE, str(CHART), "--namespace", GUARD_NAMESPACE, *CERT_MANAGER,
         "--set", "defaultMode=audit", "--wait", "--timeout=5m")  # fmt: skip
    assert serving_secret(node) == before
    after = {name: c["status"].get("revision") for name, c in certificates(node).items()}
    assert after == revisions
    # The kept entries keep their caBundle; the new audit-default entry gets the same CA.
    assert until(lambda: injected_everywhere(node, before["ca.crt"]), timeout=INJECTION_TIMEOUT)
    names = {
        w["name"] for w in webhook_configuration(node, "validatingwebhookconfiguration")["webhooks"]
    }
    assert "audit-default.clusterip-guard.io" in names
    stored_type = create_service(api(node), "shop", node_port_service("after-upgrade"))
    assert stored_type == "ClusterIP"


def test_helm_uninstall_leaves_no_webhook_and_services_work_after(node: Node) -> None:
    helm(node, "uninstall", RELEASE, "--namespace", GUARD_NAMESPACE, "--wait", "--timeout=5m")
    assert webhook_configurations(node) == []
    assert certificates(node) == {}
    stored_type = create_service(api(node), "shop", node_port_service("after-uninstall"))
    assert stored_type == "NodePort"  # nothing judges the namespace any more


def test_cert_manager_stops_and_leaves_no_process(
    node: Node, cert_manager: list[CertManagerProcess]
) -> None:
    exit_codes = [process.stop() for process in cert_manager]
    assert exit_codes == [0, 0], "\n".join(p.logs()[-2000:] for p in cert_manager)
    assert leftover_processes() == []


def test_the_node_goes_down_cleanly(node: Node) -> None:
    down = cluster(node.dev, "down")
    assert down.returncode == 0, down.stderr
