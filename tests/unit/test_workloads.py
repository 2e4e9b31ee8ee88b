"""Host ports and the host network: Pods and the workloads that make them (core/workloads.py),
judged in each mode (core/decision.py)."""

from __future__ import annotations

import copy
import datetime
from typing import Any

import jsonpatch
import pytest

from clusterip_guard.core.decision import WorkloadChange, decide
from clusterip_guard.core.policy import Exemption, PolicySettings
from clusterip_guard.core.review import AdmissionRequest, change_of
from clusterip_guard.core.types import Mode
from clusterip_guard.core.workloads import (
    WORKLOAD_KINDS,
    host_exposure_of,
    workload_kind,
    workload_kind_of,
)
from clusterip_guard.policyfile import PolicyError, parse_policy

TODAY = datetime.date(2026, 12, 4)
DEFAULT = PolicySettings()
REPLICASET_CONTROLLER = "system:serviceaccount:kube-system:replicaset-controller"


def pod_spec(*, host_port: int | None = 8088, host_network: bool = False, **extra: Any) -> Any:
    port: dict[str, Any] = {"containerPort": 80, "protocol": "TCP"}
    if host_port is not None:
        port["hostPort"] = host_port
    spec: dict[str, Any] = {
        "containers": [{"name": "nginx", "image": "nginx", "ports": [port]}],
        **extra,
    }
    if host_network:
        spec["hostNetwork"] = True
    return spec


def deployment(**kwargs: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"template": {"spec": pod_spec(**kwargs)}},
    }


def pod(owner: tuple[str, str] | None = None, **kwargs: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "web-1", "namespace": "shop"}
    if owner is not None:
        metadata["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1], "controller": True}
        ]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": pod_spec(**kwargs)}


def change(
    obj: dict[str, Any], old: dict[str, Any] | None = None, user: str = "alice"
) -> WorkloadChange:
    kind = workload_kind_of(obj)
    assert kind is not None
    return WorkloadChange(
        operation="UPDATE" if old is not None else "CREATE",
        namespace="shop",
        name=obj["metadata"]["name"],
        kind=kind,
        workload=obj,
        old_workload=old,
        user=user,
    )


def judge(obj: dict[str, Any], mode: Mode, policy: PolicySettings = DEFAULT, **kwargs: Any) -> Any:
    return decide(change(obj, **kwargs), mode, policy, today=TODAY)


def test_every_kind_that_makes_pods_is_read_where_its_pod_spec_is() -> None:
    for kind in WORKLOAD_KINDS:
        obj: dict[str, Any] = {"metadata": {"name": "x"}}
        place = obj
        for key in kind.pod_spec_path[:-1]:
            place = place.setdefault(key, {})
        place[kind.pod_spec_path[-1]] = pod_spec()
        (piece,) = host_exposure_of(obj, kind, DEFAULT)
        assert piece.key == "host-port:TCP/8088"
        assert piece.field == ".".join(kind.pod_spec_path) + ".containers[0].ports[0].hostPort"
    assert workload_kind("batch", "CronJob") is not None
    assert workload_kind("apps", "Pod") is None  # kind and group together


def test_a_pod_spec_without_host_ports_or_network_is_not_exposed() -> None:
    assert judge(deployment(host_port=None), "enforce").verdict == "allowed"


def test_init_containers_host_ports_count_too() -> None:
    spec = pod_spec(host_port=None)
    spec["initContainers"] = [{"name": "proxy", "ports": [{"containerPort": 9, "hostPort": 99}]}]
    obj = deployment(host_port=None)
    obj["spec"]["template"]["spec"] = spec
    (piece,) = host_exposure_of(obj, workload_kind_of(obj), DEFAULT)  # type: ignore[arg-type]
    assert piece.field == "spec.template.spec.initContainers[0].ports[0].hostPort"
    assert "container proxy's port TCP/9 opens host port 99" in piece.summary


def test_enforce_denies_a_host_port_at_the_workload_naming_it_and_its_fix() -> None:
    decision = judge(deployment(), "enforce")
    assert decision.verdict == "denied"
    assert decision.denial == (
        "Deployment shop/web would be reachable from outside the cluster, and namespace shop "
        "keeps what runs there reachable only inside the cluster (label clusterip-guard.io/mode): "
        "spec.template.spec.containers[0].ports[0].hostPort: container nginx's port TCP/80 opens "
        "host port 8088 on its node; remove hostPort (the container port stays; reach it "
        "through a ClusterIP Service)"
    )


