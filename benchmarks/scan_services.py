"""`clusterip-guard scan` on many Services: how long each pass takes and its peak memory.

Starts the local control plane (kube-apiserver and etcd on loopback), fills it through the Go
load tool (benchmarks/apiload, `-op populate`: concurrent creates over HTTP/2, minutes for
100,000 Services where the Python client took an hour for half as many), a quarter of the
Services exposed (NodePort up to the node ports the cluster has, then LoadBalancer without node
ports and external IPs), every fourth namespace in audit. Then times each pass in a process of
its own and reads its peak resident memory: a scan printed as JSON, a first `--write-reports`
(creating every report), a second one that finds nothing new (it writes nothing), and the
resync of `scan --watch` (the long-running reports component: its first scan, then a full
rescan; the peak of the process over both). With --crowded N, N more Services in one
namespace, and the same passes on that namespace alone (`-n`). Prints a Markdown table for
docs/benchmarks.md. `make bench-scale` runs 100,000 Services in 1,000 namespaces and 10,000
in one; `make bench-scan` smaller sizes. Usage:
  python benchmarks/scan_services.py [--services 10000] [--namespaces 100] [--crowded 0]
                                     [--repeat 1] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [
    str(ROOT),
    str(ROOT / "app"),
    str(ROOT / "hack"),
    str(ROOT / "hack" / "controlplane"),
]

from kubernetes import client, config  # noqa: E402

from benchmarks.review_throughput import build  # noqa: E402
from localcluster import ControlPlane, free_port, start  # noqa: E402

PREFIX = "scale"
CROWDED = f"{PREFIX}-crowded"
NODE_PORTS = 2000  # of the 2,768 in 30000-32767: the rest stay free
RESYNC_SECONDS = 5.0
REPORT_KINDS = (("wgpolicyk8s.io", "v1alpha2", "policyreports", "clusterpolicyreports"),)


def populate(
    cluster: ControlPlane, binary: Path, *, services: int, namespaces: int, crowded: int,
    concurrency: int, node_ports: int = NODE_PORTS,
) -> dict[str, float]:  # fmt: skip
    pki = cluster.workdir / "pki"
    run = subprocess.run(
        [str(binary), "-server", cluster.url, "-ca", str(cluster.ca_file),
         "-cert", str(pki / "admin.crt"), "-key", str(pki / "admin.key"),
         "-op", "populate", "-prefix", PREFIX, "-services", str(services),
         "-namespaces", str(namespaces), "-crowded", str(crowded),
         "-nodeports", str(node_ports), "-c", str(concurrency)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if run.returncode != 0:
        raise SystemExit(f"apiload populate failed: {run.stderr.strip()}")
    said: dict[str, float] = json.loads(run.stdout)
    return said


def _scan_command() -> list[str]:
    """`clusterip-guard scan` that prints its peak resident memory (KiB) last on stderr: the
    VmHWM of its own address space. Not ru_maxrss: Linux carries the parent's high-water mark
    into a child across fork and exec, so after this benchmark had listed every report the
    scans it started all read 392 MiB (2026-12-07; their own peak was 120-140 MiB)."""
    report = (
        "import sys; print(next(line.split()[1] for line in open('/proc/self/status') "
        "if line.startswith('VmHWM:')), file=sys.stderr)"
    )
    script = (
        "import atexit, sys; from clusterip_guard.cli.main import main; "
        f"atexit.register(lambda: exec({report!r})); sys.exit(main())"
    )
    return [sys.executable, "-c", script, "scan"]


def timed(kubeconfig: Path, *args: str) -> tuple[float, int]:
    """Seconds, and the scanner's peak resident memory in KiB (its own VmHWM)."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    started = time.monotonic()
    run = subprocess.run(
        [*_scan_command(), *args], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, check=False,
    )  # fmt: skip
    seconds = time.monotonic() - started
    if run.returncode not in (0, 1):
        raise SystemExit(f"scan {' '.join(args)} failed: {run.stderr}")
    return seconds, int(run.stderr.strip().splitlines()[-1])


def _metric(port: int, name: str) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def watched(kubeconfig: Path, *args: str) -> tuple[float, int]:
    """`scan --watch`: its first scan, then one full resync (no change in between). The
    resync's seconds (its own metric), and the process's peak resident memory in KiB over
    both (VmHWM)."""
    port = free_port()
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    command = [*_scan_command(), "--watch", "--write-reports", "--metrics-port", str(port),
               "--resync-seconds", str(RESYNC_SECONDS), *args]  # fmt: skip
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        scans = 0.0
        while scans < 2:  # the first scan, then the resync
            if process.poll() is not None:
                raise SystemExit(f"scan --watch ended early ({process.returncode})")
            time.sleep(1)
            scans = _metric(port, 'clusterip_guard_scans_total{outcome="ok"}') or 0.0
        seconds = _metric(port, "clusterip_guard_last_scan_duration_seconds") or 0.0
        status = Path(f"/proc/{process.pid}/status").read_text()
        peak = next(int(line.split()[1]) for line in status.splitlines()
                    if line.startswith("VmHWM:"))  # fmt: skip
    finally:
        process.terminate()
        process.wait(timeout=30)
    return seconds, peak


