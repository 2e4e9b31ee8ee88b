"""The connection count behind the accept-time caps (server/accepting.py)."""

from __future__ import annotations

from clusterip_guard.server.accepting import ConnectionCount


def test_each_client_gets_its_share_and_no_more() -> None:
    count = ConnectionCount(total=10, per_client=2)
    assert [count.admit("10.0.0.1") for _ in range(3)] == [True, True, False]
    assert count.admit("10.0.0.2")
    assert count.total == 3


def test_the_total_caps_every_client_together() -> None:
    count = ConnectionCount(total=3, per_client=2)
    admitted = [count.admit(client) for client in ("a", "a", "b", "c")]
    assert admitted == [True, True, True, False]


def test_a_released_place_can_be_taken_again_and_nothing_is_kept_for_gone_clients() -> None:
    count = ConnectionCount(total=10, per_client=1)
    assert count.admit("a")
    assert not count.admit("a")
    count.release("a")
    assert count.admit("a")
    count.release("a")
    assert count.total == 0
    assert not count.per_client
