"""Who may set a namespace's mode, read from RBAC (docs/security.md, "The RBAC a tenant must
lack"): the ServiceAccounts of tenant namespaces that hold the verb `set-mode`.

`edit` (and `admin`) in a namespace may impersonate every ServiceAccount there, so a
ServiceAccount that holds `set-mode` lends it to whoever edits its namespace: such a tenant may
relabel any namespace the grant covers, `off` included. `scan` reports each such grant. The
mode-label policy checks `set-mode` with no namespace, so only ClusterRoleBindings grant it.
Pure: RBAC objects as plain data in, findings out.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from clusterip_guard.core.names import MODE_ADMIN_GROUP, MODE_ADMIN_RESOURCE, MODE_ADMIN_VERB

_ANY = "*"
# Every ServiceAccount, or every one of a namespace, as a group subject.
_ALL_SERVICE_ACCOUNTS = "system:serviceaccounts"


@dataclass(frozen=True)
class ModeAdminGrant:
    """A ClusterRoleBinding that gives `set-mode` to ServiceAccounts of a tenant namespace."""

    binding: str
    role: str
    holders: str  # "ServiceAccount NS/NAME", or the group of a namespace's ServiceAccounts
    namespace: str  # where whoever may impersonate them lives ("*": any namespace)

    def describe(self) -> str:
        where = "any namespace" if self.namespace == _ANY else f"namespace {self.namespace}"
        return (
            f"ClusterRoleBinding {self.binding} gives {MODE_ADMIN_VERB} ({self.role}) to "
            f"{self.holders}: whoever may impersonate ServiceAccounts in {where} (edit and "
            "admin may) may change the mode of the namespaces it covers; bind it to people "
            "or to a ServiceAccount in a namespace only admins edit"
        )


def _listed(values: object, wanted: str) -> bool:
    return isinstance(values, list) and (wanted in values or _ANY in values)


def grants_set_mode(rules: Iterable[Mapping[str, Any]]) -> bool:
    """Whether a role's rules hold the verb the mode-label policy checks."""
    return any(
        _listed(rule.get("verbs"), MODE_ADMIN_VERB)
        and _listed(rule.get("apiGroups"), MODE_ADMIN_GROUP)
        and _listed(rule.get("resources"), MODE_ADMIN_RESOURCE)
        for rule in rules
        if isinstance(rule, Mapping)
    )


def _tenant_holders(
    subject: Mapping[str, Any], trusted_namespaces: Collection[str]
) -> tuple[str, str] | None:
    """(holders, namespace) for a subject that is ServiceAccounts of a tenant namespace."""
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "ServiceAccount":
        namespace = str(subject.get("namespace") or "")
        if namespace in trusted_namespaces:
            return None
        return f"ServiceAccount {namespace}/{name}", namespace
    if kind == "Group" and isinstance(name, str):
        if name == _ALL_SERVICE_ACCOUNTS:
            return f"every ServiceAccount (Group {name})", _ANY
        prefix = _ALL_SERVICE_ACCOUNTS + ":"
        if name.startswith(prefix) and name[len(prefix) :] not in trusted_namespaces:
            return f"the ServiceAccounts of namespace {name[len(prefix) :]} (Group {name})", (
                name[len(prefix) :]
            )
    return None


def mode_admin_grants(
    cluster_roles: Iterable[Mapping[str, Any]],
    cluster_role_bindings: Iterable[Mapping[str, Any]],
    *,
    trusted_namespaces: Collection[str],
) -> list[ModeAdminGrant]:
    """Every grant of `set-mode` to ServiceAccounts outside `trusted_namespaces` (the system
    namespaces and clusterip-guard's own)."""
    granting = {
        str(role.get("metadata", {}).get("name"))
        for role in cluster_roles
        if grants_set_mode(role.get("rules") or [])
    }
    grants = []
    for binding in cluster_role_bindings:
        role_ref = binding.get("roleRef") or {}
        if role_ref.get("kind") != "ClusterRole" or role_ref.get("name") not in granting:
            continue
        for subject in binding.get("subjects") or []:
            found = _tenant_holders(subject, trusted_namespaces)
            if found is not None:
                grants.append(
                    ModeAdminGrant(
                        binding=str(binding.get("metadata", {}).get("name")),
                        role=str(role_ref.get("name")),
                        holders=found[0],
                        namespace=found[1],
                    )
                )
    return grants
