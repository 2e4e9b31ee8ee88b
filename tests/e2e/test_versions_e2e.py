"""What this API server's release serves decides what is installed, and the rest works.

`make test-versions` runs this suite on every release of the matrix (docs/versions.md): each
test asserts what the release it finds must show, so a 1.30 and a 1.37 API server both prove
something. The chart is rendered as `helm install` renders it there (its version and its
discovery) and applied with a server-side dry run, so the API server validates every object,
the admission policies' CEL included, as that release compiles it.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from localcluster import ControlPlane
from tests.support.chart import CHART
from tests.support.cli import clusterip_guard
from tests.support.kubectl import Kubectl
from tests.support.served import (
    MUTATING_POLICY,
    RELEASE_SERVING,
    SERVICE_CIDR,
    ServedRelease,
    minor_of,
)
from tests.support.tools import cert_manager_crds, helm

pytestmark = pytest.mark.e2e

# A release and namespace of this suite's own: the chart's objects land in NAMESPACE and in
# RELEASE-probe, names no other suite uses (a namespace deleted here never finishes deleting).
RELEASE = "clusterip-guard-versions"  # holds the chart's name: its objects are named after it alone
NAMESPACE = "versions-guard"
MODE_LABEL = "clusterip-guard.io/mode"


def helm_template(served: ServedRelease, *values: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm()), "template", RELEASE, str(CHART), "--namespace", NAMESPACE,
         *served.helm_flags(), *(f"--set={value}" for value in values)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def test_this_release_serves_what_the_tests_expect_of_it(served_release: ServedRelease) -> None:
    """The first release serving each API, as the skips of the other suites assume it."""
    release = minor_of(served_release.version)
    for api_version, first in RELEASE_SERVING.items():
        assert served_release.serves(api_version) == (release >= first), api_version


@pytest.fixture(scope="module")
def namespaces(kubectl: Kubectl) -> Iterator[set[str]]:
    """The namespaces the chart's objects are in (made here: helm creates none of them)."""
    made: set[str] = set()
    yield made
    for namespace in made:
        kubectl("delete", "namespace", namespace, "--wait=false")


def make_namespaces(kubectl: Kubectl, made: set[str], documents: list[dict[str, Any]]) -> None:
    for namespace in {doc["metadata"].get("namespace") for doc in documents} - {None} - made:
        kubectl("create", "namespace", namespace)
        made.add(namespace)


@pytest.fixture(scope="module")
def cert_manager_crds_applied(kubectl: Kubectl) -> None:
    """cert-manager's own CRDs, so that the certManager mode's Issuers and Certificates validate."""
    for crd in cert_manager_crds():
        kubectl("apply", "--server-side", "-f", str(crd))
    kubectl("wait", "--for=condition=Established", "--timeout=60s",
            "crd/certificates.cert-manager.io", "crd/issuers.cert-manager.io")  # fmt: skip


# (values, whether the chart itself renders the admission policies: in certManager mode it
# renders everything; in bootstrap mode its Job registers them, as the bootstrap suite shows)
CHART_CASES = [
    pytest.param(("engine=webhook",), False, id="webhook, bootstrap certificates"),
    pytest.param(("engine=webhook", "certificates.mode=certManager"), True,
                 id="webhook, cert-manager"),
    pytest.param(("engine=native",), False, id="native"),
]  # fmt: skip


@pytest.mark.parametrize(("values", "renders_policies"), CHART_CASES)
def test_the_chart_installs_here_exactly_what_this_release_serves(
    values: tuple[str, ...],
    renders_policies: bool,
    served_release: ServedRelease,
    kubectl: Kubectl,
    namespaces: set[str],
    request: pytest.FixtureRequest,
) -> None:
    rendered = helm_template(served_release, *values)
    if "engine=native" in values and not served_release.serves(MUTATING_POLICY):
        assert rendered.returncode != 0
        errors = [line for line in rendered.stderr.splitlines() if "engine native" in line]
        assert len(errors) == 1, rendered.stderr
        assert (
            "engine native: this API server does not serve admissionregistration.k8s.io/v1 "
            "MutatingAdmissionPolicy (Kubernetes 1.36 has it)"
        ) in errors[0]
        return
    assert rendered.returncode == 0, rendered.stderr
    documents = [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]
    names = {doc["metadata"]["name"] for doc in documents}
    if renders_policies:
        assert f"{RELEASE}-mode-label" in names
        assert (f"{RELEASE}-service-range" in names) == served_release.serves(SERVICE_CIDR)
        request.getfixturevalue("cert_manager_crds_applied")
    # Every object as this API server validates it, admission policies compiled, none stored.
    make_namespaces(kubectl, namespaces, documents)
    applied = kubectl("apply", "--dry-run=server", "-f", "-", stdin=rendered.stdout, check=False)
    assert applied.returncode == 0, applied.stderr
    assert len(applied.stdout.splitlines()) == len(documents), applied.stdout


def test_the_webhook_bootstrap_says_once_what_this_release_leaves_out(
    control_plane: ControlPlane, served_release: ServedRelease, kubectl: Kubectl, tmp_path: Path
) -> None:
    args = ["--name", "versions-guard", "--url", "https://127.0.0.1:9", "--ip", "127.0.0.1",
            "--cert-dir", str(tmp_path / "certs")]  # fmt: skip
    run = clusterip_guard(control_plane.kubeconfig, "bootstrap", *args)
    try:
        assert run.returncode == 0, run.stderr
        said = (run.stdout + run.stderr).count(
            "this API server does not serve networking.k8s.io/v1 ServiceCIDR (Kubernetes 1.33 "
            "has it)"
        )
        assert said == (0 if served_release.serves(SERVICE_CIDR) else 1), run.stdout
        policies = kubectl("get", "validatingadmissionpolicies", "-o", "name").stdout.split()
        has_range_policy = any("versions-guard-service-range" in name for name in policies)
        assert has_range_policy == served_release.serves(SERVICE_CIDR), policies
    finally:
        gone = clusterip_guard(control_plane.kubeconfig, "bootstrap", *args, "--uninstall")
        assert gone.returncode == 0, gone.stderr


def test_the_native_engine_runs_exactly_where_this_release_serves_it(
    control_plane: ControlPlane, served_release: ServedRelease, kubectl: Kubectl
) -> None:
    args = ["--name", "versions-native", "--engine", "native"]
    run = clusterip_guard(control_plane.kubeconfig, "bootstrap", *args)
    if not served_release.serves(MUTATING_POLICY):
        assert run.returncode == 2, run.stdout
        assert run.stderr.strip() == (
            "clusterip-guard: this API server does not serve admissionregistration.k8s.io/v1 "
            "mutatingadmissionpolicies (Kubernetes 1.36 has it), which the native engine "
            "needs; use --engine webhook"
        )
        assert not kubectl("get", "mutatingwebhookconfigurations", "-o", "name").stdout.count(
            "versions-native"
        )
        return
    namespace = "versions-native-mutate"
    try:
        assert run.returncode == 0, run.stderr
        kubectl("create", "namespace", namespace)
        kubectl("label", "namespace", namespace, f"{MODE_LABEL}=mutate")
        service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                   "spec": {"type": "NodePort", "ports": [{"port": 80}]}}  # fmt: skip
        created = kubectl("-n", namespace, "create", "-o", "json", "-f", "-",
                          stdin=json.dumps(service))  # fmt: skip
        assert json.loads(created.stdout)["spec"]["type"] == "ClusterIP"
    finally:
        kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=false")
        gone = clusterip_guard(control_plane.kubeconfig, "bootstrap", *args, "--uninstall")
        assert gone.returncode == 0, gone.stderr
