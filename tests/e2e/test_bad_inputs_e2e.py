"""The mistakes only a cluster shows, against the real API server: each is one line naming the
one fact (TLS verification, credentials, the API server's own field message, the file or the
Secret that is damaged), exit 2 for bad input and 3 for the cluster. The rest of the table is
tests/unit/test_bad_inputs.py."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from clusterip_guard.certs.issuing import new_certificate_authority
from localcluster import ControlPlane
from tests.support.cli import clusterip_guard
from tests.support.kubectl import Kubectl
from tests.support.webhook_process import free_port, now

pytestmark = pytest.mark.e2e


def bootstrap(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return clusterip_guard(kubeconfig, "bootstrap", *args)


def one_line_error(run: subprocess.CompletedProcess[str], code: int, *says: str) -> None:
    assert run.returncode == code, run.stdout + run.stderr
    assert run.stderr.count("\n") == 1, run.stderr
    for text in says:
        assert text in run.stderr, run.stderr


def changed_kubeconfig(control_plane: ControlPlane, folder: Path, **changes: Any) -> Path:
    config: dict[str, Any] = yaml.safe_load(control_plane.kubeconfig.read_text())
    config["clusters"][0]["cluster"].update(changes.get("cluster", {}))
    if "user" in changes:
        config["users"][0]["user"] = changes["user"]
    path = folder / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_tls_failure_says_verification_failed(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    stranger = base64.b64encode(new_certificate_authority(now=now()).cert_pem).decode()
    kubeconfig = changed_kubeconfig(
        control_plane, tmp_path, cluster={"certificate-authority-data": stranger}
    )
    one_line_error(bootstrap(kubeconfig, "--namespace", "default"), 3,
                   f"TLS verification of {control_plane.url} failed: unable to get local issuer",
                   "certificate-authority")  # fmt: skip


def test_credentials_the_api_server_does_not_accept(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    kubeconfig = changed_kubeconfig(control_plane, tmp_path, user={"token": "not-a-token"})
    one_line_error(bootstrap(kubeconfig, "--namespace", "default"), 3,
                   "did not accept our credentials (401 Unauthorized)")  # fmt: skip


def test_the_api_servers_field_message_survives_a_422(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    # A valid name for the webhook configurations, too long for the policies named after it.
    name = ".".join(["g" * 61] * 4)  # 247 characters
    args = ("--name", name, "--url", f"https://127.0.0.1:{free_port()}",
            "--cert-dir", str(tmp_path), "--ip", "127.0.0.1")  # fmt: skip
    try:
        run = bootstrap(control_plane.kubeconfig, *args)
        one_line_error(
            run, 3, "cannot create validatingadmissionpolicies: 422",
            "metadata.name: Invalid value", "must be no more than 253 characters",
        )  # fmt: skip
    finally:
        bootstrap(control_plane.kubeconfig, *args, "--uninstall")


def test_url_mode_without_the_certificates_names_names_the_flags(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    run = bootstrap(control_plane.kubeconfig, "--name", "no-names-guard",
                    "--url", "https://10.0.0.5:8443", "--cert-dir", str(tmp_path))  # fmt: skip
    one_line_error(run, 2, "url mode needs --host NAME or --ip ADDRESS")
    run = bootstrap(control_plane.kubeconfig, "--name", "no-names-guard",
                    "--url", "https://10.0.0.5:8443", "--cert-dir", str(tmp_path),
                    "--ip", "127.0.0.1")  # fmt: skip
    one_line_error(run, 2, "10.0.0.5 is not among --host/--ip", "add --ip 10.0.0.5")
    assert not any(tmp_path.iterdir())  # nothing written


def test_a_damaged_certificate_file_is_named(control_plane: ControlPlane, tmp_path: Path) -> None:
    args = ("--name", "damaged-guard", "--url", f"https://127.0.0.1:{free_port()}",
            "--cert-dir", str(tmp_path), "--ip", "127.0.0.1", "--dry-run")  # fmt: skip
    assert bootstrap(control_plane.kubeconfig, *args[:-1], "--certificates-only").returncode == 0
    (tmp_path / "ca-signing.key").write_text("-----BEGIN PRIVATE KEY-----\nshort\n")
    one_line_error(bootstrap(control_plane.kubeconfig, *args), 2,
                   f"{tmp_path}/ca-signing.key: its private key cannot be read (damaged PEM)",
                   "delete it (and its pair) for the bootstrap to issue anew")  # fmt: skip


def test_a_damaged_secret_is_named(control_plane: ControlPlane, kubectl: Kubectl) -> None:
    kubectl("create", "namespace", "damaged-secret")
    kubectl("-n", "damaged-secret", "create", "secret", "generic", "clusterip-guard-tls",
            "--from-literal=tls.crt=not a certificate", "--from-literal=tls.key=x")  # fmt: skip
    run = bootstrap(control_plane.kubeconfig, "--namespace", "damaged-secret",
                    "--name", "damaged-secret", "--dry-run")  # fmt: skip
    one_line_error(run, 2, "Secret damaged-secret/clusterip-guard-tls key tls.crt: it is not PEM",
                   "delete Secret damaged-secret/clusterip-guard-tls")  # fmt: skip
