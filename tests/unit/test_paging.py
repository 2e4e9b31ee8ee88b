"""The one pager every list goes through (cluster/listing.py), and the patience it shows the
API server (cluster/limits.py): fed by a fake list call, so each case is exact."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from clusterip_guard.cluster import limits
from clusterip_guard.cluster.errors import ClusterRefused
from clusterip_guard.cluster.limits import patiently
from clusterip_guard.cluster.listing import Listing, pages


def service(namespace: str, name: str) -> dict[str, Any]:
    return {"metadata": {"namespace": namespace, "name": name}}


CLUSTER = [service(f"team-{n}", f"svc-{i}") for n in range(3) for i in range(4)]


@dataclass
class Response:
    data: bytes


def gone(token: str | None) -> ApiException:
    error = ApiException(status=410, reason="Gone")
    metadata = {"continue": token} if token else {}
    error.body = json.dumps({"kind": "Status", "code": 410, "metadata": metadata})
    return error


@dataclass
class FakeList:
    """A list of CLUSTER that pages by index (the token), and fails as told at given calls."""

    failures: dict[int, ApiException] = field(default_factory=dict)
    calls: list[tuple[int, str | None]] = field(default_factory=list)

    def __call__(self, *, limit: int, _continue: str | None, _preload_content: bool) -> Response:
        self.calls.append((limit, _continue))
        failure = self.failures.get(len(self.calls))
        if failure is not None:
            raise failure
        start = int(_continue or 0)
        items = CLUSTER[start : start + limit]
        more = str(start + limit) if start + limit < len(CLUSTER) else None
        return Response(json.dumps({"items": items, "metadata": {"continue": more}}).encode())


def names(listing: Listing) -> list[str]:
    return [f"{i['metadata']['namespace']}/{i['metadata']['name']}" for i in pages(listing)]


EVERY = [f"{s['metadata']['namespace']}/{s['metadata']['name']}" for s in CLUSTER]


@pytest.fixture
def said(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    lines: list[str] = []
    monkeypatch.setattr(limits, "_counters", [lines.append])
    monkeypatch.setattr("clusterip_guard.cluster.limits.time.sleep", lambda seconds: None)
    return lines


def test_every_item_comes_once_a_page_at_a_time(said: list[str]) -> None:
    fake = FakeList()
    assert names(Listing("services", None, fake, page_size=5)) == EVERY
    assert fake.calls == [(5, None), (5, "5"), (5, "10")]
    assert said == []


def test_an_expired_list_continues_with_the_token_the_410_offers(said: list[str]) -> None:
    fake = FakeList(failures={2: gone("5")})  # the second page expired; go on from item 5
    assert names(Listing("services", None, fake, page_size=5)) == EVERY
    assert fake.calls[1:3] == [(5, "5"), (5, "5")]
    assert said == ["list-expired"]


def test_an_expired_list_without_a_token_starts_again_and_skips_what_was_read(
    said: list[str],
) -> None:
    fake = FakeList(failures={3: gone(None)})
    assert names(Listing("services", None, fake, page_size=5)) == EVERY  # nothing twice
    assert fake.calls[2:4] == [(5, "10"), (5, None)]
    assert said == ["list-expired"]


def test_a_throttled_page_is_asked_again_after_the_pause_the_server_wants(
    said: list[str],
) -> None:
    throttled = ApiException(status=429, reason="Too Many Requests")
    throttled.headers = {"Retry-After": "3"}
    fake = FakeList(failures={1: throttled, 2: throttled})
    assert names(Listing("services", None, fake, page_size=5)) == EVERY
    assert said == ["throttled", "throttled"]


def test_throttling_past_the_patience_fails_in_one_line() -> None:
    pauses: list[float] = []

    def refuse() -> None:
        raise ApiException(status=429, reason="Too Many Requests")

    with pytest.raises(ClusterRefused, match=r"429 Too Many Requests\) to list services for"):
        patiently(refuse, "list services", sleep=pauses.append, patience=10)
    assert pauses == [0.5, 1.0, 2.0, 4.0, 8.0]  # growing, until ten seconds were spent


def test_other_failures_are_not_retried() -> None:
    def forbid() -> None:
        raise ApiException(status=403, reason="Forbidden")

    with pytest.raises(ApiException):
        patiently(forbid, "list services", sleep=lambda seconds: None)
