"""The names other software sees: labels, annotations, object names, namespaces.

One module, so that the bootstrap, the chart and the docs cannot disagree (docs/design.md,
"Modes, per namespace"); the admission entries' names and paths are in core/admission.py.
"""

from __future__ import annotations

from typing import Final

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

# --- on Ingresses ----------------------------------------------------------------------------
# The class an Ingress had before spec.ingressClassName (deprecated, still read by controllers;
# the API server refuses it beside a different spec.ingressClassName only on CREATE).
INGRESS_CLASS_ANNOTATION: Final = "kubernetes.io/ingress.class"

# --- auditAnnotations keys (the API server prefixes them with the webhook's name) -----------
AUDIT_EXPOSURE: Final = "exposure"
AUDIT_DENIED: Final = "denied"
AUDIT_CONVERTED_FROM: Final = "converted-from"
AUDIT_EXEMPTED_BY: Final = "exempted-by"
AUDIT_EXISTING_EXPOSURE: Final = "existing-exposure"

# --- the webhooks (each entry's name and path: core/admission.py) ------------------------------
EXPOSED_SERVICE_MATCH_CONDITION: Final = "exposed-service"
HOST_EXPOSED_MATCH_CONDITION: Final = "host-ports-or-network"
INGRESS_CLASS_MATCH_CONDITION: Final = "ingress-class-not-allowed"
GATEWAY_CLASS_MATCH_CONDITION: Final = "gateway-class-not-allowed"
ROUTE_PARENT_MATCH_CONDITION: Final = "route-parent-not-allowed"

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
