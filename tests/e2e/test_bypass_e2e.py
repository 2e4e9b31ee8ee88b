"""The bypass catalogue, tried as a tenant would on the real API server (docs/security.md).

A tenant who may only write Services in their namespace tries to get exposure past the
webhook: on Services that were exposed before the namespace was governed, through every way
kubectl and the API change an object (strategic, merge and JSON patches, server-side apply,
replace, dry runs), and through the internal-load-balancer rule. Each attempt must be refused
with our message; each harmless change to a legacy Service must still go through.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from localcluster import ControlPlane, user_kubeconfig
from tests.support.kubectl import Kubectl
from tests.support.polling import until
from tests.support.webhook_process import CertificateFiles, WebhookProcess, free_port

pytestmark = pytest.mark.e2e

CONFIGURATION = "bypass-clusterip-guard"
NAMESPACE = "tenant-a"
TENANT = "tenant"
AWS_INTERNAL = {
    "service.beta.kubernetes.io/aws-load-balancer-internal": "true",
    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
}
# The README's old example allowed 10.0.0.0/8, which holds this cluster's Service range
# (10.0.0.0/16) and the kubernetes Service's ClusterIP, 10.0.0.1.
POLICY = """\
allowInternalLoadBalancers: true
internalLoadBalancerProviders: [aws]
internalLoadBalancerClasses:
  service.k8s.aws/nlb: aws
allowedExternalIPCIDRs: [10.0.0.0/8]
"""


def run_bootstrap(
    cluster: ControlPlane, *args: str, name: str = CONFIGURATION
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clusterip_guard.cli.main", "bootstrap", "--name", name, *args],
        env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def service(name: str, service_type: str, *, annotations: dict[str, str] | None = None,
            ports: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:  # fmt: skip
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {
            "type": service_type,
            "selector": {"app": name},
            "ports": ports or [{"name": "http", "port": 80, "targetPort": 8080}],
            **spec,
        },
    }


# Exposed before the namespace was governed: created by the admin while it was unlabelled.
LEGACY = [
    service("legacy-np", "NodePort"),
    service("legacy-lb", "LoadBalancer", allocateLoadBalancerNodePorts=False,
            loadBalancerSourceRanges=["10.0.0.0/8"]),
    service("legacy-ip", "ClusterIP", externalIPs=["203.0.113.7"]),
    service("internal-lb", "LoadBalancer", annotations=AWS_INTERNAL,
            allocateLoadBalancerNodePorts=False),
    service("ranged-lb", "LoadBalancer", allocateLoadBalancerNodePorts=False,
            annotations={"service.beta.kubernetes.io/load-balancer-source-ranges": "10.0.0.0/8"}),
]  # fmt: skip


@dataclass(frozen=True)
class Tenant:
    kubeconfig: Path
    registration: tuple[str, ...]  # the bootstrap's arguments that registered the engine
    engine: str = "webhook"
    namespace: str = NAMESPACE
    configuration: str = CONFIGURATION

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["kubectl", f"--kubeconfig={self.kubeconfig}", "-n", self.namespace, *args],
            input=stdin, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    def bootstrap(self, cluster: ControlPlane, *args: str) -> subprocess.CompletedProcess[str]:
        return run_bootstrap(cluster, *self.registration, *args, name=self.configuration)

    def named(self, name: str) -> str:
        """A namespace of this engine's own: the two engines' runs share the control plane."""
        return f"{name}-{self.engine}"

    @property
    def denied_by(self) -> str:
        """How the API server names what refused an enforce namespace's write."""
        if self.engine == "webhook":
            return 'admission webhook "enforce.clusterip-guard.io" denied the request'
        return (
            f"ValidatingAdmissionPolicy '{self.configuration}-exposure' with binding "
            f"'{self.configuration}-exposure-deny' denied request"
        )


def wait_until_guarded(kubectl: Kubectl, namespace: str) -> None:
    """A new registration, policy or label reaches admission a moment later."""
    probe = json.dumps(service("probe", "NodePort"))

    def guarded() -> bool:
        run = kubectl("-n", namespace, "create", "--dry-run=server", "-f", "-", stdin=probe,
                      check=False)  # fmt: skip
        return run.returncode != 0

    assert until(guarded, timeout=60), f"{namespace} was never guarded"


