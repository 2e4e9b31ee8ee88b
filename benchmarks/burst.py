"""Admission under a burst: Service and Pod writes at concurrency 32 and 64 through the API
server, for no policy, the hand-written VAP/MAP, the native engine and the webhook.

The runs are benchmarks/apiserver_admission.py's (the Go client in benchmarks/apiload, HTTP/2
as client-go; setups in alternating rounds, their order rotating each round so that drift and
the machine's other work hit all alike). Beside each run's throughput and p50/p99 it records
the webhook's own CPU (cores used at that rate) and peak RSS, the writes that failed (anything
but a success or a denial), the webhook calls the API server could not complete (refused,
reset, timed out; an Ignore entry's fail open included) and the connections the webhook's own
limits cut. Two goals are judged from them: the native engine within 10% of the hand-written
policies' throughput (round by round), and no failure at all through the webhook.

Where the webhook runs:
- loopback (the default): the local control plane and one `clusterip-guard serve` on
  127.0.0.1, registered with `bootstrap --url` (`--serve-arg` passes flags to it);
- `--node DEV`: the real node `make cluster` started (DEV/cluster/kubeconfig), the chart
  installed from the image `make image` built with two replicas behind its Service, the
  baselines and the native engine applied beside it; everything it adds is removed after.

Usage: python benchmarks/burst.py [--rounds 3 --requests 640 --concurrency 32 64]
       python benchmarks/burst.py --node .dev
Exits 1 when a goal is not met.
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
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path[:0] = [str(ROOT / "hack"), str(ROOT / "hack" / "controlplane")]

from benchmarks.apiserver_admission import (  # noqa: E402
    NEED_MUTATING_POLICY,
    PODS,
    SERVICES,
    SETUPS,
    Client,
    Watched,
    cluster_with_policies,
    failures,
    loopback_webhook,
    measure,
    namespace_of,
    native_engine,
    serves_mutating_policies,
    wait_until_policies_act,
)
from benchmarks.progress import wait_for_quiet  # noqa: E402
from benchmarks.review_throughput import build  # noqa: E402
from tests.support.kubectl import Kubectl  # noqa: E402

BURST_SETUPS = ["VAP", "MAP", "native enforce", "native mutate", "enforce", "mutate"]
WEBHOOK_SETUPS = ("enforce", "mutate", "audit")
# native setup -> the hand-written policy it is held to
NATIVE = {"native enforce": "VAP", "native mutate": "MAP"}
WITHIN = 0.90  # the native engine's throughput, at least this share of the hand-written one
RESULTS = ROOT / ".dev" / "bench" / "burst.json"
NODE_RESULTS = ROOT / ".dev" / "bench" / "burst-node.json"
# On the node: the chart's release (and its namespace), and the prefix of the setups'
# namespaces (a node's namespaces do finish deleting, but not at once: names of their own).
RELEASE = "clusterip-guard-burst"
NODE_PREFIX = "burst-"
IMAGE = ROOT / ".dev" / "images" / "clusterip-guard.tar"


class NotReady(Exception):
    """What the node run needs and is missing, in one line."""


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--requests", type=int, default=640, help="measured writes per run (after one per writer)"
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[32, 64])
    parser.add_argument(
        "--setups", nargs="+", choices=list(SETUPS), default=BURST_SETUPS, metavar="SETUP",
        help="besides no policy, always measured",
    )  # fmt: skip
    parser.add_argument(
        "--objects", nargs="+", choices=[*SERVICES, *PODS], default=[*SERVICES, *PODS],
        metavar="OBJECT", help="only these kinds of write",
    )  # fmt: skip
    parser.add_argument(
        "--serve-arg", action="append", default=[], metavar="ARG", dest="serve_args",
        help="a flag for the loopback `serve` (repeat it), e.g. "
        "--serve-arg=--max-connections-per-client=256",
    )  # fmt: skip
    parser.add_argument(
        "--node", type=Path, metavar="DEV",
        help="the real node `make cluster` started in DEV: the chart with two replicas",
    )  # fmt: skip
    parser.add_argument("--label", default="", help="a name for this run in the report")
    parser.add_argument(
        "--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"),
        help="measure nothing: the webhook's rows of two reports (burst.json) side by side",
    )  # fmt: skip
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--quiet-wait", type=float, default=120, metavar="SECONDS",
        help="how long to wait for a quiet machine before measuring anyway (the load is reported)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    args.out = args.out or (NODE_RESULTS if args.node else RESULTS)
    args.unserved = ()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.compare:
        before, after = (json.loads(path.read_text()) for path in args.compare)
        print(compare_table(before, after))
        return 0
    try:
        if args.node:
            with node_with_policies(args.node.resolve(), args) as (kubectl, client, watched):
                release = version_of(kubectl)
                load = wait_for_quiet(args.quiet_wait)
                runs = measure(client, args, watched)
        else:
            with cluster_with_policies() as (folder, cluster, kubectl, client):
                release = version_of(kubectl)
                leave_out_unserved(kubectl, args, release)
                serve_args = tuple(args.serve_args)
                with loopback_webhook(folder, cluster, kubectl, args, serve_args) as watched:
                    load = wait_for_quiet(args.quiet_wait)
                    runs = measure(client, args, watched)
    except NotReady as missing:
        print(f"burst --node: {missing}", file=sys.stderr)
        return 2
    where = "two replicas on the node" if args.node else "one replica on loopback"
    report = {
        "kubernetes": release, "load_at_start": load, "rounds": args.rounds,
        "requests": args.requests, "webhook": where, "serve_args": args.serve_args,
        "label": args.label, "cpus": os.cpu_count(), "runs": runs,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    goals = judged(runs)
    tables = "\n\n".join([table(runs), webhook_table(runs), goal_table(goals)]) + (
        f"\n\n(Kubernetes {release}; the webhook: {where}"
        f"{' with ' + ' '.join(args.serve_args) if args.serve_args else ''}; "
        f"{os.cpu_count()} CPUs shared with other work; 1-minute load when measuring began: "
        f"{load:.2f}; {args.rounds} rounds of {args.requests} writes per run; "
        f"raw runs in {args.out})\n"
    )
    print(tables, end="")
    args.out.with_suffix(".md").write_text(tables)
    return 0 if all(met for _, _, met in goals) else 1


def version_of(kubectl: Kubectl) -> str:
    version: str = json.loads(kubectl("get", "--raw", "/version").stdout)["gitVersion"]
    return version


def leave_out_unserved(kubectl: Kubectl, args: argparse.Namespace, release: str) -> None:
    """Before 1.36 no MutatingAdmissionPolicy v1: its setups are left out, saying so."""
    if serves_mutating_policies(kubectl):
        return
    args.unserved = NEED_MUTATING_POLICY
    left_out = [setup for setup in args.setups if setup in NEED_MUTATING_POLICY]
    args.setups = [setup for setup in args.setups if setup not in NEED_MUTATING_POLICY]
    print(f"Kubernetes {release} serves no MutatingAdmissionPolicy v1: left out "
          f"{', '.join(left_out) or 'nothing'}", file=sys.stderr)  # fmt: skip


# --- the tables -------------------------------------------------------------------------------


def write_of(op: str, kind: str) -> str:
    return f"{op} {kind}" if kind in PODS else f"{op}, {kind} Service"


def cells(runs: list[dict[str, Any]]) -> dict[tuple[str, str, int, str], list[dict[str, Any]]]:
    """(op, object, concurrency, setup) -> its runs, one per round."""
    found: dict[tuple[str, str, int, str], list[dict[str, Any]]] = {}
    for run in runs:
        key = (run["op"], run["service"], run["concurrency"], run["setup"])
        found.setdefault(key, []).append(run)
    return found


def rows_of(runs: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    """(op, object, concurrency) in the order the runs were taken."""
    return list(dict.fromkeys((run["op"], run["service"], run["concurrency"]) for run in runs))


def setups_of(runs: list[dict[str, Any]]) -> list[str]:
    present = {run["setup"] for run in runs}
    return [setup for setup in SETUPS if setup in present]


def median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(float(run.get(key, 0.0)) for run in runs)


def failed(run: dict[str, Any]) -> int:
    """A run's failures: writes that failed, or webhook calls that failed. A run is one
    setup: a failed call of a Fail entry is a failed write (counted once), one of an Ignore
    entry (audit) fails open and shows only as a failed call."""
    return max(failures(run.get("statuses", {})), int(run.get("failed_calls", 0)))


def table(runs: list[dict[str, Any]]) -> str:
    """Writes per second, p50 and p99 ms (medians of the rounds), one row per write and
    concurrency, one column per setup."""
    found, setups = cells(runs), setups_of(runs)
    lines = [
        "| write | writers | " + " | ".join(setups) + " |",
        "|---|---:|" + "---:|" * len(setups),
    ]
    for op, kind, concurrency in rows_of(runs):
        row = []
        for setup in setups:
            mine = found.get((op, kind, concurrency, setup))
            if not mine:
                row.append("-")
                continue
            lost = sum(failed(run) for run in mine)
            row.append(
                f"{median(mine, 'per_second'):,.0f}/s, {median(mine, 'p50_ms'):.0f}"
                f"/{median(mine, 'p99_ms'):.0f} ms" + (f", **{lost} failed**" if lost else "")
            )
        lines.append(f"| {write_of(op, kind)} | {concurrency} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def webhook_table(runs: list[dict[str, Any]]) -> str:
    """The webhook's side of its setups' runs: its calls, their time in the API server, its
    CPU and memory at that rate, what failed and what its limits cut."""
    found = cells(runs)
    lines = [
        "| write | writers | setup | writes/s | webhook calls/s | call ms (API server) "
        "| its CPU, cores | its peak RSS MiB | connections open to it (peak) | failed writes "
        "| failed calls | cut by its limits |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for op, kind, concurrency in rows_of(runs):
        for setup in WEBHOOK_SETUPS:
            mine = found.get((op, kind, concurrency, setup))
            if not mine:
                continue
            calls = statistics.median(
                run.get("webhook_calls", 0.0) / run["seconds"] for run in mine if run["seconds"]
            )
            cut: dict[str, float] = {}
            for run in mine:
                for reason, n in run.get("refused", {}).items():
                    cut[reason] = cut.get(reason, 0.0) + n
            lines.append(
                f"| {write_of(op, kind)} | {concurrency} | {setup} "
                f"| {median(mine, 'per_second'):,.0f} | {calls:,.0f} "
                f"| {median(mine, 'webhook_ms'):.2f} | {median(mine, 'webhook_cores'):.2f} "
                f"| {max(run.get('webhook_rss_one_mib', 0.0) for run in mine):.0f} "
                f"| {max(run.get('webhook_connections', 0) for run in mine)} "
                f"| {sum(failures(run.get('statuses', {})) for run in mine)} "
                f"| {sum(int(run.get('failed_calls', 0)) for run in mine)} "
                f"| {', '.join(f'{r} {n:.0f}' for r, n in sorted(cut.items())) or '0'} |"
            )
    return "\n".join(lines)


def compare_table(before: dict[str, Any], after: dict[str, Any]) -> str:
    """The webhook's setups in two reports: writes per second, p99, failures, cuts."""
    names = [report.get("label") or f"run {n}" for n, report in enumerate((before, after), 1)]
    found = [cells(report["runs"]) for report in (before, after)]
    head = " | ".join(
        f"{what}, {name}" for what in ("writes/s", "p99 ms", "failed", "cut") for name in names
    )
    lines = [f"| write | writers | setup | {head} |", "|---|---:|---|" + "---:|" * 8]
    for op, kind, concurrency in rows_of(before["runs"] + after["runs"]):
        for setup in WEBHOOK_SETUPS:
            mine = [f.get((op, kind, concurrency, setup), []) for f in found]
            if not all(mine):
                continue
            columns = [f"{median(m, 'per_second'):,.0f}" for m in mine]
            columns += [f"{median(m, 'p99_ms'):.0f}" for m in mine]
            columns += [str(sum(failed(run) for run in m)) for m in mine]
            columns += [f"{sum(sum(r.get('refused', {}).values()) for r in m):.0f}" for m in mine]
            lines.append(
                f"| {write_of(op, kind)} | {concurrency} | {setup} | " + " | ".join(columns) + " |"
            )
    return "\n".join(lines)


