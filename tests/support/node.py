"""A real node for tests (`hack/cluster/cluster.py`): start one in a folder of the test's own,
drive it with the pinned kubectl, and know when this machine cannot run one.

Only one node runs on a machine at a time (its ports are fixed): node tests run one module
after another, each with its own node, and `down` undoes everything `up` did. The cluster
`make demo` (or `make cluster`) leaves running in this checkout's `.dev/cluster` is stopped
first, saying so in one line (`make demo` starts it again); a cluster of any other folder is
not ours to stop: `up` refuses it, naming its folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from localnode.base import Layout, State
from localnode.host import bridge_owner
from tests.support.kubectl import Kubectl
from tests.support.paths import ROOT
from tests.support.prerequisites import skip_or_fail

CLUSTER = ROOT / "hack" / "cluster" / "cluster.py"
CHECKOUT_DEV = ROOT / ".dev"  # where `make demo` and `make cluster` keep this checkout's node
NODE_IP = "10.244.0.1"
BRIDGE = "cipg0"
SYSCTLS = (
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.route_localnet",
    "net.bridge.bridge-nf-call-iptables",
)
UP_TIMEOUT = 1800  # a first run builds five binaries and helm: about ten minutes on 2 cores


def cluster(dev: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CLUSTER), "--dir", str(dev), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def missing_prerequisites() -> list[str]:
    if sys.platform != "linux":
        return [f"not Linux ({sys.platform})"]
    problems = []
    try:
        check = cluster(Path("/nonexistent"), "check", timeout=30)
    except OSError as error:
        return [f"cannot run {CLUSTER.name}: {error}"]
    if check.returncode != 0:
        problems.append(check.stdout.strip() or check.stderr.strip())
    for tool in ("go", "apt-get"):  # the rest is installed by `up` (hack/cluster/install-deps.sh)
        if shutil.which(tool) is None:
            problems.append(f"no {tool} on PATH")
    return problems


@dataclass(frozen=True)
class HostSnapshot:
    """What of the host the cluster may touch: compared before `up` and after `down`."""

    links: frozenset[str]
    chains: frozenset[str]
    mounts: frozenset[str]
    sysctls: dict[str, str]

    @classmethod
    def take(cls) -> HostSnapshot:
        chains = set()
        for save in ("iptables-nft-save", "iptables-legacy-save", "ip6tables-nft-save"):
            if shutil.which(save):
                dump = subprocess.run([save], capture_output=True, text=True, check=False).stdout
                chains |= {f"{save} {c}" for c in re.findall(r"\b(?:KUBE|CNI)-[\w-]+", dump)}
        return cls(
            links=frozenset(os.listdir("/sys/class/net")),
            chains=frozenset(chains),
            mounts=frozenset(
                line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
            ),
            sysctls={
                name: Path("/proc/sys", name.replace(".", "/")).read_text().strip()
                for name in SYSCTLS
                if Path("/proc/sys", name.replace(".", "/")).exists()
            },
        )


@dataclass(frozen=True)
class Node:
    dev: Path
    before: HostSnapshot

    @property
    def kubeconfig(self) -> Path:
        return self.dev / "cluster" / "kubeconfig"

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """The pinned kubectl `make cluster` leaves in DIR/bin."""
        pinned = Kubectl(self.kubeconfig, binary=str(self.dev / "bin" / "kubectl"), timeout=120)
        return pinned(*args, stdin=stdin, check=check)

    def apply(self, manifest: dict[str, object]) -> None:
        self.kubectl("apply", "-f", "-", stdin=json.dumps(manifest))


def require_a_machine_that_runs_a_node() -> None:
    """Skip, naming why, where no node can run; under CI=true that is a failure instead."""
    problems = missing_prerequisites()
    if problems:
        skip_or_fail("this machine cannot run a node: " + "; ".join(problems))


def checkout_cluster_in_the_way(
    owner: str | None, checkout_cluster_alive: bool, checkout_cluster: Path
) -> str | None:
    """The line to say before stopping this checkout's own cluster (`make demo`'s), when it
    holds the one node a machine can run: its processes run, or the bridge is its (the
    bridge's alias names the state folder of the cluster that made it). None otherwise: no
    cluster, or another folder's, which `up` refuses, naming it."""
    if not checkout_cluster_alive and (owner is None or Path(owner) != checkout_cluster):
        return None
    return (
        f"node tests: stopping this checkout's cluster in {checkout_cluster} (one node per "
        f"machine: the tests start their own); `make demo` starts it again"
    )


def to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


def on_the_terminal(config: pytest.Config) -> Callable[[str], None]:
    """A line on the terminal, past pytest's output capture."""

    def say(line: str) -> None:
        capture = config.pluginmanager.getplugin("capturemanager")
        reporter = config.pluginmanager.getplugin("terminalreporter")
        if capture is None or reporter is None:
            to_stderr(line)
            return
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)

    return say


def stop_the_checkout_cluster(say: Callable[[str], None] = to_stderr) -> None:
    """Stop the cluster `make demo` left in this checkout's `.dev`, saying so, if it runs."""
    layout = Layout(CHECKOUT_DEV.resolve())  # as cluster.py names it in the bridge's alias
    alive = any(process.alive() for process in State(layout.work).processes)
    notice = checkout_cluster_in_the_way(bridge_owner(), alive, layout.work)
    if notice is None:
        return
    say(notice)
    stopped = cluster(CHECKOUT_DEV, "down")
    assert stopped.returncode == 0, f"stopping {layout.work} failed:\n{stopped.stderr[-4000:]}"


@contextmanager
def running_node(dev: Path, say: Callable[[str], None] = to_stderr) -> Iterator[Node]:
    """A node for a test module, or a skip naming why this machine cannot run one (a failure
    under CI=true, where a missing prerequisite is the project's fault). `say` tells the
    user that this checkout's own cluster was stopped to make room, when it was."""
    require_a_machine_that_runs_a_node()
    stop_the_checkout_cluster(say)
    before = HostSnapshot.take()  # after: the checkout's cluster is not ours to compare
    up = cluster(dev, "up", timeout=UP_TIMEOUT)
    try:
        assert up.returncode == 0, f"cluster up failed:\n{up.stderr[-4000:]}"
        yield Node(dev, before)
    finally:
        cluster(dev, "down")  # idempotent: a test may have stopped it already


def pod_template(name: str, image: str, command: list[str] | None = None) -> dict[str, object]:
    container: dict[str, object] = {
        "name": name,
        "image": image,
        "imagePullPolicy": "Never",  # no registry: the images were imported into containerd
    }
    if command:
        container["command"] = command
    return {
        "metadata": {"labels": {"app": name}},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [container]},
    }


def http_get(host: str, port: int) -> str:
    with socket.create_connection((host, port), timeout=5) as connection:
        connection.sendall(b"GET / HTTP/1.0\r\nHost: node\r\n\r\n")
        chunks = []
        while chunk := connection.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")