@pytest.fixture(scope="module", params=["webhook", "native"])
def tenant(
    request: pytest.FixtureRequest,
    control_plane: ControlPlane,
    kubectl: Kubectl,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Tenant]:
    """The same tenant, the same legacy Services, under each engine in turn."""
    engine: str = request.param
    if engine == "native":  # skipped, saying why, before 1.36 (make test-versions)
        request.getfixturevalue("native_engine_served")
    files = CertificateFiles(tmp_path_factory.mktemp("bypass-certs"))
    policy_file = files.folder / "policy.yaml"
    policy_file.parent.mkdir(parents=True, exist_ok=True)
    policy_file.write_text(POLICY)
    port = free_port()
    webhook = None
    if engine == "webhook":
        registration: tuple[str, ...] = ("--url", f"https://127.0.0.1:{port}", "--cert-dir",
                                         str(files.folder), "--ip", "127.0.0.1")  # fmt: skip
        configuration, namespace = CONFIGURATION, NAMESPACE
    else:
        registration = ("--engine", "native", "--policy-file", str(policy_file))
        configuration, namespace = f"{CONFIGURATION}-native", "tenant-n"
    registered = run_bootstrap(control_plane, *registration, name=configuration)
    assert registered.returncode == 0, registered.stderr
    if engine == "webhook":
        webhook = WebhookProcess(files, port=port, policy_file=policy_file).start()
    kubectl("create", "namespace", namespace)
    for manifest in LEGACY:
        kubectl("-n", namespace, "create", "-f", "-", stdin=json.dumps(manifest))
    kubectl("label", "namespace", namespace, "clusterip-guard.io/mode=enforce")
    # A namespace editor for Services, and nothing else.
    kubectl("-n", namespace, "create", "role", "service-editor", "--verb=*",
            "--resource=services")  # fmt: skip
    kubectl("-n", namespace, "create", "rolebinding", "service-editor", "--role=service-editor",
            f"--user={TENANT}")  # fmt: skip
    # ... who also holds services/status, as operators and load-balancer controllers do.
    kubectl("-n", namespace, "create", "role", "service-status", "--verb=get,patch,update",
            "--resource=services/status")  # fmt: skip
    kubectl("-n", namespace, "create", "rolebinding", "service-status", "--role=service-status",
            f"--user={TENANT}")  # fmt: skip
    wait_until_guarded(kubectl, namespace)
    yield Tenant(user_kubeconfig(control_plane, TENANT), registration, engine, namespace,
                 configuration)  # fmt: skip
    if webhook is not None:
        webhook.stop()
    run_bootstrap(control_plane, *registration, "--uninstall", name=configuration)


def live(tenant: Tenant, name: str) -> dict[str, Any]:
    got = tenant.kubectl("get", "service", name, "-o", "json")
    assert got.returncode == 0, got.stderr
    service: dict[str, Any] = json.loads(got.stdout)
    return service


def with_second_port(tenant: Tenant, name: str) -> dict[str, Any]:
    changed = live(tenant, name)
    changed["spec"]["ports"].append({"name": "https", "port": 443, "targetPort": 8443,
                                     "protocol": "TCP"})  # fmt: skip
    return changed


HTTPS_PORT = {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}