def test_mutate_removes_the_host_port_and_its_host_ip_and_keeps_the_container_port() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"][0]["ports"][0]["hostIP"] = "0.0.0.0"
    decision = judge(obj, "mutate")
    assert decision.verdict == "mutated"
    patched = jsonpatch.apply_patch(obj, decision.patch)
    assert patched["spec"]["template"]["spec"]["containers"][0]["ports"] == [
        {"containerPort": 80, "protocol": "TCP"}
    ]
    assert decision.warnings == (
        "clusterip-guard removed host ports from this Deployment: removed "
        "spec.template.spec.containers[0].ports[0].hostPort, removed "
        "spec.template.spec.containers[0].ports[0].hostIP",
    )
    # What the conversion leaves is not exposed: the backstop allows it.
    assert judge(patched, "enforce").verdict == "allowed"


def test_mutate_denies_the_host_network_saying_why_it_cannot_convert_it() -> None:
    decision = judge(pod(host_network=True, host_port=80), "mutate")
    assert decision.verdict == "denied"
    assert "converts what it can, but the host network cannot be taken from a Pod" in (
        decision.denial
    )
    # One line for the host network: the ports it covers go with it.
    assert [v.key for v in decision.violations] == ["host-network"]


def test_a_host_network_pod_exposes_every_port_it_declares() -> None:
    obj = pod(host_network=True, host_port=None)
    pieces = host_exposure_of(obj, workload_kind_of(obj), DEFAULT)  # type: ignore[arg-type]
    assert [(p.key, p.covered_by) for p in pieces] == [
        ("host-network", ""),
        ("host-port:TCP/80", "host-network"),
    ]


def test_audit_allows_and_warns() -> None:
    decision = judge(deployment(), "audit")
    assert decision.verdict == "warned"
    assert decision.warnings[0].startswith("audit: Deployment shop/web: spec.template.spec")


def test_allowed_host_ports_are_not_exposure_singly_or_in_ranges() -> None:
    policy = parse_policy("allowedHostPorts: [8088, '9100-9110']")
    assert judge(deployment(host_port=8088), "enforce", policy).verdict == "allowed"
    assert judge(deployment(host_port=9105), "enforce", policy).verdict == "allowed"
    assert judge(deployment(host_port=9111), "enforce", policy).verdict == "denied"
    # The host network is a door of its own: allowed ports do not open it.
    assert judge(pod(host_network=True, host_port=8088), "enforce", policy).verdict == "denied"


