"""The cert bootstrap against the real API server: idempotence, rotation under load,
service mode Secrets, dry run, uninstall, and the errors an admin can meet."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from clusterip_guard.certs.issuing import signed_by, split_pem_bundle
from localcluster import ControlPlane, user_kubeconfig
from tests.support.cli import clusterip_guard
from tests.support.kubectl import Kubectl
from tests.support.served import SERVICE_CIDR, ServedRelease
from tests.support.webhook_process import CertificateFiles, WebhookProcess, free_port

pytestmark = pytest.mark.e2e

MODE_LABEL = "clusterip-guard.io/mode"


def bootstrap(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return clusterip_guard(kubeconfig, "bootstrap", *args)


def resource_versions(kubectl: Kubectl, name: str, *secrets: str) -> dict[str, str]:
    versions = {}
    for kind in ("mutatingwebhookconfiguration", "validatingwebhookconfiguration"):
        got = json.loads(kubectl("get", kind, name, "-o", "json").stdout)
        versions[kind] = got["metadata"]["resourceVersion"]
    for secret in secrets:
        namespace, secret_name = secret.split("/")
        got = json.loads(
            kubectl("-n", namespace, "get", "secret", secret_name, "-o", "json").stdout
        )
        versions[secret] = got["metadata"]["resourceVersion"]
    return versions


# --- url mode: the webhook outside the cluster ----------------------------------------------


@pytest.fixture(scope="module")
def url_mode(
    control_plane: ControlPlane, kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[WebhookProcess, list[str]]]:
    files = CertificateFiles(tmp_path_factory.mktemp("url-certs"))
    port = free_port()
    args = [
        "--name", "rotation-guard",
        "--url", f"https://127.0.0.1:{port}",
        "--cert-dir", str(files.folder),
        "--ip", "127.0.0.1",
        "--trust-propagation-seconds", "3",
    ]  # fmt: skip
    first = bootstrap(control_plane.kubeconfig, *args)
    assert first.returncode == 0, first.stderr
    webhook = WebhookProcess(files, port=port).start()
    kubectl("create", "namespace", "b-mutate")
    kubectl("label", "namespace", "b-mutate", f"{MODE_LABEL}=mutate")
    yield webhook, args
    webhook.stop()
    bootstrap(control_plane.kubeconfig, *args, "--uninstall")


def test_a_second_bootstrap_changes_nothing(
    url_mode: tuple[WebhookProcess, list[str]], control_plane: ControlPlane, kubectl: Kubectl
) -> None:
    _, args = url_mode
    before = resource_versions(kubectl, "rotation-guard")
    again = bootstrap(control_plane.kubeconfig, *args)
    assert again.returncode == 0, again.stderr
    assert "unchanged MutatingWebhookConfiguration rotation-guard" in again.stdout
    assert "wrote" not in again.stdout
    assert resource_versions(kubectl, "rotation-guard") == before


def test_a_ca_rotation_under_a_stream_of_creates_fails_no_request(
    url_mode: tuple[WebhookProcess, list[str]],
    control_plane: ControlPlane,
    api_client: client.ApiClient,
) -> None:
    webhook, args = url_mode
    files = webhook.files
    assert isinstance(files, CertificateFiles)
    old_ca = (files.folder / "ca-signing.crt").read_bytes()
    core = client.CoreV1Api(api_client)
    failures: list[str] = []
    created = 0
    stop = threading.Event()

    def stream() -> None:
        nonlocal created
        while not stop.is_set():
            service = client.V1Service(
                metadata=client.V1ObjectMeta(generate_name="stream-"),
                spec=client.V1ServiceSpec(type="NodePort", ports=[client.V1ServicePort(port=80)]),
            )
            try:
                stored = core.create_namespaced_service("b-mutate", service)
            except ApiException as error:
                failures.append(f"{error.status}: {error.body}")
                continue
            if stored.spec is None or stored.spec.type != "ClusterIP":
                failures.append("stored unconverted")
            created += 1

    worker = threading.Thread(target=stream)
    worker.start()
    try:
        rotated = bootstrap(control_plane.kubeconfig, *args, "--rotate-ca")
        # Let the server pick up the new files, then keep streaming on the new certificate.
        threading.Event().wait(2)
    finally:
        stop.set()
        worker.join()
    assert rotated.returncode == 0, rotated.stderr
    assert "CA rotation requested" in rotated.stdout
    new_ca = (files.folder / "ca-signing.crt").read_bytes()
    assert new_ca != old_ca
    assert split_pem_bundle((files.folder / "ca.crt").read_bytes()) == [old_ca, new_ca]
    assert signed_by((files.folder / "tls.crt").read_bytes(), new_ca)
    assert failures == []
    assert created > 20
    assert "serving certificate reloaded" in webhook.logs()


def test_uninstall_leaves_the_cluster_accepting_node_ports(
    url_mode: tuple[WebhookProcess, list[str]], control_plane: ControlPlane, kubectl: Kubectl
) -> None:
    webhook, args = url_mode
    kubectl("create", "namespace", "b-enforce")
    kubectl("label", "namespace", "b-enforce", f"{MODE_LABEL}=enforce")
    create = ("-n", "b-enforce", "create", "service", "nodeport", "np", "--tcp=80:8080")
    denied = kubectl(*create, check=False)
    assert "denied the request" in denied.stderr
    removed = bootstrap(control_plane.kubeconfig, *args, "--uninstall")
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.splitlines()[:2] == [
        "deleted MutatingWebhookConfiguration rotation-guard",
        "deleted ValidatingWebhookConfiguration rotation-guard",
    ]
    kubectl(*create)
    assert not webhook.files.cert_file.exists()


# --- service mode: the webhook in the cluster, certificates in Secrets -----------------------


@pytest.fixture(scope="module")
def guard_namespace(kubectl: Kubectl) -> str:
    kubectl("create", "namespace", "guard-system")
    return "guard-system"


SERVICE_MODE = ("--name", "service-guard", "--namespace", "guard-system")


def test_service_mode_stores_a_tls_secret_and_registers_the_service(
    guard_namespace: str, control_plane: ControlPlane, kubectl: Kubectl
) -> None:
    run = bootstrap(control_plane.kubeconfig, *SERVICE_MODE, "--default-mode", "audit")
    assert run.returncode == 0, run.stderr
    try:
        secret = json.loads(
            kubectl(
                "-n", "guard-system", "get", "secret", "clusterip-guard-tls", "-o", "json"
            ).stdout
        )
        assert secret["type"] == "kubernetes.io/tls"
        assert set(secret["data"]) == {"tls.crt", "tls.key", "ca.crt"}
        validating = json.loads(
            kubectl("get", "validatingwebhookconfiguration", "service-guard", "-o", "json").stdout
        )
        entries = {w["name"]: w for w in validating["webhooks"]}
        services = {
            "enforce.clusterip-guard.io",
            "mutate-backstop.clusterip-guard.io",
            "unknown-mode.clusterip-guard.io",
            "audit.clusterip-guard.io",
            "audit-default.clusterip-guard.io",
        }
        # Each with its twins for Pods and workloads, for Ingresses, and for Gateways and routes.
        twins = {
            name.replace(".", f"-{subject}.", 1).replace(
                "-default-" + subject, f"-{subject}-default"
            )
            for name in services
            for subject in ("workloads", "ingresses", "gateways", "routes")
        }
        assert "audit-workloads-default.clusterip-guard.io" in twins
        assert set(entries) == services | twins
        service = entries["enforce.clusterip-guard.io"]["clientConfig"]["service"]
        assert service == {
            "namespace": "guard-system",
            "name": "clusterip-guard",
            "path": "/validate/enforce",
            "port": 443,
        }
        assert entries["audit.clusterip-guard.io"]["failurePolicy"] == "Ignore"
        excluded = entries["audit-default.clusterip-guard.io"]["namespaceSelector"]
        assert {
            "key": "kubernetes.io/metadata.name",
            "operator": "NotIn",
            "values": ["guard-system", "kube-node-lease", "kube-public", "kube-system"],
        } in excluded["matchExpressions"]

        secrets = ("guard-system/clusterip-guard-tls", "guard-system/clusterip-guard-ca")
        before = resource_versions(kubectl, "service-guard", *secrets)
        again = bootstrap(control_plane.kubeconfig, *SERVICE_MODE, "--default-mode", "audit")
        assert again.returncode == 0, again.stderr
        assert resource_versions(kubectl, "service-guard", *secrets) == before

        renewed = bootstrap(
            control_plane.kubeconfig,
            *SERVICE_MODE,
            "--default-mode", "audit",
            "--renew-before-days", "400",  # longer than the serving certificate lives
        )  # fmt: skip
        assert renewed.returncode == 0, renewed.stderr
        assert "serving certificate expires" in renewed.stdout
        after = resource_versions(kubectl, "service-guard", *secrets)
        assert (
            after["guard-system/clusterip-guard-tls"] != before["guard-system/clusterip-guard-tls"]
        )
    finally:
        removed = bootstrap(control_plane.kubeconfig, *SERVICE_MODE, "--uninstall")
    assert removed.returncode == 0, removed.stderr
    lines = removed.stdout.splitlines()
    assert lines.index("deleted ValidatingWebhookConfiguration service-guard") < lines.index(
        "deleted Secret guard-system/clusterip-guard-tls"
    )
    leftovers = kubectl("-n", "guard-system", "get", "secrets", "-o", "name").stdout
    assert "clusterip-guard" not in leftovers


def test_dry_run_prints_every_object_and_applies_none(
    guard_namespace: str,
    control_plane: ControlPlane,
    kubectl: Kubectl,
    served_release: ServedRelease,
) -> None:
    run = bootstrap(control_plane.kubeconfig, *SERVICE_MODE, "--dry-run")
    assert run.returncode == 0, run.stderr
    kinds = [doc["kind"] for doc in yaml.safe_load_all(run.stdout)]
    # ... and where the API server serves ServiceCIDR (1.33+), the Service range's policy and
    # its bindings: one that denies, one that warns.
    range_policy = ["ValidatingAdmissionPolicy", *["ValidatingAdmissionPolicyBinding"] * 2]
    assert kinds == ["Secret", "Secret", "MutatingWebhookConfiguration",
                     "ValidatingWebhookConfiguration", "ValidatingAdmissionPolicy",
                     "ValidatingAdmissionPolicyBinding", "ValidatingAdmissionPolicy",
                     "ValidatingAdmissionPolicyBinding",
                     *(range_policy if served_release.serves(SERVICE_CIDR) else [])]  # fmt: skip
    missing = kubectl("get", "validatingwebhookconfiguration", "service-guard", check=False)
    assert missing.returncode != 0


# --- errors an admin can meet: one line, no traceback; exit 2 for bad input, 3 for the cluster --


def _one_line_error(run: subprocess.CompletedProcess[str], code: int, *expected: str) -> None:
    assert run.returncode == code, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert run.stderr.count("\n") == 1, run.stderr
    for text in expected:
        assert text in run.stderr


def test_no_cluster_reachable(tmp_path: Path, control_plane: ControlPlane) -> None:
    config: dict[str, Any] = yaml.safe_load(control_plane.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{free_port()}"
    dead = tmp_path / "dead-kubeconfig"
    dead.write_text(yaml.safe_dump(config))
    run = bootstrap(dead, "--namespace", "default")
    server = config["clusters"][0]["cluster"]["server"]
    _one_line_error(run, 3, f"no cluster reachable at {server}: connection refused")


def test_no_kubeconfig_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    _one_line_error(bootstrap(missing), 2, f"$KUBECONFIG names {missing}", "no such file")


def test_a_missing_namespace(control_plane: ControlPlane) -> None:
    run = bootstrap(control_plane.kubeconfig, "--namespace", "does-not-exist")
    _one_line_error(run, 2, "namespace does-not-exist does not exist")


def test_a_missing_permission_names_the_verb_and_the_resource(
    control_plane: ControlPlane, kubectl: Kubectl
) -> None:
    # May read namespaces and Secrets, nothing else.
    kubectl("create", "clusterrole", "bootstrap-reader", "--verb=get",
            "--resource=namespaces,secrets")  # fmt: skip
    kubectl("create", "clusterrolebinding", "bootstrap-reader", "--clusterrole=bootstrap-reader",
            "--user=reader")  # fmt: skip
    reader = user_kubeconfig(control_plane, "reader")
    run = bootstrap(reader, "--namespace", "default", "--name", "forbidden-guard")
    _one_line_error(run, 3, "permission denied: cannot create secrets in namespace default")


# --- waiting for a replica before registering ------------------------------------------------


def test_with_a_wait_nothing_is_registered_before_a_replica_is_ready(
    control_plane: ControlPlane, kubectl: Kubectl
) -> None:
    kubectl("create", "namespace", "waiting-guard")
    args = ("--name", "waiting-guard", "--namespace", "waiting-guard", "--wait-ready-seconds", "2")
    run = bootstrap(control_plane.kubeconfig, *args)
    _one_line_error(run, 2, "has no ready endpoint after 2s", "webhooks not registered")
    missing = kubectl("get", "validatingwebhookconfiguration", "waiting-guard", check=False)
    assert missing.returncode != 0
    # No controllers run here: the endpoint a ready replica would bring is written by hand.
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "clusterip-guard-1", "namespace": "waiting-guard",
                     "labels": {"kubernetes.io/service-name": "clusterip-guard"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.244.0.9"], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": 8443, "protocol": "TCP"}],
    }))  # fmt: skip
    run = bootstrap(control_plane.kubeconfig, *args)
    assert run.returncode == 0, run.stderr
    assert "Service waiting-guard/clusterip-guard has a ready endpoint" in run.stdout
    kubectl("get", "validatingwebhookconfiguration", "waiting-guard")
    removed = bootstrap(control_plane.kubeconfig, *args[:4], "--uninstall")
    assert removed.returncode == 0, removed.stderr


# --- the chart's phases: certificates before the Deployment, registration after ---------------


def secret_versions(kubectl: Kubectl, namespace: str) -> dict[str, str]:
    found = json.loads(kubectl("-n", namespace, "get", "secrets", "-o", "json").stdout)
    return {s["metadata"]["name"]: s["metadata"]["resourceVersion"] for s in found["items"]}


def test_certificates_only_stores_them_once_and_registers_nothing(
    control_plane: ControlPlane, kubectl: Kubectl
) -> None:
    kubectl("create", "namespace", "phased-guard")
    args = ("--name", "phased-guard", "--namespace", "phased-guard")
    first = bootstrap(control_plane.kubeconfig, *args, "--certificates-only")
    assert first.returncode == 0, first.stderr
    stored = secret_versions(kubectl, "phased-guard")
    assert set(stored) == {"clusterip-guard-tls", "clusterip-guard-ca"}
    assert kubectl("get", "mutatingwebhookconfiguration", "phased-guard", check=False).returncode

    again = bootstrap(control_plane.kubeconfig, *args, "--certificates-only", "--rotate-ca")
    assert again.returncode == 0, again.stderr
    assert "certificates: kept" in again.stdout
    assert secret_versions(kubectl, "phased-guard") == stored  # even --rotate-ca is not its job

    full = bootstrap(control_plane.kubeconfig, *args)
    assert full.returncode == 0, full.stderr
    assert secret_versions(kubectl, "phased-guard") == stored  # the same certificates registered
    kubectl("get", "validatingwebhookconfiguration", "phased-guard")

    kept = bootstrap(control_plane.kubeconfig, *args, "--uninstall", "--keep-certificates")
    assert kept.returncode == 0, kept.stderr
    assert kubectl("get", "validatingwebhookconfiguration", "phased-guard", check=False).returncode
    assert secret_versions(kubectl, "phased-guard") == stored
