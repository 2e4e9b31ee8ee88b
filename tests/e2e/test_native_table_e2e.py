"""Every row of the decision table (tests/unit/test_decision.py, the rows of docs/design.md,
"Modes, per namespace") the API server can store (NOT_SERVED: a Gateway API version its CRDs
do not serve) through both engines on the real API server: each row with its own
policy, in a namespace of its own labelled with its mode, must get the same verdict, the same
denial message and the same stored object from the webhook and from the native engine, and the
webhook's must be the row's verdict.

The rows carry eight policies. The webhook runs them in turn from one policy file, and a row is
written only once the server says it has loaded its policy (its reload counter). The native
engine has each policy rendered at once, side by side, each selecting namespaces by a mode
label of its own (`table-N.clusterip-guard.io/mode`), so no policy ever changes under a row.
A row's namespace name ("shop", "other") is what its exemptions name: it becomes
`<engine>-r<row>-shop`, and an exemption for namespace `shop` becomes one for `*-shop`. The
rows of the never-judged namespaces (kube-system, ...) write there, labelled with their mode.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client

from clusterip_guard.core.names import MODE_LABEL, NEVER_JUDGED_NAMESPACES
from clusterip_guard.core.native import native_objects
from clusterip_guard.core.policy import Exemption, PolicySettings
from clusterip_guard.core.registration import never_judged_namespaces
from clusterip_guard.policyfile import policy_from_mapping
from clusterip_guard.yamltext import dump_yaml_documents
from localcluster import ControlPlane
from tests.e2e.test_native_e2e import Case, Outcome, _call, collection, write
from tests.support.cli import clusterip_guard
from tests.support.gateway_api import (
    GATEWAY_VERSIONS,
    GROUP,
    ROUTE_KINDS,
    ROUTE_VERSIONS,
    parent,
    plural,
    route,
)
from tests.support.kubectl import Kubectl
from tests.support.polling import until
from tests.support.served import MUTATING_POLICY, ServedRelease
from tests.support.webhook_process import LOOPBACK, CertificateFiles, WebhookProcess, free_port
from tests.unit import test_decision

pytestmark = pytest.mark.e2e

GATEWAY_API_KINDS = ("Gateway", *ROUTE_KINDS)


def served_as_written(row: test_decision.Case) -> bool:
    """Whether the API server here serves the row's object at its version (Gateway API's
    v1.6.3 CRDs: not every version a kind was ever served at)."""
    group, _, version = str(row.service.get("apiVersion", "")).partition("/")
    if group != GROUP:
        return True
    kind = row.service["kind"]
    return version in (GATEWAY_VERSIONS if kind == "Gateway" else ROUTE_VERSIONS.get(kind, ()))


ROWS = [row for row in test_decision.CASES if served_as_written(row)]
# Rows written at a version no CRD here serves: the API server would answer 404 before any
# admission. Held to exactly these (tests below), so that a row is never left out unseen.
NOT_SERVED: list[str] = []  # none: "route of an older served version" is a TCPRoute v1alpha2
WEBHOOK_NAME = "table-webhook"
BULK_TIMEOUT = 300  # seconds, for kubectl to apply or delete every group's native objects


def policy_document(policy: PolicySettings) -> dict[str, Any]:
    """The policy file that says `policy` (checked by reading it back)."""
    document: dict[str, Any] = {
        "allowedExternalIPCIDRs": [str(n) for n in policy.allowed_external_ip_cidrs],
        "allowInternalLoadBalancers": policy.allow_internal_load_balancers,
        "allowInternalLoadBalancerNodePorts": policy.allow_internal_load_balancer_node_ports,
        "internalLoadBalancerProviders": list(policy.internal_load_balancer_providers),
        "internalLoadBalancerClasses": dict(policy.internal_load_balancer_classes),
        "allowExistingViolations": policy.allow_existing_violations,
        "allowedIngressClasses": list(policy.allowed_ingress_classes),
        "allowedGatewayClasses": list(policy.allowed_gateway_classes),
        "allowedGateways": [f"{namespace}/{name}" for namespace, name in policy.allowed_gateways],
        "exemptions": [
            {
                "namespace": e.namespace,
                "name": e.name,
                "reason": e.reason,
                "kind": e.kind,
                **({"expires": e.expires.isoformat()} if e.expires else {}),
            }
            for e in policy.exemptions
        ],
    }
    assert policy_from_mapping(document) == policy
    return document


def in_test_namespaces(policy: PolicySettings) -> PolicySettings:
    """The policy, with each exemption's namespace glob matching the rows' namespaces, and so
    each allowed Gateway in a row's namespace (one in another namespace, `infra`, is named as
    the rows' parentRefs name it)."""
    exemptions = tuple(
        dataclasses.replace(e, namespace=f"*-{e.namespace}") for e in policy.exemptions
    )
    rows = {row.namespace for row in ROWS} - set(NEVER_JUDGED_NAMESPACES)
    gateways = tuple(
        (f"*-{namespace}" if namespace in rows else namespace, name)
        for namespace, name in policy.allowed_gateways
    )
    return dataclasses.replace(policy, exemptions=exemptions, allowed_gateways=gateways)


