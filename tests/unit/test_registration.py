"""The webhook configurations bootstrap registers (docs/design.md, "What bootstrap
registers"), and the in-process policies beside them (core/admission_policies.py), bound as
those entries judge."""

from __future__ import annotations

import base64
from typing import Any, Literal

import pytest

from clusterip_guard.core.admission import SUBJECTS, default_mode_of
from clusterip_guard.core.match_conditions import (
    EXPOSED_SERVICE_EXPRESSION,
    gateway_match_condition,
    host_exposed_expression,
    ingress_match_condition,
    route_match_condition,
)
from clusterip_guard.core.names import MODE_LABEL
from clusterip_guard.core.registration import (
    RegistrationError,
    ServiceTarget,
    UrlTarget,
    webhook_configurations,
)
from clusterip_guard.core.types import MODES, Mode

CA = b"-----BEGIN CERTIFICATE-----\nZm9v\n-----END CERTIFICATE-----\n"


def entries(default_mode: Mode = "off", **kwargs: Any) -> dict[str, dict[str, Any]]:
    mutating, validating = webhook_configurations(
        target=kwargs.pop("target", ServiceTarget("guard", "clusterip-guard")),
        ca_bundle=CA,
        default_mode=default_mode,
        **kwargs,
    )
    assert mutating["kind"] == "MutatingWebhookConfiguration"
    assert validating["kind"] == "ValidatingWebhookConfiguration"
    return {w["name"]: w for w in [*mutating["webhooks"], *validating["webhooks"]]}


def selects(webhook: dict[str, Any], mode: str | None, namespace: str = "shop") -> bool:
    """Whether the entry's namespaceSelector matches a namespace with this mode label, as
    Kubernetes evaluates matchExpressions (all must hold)."""
    labels = {"kubernetes.io/metadata.name": namespace}
    if mode is not None:
        labels[MODE_LABEL] = mode
    for expression in webhook["namespaceSelector"]["matchExpressions"]:
        value = labels.get(expression["key"])
        operator = expression["operator"]
        if operator == "In" and value not in expression["values"]:
            return False
        if operator == "NotIn" and value in expression["values"]:
            return False
        if operator == "Exists" and value is None:
            return False
        if operator == "DoesNotExist" and value is not None:
            return False
    return True


LABEL_VALUES = ["enforce", "mutate", "audit", "off", "Enforce", "enforced", "", None]


def selected(webhook: dict[str, Any]) -> list[str | None]:
    return [mode for mode in LABEL_VALUES if selects(webhook, mode)]


def test_one_entry_per_mode_with_its_own_path() -> None:
    found = entries()
    services = {
        "mutate.clusterip-guard.io": "/mutate",
        "enforce.clusterip-guard.io": "/validate/enforce",
        "audit.clusterip-guard.io": "/validate/audit",
        "unknown-mode.clusterip-guard.io": "/validate/unknown-mode",
        "mutate-backstop.clusterip-guard.io": "/validate/mutate-backstop",
    }
    # Each has a twin for Pods and workloads, and one for Ingresses, on the same path,
    # selecting the same namespaces.
    twins = {
        name.replace(".", f"-{subject}.", 1): path
        for name, path in services.items()
        for subject in ("workloads", "ingresses", "gateways", "routes")
    }
    assert {name: w["clientConfig"]["service"]["path"] for name, w in found.items()} == {
        **services,
        **twins,
    }
    for name in services:
        for subject in ("workloads", "ingresses", "gateways", "routes"):
            twin = found[name.replace(".", f"-{subject}.", 1)]
            assert twin["namespaceSelector"] == found[name]["namespaceSelector"]
            assert twin["failurePolicy"] == found[name]["failurePolicy"]
    assert selected(found["mutate.clusterip-guard.io"]) == ["mutate"]
    assert selected(found["enforce.clusterip-guard.io"]) == ["enforce"]
    # The validating backstop behind mutate: its decisions are counted as mutate's.
    assert selected(found["mutate-backstop.clusterip-guard.io"]) == ["mutate"]
    # A value that is not a mode is judged as enforce, on a path that can say so.
    assert selected(found["unknown-mode.clusterip-guard.io"]) == ["Enforce", "enforced", ""]
    assert selected(found["audit.clusterip-guard.io"]) == ["audit"]


