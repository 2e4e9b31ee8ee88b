"""The ClusterIP conversion as a MutatingAdmissionPolicy, the JSON Patch core/conversion.py
computes by diff written out for the API server: only what the validating policy would refuse
(the same judging variables), the whole Service at once. Pure: plain dicts out."""

from __future__ import annotations

import datetime

from clusterip_guard.core.admission_policies import registered_object, service_writes
from clusterip_guard.core.cel_literals import text
from clusterip_guard.core.conversion import EXPOSED_ONLY_SPEC_FIELDS
from clusterip_guard.core.match_conditions import exposed_match_condition
from clusterip_guard.core.names import CONVERTED_FROM_ANNOTATION, SOURCE_RANGES_ANNOTATION
from clusterip_guard.core.native.decision import judging_variables
from clusterip_guard.core.native.exposure import allowed_external_ip
from clusterip_guard.core.native.providers import internal_load_balancer
from clusterip_guard.core.native.services import object_type
from clusterip_guard.core.pointers import escape_token
from clusterip_guard.core.policy import PolicySettings
from clusterip_guard.core.registration import with_config_hash
from clusterip_guard.core.types import Manifest, Mode


def _remove_if_present(field: str) -> str:
    return f"(has(object.spec.{field}) ? [JSONPatch{{op: 'remove', path: '/spec/{field}'}}] : [])"


def _drop_node_ports() -> str:
    return (
        "(has(object.spec.ports) ? object.spec.ports.transformList(i, p, has(p.nodePort), "
        "JSONPatch{op: 'remove', path: '/spec/ports/' + string(i) + '/nodePort'}) : [])"
    )


def _keep_allowed_external_ips(policy: PolicySettings) -> str:
    """Drops the external IPs outside the allowed CIDRs; the list stays when every one is."""
    return (
        "(has(object.spec.externalIPs) && size(variables.allowedIPs) != "
        "size(object.spec.externalIPs) ? (size(variables.allowedIPs) > 0 ? "
        "[JSONPatch{op: 'replace', path: '/spec/externalIPs', value: variables.allowedIPs}] : "
        "[JSONPatch{op: 'remove', path: '/spec/externalIPs'}]) : [])"
    )


def _conversion(policy: PolicySettings) -> str:
    """convert_to_cluster_ip as a JSON Patch: every `remove` guarded by `has` (removing a
    missing path is an error, and errors go to the failure policy)."""
    annotation = text(SOURCE_RANGES_ANNOTATION)
    converted_from = escape_token(CONVERTED_FROM_ANNOTATION)
    kind = object_type("object")
    return (
        "[JSONPatch{op: 'replace', path: '/spec/type', value: 'ClusterIP'}]"
        f" + {_drop_node_ports()}"
        + "".join(f" + {_remove_if_present(field)}" for field in EXPOSED_ONLY_SPEC_FIELDS)
        + f" + {_keep_allowed_external_ips(policy)}"
        + " + (size(variables.allowedIPs) == 0 && has(object.spec.externalTrafficPolicy) ? "
        "[JSONPatch{op: 'remove', path: '/spec/externalTrafficPolicy'}] : [])"
        f" + (has(object.metadata.annotations) && {annotation} in object.metadata.annotations ? "
        f"[JSONPatch{{op: 'remove', path: '/metadata/annotations/"
        f"{escape_token(SOURCE_RANGES_ANNOTATION)}'}}] : [])"
        f" + ({kind} == 'ClusterIP' ? [] : has(object.metadata.annotations) ? "
        f"[JSONPatch{{op: 'add', path: '/metadata/annotations/{converted_from}', value: {kind}}}]"
        f" : [JSONPatch{{op: 'add', path: '/metadata/annotations', value: "
        f"{{{text(CONVERTED_FROM_ANNOTATION)}: {kind}}}}}])"
    )


def _internal_conversion(policy: PolicySettings) -> str:
    """drop_load_balancer_node_ports as a JSON Patch."""
    if policy.allow_internal_load_balancer_node_ports:
        return _keep_allowed_external_ips(policy)
    local = (
        "((has(object.spec.externalTrafficPolicy) && object.spec.externalTrafficPolicy == "
        "'Local') || has(object.spec.healthCheckNodePort))"
    )
    return (
        "[JSONPatch{op: 'add', path: '/spec/allocateLoadBalancerNodePorts', value: false}]"
        f" + {_drop_node_ports()}"
        f" + ({local} ? [JSONPatch{{op: 'add', path: '/spec/externalTrafficPolicy', "
        f"value: 'Cluster'}}] + {_remove_if_present('healthCheckNodePort')} : [])"
        f" + {_keep_allowed_external_ips(policy)}"
    )


def conversion_policy(
    policy: PolicySettings,
    *,
    name: str,
    default_mode: Mode,
    today: datetime.date | None = None,
) -> Manifest:
    """The MutatingAdmissionPolicy that converts as the mutating entries do: only what the
    validating policy would refuse (the same `judged`), the whole Service at once."""
    variables = [
        *judging_variables(policy, default_mode=default_mode, today=today),
        {
            "name": "allowedIPs",
            "expression": (
                "has(object.spec.externalIPs) ? object.spec.externalIPs.filter(a, "
                f"{allowed_external_ip(policy, 'a')}) : []"
            ),
        },
    ]
    body: Manifest = {
        **registered_object("MutatingAdmissionPolicy", name),
        "spec": {
            "failurePolicy": "Fail",
            "reinvocationPolicy": "IfNeeded",
            # A write through services/status cannot be converted: the validating policy
            # judges it (denied in mutate namespaces, as by the webhook).
            "matchConstraints": service_writes(),
            "matchConditions": [exposed_match_condition()],
            "variables": variables,
            "mutations": [
                {
                    "patchType": "JSONPatch",
                    "jsonPatch": {
                        "expression": (
                            "!variables.refused ? [] : "
                            f"{internal_load_balancer('object', policy)} ? "
                            f"{_internal_conversion(policy)} : {_conversion(policy)}"
                        )
                    },
                }
            ],
        },
    }
    return with_config_hash(body)