def policies() -> list[PolicySettings]:
    found: list[PolicySettings] = []
    for row in ROWS:
        if row.policy not in found:
            found.append(row.policy)
    return found


def namespace_of(engine: str, index: int) -> str:
    row = ROWS[index]
    if row.namespace in NEVER_JUDGED_NAMESPACES:
        return row.namespace
    return f"{engine}-r{index}-{row.namespace}"


def case_of(index: int) -> Case:
    row = ROWS[index]
    old = _bare(row.old) if row.old is not None else None
    return Case(row.service["metadata"]["name"], _bare(row.service), old)


def _bare(service: dict[str, Any]) -> dict[str, Any]:
    """The row's object as a client writes it: no namespace (the URL says it), and for an
    ExternalName none of the defaults the table's builder fills in for every type (the API
    server refuses an ip family policy on one)."""
    copy: dict[str, Any] = json.loads(json.dumps(service))
    copy["metadata"].pop("namespace", None)
    if copy["spec"].get("type") == "ExternalName":
        copy["spec"].pop("ipFamilyPolicy", None)
    return copy


# --- each engine's run -------------------------------------------------------------------------


PROBE = Case("probe", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "probe"},
                       "spec": {"type": "NodePort", "ports": [{"port": 80}]}})  # fmt: skip


def prepare(api: client.ApiClient, kubectl: Kubectl, engine: str, label_of: Any) -> None:
    """Each row's namespace, its old Service (before it is governed), then its label: the
    never-judged namespaces first, so that once a later label is seen by admission (the
    probes), theirs is too (the API server's namespace informer sees writes in order)."""
    order = sorted(range(len(ROWS)), key=lambda i: ROWS[i].namespace not in NEVER_JUDGED_NAMESPACES)
    for index in order:
        namespace = namespace_of(engine, index)
        if namespace not in NEVER_JUDGED_NAMESPACES:
            kubectl("create", "namespace", namespace)
        old = case_of(index).old
        if old is not None:
            status, created, _ = _call(api, "POST", collection(namespace, old), old)
            assert status == 201, created.get("message")
        kubectl("label", "namespace", namespace, f"{label_of(index)}={ROWS[index].mode}",
                "--overwrite")  # fmt: skip


# A route to a Gateway no row's policy allows: the probe of a Gateway API row's namespace (the
# native engine judges those by policies of their own, which come into force on their own).
ROUTE_PROBE = Case("probe", route("HTTPRoute", "probe", [parent("nowhere")]))


