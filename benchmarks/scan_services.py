"""`clusterip-guard scan` on many Services: how long a scan and a report write take.

Starts the local control plane (kube-apiserver and etcd on loopback), creates the Services in
the namespaces asked for (a quarter of them NodePort, up to the node ports the cluster has;
some namespaces in audit), then times, each a few times: a scan printed as JSON, a first
`--write-reports` (creating every report: a namespace past 1,000 results gets several), and a
second one that finds nothing new (it writes nothing). Prints a Markdown table for
docs/benchmarks.md, and the scanner's peak memory. `make bench-scan` runs 10,000 Services in
100 namespaces, 5,000 in one, and 20,000 in 200. Usage:
  python benchmarks/scan_services.py [--services 10000] [--namespaces 100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [
    str(ROOT),
    str(ROOT / "app"),
    str(ROOT / "hack"),
    str(ROOT / "hack" / "controlplane"),
]

from kubernetes import client, config  # noqa: E402

from localcluster import start  # noqa: E402

MODE_LABEL = "clusterip-guard.io/mode"


def populate(kubeconfig: Path, services: int, namespaces: int) -> None:
    api = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    core = client.CoreV1Api(api)
    for n in range(namespaces):
        labels = {MODE_LABEL: "audit"} if n % 4 == 0 else {}
        core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=f"team-{n:03}", labels=labels))
        )

    def create(index: int) -> None:
        # 30000-32767 holds 2,768 node ports: a quarter NodePort, up to 2,000 of them.
        exposed = index % 4 == 0 and index < 8000
        body = client.V1Service(
            metadata=client.V1ObjectMeta(name=f"svc-{index:05}"),
            spec=client.V1ServiceSpec(
                type="NodePort" if exposed else "ClusterIP",
                selector={"app": f"svc-{index:05}"},
                ports=[client.V1ServicePort(port=80, target_port=8080)],
            ),
        )
        core.create_namespaced_service(f"team-{index % namespaces:03}", body)

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        for done, _ in enumerate(pool.map(create, range(services)), start=1):
            if done % 1000 == 0:
                print(f"  {done} Services created", file=sys.stderr)
    print(f"  created in {time.monotonic() - started:.0f} s", file=sys.stderr)
    api.close()


def timed(kubeconfig: Path, *args: str) -> tuple[float, int]:
    """Seconds, and the scanner's peak resident memory in KiB (from its own rusage)."""
    report = (
        "import resource, sys; "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)"
    )
    script = (
        "import atexit, sys; from clusterip_guard.cli.main import main; "
        f"atexit.register(lambda: exec({report!r})); sys.exit(main())"
    )
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-c", script, "scan", *args],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.monotonic() - started
    if run.returncode not in (0, 1):
        raise SystemExit(f"scan {' '.join(args)} failed: {run.stderr}")
    return seconds, int(run.stderr.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--namespaces", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, start(Path(tmp), audit_log=False) as cluster:
        print(f"creating {args.services} Services in {args.namespaces} namespaces",
              file=sys.stderr)  # fmt: skip
        populate(cluster.kubeconfig, args.services, args.namespaces)
        timed(cluster.kubeconfig, "--install-crds", "-o", "json")
        rows = []
        for title, scan_args, before in (
            ("scan, JSON to stdout", ["-o", "json"], None),
            ("first --write-reports (creates every report)", ["--write-reports", "-o", "json"],
             "delete"),
            ("--write-reports with nothing new (writes nothing)",
             ["--write-reports", "-o", "json"], None),
        ):  # fmt: skip
            seconds, memory = [], []
            for _ in range(args.repeat):
                if before == "delete":
                    for resource in ("policyreports", "clusterpolicyreports"):
                        subprocess.run(
                            ["kubectl", f"--kubeconfig={cluster.kubeconfig}", "delete",
                             resource, "--all", "-A", "--wait=false"],
                            capture_output=True, check=False,
                        )  # fmt: skip
                took, peak = timed(cluster.kubeconfig, *scan_args)
                seconds.append(took)
                memory.append(peak)
            rows.append(
                f"| {title} | {statistics.median(seconds):.1f} "
                f"({min(seconds):.1f}-{max(seconds):.1f}) | {max(memory) // 1024} |"
            )
    print(f"\n{args.services:,} Services in {args.namespaces} namespaces, "
          f"{args.repeat} runs each (median, min-max)\n")  # fmt: skip
    print("| what | seconds | peak RSS MiB |")
    print("|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
