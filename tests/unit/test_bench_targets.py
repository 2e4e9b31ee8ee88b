"""benchmarks/targets.py: the speed targets judged from the benchmarks' raw runs."""

from __future__ import annotations

from typing import Any

from benchmarks.targets import apiserver_targets, over_floor, webhook_targets


def api_run(
    setup: str, op: str, round_: int, p50: float, call: float, cpu: float = 0.0
) -> dict[str, Any]:
    return {"setup": setup, "op": op, "service": "exposed", "concurrency": 1, "round": round_,
            "p50_ms": p50, "webhook_ms": call, "webhook_cpu_us": cpu}  # fmt: skip


def test_differences_are_taken_round_by_round_not_between_medians() -> None:
    # The floor drifts by a millisecond between rounds; enforce stays 0.1 ms above it.
    runs = [api_run("webhook floor", "create", r, 5.0 + r, 0.5) for r in range(3)]
    runs += [api_run("enforce", "create", r, 5.1 + r, 0.6) for r in range(3)]
    runs.append(api_run("enforce", "create", 3, 1.0, 0.1))  # its floor's round is missing
    runs.append({**api_run("enforce", "create", 0, 99.0, 9.0), "concurrency": 8})
    found = over_floor(runs, "enforce", "webhook floor", "create")
    assert [round(d, 3) for d in found["p50"]] == [0.1, 0.1, 0.1]
    assert [round(d, 3) for d in found["call"]] == [0.1, 0.1, 0.1]


def test_a_target_is_met_only_when_every_operation_meets_it() -> None:
    runs = []
    for r in range(3):
        runs += [api_run("webhook floor", op, r, 5.0, 0.5, 100.0) for op in ("create", "update")]
        runs += [api_run("mutating floor", op, r, 4.0, 0.5) for op in ("create", "update")]
        runs.append(api_run("enforce", "create", r, 5.1, 0.6, 300.0))
        runs.append(api_run("enforce", "update", r, 5.3, 0.8))  # 0.3 ms over: too much
        runs += [api_run("mutate", op, r, 4.2, 0.7) for op in ("create", "update")]
    enforce, mutate = apiserver_targets({"runs": runs})
    assert enforce.name.startswith("enforce over the webhook floor")
    assert not enforce.met
    assert "update p50 0.300" in enforce.reached
    assert (
        "create p50 0.100 (0.100-0.100) ms, per call 0.100 (0.100-0.100), its CPU per call 200"
        in (enforce.reached)
    )
    assert mutate.met  # 0.2 ms over the mutating floor, within its 0.25


def webhook_run(scenario: str, round_: int, rate: float, p99: float) -> dict[str, Any]:
    return {"scenario": scenario, "workers": 1, "connections": 16, "round": round_,
            "reviews_per_second": rate, "p99_ms": p99}  # fmt: skip


def test_the_webhook_alone_is_judged_against_the_floor_of_the_same_round() -> None:
    runs = [webhook_run("floor", r, 20_000.0 + 4_000 * r, 1.5) for r in range(3)]
    runs += [webhook_run("enforce deny", r, 10_400.0 + 2_000 * r, 1.9) for r in range(3)]
    memory = {"at rest": 60.0, "under load (peak)": 64.0, "10 s after load": 64.0}
    share, p99, rss = webhook_targets({"runs": runs, "memory_mib": memory})
    assert share.met
    assert share.reached.startswith("0.52")
    assert p99.met
    assert rss.met
    grown = {**memory, "10 s after load": 70.0}  # more than 10% over rest: not flat
    assert not webhook_targets({"runs": runs, "memory_mib": grown})[2].met
