"""Whatever arrives, the HTTP layer answers 200 or a 4xx with one line: never a 5xx."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clusterip_guard.core.admission import ROUTES
from clusterip_guard.core.policy import PolicySettings
from clusterip_guard.server.app import create_app
from clusterip_guard.telemetry.metrics import WebhookMetrics
from tests.support.builders import admission_review, service

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=15,
)


class Client:
    """Posts to the ASGI app in this process (no TLS: the TLS path has its own tests)."""

    def __init__(self) -> None:
        self.app = create_app(policy=PolicySettings, metrics=WebhookMetrics())

    def post(self, path: str, content: bytes | str, headers: dict[str, str]) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="https://test") as client:
                return await client.post(path, content=content, headers=headers)

        return asyncio.run(send())


@pytest.fixture(scope="module")
def client() -> Client:
    return Client()


def _check(reply: Any) -> None:
    assert reply.status_code in (200, 400), reply.text
    if reply.status_code == 400:
        assert "\n" not in reply.json()["error"]


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=200), path=st.sampled_from(list(ROUTES)))
def test_arbitrary_bytes(client: Client, body: bytes, path: str) -> None:
    _check(client.post(path, content=body, headers={"content-type": "application/json"}))


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    field=st.sampled_from(["request", "uid", "kind", "operation", "object", "oldObject",
                           "namespace", "name", "dryRun", "subResource"]),
    value=json_values,
    path=st.sampled_from(list(ROUTES)),
)  # fmt: skip
def test_admission_reviews_with_one_field_replaced(
    client: Client, field: str, value: Any, path: str
) -> None:
    review = admission_review(service("NodePort"), operation="UPDATE", old=service())
    if field == "request":
        review["request"] = value
    else:
        review["request"][field] = value
    reply = client.post(
        path, content=json.dumps(review), headers={"content-type": "application/json"}
    )
    _check(reply)
    if reply.status_code == 200:
        assert reply.json()["response"]["uid"] == review["request"]["uid"]


def nested(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


def review_with_object_field(value_json: str) -> str:
    """A valid AdmissionReview whose Service carries `value_json` under a label-like field."""
    review = admission_review(service("NodePort"))
    text = json.dumps(review)
    return text.replace('"labels": {', f'"deep": {value_json}, "labels": {{', 1)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(nested(100_000), "nested", id="deep nesting at the top"),
        pytest.param(review_with_object_field(nested(5_000)), "nested",
                     id="deep nesting inside a valid review"),
        pytest.param(review_with_object_field(nested(150)), "nested",
                     id="nesting too deep to convert safely"),
        pytest.param(review_with_object_field("1" * 5_000), "JSON", id="a huge integer"),
        pytest.param(review_with_object_field("1e999"), "number",
                     id="a number too big for a float"),
        pytest.param(review_with_object_field("NaN"), "not valid JSON", id="NaN"),
        pytest.param(review_with_object_field("-Infinity"), "not valid JSON", id="Infinity"),
        pytest.param(review_with_object_field('"\\ud800"'), "not valid JSON",
                     id="a lone surrogate"),
        pytest.param(json.dumps(admission_review(service("NodePort"))).encode("utf-16"), "UTF-8",
                     id="UTF-16"),
        pytest.param(b"\xef\xbb\xbf" + json.dumps(admission_review(service())).encode(), "JSON",
                     id="a byte order mark"),
        pytest.param(b'{"apiVersion": "\xff"}', "UTF-8", id="invalid UTF-8"),
    ],
)  # fmt: skip
def test_pathological_json_is_a_one_line_400_counted_as_bad(body: str | bytes, reason: str) -> None:
    metrics = WebhookMetrics()
    client = Client()
    client.app = create_app(policy=PolicySettings, metrics=metrics)
    reply = client.post("/validate/enforce", content=body,
                        headers={"content-type": "application/json"})  # fmt: skip
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert "\n" not in error
    assert reason in error
    assert metrics.bad_requests.labels("400")._value.get() == 1
