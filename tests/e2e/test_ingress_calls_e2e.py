"""What reaches the webhook engine for Ingresses, on the real API server (docs/design.md,
"What bootstrap registers"): registered by `bootstrap --policy-file`, as the chart's bootstrap
Job registers it, its match condition leaves Ingresses of the exact allowed classes out of its
calls, counted by the API server's own metrics and by the server's; a write through
ingresses/status is judged.

Namespaces and objects are named `ing-*`, this suite's own (tests/e2e/test_ingresses_e2e.py's
native policies would judge them first: a module of its own, so they are gone).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcluster import ControlPlane
from tests.e2e.test_admission_e2e import run_bootstrap
from tests.e2e.test_ingresses_e2e import annotate_through_status, ingress
from tests.support.kubectl import Kubectl
from tests.support.polling import until
from tests.support.webhook_process import CertificateFiles, WebhookProcess, free_port

pytestmark = pytest.mark.e2e

WEBHOOK_NAME = "ing-webhook"
CALLS_NAMESPACE = "ing-calls"
ENFORCE_ENTRY = "enforce-ingresses.clusterip-guard.io"
# The API server's count of calls to each webhook, by its entry's name.
CALLS_METRIC = "apiserver_admission_webhook_admission_duration_seconds_count"


@pytest.fixture(scope="module")
def webhook(
    control_plane: ControlPlane, kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebhookProcess]:
    """The webhook engine, registered from the policy file (allowing `ing-internal`), and an
    enforce namespace of its own."""
    files = CertificateFiles(tmp_path_factory.mktemp("ing-webhook"))
    policy: Path = files.folder / "policy.yaml"
    policy.parent.mkdir(parents=True, exist_ok=True)
    policy.write_text("allowedIngressClasses: [ing-internal, ing-private-*]\n")
    port = free_port()
    registration = ("--url", f"https://127.0.0.1:{port}", "--cert-dir", str(files.folder),
                    "--ip", "127.0.0.1")  # fmt: skip
    run = run_bootstrap(control_plane, *registration, "--policy-file", str(policy),
                        name=WEBHOOK_NAME)  # fmt: skip
    assert run.returncode == 0, run.stderr
    process = WebhookProcess(files, policy_file=policy, port=port).start()
    kubectl("create", "namespace", CALLS_NAMESPACE)
    kubectl("label", "namespace", CALLS_NAMESPACE, "clusterip-guard.io/mode=enforce")
    try:
        assert until(
            lambda: not create_in(kubectl, CALLS_NAMESPACE, "ing-probe", "ing-public",
                                  "--dry-run=server"),
            timeout=60,
        )  # fmt: skip
        yield process
    finally:
        process.stop()
        run_bootstrap(control_plane, *registration, "--uninstall", name=WEBHOOK_NAME)
        kubectl("-n", CALLS_NAMESPACE, "delete", "ingresses", "--all", "--wait=false",
                check=False)  # fmt: skip


def create_in(kubectl: Kubectl, namespace: str, name: str, ingress_class: str, *flags: str) -> bool:
    run = kubectl("-n", namespace, "create", *flags, "-f", "-", stdin=ingress(name, ingress_class),
                  check=False)  # fmt: skip
    return run.returncode == 0


def calls_to(kubectl: Kubectl, entry: str) -> float:
    """How many times the API server has called the webhook `entry` (every operation, allowed
    or rejected), from its own metrics."""
    text = kubectl("get", "--raw", "/metrics").stdout
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith(CALLS_METRIC + "{") and f'name="{entry}"' in line
    )


def test_the_registration_leaves_out_the_exact_allowed_classes(
    webhook: WebhookProcess, kubectl: Kubectl
) -> None:
    """`bootstrap --policy-file` (the chart's bootstrap Job) lists the policy's exact classes,
    not its globs: an Ingress of a class only a glob allows is sent, and allowed."""
    registered = json.loads(
        kubectl("get", "validatingwebhookconfiguration", WEBHOOK_NAME, "-o", "json").stdout
    )
    (entry,) = [w for w in registered["webhooks"] if w["name"] == ENFORCE_ENTRY]
    expression = entry["matchConditions"][0]["expression"]
    assert "c in ['ing-internal']" in expression
    before = calls_to(kubectl, ENFORCE_ENTRY)
    assert create_in(kubectl, CALLS_NAMESPACE, "ing-globbed", "ing-private-web")
    assert calls_to(kubectl, ENFORCE_ENTRY) == before + 1


def test_a_compliant_ingress_write_costs_no_webhook_call(
    webhook: WebhookProcess, kubectl: Kubectl
) -> None:
    """Created, relabelled, annotated: an Ingress of an allowed class never reaches the webhook,
    by the API server's count and by the server's own; one of another class does."""
    before, answered = calls_to(kubectl, ENFORCE_ENTRY), webhook.reviews_answered()
    assert create_in(kubectl, CALLS_NAMESPACE, "ing-quiet", "ing-internal")
    kubectl("-n", CALLS_NAMESPACE, "label", "ingress", "ing-quiet", "tier=web")
    kubectl("-n", CALLS_NAMESPACE, "annotate", "ingress", "ing-quiet", "team=shop")
    assert calls_to(kubectl, ENFORCE_ENTRY) == before
    assert webhook.reviews_answered() == answered
    assert not create_in(kubectl, CALLS_NAMESPACE, "ing-loud", "ing-public", "--dry-run=server")
    assert calls_to(kubectl, ENFORCE_ENTRY) == before + 1
    assert webhook.reviews_answered() == answered + 1


def test_a_write_through_ingresses_status_is_judged_by_the_webhook(
    webhook: WebhookProcess, kubectl: Kubectl
) -> None:
    assert create_in(kubectl, CALLS_NAMESPACE, "ing-status", "ing-internal")
    before = calls_to(kubectl, ENFORCE_ENTRY)
    run = annotate_through_status(kubectl, CALLS_NAMESPACE, "ing-status")
    assert run.returncode != 0
    assert f'admission webhook "{ENFORCE_ENTRY}" denied the request' in run.stderr
    assert "metadata.annotations[kubernetes.io/ingress.class]: ingress class ing-public" in (
        run.stderr
    )
    assert calls_to(kubectl, ENFORCE_ENTRY) == before + 1
    # Without a guard in the way, the API server stores it: the status write is a real door.
    outside = "ing-status-ungoverned"
    kubectl("create", "namespace", outside)
    try:
        assert create_in(kubectl, outside, "ing-status", "ing-internal")
        taken = annotate_through_status(kubectl, outside, "ing-status")
        assert taken.returncode == 0, taken.stderr
        stored = kubectl(
            "-n",
            outside,
            "get",
            "ingress",
            "ing-status",
            "-o",
            "jsonpath={.metadata.annotations.kubernetes\\.io/ingress\\.class}",
        )
        assert stored.stdout == "ing-public"
    finally:
        kubectl("-n", outside, "delete", "ingresses", "--all", "--wait=false", check=False)


def test_a_policy_the_bootstrap_cannot_read_costs_calls_never_a_renewal(
    webhook: WebhookProcess, control_plane: ControlPlane, kubectl: Kubectl, tmp_path: Path
) -> None:
    """A broken edit of the policy (the chart's renewal CronJob reads the ConfigMap): the
    bootstrap still runs, and registers no class, so every Ingress is sent and judged by the
    server's last good policy. (Last in this module: it puts the registration back.)"""
    broken = tmp_path / "policy.yaml"
    broken.write_text("allowedIngressClasses: [Not A Class]\n")
    registration = ("--url", f"https://127.0.0.1:{webhook.port}", "--cert-dir",
                    str(webhook.files.folder), "--ip", "127.0.0.1")  # fmt: skip
    run = run_bootstrap(control_plane, *registration, "--policy-file", str(broken),
                        name=WEBHOOK_NAME)  # fmt: skip
    try:
        assert run.returncode == 0, run.stderr
        assert "registered without its allowed ingress classes" in run.stdout
        before = calls_to(kubectl, ENFORCE_ENTRY)

        def sent() -> bool:
            create_in(kubectl, CALLS_NAMESPACE, "ing-sent", "ing-internal", "--dry-run=server")
            return calls_to(kubectl, ENFORCE_ENTRY) > before

        assert until(sent, timeout=30)  # the new registration reaches admission a moment later
        assert create_in(kubectl, CALLS_NAMESPACE, "ing-sent", "ing-internal")  # and allowed
    finally:
        assert webhook.policy_file is not None
        run_bootstrap(control_plane, *registration, "--policy-file", str(webhook.policy_file),
                      name=WEBHOOK_NAME)  # fmt: skip
