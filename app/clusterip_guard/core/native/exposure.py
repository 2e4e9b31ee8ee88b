"""The pieces of exposure in CEL, as core/exposure.py counts them: one map per piece, with the
same key, field, summary, fix and cover (core.exposure.Violation), generated for `o`, the object
or the old object. Pure: strings out."""

from __future__ import annotations

from clusterip_guard.core.exposure import INTERNAL_NODE_PORTS, LOAD_BALANCER_PIECE, NODE_PORT_TYPE
from clusterip_guard.core.names import SOURCE_RANGES_ANNOTATION
from clusterip_guard.core.native.cel import text, texts
from clusterip_guard.core.native.providers import has_class, internal_load_balancer
from clusterip_guard.core.native.services import annotations_of, object_type
from clusterip_guard.core.policy import PolicySettings


def _piece(
    *, key: str, field: str, summary: str, fix: str, cover: str = "''", node_port: str = "''",
    source_range: str = "''", port_name: str = "''",
) -> str:  # fmt: skip
    return (
        f"{{'key': {key}, 'field': {field}, 'summary': {summary}, 'fix': {fix}, "
        f"'cover': {cover}, 'nodePort': {node_port}, 'range': {source_range}, "
        f"'portName': {port_name}}}"
    )


_PROTOCOL = "(has(p.protocol) ? string(p.protocol) : 'TCP')"
_EXPLICIT = "(has(p.nodePort) && p.nodePort != 0)"


def _node_ports(o: str, *, cover: str, fix: str, explicit_only: str, field_suffix: str) -> str:
    """One piece per port that opens a node port (`explicit_only`: a CEL bool)."""
    name = f"{_PROTOCOL} + '/' + string(p.port)"
    piece = _piece(
        key=f"'node-port:' + {name}",
        field=f"'spec.ports[' + string(i) + ']' + {field_suffix}",
        # Said by the message only, from the key and the node port (`_summary_of`): most
        # pieces built are never said.
        summary="''",
        fix=text(fix),
        cover=text(cover),
        node_port=f"({_EXPLICIT} ? string(p.nodePort) : '')",
        port_name="(has(p.name) ? string(p.name) : '')",
    )
    # Transformed inside the `has` branch, so that `p` keeps the Service port's type.
    return (
        f"(has({o}.spec.ports) ? {o}.spec.ports.transformList(i, p, "
        f"!({explicit_only}) || {_EXPLICIT}, {piece}) : [])"
    )


def _health_check(o: str, cover: str) -> str:
    opens = (
        f"((has({o}.spec.externalTrafficPolicy) && {o}.spec.externalTrafficPolicy == 'Local')"
        f" || has({o}.spec.healthCheckNodePort))"
    )
    piece = _piece(
        key="'health-check-node-port'",
        field="'spec.externalTrafficPolicy'",
        summary="'externalTrafficPolicy Local opens a health-check node port on every node'",
        fix="'use externalTrafficPolicy Cluster'",
        cover=text(cover),
    )
    return f"({opens} ? [{piece}] : [])"


def _source_ranges(o: str) -> str:
    """Whom a load balancer admits (core.exposure.source_ranges): the field, else the
    annotation, else everyone; unreadable entries admit nothing more."""
    annotations = annotations_of(o)
    field = f"{o}.spec.loadBalancerSourceRanges"
    annotation = f"{annotations}[{text(SOURCE_RANGES_ANNOTATION)}]"
    raw = (
        f"(has({field}) && size({field}) > 0 ? {field} : "
        f"({text(SOURCE_RANGES_ANNOTATION)} in {annotations} && {annotation}.trim() != ''"
        f" ? {annotation}.split(',').filter(x, x.trim() != '') : []))"
    )
    # A bare address is a one-address range, as Python's ip_network reads it.
    as_range = (
        "(isIP(x.trim()) ? x.trim() + (ip(x.trim()).family() == 4 ? '/32' : '/128') : x.trim())"
    )
    ranges = (
        f"(size({raw}) == 0 ? ['0.0.0.0/0', '::/0'] : {raw}.map(x, {as_range})"
        ".filter(x, isCIDR(x)).map(x, string(cidr(x).masked())))"
    )
    piece = _piece(
        key="'source-range:' + r",
        field="'spec.loadBalancerSourceRanges'",
        summary="'the load balancer admits ' + r",
        fix="'narrow spec.loadBalancerSourceRanges'",
        cover=text(LOAD_BALANCER_PIECE),
        source_range="r",
    )
    return f"{ranges}.map(r, {piece})"


