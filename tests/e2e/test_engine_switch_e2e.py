"""An engine switch leaves no window (issue 30, item 1): NodePort creates streamed into an
`enforce` namespace while `bootstrap --engine native|webhook` and `sync` switch the engines
back and forth; none is stored, and no compliant write is refused. The API server compiles
admission policies on a poll of about a second, so a switch that removed the webhook right
after writing the policies stored NodePorts in between.

The verdict is on what was stored, not on timing. The number of switches each way is
CLUSTERIP_GUARD_SWITCHES (default 3, for CI; the issue asks 20:
`CLUSTERIP_GUARD_SWITCHES=20 pytest tests/e2e/test_engine_switch_e2e.py`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from localcluster import ControlPlane
from tests.support.chart import Manifest, args_run_here, render, the
from tests.support.cli import clusterip_guard
from tests.support.kubectl import Kubectl
from tests.support.polling import until
from tests.support.webhook_process import CertificateFiles, WebhookProcess, free_port

pytestmark = pytest.mark.e2e

SWITCHES = int(os.environ.get("CLUSTERIP_GUARD_SWITCHES", "3"))
MODE_LABEL = "clusterip-guard.io/mode"


@dataclass
class Stream:
    """NodePorts and compliant (headless) Services created one after the other, until told."""

    api: client.ApiClient
    namespace: str
    stop: threading.Event = field(default_factory=threading.Event)
    node_ports_tried: int = 0
    node_ports_stored: list[str] = field(default_factory=list)
    compliant_stored: list[str] = field(default_factory=list)
    compliant_refused: list[str] = field(default_factory=list)

    def run(self) -> None:
        core = client.CoreV1Api(self.api)
        create: Callable[..., Any] = core.create_namespaced_service_with_http_info
        while not self.stop.is_set():
            self.node_ports_tried += 1
            try:
                response = create(self.namespace, _service("np-", "NodePort"),
                                  _preload_content=False)  # fmt: skip
                self.node_ports_stored.append(json.loads(response.data)["metadata"]["name"])
            except ApiException:
                pass  # refused, by whichever engine (or a webhook failing closed)
            try:
                response = create(self.namespace, _service("ok-"), _preload_content=False)
                self.compliant_stored.append(json.loads(response.data)["metadata"]["name"])
            except ApiException as error:
                self.compliant_refused.append(f"{error.status}: {error.body}")


def _service(prefix: str, service_type: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"ports": [{"port": 80}]}
    # Compliant ones are headless: thousands of them take no ClusterIP from the small range.
    spec.update({"type": service_type} if service_type else {"clusterIP": "None"})
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"generateName": prefix},
            "spec": spec}  # fmt: skip


def run(control_plane: ControlPlane, *args: str) -> subprocess.CompletedProcess[str]:
    done = clusterip_guard(control_plane.kubeconfig, *args)
    assert done.returncode == 0, done.stderr
    return done


def switched_in_order(done: subprocess.CompletedProcess[str], new: str, old_kind: str) -> None:
    """The new engine was shown answering before anything of the old one went."""
    lines = done.stdout.splitlines()
    (shown,) = [i for i, line in enumerate(lines)
                if line.startswith(f"in force: the {new} engine answered")]  # fmt: skip
    deleted = [i for i, line in enumerate(lines) if line.startswith(f"deleted {old_kind}")]
    assert deleted, done.stdout
    assert shown < min(deleted), done.stdout


def test_no_node_port_is_stored_while_the_engines_switch_back_and_forth(
    control_plane: ControlPlane, kubectl: Kubectl, tmp_path: Path
) -> None:
    name = namespace = "switch-stream"
    bootstrap = ("bootstrap", "--name", name)
    files = CertificateFiles(tmp_path / "certs")
    port = free_port()
    webhook = ("--url", f"https://127.0.0.1:{port}", "--cert-dir", str(files.folder),
               "--ip", "127.0.0.1")  # fmt: skip
    run(control_plane, *bootstrap, *webhook)
    serving = WebhookProcess(files, port=port).start()
    # The sync reads its policy from a ConfigMap.
    kubectl("create", "namespace", "switch-stream-policy")
    kubectl("-n", "switch-stream-policy", "create", "configmap", "policy",
            "--from-literal=policy.yaml={}")  # fmt: skip
    sync = ("sync", "--name", name, "--policy-configmap", "switch-stream-policy/policy", "--once")
    kubectl("create", "namespace", namespace)
    kubectl("label", "namespace", namespace, f"{MODE_LABEL}=enforce")
    probe = ("-n", namespace, "create", "service", "nodeport", "probe", "--tcp=80",
             "--dry-run=server")  # fmt: skip
    assert until(lambda: kubectl(*probe, check=False).returncode != 0, timeout=60)

    streaming: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(control_plane.kubeconfig)
    )
    stream = Stream(streaming, namespace)
    worker = threading.Thread(target=stream.run, name="stream")
    worker.start()
    tried_during: list[int] = []
    try:
        for turn in range(SWITCHES):
            before = stream.node_ports_tried
            if turn % 2:  # the sync component takes the same path as the chart's upgrade
                run(control_plane, *sync)
            else:
                to_native = run(control_plane, *bootstrap, "--engine", "native")
                switched_in_order(to_native, "native", "ValidatingWebhookConfiguration")
            back = run(control_plane, *bootstrap, "--engine", "webhook", *webhook)
            switched_in_order(back, "webhook", "ValidatingAdmissionPolicy")
            tried_during.append(stream.node_ports_tried - before)
    finally:
        stream.stop.set()
        worker.join(timeout=60)
        serving.stop()
        clusterip_guard(control_plane.kubeconfig, *bootstrap, "--uninstall")
        streaming.close()  # type: ignore[no-untyped-call]

    # What was stored: every Service in the namespace, from the API server.
    listed = json.loads(kubectl("-n", namespace, "get", "services", "-o", "json").stdout)
    types = [(s["metadata"]["name"], s["spec"]["type"]) for s in listed["items"]]
    assert [n for n, t in types if t != "ClusterIP"] == [], "NodePorts stored in a switch"
    assert stream.node_ports_stored == []
    assert stream.compliant_refused == [], stream.compliant_refused[:3]
    assert sorted(n for n, _ in types) == sorted(stream.compliant_stored)
    # The stream ran through every round of switches, both ways.
    assert len(tried_during) == SWITCHES
    assert all(tried > 0 for tried in tried_during), tried_during
    print(
        f"{SWITCHES} switches each way; {stream.node_ports_tried} NodePorts tried, 0 stored; "
        f"{len(stream.compliant_stored)} compliant Services stored, 0 refused"
    )


def test_a_switch_to_an_engine_that_never_answers_keeps_the_old_one(
    control_plane: ControlPlane, kubectl: Kubectl, tmp_path: Path
) -> None:
    name = namespace = "switch-unanswered"
    run(control_plane, "bootstrap", "--name", name, "--engine", "native")
    kubectl("create", "namespace", namespace)
    kubectl("label", "namespace", namespace, f"{MODE_LABEL}=enforce")
    create = ("-n", namespace, "create", "service", "nodeport", "web", "--tcp=80",
              "--dry-run=server")  # fmt: skip
    try:
        assert until(lambda: kubectl(*create, check=False).returncode != 0, timeout=60)
        nobody = (
            "--engine", "webhook", "--url", f"https://127.0.0.1:{free_port()}",
            "--cert-dir", str(tmp_path / "certs"), "--ip", "127.0.0.1",
        )  # fmt: skip
        failed = clusterip_guard(control_plane.kubeconfig, "bootstrap", "--name", name,
                                 *nobody, "--switch-timeout-seconds", "3")  # fmt: skip
        assert failed.returncode == 2, failed.stdout
        (line,) = failed.stderr.splitlines()
        assert "the webhook engine did not answer within 3s" in line
        assert line.endswith(
            "removed what the webhook engine registered: the native engine stays in force"
        )
        # The native engine is as it was, the webhook's configurations gone again.
        names = kubectl("get", "validatingadmissionpolicies,validatingwebhookconfigurations",
                        "-o", "name").stdout.split()  # fmt: skip
        assert f"validatingadmissionpolicy.admissionregistration.k8s.io/{name}-exposure" in names
        assert not [n for n in names if n.startswith("validatingwebhookconfiguration")
                    and n.endswith(f"/{name}")]  # fmt: skip
        denied = kubectl(*create, check=False)
        assert f"ValidatingAdmissionPolicy '{name}-exposure'" in denied.stderr
    finally:
        clusterip_guard(control_plane.kubeconfig, "bootstrap", "--name", name, "--uninstall")


# --- the chart: its sync and its bootstrap Job switch by their own rights -----------------------

SERVES = ("admissionregistration.k8s.io/v1/MutatingAdmissionPolicy",
          "networking.k8s.io/v1/ServiceCIDR")  # fmt: skip
RBAC = (
    "Namespace",
    "ConfigMap",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
)


def service_account_kubeconfig(
    control_plane: ControlPlane, kubectl: Kubectl, namespace: str, account: str, path: Path
) -> Path:
    token = kubectl("-n", namespace, "create", "token", account).stdout.strip()
    admin = yaml.safe_load(control_plane.kubeconfig.read_text())
    config = {
        **admin,
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": account, "context": {
            "cluster": admin["clusters"][0]["name"], "user": account}}],
        "current-context": account,
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config))
    return path


def test_the_charts_sync_and_bootstrap_job_switch_by_their_own_rights(
    control_plane: ControlPlane, kubectl: Kubectl, tmp_path: Path
) -> None:
    """`helm upgrade --set engine=native` and back: the sync, then the bootstrap Job, each with
    the chart's RBAC only, probe the new engine in the chart's probe namespace and remove the
    old one. (The webhook answers from loopback: the Job is pointed at it with --url.)"""
    release = namespace = "switched"
    name = f"{release}-clusterip-guard"
    native = render("engine=native", release=release, namespace=namespace, api_versions=SERVES)
    webhook = render(release=release, namespace=namespace, api_versions=SERVES)
    kubectl("create", "namespace", namespace)
    files = CertificateFiles(tmp_path / "certs")
    port = free_port()
    url_mode = ("--url", f"https://127.0.0.1:{port}", "--cert-dir", str(files.folder),
                "--ip", "127.0.0.1")  # fmt: skip
    run(control_plane, "bootstrap", "--name", name, *url_mode)
    serving = WebhookProcess(files, port=port).start()

    def apply_rbac(documents: list[Manifest]) -> None:
        for document in documents:
            if document["kind"] in RBAC:
                kubectl("apply", "-f", "-", stdin=json.dumps(document))

    def as_account(account: str, args: list[str]) -> subprocess.CompletedProcess[str]:
        kubeconfig = service_account_kubeconfig(
            control_plane, kubectl, namespace, account, tmp_path / account
        )
        return subprocess.run(
            [sys.executable, "-m", "clusterip_guard.cli.main", *args],
            env={**os.environ, "KUBECONFIG": str(kubeconfig)},
            capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip

    def ours(kind: str) -> list[str]:
        return [n for n in kubectl("get", kind, "-o", "name").stdout.split()
                if n.split("/", 1)[1].startswith(name)]  # fmt: skip

    try:
        # The upgrade to native: its sync switches.
        apply_rbac(native)
        sync = the("Deployment", native, f"{name}-sync")["spec"]["template"]["spec"]
        synced = as_account(sync["serviceAccountName"], [*sync["containers"][0]["args"], "--once"])
        assert synced.returncode == 0, synced.stderr
        assert not ours("validatingwebhookconfigurations")
        assert ours("mutatingadmissionpolicies")
        # And back: the bootstrap Job switches.
        apply_rbac(webhook)
        job = the("Job", webhook, f"{name}-bootstrap")["spec"]["template"]["spec"]
        args = args_run_here(job, webhook, tmp_path / "policy")
        back = as_account(job["serviceAccountName"], [*args, *url_mode])
        assert back.returncode == 0, back.stderr
        switched_in_order(back, "webhook", "MutatingAdmissionPolicy")
        assert f"answered the probe in namespace {name}-probe" in back.stdout
        assert not ours("mutatingadmissionpolicies")
        assert ours("validatingwebhookconfigurations")
    finally:
        serving.stop()
        clusterip_guard(control_plane.kubeconfig, "bootstrap", "--name", name, *url_mode,
                        "--uninstall")  # fmt: skip
