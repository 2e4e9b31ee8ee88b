"""What clusterip-guard costs the API server, beside no policy and the in-process policies.

Starts the local control plane (etcd and kube-apiserver on loopback), applies the
ValidatingAdmissionPolicy and MutatingAdmissionPolicy baselines (tests/data), registers a
`clusterip-guard serve` on loopback with `clusterip-guard bootstrap --url`, and has the Go
client in benchmarks/apiload create and update Services in one namespace per setup, at each
concurrency. A "webhook floor" setup (benchmarks/floor.py denying every review, registered
as the enforce entry is) shows what any webhook costs. Beside the client's latency, the API
server's own mean time per webhook call (apiserver_admission_webhook_admission_duration_seconds)
is recorded for each run. Setups are interleaved (their order rotates every round) so that
drift hits all alike; each figure is the median of the rounds, with the spread.
The native engine (the default policy compiled by `render --engine native`) runs beside them
in namespaces selected by a label of its own, and is compared with the hand-written baselines.
On a release without MutatingAdmissionPolicy v1 (CLUSTERIP_GUARD_KUBERNETES=v1.30.14, `make
bench KUBERNETES=v1.30.14`: before 1.36) the setups that need it are left out, saying so.
Usage: python benchmarks/apiserver_admission.py [--rounds 3 --requests 300]
       [--setups mutate "mutating floor"] [--objects exposed]
"""

from __future__ import annotations

import argparse
import contextlib
import json
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

from benchmarks.progress import Progress, wait_for_quiet  # noqa: E402
from benchmarks.review_throughput import Floor, build, cpu_seconds  # noqa: E402
from clusterip_guard.core.native import native_objects  # noqa: E402
from clusterip_guard.core.policy import PolicySettings  # noqa: E402
from localcluster import ControlPlane, start  # noqa: E402
from tests.support.cli import clusterip_guard  # noqa: E402
from tests.support.kubectl import Kubectl  # noqa: E402
from tests.support.webhook_process import CertificateFiles, WebhookProcess, free_port  # noqa: E402

MODE = "clusterip-guard.io/mode"
BASELINE_MODE = "clusterip-guard-baseline.io/mode"
NATIVE_MODE = "clusterip-guard-native.io/mode"
FLOOR_LABEL = "bench.clusterip-guard.io/floor"
# setup -> (namespace label, its in-process counterpart)
SETUPS: dict[str, tuple[str | None, str | None]] = {
    "no policy": (None, None),
    "VAP": (f"{BASELINE_MODE}=enforce", None),
    "MAP": (f"{BASELINE_MODE}=mutate", None),
    # Any webhook's cost: floor.py denying every review it is sent, registered exactly as
    # the enforce entry is (rules, matchConditions, timeout), in a namespace of its own.
    "webhook floor": (f"{FLOOR_LABEL}=deny", "VAP"),
    # The same for mutate: floor.py returning the patch `mutate` returns for this Service,
    # registered exactly as the mutate entry is, so the API server applies the same patch.
    "mutating floor": (f"{FLOOR_LABEL}=patch", "MAP"),
    # Only when named (--setups): floor.py answering with clusterip-guard's own answer, byte
    # for byte. Between the floor and this: what our fuller answer costs the API server
    # (message, warnings, audit annotations); between this and ours: our webhook's own time.
    "floor answering as enforce": (f"{FLOOR_LABEL}=enforce", "VAP"),
    "floor answering as mutate": (f"{FLOOR_LABEL}=mutate", "MAP"),
    "enforce": (f"{MODE}=enforce", "VAP"),
    "mutate": (f"{MODE}=mutate", "MAP"),
    "audit": (f"{MODE}=audit", None),
    # The native engine: the same policy compiled into admission policies (`render --engine
    # native`), selecting namespaces by a label of its own so that it runs beside the webhook.
    "native enforce": (f"{NATIVE_MODE}=enforce", "VAP"),
    "native mutate": (f"{NATIVE_MODE}=mutate", "MAP"),
}
SERVICES = {"exposed": "NodePort", "compliant": "ClusterIP"}
# Pods, created only: their host port (0: none). A compliant Pod is what most clusters write
# all day; the workload entries' match condition must keep it from costing anything.
PODS = {"compliant pod": 0, "exposed pod": 8088}
RESULTS = ROOT / ".dev" / "bench" / "apiserver.json"
# setup -> (floor.py's answer, the entry it is registered as)
FLOORS = {
    "webhook floor": ("deny", "enforce"),
    "mutating floor": ("patch", "mutate"),
    "floor answering as enforce": ("enforce", "enforce"),
    "floor answering as mutate": ("mutate", "mutate"),
}
ONLY_WHEN_NAMED = ("floor answering as enforce", "floor answering as mutate")
# What an API server without MutatingAdmissionPolicy v1 (before Kubernetes 1.36) cannot run.
NEED_MUTATING_POLICY = ("MAP", "native enforce", "native mutate")


