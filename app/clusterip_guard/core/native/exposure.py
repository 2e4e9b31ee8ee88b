"""The pieces of exposure in CEL, as core/exposure.py counts them: one map per piece, with the
same key, field, summary, fix and cover (core.exposure.Violation), generated for `o`, the object
or the old object. Pure: strings out."""

from __future__ import annotations

from clusterip_guard.core import sentences as say
from clusterip_guard.core.addresses import cel_ip, cel_range, cel_shown, let
from clusterip_guard.core.cel_literals import text, texts
from clusterip_guard.core.exposure import (
    INTERNAL_NODE_PORTS,
    LOAD_BALANCER_PIECE,
    NODE_PORT_KEY_PREFIX,
    NODE_PORT_TYPE,
    SOURCE_RANGE_KEY_PREFIX,
)
from clusterip_guard.core.names import SOURCE_RANGES_ANNOTATION
from clusterip_guard.core.native.cel import sentence
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
        key=f"{text(NODE_PORT_KEY_PREFIX)} + {name}",
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
        summary=text(say.HEALTH_CHECK_NODE_PORT),
        fix=text(say.USE_CLUSTER_POLICY),
        cover=text(cover),
    )
    return f"({opens} ? [{piece}] : [])"


def _source_ranges(o: str) -> str:
    """Whom a load balancer admits (core.exposure.source_ranges): the field, else the
    annotation, else everyone; an entry that cannot be read is a piece of its own."""
    annotations = annotations_of(o)
    field = f"{o}.spec.loadBalancerSourceRanges"
    annotation = f"{annotations}[{text(SOURCE_RANGES_ANNOTATION)}]"
    raw = (
        f"(has({field}) && size({field}) > 0 ? {field}.map(x, x.trim()) : "
        f"({text(SOURCE_RANGES_ANNOTATION)} in {annotations} && {annotation}.trim() != ''"
        f" ? {annotation}.split(',').filter(x, x.trim() != '').map(x, x.trim()) : []))"
    )
    read = f"{{'text': x, 'range': {cel_range('x')}}}"
    anywhere = "[{'text': '0.0.0.0/0', 'range': '0.0.0.0/0'}, {'text': '::/0', 'range': '::/0'}]"
    piece = _piece(
        key=f"{text(SOURCE_RANGE_KEY_PREFIX)} + (r.range != '' ? r.range : r.text)",
        field="'spec.loadBalancerSourceRanges'",
        summary=(
            f"(r.range != '' ? {sentence(say.SOURCE_RANGE, source_range='r.range')} : "
            f"{sentence(say.UNREADABLE_SOURCE_RANGE, source_range=cel_shown('r.text'))})"
        ),
        fix=text(say.NARROW_SOURCE_RANGES),
        cover=text(LOAD_BALANCER_PIECE),
        source_range="r.range",
    )
    return f"(size({raw}) == 0 ? {anywhere} : {raw}.map(x, {read})).map(r, {piece})"


def allowed_external_ip(policy: PolicySettings, address: str) -> str:
    """CEL: whether the external IP `address` (a name) is inside allowedExternalIPCIDRs, read
    as core.policy.PolicySettings.external_ip_allowed reads it."""
    if not policy.allowed_external_ip_cidrs:
        return "false"
    cidrs = texts(str(network) for network in policy.allowed_external_ip_cidrs)
    return let("q", cel_ip(address), f"q != '' && {cidrs}.exists(c, cidr(c).containsIP(q))")


def _external_ips(o: str, policy: PolicySettings) -> str:
    piece = _piece(
        key="'external-ip:' + (q != '' ? q : a)",
        field="'spec.externalIPs'",
        summary=(
            f"(q != '' ? {sentence(say.EXTERNAL_IP_OUTSIDE, ip='a')} : "
            f"{sentence(say.UNREADABLE_EXTERNAL_IP, ip=cel_shown('a'))})"
        ),
        fix=text(say.REMOVE_EXTERNAL_IP),
    )
    return (
        f"(has({o}.spec.externalIPs) ? {o}.spec.externalIPs.filter(a, "
        f"!{allowed_external_ip(policy, 'a')}).map(a, {let('q', cel_ip('a'), piece)}) : [])"
    )


