"""The connection count behind the accept-time caps (server/accepting.py)."""

from __future__ import annotations

import itertools

from clusterip_guard.server.accepting import ConnectionCount

FDS = itertools.count(100)


def admit(count: ConnectionCount, client: str) -> str | None:
    return count.admit(client, next(FDS))


def test_each_client_gets_its_share_and_no_more() -> None:
    count = ConnectionCount(total=10, per_client=2)
    assert [admit(count, "10.0.0.1") for _ in range(3)] == [None, None, "connections"]
    assert admit(count, "10.0.0.2") is None
    assert count.total == 3


def test_the_total_caps_every_client_together() -> None:
    count = ConnectionCount(total=3, per_client=2)
    admitted = [admit(count, client) for client in ("a", "a", "b", "c")]
    assert admitted == [None, None, None, "connections"]


def test_a_released_place_can_be_taken_again_and_nothing_is_kept_for_gone_clients() -> None:
    count = ConnectionCount(total=10, per_client=1)
    assert count.admit("a", 5) is None
    assert count.admit("a", 6) == "connections"
    count.release("a", 5)
    assert count.admit("a", 5) is None
    count.release("a", 5)
    assert count.total == 0
    assert not count.per_client
    assert not count.handshaking


def test_connections_in_their_handshake_have_places_of_their_own() -> None:
    count = ConnectionCount(total=10, per_client=10, handshaking=2)
    assert count.admit("a", 1) is None
    assert count.admit("b", 2) is None
    # A third client's connection waits for no one: refused while two are mid-handshake.
    assert count.admit("c", 3) == "handshakes"
    count.established(1)  # its handshake is done: the place is free, the connection counts
    assert count.admit("c", 3) is None
    assert count.total == 3
    # Closed mid-handshake (the deadline, or abandoned): said, so that it is counted.
    assert count.release("b", 2) is True
    assert count.release("a", 1) is False
