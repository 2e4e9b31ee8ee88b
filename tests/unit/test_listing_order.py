"""Several lists merged one namespace at a time, in the API server's key order
(core/listing_order.py): what lets a scan hold one page of each list, never the cluster."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from clusterip_guard.core.listing_order import OutOfOrder, by_namespace, listing_key


def groups(*streams: list[tuple[str, str]]) -> list[tuple[str, list[tuple[int, str]]]]:
    return [(namespace, list(group)) for namespace, group in by_namespace(streams)]


def test_each_namespace_comes_once_with_what_every_list_holds_of_it() -> None:
    services = [("a", "svc-1"), ("a", "svc-2"), ("c", "svc-3")]
    deployments = [("b", "web"), ("c", "api")]
    reports = [("a", "report"), ("d", "stale report")]
    assert groups(services, deployments, reports) == [
        ("a", [(0, "svc-1"), (0, "svc-2"), (2, "report")]),
        ("b", [(1, "web")]),
        ("c", [(0, "svc-3"), (1, "api")]),
        ("d", [(2, "stale report")]),
    ]


def test_the_order_is_the_keys_not_the_names() -> None:
    # `a-b/` before `a/`: `-` comes before `/`, as etcd stores /registry/services/a-b/...
    assert listing_key("a-b") < listing_key("a")
    listed = [("a-b", "x"), ("a", "y"), ("a0", "z")]
    assert [namespace for namespace, _ in groups(listed)] == ["a-b", "a", "a0"]


def test_a_list_that_goes_back_is_refused_not_merged_wrongly() -> None:
    with pytest.raises(OutOfOrder, match="went back from namespace b to a"):
        groups([("b", "x"), ("a", "y")])


def test_the_lists_are_read_only_as_far_as_the_namespace_at_hand() -> None:
    read: list[str] = []

    def listed(names: list[str]) -> Iterator[tuple[str, str]]:
        for name in names:
            read.append(name)
            yield name, name

    merged = by_namespace([listed(["a", "b", "c"]), listed(["a", "c"])])
    namespace, group = next(merged)
    assert (namespace, [item for _, item in group]) == ("a", ["a", "a"])
    assert read == ["a", "a", "b", "c"]  # one item ahead of each list, at most
