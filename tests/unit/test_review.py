"""AdmissionReview parsing and the response builder."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from clusterip_guard.core.decision import ALLOWED, Decision
from clusterip_guard.core.exposure import Violation
from clusterip_guard.core.review import ReviewError, build_response, parse_review, service_change_of
from tests.support.builders import admission_review, service


def _body(review: Any) -> bytes:
    return json.dumps(review).encode()


def test_a_service_create_becomes_a_service_change() -> None:
    request = parse_review(_body(admission_review(service("NodePort"), uid="u-1")))
    change = service_change_of(request)
    assert change is not None
    assert (change.operation, change.namespace, change.name) == ("CREATE", "shop", "web")
    assert change.old_service is None


def test_an_update_carries_the_old_object() -> None:
    review = admission_review(service("NodePort"), operation="UPDATE", old=service())
    change = service_change_of(parse_review(_body(review)))
    assert change is not None
    assert change.old_service == service()


def test_a_generated_name_is_shown_as_a_glob() -> None:
    svc = service("NodePort")
    svc["metadata"] = {"generateName": "web-", "namespace": "shop"}
    change = service_change_of(parse_review(_body(admission_review(svc))))
    assert change is not None
    assert change.name == "web-*"


def test_an_update_through_services_status_is_judged_as_one() -> None:
    old = service("LoadBalancer")
    review = admission_review(
        service("LoadBalancer"), operation="UPDATE", old=old, sub_resource="status"
    )
    change = service_change_of(parse_review(_body(review)))
    assert change is not None
    assert (change.operation, change.subresource) == ("UPDATE", "status")
    assert change.old_service == old


@pytest.mark.parametrize(
    "review",
    [
        admission_review(service("NodePort"), operation="DELETE"),
        admission_review(service("NodePort"), sub_resource="status"),  # a CREATE: none exists
        admission_review(service("NodePort"), operation="UPDATE", sub_resource="proxy"),
        admission_review({"kind": "ConfigMap"}, kind="ConfigMap"),
        admission_review(service("NodePort"), group="example.com"),
        admission_review(None, operation="CREATE"),
    ],
    ids=["DELETE", "status CREATE", "other subresource", "other kind", "other group", "no object"],
)
def test_requests_that_are_not_service_changes_are_not_judged(review: dict[str, Any]) -> None:
    assert service_change_of(parse_review(_body(review))) is None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[]", "JSON object"),
        (
            _body({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview"}),
            "apiVersion",
        ),
        (_body({"apiVersion": "admission.k8s.io/v1", "kind": "Pod"}), "kind"),
        (_body({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}), "no request"),
        (
            _body({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {}}),
            "uid",
        ),
    ],
)
def test_malformed_reviews_are_refused_with_one_line(body: bytes, reason: str) -> None:
    with pytest.raises(ReviewError) as caught:
        parse_review(body)
    assert reason in str(caught.value)
    assert "\n" not in str(caught.value)


def test_response_echoes_the_uid_and_allows() -> None:
    review = build_response(uid="abc", decision=ALLOWED)
    assert review == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": "abc", "allowed": True},
    }


def test_patch_is_returned_base64_encoded_as_json_patch() -> None:
    patch = [{"op": "replace", "path": "/spec/type", "value": "ClusterIP"}]
    decision = Decision(verdict="mutated", patch=patch, warnings=("converted",))
    response = build_response(uid="abc", decision=decision)["response"]
    assert response["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(response["patch"])) == patch
    assert response["warnings"] == ["converted"]


def test_denial_is_a_403_status_with_the_reason_and_audit_annotations() -> None:
    violation = Violation("node-ports", "spec.type", "opens node ports", "use ClusterIP")
    decision = Decision(
        verdict="denied",
        violations=(violation,),
        denial="no NodePorts here",
        audit_annotations={"denied": "spec.type"},
    )
    response = build_response(uid="abc", decision=decision)["response"]
    assert response["allowed"] is False
    assert response["status"] == {
        "code": 403,
        "reason": "Forbidden",
        "message": "no NodePorts here",
    }
    assert response["auditAnnotations"] == {"denied": "spec.type"}