def wait_until_in_force(api: client.ApiClient, engine: str, indexes: list[int]) -> None:
    """Each row's mode shows in its namespace (enforce denies, mutate converts, audit warns)."""
    for index in indexes:
        row = ROWS[index]
        if row.mode == "off" or row.namespace in NEVER_JUDGED_NAMESPACES:
            continue
        namespace = namespace_of(engine, index)
        if row.service["kind"] in GATEWAY_API_KINDS:
            wait_until_routes_judged(api, namespace, row.mode)

        def shown(namespace: str = namespace, mode: str = row.mode) -> bool:
            outcome = write(api, namespace, PROBE)
            if outcome.allowed:
                client.CoreV1Api(api).delete_namespaced_service("probe", namespace)
            converted = outcome.stored is not None and outcome.stored["spec"]["type"] == "ClusterIP"
            return {
                "enforce": not outcome.allowed,
                "mutate": converted,
                "audit": outcome.allowed and bool(outcome.warnings),
            }[mode]

        assert until(shown, timeout=60), f"{row.mode} never came into force in {namespace}"


def wait_until_routes_judged(api: client.ApiClient, namespace: str, mode: str) -> None:
    def shown() -> bool:
        outcome = write(api, namespace, ROUTE_PROBE)
        if outcome.allowed:
            _call(api, "DELETE", collection(namespace, ROUTE_PROBE.service) + "/probe")
        return not outcome.allowed if mode != "audit" else bool(outcome.warnings)

    assert until(shown, timeout=60), f"{mode} never came into force for routes in {namespace}"


def said(outcome: Outcome, engine: str, index: int, key: str) -> Outcome:
    """The outcome with the row's namespace and the engine's label key said alike."""

    def alike(text: str) -> str:
        return text.replace(key, MODE_LABEL).replace(namespace_of(engine, index), "NS")

    return dataclasses.replace(
        outcome, message=alike(outcome.message), warnings=tuple(map(alike, outcome.warnings))
    )


def reloads(webhook: WebhookProcess) -> float:
    text = httpx.get(f"http://{LOOPBACK}:{webhook.metrics_port}/metrics", timeout=5).text
    prefix = 'clusterip_guard_reloads_total{file="policy",result="reloaded"}'
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix))


def reloaded(webhook: WebhookProcess, before: float) -> bool:
    return reloads(webhook) > before


def write_policy(path: Path, policy: PolicySettings) -> None:
    """Replaced whole (a new file), so that the server sees one change, never half a file."""
    staged = path.with_suffix(".new")
    staged.write_text(json.dumps(policy_document(in_test_namespaces(policy))))
    os.replace(staged, path)


# What the rows write: Services, Ingresses, Gateways and routes.
WRITTEN = ",".join(
    ["services", "ingresses"] + [f"{plural(kind)}.{GROUP}" for kind in GATEWAY_API_KINDS]
)


def clean(kubectl: Kubectl, engine: str, label_of: Any) -> None:
    for index in range(len(ROWS)):
        namespace = namespace_of(engine, index)
        kubectl("-n", namespace, "delete", WRITTEN, "--all", "--wait=false")
        if namespace in NEVER_JUDGED_NAMESPACES:
            kubectl("label", "namespace", namespace, f"{label_of(index)}-", check=False)


