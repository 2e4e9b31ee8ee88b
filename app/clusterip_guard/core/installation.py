"""What an installation registers, whichever engine enforces its policy (docs/design.md,
"What bootstrap registers" and "Engines"): one inventory of the names its admission objects
take, and `objects_for`, the objects themselves. `render` prints them, `bootstrap` and `sync`
apply them, and an uninstall (or a switch of engine) removes what the same inventory names:
so no object is registered that a removal would leave behind.

Pure: plain dicts (admissionregistration.k8s.io/v1) out.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Final, Literal, get_args

from clusterip_guard.core.admission import Configuration
from clusterip_guard.core.admission_policies import (
    VALIDATING_EFFECTS,
    WARNING_EFFECTS,
    Effects,
    companion_policies,
    policy_binding_names,
)
from clusterip_guard.core.native import native_objects
from clusterip_guard.core.policy import PolicySettings
from clusterip_guard.core.registration import (
    DEFAULT_TIMEOUT_SECONDS,
    FailurePolicy,
    ServiceTarget,
    UrlTarget,
    never_judged_namespaces,
    webhook_configurations,
)
from clusterip_guard.core.types import ENGINES, Engine, Manifest, Mode

# In the order a removal goes: the webhook configurations first (they fail closed), then the
# policies, each kind before its bindings.
AdmissionKind = Literal[
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
]
ADMISSION_KINDS: Final[tuple[AdmissionKind, ...]] = get_args(AdmissionKind)
WEBHOOK_CONFIGURATION_KINDS: Final[tuple[AdmissionKind, ...]] = ADMISSION_KINDS[:2]


@dataclass(frozen=True)
class InstalledPolicy:
    """One admission policy an installation may register: its name after the installation's,
    the engines that register it, and its bindings: one per effect and selector of the
    entries it judges as (`policy_bindings`), or one named as the policy itself."""

    suffix: str
    configuration: Configuration
    engines: tuple[Engine, ...]
    bound_as_entries: bool = True
    effects: Effects = VALIDATING_EFFECTS

    def name(self, installation: str) -> str:
        return installation + self.suffix

    def binding_names(self, installation: str) -> list[str]:
        """Every binding name it may have, whatever the default mode (and those of builds
        before 0.2.0: `policy_binding_names`)."""
        if not self.bound_as_entries:
            return [self.name(installation)]
        return policy_binding_names(self.name(installation), self.configuration, self.effects)


MODE_LABEL_GUARD: Final = InstalledPolicy(
    "-mode-label", "validating", ENGINES, bound_as_entries=False
)
UNKNOWN_MODE_WARNING: Final = InstalledPolicy(
    "-unknown-mode", "validating", ENGINES, bound_as_entries=False
)
SERVICE_RANGE: Final = InstalledPolicy("-service-range", "validating", ENGINES)
SERVICE_EXPOSURE: Final = InstalledPolicy("-exposure", "validating", ("native",))
SERVICE_WARNINGS: Final = InstalledPolicy(
    "-exposure-warnings", "validating", ("native",), effects=WARNING_EFFECTS
)
HOST_EXPOSURE: Final = InstalledPolicy("-host-exposure", "validating", ("native",))
SERVICE_CONVERSION: Final = InstalledPolicy("-conversion", "mutating", ("native",))
HOST_CONVERSION: Final = InstalledPolicy("-host-conversion", "mutating", ("native",))
INGRESS_EXPOSURE: Final = InstalledPolicy("-ingress-exposure", "validating", ("native",))
INGRESS_WARNINGS: Final = InstalledPolicy(
    "-ingress-exposure-warnings", "validating", ("native",), effects=WARNING_EFFECTS
)
GATEWAY_EXPOSURE: Final = InstalledPolicy("-gateway-exposure", "validating", ("native",))
GATEWAY_WARNINGS: Final = InstalledPolicy(
    "-gateway-exposure-warnings", "validating", ("native",), effects=WARNING_EFFECTS
)

# Every admission policy of an installation, of either engine, in the order a removal names
# them. The webhook configurations are named as the installation.
INSTALLED_POLICIES: Final = (
    MODE_LABEL_GUARD,
    UNKNOWN_MODE_WARNING,
    SERVICE_RANGE,
    SERVICE_EXPOSURE,
    SERVICE_WARNINGS,
    HOST_EXPOSURE,
    INGRESS_EXPOSURE,
    INGRESS_WARNINGS,
    GATEWAY_EXPOSURE,
    GATEWAY_WARNINGS,
    SERVICE_CONVERSION,
    HOST_CONVERSION,
)


def installed_names(kind: AdmissionKind, installation: str) -> list[str]:
    """Every object of `kind` an installation called `installation` may hold, of either engine
    and whatever its default mode: what an uninstall removes, and what a bootstrap removes
    when its registration no longer holds it (the other engine's, another default mode's
    bindings)."""
    if kind in WEBHOOK_CONFIGURATION_KINDS:
        return [installation]
    configuration = "mutating" if kind.startswith("Mutating") else "validating"
    policies = [policy for policy in INSTALLED_POLICIES if policy.configuration == configuration]
    if kind.endswith("Binding"):
        return [name for policy in policies for name in policy.binding_names(installation)]
    return [policy.name(installation) for policy in policies]


def policy_names(engine: Engine, installation: str) -> list[str]:
    """The admission policies and bindings `engine` may write for an installation called
    `installation`, whatever its default mode: what the RBAC of its writer (the bootstrap, the
    sync component) names. The chart's generator gives an empty name, for suffixes."""
    policies = [policy for policy in INSTALLED_POLICIES if engine in policy.engines]
    validating = [policy for policy in policies if policy.configuration == "validating"]
    names = [policy.name(installation) for policy in validating]
    names += [
        name
        for policy in validating
        if policy.bound_as_entries
        for name in policy.binding_names(installation)
    ]
    for policy in policies:
        if policy.configuration == "mutating":
            names += [policy.name(installation), *policy.binding_names(installation)]
    return names


