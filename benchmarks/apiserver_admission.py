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
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path[:0] = [str(ROOT / "hack"), str(ROOT / "hack" / "controlplane")]

from benchmarks.progress import Progress, wait_for_quiet  # noqa: E402
from benchmarks.review_throughput import Floor, build, cpu_seconds, rss_mib  # noqa: E402
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


def namespace_of(setup: str, prefix: str = "bench-") -> str:
    return prefix + setup.lower().replace(" ", "-")


class Client:
    """The load client (benchmarks/apiload) against one API server, as its admin; and that API
    server's /metrics, read directly (a kubectl process per read would cost more than a run's
    own requests at concurrency 1)."""

    def __init__(self, binary: Path, url: str, ca_file: Path, pki: Path) -> None:
        self.url = url
        self.base = [str(binary), "-server", url, "-ca", str(ca_file),
                     "-cert", str(pki / "admin.crt"), "-key", str(pki / "admin.key")]  # fmt: skip
        self.context = ssl.create_default_context(cafile=str(ca_file))
        self.context.load_cert_chain(pki / "admin.crt", pki / "admin.key")

    @classmethod
    def of(cls, binary: Path, cluster: ControlPlane) -> Client:
        return cls(binary, cluster.url, cluster.ca_file, cluster.workdir / "pki")

    def __call__(self, *args: str) -> dict[str, Any]:
        run = subprocess.run([*self.base, *args], capture_output=True, text=True, check=False)
        if run.returncode != 0:
            raise RuntimeError(f"apiload {' '.join(args)}: {run.stderr}")
        return json.loads(run.stdout) if run.stdout.strip() else {}

    def metrics(self) -> str:
        with urllib.request.urlopen(self.url + "/metrics", context=self.context, timeout=30) as r:
            text: str = r.read().decode()
            return text


@dataclass
class Watched:
    """The processes that answer one setup's webhook calls (one per replica), their plain-HTTP
    metrics ports (for the connections their limits cut) and the port they serve reviews on
    (for the connections open to it)."""

    pids: list[int]
    metrics_urls: list[str] = field(default_factory=list)
    port: int = 0


# /proc/net/tcp states of a connection its process still holds: established, and closed by
# the peer but not yet by the process (CLOSE_WAIT). Once the process closes it, what is left
# (FIN_WAIT, LAST_ACK, TIME_WAIT) is the kernel's, and the caps no longer count it.
HELD = {"01", "08"}


def open_connections(pid: int, port: int, proc: Path = Path("/proc")) -> int:
    """Connections open on local `port` in the network namespace of process `pid` (a Pod's
    own, or the host's): what the server's connection caps count."""
    count = 0
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in (proc / str(pid) / "net" / table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] in HELD:
                    count += 1
    return count


def resident(pid: int) -> float:
    """Its RSS in MiB; 0 once it is gone (a replica restarted mid-run)."""
    try:
        return rss_mib(pid)
    except OSError:
        return 0.0


