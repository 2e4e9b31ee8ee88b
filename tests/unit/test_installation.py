"""What an installation registers (core/installation.py): `render`, `bootstrap` and `sync`
register the same objects for the same settings, of either engine, and every object either
engine registers is named in the inventory an uninstall removes by."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from clusterip_guard.cli.render import RenderSettings, rendered_objects
from clusterip_guard.cluster import registrations
from clusterip_guard.cluster.client import RunLog
from clusterip_guard.cluster.settings import BootstrapSettings
from clusterip_guard.core import installation as installation_module
from clusterip_guard.core.installation import (
    ADMISSION_KINDS,
    SERVICE_RANGE,
    Installation,
    NotInInventory,
    installed_names,
    objects_for,
    policy_names,
)
from clusterip_guard.core.registration import ServiceTarget
from clusterip_guard.core.types import ENGINES, MODES, Engine, Manifest, Mode

INSTALLATIONS = [
    pytest.param({}, id="the defaults"),
    pytest.param(
        {
            "name": "guard",
            "namespace": "guarding",
            "default_mode": "enforce",
            "excluded_namespaces": ("ingress", "batch"),
        },
        id="a named installation guarding unlabelled namespaces",
    ),
]


def without_ca_bundle(objects: list[Manifest]) -> list[Manifest]:
    for manifest in objects:
        for webhook in manifest.get("webhooks", ()):
            webhook["clientConfig"].pop("caBundle")
    return objects


def bootstrap_settings(engine: Engine, given: dict[str, Any]) -> BootstrapSettings:
    """The bootstrap's settings for what `render` is given: its name names the Service too."""
    settings = {key: value for key, value in given.items() if key != "name"}
    if "name" in given:
        settings |= {"configuration_name": given["name"], "service_name": given["name"]}
    return BootstrapSettings(engine=engine, **settings)


@pytest.mark.parametrize("given", INSTALLATIONS)
def test_render_prints_what_the_webhook_bootstrap_registers(given: dict[str, Any]) -> None:
    rendered = rendered_objects(RenderSettings(engine="webhook", **given))
    registered = registrations.registrations_for(bootstrap_settings("webhook", given), b"")
    assert rendered == without_ca_bundle(registered)


def test_a_webhook_bootstrap_given_the_policy_leaves_out_its_exact_ingress_classes(
    tmp_path: Path,
) -> None:
    """As `render --policy-file` and the chart in cert-manager mode do: an Ingress of an exact
    allowed class costs no call. Without the policy every Ingress is sent (none skipped)."""
    policy = tmp_path / "policy.yaml"
    policy.write_text("allowedIngressClasses: [public-*, internal, edge]\n")
    rendered = rendered_objects(RenderSettings(engine="webhook", policy_file=policy))
    settings = BootstrapSettings(engine="webhook", policy_file=policy)
    registered = registrations.registrations_for(settings, b"")
    assert rendered == without_ca_bundle(registered)
    unknowing = registrations.registrations_for(BootstrapSettings(engine="webhook"), b"")
    for given, listed in ((registered, "['edge', 'internal']"), (unknowing, "[]")):
        conditions = [
            webhook["matchConditions"][0]["expression"]
            for manifest in given[:2]
            for webhook in manifest["webhooks"]
            if "-ingresses" in webhook["name"]
        ]
        assert conditions
        assert all(f"!(c in {listed})" in condition for condition in conditions)


