"""Whatever arrives, the HTTP layer answers 200 or a 4xx with one line: never a 5xx."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clusterip_guard.core.names import WEBHOOK_PATHS
from clusterip_guard.core.settings import PolicySettings
from clusterip_guard.server.app import create_app
from clusterip_guard.server.metrics import WebhookMetrics
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
@given(body=st.binary(max_size=200), path=st.sampled_from(list(WEBHOOK_PATHS)))
def test_arbitrary_bytes(client: Client, body: bytes, path: str) -> None:
    _check(client.post(path, content=body, headers={"content-type": "application/json"}))


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    field=st.sampled_from(["request", "uid", "kind", "operation", "object", "oldObject",
                           "namespace", "name", "dryRun", "subResource"]),
    value=json_values,
    path=st.sampled_from(list(WEBHOOK_PATHS)),
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
