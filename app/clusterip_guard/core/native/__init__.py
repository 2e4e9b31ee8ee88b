"""The native engine: the policy compiled into admission policies the API server runs itself
(docs/design.md, "Engines").

`native_objects` turns one policy (`PolicySettings`) into ValidatingAdmissionPolicies and a
MutatingAdmissionPolicy (`admissionregistration.k8s.io/v1`) that decide as `core.decision`
decides: the same pieces of exposure (core/exposure.py), the same internal-load-balancer
readings (core/cloud_providers.py), UPDATEs judged on what they add, the same denial message;
bound as the entries of the admission table judge (core/admission.py; one binding per effect
where a selector can say it), so they select the same namespaces as the webhook's entries.

The package mirrors the core it compiles: exposure, providers (cloud_providers), services,
decision, conversion, workloads; cel holds what they share. The CEL is generated from the same
constants the Python reads, and the differential test
(tests/e2e/test_native_e2e.py) holds the two engines equal on the real API server. What CEL
cannot say is refused by `NativeUnsupported`, one line naming the policy key: never a silent
difference. Pure: plain dicts out.
"""

from __future__ import annotations

import datetime
from collections.abc import Collection, Iterator
from typing import Final

from clusterip_guard.core.addresses import MAPPED_PREFIX, read_range
from clusterip_guard.core.admission import registered_entries
from clusterip_guard.core.admission_policies import (
    WARNING_EFFECTS,
    companion_policies,
    policy_bindings,
)
from clusterip_guard.core.names import NEVER_JUDGED_NAMESPACES
from clusterip_guard.core.native.cel import NativeUnsupported, glob_regex, re2_refuses
from clusterip_guard.core.native.conversion import conversion_policy
from clusterip_guard.core.native.decision import exposure_policy, warning_policy
from clusterip_guard.core.native.gateways import (
    GATEWAY_EXPOSURE_SUFFIX,
    GATEWAY_WARNINGS_SUFFIX,
    gateway_exposure_policy,
    gateway_warning_policy,
)
from clusterip_guard.core.native.ingresses import (
    INGRESS_EXPOSURE_SUFFIX,
    INGRESS_WARNINGS_SUFFIX,
    ingress_exposure_policy,
    ingress_warning_policy,
)
from clusterip_guard.core.native.workloads import (
    HOST_CONVERSION_SUFFIX,
    HOST_EXPOSURE_SUFFIX,
    host_conversion_policy,
    host_exposure_policy,
)
from clusterip_guard.core.policy import PolicySettings
from clusterip_guard.core.types import Manifest, Mode

__all__ = [
    "CONVERSION_SUFFIX",
    "EXPOSURE_SUFFIX",
    "GATEWAY_EXPOSURE_SUFFIX",
    "GATEWAY_WARNINGS_SUFFIX",
    "HOST_CONVERSION_SUFFIX",
    "HOST_EXPOSURE_SUFFIX",
    "INGRESS_EXPOSURE_SUFFIX",
    "INGRESS_WARNINGS_SUFFIX",
    "WARNINGS_SUFFIX",
    "NativeUnsupported",
    "native_objects",
    "native_supports",
    "next_rendering",
]

EXPOSURE_SUFFIX: Final = "-exposure"
WARNINGS_SUFFIX: Final = "-exposure-warnings"
CONVERSION_SUFFIX: Final = "-conversion"


# Every PolicySettings field the native engine compiles into its CEL; the others, with why it
# need not (tests/unit/test_native.py holds these to the dataclass's fields, and shows each
# compiled one changes the rendering). A new policy key is read by both engines or refused.
COMPILED_FIELDS: Final = frozenset(
    {
        "allowed_external_ip_cidrs",
        "allow_internal_load_balancers",
        "allow_internal_load_balancer_node_ports",
        "internal_load_balancer_providers",
        "internal_load_balancer_classes",
        "allow_existing_violations",
        "exemptions",
        "allowed_host_ports",
        "allowed_ingress_classes",
        "allowed_gateway_classes",
        "allowed_gateways",
    }
)
NOT_COMPILED_FIELDS: Final = {
    "service_ranges": "not a policy key: the Service-range policy reads the cluster's own",
}
# The API server refuses a CEL expression longer than this (in code points).
MAX_EXPRESSION_CODE_POINTS: Final = 100_000


