"""Uninstall is final (issue 30, item 9): a running `sync` re-created every native policy at
its next resync after `bootstrap --uninstall`. Now the uninstall leaves a marker the sync
honours: it stands down, says so at every rendering it skips, and applies nothing until the
installation is bootstrapped again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from localcluster import ControlPlane
from tests.support.chart import render, the
from tests.support.cli import clusterip_guard
from tests.support.kubectl import Kubectl
from tests.support.polling import until

pytestmark = pytest.mark.e2e

NAME = "final-guard"
NAMESPACE = "guard-final"  # the installation's: the sync's policy, its Lease, the marker


def policy_configmap(allowed: list[str]) -> str:
    return json.dumps({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "policy", "namespace": NAMESPACE},
        "data": {"policy.yaml": json.dumps({"allowedExternalIPCIDRs": allowed})},
    })  # fmt: skip


def ours(kubectl: Kubectl) -> list[str]:
    """Every admission policy and binding of the installation that exists."""
    kinds = ("validatingadmissionpolicies,validatingadmissionpolicybindings,"
             "mutatingadmissionpolicies,mutatingadmissionpolicybindings")  # fmt: skip
    listed = kubectl("get", kinds, "-o", "name").stdout.split()
    return [line for line in listed if line.split("/", 1)[1].startswith(f"{NAME}-")]


@pytest.fixture
def running_sync(control_plane: ControlPlane, kubectl: Kubectl, tmp_path: Path) -> Iterator[Path]:
    """A sync of the installation, resyncing every 2 s (the issue saw a re-creation 8 s after
    the uninstall); its log."""
    kubectl("create", "namespace", NAMESPACE)
    kubectl("apply", "-f", "-", stdin=policy_configmap(["192.0.2.0/24"]))
    log = tmp_path / "sync.log"
    command = [sys.executable, "-m", "clusterip_guard.cli.main", "sync", "--name", NAME,
               "--namespace", NAMESPACE, "--policy-configmap", f"{NAMESPACE}/policy",
               "--lease-namespace", NAMESPACE, "--resync-seconds", "2"]  # fmt: skip
    env = {**os.environ, "KUBECONFIG": str(control_plane.kubeconfig)}
    with log.open("w") as out:
        syncing = subprocess.Popen(command, env=env, stdout=out, stderr=out)
    try:
        yield log
        assert syncing.poll() is None, log.read_text()  # it stood down; it did not stop
    finally:
        syncing.terminate()
        syncing.wait(timeout=10)
        clusterip_guard(control_plane.kubeconfig, "bootstrap", "--name", NAME, "--uninstall")


def stand_downs(log: Path) -> int:
    return log.read_text().count('"standing down: ')


def test_a_running_sync_stands_down_after_an_uninstall_and_re_creates_nothing(
    control_plane: ControlPlane, kubectl: Kubectl, running_sync: Path
) -> None:
    log = running_sync
    assert until(lambda: f"validatingadmissionpolicy.admissionregistration.k8s.io/{NAME}-exposure"
                 in ours(kubectl), timeout=60), log.read_text()  # fmt: skip

    # A dry run only says so.
    dry = clusterip_guard(control_plane.kubeconfig, "bootstrap", "--name", NAME, "--uninstall",
                          "--dry-run")  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert f"would write ConfigMap {NAMESPACE}/{NAME}-uninstalled" in dry.stdout.splitlines()
    assert stand_downs(log) == 0

    removed = clusterip_guard(control_plane.kubeconfig, "bootstrap", "--name", NAME,
                              "--uninstall")  # fmt: skip
    assert removed.returncode == 0, removed.stderr
    assert (
        f"wrote ConfigMap {NAMESPACE}/{NAME}-uninstalled: a running sync of {NAME} stands down"
        in removed.stdout.splitlines()
    )
    assert until(lambda: stand_downs(log) >= 1, timeout=30), log.read_text()
    # Renderings after the uninstall: a change of the policy, and the resyncs. Each one is
    # skipped, and says so; none writes anything.
    kubectl("apply", "-f", "-", stdin=policy_configmap(["192.0.2.0/24", "198.51.100.0/24"]))
    assert until(lambda: stand_downs(log) >= 4, timeout=60), log.read_text()
    assert ours(kubectl) == []
    said = [line for line in log.read_text().splitlines() if "standing down" in line]
    assert f"{NAME} was uninstalled at" in said[0]
    assert (
        "nothing is applied until a bootstrap or a new policy ConfigMap installs it again"
        in (said[0])
    )

    # A bootstrap installs it again and lifts the marker: the sync applies again.
    again = clusterip_guard(control_plane.kubeconfig, "bootstrap", "--name", NAME,
                            "--namespace", NAMESPACE, "--engine", "native")  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert f"deleted ConfigMap {NAMESPACE}/{NAME}-uninstalled" in again.stdout.splitlines()
    assert until(lambda: "applying again" in log.read_text(), timeout=60), log.read_text()


# --- the chart: its pre-delete Job stops the sync before anything goes --------------------------

SERVES = ("admissionregistration.k8s.io/v1/MutatingAdmissionPolicy",
          "networking.k8s.io/v1/ServiceCIDR")  # fmt: skip
APPLIED = ("Namespace", "ConfigMap", "ServiceAccount", "Role", "RoleBinding", "ClusterRole",
           "ClusterRoleBinding", "Deployment")  # fmt: skip


def test_the_charts_uninstall_stops_its_sync_before_it_removes_anything(
    control_plane: ControlPlane, kubectl: Kubectl, tmp_path: Path
) -> None:
    """By the pre-delete Job's own rights: the sync's Deployment scaled to 0 and none of its
    Pods left, first; then the policies go. (No Pod ever runs on the local control plane: the
    wait is shown by its rights and its line, the scale by the Deployment.)"""
    release = namespace = "final-chart"
    name = f"{release}-clusterip-guard"
    documents = render("engine=native", release=release, namespace=namespace,
                       api_versions=SERVES)  # fmt: skip
    kubectl("create", "namespace", namespace)
    for document in documents:
        if document["kind"] in APPLIED:
            kubectl("apply", "-f", "-", stdin=json.dumps(document))
    registered = clusterip_guard(control_plane.kubeconfig, "bootstrap", "--name", name,
                                 "--namespace", namespace, "--engine", "native")  # fmt: skip
    assert registered.returncode == 0, registered.stderr
    job = the("Job", documents, f"{name}-uninstall")["spec"]["template"]["spec"]
    account = job["serviceAccountName"]
    token = kubectl("-n", namespace, "create", "token", account).stdout.strip()
    admin = yaml.safe_load(control_plane.kubeconfig.read_text())
    kubeconfig = tmp_path / "uninstall-kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        **admin,
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": account, "context": {
            "cluster": admin["clusters"][0]["name"], "user": account}}],
        "current-context": account,
    }))  # fmt: skip
    removed = subprocess.run(
        [sys.executable, "-m", "clusterip_guard.cli.main", *job["containers"][0]["args"]],
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert removed.returncode == 0, removed.stderr
    lines = removed.stdout.splitlines()
    assert lines[0] == f"stopped Deployment {namespace}/{name}-sync: no Pod of it is left"
    replicas = kubectl("-n", namespace, "get", "deployment", f"{name}-sync", "-o",
                       "jsonpath={.spec.replicas}").stdout  # fmt: skip
    assert replicas == "0"
    assert f"deleted ValidatingAdmissionPolicy {name}-exposure" in lines
    assert not [line for line in lines if "uninstalled" in line]  # stopped: no marker needed
    left = kubectl("get", "validatingadmissionpolicies", "-o", "name").stdout.split()
    assert not [n for n in left if n.split("/", 1)[1].startswith(name)]
