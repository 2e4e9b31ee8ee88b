"""clusterip-guard installed by its Helm chart on a real node, from the image the repository's
Dockerfile builds; then the exercise it grew out of, restarts under load, upgrade, uninstall.

One node for the module; the tests run in order, each building on the one before, as an admin
would: install, label a namespace, apply the manifest, restart, upgrade, uninstall.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from tests.support.cli import clusterip_guard
from tests.support.node import NODE_IP, Node, cluster, http_get, running_node
from tests.support.paths import ROOT
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
    ready_replicas,
    serving_certificate,
    webhook_configurations,
)

pytestmark = [pytest.mark.e2e, pytest.mark.node]

NGINX_ARCHIVE = ROOT / ".dev" / "images" / "nginx-debian.tar"
NGINX_IMAGE = "localhost/nginx-debian:bookworm"
EXAMPLE = ROOT / "examples" / "nginx-nodeport.yaml"
EXAMPLE_NODE_PORT = 30080
WELCOME = "Welcome to nginx!"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    with running_node(tmp_path_factory.mktemp("install")) as started:
        yield started


def test_the_image_is_built_from_the_repositorys_dockerfile_and_imported(node: Node) -> None:
    build_and_import_image(node, "build.sh", IMAGE_ARCHIVE)
    build_and_import_image(node, "nginx.sh", NGINX_ARCHIVE)


def test_helm_install_brings_two_ready_replicas_and_registers_the_webhooks(node: Node) -> None:
    helm(node, "install", RELEASE, str(CHART), "--namespace", GUARD_NAMESPACE,
         "--create-namespace", "--wait", "--timeout=5m")  # fmt: skip
    assert ready_replicas(node) == 2
    assert sorted(webhook_configurations(node)) == [
        f"mutatingwebhookconfigurations/{RELEASE}",
        f"validatingwebhookconfigurations/{RELEASE}",
    ]
    validating = json.loads(
        node.kubectl("get", "validatingwebhookconfiguration", RELEASE, "-o", "json").stdout
    )
    assert all(w["clientConfig"]["caBundle"] for w in validating["webhooks"])


def test_helm_test_reaches_the_webhook_through_its_service(node: Node) -> None:
    run = helm(node, "test", RELEASE, "--namespace", GUARD_NAMESPACE, "--timeout=3m")
    assert "Phase:          Succeeded" in run.stdout


def test_the_api_server_calls_the_webhook_and_a_mutate_namespace_gets_cluster_ip(
    node: Node,
) -> None:
    node.kubectl("create", "namespace", "shop")
    node.kubectl("label", "namespace", "shop", "clusterip-guard.io/mode=mutate")
    run = node.kubectl(
        "-n",
        "shop",
        "create",
        "-f",
        "-",
        "-o",
        "json",
        stdin=json.dumps(node_port_service("probe")),
    )
    assert "clusterip-guard converted this Service from NodePort to ClusterIP" in run.stderr
    stored = json.loads(run.stdout)
    assert stored["spec"]["type"] == "ClusterIP"


def example_with_local_nginx() -> str:
    """The example manifest, with the nginx image made here from Debian's package (no registry
    to pull nginx:1.27 from); nothing else changes."""
    documents = list(yaml.safe_load_all(EXAMPLE.read_text()))
    for document in documents:
        if document["kind"] == "Deployment":
            container = document["spec"]["template"]["spec"]["containers"][0]
            container["image"] = NGINX_IMAGE
            container["imagePullPolicy"] = "Never"
    return yaml.safe_dump_all(documents)


def apply_example(node: Node, namespace: str) -> subprocess.CompletedProcess[str]:
    run = node.kubectl("-n", namespace, "apply", "-f", "-", stdin=example_with_local_nginx())
    node.kubectl("-n", namespace, "rollout", "status", "deployment/nginx", "--timeout=180s")
    return run


def fetch_in_cluster(node: Node, namespace: str, url: str) -> str:
    """What a Pod in the cluster gets from `url` (python3 in the clusterip-guard image)."""
    script = (
        f"import urllib.request; print(urllib.request.urlopen('{url}', timeout=5).read().decode())"
    )
    run = node.kubectl(
        "-n", namespace, "run", "fetch", "--rm", "-i", "--restart=Never", "--quiet",
        f"--image=clusterip-guard:{chart_app_version()}", "--image-pull-policy=Never",
        "--command", "--", "python3", "-c", script,
        check=False,
    )  # fmt: skip
    return run.stdout + run.stderr


def chart_app_version() -> str:
    return str(yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"])


def test_the_exercise_nginx_is_reachable_only_inside_the_cluster(node: Node) -> None:
    applied = apply_example(node, "shop")
    assert "clusterip-guard converted this Service from NodePort to ClusterIP" in applied.stderr
    service = json.loads(node.kubectl("-n", "shop", "get", "service", "nginx", "-o", "json").stdout)
    assert service["spec"]["type"] == "ClusterIP"
    assert "nodePort" not in service["spec"]["ports"][0]
    assert service["metadata"]["annotations"]["clusterip-guard.io/converted-from"] == "NodePort"
    ready = json.loads(
        node.kubectl("-n", "shop", "get", "deployment", "nginx", "-o", "json").stdout
    )
    assert ready["status"]["readyReplicas"] == 3

    cluster_ip = service["spec"]["clusterIP"]
    assert until(
        lambda: WELCOME in fetch_in_cluster(node, "shop", f"http://{cluster_ip}/"), timeout=60
    ), "nginx's page did not come through the ClusterIP inside the cluster"
    with pytest.raises(ConnectionRefusedError):
        http_get(NODE_IP, EXAMPLE_NODE_PORT)  # closed on the node's address


def test_the_same_manifest_in_an_unlabelled_namespace_answers_on_its_node_port(
    node: Node,
) -> None:
    node.kubectl("create", "namespace", "sandbox")
    applied = apply_example(node, "sandbox")
    assert "clusterip-guard" not in applied.stderr
    service = json.loads(
        node.kubectl("-n", "sandbox", "get", "service", "nginx", "-o", "json").stdout
    )
    assert service["spec"]["type"] == "NodePort"

    def answered() -> bool:
        try:
            return WELCOME in http_get(NODE_IP, EXAMPLE_NODE_PORT)
        except OSError:
            return False

    assert until(answered, timeout=60), f"no answer on {NODE_IP}:{EXAMPLE_NODE_PORT}"
    node.kubectl("delete", "namespace", "sandbox", "--wait=true", "--timeout=120s")


HOST_PORT_EXAMPLE = ROOT / "examples" / "nginx-hostport.yaml"
HOST_PORT = 8088


def apply_host_port_example(node: Node, namespace: str) -> subprocess.CompletedProcess[str]:
    """examples/nginx-hostport.yaml with the local nginx image; not checked (enforce denies)."""
    (document,) = yaml.safe_load_all(HOST_PORT_EXAMPLE.read_text())
    container = document["spec"]["template"]["spec"]["containers"][0]
    container.update(image=NGINX_IMAGE, imagePullPolicy="Never")
    return node.kubectl(
        "-n", namespace, "apply", "-f", "-", stdin=yaml.safe_dump(document), check=False
    )


def answers_on_the_host_port() -> bool:
    try:
        return WELCOME in http_get(NODE_IP, HOST_PORT)
    except OSError:
        return False


def test_a_host_port_in_a_mutate_namespace_is_removed_and_nothing_answers_on_the_node(
    node: Node,
) -> None:
    applied = apply_host_port_example(node, "shop")
    assert applied.returncode == 0, applied.stderr
    assert "clusterip-guard removed host ports from this Deployment" in applied.stderr
    node.kubectl("-n", "shop", "rollout", "status", "deployment/nginx-hostport",
                 "--timeout=180s")  # fmt: skip
    pods = json.loads(
        node.kubectl("-n", "shop", "get", "pods", "-l", "app=nginx-hostport", "-o", "json").stdout
    )["items"]
    assert pods
    for pod in pods:  # running, its container port kept, no host port
        assert pod["status"]["phase"] == "Running"
        assert pod["spec"]["containers"][0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    with pytest.raises(ConnectionRefusedError):
        http_get(NODE_IP, HOST_PORT)


def test_the_same_host_port_manifest_in_an_off_namespace_answers_on_the_node(node: Node) -> None:
    """The control: the node maps a host port, so the refusal above is the conversion's."""
    node.kubectl("create", "namespace", "hostport-off")
    node.kubectl("label", "namespace", "hostport-off", "clusterip-guard.io/mode=off")
    applied = apply_host_port_example(node, "hostport-off")
    assert applied.returncode == 0, applied.stderr
    assert "clusterip-guard" not in applied.stderr
    node.kubectl("-n", "hostport-off", "rollout", "status", "deployment/nginx-hostport",
                 "--timeout=180s")  # fmt: skip
    assert until(answers_on_the_host_port, timeout=60), f"no answer on {NODE_IP}:{HOST_PORT}"
    node.kubectl("delete", "namespace", "hostport-off", "--wait=true", "--timeout=120s")


