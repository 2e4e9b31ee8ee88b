"""AdmissionReview in and out (admission.k8s.io/v1, docs/design.md, "HTTP (HTTPS only)").
Pure: bytes and dicts.

Two error channels, as the API server expects: a malformed review raises `ReviewError`
(the HTTP layer answers 400), while a bad Service is a well-formed `allowed: false` response.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from clusterip_guard.core.decision import (
    Change,
    Decision,
    GatewayApiChange,
    IngressChange,
    ServiceChange,
    WorkloadChange,
)
from clusterip_guard.core.gateways import GATEWAY_API_KIND_NAMES, GATEWAY_GROUP
from clusterip_guard.core.ingresses import INGRESS_GROUP, INGRESS_KIND
from clusterip_guard.core.services import display_name, namespace_of
from clusterip_guard.core.types import AdmissionResponse, AdmissionReviewResponse, Manifest
from clusterip_guard.core.workloads import workload_kind

API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"
_JUDGED_OPERATIONS = ("CREATE", "UPDATE")


class ReviewError(ValueError):
    """The request body is not an AdmissionReview we can answer; the message is one line."""


@dataclass(frozen=True)
class AdmissionRequest:
    uid: str
    operation: str
    group: str
    kind: str
    sub_resource: str
    namespace: str
    name: str
    dry_run: bool
    object: Manifest | None
    old_object: Manifest | None
    user: str = ""  # request.userInfo: who asked, for the log
    groups: tuple[str, ...] = ()


# Kubernetes objects nest a few levels deep; a review is the object twice, a few levels down.
# Deeper bodies are refused before anything recurses over them (copying, diffing).
MAX_NESTING = 64


def _nests_deeper_than(value: object, levels: int) -> bool:
    """Whether `value` (parsed JSON, so exactly dicts and lists) nests more than `levels`
    containers deep; the recursion stops there, so it is bounded by `levels` itself."""
    if levels == 0:
        return True
    for child in value.values() if type(value) is dict else value:  # type: ignore[attr-defined]
        kind = type(child)
        if (kind is dict or kind is list) and _nests_deeper_than(child, levels - 1):
            return True
    return False


def parse_review(body: bytes) -> AdmissionRequest:
    try:
        text = body.decode("utf-8")  # JSON on the wire is UTF-8 (RFC 8259); nothing else
    except UnicodeDecodeError as error:
        raise ReviewError(f"body is not UTF-8: {error}") from error
    try:
        # orjson, not json: twice as fast, and it refuses what is not JSON (NaN,
        # Infinity, numbers past a double, lone surrogates) where json accepts some of it.
        review = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        if str(error).startswith("depth limit"):  # orjson's own limit, far past ours
            raise ReviewError(f"body is nested deeper than {MAX_NESTING} levels") from None
        raise ReviewError(f"body is not valid JSON: {error}") from None
    if not isinstance(review, dict):
        raise ReviewError("body must be a JSON object (an AdmissionReview)")
    # Nesting deeper than the limit needs more brackets than the limit: a CREATE's review
    # mostly has fewer, and is spared the walk.
    brackets = text.count("{") + text.count("[")
    if brackets > MAX_NESTING and _nests_deeper_than(review, MAX_NESTING):
        raise ReviewError(f"body is nested deeper than {MAX_NESTING} levels")
    if review.get("apiVersion") != API_VERSION or review.get("kind") != KIND:
        raise ReviewError(
            f"expected apiVersion {API_VERSION} and kind {KIND}, got "
            f"{review.get('apiVersion')!r} and {review.get('kind')!r}"
        )
    request = review.get("request")
    if not isinstance(request, dict):
        raise ReviewError("AdmissionReview has no request object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise ReviewError("request.uid is missing; the response must echo it")
    kind = request.get("kind")
    kind = kind if isinstance(kind, dict) else {}
    user_info = request.get("userInfo")
    user_info = user_info if isinstance(user_info, dict) else {}
    groups = user_info.get("groups")
    return AdmissionRequest(
        uid=uid,
        operation=_text(request, "operation"),
        group=_text(kind, "group"),
        kind=_text(kind, "kind"),
        sub_resource=_text(request, "subResource"),
        namespace=_text(request, "namespace"),
        name=_text(request, "name"),
        dry_run=request.get("dryRun") is True,
        object=_object(request, "object"),
        old_object=_object(request, "oldObject"),
        user=_text(user_info, "username"),
        groups=tuple(g for g in groups if isinstance(g, str)) if isinstance(groups, list) else (),
    )


def _judged_write(request: AdmissionRequest, group: str, kind: str) -> bool:
    """A CREATE or UPDATE of this kind, or an UPDATE through its status subresource (the
    callers check that it carries an object)."""
    return (
        request.group == group
        and request.kind == kind
        and request.operation in _JUDGED_OPERATIONS
        and request.sub_resource in ("", "status")
        and (request.sub_resource != "status" or request.operation == "UPDATE")
    )


def service_change_of(request: AdmissionRequest) -> ServiceChange | None:
    """The Service change to judge, or None when the request is not ours to look at: a CREATE
    or UPDATE of a Service, or an UPDATE through services/status (which changes annotations
    and labels, core/decision.py says why that matters)."""
    if request.object is None or not _judged_write(request, "", "Service"):
        return None
    return ServiceChange(
        operation=request.operation,
        namespace=request.namespace or namespace_of(request.object),
        name=request.name or display_name(request.object),
        service=request.object,
        old_service=request.old_object if request.operation == "UPDATE" else None,
        subresource=request.sub_resource,
    )


def change_of(request: AdmissionRequest) -> Change | None:
    """The change to judge: a Service's, a Pod's, a workload's, an Ingress's, a Gateway's or a
    route's; None when the request is not ours to look at."""
    return (
        service_change_of(request)
        or workload_change_of(request)
        or ingress_change_of(request)
        or gateway_api_change_of(request)
    )


