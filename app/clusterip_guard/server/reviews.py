"""The AdmissionReview routes as a plain ASGI endpoint, mounted inside the FastAPI app.

Every Service write waits on this answer, so the path is kept short (docs/benchmarks.md has
the measurements): no FastAPI dependency solving, request model or middleware stack, no
Request/Response objects; the body is read straight from ASGI messages and the answer is one
pre-built header list and one body. Behaviour is that of the rest of the app: one-line 4xx
errors (`{"error": ...}`), the body limits, metrics and logs (docs/design.md, "HTTP (HTTPS only)").
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, MutableMapping
from typing import Any

import orjson

from clusterip_guard.core.admission import Route
from clusterip_guard.core.decision import ALLOWED, Decision, decide
from clusterip_guard.core.policy import PolicySettings
from clusterip_guard.core.review import (
    AdmissionRequest,
    ReviewError,
    build_response,
    change_of,
    parse_review,
)
from clusterip_guard.server.lifecycle import Lifecycle
from clusterip_guard.server.settings import MIB
from clusterip_guard.telemetry.logs import log_fields
from clusterip_guard.telemetry.metrics import WebhookMetrics

log = logging.getLogger("clusterip_guard.server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# A body a little over the limit is read and dropped so the client gets its 413 on an open
# connection; past this much more we stop reading and let the connection go.
DRAIN_MARGIN_BYTES = 4 * MIB
# Reviews of ordinary objects are far under this; a larger one (an object near the API
# server's limits, escaped) waits for the one slot for large reviews, so that memory stays
# bounded whatever arrives at once.
USUAL_REVIEW_BYTES = 3 * MIB
JSON_MEDIA_TYPE = "application/json"
_JSON_CONTENT_TYPE = (b"content-type", b"application/json")
_CLOSE = (b"connection", b"close")
# Answered before the body was read to its end: the rest of it would be read as the next
# request, so the connection closes.
_CLOSES_CONNECTION = (413,)


class BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class ClientGone(Exception):
    """The client disconnected before the whole body arrived."""


class ReviewEndpoint:
    """One ASGI app for every webhook path (`routes`: path -> Route)."""

    def __init__(
        self,
        *,
        routes: Mapping[str, Route],
        policy: Callable[[], PolicySettings],
        metrics: WebhookMetrics,
        never_judged: Collection[str],
        today: Callable[[], datetime.date],
        max_body_bytes: int,
        lifecycle: Lifecycle,
    ) -> None:
        self.routes = routes
        self.policy = policy
        self.metrics = metrics
        self.protected = frozenset(never_judged)
        self.today = today
        self.max_body_bytes = max_body_bytes
        self.lifecycle = lifecycle
        self._large_review = asyncio.Semaphore(1)
        # Metric children looked up once, not per review.
        self._latency = {path: metrics.review_seconds.labels(path) for path in routes}
        self._decisions: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        route = self.routes[path]
        if scope["method"] != "POST":
            await _send(send, 405, b'{"detail":"Method Not Allowed"}', [(b"allow", b"POST")])
            return
        if _declared_length(scope) <= USUAL_REVIEW_BYTES:
            await self._answer(scope, receive, send, path, route)
            return
        async with self._large_review:
            await self._answer(scope, receive, send, path, route)

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, path: str, route: Route
    ) -> None:
        started = time.perf_counter()
        try:
            body = await self._read_body(scope, receive)
            admission = parse_review(body)
        except BadRequest as error:
            self.metrics.bad_requests.labels(str(error.status)).inc()
            if error.status == 413:
                # The API server applies the entry's failure policy: say so where it is seen.
                log.warning(
                    "review refused: its body is over the limit; the API server applies the "
                    "entry's failurePolicy (Ignore lets the write through unjudged)",
                    extra={"path": path, "limit_bytes": self.max_body_bytes},
                )
            await _send_error(send, error.status, error.reason)
            return
        except ReviewError as error:
            self.metrics.bad_requests.labels("400").inc()
            await _send_error(send, 400, str(error))
            return
        except ClientGone:
            # Nobody is left to answer: one line, not a traceback.
            log.info("client disconnected before sending the whole body", extra={"path": path})
            self.metrics.bad_requests.labels("disconnected").inc()
            await _send_error(send, 400, "client disconnected")
            return

        decision = self._decide_safely(admission, route)
        review = build_response(uid=admission.uid, decision=decision)
        if not admission.dry_run:
            self._count(route.counted_as, decision.verdict)
        # While draining, each answer also closes its connection: the client's next call
        # opens a new one, which the Service routes to a replica that is staying.
        extra = [_CLOSE] if self.lifecycle.draining else []
        body = orjson.dumps(review)
        self._latency[path].observe(time.perf_counter() - started)
        await _send(send, 200, body, extra)
        # Logged after the answer is handed over, so that the answer leaves first at the end
        # of this loop turn and the log line after it.
        if decision.verdict != "allowed":
            _log_decision(admission, route, decision)

    def _count(self, mode: str, verdict: str) -> None:
        child = self._decisions.get((mode, verdict))
        if child is None:
            child = self._decisions[mode, verdict] = self.metrics.decisions.labels(mode, verdict)
        child.inc()

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        content_type = b""
        declared: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"content-length":
                declared = value
        media_type = content_type.decode("latin-1").split(";")[0].strip().lower()
        if media_type != JSON_MEDIA_TYPE:
            got = media_type or "none"
            raise BadRequest(415, f"content type must be {JSON_MEDIA_TYPE}, got {got!r}")
        if declared is not None and not declared.isdigit():
            raise BadRequest(400, "content-length is not a number")
        # A body that trickles in is cut by the connection's own timer (server.protocol).
        limit = self.max_body_bytes
        message = await receive()
        if message["type"] == "http.request" and not message.get("more_body", False):
            body: bytes = message.get("body", b"")  # the usual case: one message
            if len(body) > limit:
                raise BadRequest(413, _too_large(limit))
            return body
        chunks: list[bytes] = []
        size = 0
        while True:
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > limit + DRAIN_MARGIN_BYTES:
                break
            if size <= limit:
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
            message = await receive()
        if size > limit:
            raise BadRequest(413, _too_large(limit))
        return b"".join(chunks)

    def _decide_safely(self, admission: AdmissionRequest, route: Route) -> Decision:
        change = change_of(admission)
        if change is None:
            return ALLOWED
        try:
            return decide(
                change,
                route.judges_as,
                self.policy(),
                today=self.today(),
                never_judged=self.protected,
                label_not_a_mode=route.label_not_a_mode,
            )
        except Exception:  # a bug in the core must answer, not drop the API server's request
            log.exception("decision failed", extra={"uid": admission.uid, "mode": route.counted_as})
            self.metrics.decisions.labels(route.counted_as, "error").inc()
            if route.judges_as == "audit":
                return ALLOWED
            # Fail closed, as the webhook's failurePolicy would.
            return Decision(
                verdict="denied",
                denial=f"clusterip-guard could not judge this {admission.kind or 'object'} "
                "(internal error); "
                "see the webhook's log",
            )


def _log_decision(admission: AdmissionRequest, route: Route, decision: Decision) -> None:
    if not log.isEnabledFor(logging.INFO):  # nothing to build the fields for
        return
    fields: dict[str, Any] = {
        "mode": route.counted_as,
        "verdict": decision.verdict,
        "operation": admission.operation,
        "namespace": admission.namespace,
        "kind": admission.kind,
        "name": admission.name,
        "uid": admission.uid,
        "dry_run": admission.dry_run,
        "user": admission.user,
        "groups": list(admission.groups),
        "violations": [v.detail for v in decision.violations],
    }
    if admission.kind == "Service":  # the field these lines had before workloads were judged
        fields["service"] = admission.name
    if decision.why_warned:
        fields["why"] = decision.why_warned
    message = f"{decision.verdict} {admission.kind} {admission.namespace}/{admission.name}"
    log_fields(log, logging.INFO, message, fields)


def _declared_length(scope: Scope) -> int:
    """The body's declared length; one that is not declared counts as large."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit():
            return int(value)
    return USUAL_REVIEW_BYTES + 1


def _too_large(limit: int) -> str:
    shown = f"{limit / MIB:g} MiB" if limit >= MIB else f"{limit} bytes"
    return f"body is over the {shown} limit"


async def _send_error(send: Send, status: int, reason: str) -> None:
    body = json.dumps(
        {"error": reason.splitlines()[0]}, ensure_ascii=False, separators=(",", ":")
    ).encode()
    await _send(send, status, body, [_CLOSE] if status in _CLOSES_CONNECTION else [])


async def _send(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [(b"content-length", str(len(body)).encode()), _JSON_CONTENT_TYPE, *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