def test_enforce_denies_a_host_port_at_kubectl_apply_and_mutate_a_host_network_pod(
    node: Node,
) -> None:
    node.kubectl("create", "namespace", "strict")
    node.kubectl("label", "namespace", "strict", "clusterip-guard.io/mode=enforce")
    applied = apply_host_port_example(node, "strict")
    assert applied.returncode != 0
    assert 'admission webhook "enforce-workloads.clusterip-guard.io" denied the request' in (
        applied.stderr
    )
    assert "Deployment strict/nginx-hostport would be reachable from outside the cluster" in (
        applied.stderr
    )
    # Denied at the workload: no ReplicaSet, no Pod was ever made.
    assert node.kubectl("-n", "strict", "get", "replicasets,pods", "-o", "name").stdout == ""
    host_network = node.kubectl(
        "-n", "shop", "run", "on-the-host", f"--image={NGINX_IMAGE}",
        "--image-pull-policy=Never", "--overrides",
        json.dumps({"spec": {"hostNetwork": True}}), check=False,
    )  # fmt: skip
    assert host_network.returncode != 0
    assert "the host network cannot be taken from a Pod without making it another Pod" in (
        host_network.stderr
    )
    node.kubectl("delete", "namespace", "strict", "--wait=false")


class ServiceStream:
    """Creates NodePort Services in a mutate namespace, one after another, until stopped;
    every create must succeed and come back as ClusterIP."""

    def __init__(self, node: Node, namespace: str) -> None:
        self.core = api(node)
        self.namespace = namespace
        self.created = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            name = f"stream-{self.created + len(self.failures)}"
            try:
                stored_type = create_service(self.core, self.namespace, node_port_service(name))
            except ApiException as error:
                self.failures.append(f"{name}: {error.status} {error.reason}: {error.body}")
            else:
                if stored_type != "ClusterIP":
                    self.failures.append(f"{name}: stored as {stored_type}")
                self.created += 1
            time.sleep(0.05)

    def __enter__(self) -> ServiceStream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def test_a_rolling_restart_loses_no_admission(node: Node) -> None:
    node.kubectl("create", "namespace", "stream-restart")
    node.kubectl("label", "namespace", "stream-restart", "clusterip-guard.io/mode=mutate")
    with ServiceStream(node, "stream-restart") as stream:
        time.sleep(3)
        node.kubectl("-n", GUARD_NAMESPACE, "rollout", "restart", f"deployment/{RELEASE}")
        node.kubectl("-n", GUARD_NAMESPACE, "rollout", "status", f"deployment/{RELEASE}",
                     "--timeout=180s")  # fmt: skip
        time.sleep(8)  # the last old replica's shutdown delay and drain
    assert stream.failures == []
    assert stream.created > 50