@pytest.fixture(scope="module")
def outcomes(
    control_plane: ControlPlane,
    api_client: client.ApiClient,
    kubectl: Kubectl,
    served_release: ServedRelease,
    gateway_api: list[str],  # the rows' Gateways and routes are written as the CRDs take them
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, list[Outcome]]:
    groups = policies()
    group_of = [groups.index(row.policy) for row in ROWS]
    results: dict[str, list[Outcome]] = {}

    # The webhook: one policy file, each group's policy in turn.
    files = CertificateFiles(tmp_path_factory.mktemp("table-certs"))
    policy_file = files.folder / "policy.json"
    policy_file.parent.mkdir(parents=True, exist_ok=True)
    write_policy(policy_file, groups[0])
    port = free_port()
    registration = ["bootstrap", "--name", WEBHOOK_NAME, "--url", f"https://127.0.0.1:{port}",
                    "--cert-dir", str(files.folder), "--ip", "127.0.0.1"]  # fmt: skip
    run = clusterip_guard(control_plane.kubeconfig, *registration)
    assert run.returncode == 0, run.stderr
    webhook = WebhookProcess(files, port=port, policy_file=policy_file).start()
    try:
        prepare(api_client, kubectl, "webhook", lambda _: MODE_LABEL)
        by_webhook: dict[int, Outcome] = {}
        for group, policy in enumerate(groups):
            if group:
                before = reloads(webhook)
                write_policy(policy_file, policy)
                assert until(functools.partial(reloaded, webhook, before), timeout=30), (
                    webhook.logs()
                )
            members = [i for i in range(len(ROWS)) if group_of[i] == group]
            wait_until_in_force(api_client, "webhook", members)
            for index in members:
                outcome = write(api_client, namespace_of("webhook", index), case_of(index))
                by_webhook[index] = said(outcome, "webhook", index, MODE_LABEL)
        results["webhook"] = [by_webhook[i] for i in range(len(ROWS))]
    finally:
        webhook.stop()
        clusterip_guard(control_plane.kubeconfig, *registration, "--uninstall")
        clean(kubectl, "webhook", lambda _: MODE_LABEL)

    # The native engine: every group's policy at once, each with a label key of its own
    # (where the API server serves it: make test-versions runs the webhook's half on older ones).
    if not served_release.serves(MUTATING_POLICY):
        return results

    def key_of(index: int) -> str:
        return f"table-{group_of[index]}.clusterip-guard.io/mode"

    today = datetime.datetime.now(datetime.UTC).date()
    objects = []
    for group, policy in enumerate(groups):
        rendered = native_objects(
            in_test_namespaces(policy), name=f"table-{group}",
            never_judged=never_judged_namespaces(), today=today,
        )  # fmt: skip
        text = json.dumps(rendered).replace(MODE_LABEL, f"table-{group}.clusterip-guard.io/mode")
        objects += json.loads(text)
    # Every group's objects in one go: 319 of them, about a minute to apply and another to
    # delete on 2 shared cores (Gateway API's policies and bindings took it past kubectl's 60 s).
    bulk = Kubectl(kubectl.kubeconfig, timeout=BULK_TIMEOUT)
    bulk("apply", "-f", "-", stdin=dump_yaml_documents(objects))
    try:
        prepare(api_client, kubectl, "native", key_of)
        wait_until_in_force(api_client, "native", list(range(len(ROWS))))
        results["native"] = [
            said(write(api_client, namespace_of("native", i), case_of(i)), "native", i, key_of(i))
            for i in range(len(ROWS))
        ]
    finally:
        bulk("delete", "-f", "-", "--wait=false", stdin=dump_yaml_documents(objects), check=False)
        clean(kubectl, "native", key_of)
    return results


