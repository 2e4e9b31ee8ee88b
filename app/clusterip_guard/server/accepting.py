"""Connection caps at accept time, before a TLS handshake costs anything.

The HTTP protocol only sees a connection once its TLS handshake is done; until then each one
costs a few hundred KiB, and a client that opens them faster than the handshake timeout cuts
them could hold thousands. So the listening socket itself counts every connection it hands
out, per client address and in all, and closes one past a cap at once: asyncio's event loop
(ours, `asyncio.run` in `server.runner`) calls `accept()` on the socket object it is given,
and each connection is counted until its transport closes it. Until the HTTP protocol receives
it (its TLS handshake done), it also counts as in its handshake (`ConnectionCount.established`).
"""

from __future__ import annotations

import functools
import socket
from collections import Counter
from collections.abc import Callable
from typing import Any


class ConnectionCount:
    """The connections a listener has handed out and not yet seen closed, per client, and
    those of them still in their TLS handshake (by file descriptor).

    Three caps, all checked when a connection is accepted: connections in all, connections
    per client address, and connections still in their handshake in all. A connection that
    never finishes its handshake costs the most (asyncio's TLS state, about 67 KiB with our
    read buffer) and is the cheapest to open, so a flood of them from many addresses is held
    to `handshaking` places, and cannot take the places of established connections, the API
    server's among them.
    """

    def __init__(self, *, total: int, per_client: int, handshaking: int | None = None) -> None:
        self.max_total = total
        self.max_per_client = per_client
        self.max_handshaking = handshaking if handshaking is not None else total
        self.per_client: Counter[str] = Counter()
        self.handshaking: dict[int, str] = {}

    @property
    def total(self) -> int:
        return self.per_client.total()

    def admit(self, client: str, fd: int = -1) -> str | None:
        """None when admitted (and counted as in its handshake); else why it is refused, the
        `reason` of clusterip_guard_refused_connections_total."""
        if self.total >= self.max_total or self.per_client[client] >= self.max_per_client:
            return "connections"
        if len(self.handshaking) >= self.max_handshaking:
            return "handshakes"
        self.per_client[client] += 1
        self.handshaking[fd] = client
        return None

    def established(self, fd: int) -> None:
        """Its handshake is done (the HTTP protocol has it): no longer counted as in one."""
        self.handshaking.pop(fd, None)

    def release(self, client: str, fd: int = -1) -> bool:
        """It is closed; True when it closed still in its handshake (cut by the deadline, or
        abandoned)."""
        self.per_client[client] -= 1
        if self.per_client[client] <= 0:
            del self.per_client[client]
        return self.handshaking.pop(fd, None) is not None


class _CountedConnection(socket.socket):
    """An accepted connection that tells its count when it is closed (once)."""

    def __init__(self, *args: Any, released: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._released: Callable[[], None] | None = released

    def close(self) -> None:
        released, self._released = self._released, None
        super().close()
        if released is not None:
            released()


class GuardedListener(socket.socket):
    """A listening socket whose `accept()` skips (closes) connections past the caps."""

    def __init__(
        self,
        *args: Any,
        count: ConnectionCount,
        on_refused: Callable[[str], None],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.count = count
        self.on_refused = on_refused

    def accept(self) -> tuple[socket.socket, Any]:
        while True:  # until one is admitted, or none is waiting (BlockingIOError)
            fd, address = self._accept()  # type: ignore[attr-defined]
            client = address[0] if isinstance(address, tuple) and address else ""
            refused = self.count.admit(client, fd)
            if refused is not None:
                socket.close(fd)
                self.on_refused(refused)
                continue
            connection = _CountedConnection(
                self.family,
                self.type,
                self.proto,
                fileno=fd,
                released=functools.partial(self._released, client, fd),
            )
            return connection, address

    def _released(self, client: str, fd: int) -> None:
        if self.count.release(client, fd):
            self.on_refused("handshake")


def guard_accepts(
    listener: socket.socket, count: ConnectionCount, on_refused: Callable[[str], None]
) -> GuardedListener:
    """The same listening socket (it takes over the descriptor), now capped."""
    family, kind, proto = listener.family, listener.type, listener.proto
    inheritable = listener.get_inheritable()
    guarded = GuardedListener(
        family, kind, proto, fileno=listener.detach(), count=count, on_refused=on_refused
    )
    guarded.set_inheritable(inheritable)
    return guarded
