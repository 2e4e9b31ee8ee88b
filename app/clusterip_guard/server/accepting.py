"""Connection caps at accept time, before a TLS handshake costs anything.

The HTTP protocol only sees a connection once its TLS handshake is done; until then each one
costs a few hundred KiB, and a client that opens them faster than the handshake timeout cuts
them could hold thousands. So the listening socket itself counts every connection it hands
out, per client address and in all, and closes one past a cap at once: asyncio's event loop
(ours, `asyncio.run` in `server.runner`) calls `accept()` on the socket object it is given,
and each connection is counted until its transport closes it.
"""

from __future__ import annotations

import functools
import socket
from collections import Counter
from collections.abc import Callable
from typing import Any


class ConnectionCount:
    """The connections a listener has handed out and not yet seen closed, per client."""

    def __init__(self, *, total: int, per_client: int) -> None:
        self.max_total = total
        self.max_per_client = per_client
        self.per_client: Counter[str] = Counter()

    @property
    def total(self) -> int:
        return self.per_client.total()

    def admit(self, client: str) -> bool:
        if self.total >= self.max_total or self.per_client[client] >= self.max_per_client:
            return False
        self.per_client[client] += 1
        return True

    def release(self, client: str) -> None:
        self.per_client[client] -= 1
        if self.per_client[client] <= 0:
            del self.per_client[client]


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
        on_refused: Callable[[], None],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.count = count
        self.on_refused = on_refused

    def accept(self) -> tuple[socket.socket, Any]:
        while True:  # until one is admitted, or none is waiting (BlockingIOError)
            fd, address = self._accept()  # type: ignore[attr-defined]
            client = address[0] if isinstance(address, tuple) and address else ""
            if not self.count.admit(client):
                socket.close(fd)
                self.on_refused()
                continue
            connection = _CountedConnection(
                self.family,
                self.type,
                self.proto,
                fileno=fd,
                released=functools.partial(self.count.release, client),
            )
            return connection, address


def guard_accepts(
    listener: socket.socket, count: ConnectionCount, on_refused: Callable[[], None]
) -> GuardedListener:
    """The same listening socket (it takes over the descriptor), now capped."""
    family, kind, proto = listener.family, listener.type, listener.proto
    inheritable = listener.get_inheritable()
    guarded = GuardedListener(
        family, kind, proto, fileno=listener.detach(), count=count, on_refused=on_refused
    )
    guarded.set_inheritable(inheritable)
    return guarded