# (id, kubectl arguments, what the refusal must name)
PATCH_ATTEMPTS = [
    ("a port added by strategic merge patch",
     ["patch", "service", "legacy-np", "--type=strategic",
      "-p", json.dumps({"spec": {"ports": [HTTPS_PORT]}})], "port TCP/443 opens"),
    ("a port added by JSON patch",
     ["patch", "service", "legacy-np", "--type=json",
      "-p", json.dumps([{"op": "add", "path": "/spec/ports/-", "value": HTTPS_PORT}])],
     "spec.ports[1]"),
    ("a port added by JSON patch, as a server dry run",
     ["patch", "service", "legacy-np", "--type=json", "--dry-run=server",
      "-p", json.dumps([{"op": "add", "path": "/spec/ports/-", "value": HTTPS_PORT}])],
     "spec.ports[1]"),
    ("a node port moved",
     ["patch", "service", "legacy-np", "--type=json",
      "-p", json.dumps([{"op": "replace", "path": "/spec/ports/0/nodePort", "value": 31999}])],
     "spec.ports[0]"),
    ("a NodePort turned LoadBalancer",
     ["patch", "service", "legacy-np", "--type=merge", "-p", '{"spec":{"type":"LoadBalancer"}}'],
     "type LoadBalancer exposes the Service"),
    ("load balancer node ports allocated",
     ["patch", "service", "legacy-lb", "--type=merge",
      "-p", '{"spec":{"allocateLoadBalancerNodePorts":true}}'], "port TCP/80 opens node port"),
    ("externalTrafficPolicy Local on a load balancer",
     ["patch", "service", "legacy-lb", "--type=merge",
      "-p", '{"spec":{"externalTrafficPolicy":"Local"}}'], "health-check node port"),
    ("a source range widened",
     ["patch", "service", "legacy-lb", "--type=merge",
      "-p", '{"spec":{"loadBalancerSourceRanges":["0.0.0.0/0"]}}'], "admits 0.0.0.0/0"),
    ("a source range widened through the annotation",
     ["patch", "service", "legacy-lb", "--type=merge", "-p", json.dumps(
         {"metadata": {"annotations": {
             "service.beta.kubernetes.io/load-balancer-source-ranges": "0.0.0.0/0"}},
          "spec": {"loadBalancerSourceRanges": None}})], "admits 0.0.0.0/0"),
    ("an external IP added",
     ["patch", "service", "legacy-ip", "--type=merge",
      "-p", '{"spec":{"externalIPs":["203.0.113.7","203.0.113.8"]}}'], "203.0.113.8"),
    ("an external IP replaced",
     ["patch", "service", "legacy-ip", "--type=merge",
      "-p", '{"spec":{"externalIPs":["198.51.100.1"]}}'], "198.51.100.1"),
    ("an explicit node port on an allowed internal load balancer",
     ["patch", "service", "internal-lb", "--type=json",
      "-p", json.dumps([{"op": "add", "path": "/spec/ports/0/nodePort", "value": 31777}])],
     "node port 31777"),
    ("externalTrafficPolicy Local on an allowed internal load balancer",
     ["patch", "service", "internal-lb", "--type=merge",
      "-p", '{"spec":{"externalTrafficPolicy":"Local"}}'], "health-check node port"),
    ("an internal load balancer asking to be internet-facing",
     ["patch", "service", "internal-lb", "--type=merge", "-p", json.dumps(
         {"metadata": {"annotations": {
             "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing"}}})],
     "type LoadBalancer exposes the Service"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("arguments", "names"),
    [pytest.param(arguments, names, id=name) for name, arguments, names in PATCH_ATTEMPTS],
)
def test_a_tenant_cannot_add_exposure_by_patching(
    tenant: Tenant, arguments: list[str], names: str
) -> None:
    attempt = tenant.kubectl(*arguments)
    assert attempt.returncode != 0, f"got through: {attempt.stdout}"
    assert tenant.denied_by in attempt.stderr
    assert names in attempt.stderr


def test_a_tenant_cannot_add_a_port_by_replace(tenant: Tenant) -> None:
    attempt = tenant.kubectl(
        "replace", "-f", "-", stdin=json.dumps(with_second_port(tenant, "legacy-np"))
    )
    assert attempt.returncode != 0
    assert "spec.ports[1]" in attempt.stderr


def test_a_tenant_cannot_add_a_port_by_server_side_apply(tenant: Tenant) -> None:
    manifest = with_second_port(tenant, "legacy-np")
    for key in ("resourceVersion", "uid", "creationTimestamp", "managedFields"):
        manifest["metadata"].pop(key, None)
    manifest.pop("status", None)
    apply = ("apply", "--server-side", "--force-conflicts", "--field-manager=tenant", "-f", "-")
    attempt = tenant.kubectl(*apply, stdin=json.dumps(manifest))
    assert attempt.returncode != 0
    assert "spec.ports[1]" in attempt.stderr


def test_a_tenant_cannot_create_an_internal_load_balancer_of_a_cloud_the_policy_does_not_name(
    tenant: Tenant,
) -> None:
    internal_on_oci = {"service.beta.kubernetes.io/oci-load-balancer-internal": "true"}
    oci = service("oci-lb", "LoadBalancer", allocateLoadBalancerNodePorts=False,
                  annotations=internal_on_oci)  # fmt: skip
    attempt = tenant.kubectl("create", "-f", "-", stdin=json.dumps(oci))
    assert attempt.returncode != 0
    assert "type LoadBalancer exposes the Service" in attempt.stderr


@pytest.mark.parametrize(
    "annotations",
    [
        pytest.param({"service.beta.kubernetes.io/aws-load-balancer-internal": "0.0.0.0/0"},
                     id="a value only one of AWS's two controllers reads as internal"),
        pytest.param({"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"},
                     id="the scheme alone, which the cloud controller ignores"),
        pytest.param({**AWS_INTERNAL,
                      "service.beta.kubernetes.io/aws-load-balancer-scheme": "Internal"},
                     id="the scheme in the wrong case"),
    ],
)  # fmt: skip
def test_a_tenant_cannot_pass_off_a_public_load_balancer_as_internal(
    tenant: Tenant, annotations: dict[str, str]
) -> None:
    digest = hashlib.sha256(json.dumps(annotations, sort_keys=True).encode()).hexdigest()
    name = f"fake-internal-{digest[:8]}"
    fake = service(name, "LoadBalancer", allocateLoadBalancerNodePorts=False,
                   annotations=annotations)  # fmt: skip
    attempt = tenant.kubectl("create", "-f", "-", stdin=json.dumps(fake))
    assert attempt.returncode != 0, attempt.stdout
    assert "type LoadBalancer exposes the Service" in attempt.stderr


def test_an_internal_load_balancer_as_aws_reads_it_is_allowed_without_node_ports(
    tenant: Tenant,
) -> None:
    aws = service("aws-lb", "LoadBalancer", allocateLoadBalancerNodePorts=False,
                  annotations=AWS_INTERNAL)  # fmt: skip
    created = tenant.kubectl("create", "-f", "-", stdin=json.dumps(aws))
    assert created.returncode == 0, created.stderr


@pytest.mark.parametrize(
    "arguments",
    [
        pytest.param(["label", "service", "legacy-np", "team=payments", "--overwrite"],
                     id="a label on a legacy NodePort Service"),
        pytest.param(["patch", "service", "legacy-lb", "--type=merge",
                      "-p", '{"spec":{"loadBalancerSourceRanges":["10.1.0.0/16"]}}'],
                     id="a legacy load balancer's source range narrowed"),
        pytest.param(["patch", "service", "legacy-np", "--type=json", "-p", json.dumps(
            [{"op": "replace", "path": "/spec/ports/0/targetPort", "value": 9090}])],
                     id="a legacy NodePort Service's target port changed"),
    ],
)  # fmt: skip
def test_harmless_changes_to_legacy_services_still_go_through_with_a_warning(
    tenant: Tenant, arguments: list[str]
) -> None:
    changed = tenant.kubectl(*arguments)
    assert changed.returncode == 0, changed.stderr
    # Both engines warn (the native engine by its warning policy: docs/design.md, "Engines").
    assert "existing exposure kept (allowExistingViolations)" in changed.stderr, changed.stderr


# --- side doors: services/status ---------------------------------------------------------------
# The status strategy resets the spec, not labels or annotations; a cloud reads annotations.


def status_patch(
    tenant: Tenant, name: str, patch: dict[str, Any]
) -> subprocess.CompletedProcess[str]:
    return tenant.kubectl("patch", "service", name, "--subresource=status", "--type=merge",
                          "-p", json.dumps(patch))  # fmt: skip


def test_a_status_writer_cannot_turn_an_internal_load_balancer_internet_facing(
    tenant: Tenant,
) -> None:
    public = {"metadata": {"annotations": {
        "service.beta.kubernetes.io/aws-load-balancer-internal": None,
        "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
    }}}  # fmt: skip
    run = status_patch(tenant, "internal-lb", public)
    assert run.returncode != 0, run.stdout
    assert (
        f"Service {tenant.namespace}/internal-lb (written through services/status) would be "
        "reachable"
    ) in run.stderr
    annotations = live(tenant, "internal-lb")["metadata"]["annotations"]
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internal"


def test_a_status_writer_cannot_widen_a_balancers_source_ranges(tenant: Tenant) -> None:
    # ranged-lb admits 10.0.0.0/8 by the annotation (no spec field, which would win).
    wider = {"metadata": {"annotations": {
        "service.beta.kubernetes.io/load-balancer-source-ranges": "0.0.0.0/0",
    }}}  # fmt: skip
    run = status_patch(tenant, "ranged-lb", wider)
    assert run.returncode != 0, run.stdout
    assert "written through services/status" in run.stderr
    assert "0.0.0.0/0" in run.stderr


def test_a_load_balancer_controller_may_still_write_the_status_of_a_legacy_balancer(
    tenant: Tenant,
) -> None:
    run = status_patch(
        tenant, "legacy-lb", {"status": {"loadBalancer": {"ingress": [{"ip": "10.1.2.3"}]}}}
    )
    assert run.returncode == 0, run.stderr
    # Each engine's warning beside the write.
    assert "existing exposure kept" in run.stderr, run.stderr
    (ingress,) = live(tenant, "legacy-lb")["status"]["loadBalancer"]["ingress"]
    assert ingress["ip"] == "10.1.2.3"  # the API server adds ipMode: VIP


# --- side doors: a load balancer class --------------------------------------------------------
# The cloud controller skips every Service with a class; whatever implements the class never
# reads AWS's annotations. Only a class the policy names, read as its controller reads it.


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({"loadBalancerClass": "metallb.io/metallb"},
                     id="a class the policy does not name"),
        pytest.param({"loadBalancerClass": "metallb.io/metallb", "loadBalancerIP": "203.0.113.50"},
                     id="a class the policy does not name, with a public loadBalancerIP"),
    ],
)  # fmt: skip
def test_a_tenant_cannot_pass_off_a_classed_balancer_as_a_clouds_internal_one(
    tenant: Tenant, spec: dict[str, Any]
) -> None:
    name = "classed-" + hashlib.sha256(json.dumps(spec).encode()).hexdigest()[:8]
    classed = service(name, "LoadBalancer", allocateLoadBalancerNodePorts=False,
                      annotations=AWS_INTERNAL, **spec)  # fmt: skip
    attempt = tenant.kubectl("create", "-f", "-", stdin=json.dumps(classed))
    assert attempt.returncode != 0, attempt.stdout
    assert "spec.loadBalancerClass: type LoadBalancer of class metallb.io/metallb exposes" in (
        attempt.stderr
    )