def native_objects(
    policy: PolicySettings,
    *,
    name: str,
    default_mode: Mode = "off",
    never_judged: Collection[str] = NEVER_JUDGED_NAMESPACES,
    today: datetime.date | None = None,
) -> list[Manifest]:
    """Everything the native engine registers for this policy; with `today`, the exemptions
    in force that day (see cel.exemption_terms). Raises NativeUnsupported, one line naming the
    key, for what the API server would refuse (`native_supports`), before anything is applied."""
    _check_values(policy)
    entries = registered_entries(default_mode)
    exposure = name + EXPOSURE_SUFFIX
    warnings = name + WARNINGS_SUFFIX
    conversion = name + CONVERSION_SUFFIX
    host_exposure = name + HOST_EXPOSURE_SUFFIX
    host_conversion = name + HOST_CONVERSION_SUFFIX
    ingress_exposure = name + INGRESS_EXPOSURE_SUFFIX
    ingress_warnings = name + INGRESS_WARNINGS_SUFFIX
    gateway_exposure = name + GATEWAY_EXPOSURE_SUFFIX
    gateway_warnings = name + GATEWAY_WARNINGS_SUFFIX
    objects = [
        conversion_policy(policy, name=conversion, default_mode=default_mode, today=today),
        *policy_bindings(conversion, entries, never_judged=never_judged, configuration="mutating"),
        host_conversion_policy(
            policy, name=host_conversion, default_mode=default_mode, today=today
        ),
        *policy_bindings(
            host_conversion, entries, never_judged=never_judged, configuration="mutating"
        ),
        exposure_policy(policy, name=exposure, default_mode=default_mode, today=today),
        *policy_bindings(exposure, entries, never_judged=never_judged),
        warning_policy(policy, name=warnings, default_mode=default_mode, today=today),
        *policy_bindings(warnings, entries, never_judged=never_judged, effects=WARNING_EFFECTS),
        host_exposure_policy(policy, name=host_exposure, default_mode=default_mode, today=today),
        *policy_bindings(host_exposure, entries, never_judged=never_judged),
        ingress_exposure_policy(
            policy, name=ingress_exposure, default_mode=default_mode, today=today
        ),
        *policy_bindings(ingress_exposure, entries, never_judged=never_judged),
        ingress_warning_policy(
            policy, name=ingress_warnings, default_mode=default_mode, today=today
        ),
        *policy_bindings(
            ingress_warnings, entries, never_judged=never_judged, effects=WARNING_EFFECTS
        ),
        gateway_exposure_policy(
            policy, name=gateway_exposure, default_mode=default_mode, today=today
        ),
        *policy_bindings(gateway_exposure, entries, never_judged=never_judged),
        gateway_warning_policy(
            policy, name=gateway_warnings, default_mode=default_mode, today=today
        ),
        *policy_bindings(
            gateway_warnings, entries, never_judged=never_judged, effects=WARNING_EFFECTS
        ),
        *companion_policies(name=name, default_mode=default_mode, never_judged=never_judged),
    ]
    _check_sizes(policy, objects)
    return objects


def native_supports(
    policy: PolicySettings, *, default_mode: Mode = "off", today: datetime.date | None = None
) -> str | None:
    """The first thing in `policy` the native engine cannot say, as one line naming the policy
    key and why; None when it can say all of it. `render`, `bootstrap` and `sync` refuse with
    this line (they call native_objects, which raises it) before the API server sees anything."""
    try:
        native_objects(policy, name="clusterip-guard", default_mode=default_mode, today=today)
    except NativeUnsupported as error:
        return str(error)
    return None


def _check_values(policy: PolicySettings) -> None:
    """The values CEL reads that it could refuse at apply or at run time."""
    for index, exemption in enumerate(policy.exemptions):
        for key in ("namespace", "name"):
            glob = getattr(exemption, key)
            if re2_refuses(glob_regex(glob)):
                raise NativeUnsupported(
                    f"exemptions[{index}].{key}: {glob!r} becomes a pattern RE2 (CEL's matches) "
                    "refuses; write the glob another way, or use the webhook engine"
                )
    for index, glob in enumerate(policy.allowed_ingress_classes):
        if re2_refuses(glob_regex(glob)):
            raise NativeUnsupported(
                f"allowedIngressClasses[{index}]: {glob!r} becomes a pattern RE2 (CEL's "
                "matches) refuses; write the glob another way, or use the webhook engine"
            )
    for index, glob in enumerate(policy.allowed_gateway_classes):
        if re2_refuses(glob_regex(glob)):
            raise NativeUnsupported(
                f"allowedGatewayClasses[{index}]: {glob!r} becomes a pattern RE2 (CEL's "
                "matches) refuses; write the glob another way, or use the webhook engine"
            )
    for index, (namespace, gateway) in enumerate(policy.allowed_gateways):
        if re2_refuses(glob_regex(namespace)) or re2_refuses(glob_regex(gateway)):
            raise NativeUnsupported(
                f"allowedGateways[{index}]: {namespace}/{gateway!s} becomes a pattern RE2 (CEL's "
                "matches) refuses; write the glob another way, or use the webhook engine"
            )
    for index, network in enumerate(policy.allowed_external_ip_cidrs):
        if read_range(str(network)) != network or str(network).startswith(MAPPED_PREFIX):
            raise NativeUnsupported(
                f"allowedExternalIPCIDRs[{index}]: {network} is not a range CEL's cidr() reads; "
                "write it as the plain IPv4 or IPv6 range"
            )


def _expressions(value: object) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("expression", "messageExpression") and isinstance(item, str):
                yield item
            else:
                yield from _expressions(item)
    elif isinstance(value, list):
        for item in value:
            yield from _expressions(item)


def _check_sizes(policy: PolicySettings, objects: list[Manifest]) -> None:
    for manifest in objects:
        longest = max(map(len, _expressions(manifest.get("spec", {}))), default=0)
        if longest > MAX_EXPRESSION_CODE_POINTS:
            # The Gateway API's policies also spell out each allowed Gateway.
            many = f"exemptions: {len(policy.exemptions)} exemptions"
            if manifest["metadata"]["name"].endswith(
                (GATEWAY_EXPOSURE_SUFFIX, GATEWAY_WARNINGS_SUFFIX)
            ) and len(policy.allowed_gateways) > len(policy.exemptions):
                many = f"allowedGateways: {len(policy.allowed_gateways)} Gateways"
            raise NativeUnsupported(
                f"{many} make an expression of "
                f"{manifest['kind']} {manifest['metadata']['name']} {longest:,} code points long, "
                f"over the API server's limit of {MAX_EXPRESSION_CODE_POINTS:,}; use fewer "
                "(a glob can cover many names), or the webhook engine"
            )


def next_rendering(policy: PolicySettings, today: datetime.date) -> datetime.date | None:
    """The first day on which a rendering made `today` is out of date: the day after the
    soonest last day of an exemption still in force (None: no exemption ends)."""
    ends = [e.expires for e in policy.exemptions if e.expires is not None and e.expires >= today]
    return min(ends) + datetime.timedelta(days=1) if ends else None
