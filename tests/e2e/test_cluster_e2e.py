"""A real node (`make cluster`): pods run, Services answer, and `make cluster-down` undoes it all.

Brings up hack/cluster/cluster.py in a folder of its own, builds a busybox client image and a
busybox httpd server image with buildah (no registry), runs a Deployment of two replicas, calls
it through a ClusterIP Service from a pod and through a NodePort Service from the host, then
stops the cluster and checks that nothing of it is left on the host.

Skipped, with the reason, on a machine that cannot run a node (not Linux, not root, no
/dev/kmsg...); with CI=true that is a failure instead.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.node import (
    BRIDGE,
    NODE_IP,
    HostSnapshot,
    Node,
    cluster,
    http_get,
    on_the_terminal,
    pod_template,
    running_node,
)
from tests.support.polling import until

pytestmark = [pytest.mark.e2e, pytest.mark.node]

NODE_PORT = 30080
CLIENT_IMAGE = "localhost/clusterip-guard-e2e/client:1"
SERVER_IMAGE = "localhost/clusterip-guard-e2e/httpd:1"
PAGE = "hello from a pod\n"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[Node]:
    with running_node(tmp_path_factory.mktemp("node"), on_the_terminal(pytestconfig)) as started:
        yield started


def test_the_node_is_ready_with_the_pinned_tools(node: Node) -> None:
    nodes = json.loads(node.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    assert len(nodes) == 1
    conditions = {c["type"]: c["status"] for c in nodes[0]["status"]["conditions"]}
    assert conditions["Ready"] == "True"
    assert nodes[0]["status"]["nodeInfo"]["kubeletVersion"] == "v1.37.2"
    client = json.loads(node.kubectl("version", "--client", "-o", "json").stdout)
    assert client["clientVersion"]["gitVersion"] == "v1.37.2"
    helm = subprocess.run(
        [str(node.dev / "bin" / "helm"), "version", "--short"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert helm.stdout.startswith("v4.")


def test_images_build_without_a_registry(node: Node, tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "www").mkdir(parents=True)
    (site / "www" / "index.html").write_text(PAGE)
    server = ["/bin/httpd", "-f", "-v", "-p", "8080", "-h", "/www"]
    for image, folder, entrypoint in (
        (CLIENT_IMAGE, tmp_path / "empty", ["/bin/sh"]),
        (SERVER_IMAGE, site, server),
    ):
        folder.mkdir(exist_ok=True)
        built = cluster(node.dev, "image", image, str(folder), "--busybox", "--", *entrypoint)
        assert built.returncode == 0, built.stderr


def test_a_deployment_of_two_replicas_becomes_ready(node: Node) -> None:
    node.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": pod_template("web", SERVER_IMAGE),
            },
        }
    )
    node.kubectl("rollout", "status", "deployment/web", "--timeout=120s")
    ready = json.loads(node.kubectl("get", "deployment", "web", "-o", "json").stdout)
    assert ready["status"]["readyReplicas"] == 2


def test_a_cluster_ip_service_answers_from_a_pod(node: Node) -> None:
    node.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        }
    )
    client = pod_template("client", CLIENT_IMAGE, ["sleep", "3600"])
    node.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "client", "namespace": "default", "labels": {"app": "client"}},
            "spec": client["spec"],
        }
    )
    node.kubectl("wait", "pod/client", "--for=condition=Ready", "--timeout=60s")
    ip = node.kubectl("get", "service", "web", "-o", "jsonpath={.spec.clusterIP}").stdout
    request = f'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 5 {ip} 80'

    def answered() -> bool:
        reply = node.kubectl("exec", "client", "--", "sh", "-c", request, check=False)
        return PAGE in reply.stdout

    assert until(answered, timeout=30), f"no answer from http://{ip} in a pod"


def test_a_node_port_service_answers_on_the_node_ip_from_the_host(node: Node) -> None:
    node.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web-nodeport", "namespace": "default"},
            "spec": {
                "type": "NodePort",
                "selector": {"app": "web"},
                "ports": [{"port": 80, "targetPort": 8080, "nodePort": NODE_PORT}],
            },
        }
    )

    def answered() -> bool:
        try:
            return PAGE in http_get(NODE_IP, NODE_PORT)
        except OSError:
            return False

    assert until(answered, timeout=30), f"no answer from http://{NODE_IP}:{NODE_PORT}"


def test_cluster_down_leaves_nothing_behind(node: Node) -> None:
    down = cluster(node.dev, "down")
    assert down.returncode == 0, down.stderr
    after = HostSnapshot.take()
    # Other work on a shared machine may add links and mounts meanwhile (a podman veth on its
    # own bridge, a buildah overlay): what would be ours is the bridge, a veth on no bridge
    # (ours lose theirs with it) and anything under our folder.
    assert BRIDGE not in after.links
    orphans = [
        link
        for link in after.links - node.before.links
        if link.startswith("veth") and not Path("/sys/class/net", link, "master").exists()
    ]
    assert not orphans, "veths left behind"
    assert after.chains <= node.before.chains, "iptables chains left behind"
    assert not [m for m in after.mounts - node.before.mounts if str(node.dev) in m]
    assert after.sysctls == node.before.sysctls
    processes = subprocess.run(
        ["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True
    ).stdout
    assert str(node.dev) not in processes
    again = cluster(node.dev, "down")
    assert again.returncode == 0, again.stderr