def test_the_class_the_policy_names_is_read_as_its_controller_reads_it(tenant: Tenant) -> None:
    scheme = "service.beta.kubernetes.io/aws-load-balancer-scheme"
    internal = service("nlb-internal", "LoadBalancer", allocateLoadBalancerNodePorts=False,
                       loadBalancerClass="service.k8s.aws/nlb",
                       annotations={scheme: "internal"})  # fmt: skip
    created = tenant.kubectl("create", "-f", "-", stdin=json.dumps(internal))
    assert created.returncode == 0, created.stderr
    public = service("nlb-public", "LoadBalancer", allocateLoadBalancerNodePorts=False,
                     loadBalancerClass="service.k8s.aws/nlb",
                     annotations={scheme: "internet-facing",
                                  "service.beta.kubernetes.io/aws-load-balancer-internal": "true"},
                     )  # fmt: skip
    attempt = tenant.kubectl("create", "-f", "-", stdin=json.dumps(public))
    assert attempt.returncode != 0, attempt.stdout
    assert "of class service.k8s.aws/nlb exposes" in attempt.stderr


# --- external IPs inside the Service range (CVE-2020-8554) --------------------------------------


@pytest.mark.usefixtures("service_cidrs_served")  # 1.33+
def test_an_external_ip_inside_the_service_range_is_refused_whatever_the_allow_list_says(
    tenant: Tenant,
) -> None:
    hijack = service("hijack", "ClusterIP", externalIPs=["10.0.0.1"])
    attempt = tenant.kubectl("create", "-f", "-", stdin=json.dumps(hijack))
    assert attempt.returncode != 0, attempt.stdout
    assert f"ValidatingAdmissionPolicy '{tenant.configuration}-service-range'" in attempt.stderr
    assert (
        f"Service {tenant.namespace}/hijack: spec.externalIPs: 10.0.0.1 is inside the Service "
        "range 10.0.0.0/16 (ServiceCIDR kubernetes)"
    ) in attempt.stderr
    # Outside the Service range, the allow-list decides as before.
    allowed = service("allowed-ip", "ClusterIP", externalIPs=["10.1.2.3"])
    created = tenant.kubectl("create", "-f", "-", stdin=json.dumps(allowed))
    assert created.returncode == 0, created.stderr


