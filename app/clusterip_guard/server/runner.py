"""Running the webhook and its plain-HTTP port under uvicorn, with our TLS context, limits on
every connection (`server.protocol`) and a graceful stop (`server.lifecycle`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import ssl
import threading
from asyncio import sslproto
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI
from starlette.applications import Starlette

from clusterip_guard.server.accepting import ConnectionCount, guard_accepts
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


def bound_handshakes(loop: asyncio.AbstractEventLoop, seconds: float) -> None:
    """TLS servers this loop creates cut a handshake that has not finished in `seconds`.

    uvicorn does not pass asyncio's ssl_handshake_timeout on; this loop is ours (asyncio.run
    below), so its create_server is wrapped to add it.
    """
    create_server = loop.create_server

    async def with_handshake_timeout(*args: Any, **kwargs: Any) -> asyncio.Server:
        if kwargs.get("ssl") is not None:
            kwargs.setdefault("ssl_handshake_timeout", seconds)
        return await create_server(*args, **kwargs)

    loop.create_server = with_handshake_timeout  # type: ignore[method-assign]


def bound_tls_buffers(read_buffer_bytes: int) -> None:
    """Each TLS connection asyncio makes allocates its read buffer when it is accepted, before
    any handshake: 256 KiB by default (`SSLProtocol.max_size`), so a few thousand connections
    that never say hello took 900 MiB. A TLS record holds at most 16 KiB of data, so a buffer
    past that only saves read calls on large bodies; `serve` is the only user of this loop."""
    sslproto.SSLProtocol.max_size = read_buffer_bytes


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
    # IPPROTO_TCP spelt out: asyncio sets TCP_NODELAY only on sockets that say so, and without
    # it every answer waits ~40 ms for the client's delayed ACK.
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

    counts = {
        port: ConnectionCount(
            total=settings.max_connections,
            per_client=settings.max_connections_per_client,
            handshaking=settings.max_handshaking,
        )
        for port in ("webhook", "metrics")
    }
    webhook_socket = guard_accepts(webhook_socket, counts["webhook"], counted("webhook"))
    if health_socket is not None:
        health_socket = guard_accepts(health_socket, counts["metrics"], counted("metrics"))
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
                http=guarded_protocol(limits, counted("metrics"), counts["metrics"].established),
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
            http=guarded_protocol(limits, counted("webhook"), counts["webhook"].established),
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
        bound_handshakes(asyncio.get_running_loop(), settings.handshake_timeout_seconds)
        bound_tls_buffers(settings.tls_read_buffer_bytes)
        servers = [the_webhook()]
        if health is not None and health_socket is not None:
            servers.append(health.serve(sockets=[health_socket]))
        await asyncio.gather(*servers)

    asyncio.run(both())
    return bool(webhook.started)
