"""The native engine: the policy compiled into admission policies the API server runs itself
(docs/design.md, "Engines").

`native_objects` turns one policy (`PolicySettings`) into ValidatingAdmissionPolicies and a
MutatingAdmissionPolicy (`admissionregistration.k8s.io/v1`) that decide as `core.decision`
decides: the same pieces of exposure (core/exposure.py), the same internal-load-balancer
readings (core/cloud_providers.py), UPDATEs judged on what they add, the same denial message;
bound as the entries of the admission table judge (core/admission.py; one binding per effect
where a selector can say it), so they select the same namespaces as the webhook's entries.

The CEL is generated here from the same constants the Python reads, and the differential test
(tests/e2e/test_native_e2e.py) holds the two engines equal on the real API server. What CEL
cannot say is refused by `NativeUnsupported`, one line naming the policy key: never a silent
difference. Pure: plain dicts out.
"""

from __future__ import annotations

import datetime
from collections.abc import Collection, Iterable
from typing import Any, Final

from clusterip_guard.core.admission import registered_entries
from clusterip_guard.core.admission_policies import (
    companion_policies,
    policy_bindings,
    registered_object,
    service_writes,
)
from clusterip_guard.core.cloud_providers import (
    AWS_LOAD_BALANCER_INTERNAL,
    AWS_LOAD_BALANCER_SCHEME,
    AWS_LOAD_BALANCER_TYPE,
    AWS_TYPES_FOR_THE_LOAD_BALANCER_CONTROLLER,
    AZURE_LOAD_BALANCER_INTERNAL,
    GKE_DEPRECATED_LOAD_BALANCER_TYPE,
    GKE_LOAD_BALANCER_TYPE,
    GO_TRUE,
    OCI_LOAD_BALANCER_INTERNAL,
    OCI_LOAD_BALANCER_TYPE,
    OCI_NETWORK_LOAD_BALANCER_INTERNAL,
    OPENSTACK_INTERNAL_LOAD_BALANCER,
    Provider,
)
from clusterip_guard.core.exposure import INTERNAL_NODE_PORTS, LOAD_BALANCER_PIECE, NODE_PORT_TYPE
from clusterip_guard.core.names import (
    CONVERTED_FROM_ANNOTATION,
    MODE_LABEL,
    NEVER_JUDGED_NAMESPACES,
    SOURCE_RANGES_ANNOTATION,
)
from clusterip_guard.core.native_cel import (
    exemption_terms,
    mode_of_namespace,
    name_variable,
)
from clusterip_guard.core.native_cel import (
    text as _text,
)
from clusterip_guard.core.native_workloads import (
    HOST_CONVERSION_SUFFIX,
    HOST_EXPOSURE_SUFFIX,
    host_conversion_policy,
    host_exposure_policy,
)
from clusterip_guard.core.policy import PolicySettings
from clusterip_guard.core.registration import (
    exposed_match_condition,
    with_config_hash,
)
from clusterip_guard.core.types import MODES, Manifest, Mode

EXPOSURE_SUFFIX: Final = "-exposure"
CONVERSION_SUFFIX: Final = "-conversion"


def _texts(values: Iterable[str]) -> str:
    return "[" + ", ".join(_text(v) for v in sorted(values)) + "]"


# --- the pieces of exposure, in CEL -------------------------------------------------------------
# A piece is a map of strings, as core.exposure.Violation: key, field, summary, fix, cover (the
# key of the piece it comes with), nodePort ('' unless set), range ('' unless a source range),
# portName. Generated for `o`, the object or the old object.


def _spec(o: str, key: str, default: str) -> str:
    return f"(has({o}.spec.{key}) ? {o}.spec.{key} : {default})"


def _annotations(o: str) -> str:
    return f"(has({o}.metadata.annotations) ? {o}.metadata.annotations : {{}})"


def _type_of(o: str) -> str:
    return f"(has({o}.spec.type) && {o}.spec.type != '' ? {o}.spec.type : 'ClusterIP')"