def test_an_update_is_judged_on_the_host_ports_it_adds() -> None:
    old = deployment(host_port=8088)
    kept = copy.deepcopy(old)
    kept["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    assert judge(kept, "enforce", old=old).verdict == "warned"
    strict = PolicySettings(allow_existing_violations=False)
    assert judge(kept, "enforce", strict, old=old).verdict == "denied"
    added = copy.deepcopy(old)
    added["spec"]["template"]["spec"]["containers"][0]["ports"].append(
        {"containerPort": 443, "hostPort": 8443, "protocol": "TCP"}
    )
    decision = judge(added, "enforce", old=old)
    assert decision.verdict == "denied"
    assert [v.key for v in decision.violations] == ["host-port:TCP/8443"]


def _bound(workload: dict[str, Any], host_ip: str | None) -> dict[str, Any]:
    copied = copy.deepcopy(workload)
    port = copied["spec"]["template"]["spec"]["containers"][0]["ports"][0]
    if host_ip is None:
        port.pop("hostIP", None)
    else:
        port["hostIP"] = host_ip
    return copied


@pytest.mark.parametrize(
    ("old_ip", "new_ip", "verdict"),
    [
        ("127.0.0.1", None, "denied"),  # all addresses now: re-pointed
        ("127.0.0.1", "0.0.0.0", "denied"),
        ("127.0.0.1", "10.0.0.5", "denied"),
        ("127.0.0.1", "127.000.000.001", "warned"),  # the same address, written loosely
        (None, "127.0.0.1", "warned"),  # narrowed: inside what was kept
        ("::", "127.0.0.1", "warned"),
        (None, None, "warned"),
    ],
)
def test_a_host_port_is_keyed_by_the_address_it_binds(
    old_ip: str | None, new_ip: str | None, verdict: str
) -> None:
    old = _bound(deployment(host_port=8080), old_ip)
    new = _bound(old, new_ip)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    assert judge(new, "enforce", old=old).verdict == verdict


def test_another_container_on_a_kept_host_port_is_new_exposure() -> None:
    old = _bound(deployment(host_port=8080), "127.0.0.1")
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["containers"].append(
        {
            "name": "sidecar",
            "ports": [{"containerPort": 81, "hostPort": 8080, "hostIP": "10.0.0.5"}],
        }
    )
    decision = judge(new, "enforce", old=old)
    assert decision.verdict == "denied"
    assert [v.key for v in decision.violations] == ["host-port:TCP/8080@10.0.0.5"]


def test_what_a_controller_makes_from_its_workloads_template_is_judged_at_the_workload() -> None:
    made = pod(owner=("ReplicaSet", "web-5d8f"))
    decision = judge(made, "enforce", user=REPLICASET_CONTROLLER)
    assert decision.verdict == "warned"
    assert decision.why_warned == (
        "written by the ReplicaSet controller from ReplicaSet web-5d8f, judged there"
    )
    # Anyone may write an ownerReference: a tenant's Pod claiming one is judged.
    assert judge(made, "enforce", user="alice").verdict == "denied"
    # The controller's identity with no workload of its kind controlling the Pod is judged.
    assert judge(pod(), "enforce", user=REPLICASET_CONTROLLER).verdict == "denied"
    assert judge(pod(owner=("Job", "x")), "enforce", user=REPLICASET_CONTROLLER).verdict == (
        "denied"
    )


def test_exemptions_name_the_kind_they_exempt() -> None:
    exempt_deployment = PolicySettings(
        exemptions=(Exemption("shop", "web", "ingress agent", kind="Deployment"),)
    )
    decision = judge(deployment(), "enforce", exempt_deployment)
    assert decision.verdict == "warned"
    assert decision.why_warned == "allowed by exemption Deployment shop/web (ingress agent)"
    # A Service exemption of the same name exempts the Service alone.
    exempt_service = PolicySettings(exemptions=(Exemption("shop", "web", "legacy"),))
    assert judge(deployment(), "enforce", exempt_service).verdict == "denied"


def test_never_judged_namespaces_and_off_allow_everything() -> None:
    kube_proxy = pod(host_network=True)
    kind = workload_kind_of(kube_proxy)
    assert kind is not None
    system = WorkloadChange("CREATE", "kube-system", "kube-proxy", kind, kube_proxy)
    assert decide(system, "enforce", DEFAULT, today=TODAY).verdict == "allowed"
    assert judge(deployment(), "off").verdict == "allowed"


def request(obj: dict[str, Any], group: str, kind: str, sub_resource: str = "") -> Any:
    return AdmissionRequest(
        uid="u",
        operation="CREATE",
        group=group,
        kind=kind,
        sub_resource=sub_resource,
        namespace="shop",
        name="web",
        dry_run=False,
        object=obj,
        old_object=None,
        user="alice",
    )


def test_reviews_of_workloads_are_read_by_group_and_kind() -> None:
    found = change_of(request(deployment(), "apps", "Deployment"))
    assert isinstance(found, WorkloadChange)
    assert found.kind.kind == "Deployment"
    assert found.user == "alice"
    assert change_of(request(deployment(), "apps", "Deployment", "scale")) is None
    assert change_of(request(deployment(), "example.com", "Deployment")) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("allowedHostPorts: 8088", "expected a list"),
        ("allowedHostPorts: [0]", "allowedHostPorts[0]: 0 is not a port"),
        ("allowedHostPorts: [65536]", "is not a port"),
        ("allowedHostPorts: ['9110-9100']", "'9110-9100' is not a port"),
        ("allowedHostPorts: [true]", "True is not a port"),
        ("allowedHostPorts: ['http']", "'http' is not a port"),
        (
            "exemptions: [{namespace: a, name: b, reason: c, kind: NetworkPolicy}]",
            "exemptions[0].kind: 'NetworkPolicy' is not a kind clusterip-guard judges",
        ),
    ],
)
def test_bad_host_port_keys_name_the_key(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_policy(text)


def test_host_port_keys_parse() -> None:
    policy = parse_policy(
        "allowedHostPorts: [8088, '9100-9110', '53']\n"
        "exemptions: [{namespace: edge, name: agent-*, reason: node agent, kind: DaemonSet}]"
    )
    assert policy.allowed_host_ports == ((8088, 8088), (9100, 9110), (53, 53))
    assert policy.exemptions[0].kind == "DaemonSet"
