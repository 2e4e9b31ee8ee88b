"""Gateway API on a control plane: its release's CRDs installed and served, and the Gateways
and routes the tests write, shaped as its CRDs' schemas take them (no controller runs here, so
none of them is ever programmed: what is proven is what the API server admits and stores)."""

from __future__ import annotations

import json
from typing import Any

from tests.support.kubectl import Kubectl
from tests.support.polling import until
from tests.support.tools import gateway_api_crds

GROUP = "gateway.networking.k8s.io"
# What the experimental channel of v1.6.3 serves, kind by kind (its CRDs' served versions; the
# storage version first). tests/e2e/test_gateways_e2e.py holds this to the API server's
# discovery once the CRDs are in, so a test that covers "every version served" covers these.
GATEWAY_VERSIONS: tuple[str, ...] = ("v1", "v1beta1")
ROUTE_VERSIONS: dict[str, tuple[str, ...]] = {
    "HTTPRoute": ("v1", "v1beta1"),
    "GRPCRoute": ("v1",),
    "TLSRoute": ("v1", "v1alpha2", "v1alpha3"),
    "TCPRoute": ("v1", "v1alpha2"),
    "UDPRoute": ("v1", "v1alpha2"),
}
ROUTE_KINDS = tuple(ROUTE_VERSIONS)
# Every (kind, version) a route can be written as here.
ROUTE_KIND_VERSIONS: tuple[tuple[str, str], ...] = tuple(
    (kind, version) for kind, versions in ROUTE_VERSIONS.items() for version in versions
)
ESTABLISHED_TIMEOUT = "60s"
SERVED_TIMEOUT = 60.0


def plural(kind: str) -> str:
    """The resource of a Gateway API kind: `httproutes`, `gateways`."""
    return kind.lower() + "s"


def collection(kind: str, version: str, namespace: str) -> str:
    """The API path of a namespace's objects of this kind, at this version."""
    return f"/apis/{GROUP}/{version}/namespaces/{namespace}/{plural(kind)}"


def served(kubectl: Kubectl) -> dict[str, tuple[str, ...]]:
    """The API server's discovery: each Gateway API kind with the versions it serves (none
    when the group is not served)."""
    groups = json.loads(kubectl("get", "--raw", "/apis").stdout)["groups"]
    (group,) = [g for g in groups if g["name"] == GROUP] or [None]
    if group is None:
        return {}
    kinds: dict[str, list[str]] = {}
    for entry in group["versions"]:
        version = entry["version"]
        listed = json.loads(kubectl("get", "--raw", f"/apis/{GROUP}/{version}").stdout)
        for resource in listed["resources"]:
            if "/" not in resource["name"]:  # subresources are not kinds of their own
                kinds.setdefault(resource["kind"], []).append(version)
    return {kind: tuple(versions) for kind, versions in kinds.items()}


def serves_every_kind(kubectl: Kubectl) -> bool:
    found = served(kubectl)
    wanted = {"Gateway": GATEWAY_VERSIONS, **ROUTE_VERSIONS}
    return all(set(versions) <= set(found.get(kind, ())) for kind, versions in wanted.items())


def install_crds(kubectl: Kubectl) -> list[str]:
    """Gateway API's CRDs as its release publishes them (created, not applied: they are too
    large for apply's last-applied annotation; one already there is kept), once Established
    and once discovery lists every Gateway and route kind at every version; their names."""
    names = []
    for crd in gateway_api_crds():
        created = kubectl("create", "-f", str(crd), "-o", "name", check=False)
        if created.returncode != 0 and "AlreadyExists" not in created.stderr:
            raise AssertionError(f"kubectl create -f {crd} failed:\n{created.stderr}")
        names.append(
            f"customresourcedefinition.apiextensions.k8s.io/{crd.stem.split('_')[1]}.{GROUP}"
        )
    kubectl("wait", "--for=condition=Established", f"--timeout={ESTABLISHED_TIMEOUT}", *names)
    if not until(lambda: serves_every_kind(kubectl), timeout=SERVED_TIMEOUT):
        raise AssertionError(f"Gateway API not served after {SERVED_TIMEOUT}s: {served(kubectl)}")
    return names


# --- the objects ---------------------------------------------------------------------------------


def gateway(name: str, gateway_class: str | None, *, version: str = "v1") -> dict[str, Any]:
    """A Gateway of this class with one HTTP listener (`gatewayClassName` left out if None:
    the schema requires it, so the API server refuses that one itself)."""
    spec: dict[str, Any] = {"listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}
    if gateway_class is not None:
        spec["gatewayClassName"] = gateway_class
    return {"apiVersion": f"{GROUP}/{version}", "kind": "Gateway", "metadata": {"name": name},
            "spec": spec}  # fmt: skip


def parent(
    name: str,
    *,
    namespace: str | None = None,
    section: str | None = None,
    port: int | None = None,
    kind: str | None = None,
    group: str | None = None,
) -> dict[str, Any]:
    """A parentRef; what is None is left out (the schema defaults group and kind)."""
    fields = {"group": group, "kind": kind, "name": name, "namespace": namespace,
              "sectionName": section, "port": port}  # fmt: skip
    return {key: value for key, value in fields.items() if value is not None}


def service_parent(name: str) -> dict[str, Any]:
    """A Service as the parent: mesh routing (GAMMA), inside the cluster."""
    return parent(name, group="", kind="Service")


def route(
    kind: str, name: str, parents: list[dict[str, Any]] | None, *, version: str = "v1"
) -> dict[str, Any]:
    """A route of this kind sending to Service `web`, attached to `parents` (none if None),
    with what each kind's schema requires (rules; a TLSRoute's hostnames)."""
    backend = {"name": "web", "port": 80}
    spec: dict[str, Any] = {"rules": [{"backendRefs": [backend]}]}
    if kind == "TLSRoute":
        spec["hostnames"] = ["shop.example.com"]
    if parents is not None:
        spec["parentRefs"] = parents
    return {"apiVersion": f"{GROUP}/{version}", "kind": kind, "metadata": {"name": name},
            "spec": spec}  # fmt: skip
