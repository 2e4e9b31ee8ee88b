"""Host ports and the host network on the real API server (docs/design.md, "What counts as
exposed"), under each engine: bootstrap registers `serve` (url mode) or the native engine's
admission policies, with a policy allowing one host port and exempting one DaemonSet; Pods
and every kind of workload are written with kubectl in each mode. What the API server makes
of our patch, our match condition and our identities of the workload controllers is shown
here, not assumed. Where the native engine says less (an admission policy cannot warn of a
conversion, of an exemption or of a controller's write) the test says so. (That nothing
answers on a node's host port after a conversion is shown on the real node, in
tests/e2e/test_install_e2e.py.)"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from clusterip_guard.core.decision import WorkloadChange, decide
from clusterip_guard.core.workloads import workload_kind_of
from clusterip_guard.policyfile import parse_policy
from localcluster import ControlPlane
from tests.e2e.test_admission_e2e import run_bootstrap
from tests.support.kubectl import Kubectl
from tests.support.polling import until
from tests.support.webhook_process import CertificateFiles, WebhookProcess, free_port

pytestmark = pytest.mark.e2e

CONFIGURATION = "hostports-clusterip-guard"
MODE_LABEL = "clusterip-guard.io/mode"
MODES_OF_NAMESPACES = {"enforce": "enforce", "mutate": "mutate", "audit": "audit", "plain": None}
POLICY = """\
allowedHostPorts: [9100]
exemptions:
  - {namespace: h-enforce, name: node-agent, kind: DaemonSet, reason: the node's own agent}
"""
REPLICASET_CONTROLLER = "system:serviceaccount:kube-system:replicaset-controller"


@dataclass
class Engine:
    """One engine registered with the policy, and its namespaces (`h-*` for the webhook,
    `hn-*` for the native engine's admission policies)."""

    name: str
    configuration: str
    process: WebhookProcess | None = None

    def ns(self, mode: str) -> str:
        return f"{'h' if self.name == 'webhook' else 'hn'}-{mode}"

    def denied_by(self, configuration: str) -> str:
        """How the API server says who denied: `configuration` mutating or validating."""
        if self.name == "webhook":
            entry = "mutate" if configuration == "mutating" else "enforce"
            return f'admission webhook "{entry}-workloads.clusterip-guard.io" denied the request'
        return f"ValidatingAdmissionPolicy '{self.configuration}-host-exposure'"

    @property
    def webhook(self) -> WebhookProcess:
        if self.process is None:
            raise AssertionError(
                "the native engine runs no server: no calls to count: mark the test @WEBHOOK_ONLY"
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
    folder = tmp_path_factory.mktemp(f"hostports-{name}")
    files = CertificateFiles(folder)
    port = free_port()
    found = Engine(name, CONFIGURATION if name == "webhook" else f"{CONFIGURATION}-native")
    policy = folder / "policy.yaml"
    policy.write_text(POLICY.replace("h-enforce", found.ns("enforce")))
    if name == "webhook":
        registration: tuple[str, ...] = (
            "--url", f"https://127.0.0.1:{port}", "--cert-dir", str(files.folder),
            "--ip", "127.0.0.1",
        )  # fmt: skip
    else:
        registration = ("--engine", "native", "--policy-file", str(policy))
    bootstrap = run_bootstrap(control_plane, *registration, name=found.configuration)
    assert bootstrap.returncode == 0, bootstrap.stderr
    if name == "webhook":
        found.process = WebhookProcess(files, policy_file=policy, port=port).start()
    for suffix, mode in MODES_OF_NAMESPACES.items():
        kubectl("create", "namespace", found.ns(suffix))
        if mode:
            kubectl("label", "namespace", found.ns(suffix), f"{MODE_LABEL}={mode}")
    probe = pod_yaml("probe", host_port=8088)
    # A new registration and labels reach admission a moment later.
    assert until(
        lambda: apply(kubectl, found.ns("enforce"), probe, "--dry-run=server").returncode != 0,
        timeout=60,
    )
    yield found
    if found.process is not None:
        found.process.stop()
    run_bootstrap(control_plane, *registration, "--uninstall", name=found.configuration)


def pod_spec(host_port: int | None = None, host_network: bool = False) -> dict[str, Any]:
    port: dict[str, Any] = {"containerPort": 80, "protocol": "TCP"}
    if host_port is not None:
        port.update(hostPort=host_port, hostIP="0.0.0.0")
    spec: dict[str, Any] = {
        "containers": [{"name": "nginx", "image": "nginx:1.27", "ports": [port]}],
        "restartPolicy": "Always",
    }
    if host_network:
        spec["hostNetwork"] = True
    return spec


def pod_yaml(name: str, owner: tuple[str, str] | None = None, **kwargs: Any) -> str:
    metadata: dict[str, Any] = {"name": name, "labels": {"app": name}}
    if owner is not None:
        metadata["ownerReferences"] = [{
            "apiVersion": "apps/v1", "kind": owner[0], "name": owner[1], "controller": True,
            "uid": "0b6a3c5e-4a5e-4c5b-9e0f-1d2c3b4a5f60",
        }]  # fmt: skip
    return yaml.safe_dump(
        {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": pod_spec(**kwargs)}
    )


def template(name: str, restart: str = "Always", **kwargs: Any) -> dict[str, Any]:
    spec = pod_spec(**kwargs)
    spec["restartPolicy"] = restart
    return {"metadata": {"labels": {"app": name}}, "spec": spec}


def workload_yaml(kind: str, name: str, **kwargs: Any) -> str:
    selector = {"matchLabels": {"app": name}}
    specs: dict[str, tuple[str, dict[str, Any]]] = {
        "Deployment": ("apps/v1", {"selector": selector, "template": template(name, **kwargs)}),
        "ReplicaSet": ("apps/v1", {"selector": selector, "template": template(name, **kwargs)}),
        "DaemonSet": ("apps/v1", {"selector": selector, "template": template(name, **kwargs)}),
        "StatefulSet": (
            "apps/v1",
            {"selector": selector, "serviceName": name, "template": template(name, **kwargs)},
        ),
        "Job": ("batch/v1", {"template": template(name, "Never", **kwargs)}),
        "CronJob": (
            "batch/v1",
            {
                "schedule": "0 0 1 1 *",
                "jobTemplate": {"spec": {"template": template(name, "Never", **kwargs)}},
            },
        ),
        "ReplicationController": (
            "v1",
            {"selector": {"app": name}, "template": template(name, **kwargs)},
        ),
    }
    api_version, spec = specs[kind]
    return yaml.safe_dump(
        {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, "spec": spec}
    )


def apply(kubectl: Kubectl, namespace: str, manifest: str, *args: str, user: str = "") -> Any:
    """kubectl apply; as `user`, kubectl create (a controller's role may create Pods, not get
    them, and apply gets first)."""
    verb = ("create", f"--as={user}") if user else ("apply",)
    return kubectl("-n", namespace, *verb, "-f", "-", *args, stdin=manifest, check=False)


def stored(kubectl: Kubectl, namespace: str, kind: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(
        kubectl("-n", namespace, "get", kind, name, "-o", "json").stdout
    )
    return found


KINDS = ["Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob",
         "ReplicationController"]  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
def test_enforce_denies_a_host_port_at_kubectl_apply_of_every_workload_kind(
    engine: Engine, kubectl: Kubectl, kind: str
) -> None:
    namespace = engine.ns("enforce")
    run = apply(kubectl, namespace, workload_yaml(kind, "web", host_port=8088))
    assert run.returncode != 0
    assert engine.denied_by("validating") in run.stderr
    assert f"{kind} {namespace}/web would be reachable from outside the cluster" in run.stderr
    assert "opens host port 8088 on its node; remove hostPort" in run.stderr


def test_enforce_denies_a_pod_with_a_host_port_or_on_the_host_network(
    engine: Engine, kubectl: Kubectl
) -> None:
    run = apply(kubectl, engine.ns("enforce"), pod_yaml("bare", host_port=8088))
    assert f"Pod {engine.ns('enforce')}/bare would be reachable" in run.stderr
    run = apply(kubectl, engine.ns("enforce"), pod_yaml("hostnet", host_network=True))
    assert run.returncode != 0
    # The API server fills in hostPort = containerPort on the host network; one line says it.
    assert "spec.hostNetwork: hostNetwork: true puts the Pod on its node's own network" in (
        run.stderr
    )


def test_mutate_removes_the_host_port_from_a_deployment_and_keeps_the_container_port(
    engine: Engine, kubectl: Kubectl
) -> None:
    namespace = engine.ns("mutate")
    run = apply(kubectl, namespace, workload_yaml("Deployment", "web", host_port=8088))
    assert run.returncode == 0, run.stderr
    # A MutatingAdmissionPolicy has no way to warn: only the webhook says what it removed.
    said = "Warning: clusterip-guard removed host ports from this Deployment: removed "
    assert (said in run.stderr) == (engine.name == "webhook")
    deployment = stored(kubectl, namespace, "deployment", "web")
    ports = deployment["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert ports == [{"containerPort": 80, "protocol": "TCP"}]


def test_mutate_removes_a_bare_pods_host_port_and_denies_the_host_network(
    engine: Engine, kubectl: Kubectl
) -> None:
    namespace = engine.ns("mutate")
    run = apply(kubectl, namespace, pod_yaml("bare", host_port=8088))
    assert run.returncode == 0, run.stderr
    pod = stored(kubectl, namespace, "pod", "bare")
    assert pod["spec"]["containers"][0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    run = apply(kubectl, namespace, pod_yaml("hostnet", host_network=True))
    assert run.returncode != 0
    # The webhook's mutating entry denies it; natively the validating policy, saying the same.
    assert engine.denied_by("mutating") in run.stderr
    assert "the host network cannot be taken from a Pod without making it another Pod" in (
        run.stderr
    )


def test_audit_allows_and_warns(engine: Engine, kubectl: Kubectl) -> None:
    namespace = engine.ns("audit")
    run = apply(kubectl, namespace, workload_yaml("DaemonSet", "agent", host_port=8088))
    assert run.returncode == 0, run.stderr
    # The webhook's audit line, or the policy's Warn binding with the denial's words.
    said = (
        f"Warning: audit: DaemonSet {namespace}/agent: spec.template.spec.containers[0]"
        if engine.name == "webhook"
        else f"DaemonSet {namespace}/agent would be reachable from outside the cluster"
    )
    assert said in run.stderr
    assert "opens host port 8088 on its node" in run.stderr
    daemon_set = stored(kubectl, namespace, "daemonset", "agent")
    stored_ports = daemon_set["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert stored_ports[0]["hostPort"] == 8088


def test_allowed_host_ports_and_exempt_workloads_pass_enforce(
    engine: Engine, kubectl: Kubectl
) -> None:
    namespace = engine.ns("enforce")
    run = apply(kubectl, namespace, workload_yaml("Deployment", "metrics", host_port=9100))
    assert run.returncode == 0, run.stderr
    run = apply(kubectl, namespace, workload_yaml("DaemonSet", "node-agent", host_port=8088))
    assert run.returncode == 0, run.stderr
    if engine.name == "webhook":  # an admission policy that allows says nothing
        said = f"allowed by exemption DaemonSet {namespace}/node-agent (the node's own agent)"
        assert said in run.stderr
    # The exemption names its kind: a Deployment of the same name is judged.
    run = apply(kubectl, namespace, workload_yaml("Deployment", "node-agent", host_port=8088))
    assert run.returncode != 0


def test_what_a_workload_controller_writes_is_judged_at_its_workload(
    engine: Engine, kubectl: Kubectl
) -> None:
    owner = ("ReplicaSet", "legacy-5d8f")
    made = pod_yaml("legacy-5d8f-abcde", owner=owner, host_port=8088)
    namespace = engine.ns("enforce")
    run = apply(kubectl, namespace, made, "--dry-run=server", user=REPLICASET_CONTROLLER)
    assert run.returncode == 0, run.stderr
    said = "written by the ReplicaSet controller from ReplicaSet legacy-5d8f, judged there"
    assert (said in run.stderr) == (engine.name == "webhook")
    # The same Pod from anyone else (here the cluster admin) is judged: an ownerReference is
    # anyone's to write.
    run = apply(kubectl, namespace, made, "--dry-run=server")
    assert run.returncode != 0
    assert f"Pod {namespace}/legacy-5d8f-abcde would be reachable" in run.stderr


def test_an_update_is_judged_on_the_host_ports_it_adds(engine: Engine, kubectl: Kubectl) -> None:
    namespace = engine.ns("later")
    kubectl("create", "namespace", namespace)
    before = workload_yaml("Deployment", "legacy", host_port=8088)
    assert apply(kubectl, namespace, before).returncode == 0
    kubectl("label", "namespace", namespace, f"{MODE_LABEL}=enforce")
    # Labels reach admission a moment later: the first denial says they have.
    added = yaml.safe_load(before)
    added["spec"]["template"]["spec"]["containers"][0]["ports"].append(
        {"containerPort": 443, "hostPort": 8443, "protocol": "TCP"}
    )
    assert until(
        lambda: (
            apply(kubectl, namespace, yaml.safe_dump(added), "--dry-run=server").returncode != 0
        ),
        timeout=30,
    )
    run = apply(kubectl, namespace, yaml.safe_dump(added))
    assert "host port 8443" in run.stderr
    assert "host port 8088" not in run.stderr  # kept: not new
    kept = yaml.safe_load(before)
    kept["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"
    run = apply(kubectl, namespace, yaml.safe_dump(kept))
    assert run.returncode == 0, run.stderr
    said = "existing exposure kept (allowExistingViolations)"
    assert (said in run.stderr) == (engine.name == "webhook")


def test_a_kept_host_port_re_pointed_is_new_exposure(engine: Engine, kubectl: Kubectl) -> None:
    """A host-port piece is what the node opens: protocol, port and the address it binds."""
    namespace = engine.ns("repointed")
    kubectl("create", "namespace", namespace)
    legacy = yaml.safe_load(workload_yaml("Deployment", "legacy", host_port=8080))
    ports = legacy["spec"]["template"]["spec"]["containers"][0]["ports"]
    ports[0]["hostIP"] = "127.0.0.1"
    assert apply(kubectl, namespace, yaml.safe_dump(legacy)).returncode == 0
    kubectl("label", "namespace", namespace, f"{MODE_LABEL}=enforce")
    everywhere = json.loads(json.dumps(legacy))
    del everywhere["spec"]["template"]["spec"]["containers"][0]["ports"][0]["hostIP"]
    # Labels reach admission a moment later: the first denial says they have.
    assert until(
        lambda: apply(kubectl, namespace, yaml.safe_dump(everywhere), "--dry-run=server")
        .returncode != 0,
        timeout=30,
    )  # fmt: skip
    run = apply(kubectl, namespace, yaml.safe_dump(everywhere))
    assert "opens host port 8080 on its node;" in run.stderr, run.stderr
    another = json.loads(json.dumps(legacy))
    another["spec"]["template"]["spec"]["containers"].append(
        {"name": "sidecar", "image": "nginx:1.27",
         "ports": [{"containerPort": 81, "hostPort": 8080, "hostIP": "10.0.0.5"}]}
    )  # fmt: skip
    run = apply(kubectl, namespace, yaml.safe_dump(another))
    assert "host port 8080 on its node (on its address 10.0.0.5)" in run.stderr, run.stderr
    assert "(on its address 127.0.0.1)" not in run.stderr  # the kept one is not new
    kept = json.loads(json.dumps(legacy))
    kept["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"
    assert apply(kubectl, namespace, yaml.safe_dump(kept)).returncode == 0


@WEBHOOK_ONLY
def test_compliant_pods_and_workloads_never_reach_the_webhook(
    engine: Engine, kubectl: Kubectl
) -> None:
    webhook = engine.webhook
    namespace = engine.ns("enforce")
    before = webhook.reviews_answered()
    assert apply(kubectl, namespace, pod_yaml("quiet")).returncode == 0
    assert apply(kubectl, namespace, workload_yaml("Deployment", "quiet")).returncode == 0
    assert apply(kubectl, namespace, workload_yaml("CronJob", "quiet")).returncode == 0
    kubectl("-n", namespace, "label", "pod", "quiet", "tier=web")
    assert webhook.reviews_answered() == before  # the CEL matchCondition kept the calls away
    apply(kubectl, namespace, pod_yaml("loud", host_port=8088), "--dry-run=server")
    assert webhook.reviews_answered() == before + 1


def test_system_namespaces_are_never_judged(engine: Engine, kubectl: Kubectl) -> None:
    kube_proxy = pod_yaml("kube-proxy-probe", host_network=True)
    run = apply(kubectl, "kube-system", kube_proxy, "--dry-run=server")
    assert run.returncode == 0, run.stderr


def test_no_pod_update_can_add_a_host_port_so_none_is_sent(
    engine: Engine, kubectl: Kubectl
) -> None:
    """Pods are registered for CREATE only: the API server itself refuses an UPDATE that
    changes a Pod's ports or its host network."""
    assert apply(kubectl, engine.ns("plain"), pod_yaml("fixed")).returncode == 0
    changed = yaml.safe_load(pod_yaml("fixed", host_port=8088))
    run = apply(kubectl, engine.ns("plain"), yaml.safe_dump(changed))
    assert run.returncode != 0
    assert "Forbidden: pod updates may not change fields other than" in run.stderr
    network = yaml.safe_load(pod_yaml("fixed", host_network=True))
    run = apply(kubectl, engine.ns("plain"), yaml.safe_dump(network))
    assert run.returncode != 0
    assert "Forbidden: pod updates may not change fields other than" in run.stderr


def _denial_of(stderr: str) -> str:
    """The message after the API server's own words (either engine's)."""
    for marker in ("denied the request: ", "denied request: "):
        if marker in stderr:
            return stderr.split(marker, 1)[1].strip()
    raise AssertionError(f"not a denial: {stderr}")


def _many_doors() -> dict[str, Any]:
    manifest: dict[str, Any] = yaml.safe_load(workload_yaml("StatefulSet", "doors", host_port=8088))
    spec = manifest["spec"]["template"]["spec"]
    spec["containers"][0]["ports"] += [
        {"containerPort": 53, "hostPort": 5353, "protocol": "UDP", "hostIP": "10.0.0.7"},
        {"containerPort": 9100, "hostPort": 9100},  # allowed by the policy
    ]
    spec["initContainers"] = [
        {"name": "sidecar", "image": "envoy", "restartPolicy": "Always",
         "ports": [{"containerPort": 15000, "hostPort": 15000}]},
    ]  # fmt: skip
    return manifest


CASES: dict[str, Any] = {
    "deployment": lambda: yaml.safe_load(workload_yaml("Deployment", "one", host_port=8088)),
    "cronjob": lambda: yaml.safe_load(workload_yaml("CronJob", "nightly", host_port=8089)),
    "many doors": _many_doors,
    "host network": lambda: yaml.safe_load(pod_yaml("hostnet-2", host_network=True)),
    "host network with a host port": lambda: yaml.safe_load(
        pod_yaml("hostnet-3", host_network=True, host_port=80)
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("mode", ["enforce", "mutate"])
def test_both_engines_deny_in_the_words_of_the_core(
    engine: Engine, kubectl: Kubectl, case: str, mode: str
) -> None:
    """Each engine's denial is core.decision's, word for word, on the real API server."""
    manifest = CASES[case]()
    namespace = engine.ns(mode)
    kind = workload_kind_of(manifest)
    assert kind is not None
    change = WorkloadChange("CREATE", namespace, manifest["metadata"]["name"], kind, manifest)
    policy = parse_policy(POLICY.replace("h-enforce", engine.ns("enforce")))
    decision = decide(change, mode, policy, today=datetime.date.today())  # type: ignore[arg-type]
    run = apply(kubectl, namespace, yaml.safe_dump(manifest), "--dry-run=server")
    if decision.verdict == "mutated":
        assert run.returncode == 0, run.stderr
        return
    assert decision.verdict == "denied"
    assert run.returncode != 0
    assert _denial_of(run.stderr) == decision.denial
