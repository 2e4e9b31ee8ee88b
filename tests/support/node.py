"""A real node for tests (`hack/cluster/cluster.py`): start one in a folder of the test's own,
drive it with the pinned kubectl, and know when this machine cannot run one.

Only one node runs on a machine at a time (its ports are fixed): node tests run one module
after another, each with its own node, and `down` undoes everything `up` did.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.kubectl import Kubectl
from tests.support.paths import ROOT
from tests.support.prerequisites import skip_or_fail

CLUSTER = ROOT / "hack" / "cluster" / "cluster.py"
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


@contextmanager
def running_node(dev: Path) -> Iterator[Node]:
    """A node for a test module, or a skip naming why this machine cannot run one (a failure
    under CI=true, where a missing prerequisite is the project's fault)."""
    require_a_machine_that_runs_a_node()
    before = HostSnapshot.take()
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
