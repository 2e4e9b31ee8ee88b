"""Running the app under uvicorn with our TLS context and a graceful stop (see lifecycle)."""

from __future__ import annotations

import logging
import signal
import ssl
import threading
from types import FrameType

import uvicorn
from fastapi import FastAPI

from clusterip_guard.server.lifecycle import Lifecycle
from clusterip_guard.server.settings import ServeSettings

log = logging.getLogger("clusterip_guard.server")


class DrainingServer(uvicorn.Server):
    """uvicorn, except that the first SIGTERM waits `delay` seconds, serving and not ready,
    before uvicorn's own graceful shutdown. Ctrl-C, or a second signal, stops at once."""

    def __init__(self, config: uvicorn.Config, *, lifecycle: Lifecycle, delay: float) -> None:
        super().__init__(config)
        self.lifecycle = lifecycle
        self.delay = delay
        self._timer: threading.Timer | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGTERM or self.lifecycle.draining or self.delay <= 0:
            if self._timer is not None:
                self._timer.cancel()
            self.lifecycle.start_draining(0)
            super().handle_exit(sig, frame)
            return
        self.lifecycle.start_draining(self.delay)
        # The handler runs on the event loop's thread between callbacks; the timer only sets
        # uvicorn's exit flag, which its main loop reads every 0.1 s.
        self._timer = threading.Timer(self.delay, super().handle_exit, (sig, frame))
        self._timer.daemon = True
        self._timer.start()


def serve_forever(
    app: FastAPI, settings: ServeSettings, context: ssl.SSLContext, lifecycle: Lifecycle
) -> bool:
    """Serve until stopped; False when the server never started (the port could not be bound)."""
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        ssl_certfile=str(settings.cert_file),
        ssl_keyfile=str(settings.key_file),
        # Our own context, so a reloaded certificate reaches the next handshake.
        ssl_context_factory=lambda _config, _default: context,
        access_log=settings.access_log,
        log_config=None,
        server_header=False,
        timeout_keep_alive=settings.keep_alive_seconds,
        timeout_graceful_shutdown=settings.drain_timeout_seconds,
    )
    server = DrainingServer(config, lifecycle=lifecycle, delay=settings.shutdown_delay_seconds)
    server.run()
    return bool(server.started)
