"""The chart installed on a real node as a Helm release, from the image the repository's
Dockerfile builds: what an admin types (helm) and looks at afterwards (the Deployment, the
webhook configurations, the serving certificate, a Service as stored)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from kubernetes import client, config

from tests.support.node import Node, cluster
from tests.support.paths import ROOT
from tests.support.polling import until

CHART = ROOT / "charts" / "clusterip-guard"
RELEASE = "clusterip-guard"
GUARD_NAMESPACE = "clusterip-guard"
IMAGE_ARCHIVE = ROOT / ".dev" / "images" / "clusterip-guard.tar"
BUILD_TIMEOUT = 1200  # a cold image build: a debootstrap base, the wheelhouse, buildah


def build_and_import_image(node: Node, script: str, archive: Path) -> None:
    """Build an image with hack/image/SCRIPT (no registry) and import its archive into the
    node's containerd."""
    built = subprocess.run(
        ["bash", str(ROOT / "hack" / "image" / script)],
        capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False, cwd=ROOT,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    imported = cluster(node.dev, "import", str(archive))
    assert imported.returncode == 0, imported.stderr


def helm(node: Node, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    run = subprocess.run(
        [str(node.dev / "bin" / "helm"), f"--kubeconfig={node.kubeconfig}", *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    assert run.returncode == 0, f"helm {' '.join(args)} failed:\n{run.stdout}\n{run.stderr}"
    return run


def api(node: Node) -> client.CoreV1Api:
    return client.CoreV1Api(
        config.new_client_from_config(config_file=str(node.kubeconfig))  # type: ignore[no-untyped-call]
    )


def node_port_service(name: str, node_port: int | None = None) -> dict[str, Any]:
    port: dict[str, Any] = {"port": 80, "targetPort": 80}
    if node_port is not None:
        port["nodePort"] = node_port
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"type": "NodePort", "selector": {"app": name}, "ports": [port]},
    }


def create_service(core: client.CoreV1Api, namespace: str, manifest: dict[str, Any]) -> str:
    """Create the Service; its type as stored."""
    body = client.V1Service.from_dict(manifest)
    assert body is not None
    stored = core.create_namespaced_service(namespace, body)
    assert stored.spec is not None
    return str(stored.spec.type)


def reachable_through_its_service(node: Node, namespace: str, timeout: float = 60) -> bool:
    """Whether the API server reaches the webhook through its Service within `timeout`: a
    server-side dry run of a NodePort Service in `namespace` (a judged one) is answered.
    kube-proxy programs the Service's endpoints a moment after the Pods are Ready, which is
    when `helm --wait` returns; until then a call is refused."""
    manifest = json.dumps(node_port_service("reachable"))

    def answered() -> bool:
        run = node.kubectl("-n", namespace, "create", "--dry-run=server", "-f", "-",
                           stdin=manifest, check=False)  # fmt: skip
        return "failed calling webhook" not in run.stderr

    return until(answered, timeout=timeout)


def ready_replicas(node: Node) -> int:
    deployment = json.loads(
        node.kubectl("-n", GUARD_NAMESPACE, "get", "deployment", RELEASE, "-o", "json").stdout
    )
    return int(deployment["status"].get("readyReplicas", 0))


def webhook_configurations(node: Node) -> list[str]:
    names = []
    for kind in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations"):
        found = json.loads(node.kubectl("get", kind, "-o", "json").stdout)["items"]
        names += [f"{kind}/{item['metadata']['name']}" for item in found]
    return names


def webhook_configuration(node: Node, kind: str) -> dict[str, Any]:
    """The release's MutatingWebhookConfiguration or ValidatingWebhookConfiguration."""
    found: dict[str, Any] = json.loads(node.kubectl("get", kind, RELEASE, "-o", "json").stdout)
    return found


def serving_secret(node: Node) -> dict[str, str]:
    """The data of the Secret the webhook mounts (base64, as stored)."""
    secret = json.loads(
        node.kubectl("-n", GUARD_NAMESPACE, "get", "secret", f"{RELEASE}-tls", "-o", "json").stdout
    )
    return dict(secret["data"])


def serving_certificate(node: Node) -> str:
    return serving_secret(node)["tls.crt"]