@pytest.mark.usefixtures("service_cidrs_served")  # 1.33+
@pytest.mark.parametrize(("mode", "denied"), [("mutate", True), ("audit", False), ("off", False)])
def test_the_service_range_refusal_keeps_each_namespaces_mode(
    tenant: Tenant, kubectl: Kubectl, mode: str, denied: bool
) -> None:
    namespace = tenant.named(f"range-{mode}")
    kubectl("create", "namespace", namespace)
    kubectl("label", "namespace", namespace, f"clusterip-guard.io/mode={mode}")
    hijack = json.dumps(service("hijack", "ClusterIP", externalIPs=["10.0.0.1"]))

    def create(*dry_run: str) -> subprocess.CompletedProcess[str]:
        return kubectl("-n", namespace, "create", *dry_run, "-f", "-", stdin=hijack,
                       check=False)  # fmt: skip

    def judged() -> bool:  # the label reaches admission a moment later
        return mode == "off" or "is inside the Service range" in create("--dry-run=server").stderr

    assert until(judged, timeout=30)
    attempt = create()
    assert (attempt.returncode != 0) is denied, attempt.stderr
    warned = "10.0.0.1 is inside the Service range" in attempt.stderr
    assert warned is (mode != "off"), attempt.stderr


@pytest.mark.usefixtures("service_cidrs_served")  # 1.33+
def test_a_re_registration_with_another_default_mode_drops_the_old_defaults_bindings(
    tenant: Tenant, kubectl: Kubectl, control_plane: ControlPlane
) -> None:
    def bindings() -> set[str]:
        listed = kubectl("get", "validatingadmissionpolicybindings", "-o", "name")
        return {line.split("/", 1)[1] for line in listed.stdout.split()}

    audit_default = f"{tenant.configuration}-service-range-warn-unlabelled"
    assert audit_default not in bindings()
    try:
        again = tenant.bootstrap(control_plane, "--default-mode", "audit")
        assert again.returncode == 0, again.stderr
        assert audit_default in bindings()
    finally:
        # (Without the flag, a re-run keeps the recorded default mode.)
        back = tenant.bootstrap(control_plane, "--default-mode", "off")
        assert back.returncode == 0, back.stderr
    assert audit_default not in bindings(), back.stdout + back.stderr
    assert f"deleted ValidatingAdmissionPolicyBinding {audit_default}" in back.stdout