def test_enforce_and_mutate_fail_closed_and_audit_fails_open() -> None:
    found = entries()
    assert found["mutate.clusterip-guard.io"]["failurePolicy"] == "Fail"
    assert found["enforce.clusterip-guard.io"]["failurePolicy"] == "Fail"
    assert found["unknown-mode.clusterip-guard.io"]["failurePolicy"] == "Fail"
    assert found["audit.clusterip-guard.io"]["failurePolicy"] == "Ignore"


def test_every_entry_is_safe_to_run_on_the_api_servers_path() -> None:
    for webhook in entries("mutate").values():
        assert webhook["sideEffects"] == "None"
        assert webhook["admissionReviewVersions"] == ["v1"]
        assert webhook["timeoutSeconds"] == 5
        assert base64.b64decode(webhook["clientConfig"]["caBundle"]) == CA
        if "-workloads" in webhook["name"]:
            # Pods on CREATE (an UPDATE cannot change their ports), every workload kind that
            # makes Pods on CREATE and UPDATE; no subresource.
            assert [
                (rule["apiGroups"], rule["resources"], rule["operations"])
                for rule in webhook["rules"]
            ] == [
                ([""], ["pods"], ["CREATE"]),
                (
                    ["apps"],
                    ["deployments", "replicasets", "statefulsets", "daemonsets"],
                    ["CREATE", "UPDATE"],
                ),
                (["batch"], ["jobs", "cronjobs"], ["CREATE", "UPDATE"]),
                ([""], ["replicationcontrollers"], ["CREATE", "UPDATE"]),
            ]
            assert webhook["matchConditions"] == [
                {"name": "host-ports-or-network", "expression": host_exposed_expression()}
            ]
            continue
        if "-ingresses" in webhook["name"]:
            # Ingresses, and for a validating entry ingresses/status (it takes annotations).
            mutating = "reinvocationPolicy" in webhook
            assert webhook["rules"] == [
                {
                    "apiGroups": ["networking.k8s.io"],
                    "apiVersions": ["v1"],
                    "operations": ["CREATE", "UPDATE"],
                    "resources": ["ingresses"] if mutating else ["ingresses", "ingresses/status"],
                    "scope": "Namespaced",
                }
            ]
            assert webhook["matchConditions"] == [ingress_match_condition(())]
            continue
        if "-gateways" in webhook["name"] or "-routes" in webhook["name"]:
            # Any served version of the Gateway API's kinds; validating entries their status.
            mutating = "reinvocationPolicy" in webhook
            plain = (
                ["gateways"]
                if "-gateways" in webhook["name"]
                else ["httproutes", "grpcroutes", "tlsroutes", "tcproutes", "udproutes"]
            )
            statuses = [] if mutating else [f"{resource}/status" for resource in plain]
            assert webhook["rules"] == [
                {
                    "apiGroups": ["gateway.networking.k8s.io"],
                    "apiVersions": ["*"],
                    "operations": ["CREATE", "UPDATE"],
                    "resources": plain + statuses,
                    "scope": "Namespaced",
                }
            ]
            assert webhook["matchConditions"] == [
                gateway_match_condition(())
                if "-gateways" in webhook["name"]
                else route_match_condition(())
            ]
            continue
        # Validating entries see services/status too (annotations change through it).
        resources = (
            ["services"] if "reinvocationPolicy" in webhook else ["services", "services/status"]
        )
        assert webhook["rules"][0]["resources"] == resources
        assert webhook["rules"][0]["operations"] == ["CREATE", "UPDATE"]
        assert webhook["matchConditions"] == [
            {"name": "exposed-service", "expression": EXPOSED_SERVICE_EXPRESSION}
        ]


def test_only_the_mutating_entry_is_reinvoked() -> None:
    found = entries()
    assert found["mutate.clusterip-guard.io"]["reinvocationPolicy"] == "IfNeeded"
    assert "reinvocationPolicy" not in found["enforce.clusterip-guard.io"]


