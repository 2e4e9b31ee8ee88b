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
from collections.abc import Collection
from typing import Final

from clusterip_guard.core.admission import registered_entries
from clusterip_guard.core.admission_policies import companion_policies, policy_bindings
from clusterip_guard.core.names import NEVER_JUDGED_NAMESPACES
from clusterip_guard.core.native.cel import NativeUnsupported
from clusterip_guard.core.native.conversion import conversion_policy
from clusterip_guard.core.native.decision import exposure_policy
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
    "HOST_CONVERSION_SUFFIX",
    "HOST_EXPOSURE_SUFFIX",
    "NativeUnsupported",
    "native_objects",
    "next_rendering",
]

EXPOSURE_SUFFIX: Final = "-exposure"
CONVERSION_SUFFIX: Final = "-conversion"


def native_objects(
    policy: PolicySettings,
    *,
    name: str,
    default_mode: Mode = "off",
    never_judged: Collection[str] = NEVER_JUDGED_NAMESPACES,
    today: datetime.date | None = None,
) -> list[Manifest]:
    """Everything the native engine registers for this policy; with `today`, the exemptions
    in force that day (see `_exempt`)."""
    entries = registered_entries(default_mode)
    exposure = name + EXPOSURE_SUFFIX
    conversion = name + CONVERSION_SUFFIX
    host_exposure = name + HOST_EXPOSURE_SUFFIX
    host_conversion = name + HOST_CONVERSION_SUFFIX
    return [
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
        host_exposure_policy(policy, name=host_exposure, default_mode=default_mode, today=today),
        *policy_bindings(host_exposure, entries, never_judged=never_judged),
        *companion_policies(name=name, default_mode=default_mode, never_judged=never_judged),
    ]


def next_rendering(policy: PolicySettings, today: datetime.date) -> datetime.date | None:
    """The first day on which a rendering made `today` is out of date: the day after the
    soonest last day of an exemption still in force (None: no exemption ends)."""
    ends = [e.expires for e in policy.exemptions if e.expires is not None and e.expires >= today]
    return min(ends) + datetime.timedelta(days=1) if ends else None
