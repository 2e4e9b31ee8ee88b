"""Which running cluster the node tests stop to make room for their own (one node per machine):
this checkout's (`make demo` leaves it in `.dev/cluster`), never another folder's."""

from __future__ import annotations

from pathlib import Path

from tests.support.node import checkout_cluster_in_the_way

OURS = Path("/work/clusterip-guard/.dev/cluster")


def test_nothing_running_nothing_to_stop() -> None:
    assert checkout_cluster_in_the_way(None, False, OURS) is None


def test_the_checkouts_cluster_is_stopped_saying_so_in_one_line() -> None:
    notice = checkout_cluster_in_the_way(str(OURS), True, OURS)
    assert notice is not None
    assert "\n" not in notice
    assert str(OURS) in notice
    assert "make demo" in notice  # how to get it back


def test_the_checkouts_bridge_alone_is_enough() -> None:
    # processes gone (killed, rebooted away), bridge left: still ours to clean
    assert checkout_cluster_in_the_way(str(OURS), False, OURS) is not None


def test_the_checkouts_processes_alone_are_enough() -> None:
    # half running, its bridge removed by hand: its fixed ports would still be taken
    assert checkout_cluster_in_the_way(None, True, OURS) is not None


def test_another_folders_cluster_is_left_to_up_which_refuses_it() -> None:
    for other in (
        "/work/other-checkout/.dev/cluster",
        "/tmp/pytest-of-root/pytest-3/node0/cluster",
    ):
        assert checkout_cluster_in_the_way(other, False, OURS) is None
    assert checkout_cluster_in_the_way("", False, OURS) is None  # alias unknown