def _type(o: str) -> str:
    """`o`'s type, read once per evaluation (the variables objectType and oldObjectType)."""
    return f"variables.{o}Type"


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
        fix=_text(fix),
        cover=_text(cover),
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
        cover=_text(cover),
    )
    return f"({opens} ? [{piece}] : [])"


def _source_ranges(o: str) -> str:
    """Whom a load balancer admits (core.exposure.source_ranges): the field, else the
    annotation, else everyone; unreadable entries admit nothing more."""
    annotations = _annotations(o)
    field = f"{o}.spec.loadBalancerSourceRanges"
    annotation = f"{annotations}[{_text(SOURCE_RANGES_ANNOTATION)}]"
    raw = (
        f"(has({field}) && size({field}) > 0 ? {field} : "
        f"({_text(SOURCE_RANGES_ANNOTATION)} in {annotations} && {annotation}.trim() != ''"
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
        cover=_text(LOAD_BALANCER_PIECE),
        source_range="r",
    )
    return f"{ranges}.map(r, {piece})"


def _allowed_external_ip(policy: PolicySettings) -> str:
    """Whether the external IP `a` is inside allowedExternalIPCIDRs."""
    cidrs = _texts(str(network) for network in policy.allowed_external_ip_cidrs)
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


# --- internal load balancers, each provider's reading (core/cloud_providers.py) ---------------


def _has(m: str, key: str) -> str:
    return f"({_text(key)} in {m})"


def _value(m: str, key: str) -> str:
    return f"{m}[{_text(key)}]"


def _go_true(m: str, key: str) -> str:
    return f"({_has(m, key)} && {_value(m, key)} in {_texts(GO_TRUE)})"


def _aws_load_balancer_controller(m: str) -> str:
    scheme = AWS_LOAD_BALANCER_SCHEME
    return (
        f"({_has(m, scheme)} ? {_value(m, scheme)} == 'internal'"
        f" : {_go_true(m, AWS_LOAD_BALANCER_INTERNAL)})"
    )


def _aws(m: str) -> str:
    internal = AWS_LOAD_BALANCER_INTERNAL
    cloud_controller = f"({_has(m, internal)} && !({_value(m, internal)} in ['', 'false']))"
    lbc = _aws_load_balancer_controller(m)
    handed_over = (
        f"({_has(m, AWS_LOAD_BALANCER_TYPE)} && {_value(m, AWS_LOAD_BALANCER_TYPE)} in "
        f"{_texts(AWS_TYPES_FOR_THE_LOAD_BALANCER_CONTROLLER)})"
    )
    return f"({handed_over} ? {lbc} : ({lbc} && {cloud_controller}))"


def _gcp(m: str) -> str:
    internal = "['Internal', 'internal']"
    new, old = GKE_LOAD_BALANCER_TYPE, GKE_DEPRECATED_LOAD_BALANCER_TYPE
    return (
        f"({_has(m, new)} ? {_value(m, new)} in {internal}"
        f" : ({_has(m, old)} && {_value(m, old)} in {internal}))"
    )


def _oci(m: str) -> str:
    network = (
        f"({_has(m, OCI_LOAD_BALANCER_TYPE)} && "
        f"{_value(m, OCI_LOAD_BALANCER_TYPE)}.lowerAscii() == 'nlb')"
    )
    return (
        f"({network} ? {_go_true(m, OCI_NETWORK_LOAD_BALANCER_INTERNAL)}"
        f" : {_go_true(m, OCI_LOAD_BALANCER_INTERNAL)})"
    )


def _exactly_true(key: str) -> Any:
    return lambda m: f"({_has(m, key)} && {_value(m, key)} == 'true')"


_READERS: Final = {
    "aws": _aws,
    "gcp": _gcp,
    "azure": _exactly_true(AZURE_LOAD_BALANCER_INTERNAL),
    "oci": _oci,
    "openstack": _exactly_true(OPENSTACK_INTERNAL_LOAD_BALANCER),
}
_CLASS_READERS: Final = {"aws": _aws_load_balancer_controller}


