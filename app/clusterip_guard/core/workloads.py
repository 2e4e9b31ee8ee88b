"""What makes a Pod reachable from outside the cluster without a Service (docs/design.md,
"What counts as exposed"): a container's host port, which the node's CNI maps to the Pod on
the node's own addresses, and the host network, on which the Pod listens on them itself.
Pure.

A Pod spec is judged wherever it is written: in a Pod, and in the template of every
built-in workload that makes Pods (`WORKLOAD_KINDS`), so that a user sees a denial at
`kubectl apply` of a Deployment and not in a ReplicaSet's events. The pieces are counted as
a Service's are (core/exposure.Violation): each host port is a piece, the host network is one
that covers the ports its Pod declares (on the host network every port is the node's).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from clusterip_guard.core import sentences as say
from clusterip_guard.core.addresses import read_ip
from clusterip_guard.core.conversion import json_copy
from clusterip_guard.core.exposure import BOUND_TO, HOST_PORT, Violation
from clusterip_guard.core.pointers import field_path, pointer_to, unescape_token
from clusterip_guard.core.policy import PolicySettings
from clusterip_guard.core.types import Manifest, PatchOperation

HOST_NETWORK_PIECE: Final = "host-network"


@dataclass(frozen=True)
class WorkloadKind:
    """A kind whose objects hold a Pod spec, and where."""

    group: str  # the API group ("" for the core group)
    kind: str
    resource: str  # the plural the webhook's rules name
    pod_spec_path: tuple[str, ...]  # keys from the object to its Pod spec


# Every built-in kind that makes Pods, and Pods themselves (the backstop: a Pod written by
# anyone but the workload controllers, and Pods of kinds not listed, custom controllers' own).
WORKLOAD_KINDS: Final[tuple[WorkloadKind, ...]] = (
    WorkloadKind("", "Pod", "pods", ("spec",)),
    WorkloadKind("apps", "Deployment", "deployments", ("spec", "template", "spec")),
    WorkloadKind("apps", "ReplicaSet", "replicasets", ("spec", "template", "spec")),
    WorkloadKind("apps", "StatefulSet", "statefulsets", ("spec", "template", "spec")),
    WorkloadKind("apps", "DaemonSet", "daemonsets", ("spec", "template", "spec")),
    WorkloadKind("batch", "Job", "jobs", ("spec", "template", "spec")),
    WorkloadKind(
        "batch", "CronJob", "cronjobs", ("spec", "jobTemplate", "spec", "template", "spec")
    ),
    WorkloadKind(
        "", "ReplicationController", "replicationcontrollers", ("spec", "template", "spec")
    ),
)
_BY_GROUP_KIND: Final = {(kind.group, kind.kind): kind for kind in WORKLOAD_KINDS}
WORKLOAD_KIND_NAMES: Final = tuple(kind.kind for kind in WORKLOAD_KINDS)

# The containers of a Pod spec that may declare ports (ephemeral containers may not: the API
# server refuses ports there, but a manifest given to `check` is read whole).
CONTAINER_LISTS: Final = ("containers", "initContainers", "ephemeralContainers")

# Who writes the objects a workload makes (kube-controller-manager with
# --use-service-account-credentials, the default of kubeadm and of every managed cluster),
# and the kind of the workload each makes them for: such an object's Pod spec is the
# workload's own template, judged when the workload was written.
CONTROLLERS: Final[Mapping[str, frozenset[str]]] = {
    "system:serviceaccount:kube-system:deployment-controller": frozenset({"Deployment"}),
    "system:serviceaccount:kube-system:replicaset-controller": frozenset({"ReplicaSet"}),
    "system:serviceaccount:kube-system:statefulset-controller": frozenset({"StatefulSet"}),
    "system:serviceaccount:kube-system:daemon-set-controller": frozenset({"DaemonSet"}),
    "system:serviceaccount:kube-system:job-controller": frozenset({"Job"}),
    "system:serviceaccount:kube-system:cronjob-controller": frozenset({"CronJob"}),
    "system:serviceaccount:kube-system:replication-controller": frozenset(
        {"ReplicationController"}
    ),
    # Without service-account credentials, every controller is the manager itself.
    "system:kube-controller-manager": frozenset(
        {
            "Deployment",
            "ReplicaSet",
            "StatefulSet",
            "DaemonSet",
            "Job",
            "CronJob",
            "ReplicationController",
        }
    ),
}


def workload_kind(group: str, kind: str) -> WorkloadKind | None:
    return _BY_GROUP_KIND.get((group, kind))


def workload_kind_of(manifest: Mapping[str, Any]) -> WorkloadKind | None:
    """The kind of a manifest by its apiVersion and kind (for `check` and the scan)."""
    api_version = manifest.get("apiVersion")
    kind = manifest.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return None
    group = api_version.rpartition("/")[0]
    return workload_kind(group, kind)


def pod_spec_of(workload: Mapping[str, Any], kind: WorkloadKind) -> Mapping[str, Any]:
    """The Pod spec inside `workload` (empty when any step of the way is missing)."""
    value: Any = workload
    for key in kind.pod_spec_path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def controlling_owner(workload: Mapping[str, Any]) -> tuple[str, str] | None:
    """(kind, name) of the ownerReference marked controller, if any."""
    metadata = workload.get("metadata")
    references = metadata.get("ownerReferences") if isinstance(metadata, Mapping) else None
    for reference in references if isinstance(references, list) else []:
        if isinstance(reference, Mapping) and reference.get("controller") is True:
            kind, name = reference.get("kind"), reference.get("name")
            if isinstance(kind, str) and isinstance(name, str):
                return kind, name
    return None


def made_by_its_controller(workload: Mapping[str, Any], user: str) -> tuple[str, str] | None:
    """(kind, name) of the workload whose controller wrote this object from the workload's own
    template, or None. Both must hold: the writer is that kind's controller (the API server
    authenticated it; a tenant cannot claim it), and the object says it is controlled by a
    workload of that kind (anyone may write an ownerReference, so it alone proves nothing)."""
    owner = controlling_owner(workload)
    if owner is None or owner[0] not in CONTROLLERS.get(user, frozenset()):
        return None
    return owner


def _containers(spec: Mapping[str, Any]) -> list[tuple[str, int, Mapping[str, Any]]]:
    found = []
    for field in CONTAINER_LISTS:
        items = spec.get(field)
        for index, container in enumerate(items if isinstance(items, list) else []):
            if isinstance(container, Mapping):
                found.append((field, index, container))
    return found


def _ports(container: Mapping[str, Any]) -> list[tuple[int, Mapping[str, Any]]]:
    ports = container.get("ports")
    return [
        (index, port)
        for index, port in enumerate(ports if isinstance(ports, list) else [])
        if isinstance(port, Mapping)
    ]


def _host_port(port: Mapping[str, Any]) -> int | None:
    value = port.get("hostPort")
    return value if isinstance(value, int) and not isinstance(value, bool) and value else None


def host_network(spec: Mapping[str, Any]) -> bool:
    return spec.get("hostNetwork") is True


def _prefix(kind: WorkloadKind) -> str:
    return ".".join(kind.pod_spec_path)


# A hostIP that binds every address of the node: said as no address at all.
ALL_ADDRESSES = ("", "0.0.0.0", "::")


def _bound_address(host_ip: object) -> str:
    """`@address` for a host port bound to one address (read as the kubelet reads it), '' for
    all of them; an address that cannot be read binds, for all we know, all of them."""
    if not isinstance(host_ip, str) or host_ip in ALL_ADDRESSES:
        return ""
    address = read_ip(host_ip)
    if address is None or str(address) in ALL_ADDRESSES:
        return ""
    return f"{BOUND_TO}{address}"


def host_exposure_of(
    workload: Mapping[str, Any], kind: WorkloadKind, policy: PolicySettings
) -> tuple[Violation, ...]:
    """Every piece of the Pod spec's exposure on its node that `policy` does not allow."""
    spec = pod_spec_of(workload, kind)
    prefix = _prefix(kind)
    on_host_network = host_network(spec)
    pieces: list[Violation] = []
    if on_host_network:
        pieces.append(
            Violation(
                key=HOST_NETWORK_PIECE,
                field=f"{prefix}.hostNetwork",
                summary=say.HOST_NETWORK,
                fix=say.REMOVE_HOST_NETWORK,
            )
        )
    for field, index, container in _containers(spec):
        name = container.get("name") if isinstance(container.get("name"), str) else "?"
        for port_index, port in _ports(container):
            host_port = _host_port(port)
            if host_port is None and not on_host_network:
                continue
            protocol = port.get("protocol") if isinstance(port.get("protocol"), str) else "TCP"
            container_port = port.get("containerPort")
            number = host_port if host_port is not None else container_port
            if not on_host_network and policy.host_port_allowed(number):
                continue
            where = f"{prefix}.{field}[{index}].ports[{port_index}]"
            # What the node opens: the protocol, the port and the address it binds (none: all of
            # them, as on the host network), so a kept port re-pointed is new exposure.
            key = f"{HOST_PORT}{protocol}/{number}"
            if not on_host_network:
                key += _bound_address(port.get("hostIP"))
            if on_host_network:
                summary = say.HOST_NETWORK_PORT.format(
                    container=name, port=f"{protocol}/{container_port}"
                )
            else:
                on_ip = port.get("hostIP")
                bound = (
                    say.ON_ITS_ADDRESS.format(host_ip=on_ip)
                    if isinstance(on_ip, str) and on_ip not in ALL_ADDRESSES
                    else ""
                )
                summary = (
                    say.HOST_PORT.format(
                        container=name, port=f"{protocol}/{container_port}", host_port=host_port
                    )
                    + bound
                )
            pieces.append(
                Violation(
                    key=key,
                    field=f"{where}.hostPort",
                    summary=summary,
                    fix=say.REMOVE_HOST_PORT,
                    covered_by=HOST_NETWORK_PIECE if on_host_network else "",
                )
            )
    return tuple(pieces)