def test_a_deleted_pod_loses_no_admission(node: Node) -> None:
    node.kubectl("create", "namespace", "stream-delete")
    node.kubectl("label", "namespace", "stream-delete", "clusterip-guard.io/mode=mutate")
    selector = "app.kubernetes.io/name=clusterip-guard"
    listed = node.kubectl("-n", GUARD_NAMESPACE, "get", "pods", "-l", selector, "-o", "json")
    pods = json.loads(listed.stdout)["items"]
    with ServiceStream(node, "stream-delete") as stream:
        time.sleep(3)
        node.kubectl("-n", GUARD_NAMESPACE, "delete", "pod", pods[0]["metadata"]["name"],
                     "--wait=true", "--timeout=60s")  # fmt: skip
        time.sleep(5)
    assert stream.failures == []
    assert stream.created > 30


def pods_of_the_webhook(node: Node) -> dict[str, int]:
    listed = node.kubectl("-n", GUARD_NAMESPACE, "get", "pods", "-l",
                          "app.kubernetes.io/name=clusterip-guard", "-o", "json")  # fmt: skip
    return {
        pod["metadata"]["uid"]: pod["status"]["containerStatuses"][0]["restartCount"]
        for pod in json.loads(listed.stdout)["items"]
    }


def external_ips_kept(node: Node) -> list[str] | None:
    """What a mutate namespace keeps of an external IP in 192.0.2.0/24 (a server dry run);
    None when refused: while a changed policy rolls out, the two replicas may judge apart for
    a few seconds, the mutating call on one, the validating backstop on the other."""
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "with-external-ip"},
        "spec": {"ports": [{"port": 80}], "externalIPs": ["192.0.2.10"]},
    }
    run = node.kubectl("-n", "shop", "create", "--dry-run=server", "-o", "json", "-f", "-",
                       stdin=json.dumps(service), check=False)  # fmt: skip
    if run.returncode != 0:
        return None
    return list(json.loads(run.stdout)["spec"].get("externalIPs", []))