# --- the messages say what happened and what to do ---------------------------------------------


def test_a_renamed_port_is_told_to_keep_its_name_not_to_remove_a_node_port_it_never_set(
    tenant: Tenant,
) -> None:
    renamed = [{"op": "replace", "path": "/spec/ports/0/name", "value": "web"},
               {"op": "remove", "path": "/spec/ports/0/nodePort"}]  # fmt: skip
    attempt = tenant.kubectl("patch", "service", "legacy-np", "--type=json",
                             "-p", json.dumps(renamed))  # fmt: skip
    assert attempt.returncode != 0, attempt.stdout
    kept = live(tenant, "legacy-np")["spec"]["ports"][0]
    assert "was renamed from http to web, so the API server gave it node port" in attempt.stderr
    assert f"for its node port {kept['nodePort']}" in attempt.stderr
    assert f"keep the port's name http, or set nodePort: {kept['nodePort']}" in attempt.stderr


def test_mutate_says_which_external_ips_it_dropped_and_which_it_kept(
    tenant: Tenant, kubectl: Kubectl
) -> None:
    namespace = tenant.named("ips-mutate")
    kubectl("create", "namespace", namespace)
    kubectl("label", "namespace", namespace, "clusterip-guard.io/mode=mutate")
    mixed = json.dumps(service("mixed", "NodePort", externalIPs=["203.0.113.9", "10.1.2.3"]))

    def converted() -> bool:  # the label reaches admission a moment later
        run = kubectl("-n", namespace, "create", "--dry-run=server", "-o", "json", "-f", "-",
                      stdin=mixed, check=False)  # fmt: skip
        return run.returncode == 0 and '"type": "ClusterIP"' in run.stdout

    assert until(converted, timeout=30)
    created = kubectl("-n", namespace, "create", "-f", "-", stdin=mixed)
    said = "removed 203.0.113.9 from spec.externalIPs (kept 10.1.2.3: inside " in created.stderr
    # A MutatingAdmissionPolicy cannot warn: the native engine converts the same, silently.
    assert said is (tenant.engine == "webhook"), created.stderr
    stored = json.loads(kubectl("-n", namespace, "get", "service", "mixed", "-o", "json").stdout)
    assert stored["spec"]["externalIPs"] == ["10.1.2.3"]


