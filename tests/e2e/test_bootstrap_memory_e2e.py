"""Day two of the bootstrap against the real API server: a re-run remembers the last one's
settings (cron runs it with no flags and nothing changes), a change is printed before it is
applied, and a dry run prints what `kubectl apply -f -` accepts, with no private key."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from clusterip_guard.core.names import BOOTSTRAP_SETTINGS_ANNOTATION
from localcluster import ControlPlane
from tests.support.cli import clusterip_guard
from tests.support.kubectl import Kubectl
from tests.support.webhook_process import free_port

pytestmark = pytest.mark.e2e


def bootstrap(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """As cron runs it: the cluster from $KUBECONFIG, the flags given."""
    return clusterip_guard(kubeconfig, "bootstrap", *args)


def stored(kubectl: Kubectl, kind: str, name: str) -> dict[str, object]:
    found: dict[str, object] = json.loads(kubectl("get", kind, name, "-o", "json").stdout)
    return found


def versions(kubectl: Kubectl, name: str) -> list[object]:
    kinds = ("mutatingwebhookconfiguration", "validatingwebhookconfiguration")
    return [stored(kubectl, kind, name)["metadata"]["resourceVersion"] for kind in kinds]  # type: ignore[index]


def failure_policies(kubectl: Kubectl, name: str) -> set[str]:
    configuration = stored(kubectl, "validatingwebhookconfiguration", name)
    return {w["failurePolicy"] for w in configuration["webhooks"] if "audit" not in w["name"]}  # type: ignore[attr-defined]


def webhook_names(kubectl: Kubectl, name: str) -> list[str]:
    configuration = stored(kubectl, "validatingwebhookconfiguration", name)
    return [w["name"] for w in configuration["webhooks"]]  # type: ignore[attr-defined]


def test_a_rerun_with_no_flags_keeps_the_last_settings_and_changes_nothing(
    control_plane: ControlPlane, kubectl: Kubectl, tmp_path: Path
) -> None:
    kubeconfig = control_plane.kubeconfig
    name = "memory-guard"
    first = bootstrap(kubeconfig, "--name", name, "--url", f"https://127.0.0.1:{free_port()}",
                      "--cert-dir", str(tmp_path), "--ip", "127.0.0.1", "--default-mode", "enforce",
                      "--failure-policy", "Ignore", "--exclude-namespace", "legacy")  # fmt: skip
    try:
        assert first.returncode == 0, first.stderr
        record = stored(kubectl, "mutatingwebhookconfiguration", name)["metadata"]
        assert BOOTSTRAP_SETTINGS_ANNOTATION in record["annotations"]  # type: ignore[index]
        before = versions(kubectl, name)

        cron = bootstrap(kubeconfig, "--name", name)
        assert cron.returncode == 0, cron.stderr
        assert "changing" not in cron.stdout
        assert "wrote" not in cron.stdout
        assert f"unchanged MutatingWebhookConfiguration {name}" in cron.stdout
        assert versions(kubectl, name) == before
        assert "enforce-default.clusterip-guard.io" in webhook_names(kubectl, name)
        assert failure_policies(kubectl, name) == {"Ignore"}

        changed = bootstrap(kubeconfig, "--name", name, "--default-mode", "audit")
        assert changed.returncode == 0, changed.stderr
        lines = changed.stdout.splitlines()
        assert lines[:2] == [
            "changing what the last bootstrap recorded:",
            "  --default-mode: enforce -> audit",
        ]
        assert lines.index(f"updated ValidatingWebhookConfiguration {name}") > 1
        assert "audit-default.clusterip-guard.io" in webhook_names(kubectl, name)
        assert failure_policies(kubectl, name) == {"Ignore"}  # what was not given stays

        again = bootstrap(kubeconfig, "--name", name)
        assert again.returncode == 0, again.stderr
        assert "changing" not in again.stdout
        assert "audit-default.clusterip-guard.io" in webhook_names(kubectl, name)
    finally:
        removed = bootstrap(kubeconfig, "--name", name, "--uninstall")
    assert removed.returncode == 0, removed.stderr
    assert f"deleted {tmp_path}/tls.key" in removed.stdout  # the recorded --cert-dir


def test_a_hand_edited_record_is_said_and_the_flags_apply(
    control_plane: ControlPlane, kubectl: Kubectl, tmp_path: Path
) -> None:
    name = "edited-guard"
    args = ("--name", name, "--url", f"https://127.0.0.1:{free_port()}",
            "--cert-dir", str(tmp_path), "--ip", "127.0.0.1")  # fmt: skip
    try:
        assert bootstrap(control_plane.kubeconfig, *args).returncode == 0
        kubectl("annotate", "--overwrite", "mutatingwebhookconfiguration", name,
                f"{BOOTSTRAP_SETTINGS_ANNOTATION}=not json")  # fmt: skip
        run = bootstrap(control_plane.kubeconfig, *args)
        assert run.returncode == 0, run.stderr
        assert run.stdout.startswith(f"the settings recorded on {name} cannot be read")
    finally:
        bootstrap(control_plane.kubeconfig, *args, "--uninstall")


SERVICE_MODE = ("--name", "dry-guard", "--namespace", "dry-guard", "--default-mode", "mutate")


def test_a_dry_run_is_accepted_by_kubectl_apply_and_holds_no_private_key(
    control_plane: ControlPlane, kubectl: Kubectl
) -> None:
    kubectl("create", "namespace", "dry-guard")
    run = bootstrap(control_plane.kubeconfig, *SERVICE_MODE, "--dry-run")
    assert run.returncode == 0, run.stderr
    assert "PRIVATE KEY" not in run.stdout + run.stderr
    secrets = [d for d in yaml.safe_load_all(run.stdout) if d["kind"] == "Secret"]
    assert [s["stringData"] for s in secrets] == [
        {"tls.key": "REDACTED: a private key; bootstrap without --dry-run stores it"}
    ] * 2
    applied = kubectl("apply", "--dry-run=server", "-f", "-", stdin=run.stdout)
    assert "secret/clusterip-guard-tls created (server dry run)" in applied.stdout
    assert "validatingwebhookconfiguration" in applied.stdout
    assert kubectl("-n", "dry-guard", "get", "secrets", "-o", "name").stdout == ""


def test_a_dry_run_in_url_mode_lists_the_files_as_comments(
    control_plane: ControlPlane, kubectl: Kubectl, tmp_path: Path
) -> None:
    run = bootstrap(control_plane.kubeconfig, "--name", "dry-url-guard",
                    "--url", f"https://127.0.0.1:{free_port()}", "--cert-dir", str(tmp_path),
                    "--ip", "127.0.0.1", "--dry-run")  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert f"# would write {tmp_path}/tls.key (" in run.stdout
    assert "PRIVATE KEY" not in run.stdout
    assert not any(tmp_path.iterdir())
    applied = kubectl("apply", "--dry-run=server", "-f", "-", stdin=run.stdout)
    assert "mutatingwebhookconfiguration.admissionregistration.k8s.io/dry-url-guard" in (
        applied.stdout
    )


def test_an_uninstall_dry_run_says_what_would_go_and_removes_nothing(
    control_plane: ControlPlane, kubectl: Kubectl
) -> None:
    kubectl("create", "namespace", "dry-uninstall")
    args = ("--name", "dry-uninstall", "--namespace", "dry-uninstall")
    try:
        assert bootstrap(control_plane.kubeconfig, *args).returncode == 0
        preview = bootstrap(control_plane.kubeconfig, "--name", "dry-uninstall", "--uninstall",
                            "--dry-run")  # fmt: skip
        assert preview.returncode == 0, preview.stderr
        lines = preview.stdout.splitlines()
        assert lines[0] == "would delete MutatingWebhookConfiguration dry-uninstall"
        assert "would delete Secret dry-uninstall/clusterip-guard-tls" in lines  # recorded NS
        kubectl("get", "mutatingwebhookconfiguration", "dry-uninstall")
        kubectl("-n", "dry-uninstall", "get", "secret", "clusterip-guard-tls")
    finally:
        bootstrap(control_plane.kubeconfig, *args, "--uninstall")
