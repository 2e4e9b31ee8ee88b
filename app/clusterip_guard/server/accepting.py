"""Connection caps at accept time, before a TLS handshake costs anything, on uvloop.

The HTTP protocol only sees a connection once its TLS handshake is done; until then each one
holds TLS state, and a client that opens them faster than the handshake deadline cuts them
could hold thousands. So `serve` accepts connections itself: uvloop's own accept (in libuv)
gives no place to refuse one, so the listening sockets of `serve` are read by our accept loop
(`AcceptingServer`), which counts every connection per client address and in all, closes one
past a cap at once, and hands the others to the loop (`connect_accepted_socket`, with the
handshake deadline). Each one is counted until its transport lets go of its socket, and as in
its handshake until that handshake is done (`ConnectionCount.established`).

`AcceptingLoop` is uvloop's loop, except that `create_server` on a socket it was told to guard
starts our accept loop instead of libuv's: uvicorn creates its servers that way, and the rest
of uvicorn (protocols, graceful shutdown) is unchanged.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import itertools
import logging
import socket
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from ssl import SSLContext
from typing import Any

import uvloop

log = logging.getLogger("clusterip_guard.server")

# Accepted per readiness callback, so that a flood of connections cannot starve the answers
# of established ones on the same loop.
ACCEPTS_PER_TURN = 64
# After the process runs out of descriptors (or memory), accepting pauses this long, as
# asyncio's own accept loop does; the backlog holds the callers meanwhile.
ACCEPT_PAUSE_SECONDS = 1.0
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


class ConnectionCount:
    """The connections a listener has handed out and not yet seen closed, per client, and
    those of them still in their TLS handshake (by a key per connection).

    Three caps, all checked when a connection is accepted: connections in all, connections
    per client address, and connections still in their handshake in all. A connection that
    never finishes its handshake costs the most and is the cheapest to open, so a flood of
    them from many addresses is held to `handshaking` places, and cannot take the places of
    established connections, the API server's among them.
    """

    def __init__(self, *, total: int, per_client: int, handshaking: int | None = None) -> None:
        self.max_total = total
        self.max_per_client = per_client
        self.max_handshaking = handshaking if handshaking is not None else total
        self.per_client: Counter[str] = Counter()
        self.handshaking: dict[Hashable, str] = {}

    @property
    def total(self) -> int:
        return self.per_client.total()

    def admit(self, client: str, key: Hashable) -> str | None:
        """None when admitted (and counted as in its handshake); else why it is refused, the
        `reason` of clusterip_guard_refused_connections_total."""
        if self.total >= self.max_total or self.per_client[client] >= self.max_per_client:
            return "connections"
        if len(self.handshaking) >= self.max_handshaking:
            return "handshakes"
        self.per_client[client] += 1
        self.handshaking[key] = client
        return None

    def established(self, key: Hashable) -> None:
        """Its handshake is done (the HTTP protocol has it): no longer counted as in one."""
        self.handshaking.pop(key, None)

    def release(self, client: str, key: Hashable) -> bool:
        """It is closed; True when it closed still in its handshake (cut by the deadline, or
        abandoned)."""
        self.per_client[client] -= 1
        if self.per_client[client] <= 0:
            del self.per_client[client]
        return self.handshaking.pop(key, None) is not None


class _CountedConnection(socket.socket):
    """An accepted connection that tells its count when it is let go of (once): closed by
    us, or detached by uvloop's transport when libuv closes the descriptor."""

    def __init__(self, *args: Any, released: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._released: Callable[[], None] | None = released

    def _release(self) -> None:
        released, self._released = self._released, None
        if released is not None:
            released()

    def close(self) -> None:
        super().close()
        self._release()

    def detach(self) -> int:
        fd = super().detach()
        self._release()
        return fd


@dataclass(frozen=True)
class Guard:
    """What a guarded listening socket is held to: its count, where its cuts are told (the
    reason, for the metrics), its handshake deadline and how long a TLS close may take."""

    count: ConnectionCount
    on_refused: Callable[[str], None]
    handshake_timeout_seconds: float
    shutdown_timeout_seconds: float


class AcceptingServer:
    """One listening socket's accept loop: what `loop.create_server` returns to uvicorn
    (close, wait_closed, sockets)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        listener: socket.socket,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        context: SSLContext | None,
        guard: Guard,
    ) -> None:
        self._loop = loop
        self._listener = listener
        self._protocol_factory = protocol_factory
        self._context = context
        self._guard = guard
        self._keys = itertools.count()
        self._pending: set[asyncio.Task[None]] = set()
        self._serving = False

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return (self._listener,)

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving

    def start(self) -> AcceptingServer:
        self._listener.setblocking(False)
        self._resume()
        return self

    def _resume(self) -> None:
        if not self._serving and self._listener.fileno() >= 0:
            self._serving = True
            self._loop.add_reader(self._listener.fileno(), self._accept_ready)

    def _pause(self) -> None:
        if self._serving:
            self._serving = False
            self._loop.remove_reader(self._listener.fileno())

    def _accept_ready(self) -> None:
        for _ in range(ACCEPTS_PER_TURN):
            try:
                connection, address = self._listener.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as error:
                if error.errno not in _OUT_OF_RESOURCES:
                    raise
                log.warning("accepting paused for %gs: %s", ACCEPT_PAUSE_SECONDS, error.strerror)
                self._pause()
                self._loop.call_later(ACCEPT_PAUSE_SECONDS, self._resume)
                return
            self._admit(connection, address)

    def _admit(self, connection: socket.socket, address: Any) -> None:
        client = address[0] if isinstance(address, tuple) and address else ""
        key = next(self._keys)
        count = self._guard.count
        refused = count.admit(client, key)
        if refused is not None:
            connection.close()
            self._guard.on_refused(refused)
            return
        counted = _CountedConnection(
            connection.family,
            connection.type,
            connection.proto,
            fileno=connection.detach(),
            released=functools.partial(self._released, client, key),
        )
        counted.setblocking(False)
        if counted.family in (socket.AF_INET, socket.AF_INET6):
            # Without it every answer waits ~40 ms for the client's delayed ACK.
            counted.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        task = self._loop.create_task(self._connect(counted, key))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _connect(self, connection: _CountedConnection, key: int) -> None:
        try:
            if self._context is None:
                await self._loop.connect_accepted_socket(self._protocol_factory, connection)
            else:
                await self._loop.connect_accepted_socket(
                    self._protocol_factory,
                    connection,
                    ssl=self._context,
                    ssl_handshake_timeout=self._guard.handshake_timeout_seconds,
                    ssl_shutdown_timeout=self._guard.shutdown_timeout_seconds,
                )
        except asyncio.CancelledError:
            connection.close()
            raise
        except Exception as error:  # one connection's end, never the server's
            # A handshake cut by its deadline, refused, or abandoned; whoever holds the socket
            # now, it is closed (once) and its place released.
            log.debug("connection closed before its handshake ended: %s", error)
            connection.close()
            return
        self._guard.count.established(key)

    def _released(self, client: str, key: int) -> None:
        if self._guard.count.release(client, key):
            self._guard.on_refused("handshake")

    def close(self) -> None:
        self._pause()
        self._listener.close()

    async def wait_closed(self) -> None:
        """Handshakes still under way when the server closes are cut: uvicorn's drain is for
        requests, and a connection that has sent none has nothing to finish."""
        for task in list(self._pending):
            task.cancel()
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)


class AcceptingLoop(uvloop.Loop):
    """uvloop's event loop, whose `create_server` accepts a guarded socket's connections
    itself (`AcceptingServer`); any other server is uvloop's own."""

    def __init__(self, guards: dict[int, Guard]) -> None:
        super().__init__()
        self.guards = guards  # listening socket's descriptor -> its guard

    async def create_server(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: Any = None,
        port: Any = None,
        *,
        sock: socket.socket | None = None,
        ssl: SSLContext | None = None,
        **kwargs: Any,
    ) -> Any:
        guard = self.guards.get(sock.fileno()) if sock is not None else None
        if guard is None or sock is None:
            return await super().create_server(
                protocol_factory, host, port, sock=sock, ssl=ssl, **kwargs
            )
        return AcceptingServer(self, sock, protocol_factory, ssl, guard).start()
