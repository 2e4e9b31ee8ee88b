"""The order the API server lists objects in, and several lists merged one namespace at a
time (docs/design.md, "Reporting what exists (scan)"). Pure: iterables in, groups out.

The API server keeps an object under the key `<prefix>/<namespace>/<name>` and lists a
collection, across all namespaces and page by page, in that key's order: by `<namespace>/`,
then by name. So a list of every Service, one of every Deployment and one of every report,
read side by side, hold each namespace's objects together, and a scan can judge and write one
namespace at a time while holding one page of each list, never the whole cluster. The order
is the string `<namespace>/`, not the namespace's name: `a-b/` sorts before `a/` because `-`
comes before `/`. A list that goes back in that order is refused loudly (`OutOfOrder`), never
merged wrongly: a namespace split in two would get two half reports.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any


class OutOfOrder(ValueError):
    """A list did not come in the API server's key order."""


def listing_key(namespace: str, name: str = "") -> str:
    """Where a list puts this object: its namespace's objects together, then by name."""
    return f"{namespace}/{name}"


def _in_order(
    index: int, stream: Iterable[tuple[str, Any]]
) -> Iterator[tuple[str, int, int, str, Any]]:
    previous = ""
    for position, (namespace, item) in enumerate(stream):
        key = listing_key(namespace)
        if key < previous:
            raise OutOfOrder(
                f"list {index} went back from namespace {previous[:-1]} to {namespace}: "
                "not the API server's order"
            )
        previous = key
        yield key, index, position, namespace, item


def by_namespace(
    streams: Sequence[Iterable[tuple[str, Any]]],
) -> Iterator[tuple[str, Iterator[tuple[int, Any]]]]:
    """Several lists of (namespace, item), each in the API server's order, merged: each
    namespace once, in that order, with what every list holds of it as (list's index, item),
    the first list's items first. Lazy: each list is read only as far as the namespace at
    hand, and a group must be consumed before the next one is asked for."""
    merged = heapq.merge(*(_in_order(i, s) for i, s in enumerate(streams)))
    for _, group in itertools.groupby(merged, key=lambda entry: entry[0]):
        first = next(group)
        yield first[3], ((e[1], e[4]) for e in itertools.chain((first,), group))