def gateway_api_change_of(request: AdmissionRequest) -> GatewayApiChange | None:
    """A CREATE or UPDATE of a Gateway or a route (any version), or an UPDATE through its
    status subresource (which keeps the spec: what it keeps is allowed), or None."""
    if request.object is None or not any(
        _judged_write(request, GATEWAY_GROUP, kind) for kind in GATEWAY_API_KIND_NAMES
    ):
        return None
    return GatewayApiChange(
        operation=request.operation,
        namespace=request.namespace or namespace_of(request.object),
        name=request.name or display_name(request.object),
        kind=request.kind,
        manifest=request.object,
        old_manifest=request.old_object if request.operation == "UPDATE" else None,
        subresource=request.sub_resource,
    )


def ingress_change_of(request: AdmissionRequest) -> IngressChange | None:
    """A CREATE or UPDATE of an Ingress, or an UPDATE through ingresses/status (which keeps
    the spec but takes annotations, the deprecated class among them), or None."""
    if request.object is None or not _judged_write(request, INGRESS_GROUP, INGRESS_KIND):
        return None
    return IngressChange(
        operation=request.operation,
        namespace=request.namespace or namespace_of(request.object),
        name=request.name or display_name(request.object),
        ingress=request.object,
        old_ingress=request.old_object if request.operation == "UPDATE" else None,
        subresource=request.sub_resource,
    )


def workload_change_of(request: AdmissionRequest) -> WorkloadChange | None:
    """A CREATE or UPDATE of a Pod or of a workload that makes Pods (not a subresource:
    none of theirs changes a Pod spec), or None."""
    kind = workload_kind(request.group, request.kind)
    if (
        kind is None
        or request.operation not in _JUDGED_OPERATIONS
        or request.object is None
        or request.sub_resource != ""
    ):
        return None
    return WorkloadChange(
        operation=request.operation,
        namespace=request.namespace or namespace_of(request.object),
        name=request.name or display_name(request.object),
        kind=kind,
        workload=request.object,
        old_workload=request.old_object if request.operation == "UPDATE" else None,
        user=request.user,
    )


def build_response(*, uid: str, decision: Decision) -> AdmissionReviewResponse:
    response: AdmissionResponse = {"uid": uid, "allowed": decision.allowed}
    if not decision.allowed:
        response["status"] = {"code": 403, "reason": "Forbidden", "message": decision.denial}
    if decision.patch:
        response["patch"] = base64.b64encode(orjson.dumps(decision.patch)).decode("ascii")
        response["patchType"] = "JSONPatch"
    if decision.warnings:
        response["warnings"] = list(decision.warnings)
    if decision.audit_annotations:
        response["auditAnnotations"] = dict(decision.audit_annotations)
    return {"apiVersion": API_VERSION, "kind": KIND, "response": response}


def _text(mapping: Mapping[str, Any], key: str) -> str:
    value = mapping.get(key)
    return value if isinstance(value, str) else ""


def _object(request: Mapping[str, Any], key: str) -> Manifest | None:
    value = request.get(key)
    return value if isinstance(value, dict) else None