def test_a_webhook_bootstrap_given_the_policy_leaves_out_its_exact_gateway_classes_and_gateways(
    tmp_path: Path,
) -> None:
    """As for Ingresses: a Gateway of an exact allowed class, and a route whose every parent
    is an exact allowed Gateway (or a Service), cost no call; globs are not listed."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "allowedGatewayClasses: [public-*, internal]\n"
        "allowedGateways: [infra/internal, 'team-*/edge', infra/lan]\n"
    )
    rendered = rendered_objects(RenderSettings(engine="webhook", policy_file=policy))
    registered = registrations.registrations_for(
        BootstrapSettings(engine="webhook", policy_file=policy), b""
    )
    assert rendered == without_ca_bundle(registered)
    unknowing = registrations.registrations_for(BootstrapSettings(engine="webhook"), b"")
    for given, subject, listed in (
        (registered, "-gateways", "!(c in ['internal'])"),
        (registered, "-routes", "in ['infra/internal', 'infra/lan']"),
        (unknowing, "-gateways", "!(c in [])"),
        (unknowing, "-routes", "in []"),
    ):
        conditions = [
            webhook["matchConditions"][0]["expression"]
            for manifest in given[:2]
            for webhook in manifest["webhooks"]
            if subject in webhook["name"]
        ]
        assert conditions
        assert all(listed in condition for condition in conditions)


@pytest.mark.parametrize("given", INSTALLATIONS)
def test_render_prints_what_the_native_bootstrap_and_sync_register(
    given: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registrations, "serves_native_policies", lambda api: None)
    monkeypatch.setattr(registrations, "serves_service_cidrs", lambda api: True)
    rendered = rendered_objects(RenderSettings(engine="native", **given))
    settings = bootstrap_settings("native", given)
    api = client.ApiClient()  # asked nothing: what it serves is given above
    assert registrations.native_registrations(api, settings, RunLog()) == rendered


def every_registration() -> list[tuple[Engine, list[Manifest]]]:
    """What either engine registers, in every default mode, with ServiceCIDR and without."""
    return [
        (engine, objects_for(engine, installation("x", mode, service_cidrs)))
        for engine in ENGINES
        for mode in MODES
        for service_cidrs in (True, False)
    ]


def installation(name: str, default_mode: Mode = "off", service_cidrs: bool = True) -> Installation:
    return Installation(
        name=name,
        service=ServiceTarget("guarding", name),
        default_mode=default_mode,
        service_cidrs=service_cidrs,
    )


def test_an_uninstall_removes_every_object_either_engine_registers_in_any_default_mode() -> None:
    inventory = {(kind, name) for kind in ADMISSION_KINDS for name in installed_names(kind, "x")}
    registered = {
        (manifest["kind"], manifest["metadata"]["name"])
        for _, objects in every_registration()
        for manifest in objects
    }
    assert registered <= inventory
    # Beyond them: the bindings of builds before 0.2.0 (one per entry), removed too.
    assert {kind for kind, _ in inventory - registered} == {
        "MutatingAdmissionPolicyBinding", "ValidatingAdmissionPolicyBinding",
    }  # fmt: skip


def test_each_engines_writer_may_write_every_policy_and_binding_it_registers() -> None:
    for engine, objects in every_registration():
        written = {m["metadata"]["name"] for m in objects if "Webhook" not in m["kind"]}
        assert written <= set(policy_names(engine, "x"))


@pytest.mark.parametrize("engine", ENGINES)
def test_no_service_range_policy_where_the_api_server_serves_no_service_cidr(
    engine: Engine,
) -> None:
    served = objects_for(engine, installation("x"))
    not_served = objects_for(engine, installation("x", service_cidrs=False))
    service_range = {SERVICE_RANGE.name("x"), *SERVICE_RANGE.binding_names("x")}
    assert [m for m in served if m["metadata"]["name"] not in service_range] == not_served
    assert len(served) > len(not_served)


def test_an_object_the_inventory_does_not_name_is_never_registered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def with_a_stray(**kwargs: Any) -> list[Manifest]:
        stray = {"kind": "ValidatingAdmissionPolicy", "metadata": {"name": "x-forgotten"}}
        return [stray]

    monkeypatch.setattr(installation_module, "companion_policies", with_a_stray)
    with pytest.raises(NotInInventory, match="ValidatingAdmissionPolicy x-forgotten"):
        objects_for("webhook", installation("x"))


def test_a_rendering_leaves_the_ca_bundle_to_cainjector_and_a_bootstrap_fills_it() -> None:
    rendered = objects_for("webhook", installation("x"))
    bootstrapped = Installation("x", ServiceTarget("guarding", "x"), ca_bundle=b"CA")
    filled = objects_for("webhook", bootstrapped)
    assert all("caBundle" not in w["clientConfig"] for m in rendered[:2] for w in m["webhooks"])
    assert all(w["clientConfig"]["caBundle"] == "Q0E=" for m in filled[:2] for w in m["webhooks"])


def _never_judged_by_bindings(objects: list[Manifest]) -> set[str]:
    excluded: set[str] = set()
    for manifest in objects:
        resources = manifest["spec"].get("matchResources") if manifest["kind"].endswith(
            "Binding") else None  # fmt: skip
        for expression in (resources or {}).get("namespaceSelector", {}).get(
                "matchExpressions", []):  # fmt: skip
            if expression["key"] == "kubernetes.io/metadata.name":
                excluded |= set(expression["values"])
    return excluded


def test_the_native_engine_judges_its_namespace_unless_it_runs_there() -> None:
    """Nothing of the native engine runs in the webhook's namespace, and nothing says that
    namespace exists: a tenant who may create namespaces could make it and use it. Only the
    sync component, in the release's namespace, excludes it (issue 30, item 2)."""
    outside = Installation(name="guard", service=ServiceTarget("clusterip-guard", "guard"))
    native = _never_judged_by_bindings(objects_for("native", outside))
    assert "clusterip-guard" not in native
    assert {"kube-system", "kube-public", "kube-node-lease"} <= native
    inside = Installation(
        name="guard",
        service=ServiceTarget("clusterip-guard", "guard"),
        native_runs_in_namespace=True,
    )
    assert "clusterip-guard" in _never_judged_by_bindings(objects_for("native", inside))
    # The webhook runs there: its own namespace is never judged, or it could lock itself out.
    assert "clusterip-guard" in _never_judged_by_bindings(objects_for("webhook", outside))