def delete_reports(kubeconfig: Path) -> None:
    """Every report, so that the next --write-reports creates them all again. Listed a few at
    a time: this process's memory is not measured, but it should not be what a reader sees."""
    api = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    custom = client.CustomObjectsApi(api)
    for group, version, plural, cluster_plural in REPORT_KINDS:
        for kind_plural, namespaced in ((plural, True), (cluster_plural, False)):
            token = None
            while True:
                listed: Any = custom.list_cluster_custom_object(
                    group, version, kind_plural, limit=20, _continue=token
                )
                for item in listed.get("items") or []:
                    metadata = item["metadata"]
                    if namespaced:
                        custom.delete_namespaced_custom_object(
                            group, version, metadata["namespace"], kind_plural, metadata["name"]
                        )
                    else:
                        custom.delete_cluster_custom_object(
                            group, version, kind_plural, metadata["name"]
                        )
                token = (listed.get("metadata") or {}).get("continue")
                if not token:
                    break
    api.close()


def passes(kubeconfig: Path, scope: Sequence[str], repeat: int) -> list[tuple[str, float, int]]:
    """(pass, median seconds, peak KiB) of each pass on this scope."""
    rows = []
    for title, scan_args, before in (
        ("scan, JSON to stdout", ["-o", "json"], None),
        ("first --write-reports (creates every report)", ["--write-reports", "-o", "json"],
         "delete"),
        ("--write-reports with nothing new (writes nothing)",
         ["--write-reports", "-o", "json"], None),
    ):  # fmt: skip
        seconds, memory = [], []
        for _ in range(repeat):
            if before == "delete":
                delete_reports(kubeconfig)
            took, peak = timed(kubeconfig, *scan_args, *scope)
            seconds.append(took)
            memory.append(peak)
        rows.append((title, statistics.median(seconds), max(memory)))
    took, peak = watched(kubeconfig, *scope)
    rows.append(("resync of `scan --watch` (nothing new; peak over its first scan too)", took,
                 peak))  # fmt: skip
    return rows


def table(title: str, rows: list[tuple[str, float, int]]) -> str:
    lines = [f"\n{title}\n", "| pass | seconds | peak RSS MiB |", "|---|---|---|"]
    lines += [f"| {what} | {seconds:.1f} | {peak // 1024} |" for what, seconds, peak in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--namespaces", type=int, default=100)
    parser.add_argument("--crowded", type=int, default=0, help="Services in one more namespace")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=32, help="creates in flight")
    args = parser.parse_args()
    began = time.monotonic()
    tables = []
    with tempfile.TemporaryDirectory() as tmp, start(Path(tmp) / "cp", audit_log=False) as cp:
        binary = build("apiload", Path(tmp))
        print(f"creating {args.services:,} Services in {args.namespaces:,} namespaces",
              file=sys.stderr)  # fmt: skip
        made = populate(cp, binary, services=args.services, namespaces=args.namespaces,
                        crowded=0, concurrency=args.concurrency)  # fmt: skip
        print(f"  {made['services']:,.0f} in {made['seconds']:.0f} s "
              f"({made['per_second']:.0f}/s)", file=sys.stderr)  # fmt: skip
        timed(cp.kubeconfig, "--install-crds", "-n", "default")
        tables.append(table(
            f"{args.services:,} Services in {args.namespaces:,} namespaces (every namespace)",
            passes(cp.kubeconfig, [], args.repeat),
        ))  # fmt: skip
        if args.crowded:
            print(f"creating {args.crowded:,} Services in {CROWDED}", file=sys.stderr)
            # The first run took the node ports: the rest are exposed otherwise.
            made = populate(cp, binary, services=0, namespaces=0, crowded=args.crowded,
                            concurrency=args.concurrency, node_ports=0)  # fmt: skip
            print(f"  {made['services']:,.0f} in {made['seconds']:.0f} s", file=sys.stderr)
            tables.append(table(
                f"{args.crowded:,} Services in one namespace (`-n {CROWDED}`)",
                passes(cp.kubeconfig, ["-n", CROWDED], args.repeat),
            ))  # fmt: skip
    print(f"\n{args.repeat} run(s) of each pass (median seconds, highest peak); "
          f"the whole benchmark took {(time.monotonic() - began) / 60:.1f} minutes")  # fmt: skip
    print("\n".join(tables))
    return 0


if __name__ == "__main__":
    sys.exit(main())
