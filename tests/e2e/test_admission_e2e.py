"""The behaviour matrix on the real API server: bootstrap (url mode) registers `serve`, and
Services are created and updated with kubectl and the Python client in every mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from localcluster import ControlPlane, user_kubeconfig
from tests.support.kubectl import Kubectl
from tests.support.polling import until
from tests.support.webhook_process import CertificateFiles, WebhookProcess, free_port

pytestmark = pytest.mark.e2e

CONFIGURATION = "matrix-clusterip-guard"
MODE_LABEL = "clusterip-guard.io/mode"
NAMESPACES = {"m-enforce": "enforce", "m-mutate": "mutate", "m-audit": "audit", "m-plain": None}


def run_bootstrap(cluster: ControlPlane, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "clusterip_guard.cli.main",
            "bootstrap",
            "--name",
            CONFIGURATION,
            *args,
        ],
        env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def webhook(
    control_plane: ControlPlane, kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebhookProcess]:
    files = CertificateFiles(tmp_path_factory.mktemp("matrix-certs"))
    port = free_port()
    bootstrap = run_bootstrap(
        control_plane,
        "--url", f"https://127.0.0.1:{port}",
        "--cert-dir", str(files.folder),
        "--ip", "127.0.0.1",
    )  # fmt: skip
    assert bootstrap.returncode == 0, bootstrap.stderr
    process = WebhookProcess(files, port=port).start()
    for namespace, mode in NAMESPACES.items():
        kubectl("create", "namespace", namespace)
        if mode:
            kubectl("label", "namespace", namespace, f"{MODE_LABEL}={mode}")
    yield process
    process.stop()
    run_bootstrap(control_plane, "--url", f"https://127.0.0.1:{port}", "--uninstall")


def service_yaml(name: str, service_type: str = "NodePort", **spec: Any) -> str:
    manifest = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "type": service_type,
            "selector": {"app": name},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
            **spec,
        },
    }
    return json.dumps(manifest)


def stored(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    got: dict[str, Any] = json.loads(
        kubectl("-n", namespace, "get", "service", name, "-o", "json").stdout
    )
    return got


def assert_cluster_ip(service: dict[str, Any], converted_from: str) -> None:
    spec = service["spec"]
    assert spec["type"] == "ClusterIP"
    assert all("nodePort" not in port for port in spec["ports"])
    for gone in (
        "externalTrafficPolicy",
        "healthCheckNodePort",
        "allocateLoadBalancerNodePorts",
        "loadBalancerClass",
        "loadBalancerSourceRanges",
        "loadBalancerIP",
        "externalIPs",
    ):
        assert gone not in spec, gone
    assert service["metadata"]["annotations"]["clusterip-guard.io/converted-from"] == converted_from


# --- CREATE, every mode ---------------------------------------------------------------------


def test_enforce_denies_a_node_port_with_our_message(
    webhook: WebhookProcess, kubectl: Kubectl
) -> None:
    run = kubectl("-n", "m-enforce", "create", "service", "nodeport", "np", "--tcp=80:8080",
                  check=False)  # fmt: skip
    assert run.returncode != 0
    assert 'admission webhook "enforce.clusterip-guard.io" denied the request' in run.stderr
    assert "spec.type: type NodePort opens a port on every node; use type ClusterIP" in run.stderr


def test_mutate_stores_a_node_port_as_cluster_ip(webhook: WebhookProcess, kubectl: Kubectl) -> None:
    run = kubectl("-n", "m-mutate", "create", "service", "nodeport", "np", "--tcp=80:8080")
    assert (
        "Warning: clusterip-guard converted this Service from NodePort to ClusterIP" in run.stderr
    )
    assert_cluster_ip(stored(kubectl, "m-mutate", "np"), "NodePort")


def test_mutate_converts_a_load_balancer_with_every_load_balancer_field(
    webhook: WebhookProcess, kubectl: Kubectl
) -> None:
    manifest = service_yaml(
        "lb-full",
        "LoadBalancer",
        ports=[{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 31080}],
        externalTrafficPolicy="Local",
        healthCheckNodePort=31999,
        allocateLoadBalancerNodePorts=True,
        loadBalancerClass="example.com/lb",
        loadBalancerSourceRanges=["198.51.100.0/24"],
        loadBalancerIP="198.51.100.10",
        externalIPs=["203.0.113.20"],
    )
    manifest_dict = json.loads(manifest)
    manifest_dict["metadata"]["annotations"] = {
        "service.beta.kubernetes.io/load-balancer-source-ranges": "198.51.100.0/24",
        "team": "shop",
    }
    kubectl("-n", "m-mutate", "apply", "-f", "-", stdin=json.dumps(manifest_dict))
    service = stored(kubectl, "m-mutate", "lb-full")
    assert_cluster_ip(service, "LoadBalancer")
    annotations = service["metadata"]["annotations"]
    assert "service.beta.kubernetes.io/load-balancer-source-ranges" not in annotations
    assert annotations["team"] == "shop"


def test_enforce_denies_a_load_balancer(webhook: WebhookProcess, kubectl: Kubectl) -> None:
    run = kubectl("-n", "m-enforce", "apply", "-f", "-", stdin=service_yaml("lb", "LoadBalancer"),
                  check=False)  # fmt: skip
    assert run.returncode != 0
    assert "type LoadBalancer exposes the Service outside the cluster" in run.stderr


def _external_ip_service(name: str) -> client.V1Service:
    return client.V1Service(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1ServiceSpec(
            external_ips=["203.0.113.30"],
            selector={"app": name},
            ports=[client.V1ServicePort(port=80)],
        ),
    )


def test_python_client_external_ips_are_denied_in_enforce(
    webhook: WebhookProcess, api_client: client.ApiClient
) -> None:
    core = client.CoreV1Api(api_client)
    with pytest.raises(ApiException) as denied:
        core.create_namespaced_service("m-enforce", _external_ip_service("ext"))
    assert denied.value.status == 403
    assert "spec.externalIPs" in str(denied.value.body)


def test_python_client_external_ips_are_removed_in_mutate(
    webhook: WebhookProcess, api_client: client.ApiClient
) -> None:
    core = client.CoreV1Api(api_client)
    created = core.create_namespaced_service("m-mutate", _external_ip_service("ext"))
    assert created.spec is not None
    assert created.spec.type == "ClusterIP"
    assert not created.spec.external_ips


def test_audit_warns_and_stores_the_service_as_sent(
    webhook: WebhookProcess, kubectl: Kubectl, control_plane: ControlPlane
) -> None:
    run = kubectl("-n", "m-audit", "create", "service", "nodeport", "np", "--tcp=80:8080")
    assert "Warning: audit: Service m-audit/np: spec.type: type NodePort" in run.stderr
    assert stored(kubectl, "m-audit", "np")["spec"]["type"] == "NodePort"

    def audited() -> bool:
        log = (control_plane.workdir / "audit.log").read_text()
        return any(
            '"audit.clusterip-guard.io/exposure"' in line and '"m-audit"' in line
            for line in log.splitlines()
        )

    assert until(audited), "no auditAnnotations entry in the API server's audit log"


def test_the_log_says_who_created_an_exposed_service_and_why_it_was_only_warned(
    webhook: WebhookProcess, kubectl: Kubectl, control_plane: ControlPlane
) -> None:
    kubectl("-n", "m-audit", "create", "role", "services-writer", "--verb=create,get",
            "--resource=services")  # fmt: skip
    kubectl("-n", "m-audit", "create", "rolebinding", "alice-writes", "--role=services-writer",
            "--user=alice")  # fmt: skip
    alice = Kubectl(user_kubeconfig(control_plane, "alice", ("team-a",)))
    before = len(webhook.logs())
    alice("-n", "m-audit", "create", "service", "nodeport", "by-alice", "--tcp=80")

    def logged() -> list[dict[str, Any]]:
        lines = webhook.logs()[before:].splitlines()
        return [json.loads(line) for line in lines if '"by-alice"' in line]

    assert until(logged)
    (line,) = logged()
    assert line["user"] == "alice"
    assert "team-a" in line["groups"]
    assert "system:authenticated" in line["groups"]
    assert line["why"] == "audit mode: exposure is reported, not denied"


def test_unlabelled_namespace_and_kube_system_are_untouched(
    webhook: WebhookProcess, kubectl: Kubectl
) -> None:
    kubectl("label", "namespace", "kube-system", f"{MODE_LABEL}=enforce", "--overwrite")
    try:
        for namespace in ("m-plain", "kube-system"):
            kubectl("-n", namespace, "create", "service", "nodeport", "plain-np", "--tcp=80:8080")
            assert stored(kubectl, namespace, "plain-np")["spec"]["type"] == "NodePort"
    finally:
        kubectl("label", "namespace", "kube-system", f"{MODE_LABEL}-")


# --- UPDATE paths ---------------------------------------------------------------------------


@pytest.fixture
def cluster_ip_services(webhook: WebhookProcess, kubectl: Kubectl, request: Any) -> str:
    name = f"up-{request.node.name.split('[')[0][-20:].replace('_', '-').strip('-')}"
    for namespace in ("m-enforce", "m-mutate"):
        kubectl("-n", namespace, "apply", "-f", "-", stdin=service_yaml(name, "ClusterIP"))
    return name


def test_kubectl_patch_to_node_port(cluster_ip_services: str, kubectl: Kubectl) -> None:
    patch = '{"spec": {"type": "NodePort"}}'
    name = cluster_ip_services
    denied = kubectl("-n", "m-enforce", "patch", "service", name, "-p", patch, check=False)
    assert denied.returncode != 0
    assert "denied the request" in denied.stderr
    kubectl("-n", "m-mutate", "patch", "service", name, "-p", patch)
    assert_cluster_ip(stored(kubectl, "m-mutate", name), "NodePort")


def test_server_side_apply_to_node_port(cluster_ip_services: str, kubectl: Kubectl) -> None:
    name = cluster_ip_services
    manifest = service_yaml(name, "NodePort")
    apply = ("apply", "--server-side", "--force-conflicts", "-f", "-")
    denied = kubectl("-n", "m-enforce", *apply, stdin=manifest, check=False)
    assert denied.returncode != 0
    assert "denied the request" in denied.stderr
    kubectl("-n", "m-mutate", *apply, stdin=manifest)
    assert_cluster_ip(stored(kubectl, "m-mutate", name), "NodePort")


def test_full_replace_to_load_balancer(cluster_ip_services: str, kubectl: Kubectl) -> None:
    name = cluster_ip_services
    for namespace in ("m-enforce", "m-mutate"):
        current = stored(kubectl, namespace, name)
        current["spec"]["type"] = "LoadBalancer"
        replace = kubectl("-n", namespace, "replace", "-f", "-", stdin=json.dumps(current),
                          check=False)  # fmt: skip
        if namespace == "m-enforce":
            assert replace.returncode != 0
            assert "denied the request" in replace.stderr
        else:
            assert replace.returncode == 0, replace.stderr
    assert_cluster_ip(stored(kubectl, "m-mutate", name), "LoadBalancer")


def test_an_existing_exposed_service_keeps_working_with_a_warning(
    webhook: WebhookProcess, kubectl: Kubectl
) -> None:
    # Created while the namespace was not selected, then the namespace turns to enforce.
    kubectl("create", "namespace", "m-legacy")
    kubectl("-n", "m-legacy", "create", "service", "nodeport", "legacy", "--tcp=80:8080")
    kubectl("label", "namespace", "m-legacy", f"{MODE_LABEL}=enforce")
    run = kubectl("-n", "m-legacy", "label", "service", "legacy", "tier=web")
    assert "existing exposure kept (allowExistingViolations)" in run.stderr
    assert stored(kubectl, "m-legacy", "legacy")["metadata"]["labels"]["tier"] == "web"


def test_kubectl_create_service_nodeport_and_expose(
    webhook: WebhookProcess, kubectl: Kubectl
) -> None:
    kubectl("-n", "m-mutate", "create", "deployment", "nginx", "--image=nginx:1.27",
            "--replicas=3")  # fmt: skip
    kubectl("-n", "m-mutate", "expose", "deployment", "nginx", "--type=NodePort", "--port=80")
    assert_cluster_ip(stored(kubectl, "m-mutate", "nginx"), "NodePort")
    kubectl("-n", "m-mutate", "create", "service", "nodeport", "cli-np", "--tcp=80:8080",
            "--node-port=30555")  # fmt: skip
    assert_cluster_ip(stored(kubectl, "m-mutate", "cli-np"), "NodePort")


def test_dry_run_gets_the_same_answer(webhook: WebhookProcess, kubectl: Kubectl) -> None:
    run = kubectl("-n", "m-mutate", "create", "service", "nodeport", "dry", "--tcp=80:8080",
                  "--dry-run=server", "-o", "json")  # fmt: skip
    assert json.loads(run.stdout)["spec"]["type"] == "ClusterIP"
    assert kubectl("-n", "m-mutate", "get", "service", "dry", check=False).returncode != 0


def test_compliant_services_never_reach_the_webhook(
    webhook: WebhookProcess, kubectl: Kubectl
) -> None:
    before = webhook.reviews_answered()
    kubectl("-n", "m-enforce", "create", "service", "clusterip", "quiet", "--tcp=80:8080")
    kubectl("-n", "m-enforce", "label", "service", "quiet", "tier=web")
    assert webhook.reviews_answered() == before  # the CEL matchCondition kept the calls away
    kubectl("-n", "m-enforce", "create", "service", "nodeport", "loud", "--tcp=80:8080",
            check=False)  # fmt: skip
    assert webhook.reviews_answered() == before + 1


# --- the webhook down: fail closed where it must, open elsewhere ----------------------------


def test_with_the_webhook_stopped_enforce_fails_closed_and_the_rest_works(
    webhook: WebhookProcess, kubectl: Kubectl
) -> None:
    webhook.stop()
    try:
        blocked = kubectl("-n", "m-enforce", "create", "service", "nodeport", "down-np",
                          "--tcp=80:8080", check=False)  # fmt: skip
        assert blocked.returncode != 0
        assert "failed calling webhook" in blocked.stderr
        kubectl("-n", "m-enforce", "create", "service", "clusterip", "down-cip", "--tcp=80:8080")
        kubectl("-n", "m-audit", "create", "service", "nodeport", "down-np", "--tcp=80:8080")
        kubectl("-n", "m-plain", "create", "service", "nodeport", "down-np", "--tcp=80:8080")
        kubectl("-n", "kube-system", "create", "service", "nodeport", "down-np", "--tcp=80:8080")
    finally:
        webhook.start()
