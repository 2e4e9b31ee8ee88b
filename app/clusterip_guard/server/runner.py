"""Running the webhook and its plain-HTTP port under uvicorn on uvloop, with our TLS context,
caps on connections as they are accepted (`server.accepting`), limits on every request
(`server.protocol`) and a graceful stop (`server.lifecycle`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from types import FrameType

import uvicorn
from fastapi import FastAPI
from starlette.applications import Starlette

from clusterip_guard.server.accepting import AcceptingLoop, ConnectionCount, Guard
from clusterip_guard.server.lifecycle import Lifecycle
from clusterip_guard.server.protocol import ConnectionLimits, guarded_protocol
from clusterip_guard.server.settings import ServeSettings
from clusterip_guard.telemetry.metrics import WebhookMetrics

log = logging.getLogger("clusterip_guard.server")


class DrainingServer(uvicorn.Server):
    """uvicorn, except that the first SIGTERM waits `delay` seconds, serving and not ready,
    before uvicorn's own graceful shutdown. Ctrl-C, or a second signal, stops at once.
    Companions (the plain-HTTP port) stop with it."""

    def __init__(
        self,
        config: uvicorn.Config,
        *,
        lifecycle: Lifecycle,
        delay: float,
        companions: tuple[uvicorn.Server, ...] = (),
    ) -> None:
        super().__init__(config)
        self.lifecycle = lifecycle
        self.delay = delay
        self.companions = companions
        self._timer: threading.Timer | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGTERM or self.lifecycle.draining or self.delay <= 0:
            if self._timer is not None:
                self._timer.cancel()
            self.lifecycle.start_draining(0)
            self._stop(sig, frame)
            return
        self.lifecycle.start_draining(self.delay)
        # The handler runs on the event loop's thread between callbacks; the timer only sets
        # uvicorn's exit flags, which its main loops read every 0.1 s.
        self._timer = threading.Timer(self.delay, self._stop, (sig, frame))
        self._timer.daemon = True
        self._timer.start()

    def _stop(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        for companion in self.companions:
            companion.should_exit = True


class CompanionServer(uvicorn.Server):
    """A server that leaves signals to the one it accompanies."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def limits_of(settings: ServeSettings) -> ConnectionLimits:
    return ConnectionLimits(
        header_timeout_seconds=settings.header_timeout_seconds,
        max_header_bytes=settings.max_header_bytes,
        max_headers=settings.max_headers,
        body_timeout_seconds=settings.body_timeout_seconds,
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, so that a port in use is an error before anything starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(socket.SOMAXCONN)
    sock.set_inheritable(True)
    return sock


def serve_forever(
    *,
    app: FastAPI,
    health_app: Starlette,
    settings: ServeSettings,
    context: ssl.SSLContext,
    lifecycle: Lifecycle,
    metrics: WebhookMetrics,
    webhook_socket: socket.socket,
    health_socket: socket.socket | None,
) -> bool:
    """Serve on the bound sockets until stopped; False when the webhook never started."""

    def counted(port: str) -> Callable[[str], None]:
        return lambda reason: metrics.refused.labels(port, reason).inc()

    limits = limits_of(settings)

    def guard(port: str) -> Guard:
        count = ConnectionCount(
            total=settings.max_connections,
            per_client=settings.max_connections_per_client,
            handshaking=settings.max_handshaking,
        )
        return Guard(
            count,
            counted(port),
            settings.handshake_timeout_seconds,
            settings.shutdown_timeout_seconds,
        )

    guards = {webhook_socket.fileno(): guard("webhook")}
    if health_socket is not None:
        guards[health_socket.fileno()] = guard("metrics")
    common = {
        "log_config": None,
        "server_header": False,
        "timeout_keep_alive": settings.keep_alive_seconds,
        "timeout_graceful_shutdown": settings.drain_timeout_seconds,
    }
    health: CompanionServer | None = None
    if health_socket is not None:
        health = CompanionServer(
            uvicorn.Config(
                health_app,
                http=guarded_protocol(limits, counted("metrics")),
                access_log=False,
                lifespan="off",
                **common,  # type: ignore[arg-type]
            )
        )
    webhook = DrainingServer(
        uvicorn.Config(
            app,
            ssl_certfile=str(settings.cert_file),
            ssl_keyfile=str(settings.key_file),
            # Our own context, so a reloaded certificate reaches the next handshake.
            ssl_context_factory=lambda _config, _default: context,
            http=guarded_protocol(limits, counted("webhook")),
            access_log=settings.access_log,
            # The API server calls us directly: no proxy's X-Forwarded-* headers to trust,
            # and one middleware less on every review.
            proxy_headers=False,
            **common,  # type: ignore[arg-type]
        ),
        lifecycle=lifecycle,
        delay=settings.shutdown_delay_seconds,
        companions=(health,) if health is not None else (),
    )

    async def the_webhook() -> None:
        await webhook.serve(sockets=[webhook_socket])
        if health is not None:  # it stopped, or never started: the health port goes too
            health.should_exit = True

    async def both() -> None:
        servers = [the_webhook()]
        if health is not None and health_socket is not None:
            servers.append(health.serve(sockets=[health_socket]))
        await asyncio.gather(*servers)

    with asyncio.Runner(loop_factory=lambda: AcceptingLoop(guards)) as runner:
        runner.run(both())
    return bool(webhook.started)
