"""The behaviour matrix on the real API server, under each engine in turn: bootstrap (url mode)
registers `serve`, or (`--engine native`) the admission policies the API server runs itself,
and Services are created and updated with kubectl and the Python client in every mode. Where
the native engine says something differently (an admission policy cannot warn of a
conversion) or has nothing to test (no server to log, count or stop), the test says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from localcluster import ControlPlane, user_kubeconfig
from tests.support.kubectl import Kubectl
from tests.support.polling import until
from tests.support.webhook_process import CertificateFiles, WebhookProcess, free_port

pytestmark = pytest.mark.e2e

CONFIGURATION = "matrix-clusterip-guard"
MODE_LABEL = "clusterip-guard.io/mode"
MODES_OF_NAMESPACES = {"enforce": "enforce", "mutate": "mutate", "audit": "audit", "plain": None}


def run_bootstrap(
    cluster: ControlPlane, *args: str, name: str = CONFIGURATION
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "clusterip_guard.cli.main",
            "bootstrap",
            "--name",
            name,
            *args,
        ],
        env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@dataclass
class Engine:
    """One engine registered, and its namespaces (`m-*` for the webhook, `n-*` native)."""

    name: str
    configuration: str
    process: WebhookProcess | None = None

    def ns(self, mode: str) -> str:
        return f"{'m' if self.name == 'webhook' else 'n'}-{mode}"

    @property
    def denied_by(self) -> str:
        if self.name == "webhook":
            return 'admission webhook "enforce.clusterip-guard.io" denied the request'
        return f"ValidatingAdmissionPolicy '{self.configuration}-exposure'"

    @property
    def webhook(self) -> WebhookProcess:
        """The server, for what only the webhook engine has (logs, counts, a process)."""
        if self.process is None:
            raise AssertionError(
                "the native engine runs no server (nothing to log, count or stop): "
                "mark the test @WEBHOOK_ONLY"
            )
        return self.process


# What only the webhook engine has (a server: its log, its calls, its stop): the test runs
# with the webhook engine alone, rather than skipping the native one.
WEBHOOK_ONLY = pytest.mark.parametrize("engine", ["webhook"], indirect=True)


@pytest.fixture(scope="module", params=["webhook", "native"])
def engine(
    request: pytest.FixtureRequest,
    control_plane: ControlPlane,
    kubectl: Kubectl,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Engine]:
    name: str = request.param
    if name == "native":  # skipped, saying why, before 1.36 (make test-versions)
        request.getfixturevalue("native_engine_served")
    files = CertificateFiles(tmp_path_factory.mktemp("matrix-certs"))
    port = free_port()
    if name == "webhook":
        registration: tuple[str, ...] = (
            "--url", f"https://127.0.0.1:{port}", "--cert-dir", str(files.folder),
            "--ip", "127.0.0.1",
        )  # fmt: skip
        configuration = CONFIGURATION
    else:
        registration = ("--engine", "native")
        configuration = f"{CONFIGURATION}-native"
    bootstrap = run_bootstrap(control_plane, *registration, name=configuration)
    assert bootstrap.returncode == 0, bootstrap.stderr
    found = Engine(name, configuration)
    if name == "webhook":
        found.process = WebhookProcess(files, port=port).start()
    for suffix, mode in MODES_OF_NAMESPACES.items():
        kubectl("create", "namespace", found.ns(suffix))
        if mode:
            kubectl("label", "namespace", found.ns(suffix), f"{MODE_LABEL}={mode}")
    probe = ("-n", found.ns("enforce"), "create", "service", "nodeport", "probe",
             "--tcp=80", "--dry-run=server")  # fmt: skip
    # A new registration and labels reach admission a moment later.
    assert until(lambda: kubectl(*probe, check=False).returncode != 0, timeout=60)
    yield found
    if found.process is not None:
        found.process.stop()
    run_bootstrap(control_plane, *registration, "--uninstall", name=configuration)


def service_yaml(name: str, service_type: str = "NodePort", **spec: Any) -> str:
    manifest = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "type": service_type,
            "selector": {"app": name},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
            **spec,
        },
    }
    return json.dumps(manifest)


def stored(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    got: dict[str, Any] = json.loads(
        kubectl("-n", namespace, "get", "service", name, "-o", "json").stdout
    )
    return got


def assert_cluster_ip(service: dict[str, Any], converted_from: str) -> None:
    spec = service["spec"]
    assert spec["type"] == "ClusterIP"
    assert all("nodePort" not in port for port in spec["ports"])
    for gone in (
        "externalTrafficPolicy",
        "healthCheckNodePort",
        "allocateLoadBalancerNodePorts",
        "loadBalancerClass",
        "loadBalancerSourceRanges",
        "loadBalancerIP",
        "externalIPs",
    ):
        assert gone not in spec, gone
    assert service["metadata"]["annotations"]["clusterip-guard.io/converted-from"] == converted_from


# --- CREATE, every mode ---------------------------------------------------------------------


def test_enforce_denies_a_node_port_with_our_message(engine: Engine, kubectl: Kubectl) -> None:
    run = kubectl("-n", engine.ns("enforce"), "create", "service", "nodeport", "np",
                  "--tcp=80:8080",
                  check=False)  # fmt: skip
    assert run.returncode != 0
    assert engine.denied_by in run.stderr
    assert "spec.type: type NodePort opens a port on every node; use type ClusterIP" in run.stderr


def test_mutate_stores_a_node_port_as_cluster_ip(engine: Engine, kubectl: Kubectl) -> None:
    run = kubectl("-n", engine.ns("mutate"), "create", "service", "nodeport", "np", "--tcp=80:8080")
    said = "Warning: clusterip-guard converted this Service from NodePort to ClusterIP"
    # A MutatingAdmissionPolicy cannot warn: the native engine converts without a word.
    assert (said in run.stderr) is (engine.name == "webhook"), run.stderr
    assert_cluster_ip(stored(kubectl, engine.ns("mutate"), "np"), "NodePort")


def test_mutate_converts_a_load_balancer_with_every_load_balancer_field(
    engine: Engine, kubectl: Kubectl
) -> None:
    manifest = service_yaml(
        "lb-full",
        "LoadBalancer",
        ports=[{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 31080}],
        externalTrafficPolicy="Local",
        healthCheckNodePort=31999,
        allocateLoadBalancerNodePorts=True,
        loadBalancerClass="example.com/lb",
        loadBalancerSourceRanges=["198.51.100.0/24"],
        loadBalancerIP="198.51.100.10",
        externalIPs=["203.0.113.20"],
    )
    manifest_dict = json.loads(manifest)
    manifest_dict["metadata"]["annotations"] = {
        "service.beta.kubernetes.io/load-balancer-source-ranges": "198.51.100.0/24",
        "team": "shop",
    }
    kubectl("-n", engine.ns("mutate"), "apply", "-f", "-", stdin=json.dumps(manifest_dict))
    service = stored(kubectl, engine.ns("mutate"), "lb-full")
    assert_cluster_ip(service, "LoadBalancer")
    annotations = service["metadata"]["annotations"]
    assert "service.beta.kubernetes.io/load-balancer-source-ranges" not in annotations
    assert annotations["team"] == "shop"


def test_enforce_denies_a_load_balancer(engine: Engine, kubectl: Kubectl) -> None:
    run = kubectl("-n", engine.ns("enforce"), "apply", "-f", "-",
                  stdin=service_yaml("lb", "LoadBalancer"),
                  check=False)  # fmt: skip
    assert run.returncode != 0
    assert "type LoadBalancer exposes the Service outside the cluster" in run.stderr


def _external_ip_service(name: str) -> client.V1Service:
    return client.V1Service(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1ServiceSpec(
            external_ips=["203.0.113.30"],
            selector={"app": name},
            ports=[client.V1ServicePort(port=80)],
        ),
    )


def test_python_client_external_ips_are_denied_in_enforce(
    engine: Engine, api_client: client.ApiClient
) -> None:
    core = client.CoreV1Api(api_client)
    with pytest.raises(ApiException) as denied:
        core.create_namespaced_service(engine.ns("enforce"), _external_ip_service("ext"))
    assert denied.value.status == 403
    assert "spec.externalIPs" in str(denied.value.body)


def test_python_client_external_ips_are_removed_in_mutate(
    engine: Engine, api_client: client.ApiClient
) -> None:
    core = client.CoreV1Api(api_client)
    created = core.create_namespaced_service(engine.ns("mutate"), _external_ip_service("ext"))
    assert created.spec is not None
    assert created.spec.type == "ClusterIP"
    assert not created.spec.external_ips


# The API server's annotations limit is 256 KiB (this fills it); a control character is six
# bytes in the review it sends (\u0001), and an UPDATE carries the object and the old object:
# over the 3 MiB the webhook used to read (it failed under that limit, passes over it).
LARGEST_ANNOTATION = 262_100


def test_an_update_at_the_api_servers_size_limits_is_still_judged_in_audit(
    engine: Engine, kubectl: Kubectl
) -> None:
    """A review the webhook refused (413) was let through by the audit entry's Ignore with no
    warning, annotation or count (issue 30, item 8): now it is read and judged."""
    namespace = engine.ns("audit")
    note = "\x01" * LARGEST_ANNOTATION
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "large", "annotations": {"note": note}},
               "spec": {"type": "NodePort", "ports": [{"port": 80}]}}  # fmt: skip
    kubectl("-n", namespace, "create", "-f", "-", stdin=json.dumps(service))
    relabelled = kubectl("-n", namespace, "label", "service", "large", "tier=web")
    assert "existing exposure kept (allowExistingViolations)" in relabelled.stderr, (
        relabelled.stderr
    )


def test_audit_warns_and_stores_the_service_as_sent(
    engine: Engine, kubectl: Kubectl, control_plane: ControlPlane
) -> None:
    namespace = engine.ns("audit")
    run = kubectl("-n", namespace, "create", "service", "nodeport", "np", "--tcp=80:8080")
    if engine.name == "webhook":
        assert f"Warning: audit: Service {namespace}/np: spec.type: type NodePort" in run.stderr
        annotation = '"audit.clusterip-guard.io/exposure"'
    else:  # once per policy, with the API server's own prefix
        assert (
            f"Warning: Validation failed for ValidatingAdmissionPolicy "
            f"'{engine.configuration}-exposure' with binding "
            f"'{engine.configuration}-exposure-warn'"
            f": Service {namespace}/np would be reachable"
        ) in run.stderr
        assert "spec.type: type NodePort opens a port on every node" in run.stderr
        annotation = '"validation.policy.admission.k8s.io/validation_failure"'
    assert stored(kubectl, namespace, "np")["spec"]["type"] == "NodePort"

    def audited() -> bool:
        log = (control_plane.workdir / "audit.log").read_text()
        return any(annotation in line and f'"{namespace}"' in line for line in log.splitlines())

    assert until(audited), "no auditAnnotations entry in the API server's audit log"


@WEBHOOK_ONLY
def test_the_log_says_who_created_an_exposed_service_and_why_it_was_only_warned(
    engine: Engine, kubectl: Kubectl, control_plane: ControlPlane
) -> None:
    kubectl("-n", engine.ns("audit"), "create", "role", "services-writer", "--verb=create,get",
            "--resource=services")  # fmt: skip
    kubectl("-n", engine.ns("audit"), "create", "rolebinding", "alice-writes",
            "--role=services-writer",
            "--user=alice")  # fmt: skip
    alice = Kubectl(user_kubeconfig(control_plane, "alice", ("team-a",)))
    webhook = engine.webhook
    before = len(webhook.logs())
    alice("-n", engine.ns("audit"), "create", "service", "nodeport", "by-alice", "--tcp=80")

    def logged() -> list[dict[str, Any]]:
        lines = webhook.logs()[before:].splitlines()
        return [json.loads(line) for line in lines if '"by-alice"' in line]

    assert until(logged)
    (line,) = logged()
    assert line["user"] == "alice"
    assert "team-a" in line["groups"]
    assert "system:authenticated" in line["groups"]
    assert line["why"] == "audit mode: exposure is reported, not denied"


def test_unlabelled_namespace_and_kube_system_are_untouched(
    engine: Engine, kubectl: Kubectl
) -> None:
    kubectl("label", "namespace", "kube-system", f"{MODE_LABEL}=enforce", "--overwrite")
    try:
        for namespace in (engine.ns("plain"), "kube-system"):
            name = f"plain-np-{engine.name}"  # kube-system is shared by both engines' runs
            kubectl("-n", namespace, "create", "service", "nodeport", name, "--tcp=80:8080")
            assert stored(kubectl, namespace, name)["spec"]["type"] == "NodePort"
    finally:
        kubectl("label", "namespace", "kube-system", f"{MODE_LABEL}-")


# --- UPDATE paths ---------------------------------------------------------------------------


@pytest.fixture
def cluster_ip_services(engine: Engine, kubectl: Kubectl, request: Any) -> str:
    name = f"up-{request.node.name.split('[')[0][-20:].replace('_', '-').strip('-')}"
    for namespace in (engine.ns("enforce"), engine.ns("mutate")):
        kubectl("-n", namespace, "apply", "-f", "-", stdin=service_yaml(name, "ClusterIP"))
    return name


def test_kubectl_patch_to_node_port(
    cluster_ip_services: str, engine: Engine, kubectl: Kubectl
) -> None:
    patch = '{"spec": {"type": "NodePort"}}'
    name = cluster_ip_services
    denied = kubectl("-n", engine.ns("enforce"), "patch", "service", name, "-p", patch, check=False)
    assert denied.returncode != 0
    assert engine.denied_by in denied.stderr
    kubectl("-n", engine.ns("mutate"), "patch", "service", name, "-p", patch)
    assert_cluster_ip(stored(kubectl, engine.ns("mutate"), name), "NodePort")


def test_server_side_apply_to_node_port(
    cluster_ip_services: str, engine: Engine, kubectl: Kubectl
) -> None:
    name = cluster_ip_services
    manifest = service_yaml(name, "NodePort")
    apply = ("apply", "--server-side", "--force-conflicts", "-f", "-")
    denied = kubectl("-n", engine.ns("enforce"), *apply, stdin=manifest, check=False)
    assert denied.returncode != 0
    assert engine.denied_by in denied.stderr
    kubectl("-n", engine.ns("mutate"), *apply, stdin=manifest)
    assert_cluster_ip(stored(kubectl, engine.ns("mutate"), name), "NodePort")


def test_full_replace_to_load_balancer(
    cluster_ip_services: str, engine: Engine, kubectl: Kubectl
) -> None:
    name = cluster_ip_services
    for namespace in (engine.ns("enforce"), engine.ns("mutate")):
        current = stored(kubectl, namespace, name)
        current["spec"]["type"] = "LoadBalancer"
        replace = kubectl("-n", namespace, "replace", "-f", "-", stdin=json.dumps(current),
                          check=False)  # fmt: skip
        if namespace == engine.ns("enforce"):
            assert replace.returncode != 0
            assert engine.denied_by in replace.stderr
        else:
            assert replace.returncode == 0, replace.stderr
    assert_cluster_ip(stored(kubectl, engine.ns("mutate"), name), "LoadBalancer")


def test_an_existing_exposed_service_keeps_working_with_a_warning(
    engine: Engine, kubectl: Kubectl
) -> None:
    # Created while the namespace was not selected, then the namespace turns to enforce.
    kubectl("create", "namespace", engine.ns("legacy"))
    kubectl("-n", engine.ns("legacy"), "create", "service", "nodeport", "legacy", "--tcp=80:8080")
    kubectl("label", "namespace", engine.ns("legacy"), f"{MODE_LABEL}=enforce")
    run = kubectl("-n", engine.ns("legacy"), "label", "service", "legacy", "tier=web")
    # Both engines warn: the native engine by its warning policy, with the API server's prefix.
    assert "existing exposure kept (allowExistingViolations): spec.type: type NodePort" in (
        run.stderr
    ), run.stderr
    assert stored(kubectl, engine.ns("legacy"), "legacy")["metadata"]["labels"]["tier"] == "web"


def test_kubectl_create_service_nodeport_and_expose(engine: Engine, kubectl: Kubectl) -> None:
    kubectl("-n", engine.ns("mutate"), "create", "deployment", "nginx", "--image=nginx:1.27",
            "--replicas=3")  # fmt: skip
    kubectl(
        "-n", engine.ns("mutate"), "expose", "deployment", "nginx", "--type=NodePort", "--port=80"
    )
    assert_cluster_ip(stored(kubectl, engine.ns("mutate"), "nginx"), "NodePort")
    kubectl("-n", engine.ns("mutate"), "create", "service", "nodeport", "cli-np", "--tcp=80:8080",
            "--node-port=30555")  # fmt: skip
    assert_cluster_ip(stored(kubectl, engine.ns("mutate"), "cli-np"), "NodePort")


def test_dry_run_gets_the_same_answer(engine: Engine, kubectl: Kubectl) -> None:
    run = kubectl("-n", engine.ns("mutate"), "create", "service", "nodeport", "dry",
                  "--tcp=80:8080",
                  "--dry-run=server", "-o", "json")  # fmt: skip
    assert json.loads(run.stdout)["spec"]["type"] == "ClusterIP"
    assert kubectl("-n", engine.ns("mutate"), "get", "service", "dry", check=False).returncode != 0


@WEBHOOK_ONLY
def test_compliant_services_never_reach_the_webhook(engine: Engine, kubectl: Kubectl) -> None:
    webhook = engine.webhook
    before = webhook.reviews_answered()
    kubectl("-n", engine.ns("enforce"), "create", "service", "clusterip", "quiet", "--tcp=80:8080")
    kubectl("-n", engine.ns("enforce"), "label", "service", "quiet", "tier=web")
    assert webhook.reviews_answered() == before  # the CEL matchCondition kept the calls away
    kubectl("-n", engine.ns("enforce"), "create", "service", "nodeport", "loud", "--tcp=80:8080",
            check=False)  # fmt: skip
    assert webhook.reviews_answered() == before + 1


# --- the webhook down: fail closed where it must, open elsewhere ----------------------------


@WEBHOOK_ONLY
def test_with_the_webhook_stopped_enforce_fails_closed_and_the_rest_works(
    engine: Engine, kubectl: Kubectl
) -> None:
    webhook = engine.webhook
    webhook.stop()
    try:
        blocked = kubectl("-n", engine.ns("enforce"), "create", "service", "nodeport", "down-np",
                          "--tcp=80:8080", check=False)  # fmt: skip
        assert blocked.returncode != 0
        assert "failed calling webhook" in blocked.stderr
        kubectl(
            "-n",
            engine.ns("enforce"),
            "create",
            "service",
            "clusterip",
            "down-cip",
            "--tcp=80:8080",
        )
        kubectl(
            "-n", engine.ns("audit"), "create", "service", "nodeport", "down-np", "--tcp=80:8080"
        )
        kubectl(
            "-n", engine.ns("plain"), "create", "service", "nodeport", "down-np", "--tcp=80:8080"
        )
        kubectl("-n", "kube-system", "create", "service", "nodeport", "down-np", "--tcp=80:8080")
    finally:
        webhook.start()
