"""What makes a Gateway or a Gateway API route a door into the cluster (docs/concepts.md, "What
counts as exposed"): the class of the Gateway, whose controller serves its listeners, and the
parents a route attaches to. Pure.

A Gateway (group gateway.networking.k8s.io, any served version) is exposure unless its
`spec.gatewayClassName` is one the policy allows (`allowedGatewayClasses`); an empty or
unreadable class is exposure too. A route (HTTPRoute, GRPCRoute, TLSRoute, TCPRoute, UDPRoute)
is exposure for each parent in `spec.parentRefs` that is not an allowed Gateway
(`allowedGateways`, namespace/name globs) nor a Service: a parentRef's group defaults to
gateway.networking.k8s.io, its kind to Gateway, its namespace to the route's. A parent of the
core group and kind Service is mesh routing (GAMMA): traffic already inside the cluster. Each
other parent is one piece, keyed by group, kind, namespace and name: its sectionName and port
pick a listener of the same Gateway, and another listener of an allowed Gateway is still that
Gateway. A route with no parentRefs attaches to nothing: no piece.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from clusterip_guard.core import sentences as say
from clusterip_guard.core.exposure import Violation
from clusterip_guard.core.policy import PolicySettings

GATEWAY_GROUP: Final = "gateway.networking.k8s.io"
GATEWAY_KIND: Final = "Gateway"
GATEWAY_RESOURCE: Final = "gateways"
# The routes, (kind, resource): each attaches to parents through spec.parentRefs.
ROUTE_KINDS: Final[tuple[tuple[str, str], ...]] = (
    ("HTTPRoute", "httproutes"),
    ("GRPCRoute", "grpcroutes"),
    ("TLSRoute", "tlsroutes"),
    ("TCPRoute", "tcproutes"),
    ("UDPRoute", "udproutes"),
)
ROUTE_KIND_NAMES: Final = tuple(kind for kind, _ in ROUTE_KINDS)
ROUTE_RESOURCES: Final = tuple(resource for _, resource in ROUTE_KINDS)
GATEWAY_API_KIND_NAMES: Final = (GATEWAY_KIND, *ROUTE_KIND_NAMES)
# A parent of this group and kind is a Service: mesh routing (GAMMA), inside the cluster.
MESH_GROUP: Final = ""
MESH_KIND: Final = "Service"
# Keys of the pieces: a Gateway's class (with the class, "" when unreadable), a route's parent.
GATEWAY_CLASS_KEY_PREFIX: Final = "gateway-class:"
PARENT_KEY_PREFIX: Final = "parent:"
GATEWAY_CLASS_FIELD: Final = "spec.gatewayClassName"
PARENT_REFS_FIELD: Final = "spec.parentRefs"


def gateway_api_kind(manifest: Mapping[str, Any]) -> str | None:
    """The kind of a Gateway or route of the Gateway API (any version), else None (for `check`
    and the scan)."""
    api_version = manifest.get("apiVersion")
    kind = manifest.get("kind")
    if (
        isinstance(api_version, str)
        and api_version.partition("/")[0] == GATEWAY_GROUP
        and api_version.partition("/")[2]
        and kind in GATEWAY_API_KIND_NAMES
    ):
        return str(kind)
    return None


def gateway_class_of(gateway: Mapping[str, Any]) -> str:
    """spec.gatewayClassName; "" when missing or not text."""
    spec = gateway.get("spec")
    value = spec.get("gatewayClassName") if isinstance(spec, Mapping) else None
    return value if isinstance(value, str) else ""


def gateway_classes_fix(policy: PolicySettings) -> str:
    """What to do instead, naming the gateway classes the policy allows."""
    if not policy.allowed_gateway_classes:
        return say.NO_GATEWAY_CLASS_ALLOWED
    return say.USE_ALLOWED_GATEWAY_CLASS.format(classes=", ".join(policy.allowed_gateway_classes))


def gateway_exposure_of(
    gateway: Mapping[str, Any], policy: PolicySettings
) -> tuple[Violation, ...]:
    """The Gateway's piece of exposure, when its class is not one `policy` allows."""
    name = gateway_class_of(gateway)
    if policy.gateway_class_allowed(name):
        return ()
    summary = say.GATEWAY_CLASS.format(gateway_class=name) if name else say.UNREADABLE_GATEWAY_CLASS
    return (
        Violation(
            key=f"{GATEWAY_CLASS_KEY_PREFIX}{name}",
            field=GATEWAY_CLASS_FIELD,
            summary=summary,
            fix=gateway_classes_fix(policy),
        ),
    )


