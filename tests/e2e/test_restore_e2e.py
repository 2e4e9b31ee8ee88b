"""A registration someone narrowed is put back by the next `bootstrap` (issue 30, item 6):
an `objectSelector` added to the enforce webhook entry, or to the native engine's binding, let
a labelled NodePort skip the guard until the bootstrap restored it and said so."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcluster import ControlPlane
from tests.support.cli import clusterip_guard
from tests.support.kubectl import Kubectl
from tests.support.polling import until
from tests.support.webhook_process import CertificateFiles, WebhookProcess, free_port

pytestmark = pytest.mark.e2e

MODE_LABEL = "clusterip-guard.io/mode"
# What another admin's tool added: objects labelled so are no longer judged.
SKIP = {"matchExpressions": [{"key": "skip-guard", "operator": "DoesNotExist"}]}


def admitted(kubectl: Kubectl, namespace: str, labelled: bool) -> bool:
    """Whether a NodePort (labelled skip-guard or not) is admitted; a server dry run."""
    labels = {"skip-guard": "yes"} if labelled else {}
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "web", "labels": labels},
               "spec": {"type": "NodePort", "ports": [{"port": 80}]}}  # fmt: skip
    run = kubectl("-n", namespace, "create", "--dry-run=server", "-f", "-",
                  stdin=json.dumps(service), check=False)  # fmt: skip
    return run.returncode == 0


def bootstrap(control_plane: ControlPlane, *args: str) -> subprocess.CompletedProcess[str]:
    done = clusterip_guard(control_plane.kubeconfig, "bootstrap", *args)
    assert done.returncode == 0, done.stderr
    return done


def enforced(kubectl: Kubectl, namespace: str) -> str:
    kubectl("create", "namespace", namespace)
    kubectl("label", "namespace", namespace, f"{MODE_LABEL}=enforce")
    return namespace


@pytest.fixture
def webhook_engine(control_plane: ControlPlane, tmp_path: Path) -> Iterator[tuple[str, ...]]:
    files = CertificateFiles(tmp_path / "certs")
    port = free_port()
    args = ("--name", "narrowed-webhook", "--url", f"https://127.0.0.1:{port}",
            "--cert-dir", str(files.folder), "--ip", "127.0.0.1")  # fmt: skip
    bootstrap(control_plane, *args)
    webhook = WebhookProcess(files, port=port).start()
    yield args
    webhook.stop()
    bootstrap(control_plane, *args, "--uninstall")


def test_an_object_selector_added_to_the_enforce_entry_is_put_back(
    control_plane: ControlPlane, kubectl: Kubectl, webhook_engine: tuple[str, ...]
) -> None:
    name = "narrowed-webhook"
    namespace = enforced(kubectl, "narrowed-webhook")
    configuration = json.loads(
        kubectl("get", "validatingwebhookconfiguration", name, "-o", "json").stdout
    )
    (index,) = [i for i, entry in enumerate(configuration["webhooks"])
                if entry["name"] == "enforce.clusterip-guard.io"]  # fmt: skip
    narrowing = [{"op": "replace", "path": f"/webhooks/{index}/objectSelector", "value": SKIP}]
    kubectl("patch", "validatingwebhookconfiguration", name, "--type=json", "-p",
            json.dumps(narrowing))  # fmt: skip
    # The webhook configuration's change is in force at the next call: the bypass, shown.
    assert until(lambda: admitted(kubectl, namespace, labelled=True), timeout=30)
    assert not admitted(kubectl, namespace, labelled=False)

    again = bootstrap(control_plane, *webhook_engine)
    assert f"updated ValidatingWebhookConfiguration {name}" in again.stdout
    assert (
        f"restored ValidatingWebhookConfiguration {name} "
        "webhooks[enforce.clusterip-guard.io].objectSelector"
    ) in again.stdout.splitlines()
    assert until(lambda: not admitted(kubectl, namespace, labelled=True), timeout=30)
    # And a run after it has nothing to restore.
    third = bootstrap(control_plane, *webhook_engine)
    assert not [line for line in third.stdout.splitlines() if line.startswith("restored")]
    assert f"unchanged ValidatingWebhookConfiguration {name}" in third.stdout


def test_an_object_selector_added_to_a_native_binding_is_put_back(
    control_plane: ControlPlane, kubectl: Kubectl
) -> None:
    name = "narrowed-native"
    namespace = enforced(kubectl, "narrowed-native")
    bootstrap(control_plane, "--name", name, "--engine", "native")
    try:
        assert until(lambda: not admitted(kubectl, namespace, labelled=False), timeout=60)
        binding = f"{name}-exposure-deny"
        kubectl("patch", "validatingadmissionpolicybinding", binding, "--type=merge", "-p",
                json.dumps({"spec": {"matchResources": {"objectSelector": SKIP}}}))  # fmt: skip
        # The API server compiles the change a moment later: the bypass, shown.
        assert until(lambda: admitted(kubectl, namespace, labelled=True), timeout=60)

        again = bootstrap(control_plane, "--name", name)  # the engine is kept from the record
        assert (
            f"restored ValidatingAdmissionPolicyBinding {binding} spec.matchResources"
        ) in again.stdout.splitlines()
        assert until(lambda: not admitted(kubectl, namespace, labelled=True), timeout=60)
        third = bootstrap(control_plane, "--name", name)
        assert not [line for line in third.stdout.splitlines() if line.startswith("restored")]
    finally:
        bootstrap(control_plane, "--name", name, "--uninstall")
