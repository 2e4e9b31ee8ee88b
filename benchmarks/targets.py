"""The webhook's speed targets (docs/benchmarks.md, "In short"), judged from the raw runs the
benchmarks wrote: the webhook alone against the `uvicorn[standard]` floor (review_throughput.py),
what it adds over a webhook that does nothing through the API server (apiserver_admission.py,
best from its focused run: a few setups, many rounds), and one worker's memory.

Differences through the API server are taken round by round (enforce minus the floor measured
in the same round, a few seconds apart), then the median and the spread of those differences:
on this machine a p50 moves by half a millisecond between rounds, which a difference of two
medians would carry into a 0.15 ms target.
Usage: python benchmarks/targets.py [--webhook .dev/bench/webhook.json]
       [--apiserver .dev/bench/apiserver-floors.json] [--out targets.md]
Exits 1 when a target is not met, 2 when a run is missing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / ".dev" / "bench"

SHARE_OF_FLOOR = 0.5  # the webhook alone, enforce, 16 connections, one worker
P99_MS = 2.0
OVER_FLOOR_MS = {"enforce": ("webhook floor", 0.15), "mutate": ("mutating floor", 0.25)}
RSS_MIB = 80.0
FLAT = 1.10  # 10 s after load, at most this much of the RSS at rest


@dataclass(frozen=True)
class Target:
    name: str
    reached: str
    met: bool


def spread(values: Iterable[float], digits: int = 2) -> str:
    """'median (low-high)' of values."""
    ordered = sorted(values)
    return (
        f"{statistics.median(ordered):.{digits}f} "
        f"({ordered[0]:.{digits}f}-{ordered[-1]:.{digits}f})"
    )


def webhook_targets(report: dict[str, Any]) -> list[Target]:
    """Share of the floor and p99 for enforce at 16 connections, one worker; memory."""
    runs = [r for r in report["runs"] if (r["workers"], r["connections"]) == (1, 16)]
    by_round: dict[int, dict[str, dict[str, Any]]] = {}
    for run in runs:
        by_round.setdefault(run["round"], {})[run["scenario"]] = run
    shares = [
        mine["enforce deny"]["reviews_per_second"] / mine["floor"]["reviews_per_second"]
        for mine in by_round.values()
        if {"enforce deny", "floor"} <= mine.keys()
    ]
    p99s = [mine["enforce deny"]["p99_ms"] for mine in by_round.values() if "enforce deny" in mine]
    floor_p99s = [mine["floor"]["p99_ms"] for mine in by_round.values() if "floor" in mine]
    targets = []
    if shares:
        targets.append(Target(
            f"webhook alone >= {SHARE_OF_FLOOR} of the uvicorn[standard] floor, enforce, "
            "16 connections",
            f"{spread(shares)} of the floor, round by round", statistics.median(shares)
            >= SHARE_OF_FLOOR,
        ))  # fmt: skip
    if p99s:
        targets.append(Target(
            f"webhook p99 < {P99_MS:g} ms at 16 connections",
            f"{spread(p99s)} ms (the floor's own {spread(floor_p99s)})",
            statistics.median(p99s) < P99_MS,
        ))  # fmt: skip
    memory = report.get("memory_mib", {})
    if memory:
        rest, peak, after = (memory[k] for k in ("at rest", "under load (peak)", "10 s after load"))
        targets.append(Target(
            f"one worker under {RSS_MIB:g} MiB, flat after load",
            f"{rest:.1f} MiB at rest, {peak:.1f} at its peak, {after:.1f} 10 s after",
            max(rest, peak, after) < RSS_MIB and after <= rest * FLAT,
        ))  # fmt: skip
    return targets


def over_floor(
    runs: list[dict[str, Any]], setup: str, floor: str, op: str
) -> dict[str, list[float]]:
    """Round by round, at concurrency 1 on exposed Services: the setup's p50 minus its floor's,
    the API server's mean time per webhook call minus the floor's (ms), and the answering
    process's CPU per call minus the floor's (us)."""
    cells: dict[tuple[str, int], dict[str, Any]] = {}
    for run in runs:
        if (run["op"], run["service"], run["concurrency"]) == (op, "exposed", 1):
            cells[(run["setup"], run["round"])] = run
    rounds = sorted({r for s, r in cells if s == setup} & {r for s, r in cells if s == floor})
    return {
        "p50": [cells[(setup, r)]["p50_ms"] - cells[(floor, r)]["p50_ms"] for r in rounds],
        "call": [cells[(setup, r)]["webhook_ms"] - cells[(floor, r)]["webhook_ms"] for r in rounds],
        # The answering processes' own CPU per call (us); absent from older runs.
        "cpu": [
            cells[(setup, r)].get("webhook_cpu_us", 0.0)
            - cells[(floor, r)].get("webhook_cpu_us", 0.0)
            for r in rounds
        ],
    }


def apiserver_targets(report: dict[str, Any]) -> list[Target]:
    targets = []
    for setup, (floor, limit) in OVER_FLOOR_MS.items():
        found = {op: over_floor(report["runs"], setup, floor, op) for op in ("create", "update")}
        found = {op: d for op, d in found.items() if d["p50"]}
        if not found:
            continue
        reached = "; ".join(
            f"{op} p50 {spread(d['p50'], 3)} ms, per call {spread(d['call'], 3)}"
            + (f", its CPU per call {spread(d['cpu'], 0)} us" if any(d["cpu"]) else "")
            for op, d in found.items()
        )
        targets.append(Target(
            f"{setup} over the {floor} through the API server, p50 at concurrency 1 <= "
            f"{limit} ms",
            f"{reached} ({len(next(iter(found.values()))['p50'])} rounds)",
            all(statistics.median(d["p50"]) <= limit for d in found.values()),
        ))  # fmt: skip
    return targets


def table(targets: list[Target]) -> str:
    lines = ["| target | reached | met |", "|---|---|---|"]
    lines += [f"| {t.name} | {t.reached} | {'yes' if t.met else 'no'} |" for t in targets]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--webhook", type=Path, default=BENCH / "webhook.json")
    parser.add_argument("--apiserver", type=Path, default=BENCH / "apiserver-floors.json")
    parser.add_argument("--out", type=Path, help="also write the table here")
    args = parser.parse_args()
    targets: list[Target] = []
    loads = []
    for path, judge in ((args.webhook, webhook_targets), (args.apiserver, apiserver_targets)):
        if not path.is_file():
            print(f"targets: {path} not found: run its benchmark first", file=sys.stderr)
            return 2
        report = json.loads(path.read_text())
        targets += judge(report)
        loads.append(f"{path.name}: {report['load_at_start']:.2f}")
    text = f"{table(targets)}\n\n(1-minute load when measuring began: {'; '.join(loads)})"
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0 if all(t.met for t in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
