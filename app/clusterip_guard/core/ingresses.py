"""What makes an Ingress a door into the cluster (docs/design.md, "What counts as exposed"): its
class, whose controller serves it, where the controller listens. Pure.

An Ingress is exposure unless every class it names is one the policy allows
(`allowedIngressClasses`): `spec.ingressClassName`, and the deprecated annotation
`kubernetes.io/ingress.class`, which controllers still read (some before the field). The API
server refuses the two differing only on CREATE, so an UPDATE can add an annotation naming
another class: each class named is a piece. An Ingress that names none is one piece: the
cluster's default IngressClass is written into `spec.ingressClassName` by the API server
itself (its DefaultIngressClass admission plugin, on CREATE, before any webhook or policy
sees the object), so an Ingress that still has no class is served by whatever controller
takes Ingresses without one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from clusterip_guard.core import sentences as say
from clusterip_guard.core.exposure import Violation
from clusterip_guard.core.names import INGRESS_CLASS_ANNOTATION
from clusterip_guard.core.policy import PolicySettings

INGRESS_KIND: Final = "Ingress"
INGRESS_GROUP: Final = "networking.k8s.io"
INGRESS_API_VERSION: Final = f"{INGRESS_GROUP}/v1"
INGRESS_RESOURCE: Final = "ingresses"
# Keys of its pieces: a class named (with the class), or none named.
INGRESS_CLASS_KEY_PREFIX: Final = "ingress-class:"
NO_INGRESS_CLASS: Final = "ingress-no-class"
CLASS_FIELD: Final = "spec.ingressClassName"
ANNOTATION_FIELD: Final = f"metadata.annotations[{INGRESS_CLASS_ANNOTATION}]"
# What makes an allowed class a glob: without these it matches only itself (fnmatchcase).
GLOB_CHARACTERS: Final = frozenset("*?[")


def is_ingress(manifest: Mapping[str, Any]) -> bool:
    """A networking.k8s.io/v1 Ingress (for `check` and the scan)."""
    return (
        manifest.get("kind") == INGRESS_KIND and manifest.get("apiVersion") == INGRESS_API_VERSION
    )


def named_classes(ingress: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, class) for each class the Ingress names; the annotation only where it names
    another class than the field."""
    spec = ingress.get("spec")
    metadata = ingress.get("metadata")
    value = spec.get("ingressClassName") if isinstance(spec, Mapping) else None
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    found: list[tuple[str, str]] = []
    if isinstance(value, str):
        found.append((CLASS_FIELD, value))
    if isinstance(annotations, Mapping) and INGRESS_CLASS_ANNOTATION in annotations:
        annotated = annotations[INGRESS_CLASS_ANNOTATION]
        annotated = annotated if isinstance(annotated, str) else ""
        if not found or found[0][1] != annotated:
            found.append((ANNOTATION_FIELD, annotated))
    return found


def allowed_classes_fix(policy: PolicySettings) -> str:
    """What to do instead, naming the classes the policy allows."""
    if not policy.allowed_ingress_classes:
        return say.NO_INGRESS_CLASS_ALLOWED
    return say.USE_ALLOWED_INGRESS_CLASS.format(classes=", ".join(policy.allowed_ingress_classes))


def ingress_exposure_of(
    ingress: Mapping[str, Any], policy: PolicySettings
) -> tuple[Violation, ...]:
    """Every piece of the Ingress's exposure that `policy` does not allow."""
    fix = allowed_classes_fix(policy)
    named = named_classes(ingress)
    if not named:
        return (
            Violation(
                key=NO_INGRESS_CLASS, field=CLASS_FIELD, summary=say.INGRESS_WITHOUT_CLASS, fix=fix
            ),
        )
    return tuple(
        Violation(
            key=f"{INGRESS_CLASS_KEY_PREFIX}{name}",
            field=field,
            summary=say.INGRESS_CLASS.format(ingress_class=name)
            if name
            else say.UNREADABLE_INGRESS_CLASS,
            fix=fix,
        )
        for field, name in named
        if not policy.ingress_class_allowed(name)
    )
