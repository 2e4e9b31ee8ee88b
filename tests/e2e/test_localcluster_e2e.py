"""The launcher itself: what `start()` and `localcluster.py up/down` promise, on real binaries.

Fails, never skips, when the control plane cannot start.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from kubernetes import client, config

from localcluster import (
    HOLD_AT_VARIABLE,
    SERVICE_CIDR,
    ControlPlane,
    ControlPlaneError,
    Credentials,
    admin_context,
    assets_dir,
    down,
    record_extra_pid,
    start,
    started_at,
)
from tests.support.paths import LOCALCLUSTER
from tests.support.polling import until
from tests.support.processes import processes_mentioning, stop_processes_mentioning

pytestmark = pytest.mark.e2e

NODE_PORTS = range(30000, 32768)


@pytest.fixture(scope="module")
def assets() -> Path:
    return assets_dir()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, assets: Path) -> Iterator[ControlPlane]:
    with start(tmp_path_factory.mktemp("localcluster"), assets=assets) as started:
        yield started


def kubectl(
    assets: Path, cluster: ControlPlane, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    binary = assets / "kubectl" if (assets / "kubectl").exists() else Path("kubectl")
    run = subprocess.run(
        [str(binary), f"--kubeconfig={cluster.kubeconfig}", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if check and run.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed:\n{run.stderr}")
    return run


def localcluster_cli(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(LOCALCLUSTER), *args],
        capture_output=True, text=True, timeout=180, check=False,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    """A state folder for `localcluster up`; whatever the test's outcome, `down` runs after it
    and anything still naming the folder is stopped (a failed assertion must not leave a
    detached control plane running)."""
    folder = tmp_path / "dev"
    yield folder
    localcluster_cli("down", "--dir", str(folder))
    stop_processes_mentioning(str(folder))


def assets_with_a_broken_apiserver(folder: Path, assets: Path) -> Path:
    """Real etcd, and a kube-apiserver that complains and exits at once."""
    folder.mkdir()
    (folder / "etcd").symlink_to(assets / "etcd")
    apiserver = folder / "kube-apiserver"
    apiserver.write_text("#!/bin/sh\necho 'Error: unknown flag: --made-up' >&2\nexit 1\n")
    apiserver.chmod(0o755)
    return folder


def test_readyz_answers_the_admin_over_tls_checked_against_the_ca(cluster: ControlPlane) -> None:
    context = admin_context(Credentials.in_folder(cluster.workdir / "pki", "admin"))
    with urllib.request.urlopen(f"{cluster.url}/readyz", context=context, timeout=5) as reply:
        assert reply.status == 200
        assert reply.read() == b"ok"


def test_the_serving_certificate_names_loopback_localhost_and_the_kubernetes_service(
    cluster: ControlPlane,
) -> None:
    serving = x509.load_pem_x509_certificate(
        (cluster.workdir / "pki" / "apiserver.crt").read_bytes()
    )
    names = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.IPAddress)) >= {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("10.0.0.1"),
    }
    assert "localhost" in names.get_values_for_type(x509.DNSName)


def test_the_kubeconfig_user_is_a_cluster_admin(assets: Path, cluster: ControlPlane) -> None:
    assert kubectl(assets, cluster, "auth", "can-i", "*", "*").stdout.strip() == "yes"


def test_kubectl_creates_a_namespace(assets: Path, cluster: ControlPlane) -> None:
    kubectl(assets, cluster, "create", "namespace", "launcher")
    got = kubectl(assets, cluster, "get", "namespace", "launcher", "-o", "json").stdout
    assert json.loads(got)["metadata"]["name"] == "launcher"


def test_a_node_port_service_gets_a_node_port(assets: Path, cluster: ControlPlane) -> None:
    kubectl(assets, cluster, "create", "namespace", "launcher-nodeport")
    kubectl(assets, cluster, "-n", "launcher-nodeport", "create", "service", "nodeport", "web",
            "--tcp=80:8080")  # fmt: skip
    got = kubectl(assets, cluster, "-n", "launcher-nodeport", "get", "service", "web", "-o", "json")
    spec = json.loads(got.stdout)["spec"]
    assert spec["type"] == "NodePort"
    assert spec["ports"][0]["nodePort"] in NODE_PORTS
    assert ipaddress.ip_address(spec["clusterIP"]) in ipaddress.ip_network(SERVICE_CIDR)


def test_the_python_client_creates_a_load_balancer_with_external_ips(
    cluster: ControlPlane,
) -> None:
    api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(cluster.kubeconfig)
    )
    try:
        core = client.CoreV1Api(api)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="launcher-lb")))
        service = client.V1Service(
            metadata=client.V1ObjectMeta(name="lb"),
            spec=client.V1ServiceSpec(
                type="LoadBalancer",
                external_ips=["203.0.113.10"],
                ports=[client.V1ServicePort(port=80)],
            ),
        )
        created = core.create_namespaced_service("launcher-lb", service)
    finally:
        api.close()  # type: ignore[no-untyped-call]
    assert created.spec is not None
    assert created.spec.type == "LoadBalancer"
    assert created.spec.external_ips == ["203.0.113.10"]
    assert created.spec.ports is not None
    assert created.spec.ports[0].node_port in NODE_PORTS
    assert created.spec.allocate_load_balancer_node_ports is True  # defaulted by the API server


def test_both_admission_policy_apis_are_served(assets: Path, cluster: ControlPlane) -> None:
    served = kubectl(assets, cluster, "api-resources", "--api-group=admissionregistration.k8s.io",
                     "-o", "name").stdout.split()  # fmt: skip
    for resource in ("validatingadmissionpolicies", "mutatingadmissionpolicies"):
        assert f"{resource}.admissionregistration.k8s.io" in served


def test_services_are_audited_at_metadata_level_and_nothing_else_is(
    assets: Path, cluster: ControlPlane
) -> None:
    kubectl(assets, cluster, "create", "namespace", "launcher-audit")
    kubectl(assets, cluster, "-n", "launcher-audit", "create", "service", "clusterip", "audited",
            "--tcp=80")  # fmt: skip
    audit_log = cluster.workdir / "audit.log"

    def entries() -> list[dict[str, Any]]:
        lines = audit_log.read_text().splitlines() if audit_log.exists() else []
        return [json.loads(line) for line in lines]

    def service_created() -> bool:
        return any(
            entry["verb"] == "create" and entry["objectRef"].get("name") == "audited"
            for entry in entries()
        )

    assert until(service_created)  # written as the request completes, maybe a moment later
    assert {entry["level"] for entry in entries()} == {"Metadata"}
    assert {entry["objectRef"]["resource"] for entry in entries()} == {"services"}


def test_stop_leaves_no_process_behind_and_can_be_called_twice(
    tmp_path: Path, assets: Path
) -> None:
    short_lived = start(tmp_path / "short-lived", assets=assets, audit_log=False)
    pids = list(short_lived.pids)
    assert len(pids) == 2
    short_lived.stop()
    short_lived.stop()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not (tmp_path / "short-lived" / "audit.log").exists()


def test_a_failed_start_names_the_log_and_stops_etcd(tmp_path: Path, assets: Path) -> None:
    broken = assets_with_a_broken_apiserver(tmp_path / "assets", assets)
    workdir = tmp_path / "failed"
    with pytest.raises(ControlPlaneError) as raised:
        start(workdir, assets=broken)
    summary, *tail = str(raised.value).splitlines()
    assert summary == (
        f"kube-apiserver exited with code 1; last lines of {workdir / 'kube-apiserver.log'}:"
    )
    assert "Error: unknown flag: --made-up" in tail
    assert not processes_mentioning(str(workdir))


def test_up_is_idempotent_and_down_stops_extra_pids_too(state: Path) -> None:
    first = localcluster_cli("up", "--dir", str(state))
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("control plane ready at https://127.0.0.1:")
    assert f"export KUBECONFIG={state / 'kubeconfig'}" in first.stdout
    recorded = json.loads((state / "controlplane.json").read_text())
    assert set(recorded["ports"]) == {"apiserver", "etcd", "etcd-peer"}
    assert recorded["url"] == f"https://127.0.0.1:{recorded['ports']['apiserver']}"

    again = localcluster_cli("up", "--dir", str(state))
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"control plane already running at {recorded['url']}")

    webhook_stand_in = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        record_extra_pid(state, webhook_stand_in.pid)
        stopped = localcluster_cli("down", "--dir", str(state))
        assert stopped.returncode == 0, stopped.stderr
        assert webhook_stand_in.wait(timeout=5) == -signal.SIGTERM
    finally:
        webhook_stand_in.kill()
        webhook_stand_in.wait()
    assert not processes_mentioning(str(state))
    assert not (state / "controlplane.json").exists()

    nothing = localcluster_cli("down", "--dir", str(state))
    assert (nothing.returncode, nothing.stdout.strip()) == (0, "no control plane running")


def test_up_failing_prints_one_line_and_exits_2(tmp_path: Path, assets: Path, state: Path) -> None:
    broken = assets_with_a_broken_apiserver(tmp_path / "assets", assets)
    up = localcluster_cli("up", "--dir", str(state), env={"KUBEBUILDER_ASSETS": str(broken)})
    assert up.returncode == 2
    assert up.stderr.splitlines() == [
        "localcluster: kube-apiserver exited with code 1; last lines of "
        f"{state.absolute() / 'controlplane' / 'kube-apiserver.log'}:"
    ]
    assert not processes_mentioning(str(state))


def test_ctrl_c_while_starting_stops_what_was_started(state: Path) -> None:
    up = subprocess.Popen(
        [sys.executable, str(LOCALCLUSTER), "up", "--dir", str(state)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, HOLD_AT_VARIABLE: "kube-apiserver"},
    )  # fmt: skip
    try:
        # The launcher holds right after spawning the API server (etcd runs): the interrupt
        # lands there, whatever the machine's speed.
        held = state.absolute() / "controlplane" / "held-at-kube-apiserver"
        assert until(held.exists, timeout=120), "the launcher never reached the API server"
        assert len(processes_mentioning(str(state / "controlplane"))) >= 2  # etcd, apiserver
        up.send_signal(signal.SIGINT)
        # Stopping takes at most two grace periods; the bound only catches a hang (a cold run
        # on a 2-core machine at a load of 9 once took over 60 s here).
        _, err = up.communicate(timeout=300)
    finally:
        if up.poll() is None:
            up.kill()
            up.communicate()  # reaped, its pipes closed (an open one fails a later test)
    assert up.returncode == 130, err
    assert err.splitlines() == ["localcluster: interrupted; stopped what was started"]
    assert not processes_mentioning(str(state))


def test_down_leaves_alone_a_process_that_merely_reuses_a_recorded_pid(tmp_path: Path) -> None:
    bystander = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        real_start = started_at(bystander.pid)
        assert real_start is not None
        (tmp_path / "controlplane.json").write_text(
            json.dumps(
                {"pids": [bystander.pid], "started_at": {str(bystander.pid): real_start - 1}}
            )
        )
        assert down(tmp_path) == "control plane stopped"
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_a_release_without_a_wrapper_module_is_refused_in_one_line(state: Path) -> None:
    run = localcluster_cli("up", "--dir", str(state), "--kubernetes", "v1.99.0")
    assert run.returncode == 2
    assert (
        "no wrapper module for Kubernetes v1.99.0 in "
        f"{LOCALCLUSTER.parent / 'versions' / 'v1.99.0'} "
        "(hack/controlplane/wrap-version.sh v1.99.0 writes one)"
    ) in run.stderr
    assert run.stderr.strip().splitlines()[-1] == (
        "localcluster: building the control plane failed (build.sh exit 2); see above"
    )
    assert not (state / "controlplane.json").exists()
