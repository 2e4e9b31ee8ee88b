"""The match conditions that keep a compliant write from costing anything (docs/design.md,
"What bootstrap registers"): CEL over the object (and the old one) saying whether a Service,
a workload's Pod template, an Ingress, a Gateway or a route may be exposure. The webhook
entries (core/registration.py) send only such writes; the native engine's policies
(core/native/) judge only them. Pure: strings and plain dicts out.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from clusterip_guard.core.gateways import (
    GATEWAY_GROUP,
    GATEWAY_KIND,
    MESH_GROUP,
    MESH_KIND,
)
from clusterip_guard.core.ingresses import GLOB_CHARACTERS
from clusterip_guard.core.names import (
    EXPOSED_SERVICE_MATCH_CONDITION,
    GATEWAY_CLASS_MATCH_CONDITION,
    HOST_EXPOSED_MATCH_CONDITION,
    INGRESS_CLASS_ANNOTATION,
    INGRESS_CLASS_MATCH_CONDITION,
    ROUTE_PARENT_MATCH_CONDITION,
)
from clusterip_guard.core.workloads import WORKLOAD_KINDS, WorkloadKind

_EXPOSED = (
    "(has({o}.spec.type) && {o}.spec.type in ['NodePort', 'LoadBalancer'])"
    " || (has({o}.spec.externalIPs) && size({o}.spec.externalIPs) > 0)"
)
# Only requests whose object is exposed, or whose old object was, reach the webhook: a
# compliant Service never costs a call.
EXPOSED_SERVICE_EXPRESSION = (
    f"{_EXPOSED.format(o='object')} || (oldObject != null && ({_EXPOSED.format(o='oldObject')}))"
)


def _opens_host(spec: str) -> str:
    """CEL: the Pod spec at `spec` is on the host network or declares a host port."""
    ports = "has(c.ports) && c.ports.exists(p, has(p.hostPort) && p.hostPort > 0)"
    return (
        f"(has({spec}.hostNetwork) && {spec}.hostNetwork == true)"
        f" || (has({spec}.containers) && {spec}.containers.exists(c, {ports}))"
        f" || (has({spec}.initContainers) && {spec}.initContainers.exists(c, {ports}))"
    )


def _pod_spec_reached(kind: WorkloadKind) -> str:
    """CEL: `object` has its Pod spec (each step checked: admission runs before validation,
    and a missing key is an error, which a fail-closed entry would turn into a refusal)."""
    steps = ["object", *kind.pod_spec_path]
    return " && ".join(f"has({'.'.join(steps[: n + 1])})" for n in range(1, len(steps)))


def host_exposed_expression() -> str:
    """CEL: the Pod, or the template of the workload, opens a port on its node. A write of a
    workload's or Pod's that does not never reaches the webhook. Ephemeral containers are
    left out: the API server refuses ports on them. The old object is not needed: an UPDATE is
    judged on what it adds, and a new object that opens nothing adds nothing."""
    by_resource: dict[str, list[str]] = {}
    for kind in WORKLOAD_KINDS:
        spec = ".".join(["object", *kind.pod_spec_path])
        by_resource.setdefault(f"{_pod_spec_reached(kind)} && ({_opens_host(spec)})", []).append(
            kind.resource
        )
    terms = [
        f"(request.resource.resource in {sorted(resources)!r} && {test})".replace('"', "'")
        for test, resources in by_resource.items()
    ]
    return " || ".join(terms)


def host_exposed_match_condition() -> dict[str, str]:
    return {"name": HOST_EXPOSED_MATCH_CONDITION, "expression": host_exposed_expression()}


def ingress_classes_of(o: str) -> str:
    """CEL: the classes the Ingress `o` names, its field's and its annotation's (every step
    checked: admission runs before validation)."""
    # Quoted as the chart's YAML keeps it double-quoted (its Helm list is single-quoted).
    annotation = f"'{INGRESS_CLASS_ANNOTATION}'"
    return (
        f"(has({o}.spec) && has({o}.spec.ingressClassName) ? [{o}.spec.ingressClassName] : [])"
        f" + (has({o}.metadata.annotations) && {annotation} in {o}.metadata.annotations ? "
        f"[{o}.metadata.annotations[{annotation}]] : [])"
    )


def ingress_exposed(o: str, allowed: Callable[[str], str]) -> str:
    """CEL: the Ingress `o` names no class, or one that `allowed` (CEL of the class `c`) does
    not allow: exposure, as core/ingresses.py counts it."""
    return (
        f"(size({ingress_classes_of(o)}) == 0 || "
        f"({ingress_classes_of(o)}).exists(c, c == '' || !({allowed('c')})))"
    )


def exact_ingress_classes(allowed: Collection[str]) -> list[str]:
    """The allowed classes that are not globs: each matches only itself, so a registration can
    leave an Ingress of that class out with a plain `in` (and never one the policy denies)."""
    return sorted(name for name in allowed if not GLOB_CHARACTERS & set(name))


def ingress_match_condition(allowed: Collection[str] | str = ()) -> dict[str, str]:
    """Only an Ingress that names a class not in `allowed` (exact names; a Helm expression
    giving a JSON list, in the chart), or none, or whose old object did, reaches the webhook:
    an Ingress of an allowed class never costs a call. Without the policy's classes (a
    registration that was not given them) every Ingress does."""
    # Single-quoted as the chart's helper writes them (a class name holds no quote: the policy
    # file allows DNS subdomain characters only), so both registrations are the same text.
    listed = (
        allowed
        if isinstance(allowed, str)
        else "[" + ", ".join(f"'{name}'" for name in exact_ingress_classes(allowed)) + "]"
    )

    def exposed(o: str) -> str:
        return ingress_exposed(o, lambda c: f"{c} in {listed}")

    return {
        "name": INGRESS_CLASS_MATCH_CONDITION,
        "expression": f"{exposed('object')} || (oldObject != null && {exposed('oldObject')})",
    }


def gateway_class_exposed(o: str, allowed: Callable[[str], str]) -> str:
    """CEL: the Gateway `o` names no class, an empty one, or one that `allowed` (CEL of the
    class `c`) does not allow: exposure, as core/gateways.py counts it."""
    named = f"has({o}.spec) && has({o}.spec.gatewayClassName)"
    return f"(!({named}) || [{o}.spec.gatewayClassName].exists(c, c == '' || !({allowed('c')})))"


def parent_group(p: str) -> str:
    """CEL: the group of the parentRef `p` (core/gateways.py: the Gateway API's by default)."""
    return f"(has({p}.group) ? {p}.group : '{GATEWAY_GROUP}')"


def parent_kind(p: str) -> str:
    return f"(has({p}.kind) ? {p}.kind : '{GATEWAY_KIND}')"


def parent_namespace(p: str) -> str:
    """The route's namespace by default (request.namespace: the route is namespaced)."""
    return f"(has({p}.namespace) ? {p}.namespace : request.namespace)"


def parent_name(p: str) -> str:
    return f"(has({p}.name) ? {p}.name : '')"


def parent_readable(p: str) -> str:
    """CEL: the parentRef `p` has a name, and no empty kind or namespace (a validated object
    always does: the schema requires it; admission can run before validation)."""
    return (
        f"({parent_name(p)} != '' && !(has({p}.kind) && {p}.kind == '')"
        f" && !(has({p}.namespace) && {p}.namespace == ''))"
    )


def parent_allowed(p: str, allowed_gateway: Callable[[str, str], str]) -> str:
    """CEL: the parentRef `p` is mesh routing (a Service), or a Gateway that `allowed_gateway`
    (CEL of its namespace and name) allows: no exposure, as core/gateways.py counts it."""
    group, kind = parent_group(p), parent_kind(p)
    mesh = f"{group} == '{MESH_GROUP}' && {kind} == '{MESH_KIND}'"
    gateway = (
        f"{group} == '{GATEWAY_GROUP}' && {kind} == '{GATEWAY_KIND}' && "
        f"({allowed_gateway(parent_namespace(p), parent_name(p))})"
    )
    return f"({parent_readable(p)} && (({mesh}) || ({gateway})))"


def route_exposed(o: str, allowed_gateway: Callable[[str, str], str]) -> str:
    """CEL: a parent of the route `o` is neither mesh routing nor an allowed Gateway."""
    return (
        f"(has({o}.spec) && has({o}.spec.parentRefs) && "
        f"{o}.spec.parentRefs.exists(p, !{parent_allowed('p', allowed_gateway)}))"
    )


def exact_gateways(allowed: Collection[tuple[str, str]]) -> list[str]:
    """The allowed Gateways, `namespace/name`, neither part a glob: each matches only itself."""
    return sorted(
        f"{namespace}/{name}"
        for namespace, name in allowed
        if not GLOB_CHARACTERS & set(namespace + name)
    )


def _cel_list(allowed: Collection[str] | str, exact: Callable[[Collection[str]], list[str]]) -> str:
    """A CEL list of the exact names (single-quoted, as the chart's helpers write them); a str
    is a Helm expression giving such a list."""
    if isinstance(allowed, str):
        return allowed
    return "[" + ", ".join(f"'{name}'" for name in exact(allowed)) + "]"


def gateway_match_condition(allowed: Collection[str] | str = ()) -> dict[str, str]:
    """Only a Gateway of a class not in `allowed` (exact names; a Helm expression giving a CEL
    list, in the chart), or of none, or whose old object was, reaches the webhook."""
    listed = _cel_list(allowed, exact_ingress_classes)

    def exposed(o: str) -> str:
        return gateway_class_exposed(o, lambda c: f"{c} in {listed}")

    return {
        "name": GATEWAY_CLASS_MATCH_CONDITION,
        "expression": f"{exposed('object')} || (oldObject != null && {exposed('oldObject')})",
    }


def route_match_condition(allowed: Collection[tuple[str, str]] | str = ()) -> dict[str, str]:
    """Only a route with a parent that is neither a Service nor an exact allowed Gateway
    (`allowed`: the policy's; a Helm expression giving a CEL list of `namespace/name`, in the
    chart), or whose old object had one, reaches the webhook."""
    listed = allowed if isinstance(allowed, str) else _cel_list(exact_gateways(allowed), sorted)

    def exposed(o: str) -> str:
        return route_exposed(o, lambda namespace, name: f"({namespace} + '/' + {name}) in {listed}")

    return {
        "name": ROUTE_PARENT_MATCH_CONDITION,
        "expression": f"{exposed('object')} || (oldObject != null && {exposed('oldObject')})",
    }


def exposed_match_condition() -> dict[str, str]:
    return {"name": EXPOSED_SERVICE_MATCH_CONDITION, "expression": EXPOSED_SERVICE_EXPRESSION}
