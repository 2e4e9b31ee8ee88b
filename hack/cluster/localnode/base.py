"""The node's names, fixed ports, kernel settings and host paths; where its files live
(`Layout`); what `up` recorded (`State`); and the small helpers every part uses."""

from __future__ import annotations

import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from hostkit.errors import HostError
from hostkit.processes import Recorded
from hostkit.processes import tail as log_tail
from hostkit.state import read_state, write_state

HERE = Path(__file__).resolve().parent.parent  # hack/cluster
ROOT = HERE.parent.parent
BUILD_SH = ROOT / "hack" / "controlplane" / "build.sh"
INSTALL_DEPS = HERE / "install-deps.sh"

NODE_NAME = "clusterip-guard-node"
BRIDGE = "cipg0"
POD_CIDR = "10.244.0.0/24"
NODE_IP = "10.244.0.1"  # the bridge's address: the pods' gateway and the node's InternalIP
SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"  # the `kubernetes` Service
LOOPBACK = "127.0.0.1"
PAUSE_IMAGE = "localhost/clusterip-guard/pause:1"

# Fixed ports, all below the ephemeral range (32768-60999), so nothing can take them first.
ETCD_PORT = 12379
ETCD_PEER_PORT = 12380
APISERVER_PORT = 16443
UNIX_SOCKET_PATH_MAX = 104
KUBELET_PORT = 10250
KUBELET_HEALTHZ_PORT = 10248
PROXY_METRICS_PORT = 10249
PROXY_HEALTHZ_PORT = 10256
CONTAINERD_STREAM_PORT = 10010
PORTS = {
    "etcd": (LOOPBACK, ETCD_PORT),
    "etcd peer": (LOOPBACK, ETCD_PEER_PORT),
    "kube-apiserver": (NODE_IP, APISERVER_PORT),
    "kubelet": (NODE_IP, KUBELET_PORT),
    "kubelet healthz": (LOOPBACK, KUBELET_HEALTHZ_PORT),
    "kube-proxy metrics": (LOOPBACK, PROXY_METRICS_PORT),
    "kube-proxy healthz": (LOOPBACK, PROXY_HEALTHZ_PORT),
    "containerd streaming": (LOOPBACK, CONTAINERD_STREAM_PORT),
}

# Kernel settings the kubelet, kube-proxy, the bridge plugin or we may change: recorded before
# anything starts, restored by `down`. The forwarding switches come after ip_forward, which
# resets them when written.
SYSCTLS = (
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.forwarding",
    "net.ipv4.conf.default.forwarding",
    "net.ipv4.conf.all.route_localnet",
    "net.ipv6.conf.all.forwarding",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
    "net.netfilter.nf_conntrack_max",
    "net.netfilter.nf_conntrack_tcp_timeout_established",
    "net.netfilter.nf_conntrack_tcp_timeout_close_wait",
    "net.netfilter.nf_conntrack_tcp_be_liberal",
)
SET_SYSCTLS = {"net.ipv4.ip_forward": "1", "net.bridge.bridge-nf-call-iptables": "1"}

# Host folders the kubelet (device-plugins socket, container log links), libcni (its result
# cache) and kubectl (discovery cache) write to whatever we configure: those that did not
# exist before `up` are removed by `down`; in the others only our entries are.
HOST_PATHS = (
    "/var/lib/kubelet",
    "/var/lib/cni",
    "/var/log/containers",
    "/var/log/pods",
    "/usr/libexec/kubernetes",
    "/run/netns",
    str(Path.home() / ".kube" / "cache" / "discovery" / f"{NODE_IP}_{APISERVER_PORT}"),
)
CNI_RESULTS = Path("/var/lib/cni/results")
SHIM_SOCKETS = Path("/run/containerd/s")  # fixed in containerd 1.6, whatever its state dir
CHAIN_PREFIXES = ("KUBE-", "CNI-")
IPTABLES_TABLES = ("filter", "nat", "mangle", "raw")
NODE_READY_TIMEOUT = 120.0
START_TIMEOUT = 90.0
STOP_GRACE = 10.0
LOG_TAIL_LINES = 20
# containerd finds its shim and runc, the kubelet and kube-proxy find iptables, on this PATH.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ClusterError(HostError):
    """The cluster could not be started or stopped; the message says why."""


# --- small helpers ------------------------------------------------------------------------


def log(message: str) -> None:
    print(f">> {message}", file=sys.stderr, flush=True)


def run(
    command: list[str], *, check: bool = True, quiet: bool = False, input_text: str | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, check=False, input=input_text)
    if check and result.returncode != 0:
        raise ClusterError(
            f"{shlex.join(command)} failed ({result.returncode}): {result.stderr.strip()}"
        )
    if not quiet and result.returncode != 0:
        log(f"{shlex.join(command)}: {result.stderr.strip()}")
    return result


def sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def read_sysctl(name: str) -> str | None:
    try:
        return sysctl_path(name).read_text().strip()
    except OSError:
        return None


def write_sysctl(name: str, value: str) -> None:
    sysctl_path(name).write_text(value + "\n")


def tail(path: Path) -> str:
    return log_tail(path, LOG_TAIL_LINES)


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


# --- state, recorded as it changes ------------------------------------------------------------


class State:
    """DIR/cluster/state.json: what `up` did, written after each step (hostkit.state), so that
    `down` (also run when `up` fails) can undo it."""

    def __init__(self, workdir: Path) -> None:
        self.path = workdir / "state.json"
        self.data: dict[str, object] = read_state(self.path) or {}

    def save(self) -> None:
        write_state(self.path, self.data)

    @property
    def processes(self) -> list[Recorded]:
        recorded = self.data.get("processes")
        found = (
            [Recorded.from_json(item) for item in recorded] if isinstance(recorded, list) else []
        )
        return [process for process in found if process is not None]

    def add_process(self, process: Recorded) -> None:
        self.data["processes"] = [*(p.as_json() for p in self.processes), process.as_json()]
        self.save()

    @property
    def new_paths(self) -> list[Path]:
        recorded = self.data.get("new_paths")
        return [Path(str(p)) for p in recorded] if isinstance(recorded, list) else []

    @property
    def sysctls(self) -> dict[str, str]:
        recorded = self.data.get("sysctls")
        if not isinstance(recorded, dict):
            return {}
        return {str(k): str(v) for k, v in recorded.items()}

    def exists(self) -> bool:
        return self.path.exists()

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


# --- layout -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    dev: Path

    @property
    def work(self) -> Path:
        return self.dev / "cluster"

    @property
    def bin(self) -> Path:
        return self.dev / "bin"

    @property
    def logs(self) -> Path:
        return self.work / "logs"

    @property
    def pki(self) -> Path:
        return self.work / "pki"

    @property
    def kubeconfig(self) -> Path:
        return self.work / "kubeconfig"

    @property
    def containerd(self) -> Path:
        return self.work / "containerd"

    @property
    def socket(self) -> Path:
        return self.containerd / "containerd.sock"

    @property
    def cni(self) -> Path:
        return self.work / "cni"

    @property
    def kubelet(self) -> Path:
        return self.work / "kubelet"

    @property
    def buildah(self) -> Path:
        return self.work / "buildah"

    @property
    def assets_file(self) -> Path:
        return self.work / "assets"

    def assets(self) -> Path:
        return Path(self.assets_file.read_text().strip())