def _allowed_external_ip(policy: PolicySettings) -> str:
    """Whether the external IP `a` is inside allowedExternalIPCIDRs."""
    cidrs = texts(str(network) for network in policy.allowed_external_ip_cidrs)
    return f"(isIP(a) && {cidrs}.exists(c, cidr(c).containsIP(a)))"


def _external_ips(o: str, policy: PolicySettings) -> str:
    allowed = _allowed_external_ip(policy)
    piece = _piece(
        key="'external-ip:' + (isIP(a) ? string(ip(a)) : a)",
        field="'spec.externalIPs'",
        summary="'external IP ' + a + ' is outside the allowed CIDRs'",
        fix="'remove it from spec.externalIPs'",
    )
    return (
        f"(has({o}.spec.externalIPs) ? "
        f"{o}.spec.externalIPs.filter(a, !{allowed}).map(a, {piece}) : [])"
    )


def _load_balancer(o: str, policy: PolicySettings) -> str:
    allocates = (
        f"!(has({o}.spec.allocateLoadBalancerNodePorts)"
        f" && {o}.spec.allocateLoadBalancerNodePorts == false)"
    )
    plain = _piece(
        key=text(LOAD_BALANCER_PIECE),
        field="'spec.type'",
        summary="'type LoadBalancer exposes the Service outside the cluster'",
        fix="'use type ClusterIP'",
    )
    classed = _piece(
        key=text(LOAD_BALANCER_PIECE),
        field="'spec.loadBalancerClass'",
        summary=(
            f"'type LoadBalancer of class ' + {o}.spec.loadBalancerClass + ' exposes the Service "
            "outside the cluster (the policy does not name that class as internal; a cloud\\'s "
            "internal annotations do not apply to a classed balancer)'"
        ),
        fix="'use type ClusterIP'",
    )
    type_piece = (
        f"({has_class(o)} ? {classed} : {plain})" if policy.allow_internal_load_balancers else plain
    )
    exposed = (
        f"[{type_piece}] + "
        + _node_ports(
            o,
            cover=LOAD_BALANCER_PIECE,
            fix="set spec.allocateLoadBalancerNodePorts: false",
            explicit_only=f"!({allocates})",
            field_suffix=f"({allocates} ? '' : '.nodePort')",
        )
        + f" + {_health_check(o, LOAD_BALANCER_PIECE)} + {_source_ranges(o)}"
    )
    if not policy.allow_internal_load_balancers:
        return exposed
    if policy.allow_internal_load_balancer_node_ports:
        internal = "[]"
    else:
        opened = _piece(
            key=text(INTERNAL_NODE_PORTS),
            field="'spec.allocateLoadBalancerNodePorts'",
            summary="'this internal load balancer opens a port on every node'",
            fix="'set spec.allocateLoadBalancerNodePorts: false'",
        )
        internal = (
            f"({allocates} ? [{opened}] + "
            + _node_ports(
                o,
                cover=INTERNAL_NODE_PORTS,
                fix="set allocateLoadBalancerNodePorts: false",
                explicit_only="false",
                field_suffix="''",
            )
            + " : "
            + _node_ports(
                o,
                cover="",
                fix="remove the nodePort",
                explicit_only="true",
                field_suffix="'.nodePort'",
            )
            + f") + {_health_check(o, '')}"
        )
    return f"({internal_load_balancer(o, policy)} ? {internal} : {exposed})"


