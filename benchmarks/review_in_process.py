"""What one review costs in Python alone: the webhook's review endpoint called in process (no
HTTP, no TLS, no event-loop wake-up), and its parts (parsing, the decision, the answer), in
microseconds per review, each after a warm-up. The decision log line goes to /dev/null.

These are the hot figures: through the API server each call meets an idle process and costs
about three times as much (docs/benchmarks.md, "Against fair floors").
Usage: python benchmarks/review_in_process.py [--reviews 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clusterip_guard.core.decision import decide  # noqa: E402
from clusterip_guard.core.policy import PolicySettings  # noqa: E402
from clusterip_guard.core.review import build_response, change_of, parse_review  # noqa: E402
from clusterip_guard.server.app import create_app  # noqa: E402
from clusterip_guard.telemetry.logs import configure_json_logging  # noqa: E402
from clusterip_guard.telemetry.metrics import WebhookMetrics  # noqa: E402
from tests.support.builders import admission_review, service  # noqa: E402


def per_call(reviews: int, call: Callable[[], Any]) -> float:
    for _ in range(200):
        call()
    started = time.perf_counter()
    for _ in range(reviews):
        call()
    return (time.perf_counter() - started) / reviews * 1e6


def endpoint_per_call(reviews: int, path: str, body: bytes, policy: PolicySettings) -> float:
    app = create_app(policy=lambda: policy, metrics=WebhookMetrics())
    scope = {"type": "http", "method": "POST", "path": path,
             "headers": [(b"content-type", b"application/json")]}  # fmt: skip

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    statuses: set[int] = set()

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            statuses.add(message["status"])

    async def calls() -> float:
        for _ in range(200):
            await app(scope, receive, send)
        if statuses != {200}:  # timing an error answer would time the wrong path
            raise RuntimeError(f"{path} answered {sorted(statuses)}, not 200")
        started = time.perf_counter()
        for _ in range(reviews):
            await app(scope, receive, send)
        return (time.perf_counter() - started) / reviews * 1e6

    return asyncio.run(calls())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=20_000)
    n = parser.parse_args().reviews
    body = json.dumps(admission_review(service("NodePort"))).encode()
    policy, today = PolicySettings(), datetime.date.today()
    change = change_of(parse_review(body))
    assert change is not None
    denied = decide(change, "enforce", policy, today=today)
    converted = decide(change, "mutate", policy, today=today)
    configure_json_logging("info")
    with open("/dev/null", "w", encoding="utf-8") as nowhere:
        logging.getLogger().handlers[0].stream = nowhere  # type: ignore[attr-defined]
        rows = [
            ("parse the review", per_call(n, lambda: parse_review(body))),
            ("decide, enforce",
             per_call(n, lambda: decide(change, "enforce", policy, today=today))),
            ("decide, mutate (conversion and patch)",
             per_call(n, lambda: decide(change, "mutate", policy, today=today))),
            ("build and encode the answer, enforce",
             per_call(n, lambda: orjson.dumps(build_response(uid="u", decision=denied)))),
            ("build and encode the answer, mutate",
             per_call(n, lambda: orjson.dumps(build_response(uid="u", decision=converted)))),
            ("whole endpoint, enforce", endpoint_per_call(n, "/validate/enforce", body, policy)),
            ("whole endpoint, mutate", endpoint_per_call(n, "/mutate", body, policy)),
        ]  # fmt: skip
        logging.getLogger().setLevel(logging.WARNING)
        rows.append(("whole endpoint, enforce, no log line",
                     endpoint_per_call(n, "/validate/enforce", body, policy)))  # fmt: skip
    print("| part | us per review |\n|---|---:|")
    for label, micros in rows:
        print(f"| {label} | {micros:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
