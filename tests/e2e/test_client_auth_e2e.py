"""The API server authenticates to the webhook: `serve --client-ca` requires a client
certificate, the bootstrap issues one, and a control plane started with an
AdmissionConfiguration presents it. A caller without one is refused.

A control plane of its own: its API server is configured with the client certificate, which
must exist before it starts.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from localcluster import ControlPlane, start
from tests.support.kubectl import Kubectl
from tests.support.webhook_process import LOOPBACK, CertificateFiles, WebhookProcess, free_port

pytestmark = pytest.mark.e2e


def bootstrap(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clusterip_guard.cli.main", "bootstrap", "--name", "client-auth",
         *args],
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def guarded(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[WebhookProcess, CertificateFiles, Kubectl]]:
    files = CertificateFiles(tmp_path_factory.mktemp("client-auth"))
    port = free_port()
    url_mode = ("--url", f"https://127.0.0.1:{port}", "--cert-dir", str(files.folder),
                "--ip", "127.0.0.1")  # fmt: skip
    # The certificates first (on the shared control plane, then unregistered from it): the
    # new API server must be given its client certificate when it starts.
    issued = bootstrap(control_plane.kubeconfig, *url_mode, "--client-cert-dir", str(files.folder))
    assert issued.returncode == 0, issued.stderr
    assert (files.folder / "client.crt").exists()
    assert (files.folder / "client.key").exists()
    removed = bootstrap(control_plane.kubeconfig, *url_mode, "--uninstall", "--keep-certificates")
    assert removed.returncode == 0, removed.stderr
    client = (files.folder / "client.crt", files.folder / "client.key")
    with start(tmp_path_factory.mktemp("client-auth-plane"), webhook_client=client) as plane:
        registered = bootstrap(plane.kubeconfig, *url_mode, "--client-cert-dir", str(files.folder))
        assert registered.returncode == 0, registered.stderr
        assert "wrote" not in registered.stdout  # the same certificates, kept
        webhook = WebhookProcess(
            files, port=port, extra_args=("--client-ca", str(files.ca_file))
        ).start()
        kubectl = Kubectl(plane.kubeconfig)
        kubectl("create", "namespace", "guarded")
        kubectl("label", "namespace", "guarded", "clusterip-guard.io/mode=enforce")
        try:
            yield webhook, files, kubectl
        finally:
            webhook.stop()


def test_the_api_server_presents_its_certificate_and_gets_answers(
    guarded: tuple[WebhookProcess, CertificateFiles, Kubectl],
) -> None:
    _, _, kubectl = guarded
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
               "spec": {"type": "NodePort", "ports": [{"port": 80}]}}  # fmt: skip
    run = kubectl("-n", "guarded", "create", "-f", "-", stdin=json.dumps(service), check=False)
    assert run.returncode != 0
    assert 'admission webhook "enforce.clusterip-guard.io" denied the request' in run.stderr


def test_a_caller_without_a_client_certificate_is_refused(
    guarded: tuple[WebhookProcess, CertificateFiles, Kubectl],
) -> None:
    webhook, files, _ = guarded
    with pytest.raises((ssl.SSLError, httpx.TransportError)):
        httpx.post(f"{webhook.url}/validate/enforce", content=b"{}", verify=files.client_context(),
                   headers={"content-type": "application/json"}, timeout=5)  # fmt: skip


def test_probes_use_the_plain_port_which_needs_no_certificate(
    guarded: tuple[WebhookProcess, CertificateFiles, Kubectl],
) -> None:
    webhook, _, _ = guarded
    for path in ("/healthz", "/readyz"):
        reply = httpx.get(f"http://{LOOPBACK}:{webhook.metrics_port}{path}", timeout=5)
        assert reply.status_code == 200
