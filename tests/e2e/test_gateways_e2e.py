"""Gateways and Gateway API routes on the real API server (docs/concepts.md, "What counts as
exposed"), under each engine in turn, with Gateway API's own CRDs (v1.6.3, experimental
channel) installed: a Gateway is judged by its class, a route by each of its parents, at every
version the API server serves each kind; UPDATEs that add a parent, kept parents, exemptions by
kind, and writes through the status subresource.

No Gateway controller runs here (the node has no registry to pull one from): nothing is ever
programmed, so what is proven is what the API server admits and stores.

Namespaces and objects are named `gw-*`, this suite's own. What reaches the webhook engine
(its calls) is tests/e2e/test_gateway_calls_e2e.py; registration before the CRDs exist is
tests/e2e/test_gateway_registration_e2e.py.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client

from clusterip_guard.core import sentences as say
from localcluster import ControlPlane
from tests.e2e.test_bypass_e2e import run_bootstrap
from tests.e2e.test_native_e2e import _call, _headers_warnings
from tests.support.gateway_api import (
    GATEWAY_VERSIONS,
    GROUP,
    ROUTE_KIND_VERSIONS,
    ROUTE_VERSIONS,
    collection,
    gateway,
    parent,
    route,
    served,
    service_parent,
)
from tests.support.kubectl import Kubectl
from tests.support.polling import until
from tests.support.webhook_process import CertificateFiles, WebhookProcess, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("gateway_api")]

CONFIGURATION = "gw-guard"
INFRA = "gw-infra"  # where the platform's Gateways are (never created: no controller here)
ALLOWED_CLASSES = "gw-internal, gw-private-*"
ALLOWED_GATEWAYS = f"{INFRA}/internal, {INFRA}/private-*"
POLICY = f"""\
allowedGatewayClasses: [gw-internal, "gw-private-*"]
allowedGateways: [{INFRA}/internal, "{INFRA}/private-*"]
exemptions:
  - {{namespace: "gw-*", name: "exempt-*", kind: Gateway, reason: the platform's own Gateway}}
  - {{namespace: "gw-*", name: "exempt-*", kind: HTTPRoute, reason: a vendor's route}}
"""
MODES = ("enforce", "mutate", "audit")
ALLOWED_WITH_A_WARNING = ("is exposed but allowed by", "existing exposure kept")


def legacy_name(kind: str, version: str) -> str:
    return f"legacy-{kind.lower()}-{version}"


@dataclass(frozen=True)
class Written:
    """What the API server answered a write: its status, the refusal's text after the
    engine's prefix, our warnings (not its own deprecation notices), the stored object."""

    status: int
    refused_by: str  # the refusal's text before "denied ...: "
    message: str
    warnings: tuple[str, ...]
    stored: dict[str, Any] | None

    @property
    def allowed(self) -> bool:
        return self.status < 300

    def warned(self, text: str) -> bool:
        return any(text in warning for warning in self.warnings)


def _written(status: int, document: dict[str, Any], headers: Any) -> Written:
    # A deprecated version (TLSRoute v1alpha2, ...) draws the CRD's own deprecation warning.
    warnings = tuple(
        w for w in _headers_warnings(headers) if not ("version of" in w and "deprecated" in w)
    )
    if status >= 300:
        reason = str(document.get("message", ""))
        refused_by, message = reason, reason
        for prefix in ("denied the request: ", "denied request: "):
            if prefix in reason:
                refused_by, message = reason.split(prefix, 1)
        return Written(status, refused_by, message, warnings, None)
    return Written(status, "", "", warnings, document)


@dataclass(frozen=True)
class Guard:
    """One engine, registered from POLICY, and its namespaces: one per mode, labelled."""

    engine: str
    api: client.ApiClient
    kubectl: Kubectl

    def namespace(self, mode: str) -> str:
        return f"gw-{mode}-{self.engine}"

    def create(self, mode: str, manifest: dict[str, Any]) -> Written:
        kind, version = manifest["kind"], manifest["apiVersion"].split("/")[1]
        path = collection(kind, version, self.namespace(mode))
        return _written(*_call(self.api, "POST", path, manifest))

    def replace(self, mode: str, manifest: dict[str, Any], *, status: bool = False) -> Written:
        """A PUT of `manifest` over the stored object (its resourceVersion), or of its status."""
        kind, version = manifest["kind"], manifest["apiVersion"].split("/")[1]
        path = f"{collection(kind, version, self.namespace(mode))}/{manifest['metadata']['name']}"
        _, current, _ = _call(self.api, "GET", path)
        body = json.loads(json.dumps(manifest))
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        return _written(*_call(self.api, "PUT", path + ("/status" if status else ""), body))

    def get(self, mode: str, kind: str, name: str, version: str = "v1") -> dict[str, Any]:
        _, document, _ = _call(
            self.api, "GET", f"{collection(kind, version, self.namespace(mode))}/{name}"
        )
        return document

    def refused_by(self, policy: str, entry: str) -> str:
        """How the API server names what refused a write in an enforce namespace: the native
        engine's `policy` (gateway-exposure), the webhook's `entry` (enforce-routes)."""
        if self.engine == "webhook":
            return f'admission webhook "{entry}.clusterip-guard.io"'
        return f"ValidatingAdmissionPolicy '{CONFIGURATION}-native-{policy}'"


def denial(kind: str, namespace: str, name: str, field: str, summary: str, fix: str) -> list[str]:
    """What a denial says, in parts: the object, then the piece (its field, what it is, the fix)."""
    return [f"{kind} {namespace}/{name} would be reachable from outside the cluster",
            f"{field}: {summary}; {fix}"]  # fmt: skip


def says(written: Written, parts: list[str]) -> bool:
    return all(part in written.message for part in parts)


def gateway_denial(namespace: str, name: str, gateway_class: str) -> list[str]:
    return denial("Gateway", namespace, name, "spec.gatewayClassName",
                  say.GATEWAY_CLASS.format(gateway_class=gateway_class),
                  say.USE_ALLOWED_GATEWAY_CLASS.format(classes=ALLOWED_CLASSES))  # fmt: skip


def route_denial(kind: str, namespace: str, name: str, index: int, parent_said: str) -> list[str]:
    """The denial of the route's parent at `index`: `parent_said` as `Gateway ns/name`, or a
    bare `ns/name` for a Gateway."""
    if " " not in parent_said:
        parent_said = f"Gateway {parent_said}"
    return denial(kind, namespace, name, f"spec.parentRefs[{index}]",
                  say.ROUTE_PARENT.format(parent=parent_said),
                  say.ATTACH_TO_ALLOWED_GATEWAY.format(gateways=ALLOWED_GATEWAYS))  # fmt: skip


def in_force(kubectl: Kubectl, namespace: str, mode: str) -> bool:
    """A route to a Gateway the policy does not allow shows the namespace's mode (a server dry
    run): refused in enforce and mutate, warned of in audit."""
    probe = route("HTTPRoute", "probe", [parent("public")])
    run = kubectl("-n", namespace, "create", "--dry-run=server", "-f", "-", stdin=json.dumps(probe),
                  check=False)  # fmt: skip
    if mode == "audit":
        return run.returncode == 0 and "is not an allowed Gateway" in run.stderr
    return run.returncode != 0


@pytest.fixture(scope="module", params=["webhook", "native"])
def guard(
    request: pytest.FixtureRequest,
    control_plane: ControlPlane,
    api_client: client.ApiClient,
    kubectl: Kubectl,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Guard]:
    """The same policy and the same legacy routes (stored before their namespace was governed,
    each attached to a Gateway the policy does not allow), under each engine in turn."""
    engine: str = request.param
    if engine == "native":  # skipped, saying why, before 1.36 (make test-versions)
        request.getfixturevalue("native_engine_served")
    files = CertificateFiles(tmp_path_factory.mktemp("gw-certs"))
    policy_file = files.folder / "policy.yaml"
    policy_file.parent.mkdir(parents=True, exist_ok=True)
    policy_file.write_text(POLICY)
    port = free_port()
    webhook = None
    if engine == "webhook":
        registration: tuple[str, ...] = ("--url", f"https://127.0.0.1:{port}", "--cert-dir",
                                         str(files.folder), "--ip", "127.0.0.1", "--policy-file",
                                         str(policy_file))  # fmt: skip
        name = CONFIGURATION
    else:
        registration = ("--engine", "native", "--policy-file", str(policy_file))
        name = f"{CONFIGURATION}-native"
    registered = run_bootstrap(control_plane, *registration, name=name)
    assert registered.returncode == 0, registered.stderr
    if engine == "webhook":
        webhook = WebhookProcess(files, port=port, policy_file=policy_file).start()
    found = Guard(engine, api_client, kubectl)
    try:
        for mode in MODES:
            namespace = found.namespace(mode)
            kubectl("create", "namespace", namespace)
            legacy = [route(kind, legacy_name(kind, version), [parent("public")],
                            version=version) for kind, version in ROUTE_KIND_VERSIONS]  # fmt: skip
            listed = {"apiVersion": "v1", "kind": "List", "items": legacy}
            kubectl("-n", namespace, "create", "-f", "-", stdin=json.dumps(listed))
            kubectl("label", "namespace", namespace, f"clusterip-guard.io/mode={mode}")
        for mode in MODES:
            shown = functools.partial(in_force, kubectl, found.namespace(mode), mode)
            assert until(shown, timeout=60), f"{mode} never came into force"
        yield found
    finally:
        if webhook is not None:
            webhook.stop()
        run_bootstrap(control_plane, *registration, "--uninstall", name=name)
        for mode in MODES:
            kubectl("-n", found.namespace(mode), "delete", ",".join(
                f"{kind.lower()}s.{GROUP}" for kind in ("Gateway", *ROUTE_VERSIONS)
            ), "--all", "--wait=false", check=False)  # fmt: skip


# --- what the API server serves, and what it does before admission ------------------------------


def test_every_version_of_every_kind_the_api_server_serves_is_covered(kubectl: Kubectl) -> None:
    """The suites below write each route kind at each version in ROUTE_VERSIONS: exactly what
    discovery lists once the CRDs are in."""
    found = {kind: set(versions) for kind, versions in served(kubectl).items()}
    assert found["Gateway"] == set(GATEWAY_VERSIONS)
    assert {kind: found[kind] for kind in ROUTE_VERSIONS} == {
        kind: set(versions) for kind, versions in ROUTE_VERSIONS.items()
    }


def test_the_schema_defaults_a_parents_group_and_kind_before_admission(kubectl: Kubectl) -> None:
    """A parentRef written with a name only is stored as a Gateway of the Gateway API's group:
    the CRD's structural defaults are applied as the object is decoded, before any webhook or
    policy sees it (so both engines judge the filled-in parent)."""
    namespace = "gw-ungoverned"
    kubectl("create", "namespace", namespace)
    try:
        written = route("HTTPRoute", "bare", [{"name": "public"}])
        kubectl("-n", namespace, "create", "-f", "-", stdin=json.dumps(written))
        stored = json.loads(kubectl("-n", namespace, "get", f"httproutes.{GROUP}", "bare", "-o",
                                    "json").stdout)  # fmt: skip
        assert stored["spec"]["parentRefs"] == [
            {"group": GROUP, "kind": "Gateway", "name": "public"}
        ]
    finally:
        kubectl("-n", namespace, "delete", f"httproutes.{GROUP}", "--all", "--wait=false")


# --- Gateways -----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", GATEWAY_VERSIONS)
def test_a_gateway_of_a_class_not_allowed_is_denied_naming_the_allowed_classes(
    guard: Guard, version: str
) -> None:
    name = f"public-{version}"
    written = guard.create("enforce", gateway(name, "gw-public", version=version))
    assert not written.allowed
    assert guard.refused_by("gateway-exposure", "enforce-gateways") in written.refused_by
    assert says(written, gateway_denial(guard.namespace("enforce"), name, "gw-public")), written


@pytest.mark.parametrize("version", GATEWAY_VERSIONS)
@pytest.mark.parametrize("gateway_class", ["gw-internal", "gw-private-edge"], ids=["exact", "glob"])
def test_a_gateway_of_an_allowed_class_is_stored(
    guard: Guard, version: str, gateway_class: str
) -> None:
    name = f"{gateway_class}-{version}"
    written = guard.create("enforce", gateway(name, gateway_class, version=version))
    assert written.allowed, written
    assert not written.warnings
    assert guard.get("enforce", "Gateway", name)["spec"]["gatewayClassName"] == gateway_class


def test_mutate_denies_a_gateway_saying_nothing_converts_it(guard: Guard) -> None:
    written = guard.create("mutate", gateway("public", "gw-public"))
    assert not written.allowed
    namespace = guard.namespace("mutate")
    assert say.GATEWAY_IN_MUTATE.format(namespace=namespace, label="clusterip-guard.io/mode") in (
        written.message
    ), written


def test_audit_stores_a_gateway_of_a_class_not_allowed_with_a_warning(guard: Guard) -> None:
    written = guard.create("audit", gateway("public", "gw-public"))
    assert written.allowed, written
    assert written.warned(say.GATEWAY_CLASS.format(gateway_class="gw-public")), written.warnings
    assert guard.get("audit", "Gateway", "public")["spec"]["gatewayClassName"] == "gw-public"


def test_a_gateway_exemption_is_by_kind(guard: Guard) -> None:
    """The exemption for Gateways named exempt-* lets one through, with a warning naming it;
    a route of that name is not a Gateway, and it is denied."""
    written = guard.create("enforce", gateway("exempt-edge", "gw-public"))
    assert written.allowed, written
    assert written.warned("is exposed but allowed by"), written.warnings
    routed = guard.create("enforce", route("GRPCRoute", "exempt-edge", [parent("public")]))
    assert not routed.allowed


# --- routes, every kind at every version ---------------------------------------------------------


@pytest.mark.parametrize(("kind", "version"), ROUTE_KIND_VERSIONS)
def test_a_route_is_denied_for_each_parent_outside_the_allowed_gateways(
    guard: Guard, kind: str, version: str
) -> None:
    """The parent's namespace defaults to the route's; written out, it is that namespace; a
    sectionName or a port picks a listener of that same Gateway, still not an allowed one; a
    parent of another kind is not the allowed Gateway of its name."""
    namespace = guard.namespace("enforce")
    name = f"{kind.lower()}-{version}-out"
    attempts = [
        ([parent("public")], f"{namespace}/public"),
        ([parent("internal", namespace=namespace)], f"{namespace}/internal"),
        ([parent("public", namespace=INFRA, section="https", port=443)], f"{INFRA}/public"),
        ([parent("internal", namespace=INFRA), parent("public", namespace=INFRA)],
         f"{INFRA}/public"),
        # Another kind of parent, named as the allowed Gateway: not that Gateway.
        ([parent("internal", namespace=INFRA, kind="ListenerSet")],
         f"ListenerSet {INFRA}/internal"),
    ]  # fmt: skip
    for parents, refused in attempts:
        written = guard.create("enforce", route(kind, name, parents, version=version))
        assert not written.allowed, (parents, written)
        assert guard.refused_by("gateway-exposure", "enforce-routes") in written.refused_by
        index = len(parents) - 1
        assert says(written, route_denial(kind, namespace, name, index, refused)), written


@pytest.mark.parametrize(("kind", "version"), ROUTE_KIND_VERSIONS)
def test_a_route_to_an_allowed_gateway_or_a_service_is_stored(
    guard: Guard, kind: str, version: str
) -> None:
    """An allowed Gateway (exactly, by a glob, on any of its listeners), a Service (mesh
    routing), or no parent at all: stored, without a word."""
    attempts = {
        "exact": [parent("internal", namespace=INFRA)],
        "glob": [parent("private-edge", namespace=INFRA)],
        "listener": [parent("internal", namespace=INFRA, section="https", port=443)],
        "mesh": [service_parent("web")],
        "both": [parent("internal", namespace=INFRA), service_parent("web")],
        "none": None,
    }
    for case, parents in attempts.items():
        name = f"{kind.lower()}-{version}-{case}"
        written = guard.create("enforce", route(kind, name, parents, version=version))
        assert written.allowed, (case, written)
        assert not written.warnings, (case, written.warnings)
        stored = guard.get("enforce", kind, name, version)
        assert stored["spec"].get("parentRefs", []) == [
            {"group": GROUP, "kind": "Gateway", **p} if "kind" not in p else p
            for p in parents or []
        ]


@pytest.mark.parametrize(("kind", "version"), ROUTE_KIND_VERSIONS)
def test_mutate_denies_a_route_saying_nothing_converts_it_and_audit_warns(
    guard: Guard, kind: str, version: str
) -> None:
    name = f"{kind.lower()}-{version}"
    written = guard.create("mutate", route(kind, name, [parent("public")], version=version))
    assert not written.allowed
    in_mutate = say.ROUTE_IN_MUTATE.format(
        namespace=guard.namespace("mutate"), label="clusterip-guard.io/mode"
    )
    assert in_mutate in written.message, written
    audited = guard.create("audit", route(kind, name, [parent("public")], version=version))
    assert audited.allowed, audited
    parent_said = say.ROUTE_PARENT.format(parent=f"Gateway {guard.namespace('audit')}/public")
    assert audited.warned(parent_said), audited.warnings


@pytest.mark.parametrize(("kind", "version"), ROUTE_KIND_VERSIONS)
def test_an_update_adding_a_parent_is_denied_and_one_keeping_its_parents_is_warned(
    guard: Guard, kind: str, version: str
) -> None:
    """The legacy route was attached to Gateway `public` before the namespace was governed: a
    change that keeps that parent (a label, a listener of it, an allowed Gateway beside it) is
    allowed with a warning; one that adds another parent is judged as a CREATE."""
    namespace = guard.namespace("enforce")
    name = legacy_name(kind, version)
    kept = say.EXISTING_KEPT.format(
        field="spec.parentRefs[0]",
        summary=say.ROUTE_PARENT.format(parent=f"Gateway {namespace}/public"),
    )
    relabelled = route(kind, name, [parent("public")], version=version)
    relabelled["metadata"]["labels"] = {"team": "shop"}
    written = guard.replace("enforce", relabelled)
    assert written.allowed, written
    assert written.warned(kept), written.warnings
    beside = route(kind, name, [parent("public"), parent("internal", namespace=INFRA)],
                   version=version)  # fmt: skip
    written = guard.replace("enforce", beside)
    assert written.allowed, written
    assert written.warned(kept), written.warnings
    added = route(kind, name, [parent("public"), parent("internal", namespace=INFRA),
                               parent("other")], version=version)  # fmt: skip
    written = guard.replace("enforce", added)
    assert not written.allowed
    assert says(written, route_denial(kind, namespace, name, 2, f"{namespace}/other")), written
    stored = guard.get("enforce", kind, name, version)
    assert [p["name"] for p in stored["spec"]["parentRefs"]] == ["public", "internal"]


def test_a_route_exemption_is_by_kind(guard: Guard) -> None:
    """The exemption names HTTPRoutes: an HTTPRoute named exempt-* is let through with a
    warning naming it, a GRPCRoute of that name is denied."""
    written = guard.create("enforce", route("HTTPRoute", "exempt-vendor", [parent("public")]))
    assert written.allowed, written
    assert written.warned("is exposed but allowed by"), written.warnings
    denied = guard.create("enforce", route("GRPCRoute", "exempt-vendor", [parent("public")]))
    assert not denied.allowed


# --- the status subresource ----------------------------------------------------------------------

ACCEPTED = {"type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
            "lastTransitionTime": "2026-01-01T00:00:00Z"}  # fmt: skip


def with_status(manifest: dict[str, Any], *parents: dict[str, Any]) -> dict[str, Any]:
    """The route with the status a Gateway controller writes: accepted by each parent."""
    body: dict[str, Any] = json.loads(json.dumps(manifest))
    body["status"] = {"parents": [{"parentRef": p, "controllerName": "example.com/gateway",
                                   "conditions": [ACCEPTED]} for p in parents]}  # fmt: skip
    return body


@pytest.mark.parametrize(("kind", "version"), ROUTE_KIND_VERSIONS)
def test_status_writes_are_judged_and_cannot_attach_a_route(
    guard: Guard, kind: str, version: str
) -> None:
    """A write through <routes>/status keeps the route's spec (the API server takes only its
    status): a parent added there is never stored; a controller's status write on a legacy
    route is judged as an UPDATE that keeps its parent (allowed with the warning)."""
    namespace = guard.namespace("enforce")
    name = f"{kind.lower()}-{version}-status"
    allowed = [parent("internal", namespace=INFRA)]
    assert guard.create("enforce", route(kind, name, allowed, version=version)).allowed
    smuggled = route(kind, name, [*allowed, parent("public")], version=version)
    written = guard.replace("enforce", with_status(smuggled, allowed[0]), status=True)
    assert written.allowed, written
    stored = guard.get("enforce", kind, name, version)
    assert [p["name"] for p in stored["spec"]["parentRefs"]] == ["internal"]
    assert stored["status"]["parents"][0]["controllerName"] == "example.com/gateway"
    legacy = route(kind, legacy_name(kind, version), [parent("public")], version=version)
    written = guard.replace("enforce", with_status(legacy, parent("public")), status=True)
    assert written.allowed, written
    kept = say.EXISTING_KEPT.format(
        field="spec.parentRefs[0]",
        summary=say.ROUTE_PARENT.format(parent=f"Gateway {namespace}/public"),
    )
    assert written.warned(kept), written.warnings


def test_without_a_guard_the_api_server_stores_every_parent(kubectl: Kubectl) -> None:
    """What the guard keeps out is a real door: ungoverned, the API server stores a route of
    every kind attached to any Gateway, and a Gateway of any class."""
    namespace = "gw-open"
    kubectl("create", "namespace", namespace)
    try:
        for kind, version in ROUTE_KIND_VERSIONS:
            manifest = route(kind, f"{kind.lower()}-{version}", [parent("public")], version=version)
            run = kubectl("-n", namespace, "create", "-f", "-", stdin=json.dumps(manifest),
                          check=False)  # fmt: skip
            assert run.returncode == 0, run.stderr
        kubectl(
            "-n", namespace, "create", "-f", "-", stdin=json.dumps(gateway("public", "gw-public"))
        )
    finally:
        kubectl("-n", namespace, "delete", ",".join(
            f"{kind.lower()}s.{GROUP}" for kind in ("Gateway", *ROUTE_VERSIONS)
        ), "--all", "--wait=false", check=False)  # fmt: skip