def pieces_expression(o: str, policy: PolicySettings) -> str:
    """Every piece of `o`'s exposure the policy does not allow (core.exposure.exposure_of)."""
    node_port_type = _piece(
        key=text(NODE_PORT_TYPE),
        field="'spec.type'",
        summary="'type NodePort opens a port on every node'",
        fix="'use type ClusterIP'",
    )
    node_ports = _node_ports(
        o, cover=NODE_PORT_TYPE, fix="remove it", explicit_only="false", field_suffix="''"
    )
    kind = object_type(o)
    return (
        f"({kind} == 'ExternalName' ? [] : "
        f"({kind} == 'NodePort' ? [{node_port_type}] + {node_ports} : [])"
        f" + ({kind} == 'LoadBalancer' ? {_load_balancer(o, policy)} : [])"
        f" + {_external_ips(o, policy)})"
    )


# A piece kept from the old object (Violation.kept_from): a source range inside an old one, or
# the same key with the node port unset or unchanged.
KEPT = (
    "oldPieces.exists(b, p.range != '' && b.range != ''"
    " ? (cidr(p.range).ip().family() == cidr(b.range).ip().family()"
    " && cidr(b.range).containsCIDR(p.range))"
    " : b.key == p.key && (p.nodePort == '' || p.nodePort == b.nodePort))"
)
# A node port moved only because its port was renamed says so (exposure._renamed).
_RENAMED_FROM = (
    "oldPieces.filter(b, b.key == p.key && b.nodePort != '' && p.nodePort != ''"
    " && b.portName != p.portName)"
)


def renamed_piece() -> str:
    """The piece `p`, with the rename's summary and fix when its port was renamed."""
    renamed = f"size({_RENAMED_FROM}) > 0"
    b = f"{_RENAMED_FROM}[0]"
    port = "string(p.key).substring(10)"  # after 'node-port:'
    old_name = f"({b}.portName != '' ? string({b}.portName) : '(no name)')"
    new_name = "(p.portName != '' ? string(p.portName) : '(no name)')"
    return _piece(
        key="string(p.key)",
        field="string(p.field)",
        summary=(
            f"({renamed} ? 'port ' + {port} + ' was renamed from ' + {old_name} + ' to ' + "
            f"{new_name} + ', so the API server gave it node port ' + string(p.nodePort) + "
            f"' for its node port ' + string({b}.nodePort) : string(p.summary))"
        ),
        fix=(
            f"({renamed} ? 'keep the port\\'s name ' + {old_name} + ', or set nodePort: ' + "
            f"string({b}.nodePort) : string(p.fix))"
        ),
        cover="string(p.cover)",
        node_port="string(p.nodePort)",
        source_range="string(p.range)",
        port_name="string(p.portName)",
    )


def reported(pieces: str) -> str:
    """The pieces no other piece covers (`exists` stops at the first; no list of keys made)."""
    return f"{pieces}.filter(p, p.cover == '' || !{pieces}.exists(q, q.key == p.cover))"


def exposed(o: str, policy: PolicySettings) -> str:
    """Whether `o` has any piece of exposure: `size(<its pieces>) > 0`, said without building
    the pieces where the type alone or an external IP decides (all but an internal load
    balancer). A CREATE, or an UPDATE of a Service that was not exposed, is refused on this
    alone, so its validation and its conversion build no piece; only the denial's message
    does."""
    kind = object_type(o)
    pieces = "variables.pieces" if o == "object" else "variables.oldPieces"
    outside = (
        f"(has({o}.spec.externalIPs) && "
        f"{o}.spec.externalIPs.exists(a, !{_allowed_external_ip(policy)}))"
    )
    return (
        f"({kind} != 'ExternalName' && ({kind} == 'NodePort' || {outside} || "
        f"({kind} == 'LoadBalancer' && "
        f"(!{internal_load_balancer(o, policy)} || size({pieces}) > 0))))"
    )