def network_of(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return str(pid)


class RunSampler(threading.Thread):
    """While a run lasts: the highest RSS of the watched processes together and of any one,
    and the most connections open to one replica's review port."""

    def __init__(
        self, pids: list[int], interval: float = 0.1, port: int = 0,
        rss_of: Callable[[int], float] = resident,
    ) -> None:  # fmt: skip
        super().__init__(daemon=True)
        self.pids, self.interval, self.port, self.rss_of = pids, interval, port, rss_of
        self.peak_total = self.peak_one = 0.0
        self.peak_connections = 0
        # one process per replica's network namespace (a Pod's processes share one)
        self.replicas = list({network_of(pid): pid for pid in pids}.values()) if port else []
        self.stopped = threading.Event()

    def sample(self) -> None:
        each = [self.rss_of(pid) for pid in self.pids]
        self.peak_total = max(self.peak_total, sum(each))
        self.peak_one = max(self.peak_one, *each, 0.0)
        for pid in self.replicas:
            self.peak_connections = max(self.peak_connections, open_connections(pid, self.port))

    def run(self) -> None:
        while not self.stopped.is_set():
            self.sample()
            self.stopped.wait(self.interval)

    def stop(self) -> None:
        self.stopped.set()
        self.join()
        self.sample()


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
            yield folder, cluster, kubectl, Client.of(client_binary, cluster)


def wait_until_policies_act(kubectl: Kubectl, setups: list[str], prefix: str = "bench-") -> None:
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
            probe = kubectl("-n", namespace_of(setup, prefix), "create", "--dry-run=server", "-o",
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
        with loopback_webhook(folder, cluster, kubectl, args) as watched:
            load = wait_for_quiet(args.quiet_wait)
            runs = measure(client, args, watched)
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


@contextlib.contextmanager
def loopback_webhook(
    folder: Path,
    cluster: ControlPlane,
    kubectl: Kubectl,
    args: argparse.Namespace,
    serve_args: tuple[str, ...] = (),
) -> Iterator[dict[str, Watched]]:
    """`clusterip-guard serve` on loopback (one process, `serve_args` added), registered with
    `bootstrap --url`, the floors `args.setups` name, one labelled namespace per setup, all in
    effect: setup -> the processes that answer its webhook calls. Stopped on the way out."""
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
        webhook = WebhookProcess(files, port=port, extra_args=serve_args).start()
        servers.callback(webhook.stop)
        assert webhook.process is not None
        ours = Watched(
            [webhook.process.pid], [f"http://127.0.0.1:{webhook.metrics_port}/metrics"], port
        )
        # setup -> the process that answers its reviews, for its CPU time and memory
        watched = dict.fromkeys(("enforce", "mutate", "audit"), ours)
        for setup, (answer, entry) in FLOORS.items():
            if setup in args.setups:
                floor = Floor(files, "uvloop", answer)
                servers.callback(floor.stop)
                register_floor(kubectl, floor.url + "/", answer, entry)
                watched[setup] = Watched([floor.process.pid])
        for setup, (label, _) in SETUPS.items():
            kubectl("create", "namespace", namespace_of(setup))
            if label:
                kubectl("label", "namespace", namespace_of(setup), label)
        wait_until_policies_act(kubectl, measured(args.setups, args.unserved))
        yield watched


WEBHOOK_SECONDS = "apiserver_admission_webhook_admission_duration_seconds"
# The API server's own time in each admission policy's CEL, labelled by policy and binding.
POLICY_SECONDS = (
    "apiserver_validating_admission_policy_check_duration_seconds",
    "apiserver_mutating_admission_policy_check_duration_seconds",
)
# Webhook calls that failed (refused, reset, timed out, unreadable answer): those of a
# failurePolicy Fail entry are rejections with these error types; those of an Ignore entry
# (audit) fail open, allowed without an answer, and show only in the second counter.
WEBHOOK_REJECTIONS = "apiserver_admission_webhook_rejection_count"
FAILED_CALL_TYPES = ('error_type="calling_webhook_error"', 'error_type="apiserver_internal_error"')
WEBHOOK_FAIL_OPEN = "apiserver_admission_webhook_fail_open_count"
# What the webhook's own limits cut (server/accepting.py and server/protocol.py).
REFUSED = "clusterip_guard_refused_connections_total"


def samples(text: str, name: str) -> Iterator[tuple[str, float]]:
    """(labels, value) of each sample of the metric `name` in a Prometheus text page."""
    for line in text.splitlines():
        metric, _, rest = line.partition("{")
        if metric == name and "}" in rest:
            labels, _, value = rest.rpartition("}")
            yield labels, float(value)
        elif line.startswith(name + " "):
            yield "", float(line.rsplit(" ", 1)[1])


def webhook_seconds(text: str) -> tuple[float, float]:
    """The API server's own account of its webhook calls so far: (seconds, calls), summed
    over every webhook, from its /metrics."""
    seconds = sum(value for _, value in samples(text, WEBHOOK_SECONDS + "_sum"))
    calls = sum(value for _, value in samples(text, WEBHOOK_SECONDS + "_count"))
    return seconds, calls


def policy_seconds(text: str) -> dict[str, float]:
    """Seconds the API server has spent in each admission policy so far, from its /metrics:
    {policy: seconds}, summed over its bindings and outcomes."""
    seconds: dict[str, float] = {}
    for name in POLICY_SECONDS:
        for labels, value in samples(text, name + "_sum"):
            policy = labels.split('policy="', 1)[1].split('"', 1)[0]
            seconds[policy] = seconds.get(policy, 0.0) + value
    return seconds


def failed_calls(text: str) -> float:
    """Webhook calls that got no answer so far (any webhook), from the API server's /metrics."""
    rejected = sum(
        value
        for labels, value in samples(text, WEBHOOK_REJECTIONS)
        if any(kind in labels for kind in FAILED_CALL_TYPES)
    )
    return rejected + sum(value for _, value in samples(text, WEBHOOK_FAIL_OPEN))


def refused(urls: list[str]) -> dict[str, float]:
    """What the webhook processes' limits have cut so far on their webhook port, by reason."""
    cut: dict[str, float] = {}
    for url in urls:
        with urllib.request.urlopen(url, timeout=10) as reply:
            for labels, value in samples(reply.read().decode(), REFUSED):
                if 'port="webhook"' in labels:
                    reason = labels.split('reason="', 1)[1].split('"', 1)[0]
                    cut[reason] = cut.get(reason, 0.0) + value
    return cut


def failures(statuses: dict[str, int]) -> int:
    """Writes that got neither an answer of the API server's nor a policy's: anything but a
    2xx or a denial (403), a client error (`error`) included."""
    return sum(
        n for status, n in statuses.items() if not (status.startswith("2") or status == "403")
    )


def measured(setups: list[str], unserved: tuple[str, ...] = ()) -> list[str]:
    """The setups named, with no policy and each one's in-process counterpart (unless the
    release cannot run it: `unserved`), in SETUPS' order."""
    chosen = {"no policy", *setups}
    chosen |= {twin for setup in setups if (twin := SETUPS[setup][1]) and twin not in unserved}
    return [setup for setup in SETUPS if setup in chosen]


def blocks_of(args: argparse.Namespace) -> list[tuple[str, str, int]]:
    """(op, object, concurrency) of each run a round holds, for every setup."""
    blocks = [(op, kind, c) for op in ("create", "update") for kind in SERVICES
              for c in args.concurrency if kind in args.objects]  # fmt: skip
    blocks += [("create", kind, c) for kind in PODS for c in args.concurrency
               if kind in args.objects]  # fmt: skip
    return blocks


def measure(
    client: Client, args: argparse.Namespace, watched: dict[str, Watched]
) -> list[dict[str, Any]]:
    """Every run; `watched`: setup -> the webhook processes that answer it."""
    runs: list[dict[str, Any]] = []
    blocks = blocks_of(args)
    names = measured(args.setups, args.unserved)
    prefix_of = getattr(args, "namespace_prefix", "bench-")
    progress = Progress(args.rounds * len(blocks) * len(names))
    for round_ in range(args.rounds):
        for op, kind, concurrency in blocks:
            shift = round_ % len(names)
            for setup in names[shift:] + names[:shift]:
                namespace = namespace_of(setup, prefix_of)
                common = ["-namespace", namespace, "-c", str(concurrency)]
                prefix = "u" if op == "update" else f"c{round_}"
                if op == "update":  # worker w patches Service u-w, created as ClusterIP
                    client("-op", "prepare", "-prefix", prefix, *common)
                what = (
                    ["-resource", "pods", "-hostport", str(PODS[kind])]
                    if kind in PODS
                    else ["-type", SERVICES[kind]]
                )
                mine = watched.get(setup, Watched([]))
                result = one_run(
                    client, mine,
                    ["-op", op, *what, "-prefix", prefix, "-n", str(args.requests), *common],
                    writes=args.requests + concurrency,
                )  # fmt: skip
                client("-op", "cleanup", *(["-resource", "pods"] if kind in PODS else []),
                       *common)  # fmt: skip
                runs.append({"setup": setup, "op": op, "service": kind,
                             "concurrency": concurrency, "round": round_, **result})  # fmt: skip
                progress.step(f"{setup}: {op} {kind}, concurrency {concurrency}")
    return runs


def one_run(client: Client, watched: Watched, load: list[str], writes: int) -> dict[str, Any]:
    """One run of the load client (`load`: its arguments), with what the API server and the
    watched webhook processes spent on it; `writes`: the requests it sends, warm-up included."""
    before = client.metrics()
    cut_before = refused(watched.metrics_urls)
    cpu_before = cpu_seconds(watched.pids)
    sampler = RunSampler(watched.pids, port=watched.port)
    sampler.start()
    started = time.monotonic()
    try:
        result = client(*load)
    finally:
        wall = time.monotonic() - started
        sampler.stop()
    cpu = cpu_seconds(watched.pids) - cpu_before
    after = client.metrics()
    cut_after = refused(watched.metrics_urls)
    (seconds, calls), (seconds_before, calls_before) = (
        webhook_seconds(after),
        webhook_seconds(before),
    )
    seconds, calls = seconds - seconds_before, calls - calls_before
    # The API server's mean time per webhook call (warm-up included), and the CPU the watched
    # processes spent per call (their own clock, housekeeping included).
    result["webhook_ms"] = seconds / calls * 1000 if calls else 0.0
    result["webhook_cpu_us"] = cpu / calls * 1e6 if calls else 0.0
    # At that rate: the cores they used (CPU seconds per second of the run, the load client's
    # start and warm-up included: both clocks cover the same span) and their memory.
    result["webhook_cores"] = cpu / wall if wall > 0 else 0.0
    result["webhook_rss_mib"] = sampler.peak_total
    result["webhook_rss_one_mib"] = sampler.peak_one
    result["webhook_connections"] = sampler.peak_connections
    result["webhook_calls"] = calls
    result["failed_calls"] = failed_calls(after) - failed_calls(before)
    result["refused"] = {
        reason: cut - cut_before.get(reason, 0.0)
        for reason, cut in cut_after.items()
        if cut > cut_before.get(reason, 0.0)
    }
    result["failures"] = failures(result.get("statuses", {}))
    # Its time in each admission policy's CEL per request of the run (warm-up included): the
    # in-process engines' own account of their cost.
    policies_before = policy_seconds(before)
    result["policy_ms"] = {
        policy: (spent - policies_before.get(policy, 0.0)) / writes * 1000
        for policy, spent in policy_seconds(after).items()
        if spent > policies_before.get(policy, 0.0)
    }
    return result


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
