"""What makes a Service reachable from outside the cluster (docs/design.md, "What counts as
exposed"). Pure.

Exposure is counted piece by piece: the load balancer, each node port, the health-check node
port, each source range a load balancer admits, each external IP. A CREATE is judged on every
piece; an UPDATE on the pieces it adds (`added_exposure`), so a kept legacy node port stays an
existing violation while a new one is judged like a CREATE.

A piece that comes with another is "covered" by it: the node ports of a NodePort Service come
with `type: NodePort`, those of a load balancer with the balancer. A report names the covering
piece alone when both are new (one line for a new NodePort Service, not one per port), and a
covered piece alone when only it is new (a port added to a kept NodePort Service).
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clusterip_guard.core import sentences as say
from clusterip_guard.core.addresses import read_ip, read_range, shown
from clusterip_guard.core.cloud_providers import is_internal_for, is_internal_with_class
from clusterip_guard.core.names import SOURCE_RANGES_ANNOTATION
from clusterip_guard.core.policy import IPNetwork, PolicySettings
from clusterip_guard.core.services import (
    EXTERNAL_NAME,
    LOAD_BALANCER,
    NODE_PORT,
    annotations_of,
    external_ips,
    service_type,
    spec_of,
)

# Keys of the pieces that cover others.
NODE_PORT_TYPE = "node-ports"
LOAD_BALANCER_PIECE = "load-balancer"
INTERNAL_NODE_PORTS = "internal-load-balancer-node-ports"
# Keys of the other pieces start with these.
NODE_PORT_KEY_PREFIX = "node-port:"
# A host port's (core/workloads.py), and how it names the one address it binds.
HOST_PORT = "host-port:"
BOUND_TO = "@"
SOURCE_RANGE_KEY_PREFIX = "source-range:"
# Where a load balancer admits everyone: no source ranges at all.
ANYWHERE: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("0.0.0.0/0"),
    ipaddress.ip_network("::/0"),
)


@dataclass(frozen=True, order=True)
class Violation:
    """One piece of exposure.

    `key` names the piece (`node-port:TCP/443`, `external-ip:203.0.113.7`); `node_port` is the
    explicit port number of a node-port piece, `source_range` the range of a source-range
    piece, and `covered_by` the key of the piece it comes with, if any.
    """

    key: str
    field: str
    summary: str  # what is exposed, short enough for a kubectl warning line
    fix: str  # what to do instead
    covered_by: str = ""
    node_port: int | None = None
    source_range: IPNetwork | None = None
    port_name: str = ""  # the Service port's name, for a node-port piece

    @property
    def message(self) -> str:
        return f"{self.summary}; {self.fix}"

    @property
    def detail(self) -> str:
        """The message with the field it is about, for denials, logs and tables."""
        return say.PIECE_LINE.format(field=self.field, summary=self.summary, fix=self.fix)

    def kept_from(self, old: Iterable[Violation]) -> bool:
        """Whether the old object already had this piece (then it is not new exposure).

        A node port the new object leaves unset is the one the API server keeps; one set to
        another number is new. A source range inside one the old object admitted is kept. A
        host port bound to one address is kept by the same port on all addresses.
        """
        all_addresses = self.key.split(BOUND_TO)[0] if self.key.startswith(HOST_PORT) else None
        for before in old:
            if before.key == all_addresses:
                return True
            if self.source_range is not None and before.source_range is not None:
                if self.source_range.version == before.source_range.version and (
                    self.source_range.subnet_of(before.source_range)  # type: ignore[arg-type]
                ):
                    return True
            elif before.key == self.key and (
                self.node_port is None or self.node_port == before.node_port
            ):
                return True
        return False


# The pieces that are the same for every Service of their type.
_NODE_PORT_TYPE_PIECE = Violation(
    key=NODE_PORT_TYPE,
    field="spec.type",
    summary=say.NODE_PORT_TYPE,
    fix=say.USE_CLUSTER_IP,
)
_LOAD_BALANCER_TYPE_PIECE = Violation(
    key=LOAD_BALANCER_PIECE,
    field="spec.type",
    summary=say.LOAD_BALANCER_TYPE,
    fix=say.USE_CLUSTER_IP,
)


def load_balancer_class(service: Mapping[str, Any]) -> str | None:
    """spec.loadBalancerClass; None when it is not set (the cloud controller's balancer)."""
    value = spec_of(service).get("loadBalancerClass")
    return value if isinstance(value, str) and value else None


def is_internal_load_balancer(service: Mapping[str, Any], policy: PolicySettings) -> bool:
    """Internal as the controller that builds this balancer reads it: the cloud providers the
    policy names for a Service without a class, the class's own controller (named by the
    policy) for one with a class."""
    annotations = {k: v for k, v in annotations_of(service).items() if isinstance(k, str)}
    claimed_by = load_balancer_class(service)
    if claimed_by is not None:
        classes = dict(policy.internal_load_balancer_classes)
        return is_internal_with_class(annotations, claimed_by, classes)
    return is_internal_for(annotations, policy.internal_load_balancer_providers)


def is_allowed_internal_load_balancer(service: Mapping[str, Any], policy: PolicySettings) -> bool:
    """A LoadBalancer that the policy accepts as internal: it stays a LoadBalancer (its node
    ports are judged apart)."""
    return (
        service_type(service) == LOAD_BALANCER
        and policy.allow_internal_load_balancers
        and is_internal_load_balancer(service, policy)
    )


def opens_load_balancer_node_ports(service: Mapping[str, Any]) -> bool:
    # The API server defaults allocateLoadBalancerNodePorts to true; only an explicit false
    # keeps a LoadBalancer's ports off the nodes (explicit nodePorts are allocated anyway).
    return spec_of(service).get("allocateLoadBalancerNodePorts") is not False


def opens_health_check_node_port(service: Mapping[str, Any]) -> bool:
    """externalTrafficPolicy Local on a load balancer brings a health-check node port."""
    spec = spec_of(service)
    return spec.get("externalTrafficPolicy") == "Local" or isinstance(
        spec.get("healthCheckNodePort"), int
    )


def exposure_of(service: Mapping[str, Any], policy: PolicySettings) -> tuple[Violation, ...]:
    """Every piece of `service`'s exposure that `policy` does not allow."""
    kind = service_type(service)
    if kind == EXTERNAL_NAME:
        return ()  # a DNS alias: no cluster IP, no node port, nothing to reach
    pieces: list[Violation] = []
    if kind == NODE_PORT:
        pieces.append(_NODE_PORT_TYPE_PIECE)
        pieces += _node_ports(service, covered_by=NODE_PORT_TYPE, fix=say.REMOVE_IT)
    elif kind == LOAD_BALANCER:
        pieces += _load_balancer_exposure(service, policy)
    for ip in external_ips(service):
        if policy.external_ip_allowed(ip):
            continue
        address = read_ip(ip)
        service_range = policy.service_range_of(ip)
        if address is None:
            summary = say.UNREADABLE_EXTERNAL_IP.format(ip=shown(ip))
        elif service_range is not None:
            summary = say.EXTERNAL_IP_IN_SERVICE_RANGE.format(ip=ip, service_range=service_range)
        else:
            summary = say.EXTERNAL_IP_OUTSIDE.format(ip=ip)
        pieces.append(
            Violation(
                key=f"external-ip:{address if address is not None else ip}",
                field="spec.externalIPs",
                summary=summary,
                fix=say.REMOVE_EXTERNAL_IP,
            )
        )
    return tuple(pieces)


def reported(pieces: Sequence[Violation]) -> tuple[Violation, ...]:
    """The pieces worth a line: a covered piece goes when its cover is reported too."""
    keys = {piece.key for piece in pieces}
    return tuple(piece for piece in pieces if piece.covered_by not in keys)


def added_exposure(
    service: Mapping[str, Any], old_service: Mapping[str, Any], policy: PolicySettings
) -> tuple[Violation, ...]:
    """The pieces of `service` that `old_service` did not have."""
    before = exposure_of(old_service, policy)
    return tuple(
        _renamed(piece, before)
        for piece in exposure_of(service, policy)
        if not piece.kept_from(before)
    )


def _renamed(piece: Violation, before: Iterable[Violation]) -> Violation:
    """A node port that moved only because its port was renamed says so: the API server keeps
    a port's node port by the port's name (pkg/registry/core/service/storage/storage.go,
    patchAllocatedValues), so a renamed port with no nodePort gets a new one it chose. The fix
    is the old name (or the old node port), not removing a number the writer never wrote."""
    for old in before:
        if (
            old.key == piece.key
            and old.node_port is not None
            and piece.node_port is not None
            and old.port_name != piece.port_name
        ):
            old_name = old.port_name or say.NO_PORT_NAME
            return dataclasses.replace(
                piece,
                summary=say.RENAMED_PORT.format(
                    port=piece.key.removeprefix(NODE_PORT_KEY_PREFIX),
                    old_name=old_name,
                    new_name=piece.port_name or say.NO_PORT_NAME,
                    node_port=piece.node_port,
                    old_node_port=old.node_port,
                ),
                fix=say.KEEP_PORT_NAME.format(old_name=old_name, old_node_port=old.node_port),
            )
    return piece


def _ports(service: Mapping[str, Any]) -> list[tuple[int, Mapping[str, Any]]]:
    ports = spec_of(service).get("ports")
    if not isinstance(ports, list):
        return []
    return [(index, port) for index, port in enumerate(ports) if isinstance(port, Mapping)]


def _port_name(port: Mapping[str, Any]) -> str:
    protocol = port.get("protocol") if isinstance(port.get("protocol"), str) else "TCP"
    return f"{protocol}/{port.get('port')}"


def _node_ports(
    service: Mapping[str, Any], *, covered_by: str, fix: str, explicit_only: bool = False
) -> list[Violation]:
    """One piece per port that opens a node port (`explicit_only`: only set nodePorts)."""
    pieces = []
    for index, port in _ports(service):
        node_port = port.get("nodePort")
        explicit = node_port if isinstance(node_port, int) and node_port else None
        if explicit_only and explicit is None:
            continue
        opened = (
            say.EXPLICIT_NODE_PORT.format(node_port=explicit)
            if explicit is not None
            else say.ANY_NODE_PORT
        )
        pieces.append(
            Violation(
                key=f"{NODE_PORT_KEY_PREFIX}{_port_name(port)}",
                field=f"spec.ports[{index}]" + (".nodePort" if explicit_only else ""),
                summary=say.NODE_PORT.format(port=_port_name(port), opened=opened),
                fix=fix,
                covered_by=covered_by,
                node_port=explicit,
                port_name=name if isinstance(name := port.get("name"), str) else "",
            )
        )
    return pieces


def _health_check_node_port(service: Mapping[str, Any], covered_by: str) -> list[Violation]:
    if not opens_health_check_node_port(service):
        return []
    return [
        Violation(
            key="health-check-node-port",
            field="spec.externalTrafficPolicy",
            summary=say.HEALTH_CHECK_NODE_PORT,
            fix=say.USE_CLUSTER_POLICY,
            covered_by=covered_by,
        )
    ]


def source_ranges(service: Mapping[str, Any]) -> tuple[IPNetwork | str, ...]:
    """Whom a load balancer admits: spec.loadBalancerSourceRanges, else the annotation, else
    everyone (as the cloud providers read them, `read_range`). An entry that cannot be read
    stays as its text: it counts as exposure, never as nothing."""
    spec_ranges = spec_of(service).get("loadBalancerSourceRanges")
    raw: list[str] = []
    if isinstance(spec_ranges, list) and spec_ranges:
        raw = [str(item) for item in spec_ranges]
    else:
        annotation = annotations_of(service).get(SOURCE_RANGES_ANNOTATION)
        if isinstance(annotation, str) and annotation.strip():
            raw = [part for part in annotation.split(",") if part.strip()]
    if not raw:
        return ANYWHERE
    return tuple(_read_source_range(text.strip()) for text in raw)


@functools.lru_cache(maxsize=256)
def _read_source_range(text: str) -> IPNetwork | str:
    network = read_range(text)
    return network if network is not None else text


@functools.lru_cache(maxsize=256)
def _source_range_piece(source_range: IPNetwork | str) -> Violation:
    """Remembered: ipaddress formats slowly, and most load balancers admit the same few
    ranges (everyone, by default). A Violation is immutable, so one serves every review."""
    if isinstance(source_range, str):  # unreadable: kept only when written the same way
        return Violation(
            key=f"{SOURCE_RANGE_KEY_PREFIX}{source_range}",
            field="spec.loadBalancerSourceRanges",
            summary=say.UNREADABLE_SOURCE_RANGE.format(source_range=shown(source_range)),
            fix=say.NARROW_SOURCE_RANGES,
            covered_by=LOAD_BALANCER_PIECE,
        )
    text = str(source_range)
    return Violation(
        key=f"{SOURCE_RANGE_KEY_PREFIX}{text}",
        field="spec.loadBalancerSourceRanges",
        summary=say.SOURCE_RANGE.format(source_range=text),
        fix=say.NARROW_SOURCE_RANGES,
        covered_by=LOAD_BALANCER_PIECE,
        source_range=source_range,
    )


def _classed_load_balancer_piece(claimed_by: str) -> Violation:
    return Violation(
        key=LOAD_BALANCER_PIECE,
        field="spec.loadBalancerClass",
        summary=say.CLASSED_LOAD_BALANCER.format(load_balancer_class=claimed_by),
        fix=say.USE_CLUSTER_IP,
    )


def _load_balancer_exposure(service: Mapping[str, Any], policy: PolicySettings) -> list[Violation]:
    if not is_allowed_internal_load_balancer(service, policy):
        # Where internal balancers are accepted, a classed one says why it is not one.
        claimed_by = load_balancer_class(service) if policy.allow_internal_load_balancers else None
        pieces = [
            _classed_load_balancer_piece(claimed_by)
            if claimed_by is not None
            else _LOAD_BALANCER_TYPE_PIECE
        ]
        pieces += _node_ports(
            service,
            covered_by=LOAD_BALANCER_PIECE,
            fix=say.STOP_LOAD_BALANCER_NODE_PORTS,
            explicit_only=not opens_load_balancer_node_ports(service),
        )
        pieces += _health_check_node_port(service, LOAD_BALANCER_PIECE)
        pieces += [_source_range_piece(network) for network in source_ranges(service)]
        return pieces
    if policy.allow_internal_load_balancer_node_ports:
        return []
    # An internal balancer the policy accepts: only what it opens on the nodes is exposure.
    pieces = []
    if opens_load_balancer_node_ports(service):
        pieces.append(
            Violation(
                key=INTERNAL_NODE_PORTS,
                field="spec.allocateLoadBalancerNodePorts",
                summary=say.INTERNAL_NODE_PORTS,
                fix=say.STOP_LOAD_BALANCER_NODE_PORTS,
            )
        )
        pieces += _node_ports(
            service, covered_by=INTERNAL_NODE_PORTS, fix=say.STOP_INTERNAL_NODE_PORTS
        )
    else:
        pieces += _node_ports(
            service, covered_by="", fix=say.REMOVE_THE_NODE_PORT, explicit_only=True
        )
    pieces += _health_check_node_port(service, covered_by="")
    return pieces