def _load_balancer(o: str, policy: PolicySettings) -> str:
    allocates = (
        f"!(has({o}.spec.allocateLoadBalancerNodePorts)"
        f" && {o}.spec.allocateLoadBalancerNodePorts == false)"
    )
    plain = _piece(
        key=text(LOAD_BALANCER_PIECE),
        field="'spec.type'",
        summary=text(say.LOAD_BALANCER_TYPE),
        fix=text(say.USE_CLUSTER_IP),
    )
    classed = _piece(
        key=text(LOAD_BALANCER_PIECE),
        field="'spec.loadBalancerClass'",
        summary=sentence(
            say.CLASSED_LOAD_BALANCER, load_balancer_class=f"{o}.spec.loadBalancerClass"
        ),
        fix=text(say.USE_CLUSTER_IP),
    )
    type_piece = (
        f"({has_class(o)} ? {classed} : {plain})" if policy.allow_internal_load_balancers else plain
    )
    exposed = (
        f"[{type_piece}] + "
        + _node_ports(
            o,
            cover=LOAD_BALANCER_PIECE,
            fix=say.STOP_LOAD_BALANCER_NODE_PORTS,
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
            summary=text(say.INTERNAL_NODE_PORTS),
            fix=text(say.STOP_LOAD_BALANCER_NODE_PORTS),
        )
        internal = (
            f"({allocates} ? [{opened}] + "
            + _node_ports(
                o,
                cover=INTERNAL_NODE_PORTS,
                fix=say.STOP_INTERNAL_NODE_PORTS,
                explicit_only="false",
                field_suffix="''",
            )
            + " : "
            + _node_ports(
                o,
                cover="",
                fix=say.REMOVE_THE_NODE_PORT,
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
        summary=text(say.NODE_PORT_TYPE),
        fix=text(say.USE_CLUSTER_IP),
    )
    node_ports = _node_ports(
        o, cover=NODE_PORT_TYPE, fix=say.REMOVE_IT, explicit_only="false", field_suffix="''"
    )
    kind = object_type(o)
    return (
        f"({kind} == 'ExternalName' ? [] : "
        f"({kind} == 'NodePort' ? [{node_port_type}] + {node_ports} : [])"
        f" + ({kind} == 'LoadBalancer' ? {_load_balancer(o, policy)} : [])"
        f" + {_external_ips(o, policy)})"
    )


# A piece kept from the old object (Violation.kept_from): a source range inside an old one, or
# the same key with the node port unset or unchanged. Said with `in` over lists of the old
# pieces' keys (variables.oldKeys, oldKeyPorts, oldRanges) wherever it can be, so that an UPDATE
# of a Service with hundreds of pieces stays inside the CEL cost budget: only a source range
# written anew pays the comparison with every old range.
KEPT = (
    "(p.range != '' ? p.range in variables.oldRanges || variables.oldPieces.exists(b, "
    "b.range != '' && cidr(p.range).ip().family() == cidr(b.range).ip().family()"
    " && cidr(b.range).containsCIDR(p.range))"
    " : (p.nodePort == '' ? p.key in variables.oldKeys"
    " : p.key + '=' + p.nodePort in variables.oldKeyPorts))"
)
# The lists KEPT reads, as judging variables.
KEPT_LISTS = {
    "oldKeys": "variables.oldPieces.map(b, b.key)",
    "oldKeyPorts": "variables.oldPieces.map(b, b.key + '=' + b.nodePort)",
    "oldRanges": "variables.oldPieces.filter(b, b.range != '').map(b, b.range)",
}
# A node port moved only because its port was renamed says so (exposure._renamed).
_RENAMED_FROM = (
    "variables.oldPieces.filter(b, b.key == p.key && b.nodePort != '' && p.nodePort != ''"
    " && b.portName != p.portName)"
)


def renamed_piece() -> str:
    """The piece `p`, with the rename's summary and fix when its port was renamed."""
    renamed = f"size({_RENAMED_FROM}) > 0"
    b = f"{_RENAMED_FROM}[0]"
    port = f"string(p.key).substring({len(NODE_PORT_KEY_PREFIX)})"
    old_name = f"({b}.portName != '' ? string({b}.portName) : {text(say.NO_PORT_NAME)})"
    new_name = f"(p.portName != '' ? string(p.portName) : {text(say.NO_PORT_NAME)})"
    old_node_port = f"string({b}.nodePort)"
    summary = sentence(
        say.RENAMED_PORT,
        port=port,
        old_name=old_name,
        new_name=new_name,
        node_port="string(p.nodePort)",
        old_node_port=old_node_port,
    )
    fix = sentence(say.KEEP_PORT_NAME, old_name=old_name, old_node_port=old_node_port)
    return _piece(
        key="string(p.key)",
        field="string(p.field)",
        summary=f"({renamed} ? {summary} : string(p.summary))",
        fix=f"({renamed} ? {fix} : string(p.fix))",
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
        f"{o}.spec.externalIPs.exists(a, !{allowed_external_ip(policy, 'a')}))"
    )
    return (
        f"({kind} != 'ExternalName' && ({kind} == 'NodePort' || {outside} || "
        f"({kind} == 'LoadBalancer' && "
        f"(!{internal_load_balancer(o, policy)} || size({pieces}) > 0))))"
    )