def namespace_of(setup: str) -> str:
    return "bench-" + setup.lower().replace(" ", "-")


class Client:
    def __init__(self, binary: Path, cluster: ControlPlane) -> None:
        pki = cluster.workdir / "pki"
        self.base = [str(binary), "-server", cluster.url, "-ca", str(cluster.ca_file),
                     "-cert", str(pki / "admin.crt"), "-key", str(pki / "admin.key")]  # fmt: skip

    def __call__(self, *args: str) -> dict[str, Any]:
        run = subprocess.run([*self.base, *args], capture_output=True, text=True, check=False)
        if run.returncode != 0:
            raise RuntimeError(f"apiload {' '.join(args)}: {run.stderr}")
        return json.loads(run.stdout) if run.stdout.strip() else {}


def register_floor(kubectl: Kubectl, url: str, answer: str, entry: str) -> None:
    """A copy of clusterip-guard's `entry` (enforce or mutate) that sends the reviews of the
    namespace labelled with the floor's `answer` to the floor instead."""
    kind = "mutating" if entry == "mutate" else "validating"
    ours = json.loads(kubectl("get", f"{kind}webhookconfiguration", "bench", "-o", "json").stdout)
    copied = next(hook for hook in ours["webhooks"] if hook["name"].startswith(f"{entry}."))
    floor = {
        **copied,
        "name": f"floor-{answer}.bench.clusterip-guard.io",
        "clientConfig": {"url": url, "caBundle": copied["clientConfig"]["caBundle"]},
        "namespaceSelector": {"matchLabels": {FLOOR_LABEL: answer}},
    }
    configuration = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": f"{kind.capitalize()}WebhookConfiguration",
        "metadata": {"name": f"bench-floor-{answer}"},
        "webhooks": [floor],
    }
    kubectl("apply", "-f", "-", stdin=json.dumps(configuration))


def native_engine() -> str:
    """The native engine's objects for the default policy, selecting by NATIVE_MODE."""
    rendered = json.dumps(native_objects(PolicySettings(), name="bench-native"))
    documents = json.loads(rendered.replace(MODE, NATIVE_MODE))
    return "\n".join(json.dumps(document) for document in documents)


def serves_mutating_policies(kubectl: Kubectl) -> bool:
    served = kubectl("get", "--raw", "/apis/admissionregistration.k8s.io/v1").stdout
    return any(
        resource["name"] == "mutatingadmissionpolicies"
        for resource in json.loads(served)["resources"]
    )