def judged(runs: list[dict[str, Any]]) -> list[tuple[str, str, bool]]:
    """The burst's goals: (goal, what was reached, met). The native engine is held to the
    hand-written policies on Service writes: theirs govern no Pods."""
    found = cells(runs)
    goals: list[tuple[str, str, bool]] = []
    for native, hand_written in NATIVE.items():
        worst: tuple[float, str] | None = None
        parts = []
        for op, kind, concurrency in rows_of(runs):
            if kind in PODS:  # the hand-written policies govern Services only
                continue
            ratios = round_ratios(
                found.get((op, kind, concurrency, native), []),
                found.get((op, kind, concurrency, hand_written), []),
            )
            if not ratios:
                continue
            share = statistics.median(ratios)
            where = f"{write_of(op, kind)} at {concurrency}"
            parts.append(f"{where} {share:.2f}")
            if worst is None or share < worst[0]:
                worst = (share, where)
        if worst is None:
            continue
        goals.append((
            f"{native} within 10% of the hand-written {hand_written}'s throughput",
            f"lowest {worst[0]:.2f} ({worst[1]}); " + ", ".join(parts),
            worst[0] >= WITHIN,
        ))  # fmt: skip
    through_webhook = [run for run in runs if run["setup"] in WEBHOOK_SETUPS]
    if through_webhook:
        lost = sum(failed(run) for run in through_webhook)
        timeouts = sum(
            1 for run in through_webhook if "deadline" in run.get("first_failure", "").lower()
        )
        cut = sum(sum(run.get("refused", {}).values()) for run in through_webhook)
        goals.append((
            "no failure through the webhook under burst",
            f"{lost} failed writes or calls in {len(through_webhook)} runs "
            f"({timeouts} runs with a timeout), {cut:.0f} connections cut by its limits",
            lost == 0,
        ))  # fmt: skip
    return goals