def test_a_changed_policy_is_reloaded_without_a_restart(node: Node) -> None:
    assert external_ips_kept(node) == []  # outside the allowed CIDRs: mutate drops it
    pods = pods_of_the_webhook(node)
    allowed = "policy.allowedExternalIPCIDRs={192.0.2.0/24}"
    helm(node, "upgrade", RELEASE, str(CHART), "--namespace", GUARD_NAMESPACE, "--reuse-values",
         "--set", allowed, "--wait", "--timeout=5m")  # fmt: skip
    if not until(lambda: external_ips_kept(node) == ["192.0.2.10"], timeout=120):
        selector = "app.kubernetes.io/name=clusterip-guard"
        logs = node.kubectl("-n", GUARD_NAMESPACE, "logs", "-l", selector, "--tail=20",
                            check=False)  # fmt: skip
        policy = node.kubectl("-n", GUARD_NAMESPACE, "get", "configmap", f"{RELEASE}-policy",
                              "-o", "yaml", check=False)  # fmt: skip
        pytest.fail(f"the new policy did not take effect:\n{policy.stdout}\n{logs.stdout}")
    assert pods_of_the_webhook(node) == pods  # the same Pods, never restarted


def test_helm_upgrade_keeps_the_certificates_and_applies_new_values(node: Node) -> None:
    before = serving_certificate(node)
    helm(node, "upgrade", RELEASE, str(CHART), "--namespace", GUARD_NAMESPACE,
         "--set", "defaultMode=audit", "--wait", "--timeout=5m")  # fmt: skip
    assert serving_certificate(node) == before
    validating = json.loads(
        node.kubectl("get", "validatingwebhookconfiguration", RELEASE, "-o", "json").stdout
    )
    assert "audit-default.clusterip-guard.io" in {w["name"] for w in validating["webhooks"]}
    helm(node, "test", RELEASE, "--namespace", GUARD_NAMESPACE, "--timeout=3m")


def reported(node: Node, namespace: str) -> dict[str, tuple[str, str]]:
    """Each Service's result and mode in the namespace's PolicyReport (empty: none yet)."""
    got = node.kubectl("-n", namespace, "get", "policyreport", "clusterip-guard", "-o", "json",
                       check=False)  # fmt: skip
    if got.returncode != 0:
        return {}
    return {
        r["resources"][0]["name"]: (r["result"], r["properties"]["mode"])
        for r in json.loads(got.stdout)["results"]
    }


def test_the_reports_component_keeps_policy_reports_current_in_the_cluster(node: Node) -> None:
    # The report CRDs, once, from the CLI: the component never installs CRDs itself.
    crds = clusterip_guard(node.kubeconfig, "scan", "--install-crds", "-n", "shop")
    assert crds.returncode in (0, 1), crds.stderr
    helm(node, "upgrade", RELEASE, str(CHART), "--namespace", GUARD_NAMESPACE, "--reuse-values",
         "--set", "reports.enabled=true", "--wait", "--timeout=5m")  # fmt: skip
    assert until(lambda: reported(node, "shop").get("nginx") == ("pass", "mutate (label)"),
                 timeout=60), reported(node, "shop")  # fmt: skip
    # Exposed before its namespace was labelled (the cluster default is audit by now).
    node.kubectl("create", "namespace", "reported")
    node.kubectl("-n", "reported", "create", "service", "nodeport", "legacy", "--tcp=80")
    judged = ("fail", "audit (cluster default)")
    assert until(lambda: reported(node, "reported").get("legacy") == judged,
                 timeout=30), reported(node, "reported")  # fmt: skip
    node.kubectl("label", "namespace", "reported", "clusterip-guard.io/mode=enforce")
    assert until(lambda: reported(node, "reported").get("legacy") == ("fail", "enforce (label)"),
                 timeout=30), reported(node, "reported")  # fmt: skip
    node.kubectl("delete", "namespace", "reported", "--wait=false")


