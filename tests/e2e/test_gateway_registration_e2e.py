"""Registration before Gateway API exists (docs/design.md, "What bootstrap registers"): the
webhook entries for Gateways and routes, and the native engine's policies, name resources the
API server does not serve yet; it accepts them, and they judge Gateways and routes from the
moment the CRDs are installed, with nothing registered again.

A control plane of its own: the shared one has the CRDs from the first suite that needs them
(tests/e2e/conftest.py, `gateway_api`), and a CRD cannot be taken away from the suites that
rely on it. The order is the test's own: register both engines, then install the CRDs, then
write in namespaces made after that.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clusterip_guard.core.names import MODE_LABEL
from clusterip_guard.core.native import native_objects
from clusterip_guard.core.registration import never_judged_namespaces
from clusterip_guard.policyfile import parse_policy
from clusterip_guard.yamltext import dump_yaml_documents
from localcluster import start
from tests.e2e.test_admission_e2e import run_bootstrap
from tests.support.gateway_api import (
    ROUTE_VERSIONS,
    gateway,
    install_crds,
    parent,
    route,
    served,
)
from tests.support.kubectl import Kubectl
from tests.support.polling import until
from tests.support.webhook_process import CertificateFiles, WebhookProcess, free_port

pytestmark = pytest.mark.e2e

NAME = "gw-early"
POLICY = """\
allowedGatewayClasses: [gw-internal]
allowedGateways: [gw-infra/internal]
"""
# The native engine's policies select namespaces by a label key of their own here, so that
# each engine is seen judging alone beside the other.
NATIVE_LABEL = "gw-native.clusterip-guard.io/mode"


def refused(kubectl: Kubectl, namespace: str, manifest: dict[str, object]) -> str:
    """The refusal of a server dry run of `manifest` ("" if it was admitted)."""
    run = kubectl("-n", namespace, "create", "--dry-run=server", "-f", "-",
                  stdin=json.dumps(manifest), check=False)  # fmt: skip
    return run.stderr if run.returncode != 0 else ""


@pytest.mark.usefixtures("native_engine_served")
def test_entries_registered_before_the_crds_judge_once_they_are_installed(tmp_path: Path) -> None:
    with start(tmp_path / "plane", audit_log=False) as plane:
        kubectl = Kubectl(plane.kubeconfig)
        assert served(kubectl) == {}  # no Gateway API here yet
        policy_file = tmp_path / "policy.yaml"
        policy_file.write_text(POLICY)

        # 1. Register: the webhook engine from the policy file, and the native engine's
        # objects, each accepted by an API server that serves none of the resources they name.
        files = CertificateFiles(tmp_path / "certs")
        port = free_port()
        run = run_bootstrap(plane, "--url", f"https://127.0.0.1:{port}", "--cert-dir",
                            str(files.folder), "--ip", "127.0.0.1", "--policy-file",
                            str(policy_file), name=NAME)  # fmt: skip
        assert run.returncode == 0, run.stderr
        configuration = json.loads(
            kubectl("get", "validatingwebhookconfiguration", NAME, "-o", "json").stdout
        )
        rules = {
            entry["name"]: sorted(r for rule in entry["rules"] for r in rule["resources"])
            for entry in configuration["webhooks"]
        }
        assert rules["enforce-gateways.clusterip-guard.io"] == ["gateways", "gateways/status"]
        routes = sorted(
            f"{kind.lower()}s{sub}" for kind in ROUTE_VERSIONS for sub in ("", "/status")
        )
        assert rules["enforce-routes.clusterip-guard.io"] == routes
        objects = native_objects(parse_policy(POLICY), name=f"{NAME}-native",
                                 never_judged=never_judged_namespaces())  # fmt: skip
        text = json.dumps(objects).replace(MODE_LABEL, NATIVE_LABEL)
        kubectl("apply", "-f", "-", stdin=dump_yaml_documents(json.loads(text)))
        policies = kubectl("get", "validatingadmissionpolicies", "-o", "name").stdout.split()
        assert (
            f"validatingadmissionpolicy.admissionregistration.k8s.io/{NAME}-native-gateway-exposure"
            in policies
        )
        webhook = WebhookProcess(files, port=port, policy_file=policy_file).start()
        try:
            # 2. The CRDs, after the registration.
            assert served(kubectl) == {}
            install_crds(kubectl)

            # 3. Writes, in namespaces made after that, each governed by one engine.
            for namespace, label in (("gw-webhook", MODE_LABEL), ("gw-native", NATIVE_LABEL)):
                kubectl("create", "namespace", namespace)
                kubectl("label", "namespace", namespace, f"{label}=enforce")
            public = route("HTTPRoute", "web", [parent("public")])
            by_webhook = 'admission webhook "enforce-routes.clusterip-guard.io" denied'
            by_native = f"ValidatingAdmissionPolicy '{NAME}-native-gateway-exposure'"
            # (the label reaches admission's namespace informer a moment later)
            assert until(lambda: by_webhook in refused(kubectl, "gw-webhook", public), timeout=60)
            assert until(lambda: by_native in refused(kubectl, "gw-native", public), timeout=60)
            for namespace, by in (("gw-webhook", by_webhook), ("gw-native", by_native)):
                for kind in ROUTE_VERSIONS:
                    said = refused(kubectl, namespace, route(kind, "web", [parent("public")]))
                    assert by in said, (kind, said)
                    assert "is not an allowed Gateway" in said
                    allowed = route(kind, "web", [parent("internal", namespace="gw-infra")])
                    assert not refused(kubectl, namespace, allowed), kind
                said = refused(kubectl, namespace, gateway("edge", "gw-public"))
                assert "gateway class gw-public is not an allowed class" in said
                assert not refused(kubectl, namespace, gateway("edge", "gw-internal"))
            # Nothing was registered again: the objects are those made before the CRDs.
            assert (
                json.loads(
                    kubectl("get", "validatingwebhookconfiguration", NAME, "-o", "json").stdout
                )["metadata"]["resourceVersion"]
                == configuration["metadata"]["resourceVersion"]
            )
        finally:
            webhook.stop()