@contextlib.contextmanager
def cluster_with_policies() -> Iterator[tuple[Path, ControlPlane, Kubectl, Client]]:
    """A scratch folder, the local control plane with the hand-written baselines (tests/data)
    and the native engine applied (what the release serves of them), kubectl and the load
    client for it."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        client_binary = build("apiload", folder)
        with start(folder / "controlplane", audit_log=False) as cluster:
            kubectl = Kubectl(cluster.kubeconfig)
            mutating = serves_mutating_policies(kubectl)
            for policy in sorted((ROOT / "tests" / "data").glob("*admission-policy.yaml")):
                if mutating or not policy.name.startswith("mutating"):
                    kubectl("apply", "-f", str(policy))
            if mutating:
                kubectl("apply", "-f", "-", stdin=native_engine())
            yield folder, cluster, kubectl, Client(client_binary, cluster)


def wait_until_policies_act(kubectl: Kubectl, setups: list[str]) -> None:
    """The in-process policies and the webhook configurations take effect a moment after
    they are created: wait until each setup's namespace denies (the VAP's kind) or converts
    (the MAP's kind) a NodePort Service."""
    manifest = json.dumps({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "probe"},
        "spec": {"type": "NodePort", "ports": [{"port": 80}]},
    })  # fmt: skip
    effects = {
        setup: "denies" if "VAP" in (setup, counterpart) else "converts"
        for setup, (_, counterpart) in SETUPS.items()
        if setup in setups and ({setup, counterpart} & {"VAP", "MAP"})
    }
    deadline = time.monotonic() + 60
    while effects and time.monotonic() < deadline:
        for setup, effect in list(effects.items()):
            probe = kubectl("-n", namespace_of(setup), "create", "--dry-run=server", "-o",
                            "json", "-f", "-", stdin=manifest, check=False)  # fmt: skip
            denied = probe.returncode != 0
            if (effect == "denies") == denied and (denied or '"type": "ClusterIP"' in probe.stdout):
                del effects[setup]
        time.sleep(0.5)
    if effects:
        raise RuntimeError(f"not in effect within 60 s: {', '.join(effects)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=300, help="measured requests per run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--setups",
        nargs="+",
        choices=list(SETUPS),
        default=[setup for setup in SETUPS if setup not in ONLY_WHEN_NAMED],
        metavar="SETUP",
        help="only these (no policy, each one's in-process counterpart, always): many rounds "
        f"of a few setups separate small differences better; {', '.join(ONLY_WHEN_NAMED)} "
        "only when named",
    )
    parser.add_argument(
        "--objects",
        nargs="+",
        choices=[*SERVICES, *PODS],
        default=[*SERVICES, *PODS],
        metavar="OBJECT",
        help="only these kinds of write",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=600,
        metavar="SECONDS",
        help="how long to wait for a quiet machine before measuring anyway (the load is reported)",
    )
    args = parser.parse_args()

    runs: list[dict[str, Any]] = []
    with cluster_with_policies() as (folder, cluster, kubectl, client):
        release = json.loads(kubectl("get", "--raw", "/version").stdout)["gitVersion"]
        args.unserved = ()
        if not serves_mutating_policies(kubectl):
            args.unserved = NEED_MUTATING_POLICY
            left_out = [setup for setup in args.setups if setup in NEED_MUTATING_POLICY]
            args.setups = [setup for setup in args.setups if setup not in NEED_MUTATING_POLICY]
            print(f"Kubernetes {release} serves no MutatingAdmissionPolicy v1: left out "
                  f"{', '.join(left_out) or 'nothing'}", file=sys.stderr)  # fmt: skip
        files = CertificateFiles(folder / "certs")
        port = free_port()
        registered = clusterip_guard(
            cluster.kubeconfig, "bootstrap", "--name", "bench",
            "--url", f"https://127.0.0.1:{port}", "--cert-dir", str(files.folder),
            "--ip", "127.0.0.1",
        )  # fmt: skip
        if registered.returncode != 0:
            raise RuntimeError(f"bootstrap: {registered.stderr}")
        # Both run in sessions of their own: whatever fails below, they are stopped.
        with contextlib.ExitStack() as servers:
            webhook = WebhookProcess(files, port=port).start()
            servers.callback(webhook.stop)
            assert webhook.process is not None
            # setup -> the process that answers its reviews, for its CPU time per call
            answering = dict.fromkeys(("enforce", "mutate", "audit"), webhook.process.pid)
            for setup, (answer, entry) in FLOORS.items():
                if setup in args.setups:
                    floor = Floor(files, "uvloop", answer)
                    servers.callback(floor.stop)
                    register_floor(kubectl, floor.url + "/", answer, entry)
                    answering[setup] = floor.process.pid
            for setup, (label, _) in SETUPS.items():
                kubectl("create", "namespace", namespace_of(setup))
                if label:
                    kubectl("label", "namespace", namespace_of(setup), label)
            wait_until_policies_act(kubectl, measured(args.setups, args.unserved))
            load = wait_for_quiet(args.quiet_wait)
            runs = measure(client, kubectl, args, answering)
    report = {"kubernetes": release, "load_at_start": load, "rounds": args.rounds,
              "requests": args.requests, "runs": runs}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(table(runs))
    print(
        f"\n(Kubernetes {release}; 1-minute load when measuring began: {load:.2f}; "
        f"raw runs in {args.out})"
    )
    return 0


