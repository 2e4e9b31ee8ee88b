"""What reaches the webhook engine for Gateways and routes, on the real API server
(docs/design.md, "What bootstrap registers"): registered by `bootstrap --policy-file`, as the
chart's bootstrap Job registers it, the match conditions of `enforce-gateways` and
`enforce-routes` leave out a Gateway of an exactly allowed class and a route whose every parent
is an exactly allowed Gateway or a Service, counted by the API server's own metrics and by the
server's. What only a glob allows is sent, and allowed.

Namespaces and objects are named `gw-*`, this suite's own (tests/e2e/test_gateways_e2e.py's
engines are gone by the time this module runs: each uninstalls its own).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from localcluster import ControlPlane
from tests.e2e.test_admission_e2e import run_bootstrap
from tests.e2e.test_ingress_calls_e2e import calls_to
from tests.support.gateway_api import (
    GROUP,
    ROUTE_KIND_VERSIONS,
    ROUTE_VERSIONS,
    gateway,
    parent,
    route,
    service_parent,
)
from tests.support.kubectl import Kubectl
from tests.support.polling import until
from tests.support.webhook_process import CertificateFiles, WebhookProcess, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("gateway_api")]

WEBHOOK_NAME = "gw-calls-webhook"
NAMESPACE = "gw-calls"
INFRA = "gw-infra"
GATEWAYS_ENTRY = "enforce-gateways.clusterip-guard.io"
ROUTES_ENTRY = "enforce-routes.clusterip-guard.io"
POLICY = f"""\
allowedGatewayClasses: [gw-internal, "gw-private-*"]
allowedGateways: [{INFRA}/internal, "{INFRA}/private-*"]
"""


def create(kubectl: Kubectl, manifest: dict[str, Any], *flags: str) -> bool:
    run = kubectl("-n", NAMESPACE, "create", *flags, "-f", "-", stdin=json.dumps(manifest),
                  check=False)  # fmt: skip
    return run.returncode == 0


@pytest.fixture(scope="module")
def webhook(
    control_plane: ControlPlane, kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebhookProcess]:
    """The webhook engine, registered from the policy file, and an enforce namespace."""
    files = CertificateFiles(tmp_path_factory.mktemp("gw-calls"))
    policy = files.folder / "policy.yaml"
    policy.parent.mkdir(parents=True, exist_ok=True)
    policy.write_text(POLICY)
    port = free_port()
    registration = ("--url", f"https://127.0.0.1:{port}", "--cert-dir", str(files.folder),
                    "--ip", "127.0.0.1")  # fmt: skip
    run = run_bootstrap(control_plane, *registration, "--policy-file", str(policy),
                        name=WEBHOOK_NAME)  # fmt: skip
    assert run.returncode == 0, run.stderr
    process = WebhookProcess(files, policy_file=policy, port=port).start()
    kubectl("create", "namespace", NAMESPACE)
    kubectl("label", "namespace", NAMESPACE, "clusterip-guard.io/mode=enforce")
    try:
        probe = route("HTTPRoute", "gw-probe", [parent("public")])
        assert until(lambda: not create(kubectl, probe, "--dry-run=server"), timeout=60)
        probe = gateway("gw-probe", "gw-public")
        assert until(lambda: not create(kubectl, probe, "--dry-run=server"), timeout=60)
        yield process
    finally:
        process.stop()
        run_bootstrap(control_plane, *registration, "--uninstall", name=WEBHOOK_NAME)
        kinds = ",".join(f"{kind.lower()}s.{GROUP}" for kind in ("Gateway", *ROUTE_VERSIONS))
        kubectl("-n", NAMESPACE, "delete", kinds, "--all", "--wait=false", check=False)


def registered_condition(kubectl: Kubectl, entry: str) -> str:
    registered = json.loads(
        kubectl("get", "validatingwebhookconfiguration", WEBHOOK_NAME, "-o", "json").stdout
    )
    (found,) = [w for w in registered["webhooks"] if w["name"] == entry]
    return " ".join(condition["expression"] for condition in found["matchConditions"])


def test_the_registration_names_the_exact_allowed_classes_and_gateways_not_the_globs(
    webhook: WebhookProcess, kubectl: Kubectl
) -> None:
    gateways = registered_condition(kubectl, GATEWAYS_ENTRY)
    assert "'gw-internal'" in gateways
    assert "gw-private" not in gateways
    routes = registered_condition(kubectl, ROUTES_ENTRY)
    assert "internal" in routes
    assert "private" not in routes


def test_a_compliant_gateway_costs_no_webhook_call_and_a_globbed_one_one(
    webhook: WebhookProcess, kubectl: Kubectl
) -> None:
    """Created, relabelled, annotated: a Gateway of the exact allowed class never reaches the
    webhook, by the API server's count and by the server's own; one of a class only a glob
    allows is sent, and allowed; one of another class is sent, and denied."""
    before, answered = calls_to(kubectl, GATEWAYS_ENTRY), webhook.reviews_answered()
    assert create(kubectl, gateway("gw-quiet", "gw-internal"))
    kubectl("-n", NAMESPACE, "label", f"gateways.{GROUP}", "gw-quiet", "tier=edge")
    kubectl("-n", NAMESPACE, "annotate", f"gateways.{GROUP}", "gw-quiet", "team=platform")
    assert calls_to(kubectl, GATEWAYS_ENTRY) == before
    assert webhook.reviews_answered() == answered
    assert create(kubectl, gateway("gw-globbed", "gw-private-edge"))
    assert calls_to(kubectl, GATEWAYS_ENTRY) == before + 1
    assert not create(kubectl, gateway("gw-loud", "gw-public"), "--dry-run=server")
    assert calls_to(kubectl, GATEWAYS_ENTRY) == before + 2
    assert webhook.reviews_answered() == answered + 2


@pytest.mark.parametrize(("kind", "version"), ROUTE_KIND_VERSIONS)
def test_a_compliant_route_costs_no_webhook_call(
    webhook: WebhookProcess, kubectl: Kubectl, kind: str, version: str
) -> None:
    """A route to the exactly allowed Gateway (on any listener), to a Service, to both, or to
    nothing, created and relabelled, never reaches the webhook; one to a Gateway only a glob
    allows is sent (and allowed), one to another Gateway is sent (and denied)."""
    name = f"{kind.lower()}-{version}"
    quiet = {
        "gateway": [parent("internal", namespace=INFRA)],
        "listener": [parent("internal", namespace=INFRA, section="https", port=443)],
        "mesh": [service_parent("web")],
        "both": [parent("internal", namespace=INFRA), service_parent("web")],
        "none": None,
    }
    before, answered = calls_to(kubectl, ROUTES_ENTRY), webhook.reviews_answered()
    for case, parents in quiet.items():
        assert create(kubectl, route(kind, f"{name}-{case}", parents, version=version)), case
        kubectl("-n", NAMESPACE, "label", f"{kind.lower()}s.{GROUP}", f"{name}-{case}", "tier=web")
    assert calls_to(kubectl, ROUTES_ENTRY) == before
    assert webhook.reviews_answered() == answered
    globbed = [parent("private-edge", namespace=INFRA)]
    assert create(kubectl, route(kind, f"{name}-globbed", globbed, version=version))
    assert calls_to(kubectl, ROUTES_ENTRY) == before + 1
    loud = route(kind, f"{name}-loud", [parent("public")], version=version)
    assert not create(kubectl, loud, "--dry-run=server")
    assert calls_to(kubectl, ROUTES_ENTRY) == before + 2
    assert webhook.reviews_answered() == answered + 2