def test_the_webhook_gives_each_row_its_verdict_on_the_api_server(
    outcomes: dict[str, list[Outcome]],
) -> None:
    wrong = []
    for row, outcome in zip(ROWS, outcomes["webhook"], strict=True):
        expected = {
            "denied": not outcome.allowed,
            "allowed": outcome.allowed,
            "warned": outcome.allowed and bool(outcome.warnings),
            # What mutate changed, it says.
            "mutated": outcome.allowed and any("clusterip-guard" in w for w in outcome.warnings),
        }[row.verdict]
        if not expected:
            wrong.append(f"{row.name}: {row.verdict} expected, got {outcome}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.usefixtures("native_engine_served")
def test_both_engines_give_every_row_the_same_verdict_message_and_stored_object(
    outcomes: dict[str, list[Outcome]],
) -> None:
    differences = [
        f"{row.name}: webhook {webhook} != native {native}"
        for row, webhook, native in zip(ROWS, outcomes["webhook"], outcomes["native"], strict=True)
        if (webhook.allowed, webhook.message, webhook.stored)
        != (native.allowed, native.message, native.stored)
    ]
    assert not differences, "\n".join(differences)
    assert len(policies()) >= 8  # every policy of the table, each rendered on its own


# What the webhook says of an object it allows with a warning in every mode (core/sentences.py).
ALLOWED_WITH_A_WARNING = ("is exposed but allowed by", "existing exposure kept")


@pytest.mark.usefixtures("native_engine_served")
def test_both_engines_warn_alike_of_exempted_and_kept_ingresses(
    outcomes: dict[str, list[Outcome]],
) -> None:
    """The webhook warns once per piece (its mutating and validating entries both, in mutate);
    the native engine's Ingress warning policy once, after the API server's prefix, saying the
    same sentences. In audit the exposure itself is warned of as for Services: the webhook per
    piece, the native engine once with the denial's text (docs/installing.md, "Engines")."""
    seen = 0
    for row, webhook, native in zip(ROWS, outcomes["webhook"], outcomes["native"], strict=True):
        if row.service["kind"] != "Ingress" or not webhook.allowed:
            continue
        expected = [w for w in webhook.warnings if any(s in w for s in ALLOWED_WITH_A_WARNING)]
        warned = [w for w in native.warnings if any(s in w for s in ALLOWED_WITH_A_WARNING)]
        if row.verdict == "warned" and row.mode == "audit" and not expected:
            assert [w for w in webhook.warnings if w.startswith("audit: Ingress NS/")], row.name
            assert any("ValidatingAdmissionPolicy 'table-" in w and "-ingress-exposure'" in w
                       for w in native.warnings), (row.name, native.warnings)  # fmt: skip
        if not expected:
            assert not warned, (row.name, native.warnings)
            continue
        seen += 1
        assert len(warned) == 1, (row.name, native.warnings)
        assert "-ingress-exposure-warnings'" in warned[0], warned
        missing = [w for w in dict.fromkeys(expected) if w not in warned[0]]
        assert not missing, (row.name, missing, native.warnings)
    assert seen >= 7, seen  # exempted and kept, in enforce, mutate and audit


@pytest.mark.usefixtures("native_engine_served")
def test_both_engines_warn_alike_of_exempted_and_kept_gateways_and_routes(
    outcomes: dict[str, list[Outcome]],
) -> None:
    """As for Ingresses: the webhook once per piece, the native engine's Gateway API warning
    policy (-gateway-exposure-warnings) once, saying the same sentences; in audit the exposure
    itself is warned of by the webhook per piece, by the native engine once with the denial's
    text (its -gateway-exposure policy)."""
    seen = 0
    for row, webhook, native in zip(ROWS, outcomes["webhook"], outcomes["native"], strict=True):
        if row.service["kind"] not in GATEWAY_API_KINDS or not webhook.allowed:
            continue
        expected = [w for w in webhook.warnings if any(s in w for s in ALLOWED_WITH_A_WARNING)]
        warned = [w for w in native.warnings if any(s in w for s in ALLOWED_WITH_A_WARNING)]
        if row.verdict == "warned" and row.mode == "audit" and not expected:
            kind = row.service["kind"]
            assert [w for w in webhook.warnings if w.startswith(f"audit: {kind} NS/")], row.name
            assert any("ValidatingAdmissionPolicy 'table-" in w and "-gateway-exposure'" in w
                       for w in native.warnings), (row.name, native.warnings)  # fmt: skip
        if not expected:
            assert not warned, (row.name, native.warnings)
            continue
        seen += 1
        assert len(warned) == 1, (row.name, native.warnings)
        assert "-gateway-exposure-warnings'" in warned[0], warned
        missing = [w for w in dict.fromkeys(expected) if w not in warned[0]]
        assert not missing, (row.name, missing, native.warnings)
    assert seen >= 4, seen  # exempted and kept, Gateways and routes


def test_only_the_rows_no_crd_here_serves_are_left_out() -> None:
    left_out = [row.name for row in test_decision.CASES if not served_as_written(row)]
    assert left_out == NOT_SERVED


def test_a_policy_document_reads_back_as_each_policy_of_the_table() -> None:
    for policy in policies():
        assert policy_from_mapping(policy_document(policy)) == policy
    shifted = in_test_namespaces(test_decision.EXEMPT_LEGACY)
    assert shifted.exemptions == (
        Exemption(namespace="*-shop", name="legacy-*", reason="vendor appliance"),
    )