WEBHOOK_SECONDS = "apiserver_admission_webhook_admission_duration_seconds"
# The API server's own time in each admission policy's CEL, labelled by policy and binding.
POLICY_SECONDS = (
    "apiserver_validating_admission_policy_check_duration_seconds",
    "apiserver_mutating_admission_policy_check_duration_seconds",
)


def webhook_seconds(kubectl: Kubectl) -> tuple[float, float]:
    """The API server's own account of its webhook calls so far: (seconds, calls), summed
    over every webhook, from its /metrics."""
    seconds = calls = 0.0
    for line in kubectl("get", "--raw", "/metrics").stdout.splitlines():
        if line.startswith(WEBHOOK_SECONDS + "_sum{"):
            seconds += float(line.rsplit(" ", 1)[1])
        elif line.startswith(WEBHOOK_SECONDS + "_count{"):
            calls += float(line.rsplit(" ", 1)[1])
    return seconds, calls


def policy_seconds(kubectl: Kubectl) -> dict[str, float]:
    """Seconds the API server has spent in each admission policy so far, from its /metrics:
    {policy: seconds}, summed over its bindings and outcomes."""
    seconds: dict[str, float] = {}
    for line in kubectl("get", "--raw", "/metrics").stdout.splitlines():
        name, _, rest = line.partition("{")
        if name.removesuffix("_sum") in POLICY_SECONDS and name.endswith("_sum"):
            policy = rest.split('policy="', 1)[1].split('"', 1)[0]
            seconds[policy] = seconds.get(policy, 0.0) + float(line.rsplit(" ", 1)[1])
    return seconds


def measured(setups: list[str], unserved: tuple[str, ...] = ()) -> list[str]:
    """The setups named, with no policy and each one's in-process counterpart (unless the
    release cannot run it: `unserved`), in SETUPS' order."""
    chosen = {"no policy", *setups}
    chosen |= {twin for setup in setups if (twin := SETUPS[setup][1]) and twin not in unserved}
    return [setup for setup in SETUPS if setup in chosen]


def measure(
    client: Client, kubectl: Kubectl, args: argparse.Namespace, answering: dict[str, int]
) -> list[dict[str, Any]]:
    """Every run; `answering`: setup -> the pid of the webhook process that answers it."""
    runs: list[dict[str, Any]] = []
    blocks = [(op, kind, c) for op in ("create", "update") for kind in SERVICES
              for c in args.concurrency if kind in args.objects]  # fmt: skip
    blocks += [("create", kind, c) for kind in PODS for c in args.concurrency
               if kind in args.objects]  # fmt: skip
    names = measured(args.setups, args.unserved)
    progress = Progress(args.rounds * len(blocks) * len(names))
    for round_ in range(args.rounds):
        for op, kind, concurrency in blocks:
            shift = round_ % len(names)
            for setup in names[shift:] + names[:shift]:
                namespace = namespace_of(setup)
                common = ["-namespace", namespace, "-c", str(concurrency)]
                prefix = "u" if op == "update" else f"c{round_}"
                if op == "update":  # worker w patches Service u-w, created as ClusterIP
                    client("-op", "prepare", "-prefix", prefix, *common)
                before, policies_before = webhook_seconds(kubectl), policy_seconds(kubectl)
                pid = answering.get(setup)
                cpu_before = cpu_seconds([pid]) if pid else 0.0
                what = (
                    ["-resource", "pods", "-hostport", str(PODS[kind])]
                    if kind in PODS
                    else ["-type", SERVICES[kind]]
                )
                result = client("-op", op, *what, "-prefix", prefix,
                                "-n", str(args.requests), *common)  # fmt: skip
                after, policies_after = webhook_seconds(kubectl), policy_seconds(kubectl)
                cpu = cpu_seconds([pid]) - cpu_before if pid else 0.0
                seconds, calls = after[0] - before[0], after[1] - before[1]
                # The API server's mean time per webhook call (warm-up included), and the CPU
                # the answering process spent per call (its own clock, housekeeping included).
                result["webhook_ms"] = seconds / calls * 1000 if calls else 0.0
                result["webhook_cpu_us"] = cpu / calls * 1e6 if calls else 0.0
                # Its time in each admission policy's CEL per request of the run (warm-up
                # included): the in-process engines' own account of their cost.
                writes = args.requests + concurrency
                result["policy_ms"] = {
                    policy: (spent - policies_before.get(policy, 0.0)) / writes * 1000
                    for policy, spent in policies_after.items()
                    if spent > policies_before.get(policy, 0.0)
                }
                client("-op", "cleanup", *(["-resource", "pods"] if kind in PODS else []),
                       *common)  # fmt: skip
                runs.append({"setup": setup, "op": op, "service": kind,
                             "concurrency": concurrency, "round": round_, **result})  # fmt: skip
                progress.step(f"{setup}: {op} {kind}, concurrency {concurrency}")
    return runs