def native_objects_of_the_release(node: Node) -> list[str]:
    names = []
    for kind in ("mutatingadmissionpolicies", "validatingadmissionpolicies"):
        found = json.loads(node.kubectl("get", kind, "-o", "json").stdout)["items"]
        names += [
            f"{kind}/{item['metadata']['name']}"
            for item in found
            if item["metadata"]["name"].startswith(RELEASE)
        ]
    return names


def sync_pods(node: Node) -> list[str]:
    listed = node.kubectl("-n", GUARD_NAMESPACE, "get", "pods", "-l",
                          f"app.kubernetes.io/name={RELEASE}-sync", "-o", "name")  # fmt: skip
    return listed.stdout.split()


def test_helm_upgrade_to_the_native_engine_guards_the_namespaces_in_process(node: Node) -> None:
    """`engine: native`: the admission server goes, the sync component renders the policy
    into admission policies the API server runs, and removes the webhook's configurations."""
    helm(node, "upgrade", RELEASE, str(CHART), "--namespace", GUARD_NAMESPACE, "--reuse-values",
         "--set", "engine=native", "--wait", "--timeout=5m")  # fmt: skip
    assert sync_pods(node)
    assert until(lambda: webhook_configurations(node) == [], timeout=60), webhook_configurations(
        node
    )
    assert f"mutatingadmissionpolicies/{RELEASE}-conversion" in native_objects_of_the_release(node)
    assert until(lambda: pods_of_the_webhook(node) == {}, timeout=120)

    def converted() -> bool:
        run = node.kubectl("-n", "shop", "create", "--dry-run=server", "-o", "json", "-f", "-",
                           stdin=json.dumps(node_port_service("native")), check=False)  # fmt: skip
        return run.returncode == 0 and json.loads(run.stdout)["spec"]["type"] == "ClusterIP"

    assert until(converted, timeout=60)  # shop is labelled mutate
    node.kubectl("create", "namespace", "vault")
    node.kubectl("label", "namespace", "vault", "clusterip-guard.io/mode=enforce")

    def denied() -> subprocess.CompletedProcess[str] | None:
        run = node.kubectl("-n", "vault", "create", "--dry-run=server", "-f", "-",
                           stdin=json.dumps(node_port_service("native")), check=False)  # fmt: skip
        return run if run.returncode != 0 else None

    assert until(denied, timeout=60)
    refusal = denied()
    assert refusal is not None
    assert f"ValidatingAdmissionPolicy '{RELEASE}-exposure'" in refusal.stderr
    assert "type NodePort opens a port on every node; use type ClusterIP" in refusal.stderr


def test_helm_uninstall_leaves_no_webhook_and_services_work_after(node: Node) -> None:
    helm(node, "uninstall", RELEASE, "--namespace", GUARD_NAMESPACE, "--wait", "--timeout=5m")
    assert webhook_configurations(node) == []
    # Nor the native engine's policies (the release ran it last).
    assert native_objects_of_the_release(node) == []
    secrets = json.loads(
        node.kubectl("-n", GUARD_NAMESPACE, "get", "secrets", "-o", "json").stdout
    )["items"]
    assert [
        s["metadata"]["name"] for s in secrets if "clusterip-guard" in s["metadata"]["name"]
    ] == []
    stored_type = create_service(api(node), "shop", node_port_service("after-uninstall"))
    assert stored_type == "NodePort"  # nothing judges the namespace any more


def test_the_node_goes_down_cleanly(node: Node, tmp_path: Path) -> None:
    down = cluster(node.dev, "down")
    assert down.returncode == 0, down.stderr