def test_system_namespaces_and_our_own_are_never_selected() -> None:
    for webhook in entries("enforce", own_namespace="guard").values():
        assert {
            "key": "kubernetes.io/metadata.name",
            "operator": "NotIn",
            "values": ["guard", "kube-node-lease", "kube-public", "kube-system"],
        } in webhook["namespaceSelector"]["matchExpressions"]


@pytest.mark.parametrize(
    ("default_mode", "extra"),
    [
        ("off", set()),
        ("audit", {"audit-default.clusterip-guard.io"}),
        ("enforce", {"enforce-default.clusterip-guard.io"}),
        (
            "mutate",
            {"mutate-default.clusterip-guard.io", "mutate-backstop-default.clusterip-guard.io"},
        ),
    ],
)
def test_the_default_mode_selects_unlabelled_namespaces(
    default_mode: Mode, extra: set[str]
) -> None:
    found = entries(default_mode)
    defaults = {name for name in found if "-default." in name}
    assert defaults == extra | {
        name.replace("-default.", f"-{subject}-default.")
        for name in extra
        for subject in ("workloads", "ingresses", "gateways", "routes")
    }
    for name in defaults:
        assert selected(found[name]) == [None]


def test_url_mode_points_at_the_url_with_each_path() -> None:
    found = entries(target=UrlTarget("https://127.0.0.1:8443/"))
    assert found["audit.clusterip-guard.io"]["clientConfig"]["url"] == (
        "https://127.0.0.1:8443/validate/audit"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timeout_seconds": 0}, "timeout"),
        ({"timeout_seconds": 31}, "timeout"),
        ({"default_mode": "sometimes"}, "default mode"),
        ({"failure_policy": "Sometimes"}, "failure policy"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(RegistrationError, match=message):
        entries(**kwargs)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8443", "https://x/?a=b", "127.0.0.1:8443"])
def test_url_mode_needs_a_plain_https_url(url: str) -> None:
    with pytest.raises(RegistrationError, match="webhook's URL"):
        UrlTarget(url)


def test_the_same_settings_give_the_same_configuration_hash() -> None:
    first = webhook_configurations(target=ServiceTarget("a", "b"), ca_bundle=CA)
    second = webhook_configurations(target=ServiceTarget("a", "b"), ca_bundle=CA)
    third = webhook_configurations(target=ServiceTarget("a", "b"), ca_bundle=CA + b"\n")
    assert first == second
    assert first[0]["metadata"]["annotations"] != third[0]["metadata"]["annotations"]


def test_extra_namespaces_are_never_selected_by_any_entry() -> None:
    for webhook in entries("enforce", excluded_namespaces=("edge", "ingress")).values():
        expressions = webhook["namespaceSelector"]["matchExpressions"]
        (never,) = [e for e in expressions if e["key"] == "kubernetes.io/metadata.name"]
        assert never["operator"] == "NotIn"
        assert {"edge", "ingress", "kube-system"} <= set(never["values"])


def test_failure_policies_can_be_chosen_per_kind_of_entry() -> None:
    found = entries("mutate", failure_policy="Ignore", audit_failure_policy="Fail")
    policies = {
        name: webhook["failurePolicy"]
        for name, webhook in found.items()
        # Not their twins': test_one_entry_per_mode_with_its_own_path
        if not any(f"-{subject}" in name for subject in SUBJECTS[1:])
    }
    assert policies == {
        "mutate.clusterip-guard.io": "Ignore",
        "mutate-default.clusterip-guard.io": "Ignore",
        "enforce.clusterip-guard.io": "Ignore",
        "unknown-mode.clusterip-guard.io": "Ignore",
        "mutate-backstop.clusterip-guard.io": "Ignore",
        "mutate-backstop-default.clusterip-guard.io": "Ignore",
        "audit.clusterip-guard.io": "Fail",
    }


@pytest.mark.parametrize("default_mode", ["off", "audit", "enforce", "mutate"])
def test_the_default_mode_can_be_read_back_from_the_registered_entries(default_mode: str) -> None:
    _, validating = webhook_configurations(
        target=ServiceTarget("guard", "clusterip-guard"), ca_bundle=CA,
        default_mode=default_mode,  # type: ignore[arg-type]
    )  # fmt: skip
    assert default_mode_of({w["name"] for w in validating["webhooks"]}) == default_mode


# --- the in-process policies bound per entry --------------------------------------------------


@pytest.mark.parametrize("default_mode", ["off", "audit", "mutate", "enforce"])
@pytest.mark.parametrize("configuration", ["validating", "mutating"])
def test_an_in_process_policy_is_bound_as_the_entries_judge_in_as_few_bindings_as_can_say_it(
    default_mode: Mode, configuration: Literal["validating", "mutating"]
) -> None:
    from clusterip_guard.core.admission import registered_entries
    from clusterip_guard.core.admission_policies import (
        policy_binding_names,
        policy_bindings,
    )

    registered = registered_entries(default_mode)
    bindings = policy_bindings(
        "p", registered, never_judged=["kube-system"], configuration=configuration,
        param_ref={"selector": {}},
    )  # fmt: skip
    webhooks = entries(default_mode)
    mine = [e for e in registered if e.configuration == configuration]
    for namespace in ("shop", "kube-system"):
        for mode in LABEL_VALUES:
            # The same namespaces as the webhook entries, and the same effect: deny where an
            # entry guards, warn and audit where it reports.
            expected = {
                ("Deny",) if entry.failure_role == "guard" else ("Warn", "Audit")
                for entry in mine
                if selects(webhooks[entry.name], mode, namespace)
            }
            actions = {
                tuple(binding["spec"].get("validationActions", ["Deny"]))
                for binding in bindings
                if selects(binding["spec"]["matchResources"], mode, namespace)
            }
            if configuration == "mutating":
                expected = {("Deny",)} if expected else set()
            assert actions == expected, (namespace, mode)
            # Never two bindings of one effect on one namespace (a warning said twice).
            chosen = [b for b in bindings if selects(b["spec"]["matchResources"], mode, namespace)]
            assert len(chosen) == len(actions), (namespace, mode)
    assert all(b["spec"]["paramRef"] == {"selector": {}} for b in bindings)
    # One binding per effect, but where no selector can say "these modes or no label".
    effects = 2 if configuration == "validating" else 1
    split = (default_mode == "audit") if configuration == "validating" else default_mode == "mutate"
    assert len(bindings) == effects + split
    names = {b["metadata"]["name"] for b in bindings}
    assert len(names) == len(bindings)
    # An uninstall and a re-registration find every name, the per-entry ones of earlier
    # builds among them.
    assert names <= set(policy_binding_names("p", configuration))
    assert "p-enforce" in policy_binding_names("p", "validating")


def test_the_unknown_mode_warning_is_evaluated_only_where_the_label_is_not_a_mode() -> None:
    from clusterip_guard.core.admission_policies import unknown_mode_warning

    _, binding = unknown_mode_warning(name="p")
    assert [mode for mode in LABEL_VALUES if selects(binding["spec"]["matchResources"], mode)] == [
        value for value in LABEL_VALUES if value is not None and value not in MODES
    ]


def test_the_service_range_policy_reads_every_service_cidr_and_judges_only_added_ips() -> None:
    from clusterip_guard.core.addresses import cel_ip
    from clusterip_guard.core.admission_policies import service_range_policy

    spec = service_range_policy(name="p")["spec"]
    assert spec["paramKind"] == {"apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR"}
    assert spec["failurePolicy"] == "Fail"
    variables = {v["name"]: v["expression"] for v in spec["variables"]}
    assert "oldObject.spec.externalIPs" in variables["oldIPs"]
    assert "variables.oldIPs" in variables["added"]
    # Read as kube-proxy reads them: 010.000.000.050 is 10.0.0.50 (core/addresses.py).
    assert cel_ip("a") in variables["inRange"]
    assert "containsIP" in variables["inRange"]