def _has_class(o: str) -> str:
    return f"(has({o}.spec.loadBalancerClass) && {o}.spec.loadBalancerClass != '')"


def _internal(o: str, policy: PolicySettings) -> str:
    """Whether the policy accepts this LoadBalancer as internal (is_allowed_internal_...)."""
    if not policy.allow_internal_load_balancers:
        return "false"
    m = _annotations(o)
    providers: list[Provider] = list(policy.internal_load_balancer_providers)
    unclassed = " || ".join(_READERS[p](m) for p in providers) or "false"
    classed = (
        " || ".join(
            f"({o}.spec.loadBalancerClass == {_text(name)} && {_CLASS_READERS[p](m)})"
            for name, p in policy.internal_load_balancer_classes
        )
        or "false"
    )
    return f"({_type(o)} == 'LoadBalancer' && ({_has_class(o)} ? ({classed}) : ({unclassed})))"


def _load_balancer(o: str, policy: PolicySettings) -> str:
    allocates = (
        f"!(has({o}.spec.allocateLoadBalancerNodePorts)"
        f" && {o}.spec.allocateLoadBalancerNodePorts == false)"
    )
    plain = _piece(
        key=_text(LOAD_BALANCER_PIECE),
        field="'spec.type'",
        summary="'type LoadBalancer exposes the Service outside the cluster'",
        fix="'use type ClusterIP'",
    )
    classed = _piece(
        key=_text(LOAD_BALANCER_PIECE),
        field="'spec.loadBalancerClass'",
        summary=(
            f"'type LoadBalancer of class ' + {o}.spec.loadBalancerClass + ' exposes the Service "
            "outside the cluster (the policy does not name that class as internal; a cloud\\'s "
            "internal annotations do not apply to a classed balancer)'"
        ),
        fix="'use type ClusterIP'",
    )
    type_piece = (
        f"({_has_class(o)} ? {classed} : {plain})"
        if policy.allow_internal_load_balancers
        else plain
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
            key=_text(INTERNAL_NODE_PORTS),
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
    return f"({_internal(o, policy)} ? {internal} : {exposed})"


def pieces_expression(o: str, policy: PolicySettings) -> str:
    """Every piece of `o`'s exposure the policy does not allow (core.exposure.exposure_of)."""
    node_port_type = _piece(
        key=_text(NODE_PORT_TYPE),
        field="'spec.type'",
        summary="'type NodePort opens a port on every node'",
        fix="'use type ClusterIP'",
    )
    node_ports = _node_ports(
        o, cover=NODE_PORT_TYPE, fix="remove it", explicit_only="false", field_suffix="''"
    )
    kind = _type(o)
    return (
        f"({kind} == 'ExternalName' ? [] : "
        f"({kind} == 'NodePort' ? [{node_port_type}] + {node_ports} : [])"
        f" + ({kind} == 'LoadBalancer' ? {_load_balancer(o, policy)} : [])"
        f" + {_external_ips(o, policy)})"
    )


# A piece kept from the old object (Violation.kept_from): a source range inside an old one, or
# the same key with the node port unset or unchanged.
_KEPT = (
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


def _renamed_piece() -> str:
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


def _reported(pieces: str) -> str:
    """The pieces no other piece covers (`exists` stops at the first; no list of keys made)."""
    return f"{pieces}.filter(p, p.cover == '' || !{pieces}.exists(q, q.key == p.cover))"


def _exposed(o: str, policy: PolicySettings) -> str:
    """Whether `o` has any piece of exposure: `size(<its pieces>) > 0`, said without building
    the pieces where the type alone or an external IP decides (all but an internal load
    balancer). A CREATE, or an UPDATE of a Service that was not exposed, is refused on this
    alone, so its validation and its conversion build no piece; only the denial's message
    does."""
    kind = _type(o)
    pieces = "variables.pieces" if o == "object" else "variables.oldPieces"
    outside = (
        f"(has({o}.spec.externalIPs) && "
        f"{o}.spec.externalIPs.exists(a, !{_allowed_external_ip(policy)}))"
    )
    return (
        f"({kind} != 'ExternalName' && ({kind} == 'NodePort' || {outside} || "
        f"({kind} == 'LoadBalancer' && (!{_internal(o, policy)} || size({pieces}) > 0))))"
    )


def judging_variables(
    policy: PolicySettings, *, default_mode: Mode, today: datetime.date | None = None
) -> list[dict[str, str]]:
    """The variables that decide, shared by the validating and the mutating policy:
    `judged` holds the pieces a write is refused (or converted) for, empty when it passes."""
    keeps_existing = (
        "true"
        if policy.allow_existing_violations
        else "has(request.subResource) && request.subResource == 'status'"
    )
    added = f"pieces.filter(p, !{_KEPT}).map(p, {_renamed_piece()})"
    return [
        name_variable(),
        {"name": "mode", "expression": mode_of_namespace(default_mode)},
        {"name": "objectType", "expression": _type_of("object")},
        {
            "name": "oldObjectType",
            "expression": f"oldObject == null ? '' : {_type_of('oldObject')}",
        },
        {"name": "pieces", "expression": pieces_expression("object", policy)},
        {
            "name": "oldPieces",
            "expression": f"oldObject == null ? [] : {pieces_expression('oldObject', policy)}",
        },
        {"name": "reported", "expression": _reported("variables.pieces")},
        {
            "name": "new",
            "expression": added.replace("pieces.", "variables.pieces.").replace(
                "oldPieces.", "variables.oldPieces."
            ),
        },
        {"name": "added", "expression": _reported("variables.new")},
        {
            "name": "judged",
            "expression": (
                f"size(variables.reported) == 0 || ({exemption_terms(policy, today)}) ? [] : "
                # Nothing exposed before: every piece is new, and none was renamed.
                "oldObject == null || size(variables.oldPieces) == 0 ? variables.reported : "
                f"size(variables.added) > 0 ? variables.added : "
                f"({keeps_existing}) ? [] : variables.reported"
            ),
        },
        {
            # Whether the write is refused (converted): `size(variables.judged) > 0`. When
            # nothing was exposed before (a CREATE, or an UPDATE of a Service with no piece),
            # every piece is new, so it is said without building them (`_exposed`).
            "name": "refused",
            "expression": (
                f"oldObject == null || !{_exposed('oldObject', policy)} ? "
                f"{_exposed('object', policy)} && !({exemption_terms(policy, today)}) : "
                "size(variables.judged) > 0"
            ),
        },
    ]


def _summary_of(v: str) -> str:
    """A piece's summary: its own, or for a node port, said from its key and node port."""
    return (
        f"({v}.summary != '' ? {v}.summary : 'port ' + {v}.key.substring(10) + ' opens ' + "
        f"({v}.nodePort != '' ? 'node port ' + {v}.nodePort : 'a node port') + ' on every node')"
    )


def _denial() -> str:
    subject = (
        "'Service ' + namespaceObject.metadata.name + '/' + variables.name + "
        "(has(request.subResource) && request.subResource != '' ? ' (written through services/' "
        "+ request.subResource + ')' : '')"
    )
    modes = ", ".join(MODES)
    why = (
        f"(variables.mode in {_texts(MODES)} ? 'namespace ' + namespaceObject.metadata.name + "
        f"' keeps Services internal (label {MODE_LABEL})' : 'the label {MODE_LABEL} of "
        f"namespace ' + namespaceObject.metadata.name + ' is not a mode ({modes}), so it is "
        "judged as enforce')"
    )
    joined = (
        f"variables.judged.map(v, v.field + ': ' + {_summary_of('v')} + '; ' + v.fix).join('; ')"
    )
    return (
        f"{subject} + ' would be reachable from outside the cluster, and ' + {why} + ': ' + "
        f"{joined}"
    )


def exposure_policy(
    policy: PolicySettings,
    *,
    name: str,
    default_mode: Mode,
    today: datetime.date | None = None,
) -> Manifest:
    """The ValidatingAdmissionPolicy that judges as the validating entries do: bound with Deny
    for enforce, the mutate backstop and a label that is not a mode, Warn and Audit for audit."""
    body: Manifest = {
        **registered_object("ValidatingAdmissionPolicy", name),
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": service_writes(("services", "services/status")),
            # As for the webhook: a Service that is not exposed, and was not, costs nothing.
            "matchConditions": [exposed_match_condition()],
            "variables": judging_variables(policy, default_mode=default_mode, today=today),
            "validations": [
                {
                    "expression": "!variables.refused",
                    # The API server evaluates the message apart from the validation, with
                    # the variables computed again, and whatever the verdict: built only for a
                    # write that is refused.
                    "messageExpression": f"variables.refused ? {_denial()} : ''",
                    "reason": "Forbidden",
                }
            ],
        },
    }
    return with_config_hash(body)


# --- the conversion, as a MutatingAdmissionPolicy (core/conversion.py) -------------------------

_EXPOSED_ONLY_SPEC_FIELDS: Final = (
    "healthCheckNodePort",
    "allocateLoadBalancerNodePorts",
    "loadBalancerClass",
    "loadBalancerSourceRanges",
    "loadBalancerIP",
)


def _pointer_token(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _remove_if_present(field: str) -> str:
    return f"(has(object.spec.{field}) ? [JSONPatch{{op: 'remove', path: '/spec/{field}'}}] : [])"


def _drop_node_ports() -> str:
    return (
        "(has(object.spec.ports) ? object.spec.ports.transformList(i, p, has(p.nodePort), "
        "JSONPatch{op: 'remove', path: '/spec/ports/' + string(i) + '/nodePort'}) : [])"
    )


def _keep_allowed_external_ips(policy: PolicySettings) -> str:
    """Drops the external IPs outside the allowed CIDRs; the list stays when every one is."""
    return (
        "(has(object.spec.externalIPs) && size(variables.allowedIPs) != "
        "size(object.spec.externalIPs) ? (size(variables.allowedIPs) > 0 ? "
        "[JSONPatch{op: 'replace', path: '/spec/externalIPs', value: variables.allowedIPs}] : "
        "[JSONPatch{op: 'remove', path: '/spec/externalIPs'}]) : [])"
    )


def _conversion(policy: PolicySettings) -> str:
    """convert_to_cluster_ip as a JSON Patch: every `remove` guarded by `has` (removing a
    missing path is an error, and errors go to the failure policy)."""
    annotation = _text(SOURCE_RANGES_ANNOTATION)
    converted_from = _pointer_token(CONVERTED_FROM_ANNOTATION)
    kind = _type("object")
    return (
        "[JSONPatch{op: 'replace', path: '/spec/type', value: 'ClusterIP'}]"
        f" + {_drop_node_ports()}"
        + "".join(f" + {_remove_if_present(field)}" for field in _EXPOSED_ONLY_SPEC_FIELDS)
        + f" + {_keep_allowed_external_ips(policy)}"
        + " + (size(variables.allowedIPs) == 0 && has(object.spec.externalTrafficPolicy) ? "
        "[JSONPatch{op: 'remove', path: '/spec/externalTrafficPolicy'}] : [])"
        f" + (has(object.metadata.annotations) && {annotation} in object.metadata.annotations ? "
        f"[JSONPatch{{op: 'remove', path: '/metadata/annotations/"
        f"{_pointer_token(SOURCE_RANGES_ANNOTATION)}'}}] : [])"
        f" + ({kind} == 'ClusterIP' ? [] : has(object.metadata.annotations) ? "
        f"[JSONPatch{{op: 'add', path: '/metadata/annotations/{converted_from}', value: {kind}}}]"
        f" : [JSONPatch{{op: 'add', path: '/metadata/annotations', value: "
        f"{{{_text(CONVERTED_FROM_ANNOTATION)}: {kind}}}}}])"
    )


def _internal_conversion(policy: PolicySettings) -> str:
    """drop_load_balancer_node_ports as a JSON Patch."""
    if policy.allow_internal_load_balancer_node_ports:
        return _keep_allowed_external_ips(policy)
    local = (
        "((has(object.spec.externalTrafficPolicy) && object.spec.externalTrafficPolicy == "
        "'Local') || has(object.spec.healthCheckNodePort))"
    )
    return (
        "[JSONPatch{op: 'add', path: '/spec/allocateLoadBalancerNodePorts', value: false}]"
        f" + {_drop_node_ports()}"
        f" + ({local} ? [JSONPatch{{op: 'add', path: '/spec/externalTrafficPolicy', "
        f"value: 'Cluster'}}] + {_remove_if_present('healthCheckNodePort')} : [])"
        f" + {_keep_allowed_external_ips(policy)}"
    )


def conversion_policy(
    policy: PolicySettings,
    *,
    name: str,
    default_mode: Mode,
    today: datetime.date | None = None,
) -> Manifest:
    """The MutatingAdmissionPolicy that converts as the mutating entries do: only what the
    validating policy would refuse (the same `judged`), the whole Service at once."""
    cidrs = _texts(str(network) for network in policy.allowed_external_ip_cidrs)
    variables = [
        *judging_variables(policy, default_mode=default_mode, today=today),
        {
            "name": "allowedIPs",
            "expression": (
                "has(object.spec.externalIPs) ? object.spec.externalIPs.filter(a, isIP(a) && "
                f"{cidrs}.exists(c, cidr(c).containsIP(a))) : []"
            ),
        },
    ]
    body: Manifest = {
        **registered_object("MutatingAdmissionPolicy", name),
        "spec": {
            "failurePolicy": "Fail",
            "reinvocationPolicy": "IfNeeded",
            # A write through services/status cannot be converted: the validating policy
            # judges it (denied in mutate namespaces, as by the webhook).
            "matchConstraints": service_writes(),
            "matchConditions": [exposed_match_condition()],
            "variables": variables,
            "mutations": [
                {
                    "patchType": "JSONPatch",
                    "jsonPatch": {
                        "expression": (
                            f"!variables.refused ? [] : {_internal('object', policy)} ? "
                            f"{_internal_conversion(policy)} : {_conversion(policy)}"
                        )
                    },
                }
            ],
        },
    }
    return with_config_hash(body)


def native_objects(
    policy: PolicySettings,
    *,
    name: str,
    default_mode: Mode = "off",
    never_judged: Collection[str] = NEVER_JUDGED_NAMESPACES,
    today: datetime.date | None = None,
) -> list[Manifest]:
    """Everything the native engine registers for this policy; with `today`, the exemptions
    in force that day (see `_exempt`)."""
    entries = registered_entries(default_mode)
    exposure = name + EXPOSURE_SUFFIX
    conversion = name + CONVERSION_SUFFIX
    host_exposure = name + HOST_EXPOSURE_SUFFIX
    host_conversion = name + HOST_CONVERSION_SUFFIX
    return [
        conversion_policy(policy, name=conversion, default_mode=default_mode, today=today),
        *policy_bindings(conversion, entries, never_judged=never_judged, configuration="mutating"),
        host_conversion_policy(
            policy, name=host_conversion, default_mode=default_mode, today=today
        ),
        *policy_bindings(
            host_conversion, entries, never_judged=never_judged, configuration="mutating"
        ),
        exposure_policy(policy, name=exposure, default_mode=default_mode, today=today),
        *policy_bindings(exposure, entries, never_judged=never_judged),
        host_exposure_policy(policy, name=host_exposure, default_mode=default_mode, today=today),
        *policy_bindings(host_exposure, entries, never_judged=never_judged),
        *companion_policies(name=name, default_mode=default_mode, never_judged=never_judged),
    ]


def next_rendering(policy: PolicySettings, today: datetime.date) -> datetime.date | None:
    """The first day on which a rendering made `today` is out of date: the day after the
    soonest last day of an exemption still in force (None: no exemption ends)."""
    ends = [e.expires for e in policy.exemptions if e.expires is not None and e.expires >= today]
    return min(ends) + datetime.timedelta(days=1) if ends else None
