"""The names other software sees: labels, annotations, webhook names and paths, namespaces.

One module, so that the bootstrap, the chart and the docs cannot disagree (docs/design.md §2, §6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from clusterip_guard.core.types import Mode

PROJECT: Final = "clusterip-guard"
DOMAIN: Final = "clusterip-guard.io"

# --- on namespaces ---------------------------------------------------------------------------
MODE_LABEL: Final = f"{DOMAIN}/mode"
# Set by the API server on every namespace: a selector can name namespaces through it.
NAMESPACE_NAME_LABEL: Final = "kubernetes.io/metadata.name"
# Never judged, whatever their label says; the webhook's own namespace joins them.
NEVER_JUDGED_NAMESPACES: Final = frozenset({"kube-system", "kube-public", "kube-node-lease"})
# Where a Service without metadata.namespace lands, as kubectl would put it.
DEFAULT_NAMESPACE: Final = "default"

# --- on Services -----------------------------------------------------------------------------
CONVERTED_FROM_ANNOTATION: Final = f"{DOMAIN}/converted-from"
# The annotation form of spec.loadBalancerSourceRanges, read by cloud providers.
SOURCE_RANGES_ANNOTATION: Final = "service.beta.kubernetes.io/load-balancer-source-ranges"

# --- auditAnnotations keys (the API server prefixes them with the webhook's name) -----------
AUDIT_EXPOSURE: Final = "exposure"
AUDIT_DENIED: Final = "denied"
AUDIT_CONVERTED_FROM: Final = "converted-from"
AUDIT_EXEMPTED_BY: Final = "exempted-by"
AUDIT_EXISTING_EXPOSURE: Final = "existing-exposure"

# --- the webhooks ------------------------------------------------------------------------------
MUTATE_PATH: Final = "/mutate"
ENFORCE_PATH: Final = "/validate/enforce"
# The validating backstop behind the mutating webhook, in mutate namespaces: whatever is still
# exposed after every mutation is denied, and counted as mutate's.
MUTATE_BACKSTOP_PATH: Final = "/validate/mutate"
AUDIT_PATH: Final = "/validate/audit"
# Namespaces whose mode label holds a value that is not a mode (a typo, `Enforce`): judged as
# enforce, and the denial says so, rather than left unjudged.
UNKNOWN_MODE_PATH: Final = "/validate/unknown-mode"


@dataclass(frozen=True)
class WebhookPath:
    judges_as: Mode  # the decision's mode
    counted_as: Mode  # the mode of the namespaces it serves: what metrics and logs say
    label_not_a_mode: bool = False


WEBHOOK_PATHS: Final[dict[str, WebhookPath]] = {
    MUTATE_PATH: WebhookPath("mutate", "mutate"),
    ENFORCE_PATH: WebhookPath("enforce", "enforce"),
    MUTATE_BACKSTOP_PATH: WebhookPath("enforce", "mutate"),
    AUDIT_PATH: WebhookPath("audit", "audit"),
    UNKNOWN_MODE_PATH: WebhookPath("enforce", "enforce", label_not_a_mode=True),
}
MUTATE_WEBHOOK: Final = f"mutate.{DOMAIN}"
ENFORCE_WEBHOOK: Final = f"enforce.{DOMAIN}"
AUDIT_WEBHOOK: Final = f"audit.{DOMAIN}"
UNKNOWN_MODE_WEBHOOK: Final = f"unknown-mode.{DOMAIN}"
MUTATE_BACKSTOP_WEBHOOK: Final = f"mutate-backstop.{DOMAIN}"
# For namespaces without the mode label, when the cluster default mode is not `off`.
MUTATE_DEFAULT_WEBHOOK: Final = f"mutate-default.{DOMAIN}"
ENFORCE_DEFAULT_WEBHOOK: Final = f"enforce-default.{DOMAIN}"
MUTATE_BACKSTOP_DEFAULT_WEBHOOK: Final = f"mutate-backstop-default.{DOMAIN}"
AUDIT_DEFAULT_WEBHOOK: Final = f"audit-default.{DOMAIN}"
EXPOSED_SERVICE_MATCH_CONDITION: Final = "exposed-service"

# --- who may set the mode label ----------------------------------------------------------------
# A ValidatingAdmissionPolicy on Namespaces: the label may be added, changed or removed only by
# whom RBAC grants this verb on this resource (cluster admins hold every verb).
MODE_LABEL_POLICY: Final = f"{PROJECT}-mode-label"
MODE_ADMIN_GROUP: Final = DOMAIN  # the API group of the RBAC rule
MODE_ADMIN_RESOURCE: Final = "namespaces"
MODE_ADMIN_VERB: Final = "set-mode"

# --- what the bootstrap creates ---------------------------------------------------------------
CONFIGURATION_NAME: Final = PROJECT  # both webhook configurations
SERVICE_NAME: Final = PROJECT
INSTALL_NAMESPACE: Final = PROJECT
TLS_SECRET_NAME: Final = f"{PROJECT}-tls"
CA_SECRET_NAME: Final = f"{PROJECT}-ca"
CONFIG_HASH_ANNOTATION: Final = f"{DOMAIN}/config-hash"
# On the webhook configurations: the settings of the last bootstrap, kept by a re-run that
# does not give them (JSON).
BOOTSTRAP_SETTINGS_ANNOTATION: Final = f"{DOMAIN}/bootstrap-settings"
NAME_LABEL: Final = "app.kubernetes.io/name"
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY_BOOTSTRAP: Final = f"{PROJECT}-bootstrap"
