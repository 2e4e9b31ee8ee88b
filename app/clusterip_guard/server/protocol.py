"""HTTP/1.1 with limits, for both ports: a client cannot starve the API server's calls.

uvicorn's httptools protocol, with what it lacks for a server on the API server's write path
(open connections are capped earlier, when they are accepted: `server.accepting`):
- a time limit on a request's head, from the connection's first byte (or its start) to the
  end of its headers, and one on its body, from the end of its headers: a slow or endless
  request is cut with 408, so it holds no memory or file descriptor for long;
- a size limit on the head and a count limit on its headers (431).
Idle keep-alive connections are closed after `keep_alive_seconds` (uvicorn's own timer).

A timer is started only for a part of a request that a read left unfinished: the API server
sends a review in one piece, so its requests start none (a timer per request was 5% of a
review's cost, docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("clusterip_guard.protocol")

STATUS_LINES = {
    408: b"HTTP/1.1 408 Request Timeout\r\n",
    431: b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
}


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout_seconds: float
    max_header_bytes: int
    max_headers: int
    body_timeout_seconds: float


# Which part of a request a connection is waiting for.
_HEAD, _BODY, _NOTHING = "head", "body", "nothing"


class GuardedHttpProtocol(HttpToolsProtocol):
    """One connection. Subclassed per server with its limits (see `guarded_protocol`)."""

    limits: ConnectionLimits
    on_refused: Callable[[str], None]  # told why each refusal happened, for the metrics

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timer: asyncio.TimerHandle | None = None
        self._awaiting = _HEAD
        self._head_bytes = 0
        self._header_count = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
        self._start_timer()  # a connection that sends nothing is cut too

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.transport.is_closing():
            return
        # Counted after parsing, and only while the head is still incomplete: a chunk that ends
        # the head (and starts the body) is not held against it. What the parser buffers of an
        # endless header is thus bounded by the limit plus one read.
        if self._awaiting is _HEAD:
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_header_bytes:
                self._refuse(431, "request head too large")
                return
        if self._timer is None and (self._awaiting is not _NOTHING or self._idle()):
            # A head or body this read left unfinished gets its deadline; so do an idle
            # connection's bytes that begin no request (blank lines), which would otherwise
            # only cancel uvicorn's keep-alive timer.
            self._start_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._awaiting = _HEAD
        self._header_count = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._stop_timer()
        self._awaiting = _BODY
        self._head_bytes = 0
        if self._header_count > self.limits.max_headers:
            self._refuse(431, "too many request headers")
            return
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._stop_timer()
        self._awaiting = _NOTHING  # until the next request begins; idle is uvicorn's
        super().on_message_complete()

    def _idle(self) -> bool:
        """Between requests: the last one answered (or none yet)."""
        return self.cycle is None or self.cycle.response_complete

    def _start_timer(self) -> None:
        if self._awaiting is _BODY:
            seconds, expired = self.limits.body_timeout_seconds, self._body_too_slow
        else:
            seconds, expired = self.limits.header_timeout_seconds, self._head_too_slow
        self._timer = self.loop.call_later(seconds, expired)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_too_slow(self) -> None:
        self._timer = None
        self._refuse(408, "request head not received in time")

    def _body_too_slow(self) -> None:
        self._timer = None
        self._refuse(408, f"request body not received within {self.limits.body_timeout_seconds:g}s")

    def _refuse(self, status: int, reason: str) -> None:
        self.on_refused(str(status))
        self._stop_timer()
        if self.transport.is_closing():
            return
        body = reason.encode()
        self.transport.write(
            STATUS_LINES[status]
            + b"content-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
            + b"content-length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        self.transport.close()


class _CoalescingTransport:
    """The connection's transport, except that the writes of one event-loop turn go out as
    one: uvicorn writes a response's head and body separately, which over TLS is two records
    and two sends for every answer. What is held is written at the end of the turn, or at
    once when the connection is closed; everything else is the transport's own."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._held:
            self._loop.call_soon(self._flush)
        self._held.append(bytes(data))

    def _flush(self) -> None:
        if self._held:
            data = b"".join(self._held)
            self._held.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def guarded_protocol(
    limits: ConnectionLimits,
    on_refused: Callable[[str], None],
) -> type[GuardedHttpProtocol]:
    """The protocol class uvicorn instantiates per connection, carrying these limits."""
    hooks = {"limits": limits, "on_refused": staticmethod(on_refused)}
    return type("LimitedHttpProtocol", (GuardedHttpProtocol,), hooks)