def summary(runs: list[dict[str, Any]]) -> dict[tuple[str, str, str, int], dict[str, float]]:
    cells: dict[tuple[str, str, str, int], list[dict[str, Any]]] = {}
    for run in runs:
        key = (run["setup"], run["op"], run["service"], run["concurrency"])
        cells.setdefault(key, []).append(run)
    return {
        key: {
            "p50": statistics.median(r["p50_ms"] for r in mine),
            "p95": statistics.median(r["p95_ms"] for r in mine),
            "p99": statistics.median(r["p99_ms"] for r in mine),
            "webhook": statistics.median(r.get("webhook_ms", 0.0) for r in mine),
            "webhook_cpu": statistics.median(r.get("webhook_cpu_us", 0.0) for r in mine),
            "policies": statistics.median(sum(r.get("policy_ms", {}).values()) for r in mine),
            "rate": statistics.median(r["per_second"] for r in mine),
            "p50_low": min(r["p50_ms"] for r in mine),
            "p50_high": max(r["p50_ms"] for r in mine),
            "rate_low": min(r["per_second"] for r in mine),
            "rate_high": max(r["per_second"] for r in mine),
        }
        for key, mine in cells.items()
    }


def table(runs: list[dict[str, Any]]) -> str:
    cells = summary(runs)
    statuses: dict[tuple[str, str, str, int], set[str]] = {}
    for run in runs:
        key = (run["setup"], run["op"], run["service"], run["concurrency"])
        statuses.setdefault(key, set()).update(run["statuses"])
    lines = [
        "| op | object | conc. | setup | p50 ms (spread) | p95 | p99 | per s (spread) "
        "| p50 / no policy | p50 / in-process | per s / in-process | webhook call ms "
        "| its CPU per call us | policy CEL ms | HTTP |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for (setup, op, kind, c), cell in sorted(
        cells.items(),
        key=lambda item: (item[0][1], item[0][2], item[0][3], list(SETUPS).index(item[0][0])),
    ):
        none = cells[("no policy", op, kind, c)]
        counterpart = SETUPS[setup][1]
        twin = cells.get((counterpart, op, kind, c)) if counterpart else None
        to_twin = f"{cell['p50'] / twin['p50']:.2f}" if twin else "-"
        rate_to_twin = f"{cell['rate'] / twin['rate']:.2f}" if twin else "-"
        lines.append(
            f"| {op} | {kind} | {c} | {setup} | {cell['p50']:.2f} ({cell['p50_low']:.2f}-"
            f"{cell['p50_high']:.2f}) | {cell['p95']:.2f} | {cell['p99']:.2f} "
            f"| {cell['rate']:,.0f} ({cell['rate_low']:,.0f}-{cell['rate_high']:,.0f}) "
            f"| {cell['p50'] / none['p50']:.2f} "
            f"| {to_twin} | {rate_to_twin} "
            f"| {cell['webhook']:.2f} | {cell['webhook_cpu']:.0f} | {cell['policies']:.3f} "
            f"| {','.join(sorted(statuses[(setup, op, kind, c)]))} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
