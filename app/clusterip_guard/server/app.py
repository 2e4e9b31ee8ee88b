"""The HTTP edge: AdmissionReview routes, health and readiness (docs/design.md, "HTTP (HTTPS
only)").

With `server.reviews` (the AdmissionReview routes), the only code that touches HTTP: the
body is read, plain data goes to the pure core (review -> policy -> review), and the answer
is written; bad input gets a 4xx with one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from clusterip_guard.core.admission import ROUTES
from clusterip_guard.core.names import NEVER_JUDGED_NAMESPACES
from clusterip_guard.core.policy import PolicySettings
from clusterip_guard.reloading import Reloadable, ReloadResult, poll_for_changes
from clusterip_guard.server.lifecycle import Lifecycle
from clusterip_guard.server.memory import MemoryKeeper
from clusterip_guard.server.reviews import ReviewEndpoint
from clusterip_guard.server.settings import ServeSettings
from clusterip_guard.telemetry.metrics import WebhookMetrics

_DEFAULTS = ServeSettings(cert_file=Path(), key_file=Path())


class WebhookApp(FastAPI):
    """The FastAPI app, except that an AdmissionReview goes straight to its endpoint.

    Every Service write waits on that answer, and FastAPI's middleware stack, routing and
    dependency solving cost more than the review itself (docs/benchmarks.md); health,
    readiness and anything else still take FastAPI's way.
    """

    reviews: ReviewEndpoint | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.reviews is not None
            and scope["type"] == "http"
            and scope["path"] in self.reviews.routes
        ):
            await self.reviews(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


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
    lifecycle: Lifecycle | None = None,
) -> FastAPI:
    """The webhook app. `policy` returns the policy in force (it may change between calls)."""
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
            poll_for_changes(reloaders, reload_interval, count_reload, housekeeping=MemoryKeeper())
        )
        try:
            yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    app = WebhookApp(
        title="clusterip-guard", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )

    endpoint = ReviewEndpoint(
        routes=ROUTES,
        policy=policy,
        metrics=metrics,
        never_judged=never_judged,
        today=today,
        max_body_bytes=max_body_bytes,
        lifecycle=state,
    )
    app.reviews = endpoint

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
