"""Host ports and the host network on the real API server (docs/design.md, "What counts as
exposed"): bootstrap (url mode) registers `serve` with a policy allowing one host port and
exempting one DaemonSet; Pods and every kind of workload are written with kubectl in each
mode. What the API server makes of our patch, our match condition and our identities of the
workload controllers is shown here, not assumed. (That nothing answers on a node's host port
after a conversion is shown on the real node: tests/e2e/test_node_host_ports_e2e.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from localcluster import ControlPlane
from tests.e2e.test_admission_e2e import run_bootstrap
from tests.support.kubectl import Kubectl
from tests.support.polling import until
from tests.support.webhook_process import CertificateFiles, WebhookProcess, free_port

pytestmark = pytest.mark.e2e

CONFIGURATION = "hostports-clusterip-guard"
MODE_LABEL = "clusterip-guard.io/mode"
NAMESPACES = {"h-enforce": "enforce", "h-mutate": "mutate", "h-audit": "audit", "h-plain": None}
POLICY = """\
allowedHostPorts: [9100]
exemptions:
  - {namespace: h-enforce, name: node-agent, kind: DaemonSet, reason: the node's own agent}
"""
REPLICASET_CONTROLLER = "system:serviceaccount:kube-system:replicaset-controller"


@pytest.fixture(scope="module")
def webhook(
    control_plane: ControlPlane, kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebhookProcess]:
    folder = tmp_path_factory.mktemp("hostports")
    files = CertificateFiles(folder)
    port = free_port()
    registration = ("--url", f"https://127.0.0.1:{port}", "--cert-dir", str(files.folder),
                    "--ip", "127.0.0.1")  # fmt: skip
    bootstrap = run_bootstrap(control_plane, *registration, name=CONFIGURATION)
    assert bootstrap.returncode == 0, bootstrap.stderr
    policy = folder / "policy.yaml"
    policy.write_text(POLICY)
    process = WebhookProcess(files, policy_file=policy, port=port).start()
    for namespace, mode in NAMESPACES.items():
        kubectl("create", "namespace", namespace)
        if mode:
            kubectl("label", "namespace", namespace, f"{MODE_LABEL}={mode}")
    probe = pod_yaml("probe", host_port=8088)
    # A new registration and labels reach admission a moment later.
    assert until(
        lambda: apply(kubectl, "h-enforce", probe, "--dry-run=server").returncode != 0, timeout=60
    )
    yield process
    process.stop()
    run_bootstrap(control_plane, *registration, "--uninstall", name=CONFIGURATION)


def pod_spec(host_port: int | None = None, host_network: bool = False) -> dict[str, Any]:
    port: dict[str, Any] = {"containerPort": 80, "protocol": "TCP"}
    if host_port is not None:
        port.update(hostPort=host_port, hostIP="0.0.0.0")
    spec: dict[str, Any] = {
        "containers": [{"name": "nginx", "image": "nginx:1.27", "ports": [port]}],
        "restartPolicy": "Always",
    }
    if host_network:
        spec["hostNetwork"] = True
    return spec


def pod_yaml(name: str, owner: tuple[str, str] | None = None, **kwargs: Any) -> str:
    metadata: dict[str, Any] = {"name": name, "labels": {"app": name}}
    if owner is not None:
        metadata["ownerReferences"] = [{
            "apiVersion": "apps/v1", "kind": owner[0], "name": owner[1], "controller": True,
            "uid": "0b6a3c5e-4a5e-4c5b-9e0f-1d2c3b4a5f60",
        }]  # fmt: skip
    return yaml.safe_dump(
        {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": pod_spec(**kwargs)}
    )


def template(name: str, restart: str = "Always", **kwargs: Any) -> dict[str, Any]:
    spec = pod_spec(**kwargs)
    spec["restartPolicy"] = restart
    return {"metadata": {"labels": {"app": name}}, "spec": spec}


def workload_yaml(kind: str, name: str, **kwargs: Any) -> str:
    selector = {"matchLabels": {"app": name}}
    specs: dict[str, tuple[str, dict[str, Any]]] = {
        "Deployment": ("apps/v1", {"selector": selector, "template": template(name, **kwargs)}),
        "ReplicaSet": ("apps/v1", {"selector": selector, "template": template(name, **kwargs)}),
        "DaemonSet": ("apps/v1", {"selector": selector, "template": template(name, **kwargs)}),
        "StatefulSet": (
            "apps/v1",
            {"selector": selector, "serviceName": name, "template": template(name, **kwargs)},
        ),
        "Job": ("batch/v1", {"template": template(name, "Never", **kwargs)}),
        "CronJob": (
            "batch/v1",
            {
                "schedule": "0 0 1 1 *",
                "jobTemplate": {"spec": {"template": template(name, "Never", **kwargs)}},
            },
        ),
        "ReplicationController": (
            "v1",
            {"selector": {"app": name}, "template": template(name, **kwargs)},
        ),
    }
    api_version, spec = specs[kind]
    return yaml.safe_dump(
        {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, "spec": spec}
    )


def apply(kubectl: Kubectl, namespace: str, manifest: str, *args: str, user: str = "") -> Any:
    """kubectl apply; as `user`, kubectl create (a controller's role may create Pods, not get
    them, and apply gets first)."""
    verb = ("create", f"--as={user}") if user else ("apply",)
    return kubectl("-n", namespace, *verb, "-f", "-", *args, stdin=manifest, check=False)


def stored(kubectl: Kubectl, namespace: str, kind: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(
        kubectl("-n", namespace, "get", kind, name, "-o", "json").stdout
    )
    return found


KINDS = ["Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob",
         "ReplicationController"]  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
def test_enforce_denies_a_host_port_at_kubectl_apply_of_every_workload_kind(
    webhook: WebhookProcess, kubectl: Kubectl, kind: str
) -> None:
    run = apply(kubectl, "h-enforce", workload_yaml(kind, "web", host_port=8088))
    assert run.returncode != 0
    assert 'admission webhook "enforce-workloads.clusterip-guard.io" denied the request' in (
        run.stderr
    )
    assert f"{kind} h-enforce/web would be reachable from outside the cluster" in run.stderr
    assert "opens host port 8088 on its node; remove hostPort" in run.stderr


def test_enforce_denies_a_pod_with_a_host_port_or_on_the_host_network(
    webhook: WebhookProcess, kubectl: Kubectl
) -> None:
    run = apply(kubectl, "h-enforce", pod_yaml("bare", host_port=8088))
    assert "Pod h-enforce/bare would be reachable" in run.stderr
    run = apply(kubectl, "h-enforce", pod_yaml("hostnet", host_network=True))
    assert run.returncode != 0
    # The API server fills in hostPort = containerPort on the host network; one line says it.
    assert "spec.hostNetwork: hostNetwork: true puts the Pod on its node's own network" in (
        run.stderr
    )


def test_mutate_removes_the_host_port_from_a_deployment_and_keeps_the_container_port(
    webhook: WebhookProcess, kubectl: Kubectl
) -> None:
    run = apply(kubectl, "h-mutate", workload_yaml("Deployment", "web", host_port=8088))
    assert run.returncode == 0, run.stderr
    assert "Warning: clusterip-guard removed host ports from this Deployment: removed " in (
        run.stderr
    )
    ports = stored(kubectl, "h-mutate", "deployment", "web")["spec"]["template"]["spec"][
        "containers"
    ][0]["ports"]
    assert ports == [{"containerPort": 80, "protocol": "TCP"}]


def test_mutate_removes_a_bare_pods_host_port_and_denies_the_host_network(
    webhook: WebhookProcess, kubectl: Kubectl
) -> None:
    run = apply(kubectl, "h-mutate", pod_yaml("bare", host_port=8088))
    assert run.returncode == 0, run.stderr
    assert stored(kubectl, "h-mutate", "pod", "bare")["spec"]["containers"][0]["ports"] == [
        {"containerPort": 80, "protocol": "TCP"}
    ]
    run = apply(kubectl, "h-mutate", pod_yaml("hostnet", host_network=True))
    assert run.returncode != 0
    assert 'admission webhook "mutate-workloads.clusterip-guard.io" denied the request' in (
        run.stderr
    )
    assert "the host network cannot be taken from a Pod without making it another Pod" in (
        run.stderr
    )


def test_audit_allows_and_warns(webhook: WebhookProcess, kubectl: Kubectl) -> None:
    run = apply(kubectl, "h-audit", workload_yaml("DaemonSet", "agent", host_port=8088))
    assert run.returncode == 0, run.stderr
    assert "Warning: audit: DaemonSet h-audit/agent: spec.template.spec.containers[0]" in run.stderr
    stored_ports = stored(kubectl, "h-audit", "daemonset", "agent")["spec"]["template"]["spec"][
        "containers"
    ][0]["ports"]
    assert stored_ports[0]["hostPort"] == 8088


def test_allowed_host_ports_and_exempt_workloads_pass_enforce(
    webhook: WebhookProcess, kubectl: Kubectl
) -> None:
    run = apply(kubectl, "h-enforce", workload_yaml("Deployment", "metrics", host_port=9100))
    assert run.returncode == 0, run.stderr
    run = apply(kubectl, "h-enforce", workload_yaml("DaemonSet", "node-agent", host_port=8088))
    assert run.returncode == 0, run.stderr
    assert "allowed by exemption DaemonSet h-enforce/node-agent (the node's own agent)" in (
        run.stderr
    )
    # The exemption names its kind: a Deployment of the same name is judged.
    run = apply(kubectl, "h-enforce", workload_yaml("Deployment", "node-agent", host_port=8088))
    assert run.returncode != 0


def test_what_a_workload_controller_writes_is_judged_at_its_workload(
    webhook: WebhookProcess, kubectl: Kubectl
) -> None:
    owner = ("ReplicaSet", "legacy-5d8f")
    made = pod_yaml("legacy-5d8f-abcde", owner=owner, host_port=8088)
    run = apply(kubectl, "h-enforce", made, "--dry-run=server", user=REPLICASET_CONTROLLER)
    assert run.returncode == 0, run.stderr
    assert "written by the ReplicaSet controller from ReplicaSet legacy-5d8f, judged there" in (
        run.stderr
    )
    # The same Pod from anyone else (here the cluster admin) is judged: an ownerReference is
    # anyone's to write.
    run = apply(kubectl, "h-enforce", made, "--dry-run=server")
    assert run.returncode != 0
    assert "Pod h-enforce/legacy-5d8f-abcde would be reachable" in run.stderr


def test_an_update_is_judged_on_the_host_ports_it_adds(
    webhook: WebhookProcess, kubectl: Kubectl
) -> None:
    kubectl("create", "namespace", "h-later")
    before = workload_yaml("Deployment", "legacy", host_port=8088)
    assert apply(kubectl, "h-later", before).returncode == 0
    kubectl("label", "namespace", "h-later", f"{MODE_LABEL}=enforce")
    # Labels reach admission a moment later: the first denial says they have.
    added = yaml.safe_load(before)
    added["spec"]["template"]["spec"]["containers"][0]["ports"].append(
        {"containerPort": 443, "hostPort": 8443, "protocol": "TCP"}
    )
    assert until(
        lambda: (
            apply(kubectl, "h-later", yaml.safe_dump(added), "--dry-run=server").returncode != 0
        ),
        timeout=30,
    )
    run = apply(kubectl, "h-later", yaml.safe_dump(added))
    assert "host port 8443" in run.stderr
    assert "host port 8088" not in run.stderr  # kept: not new
    kept = yaml.safe_load(before)
    kept["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"
    run = apply(kubectl, "h-later", yaml.safe_dump(kept))
    assert run.returncode == 0, run.stderr
    assert "existing exposure kept (allowExistingViolations)" in run.stderr


def test_compliant_pods_and_workloads_never_reach_the_webhook(
    webhook: WebhookProcess, kubectl: Kubectl
) -> None:
    before = webhook.reviews_answered()
    assert apply(kubectl, "h-enforce", pod_yaml("quiet")).returncode == 0
    assert apply(kubectl, "h-enforce", workload_yaml("Deployment", "quiet")).returncode == 0
    assert apply(kubectl, "h-enforce", workload_yaml("CronJob", "quiet")).returncode == 0
    kubectl("-n", "h-enforce", "label", "pod", "quiet", "tier=web")
    assert webhook.reviews_answered() == before  # the CEL matchCondition kept the calls away
    apply(kubectl, "h-enforce", pod_yaml("loud", host_port=8088), "--dry-run=server")
    assert webhook.reviews_answered() == before + 1


def test_system_namespaces_are_never_judged(webhook: WebhookProcess, kubectl: Kubectl) -> None:
    kube_proxy = pod_yaml("kube-proxy-probe", host_network=True)
    run = apply(kubectl, "kube-system", kube_proxy, "--dry-run=server")
    assert run.returncode == 0, run.stderr


def test_no_pod_update_can_add_a_host_port_so_none_is_sent(
    webhook: WebhookProcess, kubectl: Kubectl
) -> None:
    """Pods are registered for CREATE only: the API server itself refuses an UPDATE that
    changes a Pod's ports or its host network."""
    assert apply(kubectl, "h-plain", pod_yaml("fixed")).returncode == 0
    changed = yaml.safe_load(pod_yaml("fixed", host_port=8088))
    run = apply(kubectl, "h-plain", yaml.safe_dump(changed))
    assert run.returncode != 0
    assert "Forbidden: pod updates may not change fields other than" in run.stderr
    network = yaml.safe_load(pod_yaml("fixed", host_network=True))
    run = apply(kubectl, "h-plain", yaml.safe_dump(network))
    assert run.returncode != 0
    assert "Forbidden: pod updates may not change fields other than" in run.stderr