class NotInInventory(RuntimeError):
    """A bug: an object assembled under a name the inventory does not hold, which no uninstall
    would remove."""


@dataclass(frozen=True)
class Installation:
    """What names and scopes an installation's admission objects, and where the webhook
    engine's configurations send their calls."""

    name: str
    # The webhook's Service; its namespace is never judged.
    service: ServiceTarget
    # Else the webhook runs outside the cluster, at this https:// base URL.
    url: str | None = None
    default_mode: Mode = "off"
    excluded_namespaces: tuple[str, ...] = ()
    # None: the configurations carry none (cainjector's, or the bootstrap's, to fill).
    ca_bundle: bytes | None = None
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS
    failure_policy: FailurePolicy = "Fail"
    audit_failure_policy: FailurePolicy = "Ignore"
    # Whether the API server serves ServiceCIDR, which the Service-range policy reads.
    service_cidrs: bool = True
    # The native engine runs nothing in the webhook's namespace unless told it does (its sync
    # component, in the chart): only then is that namespace never judged under it.
    native_runs_in_namespace: bool = False

    @property
    def own_namespace(self) -> str | None:
        return None if self.url is not None else self.service.namespace

    def target(self) -> ServiceTarget | UrlTarget:
        return UrlTarget(self.url) if self.url is not None else self.service

    def never_judged(self, engine: Engine = "webhook") -> list[str]:
        """The system namespaces, the excluded ones, and the installation's own namespace
        where something of the engine runs there (the webhook always, the native engine only
        where told: `native_runs_in_namespace`)."""
        runs_there = engine == "webhook" or self.native_runs_in_namespace
        own = self.own_namespace if runs_there else None
        return never_judged_namespaces(own, self.excluded_namespaces)


def objects_for(
    engine: Engine,
    installation: Installation,
    policy: PolicySettings | None = None,
    *,
    today: datetime.date | None = None,
) -> list[Manifest]:
    """What `engine` registers for `installation`. The webhook engine: its two webhook
    configurations (the policy is the server's to read, not theirs: they take only its allowed
    ingress and gateway classes and allowed Gateways, so that a compliant write costs no call)
    and the in-process policies beside them. The native engine: the policy compiled
    (`NativeUnsupported` when it cannot be; with `today`, the exemptions in force that day) and
    the same in-process policies. Either: the Service-range policy only where the API server
    serves ServiceCIDR."""
    if engine == "native":
        objects = native_objects(
            policy if policy is not None else PolicySettings(),
            name=installation.name,
            default_mode=installation.default_mode,
            never_judged=installation.never_judged("native"),
            today=today,
        )
        if not installation.service_cidrs:
            service_range = {
                SERVICE_RANGE.name(installation.name),
                *SERVICE_RANGE.binding_names(installation.name),
            }
            objects = [o for o in objects if o["metadata"]["name"] not in service_range]
    else:
        objects = [
            *_webhook_configurations(
                installation, policy if policy is not None else PolicySettings()
            ),
            *companion_policies(
                name=installation.name,
                default_mode=installation.default_mode,
                never_judged=installation.never_judged(),
                service_cidrs=installation.service_cidrs,
            ),
        ]
    _check_inventoried(objects, installation.name)
    return objects


def _check_inventoried(objects: list[Manifest], installation: str) -> None:
    inventory = {kind: set(installed_names(kind, installation)) for kind in ADMISSION_KINDS}
    for manifest in objects:
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        if name not in inventory.get(kind, ()):
            raise NotInInventory(f"{kind} {name} is not in core/installation.py's inventory")


def _webhook_configurations(
    installation: Installation, policy: PolicySettings
) -> tuple[Manifest, Manifest]:
    configurations = webhook_configurations(
        target=installation.target(),
        ca_bundle=installation.ca_bundle or b"",
        default_mode=installation.default_mode,
        own_namespace=installation.own_namespace,
        excluded_namespaces=installation.excluded_namespaces,
        timeout_seconds=installation.timeout_seconds,
        failure_policy=installation.failure_policy,
        audit_failure_policy=installation.audit_failure_policy,
        name=installation.name,
        allowed_ingress_classes=policy.allowed_ingress_classes,
        allowed_gateway_classes=policy.allowed_gateway_classes,
        allowed_gateways=policy.allowed_gateways,
    )
    if installation.ca_bundle is None:
        # Left out after the config hash is taken over an empty one, as `render` always has.
        for configuration in configurations:
            for webhook in configuration["webhooks"]:
                webhook["clientConfig"].pop("caBundle", None)
    return configurations
