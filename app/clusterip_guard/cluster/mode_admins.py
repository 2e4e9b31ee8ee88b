"""Who may set the mode, as the cluster's RBAC says (core/mode_admins.py judges it): the
ClusterRoles and ClusterRoleBindings read for `scan`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kubernetes import client

from clusterip_guard.cluster.client import call
from clusterip_guard.cluster.errors import ClusterError
from clusterip_guard.core.mode_admins import ModeAdminGrant, mode_admin_grants
from clusterip_guard.core.names import INSTALL_NAMESPACE, NEVER_JUDGED_NAMESPACES
from clusterip_guard.core.types import Manifest

log = logging.getLogger("clusterip_guard.scan")


def read_mode_admins(
    api: client.ApiClient, install_namespace: str = INSTALL_NAMESPACE
) -> list[ModeAdminGrant] | None:
    """The grants of `set-mode` to ServiceAccounts of tenant namespaces; None when this
    identity may not list ClusterRoles and ClusterRoleBindings (said by the caller)."""
    rbac = client.RbacAuthorizationV1Api(api)
    try:
        roles: Any = call("list", "clusterroles", None, rbac.list_cluster_role)
        bindings: Any = call("list", "clusterrolebindings", None, rbac.list_cluster_role_binding)
    except ClusterError as error:
        log.info("RBAC not read: %s", error)
        return None
    plain: Callable[[Any], Manifest] = api.sanitize_for_serialization
    return mode_admin_grants(
        [plain(role) for role in roles.items],
        [plain(binding) for binding in bindings.items],
        trusted_namespaces={*NEVER_JUDGED_NAMESPACES, install_namespace},
    )