@dataclass(frozen=True)
class Parent:
    """One entry of a route's spec.parentRefs, its defaults filled; a part that cannot be read
    is "" and the parent is not `readable`."""

    index: int | None  # its place in spec.parentRefs; None when the list itself is unreadable
    group: str
    kind: str
    namespace: str
    name: str
    readable: bool

    @property
    def key(self) -> str:
        return f"{PARENT_KEY_PREFIX}{self.group}/{self.kind}/{self.namespace}/{self.name}"

    @property
    def field(self) -> str:
        return PARENT_REFS_FIELD if self.index is None else f"{PARENT_REFS_FIELD}[{self.index}]"

    def described(self) -> str:
        """`Gateway infra/public`; a kind of another group than the Gateway API's or the core
        one with its group: `ListenerSet.gateway.networking.x-k8s.io infra/edge`."""
        kind = (
            self.kind if self.group in (GATEWAY_GROUP, MESH_GROUP) else f"{self.kind}.{self.group}"
        )
        return say.PARENT_REF.format(kind=kind, namespace=self.namespace, name=self.name)

    def is_mesh(self) -> bool:
        return self.readable and self.group == MESH_GROUP and self.kind == MESH_KIND

    def is_gateway(self) -> bool:
        return self.readable and self.group == GATEWAY_GROUP and self.kind == GATEWAY_KIND


def _part(ref: Mapping[str, Any], key: str, default: str) -> tuple[str, bool]:
    """(value, readable): absent, the default; present, non-empty text (group may be "")."""
    if key not in ref:
        return default, True
    value = ref[key]
    if not isinstance(value, str):
        return "", False
    return value, bool(value) or key == "group"


def parents_of(route: Mapping[str, Any], namespace: str) -> list[Parent]:
    """Every parent the route names (none: it attaches to nothing), in order; `namespace` is
    the route's, a parentRef's default."""
    spec = route.get("spec")
    refs = spec.get("parentRefs") if isinstance(spec, Mapping) else None
    if refs is None:
        return []
    if not isinstance(refs, list):
        return [Parent(None, "", "", "", "", readable=False)]
    parents = []
    for index, ref in enumerate(refs):
        if not isinstance(ref, Mapping):
            parents.append(Parent(index, "", "", "", "", readable=False))
            continue
        group, group_ok = _part(ref, "group", GATEWAY_GROUP)
        kind, kind_ok = _part(ref, "kind", GATEWAY_KIND)
        ref_namespace, namespace_ok = _part(ref, "namespace", namespace)
        name, name_ok = _part(ref, "name", "")
        readable = group_ok and kind_ok and namespace_ok and name_ok and bool(name)
        parents.append(Parent(index, group, kind, ref_namespace, name, readable))
    return parents


def allowed_gateways_fix(policy: PolicySettings) -> str:
    """What to do instead, naming the Gateways the policy allows."""
    if not policy.allowed_gateways:
        return say.NO_GATEWAY_ALLOWED
    gateways = ", ".join(f"{namespace}/{name}" for namespace, name in policy.allowed_gateways)
    return say.ATTACH_TO_ALLOWED_GATEWAY.format(gateways=gateways)


def parent_allowed(parent: Parent, policy: PolicySettings) -> bool:
    """Mesh routing, or an allowed Gateway (any of its listeners)."""
    return parent.is_mesh() or (
        parent.is_gateway() and policy.gateway_allowed(parent.namespace, parent.name)
    )


def route_exposure_of(
    route: Mapping[str, Any], namespace: str, policy: PolicySettings
) -> tuple[Violation, ...]:
    """A piece for each parent of the route that `policy` does not allow."""
    fix = allowed_gateways_fix(policy)
    return tuple(
        Violation(
            key=parent.key,
            field=parent.field,
            summary=(say.ROUTE_PARENT if parent.readable else say.UNREADABLE_ROUTE_PARENT).format(
                parent=parent.described()
            ),
            fix=fix,
        )
        for parent in parents_of(route, namespace)
        if not parent_allowed(parent, policy)
    )


def gateway_api_exposure_of(
    kind: str, manifest: Mapping[str, Any], namespace: str, policy: PolicySettings
) -> tuple[Violation, ...]:
    """The pieces of a Gateway (its class) or of a route (its parents)."""
    if kind == GATEWAY_KIND:
        return gateway_exposure_of(manifest, policy)
    return route_exposure_of(manifest, namespace, policy)
