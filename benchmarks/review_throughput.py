"""The webhook alone: AdmissionReviews per second and latency for one `clusterip-guard serve`
worker and for one per core, over TLS with keep-alive HTTP/1.1, against the floor (floor.py:
the same server stack answering a fixed AdmissionReview with no framework and no work), and
the RSS of one worker at rest, under load and after it.

The servers' own CPU time per review is recorded beside each run (from /proc): with more
workers than the machine has cores to spare, reviews/s cannot grow, but the CPU each review
costs shows whether anything in a worker serialises them.

The Go load generator (benchmarks/loadgen) runs in its own process. Scenarios are interleaved
in every round so that drift hits all alike; each figure is the median of the rounds, with
the spread (min-max). Usage: python benchmarks/review_throughput.py [--rounds 3 --seconds 4]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.progress import Progress, wait_for_quiet  # noqa: E402
from tests.support.builders import admission_review, service  # noqa: E402
from tests.support.webhook_process import (  # noqa: E402
    LOOPBACK,
    CertificateFiles,
    ServingFiles,
    WebhookProcess,
    free_port,
)

# (name, path, review); the floors are answered by floor.py whatever they are sent.
FLOOR = "floor"  # uvicorn[standard]: uvloop and httptools, the floor serve is held to
ASYNCIO_FLOOR = "floor on asyncio"  # asyncio's loop with our protocol: serve's stack before
SCENARIOS: list[tuple[str, str, dict[str, Any]]] = [
    (FLOOR, "/", admission_review(service("LoadBalancer"))),
    (ASYNCIO_FLOOR, "/", admission_review(service("LoadBalancer"))),
    ("enforce deny", "/validate/enforce", admission_review(service("LoadBalancer"))),
    ("mutate patch", "/mutate", admission_review(service("NodePort"))),
    ("audit warn", "/validate/audit", admission_review(service("NodePort"))),
    ("allowed", "/validate/enforce", admission_review(service("ClusterIP"))),
]
RESULTS = ROOT / ".dev" / "bench" / "webhook.json"


def build(tool: str, folder: Path) -> Path:
    binary = folder / tool
    subprocess.run(
        ["go", "build", "-o", str(binary), "."], cwd=ROOT / "benchmarks" / tool, check=True
    )
    return binary


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU the processes have used so far."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Floor:
    """floor.py in its own process; `verdict`: allow or deny every review."""

    def __init__(self, files: CertificateFiles, loop: str, verdict: str = "allow") -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / "floor.py"),
             str(files.cert_file), str(files.key_file), str(self.port), loop, verdict],
            env={**os.environ, "PYTHONPATH": f"{ROOT / 'app'}:{ROOT}"},
        )  # fmt: skip
        self.url = f"https://{LOOPBACK}:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


class PeakSampler(threading.Thread):
    """The highest RSS of one process while running."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.running = pid, 0.0, True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, rss_mib(self.pid))
            time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="measured time per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--scenarios", nargs="+", choices=[name for name, _, _ in SCENARIOS],
        default=[name for name, _, _ in SCENARIOS], metavar="NAME",
        help="only these (the floor is always measured, as the ratios' base)",
    )  # fmt: skip
    args = parser.parse_args()
    scenarios = [s for s in SCENARIOS if s[0] in {*args.scenarios, FLOOR}]
    workers = sorted(set(args.workers))

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        loadgen = build("loadgen", folder)
        files = ServingFiles(folder / "tls")
        bodies = {}
        for name, _, review in SCENARIOS:
            bodies[name] = folder / f"{name.replace(' ', '-')}.json"
            bodies[name].write_text(json.dumps(review))
        # The servers run in sessions of their own: whatever fails, they are stopped.
        with contextlib.ExitStack() as running:
            hooks = []
            for _ in range(max(workers)):
                hooks.append(WebhookProcess(files).start())
                running.callback(hooks[-1].stop)
            floors: dict[str, list[Floor]] = {FLOOR: [], ASYNCIO_FLOOR: []}
            for name, loop in ((FLOOR, "uvloop"), (ASYNCIO_FLOOR, "asyncio")):
                for _ in range(max(workers)):
                    floors[name].append(Floor(files, loop))
                    running.callback(floors[name][-1].stop)
            assert hooks[0].process is not None
            worker_pid = hooks[0].process.pid
            time.sleep(2)
            memory = {"at rest": rss_mib(worker_pid)}
            sampler = PeakSampler(worker_pid)
            sampler.start()
            load = wait_for_quiet(600)
            runs: list[dict[str, Any]] = []
            cells = [(c, w) for c in args.connections for w in workers]
            progress = Progress(args.rounds * len(cells) * len(scenarios))
            for round_ in range(args.rounds):
                for connections, count in cells:
                    # Rotated each round: no scenario always runs first or last.
                    shift = round_ % len(scenarios)
                    for name, path, _ in scenarios[shift:] + scenarios[:shift]:
                        servers: list[Floor] | list[WebhookProcess] = floors.get(name, hooks)
                        urls = ",".join(s.url + path for s in servers[:count])
                        pids = [s.process.pid for s in servers[:count] if s.process]
                        cpu_before = cpu_seconds(pids)
                        run = subprocess.run(
                            [str(loadgen), "-url", urls, "-ca", str(files.ca_file),
                             "-body", str(bodies[name]), "-c", str(connections),
                             "-d", f"{args.seconds}s", "-warmup", "1s"],
                            check=True, capture_output=True, text=True,
                        )  # fmt: skip
                        result = json.loads(run.stdout)
                        # The warm-up is sent at the same rate and costs the same CPU.
                        sent = result["requests"] * (1 + 1 / args.seconds)
                        result["server_cpu_us_per_review"] = (
                            (cpu_seconds(pids) - cpu_before) / max(sent, 1) * 1e6
                        )
                        runs.append(
                            {"scenario": name, "connections": connections, "workers": count,
                             "round": round_, **result}
                        )  # fmt: skip
                        progress.step(f"{name}, {connections} conn, {count} worker(s)")
            sampler.running = False
            memory["under load (peak)"] = sampler.peak
            time.sleep(10)
            memory["10 s after load"] = rss_mib(worker_pid)
    report = {
        "load_at_start": load,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "memory_mib": memory,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(table(runs))
    print()
    print("| one worker's RSS | MiB |\n|---|---:|")
    for moment, mib in memory.items():
        print(f"| {moment} | {mib:.1f} |")
    print(f"\n(1-minute load when measuring began: {load:.2f}; raw runs in {args.out})")
    return 0


def table(runs: list[dict[str, Any]]) -> str:
    lines = [
        "| scenario | workers | connections | reviews/s (spread) | share of the floor "
        "| p50 ms | p99 ms | server CPU per review | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    keys = sorted({(r["workers"], r["connections"]) for r in runs})
    for workers, connections in keys:
        floor = None
        for name, _, _ in SCENARIOS:
            mine = [
                r for r in runs
                if (r["scenario"], r["workers"], r["connections"]) == (name, workers, connections)
            ]  # fmt: skip
            if not mine:  # not measured this time (--scenarios)
                continue
            rates = [r["reviews_per_second"] for r in mine]
            rate = statistics.median(rates)
            floor = rate if name == FLOOR else floor
            share = f"{rate / floor:.2f}" if floor else "-"
            lines.append(
                f"| {name} | {workers} | {connections} | {rate:,.0f} "
                f"({min(rates):,.0f}-{max(rates):,.0f}) | {share} "
                f"| {statistics.median(r['p50_ms'] for r in mine):.2f} "
                f"| {statistics.median(r['p99_ms'] for r in mine):.2f} "
                f"| {statistics.median(r['server_cpu_us_per_review'] for r in mine):.0f} us "
                f"| {sum(r['errors'] for r in mine)} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