def host_port_removal(
    workload: Mapping[str, Any], kind: WorkloadKind, violations: Sequence[Violation]
) -> list[PatchOperation]:
    """The JSON Patch that removes each judged host port (and its hostIP, which means nothing
    without it), leaving the container port. Host-network pieces are not removed: a caller
    denies them."""
    judged = {v.field for v in violations if v.key.startswith(HOST_PORT) and not v.covered_by}
    spec = pod_spec_of(workload, kind)
    prefix = _prefix(kind)
    operations: list[PatchOperation] = []
    for field, index, container in _containers(spec):
        for port_index, port in _ports(container):
            if f"{prefix}.{field}[{index}].ports[{port_index}].hostPort" not in judged:
                continue
            base = (*kind.pod_spec_path, field, index, "ports", port_index)
            operations.append({"op": "remove", "path": pointer_to(*base, "hostPort")})
            if "hostIP" in port:
                operations.append({"op": "remove", "path": pointer_to(*base, "hostIP")})
    return operations


def without_host_ports(
    workload: Mapping[str, Any], kind: WorkloadKind, policy: PolicySettings
) -> Manifest:
    """The workload as `mutate` stores it (for `check --fix`): its judged host ports removed.
    A host-network Pod spec is left as it is: mutate denies it."""
    fixed: Manifest = json_copy(dict(workload))
    pieces = host_exposure_of(workload, kind, policy)
    if any(piece.key == HOST_NETWORK_PIECE for piece in pieces):
        return fixed
    for operation in host_port_removal(workload, kind, pieces):
        *steps, last = [unescape_token(t) for t in operation["path"].lstrip("/").split("/")]
        place: Any = fixed
        for step in steps:
            place = place[int(step)] if isinstance(place, list) else place[step]
        place.pop(last, None)
    return fixed


def describe_removal(operation: PatchOperation) -> str:
    return f"removed {field_path(str(operation.get('path', '')))}"
