"""Who may set the mode, read from RBAC (core/mode_admins.py)."""

from __future__ import annotations

from typing import Any

import pytest

from clusterip_guard.core.mode_admins import grants_set_mode, mode_admin_grants

SETS_MODE = {"apiGroups": ["clusterip-guard.io"], "resources": ["namespaces"],
             "verbs": ["set-mode"]}  # fmt: skip
TRUSTED = {"kube-system", "clusterip-guard"}


def role(name: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name}, "rules": list(rules)}


def binding(name: str, role_name: str, *subjects: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name}, "roleRef": {"kind": "ClusterRole", "name": role_name},
            "subjects": list(subjects)}  # fmt: skip


@pytest.mark.parametrize(
    ("rule", "grants"),
    [
        (SETS_MODE, True),
        ({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, True),  # cluster-admin
        ({**SETS_MODE, "resourceNames": ["team-a"]}, True),  # one namespace is still one
        ({**SETS_MODE, "verbs": ["get"]}, False),
        ({**SETS_MODE, "apiGroups": [""]}, False),
        ({**SETS_MODE, "resources": ["pods"]}, False),
    ],
)
def test_a_rule_grants_set_mode_by_verb_group_and_resource(
    rule: dict[str, Any], grants: bool
) -> None:
    assert grants_set_mode([rule]) is grants


def test_service_accounts_of_tenant_namespaces_that_may_set_the_mode_are_found() -> None:
    roles = [role("mode-setter", SETS_MODE), role("viewer", {**SETS_MODE, "verbs": ["get"]})]
    bindings = [
        binding("ci", "mode-setter",
                {"kind": "ServiceAccount", "namespace": "team-a", "name": "deployer"},
                {"kind": "User", "name": "alice"},
                {"kind": "ServiceAccount", "namespace": "kube-system", "name": "operator"}),
        binding("all-accounts", "mode-setter",
                {"kind": "Group", "name": "system:serviceaccounts:team-b"}),
        binding("everyone", "mode-setter", {"kind": "Group", "name": "system:serviceaccounts"}),
        binding("trusted", "mode-setter",
                {"kind": "Group", "name": "system:serviceaccounts:clusterip-guard"}),
        binding("harmless", "viewer",
                {"kind": "ServiceAccount", "namespace": "team-c", "name": "x"}),
    ]  # fmt: skip
    found = mode_admin_grants(roles, bindings, trusted_namespaces=TRUSTED)
    assert [(g.binding, g.holders, g.namespace) for g in found] == [
        ("ci", "ServiceAccount team-a/deployer", "team-a"),
        ("all-accounts",
         "the ServiceAccounts of namespace team-b (Group system:serviceaccounts:team-b)",
         "team-b"),
        ("everyone", "every ServiceAccount (Group system:serviceaccounts)", "*"),
    ]  # fmt: skip
    assert "in any namespace" in found[2].describe()
