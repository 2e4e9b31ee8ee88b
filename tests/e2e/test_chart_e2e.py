"""The Helm chart, rendered by the pinned helm and validated by the real API server.

The chart's webhook configurations and the bootstrap's come from one source: the chart renders
the same entries `core/registration.py` builds, and the chart's bootstrap Job passes flags that
make the bootstrap register exactly those. Installing it on a real node is test_install_e2e.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from clusterip_guard.cli.bootstrap import command_from
from clusterip_guard.cli.main import build_parser
from clusterip_guard.cluster.registrations import registrations_for
from clusterip_guard.core.names import MODE_LABEL, NEVER_JUDGED_NAMESPACES
from clusterip_guard.core.registration import (
    ServiceTarget,
    webhook_configurations,
)
from clusterip_guard.core.types import MODES
from clusterip_guard.policyfile import POLICY_KEYS, parse_policy, policy_from_mapping
from localcluster import ControlPlane
from tests.support.chart import (
    CHART,
    SERVES_SERVICE_CIDRS,
    Manifest,
    args_run_here,
    mounted_policy,
    render,
    the,
)
from tests.support.kubectl import Kubectl
from tests.support.tools import cert_manager_crds, helm

pytestmark = pytest.mark.e2e


def render_error(*values: str, namespace: str = "clusterip-guard") -> str:
    run = subprocess.run(
        [str(helm()), "template", "clusterip-guard", str(CHART), "--namespace", namespace,
         *(f"--set={value}" for value in values)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert run.returncode != 0, "rendered, but should have failed"
    return run.stderr


def hook_job(documents: list[Manifest], hook: str) -> Manifest:
    (job,) = [
        doc
        for doc in documents
        if doc["kind"] == "Job" and hook in doc["metadata"]["annotations"]["helm.sh/hook"]
    ]
    return job


def without_ca_bundle(webhooks: list[Manifest]) -> list[Manifest]:
    stripped = copy.deepcopy(webhooks)
    for webhook in stripped:
        webhook["clientConfig"].pop("caBundle", None)
    return stripped


# Values an admin may set that change what is registered, each with the release it installs.
REGISTRATION_CASES = [
    pytest.param((), "clusterip-guard", "clusterip-guard", id="defaults"),
    pytest.param(("defaultMode=audit",), "clusterip-guard", "guard", id="default audit"),
    pytest.param(("defaultMode=enforce",), "clusterip-guard", "guard", id="default enforce"),
    pytest.param(
        ("defaultMode=mutate", "webhook.timeoutSeconds=3"), "edge", "platform",
        id="default mutate, another release name, a shorter timeout",
    ),
    pytest.param(
        ("webhook.failurePolicy=Ignore", "webhook.auditFailurePolicy=Fail",
         "webhook.excludedNamespaces={ingress,monitoring}"),
        "clusterip-guard", "guard", id="failure policies and extra excluded namespaces",
    ),
    pytest.param(
        ("policy.allowedIngressClasses={internal,private-*}",), "clusterip-guard", "guard",
        id="allowed ingress classes, one a glob",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("values", "release", "namespace"), REGISTRATION_CASES)
def test_the_charts_webhooks_are_what_the_bootstrap_builds(
    values: tuple[str, ...], release: str, namespace: str
) -> None:
    documents = render(
        "certificates.mode=certManager", *values, release=release, namespace=namespace
    )
    service = the("Service", documents)["metadata"]["name"]
    chart_values = yaml.safe_load((CHART / "values.yaml").read_text())
    settings = {**chart_values["webhook"], "defaultMode": chart_values["defaultMode"],
                "allowedIngressClasses": []}  # fmt: skip
    for value in values:
        key, _, raw = value.partition("=")
        parsed = raw.strip("{}").split(",") if raw.startswith("{") else yaml.safe_load(raw)
        settings[key.rpartition(".")[2]] = parsed
    mutating, validating = webhook_configurations(
        target=ServiceTarget(namespace, service),
        ca_bundle=b"",
        default_mode=settings["defaultMode"],
        own_namespace=namespace,
        excluded_namespaces=settings["excludedNamespaces"],
        timeout_seconds=settings["timeoutSeconds"],
        failure_policy=settings["failurePolicy"],
        audit_failure_policy=settings["auditFailurePolicy"],
        name=service,
        allowed_ingress_classes=settings["allowedIngressClasses"],
    )
    for expected in (mutating, validating):
        rendered = the(expected["kind"], documents)
        assert rendered["metadata"]["name"] == expected["metadata"]["name"]
        assert rendered["webhooks"] == without_ca_bundle(expected["webhooks"])
        assert "caBundle" not in json.dumps(rendered)  # cainjector's; an upgrade never clears it


@pytest.mark.parametrize(("values", "release", "namespace"), REGISTRATION_CASES)
def test_the_bootstrap_job_registers_what_the_chart_renders(
    values: tuple[str, ...], release: str, namespace: str
) -> None:
    documents = render(*values, release=release, namespace=namespace)
    job = hook_job(documents, "post-install")
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    command = command_from(build_parser().parse_args(args))
    assert command.action == "install"
    assert command.settings.wait_ready_seconds > 0  # registered once a replica answers
    # It reads the policy the server reads: the ConfigMap, mounted where --policy-file says.
    registered = registrations_for(
        command.settings,
        b"",
        policy=parse_policy(mounted_policy(job["spec"]["template"]["spec"], documents)),
    )
    rendered = render(
        "certificates.mode=certManager", *values, release=release, namespace=namespace,
        api_versions=SERVES_SERVICE_CIDRS,
    )  # fmt: skip
    assert [r["kind"] for r in registered][:7] == [
        "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
        "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
        "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
        "ValidatingAdmissionPolicy",  # the Service range's, then a binding per entry
    ]  # fmt: skip
    assert {r["kind"] for r in registered[7:]} == {"ValidatingAdmissionPolicyBinding"}
    admission_kinds = {r["kind"] for r in registered}
    assert len([r for r in rendered if r["kind"] in admission_kinds]) == len(registered)
    for expected in registered:
        found = the(expected["kind"], rendered, expected["metadata"]["name"])
        if "webhooks" in expected:
            assert found["webhooks"] == without_ca_bundle(expected["webhooks"])
        else:
            assert found["spec"] == expected["spec"]


def test_without_service_cidrs_the_chart_renders_no_service_range_policy() -> None:
    # An API server before 1.33: a policy whose parameter kind does not exist would fail
    # closed on every Service with external IPs; the bootstrap skips it the same way.
    older = render("certificates.mode=certManager")
    assert not [d for d in older if "service-range" in d["metadata"]["name"]]
    newer = render("certificates.mode=certManager", api_versions=SERVES_SERVICE_CIDRS)
    assert the("ValidatingAdmissionPolicy", newer, "clusterip-guard-service-range")


def test_the_network_policy_admits_only_the_api_server_and_the_metrics_scraper(
    kubectl: Kubectl,
) -> None:
    documents = render(
        "networkPolicy.enabled=true", "networkPolicy.apiServer[0].ipBlock.cidr=10.0.0.0/24"
    )
    policy = the("NetworkPolicy", documents)
    pods = the("Deployment", documents)["spec"]["template"]["metadata"]["labels"]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= pods.items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    admitted = {
        rule["ports"][0]["port"]: rule["from"] for rule in policy["spec"]["ingress"]
    }  # fmt: skip
    assert admitted == {
        8443: [{"ipBlock": {"cidr": "10.0.0.0/24"}}],
        9090: [{"namespaceSelector": {"matchLabels": {
            "kubernetes.io/metadata.name": "monitoring"}}}],
    }  # fmt: skip
    # A NetworkPolicy the API server takes as it is.
    kubectl("create", "namespace", "netpol-check", check=False)
    applied = kubectl("-n", "netpol-check", "apply", "--dry-run=server", "-f", "-",
                      stdin=json.dumps(policy))  # fmt: skip
    assert "created (server dry run)" in applied.stdout
    assert not [d for d in render() if d["kind"] == "NetworkPolicy"]  # off unless asked


def test_a_network_policy_that_would_shut_the_api_server_out_is_refused() -> None:
    run = subprocess.run(
        [str(helm()), "template", "x", str(CHART), "--set", "networkPolicy.enabled=true"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert run.returncode != 0
    assert "networkPolicy.apiServer: name where the API server connects from" in run.stderr


SERVES_NATIVE = ("admissionregistration.k8s.io/v1/MutatingAdmissionPolicy",)


def native_chart(*values: str, namespace: str = "clusterip-guard") -> list[Manifest]:
    return render("engine=native", *values, namespace=namespace, api_versions=SERVES_NATIVE)


def test_the_native_engine_runs_no_admission_server_and_a_sync_component() -> None:
    from clusterip_guard.core.native import native_objects

    documents = native_chart("defaultMode=enforce", "webhook.excludedNamespaces={ingress}")
    kinds = {d["kind"] for d in documents}
    assert not kinds & {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
                        "Service", "CronJob", "PodDisruptionBudget"}  # fmt: skip
    # One Job: before uninstall, it removes the native engine's policies, and the certificates
    # a webhook engine of the release made before.
    (job,) = [d for d in documents if d["kind"] == "Job"]
    uninstall = build_parser().parse_args(job["spec"]["template"]["spec"]["containers"][0]["args"])
    assert (uninstall.uninstall, uninstall.keep_certificates) == (True, False)
    (deployment,) = [d for d in documents if d["kind"] == "Deployment"]
    assert deployment["metadata"]["name"] == "clusterip-guard-sync"
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    parsed = build_parser().parse_args(args)
    assert parsed.command == "sync"
    assert parsed.policy_configmap == "clusterip-guard/clusterip-guard-policy"
    assert (parsed.default_mode, parsed.exclude_namespace) == ("enforce", ["ingress"])
    # Its rights name every object the native engine registers, for every default mode.
    role = the("ClusterRole", documents, "clusterip-guard-sync-clusterip-guard")
    named = {n for rule in role["rules"] for n in rule.get("resourceNames", [])}
    for mode in MODES:
        registered = native_objects(policy_from_mapping({}), name="clusterip-guard",
                                    default_mode=mode)  # fmt: skip
        assert {o["metadata"]["name"] for o in registered} <= named


def test_the_native_engine_is_refused_where_the_api_server_lacks_it() -> None:
    run = subprocess.run(
        [str(helm()), "template", "x", str(CHART), "--set", "engine=native"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert run.returncode != 0
    assert (
        "engine native: this API server does not serve admissionregistration.k8s.io/v1 "
        "MutatingAdmissionPolicy (Kubernetes 1.36 has it)"
    ) in run.stderr


def test_the_sync_component_needs_no_more_than_its_rights(
    kubectl: Kubectl, control_plane: ControlPlane, tmp_path: Path
) -> None:
    namespace = "native-chart"
    documents = native_chart(namespace=namespace)
    kubectl("create", "namespace", namespace)
    for document in documents:
        if document["kind"] != "Deployment":
            kubectl("apply", "-f", "-", stdin=json.dumps(document))
    token = kubectl("-n", namespace, "create", "token", "clusterip-guard-sync").stdout.strip()
    admin = yaml.safe_load(control_plane.kubeconfig.read_text())
    config = {
        **admin,
        "users": [{"name": "sync", "user": {"token": token}}],
        "contexts": [{"name": "sync", "context": {
            "cluster": admin["clusters"][0]["name"], "user": "sync"}}],
        "current-context": "sync",
    }  # fmt: skip
    kubeconfig = tmp_path / "sync-kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    deployment = the("Deployment", documents)
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    run = subprocess.run(
        [sys.executable, "-m", "clusterip_guard.cli.main", *args, "--once"],
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    try:
        assert run.returncode == 0, run.stderr
        assert (
            kubectl("get", "mutatingadmissionpolicy", "clusterip-guard-conversion").returncode == 0
        )
        assert (
            kubectl("get", "validatingadmissionpolicy", "clusterip-guard-exposure").returncode == 0
        )
    finally:
        subprocess.run(
            [sys.executable, "-m", "clusterip_guard.cli.main", "bootstrap", "--name",
             "clusterip-guard", "--uninstall", "--keep-certificates", "--url",
             "https://127.0.0.1:1", "--cert-dir", str(tmp_path)],
            env={**os.environ, "KUBECONFIG": str(control_plane.kubeconfig)},
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip


def test_a_compliant_ingress_gateway_or_route_costs_no_call_in_either_certificates_mode() -> None:
    """The bootstrap Job and its renewal read the policy ConfigMap at each run, so they register
    the allowed classes and Gateways the chart renders in cert-manager mode (tests above)."""
    values = ("policy.allowedIngressClasses={internal}", "policy.allowedGatewayClasses={lan}",
              "policy.allowedGateways={infra/internal}")  # fmt: skip
    documents = render(*values)
    for job in (hook_job(documents, "post-install"),
                the("CronJob", documents)["spec"]["jobTemplate"]):  # fmt: skip
        policy = parse_policy(mounted_policy(job["spec"]["template"]["spec"], documents))
        assert policy.allowed_ingress_classes == ("internal",)
        assert policy.allowed_gateway_classes == ("lan",)
        assert policy.allowed_gateways == (("infra", "internal"),)
    certified = render("certificates.mode=certManager", *values)
    entries = {
        entry["name"]: entry["matchConditions"][0]["expression"]
        for entry in the("ValidatingWebhookConfiguration", certified)["webhooks"]
    }
    assert "c in ['internal']" in entries["enforce-ingresses.clusterip-guard.io"]
    assert "in ['lan']" in entries["enforce-gateways.clusterip-guard.io"]
    assert "in ['infra/internal']" in entries["enforce-routes.clusterip-guard.io"]


def test_the_renewal_registers_what_the_install_registered() -> None:
    documents = render("defaultMode=audit")
    install = the("Job", documents, "clusterip-guard-bootstrap")
    renew = the("CronJob", documents)["spec"]["jobTemplate"]
    install_args = install["spec"]["template"]["spec"]["containers"][0]["args"]
    renew_args = renew["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [a for a in install_args if not a.startswith("--wait-ready-seconds")] == renew_args


def test_the_hooks_run_in_the_order_that_keeps_the_webhook_answerable() -> None:
    documents = render()
    hooks = {
        doc["metadata"]["name"]: doc["metadata"]["annotations"]["helm.sh/hook"]
        for doc in documents
        if doc["kind"] == "Job"
    }
    assert hooks == {
        # certificates before the Deployment mounts them; kept on upgrade
        "clusterip-guard-certificates": "pre-install,pre-upgrade",
        # registration after a replica is ready
        "clusterip-guard-bootstrap": "post-install,post-upgrade",
        # webhooks removed before anything that answers them
        "clusterip-guard-uninstall": "pre-delete",
    }
    certificates = the("Job", documents, "clusterip-guard-certificates")
    args = certificates["spec"]["template"]["spec"]["containers"][0]["args"]
    assert command_from(build_parser().parse_args(args)).settings.certificates_only
    uninstall = the("Job", documents, "clusterip-guard-uninstall")
    args = uninstall["spec"]["template"]["spec"]["containers"][0]["args"]
    assert command_from(build_parser().parse_args(args)).action == "uninstall"


def test_with_cert_manager_the_uninstall_keeps_its_certificates() -> None:
    documents = render("certificates.mode=certManager")
    assert {d["metadata"]["name"] for d in documents if d["kind"] == "Job"} == {
        "clusterip-guard-uninstall"
    }
    args = the("Job", documents)["spec"]["template"]["spec"]["containers"][0]["args"]
    assert command_from(build_parser().parse_args(args)).keep_certificates
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        annotations = the(kind, documents)["metadata"]["annotations"]
        assert annotations["cert-manager.io/inject-ca-from"] == (
            "clusterip-guard/clusterip-guard-serving"
        )
    serving = the("Certificate", documents, "clusterip-guard-serving")
    assert serving["spec"]["secretName"] == "clusterip-guard-tls"


def test_the_names_the_chart_uses_are_the_cores() -> None:
    validating = the("ValidatingWebhookConfiguration", render("certificates.mode=certManager"))
    assert validating["webhooks"][0]["namespaceSelector"]["matchExpressions"][0]["key"] == (
        MODE_LABEL
    )
    never = validating["webhooks"][0]["namespaceSelector"]["matchExpressions"][-1]["values"]
    assert set(never) == {*NEVER_JUDGED_NAMESPACES, "clusterip-guard"}


# --- values ---------------------------------------------------------------------------------


def schema_objects(schema: Any, where: str = "") -> Iterator[tuple[str, Manifest]]:
    if isinstance(schema, dict):
        if "properties" in schema:
            yield where, schema
        for key, value in schema.items():
            yield from schema_objects(value, f"{where}.{key}")
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            yield from schema_objects(value, f"{where}[{index}]")


def test_every_object_in_the_schema_refuses_unknown_keys() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    for where, node in schema_objects(schema):
        assert node.get("additionalProperties") is False, where


def test_the_schema_knows_every_policy_key_and_no_other() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert set(schema["properties"]["policy"]["properties"]) == set(POLICY_KEYS)


def test_every_value_is_documented_in_place() -> None:
    """helm-docs style: a `# --` comment right above every setting of the first two levels."""
    lines = [line.rstrip() for line in (CHART / "values.yaml").read_text().splitlines()]
    for index, line in enumerate(lines):
        indent = len(line) - len(line.lstrip())
        if not line.strip() or line.lstrip().startswith(("#", "-")) or indent > 2:
            continue
        following = next((n for n in lines[index + 1 :] if n.strip()), "")
        if line.endswith(":") and len(following) - len(following.lstrip()) > indent:
            continue  # a section: its settings carry the comments
        above = index - 1
        while (
            above >= 0
            and lines[above].strip().startswith("#")
            and not lines[above].strip().startswith("# --")
        ):
            above -= 1
        documented = above >= 0 and lines[above].strip().startswith("# --")
        assert documented, f"values.yaml:{index + 1}: {line.strip()} has no `# --` comment"


def test_the_policy_value_is_mounted_as_the_servers_policy_file() -> None:
    documents = render(
        "policy.allowedExternalIPCIDRs={10.0.0.0/8}", "policy.allowExistingViolations=false"
    )
    policy_yaml = the("ConfigMap", documents)["data"]["policy.yaml"]
    assert parse_policy(policy_yaml) == policy_from_mapping(
        {"allowedExternalIPCIDRs": ["10.0.0.0/8"], "allowExistingViolations": False}
    )


@pytest.mark.parametrize(
    ("values", "namespace", "message"),
    [
        pytest.param((), "kube-system", "cannot be installed in kube-system", id="kube-system"),
        pytest.param((), "kube-public", "cannot be installed in kube-public", id="kube-public"),
        pytest.param(("replicaCount=1",), "guard", "would block every node drain",
                     id="one fail-closed replica under a PDB"),
        pytest.param(("replicaCount=2", "podDisruptionBudget.minAvailable=2"), "guard",
                     "must be below replicaCount", id="a PDB that allows no eviction"),
        pytest.param(("defaultMode=Enforce",), "guard", "defaultMode",
                     id="a mode in the wrong case"),
        pytest.param(("replicas=3",), "guard", "additional properties 'replicas' not allowed",
                     id="a misspelt key"),
        pytest.param(("policy.allowExistingViolation=true",), "guard",
                     "additional properties 'allowExistingViolation' not allowed",
                     id="a misspelt policy key"),
        pytest.param(("webhook.timeoutSeconds=60",), "guard", "timeoutSeconds",
                     id="a timeout the API server refuses"),
        pytest.param(("certificates.mode=selfSigned",), "guard", "certificates/mode",
                     id="an unknown certificate mode"),
    ],
)  # fmt: skip
def test_impossible_values_fail_at_render_time(
    values: tuple[str, ...], namespace: str, message: str
) -> None:
    assert message in render_error(*values, namespace=namespace)


def pod_specs(documents: list[Manifest]) -> Iterator[tuple[str, Manifest]]:
    for doc in documents:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == "Pod":
            yield name, doc["spec"]
        elif doc["kind"] in ("Deployment", "Job"):
            yield name, doc["spec"]["template"]["spec"]
        elif doc["kind"] == "CronJob":
            yield name, doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]


@pytest.mark.parametrize("mode", ["bootstrap", "certManager"])
def test_every_pod_runs_restricted(mode: str) -> None:
    specs = dict(pod_specs(render(f"certificates.mode={mode}")))
    assert specs
    for name, spec in specs.items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert "limits" in container["resources"], name


def test_the_server_runs_as_the_design_asks() -> None:
    deployment = the("Deployment", render())
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = spec["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False  # it calls no Kubernetes API
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    delay = next(a for a in container["args"] if a.startswith("--shutdown-delay="))
    assert pod["terminationGracePeriodSeconds"] > float(delay.partition("=")[2])
    assert the("PodDisruptionBudget", render())["spec"]["minAvailable"] == 1


# --- validated by the real API server -------------------------------------------------------


def apply_dry_run(kubectl: Kubectl, documents: list[Manifest]) -> subprocess.CompletedProcess[str]:
    return kubectl(
        "apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump_all(documents), check=False
    )


def test_the_bootstrap_mode_is_valid_for_the_api_server(
    control_plane: ControlPlane, kubectl: Kubectl
) -> None:
    kubectl("create", "namespace", "chart-bootstrap")
    run = apply_dry_run(kubectl, render("defaultMode=audit", namespace="chart-bootstrap"))
    assert run.returncode == 0, run.stderr
    assert "deployment.apps/clusterip-guard created (server dry run)" in run.stdout


def test_the_cert_manager_mode_is_valid_against_cert_managers_own_crds(
    control_plane: ControlPlane, kubectl: Kubectl, tmp_path: Path
) -> None:
    for crd in cert_manager_crds():
        kubectl("apply", "--server-side", "-f", str(crd))
    kubectl("wait", "--for=condition=Established", "--timeout=60s",
            "crd/certificates.cert-manager.io", "crd/issuers.cert-manager.io")  # fmt: skip
    kubectl("create", "namespace", "chart-cert-manager")
    documents = render("certificates.mode=certManager", namespace="chart-cert-manager")
    run = apply_dry_run(kubectl, documents)
    assert run.returncode == 0, run.stderr
    assert "certificate.cert-manager.io/clusterip-guard-serving created (server dry run)" in (
        run.stdout
    )
    broken = copy.deepcopy(documents)
    the("Certificate", broken, "clusterip-guard-serving")["spec"]["privateKey"]["size"] = "big"
    refused = apply_dry_run(kubectl, broken)
    assert refused.returncode != 0  # the CRDs' schema is really checked
    assert "privateKey.size" in refused.stderr


def test_mode_label_admins_are_bound_to_the_set_mode_verb() -> None:
    documents = render("modeLabelAdmins.users={alice}", "modeLabelAdmins.groups={platform}")
    role = the("ClusterRole", documents, "clusterip-guard-mode-admin")
    assert role["rules"] == [
        {"apiGroups": ["clusterip-guard.io"], "resources": ["namespaces"], "verbs": ["set-mode"]}
    ]
    binding = the("ClusterRoleBinding", documents, "clusterip-guard-mode-admin")
    assert [(s["kind"], s["name"]) for s in binding["subjects"]] == [
        ("User", "alice"),
        ("Group", "platform"),
    ]
    assert not [d for d in render() if d["metadata"]["name"] == "clusterip-guard-mode-admin"
                and d["kind"] == "ClusterRoleBinding"]  # fmt: skip


def service_account_kubeconfig(
    control_plane: ControlPlane, kubectl: Kubectl, namespace: str, account: str, path: Path
) -> Path:
    token = kubectl("-n", namespace, "create", "token", account).stdout.strip()
    admin = yaml.safe_load(control_plane.kubeconfig.read_text())
    config = {
        **admin,
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": account, "context": {
            "cluster": admin["clusters"][0]["name"], "user": account}}],
        "current-context": account,
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config))
    return path


def test_the_bootstrap_and_uninstall_jobs_need_no_more_than_their_rights(
    kubectl: Kubectl, control_plane: ControlPlane, tmp_path: Path
) -> None:
    """The Jobs' ServiceAccounts, with the chart's own RBAC, can register everything the
    bootstrap registers (the Service-range policy and its bindings among it), remove what a
    registration no longer holds (the native engine's objects, another default's bindings),
    and uninstall it all."""
    namespace = "jobs-rbac"
    documents = render(namespace=namespace, api_versions=SERVES_SERVICE_CIDRS)
    kubectl("create", "namespace", namespace)
    rbac = ("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
    for document in documents:
        if document["kind"] in rbac:
            kubectl("apply", "-f", "-", stdin=json.dumps(document))
    install = hook_job(documents, "post-install")
    uninstall = hook_job(documents, "pre-delete")
    env = dict(os.environ)

    def run_as(job: Manifest, *extra: str) -> subprocess.CompletedProcess[str]:
        pod = job["spec"]["template"]["spec"]
        account = pod["serviceAccountName"]
        kubeconfig = service_account_kubeconfig(
            control_plane, kubectl, namespace, account, tmp_path / account
        )
        args = args_run_here(pod, documents, tmp_path / "policy")
        return subprocess.run(
            [sys.executable, "-m", "clusterip_guard.cli.main", *args, *extra],
            env={**env, "KUBECONFIG": str(kubeconfig)},
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    try:
        registered = run_as(install)
        assert registered.returncode == 0, registered.stderr
        assert "ValidatingAdmissionPolicy clusterip-guard-service-range" in registered.stdout
        # Again with another default mode: the old default's bindings go, by these rights.
        again = run_as(install, "--default-mode", "audit")
        assert again.returncode == 0, again.stderr
        back = run_as(install, "--default-mode", "off")
        assert back.returncode == 0, back.stderr
        assert (
            "deleted ValidatingAdmissionPolicyBinding clusterip-guard-service-range-warn-unlabelled"
            in (back.stdout)
        )
    finally:
        removed = run_as(uninstall)
    assert removed.returncode == 0, removed.stderr
    assert "deleted ValidatingWebhookConfiguration clusterip-guard" in removed.stdout
