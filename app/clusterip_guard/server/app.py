"""The HTTP edge: AdmissionReview routes, health and readiness (docs/design.md §4).

Only this module touches HTTP. It reads the body, hands plain data to the pure core
(review -> policy -> review) and writes the answer; bad input gets a 4xx with one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect
from starlette.routing import Route

from clusterip_guard.core.decision import ALLOWED, Decision, decide
from clusterip_guard.core.names import NEVER_JUDGED_NAMESPACES, WEBHOOK_PATHS, WebhookPath
from clusterip_guard.core.review import (
    AdmissionRequest,
    ReviewError,
    build_response,
    parse_review,
    service_change_of,
)
from clusterip_guard.core.settings import PolicySettings
from clusterip_guard.server.lifecycle import Lifecycle
from clusterip_guard.server.memory import MemoryKeeper
from clusterip_guard.server.metrics import WebhookMetrics
from clusterip_guard.server.settings import MIB, ServeSettings
from clusterip_guard.server.watch import Reloadable, ReloadResult, watch

log = logging.getLogger("clusterip_guard.server")

# A body a little over the limit is read and dropped so the client gets its 413 on an open
# connection; past this many times the limit we stop reading and let the connection go.
DRAIN_FACTOR = 10
JSON_MEDIA_TYPE = "application/json"
_DEFAULTS = ServeSettings(cert_file=Path(), key_file=Path())


class BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def utc_today() -> datetime.date:
    return datetime.datetime.now(datetime.UTC).date()


def create_app(
    *,
    policy: Callable[[], PolicySettings],
    metrics: WebhookMetrics,
    never_judged: Collection[str] = NEVER_JUDGED_NAMESPACES,
    today: Callable[[], datetime.date] = utc_today,
    reloaders: Sequence[Reloadable] = (),
    reload_interval: float = _DEFAULTS.reload_interval,
    max_body_bytes: int = _DEFAULTS.max_body_bytes,
    body_timeout: float = _DEFAULTS.body_timeout_seconds,
    lifecycle: Lifecycle | None = None,
) -> FastAPI:
    """The webhook app. `policy` returns the policy in force (it may change between calls)."""
    protected = frozenset(never_judged)
    state = lifecycle or Lifecycle()

    def count_reload(name: str, result: ReloadResult) -> None:
        metrics.reloads.labels(name, result).inc()
        if result == "reloaded":
            metrics.last_reload.labels(name).set_to_current_time()
            metrics.reload_failing.labels(name).set(0)
        elif result == "failed":
            metrics.reload_failing.labels(name).set(1)

    for reloader in reloaders:  # each was loaded once already, before serving
        metrics.last_reload.labels(reloader.name).set_to_current_time()
        metrics.reload_failing.labels(reloader.name).set(0)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        watcher = asyncio.create_task(
            watch(reloaders, reload_interval, count_reload, housekeeping=MemoryKeeper())
        )
        try:
            yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    app = FastAPI(
        title="clusterip-guard", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )

    async def answer(request: Request, path: str, route: WebhookPath) -> Response:
        started = time.perf_counter()
        try:
            body = await _read_body(request, max_body_bytes, body_timeout)
            admission = parse_review(body)
        except BadRequest as error:
            metrics.bad_requests.labels(str(error.status)).inc()
            return _error(error.status, error.reason)
        except ReviewError as error:
            metrics.bad_requests.labels("400").inc()
            return _error(400, str(error))
        except ClientDisconnect:
            # Nobody is left to answer: one line, not a traceback.
            log.info("client disconnected before sending the whole body", extra={"path": path})
            metrics.bad_requests.labels("disconnected").inc()
            return _error(400, "client disconnected")

        decision = _decide_safely(
            admission,
            route=route,
            policy=policy(),
            protected=protected,
            today=today(),
            metrics=metrics,
        )
        review = build_response(uid=admission.uid, decision=decision)
        if not admission.dry_run:
            metrics.decisions.labels(route.counted_as, decision.verdict).inc()
        if decision.verdict != "allowed":
            log.info(
                "%s %s/%s",
                decision.verdict,
                admission.namespace,
                admission.name,
                extra={
                    "mode": route.counted_as,
                    "verdict": decision.verdict,
                    "operation": admission.operation,
                    "namespace": admission.namespace,
                    "service": admission.name,
                    "uid": admission.uid,
                    "dry_run": admission.dry_run,
                    "user": admission.user,
                    "groups": list(admission.groups),
                    "violations": [v.detail for v in decision.violations],
                    **({"why": decision.why_warned} if decision.why_warned else {}),
                },
            )
        metrics.review_seconds.labels(path).observe(time.perf_counter() - started)
        # While draining, each answer also closes its connection: the client's next call
        # opens a new one, which the Service routes to a replica that is staying.
        headers = {"connection": "close"} if state.draining else None
        return Response(
            content=json.dumps(review, separators=(",", ":")),
            media_type=JSON_MEDIA_TYPE,
            headers=headers,
        )

    def review_route(path: str, route: WebhookPath) -> Callable[[Request], Awaitable[Response]]:
        async def review(request: Request) -> Response:
            return await answer(request, path, route)

        return review

    for path, route in WEBHOOK_PATHS.items():
        app.add_api_route(path, review_route(path, route), methods=["POST"], name=path)

    @app.get("/healthz")
    async def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/readyz")
    async def readyz() -> PlainTextResponse:
        return readiness(state)

    return app


def readiness(lifecycle: Lifecycle) -> PlainTextResponse:
    """/readyz on either port: 503 from the first SIGTERM on."""
    if not lifecycle.ready:
        return PlainTextResponse("draining", status_code=503)
    return PlainTextResponse("ok")


def _decide_safely(
    admission: AdmissionRequest,
    *,
    route: WebhookPath,
    policy: PolicySettings,
    protected: frozenset[str],
    today: datetime.date,
    metrics: WebhookMetrics,
) -> Decision:
    change = service_change_of(admission)
    if change is None:
        return ALLOWED
    try:
        return decide(
            change,
            route.judges_as,
            policy,
            today=today,
            never_judged=protected,
            label_not_a_mode=route.label_not_a_mode,
        )
    except Exception:  # a bug in the core must answer, not drop the API server's request
        log.exception("decision failed", extra={"uid": admission.uid, "mode": route.counted_as})
        metrics.decisions.labels(route.counted_as, "error").inc()
        if route.judges_as == "audit":
            return ALLOWED
        # Fail closed, as the webhook's failurePolicy would.
        return Decision(
            verdict="denied",
            denial="clusterip-guard could not judge this Service (internal error); "
            "see the webhook's log",
        )


async def _read_body(request: Request, limit: int, timeout: float) -> bytes:
    try:
        async with asyncio.timeout(timeout):
            return await _read_body_now(request, limit)
    except TimeoutError:
        raise BadRequest(408, f"body not received within {timeout:g}s") from None


async def _read_body_now(request: Request, limit: int) -> bytes:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != JSON_MEDIA_TYPE:
        got = media_type or "none"
        raise BadRequest(415, f"content type must be {JSON_MEDIA_TYPE}, got {got!r}")
    declared = request.headers.get("content-length")
    if declared is not None and not declared.isdigit():
        raise BadRequest(400, "content-length is not a number")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit * DRAIN_FACTOR:
            break
        if size <= limit:
            chunks.append(chunk)
    if size > limit:
        shown = f"{limit / MIB:g} MiB" if limit >= MIB else f"{limit} bytes"
        raise BadRequest(413, f"body is over the {shown} limit")
    return b"".join(chunks)


# Answered before the body was read to its end: the rest of it would be read as the next
# request, so the connection closes.
_CLOSES_CONNECTION = (408, 413)


def _error(status: int, reason: str) -> JSONResponse:
    headers = {"connection": "close"} if status in _CLOSES_CONNECTION else None
    return JSONResponse(
        status_code=status, content={"error": reason.splitlines()[0]}, headers=headers
    )


def create_health_app(*, metrics: WebhookMetrics, lifecycle: Lifecycle) -> Starlette:
    """The plain-HTTP port: Prometheus /metrics, and /healthz and /readyz for probes that
    cannot present a client certificate."""

    async def prometheus(_: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def healthz(_: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def readyz(_: Request) -> PlainTextResponse:
        return readiness(lifecycle)

    return Starlette(
        routes=[
            Route("/metrics", prometheus),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
        ]
    )