def round_ratios(mine: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> list[float]:
    """Throughput of `mine` over `theirs`, taken in the same round (seconds apart)."""
    by_round = {run["round"]: run["per_second"] for run in theirs}
    return [
        run["per_second"] / by_round[run["round"]] for run in mine if by_round.get(run["round"])
    ]


def goal_table(goals: list[tuple[str, str, bool]]) -> str:
    lines = ["| goal | reached | met |", "|---|---|---|"]
    lines += [f"| {goal} | {reached} | {'yes' if met else 'no'} |" for goal, reached, met in goals]
    return "\n".join(lines)


# --- on the real node -------------------------------------------------------------------------


@contextlib.contextmanager
def node_with_policies(
    dev: Path, args: argparse.Namespace
) -> Iterator[tuple[Kubectl, Client, dict[str, Watched]]]:
    """The node `make cluster` started in `dev`, with the baselines, the native engine and the
    chart (two replicas) installed, one labelled namespace per setup: kubectl, the load client
    and setup -> the webhook's replicas. Everything added is removed on the way out."""
    work = dev / "cluster"
    kubeconfig, pki = work / "kubeconfig", work / "pki"
    kubectl = Kubectl(kubeconfig, binary=str(dev / "bin" / "kubectl"))
    if not kubeconfig.exists() or kubectl("get", "--raw", "/readyz", check=False).returncode:
        raise NotReady(f"no node answers at {kubeconfig}: `make cluster` first")
    if not IMAGE.exists():
        raise NotReady(f"no image at {IMAGE}: `make image` first")
    registered = kubectl(
        "get", "validatingwebhookconfigurations,mutatingwebhookconfigurations", "-o", "name"
    ).stdout.split()
    others = [name for name in registered if "clusterip-guard" in name and RELEASE not in name]
    if others:  # every write would call both releases' webhooks
        raise NotReady(f"another release's webhooks are registered ({', '.join(others)}): "
                       "`helm uninstall` it first")  # fmt: skip
    server = json.loads(kubectl("config", "view", "--minify", "-o", "json").stdout)
    url = server["clusters"][0]["cluster"]["server"]
    args.namespace_prefix = NODE_PREFIX
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as undo:
        client = Client(build("apiload", Path(tmp)), url, pki / "ca.crt", pki)
        leave_out_unserved(kubectl, args, version_of(kubectl))
        policies = [
            path for path in sorted((ROOT / "tests" / "data").glob("*admission-policy.yaml"))
            if not args.unserved or not path.name.startswith("mutating")
        ]  # fmt: skip
        for path in policies:
            kubectl("apply", "-f", str(path))
            undo.callback(kubectl, "delete", "-f", str(path), "--ignore-not-found", check=False)
        if not args.unserved:
            native = native_engine()
            kubectl("apply", "-f", "-", stdin=native)
            undo.callback(kubectl, "delete", "-f", "-", "--ignore-not-found", stdin=native,
                          check=False)  # fmt: skip
        subprocess.run(
            [sys.executable, str(ROOT / "hack" / "cluster" / "cluster.py"), "--dir", str(dev),
             "import", str(IMAGE)], check=True,
        )  # fmt: skip
        helm = [str(dev / "bin" / "helm"), "--kubeconfig", str(kubeconfig), "--namespace", RELEASE]
        undo.callback(subprocess.run, [*helm, "uninstall", RELEASE, "--wait"], check=False)
        subprocess.run(
            [*helm, "upgrade", "--install", RELEASE, str(ROOT / "charts" / "clusterip-guard"),
             "--create-namespace", "--wait", "--timeout", "5m", "--set", "replicaCount=2"],
            check=True,
        )  # fmt: skip
        names = [namespace_of(setup, NODE_PREFIX) for setup in SETUPS]
        undo.callback(kubectl, "delete", "namespace", *names, "--ignore-not-found",
                      "--wait=false", check=False)  # fmt: skip
        for setup, (label, _) in SETUPS.items():
            kubectl("create", "namespace", namespace_of(setup, NODE_PREFIX))
            if label:
                kubectl("label", "namespace", namespace_of(setup, NODE_PREFIX), label)
        replicas = webhook_replicas(kubectl)
        wait_until_policies_act(
            kubectl, [s for s in args.setups if s in SETUPS] + ["no policy"], NODE_PREFIX
        )
        yield kubectl, client, dict.fromkeys(WEBHOOK_SETUPS, replicas)


def webhook_replicas(kubectl: Kubectl) -> Watched:
    """The chart's webhook Pods on this machine: their processes (found by the Pod's UID in
    their cgroup) and their metrics ports (Pod IPs answer from the host)."""
    listed = json.loads(
        kubectl("-n", RELEASE, "get", "pods", "-o", "json",
                "-l", f"app.kubernetes.io/instance={RELEASE}").stdout
    )  # fmt: skip
    pods = [
        pod for pod in listed["items"]
        if pod["status"].get("phase") == "Running"
        and any(c["name"] == "webhook" for c in pod["spec"]["containers"])
    ]  # fmt: skip
    if len(pods) < 2:
        raise NotReady(f"{len(pods)} webhook replica(s) running in {RELEASE}, not 2")
    pids: list[int] = []
    for pod in pods:
        found = pids_of_pod(pod["metadata"]["uid"])
        if not found:
            raise NotReady(f"no process of Pod {pod['metadata']['name']} found by its cgroup")
        pids += found
    urls = [f"http://{pod['status']['podIP']}:9090/metrics" for pod in pods]
    return Watched(pids, urls, port=8443)


def pids_of_pod(uid: str, proc: Path = Path("/proc")) -> list[int]:
    """The processes whose cgroup names the Pod's UID (the cgroupfs driver keeps its dashes,
    the systemd one turns them into underscores), the sandbox's pause left out."""
    spellings = (uid, uid.replace("-", "_"))
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cgroup = (entry / "cgroup").read_text()
            if any(spelling in cgroup for spelling in spellings):
                command = (entry / "cmdline").read_bytes()
                if b"pause" not in command.split(b"\0", 1)[0]:
                    found.append(int(entry.name))
    return sorted(found)


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"(took {time.monotonic() - started:.0f} s)", file=sys.stderr)
    sys.exit(code)
