"""Reports split to fit in etcd, and a write that fails is retried, then recorded, never
raised (docs/design.md, "Reporting what exists (scan)")."""

from __future__ import annotations

import json

from clusterip_guard.cluster.errors import ClusterRefused
from clusterip_guard.cluster.report_store import WRITE_RETRY_PAUSES, WriteSummary, attempt
from clusterip_guard.core.reports import report_name, split_results


def result(index: int, padding: int = 0) -> dict[str, object]:
    return {"message": f"svc-{index}", "pad": "x" * padding}


def test_results_are_cut_by_count_and_by_size_in_order() -> None:
    results = [result(i) for i in range(25)]
    parts = split_results(results, max_results=10, max_bytes=10**6)
    assert [len(p) for p in parts] == [10, 10, 5]
    assert [r for p in parts for r in p] == results
    big = [result(i, padding=400) for i in range(10)]
    one = len(json.dumps(big[0], separators=(",", ":")))
    by_size = split_results(big, max_results=100, max_bytes=3 * one)
    assert [len(p) for p in by_size] == [3, 3, 3, 1]
    # A result larger than a part still gets a part of its own.
    assert [len(p) for p in split_results(big[:2], max_bytes=1)] == [1, 1]
    assert split_results([]) == [[]]
    assert [report_name(i) for i in range(3)] == [
        "clusterip-guard", "clusterip-guard-2", "clusterip-guard-3",
    ]  # fmt: skip


def test_a_write_is_retried_then_recorded_never_raised() -> None:
    pauses: list[float] = []
    calls = []

    def flaky() -> None:
        calls.append(1)
        if len(calls) < 2:
            raise ClusterRefused("conflict")

    summary = WriteSummary()
    attempt("PolicyReport a/clusterip-guard", flaky, summary, sleep=pauses.append)
    assert len(calls) == 2
    assert summary.failed == []

    def refused() -> None:
        raise ClusterRefused("reports are not wanted here")

    attempt("PolicyReport b/clusterip-guard", refused, summary, sleep=pauses.append)
    assert summary.failed == ["PolicyReport b/clusterip-guard: reports are not wanted here"]
    assert pauses == [WRITE_RETRY_PAUSES[0], *WRITE_RETRY_PAUSES]
    assert "failed PolicyReport b/clusterip-guard: reports are not wanted here" in summary.lines()