@pytest.mark.usefixtures("service_cidrs_served")  # 1.33+
def test_scan_judges_an_external_ip_inside_the_service_range_as_admission_does(
    control_plane: ControlPlane, kubectl: Kubectl, tmp_path: Path
) -> None:
    # Created before the namespace was governed; scan reads the cluster's ServiceCIDRs.
    kubectl("create", "namespace", "range-scan")
    hijack = service("old-hijack", "ClusterIP", externalIPs=["10.0.0.1"])
    kubectl("-n", "range-scan", "create", "-f", "-", stdin=json.dumps(hijack))
    allowed = service("old-allowed", "ClusterIP", externalIPs=["10.1.2.3"])
    kubectl("-n", "range-scan", "create", "-f", "-", stdin=json.dumps(allowed))
    kubectl("label", "namespace", "range-scan", "clusterip-guard.io/mode=audit")
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(POLICY)
    run = subprocess.run(
        [sys.executable, "-m", "clusterip_guard.cli.main", "scan", "-n", "range-scan",
         "--policy-file", str(policy_file), "-o", "json"],
        env={**os.environ, "KUBECONFIG": str(control_plane.kubeconfig)},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 1, run.stderr  # a finding
    found = {f["name"]: f for f in json.loads(run.stdout)}
    assert found["old-hijack"]["result"] == "fail"
    assert (
        "external IP 10.0.0.1 is inside the Service range 10.0.0.0/16"
        in (found["old-hijack"]["message"])
    )
    assert found["old-allowed"]["result"] == "pass"


def test_a_tenant_who_may_delete_namespaces_cannot_shed_an_enforce_label_that_way(
    tenant: Tenant, control_plane: ControlPlane, kubectl: Kubectl
) -> None:
    """The cluster default here is off: deleted and created again unlabelled, an enforce
    namespace would be off. So deleting it needs set-mode, as creating one labelled anything
    but enforce does (issue 30, item 4)."""
    name = tenant.named("pinned")
    kubectl("create", "namespace", name)
    kubectl("label", "namespace", name, "clusterip-guard.io/mode=enforce")
    user = f"namespace-admin-{tenant.engine}"
    kubectl("create", "clusterrole", user, "--verb=create,delete,get",
            "--resource=namespaces")  # fmt: skip
    kubectl("create", "clusterrolebinding", user, f"--clusterrole={user}", f"--user={user}")
    as_them = Kubectl(user_kubeconfig(control_plane, user))
    deleted = as_them("delete", "namespace", name, "--wait=false", check=False)
    assert deleted.returncode != 0
    assert f"deleting namespace {name} (label clusterip-guard.io/mode=enforce" in deleted.stderr
    assert "needs the verb set-mode" in deleted.stderr
    # ... and a namespace created already labelled off, to outlive a stronger default.
    created = as_them("create", "-f", "-", check=False, stdin=json.dumps(
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": tenant.named("pre-off"),
                      "labels": {"clusterip-guard.io/mode": "off"}}}))  # fmt: skip
    assert created.returncode != 0
    assert "needs the verb set-mode" in created.stderr
    # A namespace whose mode is not stronger than the default goes like any other.
    kubectl("create", "namespace", tenant.named("plain"))
    assert as_them("delete", "namespace", tenant.named("plain"), "--wait=false").returncode == 0
