"""Shared type aliases and the typed AdmissionReview wire format (admission.k8s.io/v1)."""

from __future__ import annotations

from typing import Any, Literal, TypedDict

Manifest = dict[str, Any]
"""A Kubernetes object as plain data (a Service, a List, an AdmissionReview)."""

PatchOperation = dict[str, Any]
"""One RFC 6902 JSON Patch operation."""

Mode = Literal["enforce", "mutate", "audit", "off"]
MODES: tuple[Mode, ...] = ("enforce", "mutate", "audit", "off")

Verdict = Literal["allowed", "denied", "mutated", "warned"]


def as_mode(text: str) -> Mode:
    """`text` as a Mode; ValueError naming the modes when it is not one."""
    for mode in MODES:
        if text == mode:
            return mode
    raise ValueError(f"{text!r} is not a mode (one of: {', '.join(MODES)})")


class Status(TypedDict, total=False):
    code: int
    reason: str
    message: str


class AdmissionResponse(TypedDict, total=False):
    uid: str
    allowed: bool
    status: Status
    patch: str
    patchType: Literal["JSONPatch"]
    warnings: list[str]
    auditAnnotations: dict[str, str]


class AdmissionReviewResponse(TypedDict):
    apiVersion: str
    kind: str
    response: AdmissionResponse


# How the policy is enforced (docs/design.md, "Engines").
Engine = Literal["webhook", "native"]
ENGINES: tuple[Engine, ...] = ("webhook", "native")
