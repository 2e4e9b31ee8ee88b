"""A real single-node Kubernetes cluster on this machine: the chart, the demo and in-cluster tests.

    python3 hack/cluster/cluster.py up    [--dir .dev]   # returns when the node is Ready
    python3 hack/cluster/cluster.py down  [--dir .dev]   # stops and undoes all that `up` did
    python3 hack/cluster/cluster.py import ARCHIVE           # an image archive (`make image`)
    python3 hack/cluster/cluster.py image REF FOLDER [--busybox] -- ENTRYPOINT [ARG ...]
                                          # an image of FOLDER (plus Debian's static busybox and
                                          # its applets in /bin with --busybox), built with
                                          # buildah from scratch and imported into the node

`up` starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd (its own
config, root, state and socket under DIR/cluster), the kubelet and kube-proxy (iptables mode),
with a bridge CNI on POD_CIDR whose gateway is the node IP. Binaries come from
`hack/controlplane/build.sh node`. The admin kubeconfig is DIR/cluster/kubeconfig; kubectl and
helm are copied to DIR/bin. Everything `up` changes on the host is recorded in
DIR/cluster/state.json as it goes, so `down` (also run when `up` fails) can undo it.

Python 3.11 standard library only; certificates come from the openssl command line.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
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


class ClusterError(RuntimeError):
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
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:])


def port_busy(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


# --- processes: recorded by pid and start time, so a reused pid is never signalled -----------


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (clock ticks after boot), or None if there is no such pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


@dataclass(frozen=True)
class Recorded:
    name: str
    pid: int
    start_time: int

    def alive(self) -> bool:
        """The same process (pid and start time) still exists and is not a zombie."""
        if start_time(self.pid) != self.start_time:
            return False
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return False
        return "\nState:\tZ" not in status

    def stop(self, grace: float = STOP_GRACE) -> None:
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        if not self._wait(grace):
            log(f"{self.name} (pid {self.pid}) ignored SIGTERM for {grace:.0f}s: SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            if not self._wait(grace):
                raise ClusterError(f"{self.name} (pid {self.pid}) survived SIGKILL")

    def _wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, os.WNOHANG)  # reaps it when `up` itself is stopping it
            if not self.alive():
                return True
            time.sleep(0.05)
        return False


def processes_under(predicate: Callable[[int], bool]) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if predicate(int(entry.name)):
                    pids.append(int(entry.name))
    return pids


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


# --- state, recorded as it changes ------------------------------------------------------------


class State:
    """DIR/cluster/state.json: what `up` did, written after each step."""

    def __init__(self, workdir: Path) -> None:
        self.path = workdir / "state.json"
        self.data: dict[str, object] = {}
        if self.path.exists():
            with contextlib.suppress(ValueError):
                loaded = json.loads(self.path.read_text())
                if isinstance(loaded, dict):
                    self.data = loaded

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        partial.write_text(json.dumps(self.data, indent=2))
        partial.replace(self.path)

    @property
    def processes(self) -> list[Recorded]:
        recorded = self.data.get("processes")
        if not isinstance(recorded, list):
            return []
        return [
            Recorded(str(item["name"]), int(item["pid"]), int(item["start_time"]))
            for item in recorded
            if isinstance(item, dict)
        ]

    def add_process(self, process: Recorded) -> None:
        entries = [vars(p) for p in self.processes]
        self.data["processes"] = [*entries, vars(process)]
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


# --- certificates, with the openssl command line ----------------------------------------------


def _new_key_request(pki: Path, name: str, subject: str) -> None:
    run(
        [
            "openssl", "req", "-new", "-nodes", "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:P-256",
            "-keyout", str(pki / f"{name}.key"), "-out", str(pki / f"{name}.csr"),
            "-subj", subject,
        ]
    )  # fmt: skip


def _sign(pki: Path, name: str, usage: str, names: list[str]) -> None:
    extensions = [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        f"extendedKeyUsage={usage}",
    ]
    if names:
        extensions.append("subjectAltName=" + ",".join(names))
    ext = pki / f"{name}.ext"
    ext.write_text("\n".join(extensions) + "\n")
    run(
        [
            "openssl", "x509", "-req", "-in", str(pki / f"{name}.csr"),
            "-CA", str(pki / "ca.crt"), "-CAkey", str(pki / "ca.key"),
            "-set_serial", "0x" + secrets.token_hex(16), "-days", "7",
            "-extfile", str(ext), "-out", str(pki / f"{name}.crt"),
        ]
    )  # fmt: skip
    (pki / f"{name}.csr").unlink()
    ext.unlink()


def write_pki(pki: Path) -> None:
    """A throwaway CA, serving and client certificates for every component, an SA key pair."""
    pki.mkdir(parents=True, exist_ok=True)
    run(
        [
            "openssl", "req", "-x509", "-nodes", "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:P-256", "-days", "7",
            "-keyout", str(pki / "ca.key"), "-out", str(pki / "ca.crt"),
            "-subj", "/CN=clusterip-guard-node-ca",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        ]
    )  # fmt: skip
    servers = {
        "apiserver": (
            "/CN=kube-apiserver",
            [
                f"IP:{NODE_IP}",
                f"IP:{LOOPBACK}",
                f"IP:{SERVICE_IP}",
                "DNS:localhost",
                "DNS:kubernetes",
                "DNS:kubernetes.default",
                "DNS:kubernetes.default.svc",
                "DNS:kubernetes.default.svc.cluster.local",
            ],
        ),
        "kubelet-serving": (f"/CN={NODE_NAME}", [f"IP:{NODE_IP}", f"DNS:{NODE_NAME}"]),
    }
    clients = {
        "admin": "/O=system:masters/CN=admin",
        "apiserver-kubelet-client": "/O=system:masters/CN=kube-apiserver-kubelet-client",
        "kubelet": f"/O=system:nodes/CN=system:node:{NODE_NAME}",
        "controller-manager": "/CN=system:kube-controller-manager",
        "scheduler": "/CN=system:kube-scheduler",
        "kube-proxy": "/CN=system:kube-proxy",
    }
    for name, (subject, names) in servers.items():
        _new_key_request(pki, name, subject)
        _sign(pki, name, "serverAuth", names)
    for name, subject in clients.items():
        _new_key_request(pki, name, subject)
        _sign(pki, name, "clientAuth", [])
    run(
        [
            "openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", str(pki / "sa.key"),
        ]
    )  # fmt: skip
    run(["openssl", "pkey", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub")])


def write_kubeconfig(path: Path, pki: Path, user: str) -> None:
    def data(name: str) -> str:
        return base64.b64encode((pki / name).read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "clusterip-guard-node",
                "cluster": {
                    "server": f"https://{NODE_IP}:{APISERVER_PORT}",
                    "certificate-authority-data": data("ca.crt"),
                },
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": data(f"{user}.crt"),
                    "client-key-data": data(f"{user}.key"),
                },
            }
        ],
        "contexts": [
            {
                "name": "clusterip-guard-node",
                "context": {"cluster": "clusterip-guard-node", "user": user},
            }
        ],
        "current-context": "clusterip-guard-node",
    }
    path.write_text(json.dumps(config, indent=2) + "\n")
    path.chmod(0o600)


def admin_context(pki: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return context


def api_request(
    pki: Path, method: str, path: str, body: dict[str, object] | None = None
) -> dict[str, object]:
    request = urllib.request.Request(
        f"https://{NODE_IP}:{APISERVER_PORT}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    with urllib.request.urlopen(request, context=admin_context(pki), timeout=5) as reply:
        decoded = json.loads(reply.read())
    return decoded if isinstance(decoded, dict) else {}


def _ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, context=context, timeout=2) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


# --- configuration files ----------------------------------------------------------------------


def containerd_config(layout: Layout) -> str:
    c = layout.containerd
    return f"""\
# Written by hack/cluster/cluster.py: a containerd of our own, never the system's.
version = 2
root = "{c / "root"}"
state = "{c / "state"}"
disabled_plugins = [
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
]

[grpc]
  address = "{layout.socket}"

[ttrpc]
  address = "{c / "containerd.sock.ttrpc"}"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{c / "opt"}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  # No CAP_SYS_RESOURCE here: without this every sandbox fails ("can't get final child's PID").
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  stream_server_address = "{LOOPBACK}"
  stream_server_port = "{CONTAINERD_STREAM_PORT}"
  # Network namespaces under our state folder, not /run/netns.
  netns_mounts_under_state_dir = true

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{c / "runc"}"

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{layout.cni / "net.d"}"
    max_conf_num = 1
"""


def cni_config(layout: Layout) -> dict[str, object]:
    return {
        "cniVersion": "1.0.0",
        "name": "clusterip-guard",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "hairpinMode": True,
                "ipMasq": False,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR, "gateway": NODE_IP}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(layout.cni / "ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubelet_config(layout: Layout) -> dict[str, object]:
    pki = layout.pki
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_IP,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": LOOPBACK,
        "healthzPort": KUBELET_HEALTHZ_PORT,
        "tlsCertFile": str(pki / "kubelet-serving.crt"),
        "tlsPrivateKeyFile": str(pki / "kubelet-serving.key"),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(pki / "ca.crt")},
        },
        "authorization": {"mode": "AlwaysAllow"},
        "containerRuntimeEndpoint": f"unix://{layout.socket}",
        "cgroupDriver": "cgroupfs",  # runc's SystemdCgroup = false: no systemd here
        "failSwapOn": False,
        "failCgroupV1": False,  # cgroup v1 machine; support ends around 1.38 (README)
        "podCIDR": POD_CIDR,
        "resolvConf": "",  # no cluster DNS; pods get no resolv.conf from the host
        "podLogsDir": str(layout.work / "pod-logs"),
        "volumePluginDir": str(layout.kubelet / "volume-plugins"),
        "staticPodPath": "",
        "imageGCHighThresholdPercent": 100,  # images cannot be pulled back: never collect them
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
        },
        "maxPods": 60,
        "serializeImagePulls": False,
        # A changed ConfigMap reaches mounted volumes at the next pod sync: every 10 s instead
        # of the default minute, so a policy change shows within seconds in tests and demos.
        "syncFrequency": "10s",
    }


# --- host networking --------------------------------------------------------------------------


def create_bridge(owner: Path) -> None:
    """The bridge, its alias naming the state folder: the checkout whose cluster it is."""
    run(["ip", "link", "add", BRIDGE, "type", "bridge"])
    run(["ip", "link", "set", BRIDGE, "alias", str(owner)])
    run(["ip", "addr", "add", f"{NODE_IP}/24", "dev", BRIDGE])
    run(["ip", "link", "set", BRIDGE, "up"])


def bridge_owner() -> str | None:
    """The state folder of the cluster whose bridge exists, "" if unknown, None if none."""
    try:
        return Path("/sys/class/net", BRIDGE, "ifalias").read_text().strip()
    except OSError:
        return None


def delete_links() -> None:
    if not link_exists(BRIDGE):
        return
    ports = Path("/sys/class/net", BRIDGE, "brif")
    for veth in sorted(p.name for p in ports.iterdir()) if ports.exists() else []:
        run(["ip", "link", "del", veth], check=False)
    run(["ip", "link", "del", BRIDGE], check=False)


def iptables_commands() -> list[tuple[str, str]]:
    """(save, restore) pairs for each iptables backend and family in use on this machine.

    The legacy backend only where its tables already exist: merely listing them would
    instantiate them (the kernel creates x_tables tables on first use).
    """
    pairs = []
    for family, legacy_names in (
        ("iptables", "ip_tables_names"),
        ("ip6tables", "ip6_tables_names"),
    ):
        for backend in ("nft", "legacy"):
            if backend == "legacy" and not _legacy_tables(legacy_names):
                continue
            save, restore = f"{family}-{backend}-save", f"{family}-{backend}-restore"
            if shutil.which(save) and shutil.which(restore):
                pairs.append((save, restore))
    return pairs


def _legacy_tables(names_file: str) -> bool:
    try:
        return bool(Path("/proc/net", names_file).read_text().strip())
    except OSError:
        return False


def _ours(chain: str) -> bool:
    return chain.startswith(CHAIN_PREFIXES)


def iptables_leftovers() -> list[str]:
    """Chains and rules named KUBE-*/CNI-* in any table of any backend, as save lines."""
    found = []
    for save, _ in iptables_commands():
        dump = run([save], check=False, quiet=True).stdout
        found += [
            f"{save}: {line}"
            for line in dump.splitlines()
            if re.search(r"(^:|-[AjN] |--comment \S*)(KUBE-|CNI-)", line)
        ]
    return found


def remove_iptables() -> None:
    """Delete every rule that jumps to a KUBE-*/CNI-* chain, then flush and delete those chains."""
    for save, restore in iptables_commands():
        for table in IPTABLES_TABLES:
            dump = run([save, "-t", table], check=False, quiet=True)
            if dump.returncode != 0 or f"*{table}" not in dump.stdout:
                continue
            chains, deletes = [], []
            for line in dump.stdout.splitlines():
                if line.startswith(":") and _ours(line[1:].split()[0]):
                    chains.append(line[1:].split()[0])
                elif line.startswith("-A "):
                    words = shlex.split(line)
                    chain = words[1]
                    target = words[words.index("-j") + 1] if "-j" in words else ""
                    if not _ours(chain) and _ours(target):
                        deletes.append("-D " + line[3:])
            if not chains and not deletes:
                continue
            script = [f"*{table}", *deletes]
            script += [f"-F {chain}" for chain in chains]
            script += [f"-X {chain}" for chain in chains]
            script.append("COMMIT")
            run([restore, "--noflush"], input_text="\n".join(script) + "\n", check=False)


# --- mounts and cgroups -----------------------------------------------------------------------


def mounts_under(folder: Path) -> list[str]:
    prefix = str(folder.resolve())
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    return found


def unmount_all(folder: Path) -> None:
    for _ in range(5):  # stacked mounts (netns bind mounts, overlays) come off one at a time
        points = mounts_under(folder)
        if not points:
            return
        for point in sorted(points, key=len, reverse=True):
            if run(["umount", point], check=False, quiet=True).returncode != 0:
                run(["umount", "-l", point], check=False)


def cgroup_dirs() -> list[Path]:
    """Every kubepods cgroup the kubelet made, in each mounted hierarchy, deepest first."""
    found: list[Path] = []
    root = Path("/sys/fs/cgroup")
    for hierarchy in [root, *sorted(p for p in root.iterdir() if p.is_dir())]:
        top = hierarchy / "kubepods"
        if top.is_dir():
            found += [Path(d) for d, _, _ in os.walk(top)]
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


def cgroup_processes() -> list[int]:
    pids = []
    for directory in cgroup_dirs():
        with contextlib.suppress(OSError):
            pids += [int(pid) for pid in (directory / "cgroup.procs").read_text().split()]
    return pids


def kill_cgroup_processes() -> None:
    for pid in cgroup_processes():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def remove_cgroups() -> None:
    for _ in range(20):
        kill_cgroup_processes()
        left = cgroup_dirs()
        for directory in left:
            with contextlib.suppress(OSError):
                directory.rmdir()
        if not cgroup_dirs():
            return
        time.sleep(0.2)
    log(f"cgroups left behind: {[str(p) for p in cgroup_dirs()]}")


# --- images -----------------------------------------------------------------------------------


def buildah(layout: Layout, *args: str) -> str:
    storage = [
        "--root", str(layout.buildah / "root"),
        "--runroot", str(layout.buildah / "run"),
        "--storage-driver", "vfs",
    ]  # fmt: skip
    return run(["buildah", *storage, *args]).stdout.strip()


def build_image(layout: Layout, ref: str, rootfs: Path, entrypoint: list[str]) -> Path:
    """An image of one layer holding `rootfs`, as a docker-archive tar, built with buildah."""
    images = layout.work / "images"
    images.mkdir(parents=True, exist_ok=True)
    archive = images / (re.sub(r"[^A-Za-z0-9_.-]", "_", ref) + ".tar")
    archive.unlink(missing_ok=True)
    container = buildah(layout, "from", "scratch")
    try:
        buildah(layout, "copy", container, f"{rootfs}/.", "/")
        buildah(layout, "config", "--entrypoint", json.dumps(entrypoint), container)
        buildah(layout, "commit", "--quiet", container, f"docker-archive:{archive}:{ref}")
    finally:
        buildah(layout, "rm", container)
    return archive


def import_image(layout: Layout, archive: Path) -> None:
    run(["ctr", "--address", str(layout.socket), "-n", "k8s.io", "images", "import", str(archive)])


PAUSE_C = r"""
/* The pod sandbox: holds the namespaces, reaps orphans, exits on SIGTERM or SIGINT. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
static void quit(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, 0, WNOHANG) > 0) {} }
int main(void) {
    signal(SIGINT, quit);
    signal(SIGTERM, quit);
    signal(SIGCHLD, reap);
    for (;;) pause();
}
"""


def build_pause(layout: Layout) -> Path:
    rootfs = layout.work / "images" / "pause-rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    rootfs.mkdir(parents=True)
    source = layout.work / "images" / "pause.c"
    source.write_text(PAUSE_C)
    run(["gcc", "-Os", "-static", "-s", "-o", str(rootfs / "pause"), str(source)])
    return build_image(layout, PAUSE_IMAGE, rootfs, ["/pause"])


def busybox_rootfs(folder: Path) -> Path:
    """A root file system with Debian's static busybox and its applets as links under /bin."""
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", folder / "bin" / "busybox")
    applets = run(["/bin/busybox", "--list"]).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (folder / "bin" / applet).symlink_to("busybox")
    (folder / "tmp").mkdir()
    return folder


# --- up ---------------------------------------------------------------------------------------


def prerequisites() -> list[str]:
    """Why this machine cannot run the node, or [] if it can."""
    problems = []
    if sys.platform != "linux":
        problems.append(f"not Linux ({sys.platform})")
        return problems
    if os.geteuid() != 0:
        problems.append("not root (the kubelet, containerd and the bridge need it)")
    if not Path("/dev/kmsg").exists():
        problems.append("no /dev/kmsg (the kubelet's OOM watcher reads it)")
    if not Path("/sys/fs/cgroup").is_dir():
        problems.append("no /sys/fs/cgroup")
    if not Path("/proc/sys/net/bridge").exists():
        problems.append("no bridge netfilter (/proc/sys/net/bridge)")
    return problems


def running(layout: Layout) -> list[Recorded]:
    return [p for p in State(layout.work).processes if p.alive()]


class Starter:
    def __init__(self, layout: Layout, state: State, assets: Path) -> None:
        self.layout = layout
        self.state = state
        self.assets = assets

    def spawn(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        self.layout.logs.mkdir(parents=True, exist_ok=True)
        with (self.layout.logs / f"{name}.log").open("ab") as out:
            process = subprocess.Popen(
                command,
                env={**os.environ, "PATH": SYSTEM_PATH + ":" + os.environ.get("PATH", "")},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # detached: `up` returns, `down` stops it
            )
        started = start_time(process.pid)
        if started is None:
            raise ClusterError(f"{name} exited at once:\n{tail(self.layout.logs / f'{name}.log')}")
        self.state.add_process(Recorded(name, process.pid, started))
        return process

    def wait(
        self,
        name: str,
        process: subprocess.Popen[bytes],
        ready: Callable[[], bool],
        timeout: float = START_TIMEOUT,
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ClusterError(
                    f"{name} exited with code {process.returncode}:\n"
                    f"{tail(self.layout.logs / f'{name}.log')}"
                )
            if ready():
                return
            time.sleep(0.2)
        raise ClusterError(
            f"{name} not ready after {timeout:.0f}s:\n{tail(self.layout.logs / f'{name}.log')}"
        )

    def binary(self, name: str) -> str:
        return str(self.assets / name)


def up(layout: Layout) -> str:
    problems = prerequisites()
    if problems:
        raise ClusterError("this machine cannot run a node: " + "; ".join(problems))
    alive = running(layout)
    if alive:
        if len(alive) == len(State(layout.work).processes) and _ok(
            f"https://{NODE_IP}:{APISERVER_PORT}/readyz", admin_context(layout.pki)
        ):
            return (
                f"cluster already running from {layout.work}; "
                f"export KUBECONFIG={layout.kubeconfig} PATH={layout.bin.resolve()}:$PATH"
            )
        raise ClusterError(
            f"a cluster is half running from {layout.work} "
            f"({', '.join(p.name for p in alive)}); `make cluster-down` first"
        )
    owner = bridge_owner()
    if owner is not None and owner != str(layout.work):
        raise ClusterError(
            f"the bridge {BRIDGE} belongs to the cluster in {owner}: stop that one first "
            f"(make cluster-down there); one node per machine"
        )
    if State(layout.work).exists() or owner is not None:
        log("cleaning up after an earlier cluster that was not stopped")
        down(layout)
    busy = [
        f"{what} {host}:{port}"
        for what, (host, port) in PORTS.items()
        if port_busy(LOOPBACK if host == NODE_IP else host, port)
    ]
    if busy:
        raise ClusterError(f"ports in use (another cluster?): {', '.join(busy)}")

    # containerd adds ".ttrpc" to its socket's path, and a unix socket path has 104 bytes.
    longest = len(str(layout.socket)) + len(".ttrpc")
    if longest > UNIX_SOCKET_PATH_MAX:
        raise ClusterError(
            f"--dir {layout.work.parent} is too deep: containerd's socket path would be "
            f"{longest} bytes, over the {UNIX_SOCKET_PATH_MAX} a unix socket allows"
        )
    started = time.monotonic()
    run(["bash", str(INSTALL_DEPS)])
    log("building the node binaries (first run only)")
    built = subprocess.run(
        ["bash", str(BUILD_SH), "node"], stdout=subprocess.PIPE, text=True, check=False
    )
    if built.returncode != 0 or not built.stdout.strip():
        raise ClusterError(f"hack/controlplane/build.sh node failed ({built.returncode})")
    assets = Path(built.stdout.strip().splitlines()[-1])

    # Start from nothing: an earlier run's etcd or images must not leak into this one.
    for stale in ("etcd", "containerd", "kubelet", "cni", "pki", "pod-logs", "logs", "buildah"):
        shutil.rmtree(layout.work / stale, ignore_errors=True)
    state = State(layout.work)
    state.data = {
        "sysctls": {n: v for n in SYSCTLS if (v := read_sysctl(n)) is not None},
        "new_paths": [path for path in HOST_PATHS if not Path(path).exists()],
        "processes": [],
    }
    state.save()
    layout.assets_file.write_text(f"{assets}\n")
    try:
        _start(layout, state, assets)
    except BaseException:
        log("start failed: undoing what was done")
        with contextlib.suppress(Exception):
            down(layout)
        raise
    return (
        f"node {NODE_NAME} Ready in {time.monotonic() - started:.0f}s; "
        f"export KUBECONFIG={layout.kubeconfig} PATH={layout.bin.resolve()}:$PATH"
    )


def _start(layout: Layout, state: State, assets: Path) -> None:
    work, pki = layout.work, layout.pki
    starter = Starter(layout, state, assets)
    for name, value in SET_SYSCTLS.items():
        write_sysctl(name, value)
    create_bridge(layout.work)
    write_pki(pki)
    for user in ("admin", "controller-manager", "scheduler", "kube-proxy", "kubelet"):
        write_kubeconfig(work / f"kubeconfig-{user}", pki, user)
    write_kubeconfig(layout.kubeconfig, pki, "admin")

    t0 = time.monotonic()
    etcd_url = f"http://{LOOPBACK}:{ETCD_PORT}"
    etcd = starter.spawn(
        "etcd",
        [
            starter.binary("etcd"),
            f"--data-dir={work / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls=http://{LOOPBACK}:{ETCD_PEER_PORT}",
            f"--initial-advertise-peer-urls=http://{LOOPBACK}:{ETCD_PEER_PORT}",
            f"--initial-cluster=default=http://{LOOPBACK}:{ETCD_PEER_PORT}",
            "--listen-metrics-urls=",
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ],
    )
    starter.wait("etcd", etcd, lambda: _ok(f"{etcd_url}/health"))

    apiserver = starter.spawn(
        "kube-apiserver",
        [
            starter.binary("kube-apiserver"),
            f"--etcd-servers={etcd_url}",
            f"--advertise-address={NODE_IP}",
            f"--bind-address={NODE_IP}",
            f"--secure-port={APISERVER_PORT}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--service-node-port-range=30000-32767",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true",
            f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
            f"--kubelet-certificate-authority={pki / 'ca.crt'}",
            "--kubelet-preferred-address-types=InternalIP",
            f"--cert-dir={work / 'apiserver-certs'}",
            "--profiling=false",
        ],
    )
    context = admin_context(pki)
    api = f"https://{NODE_IP}:{APISERVER_PORT}"
    starter.wait("kube-apiserver", apiserver, lambda: _ok(f"{api}/readyz", context))
    log(f"control plane ready in {time.monotonic() - t0:.1f}s")

    common = ["--leader-elect=false", "--secure-port=0"]
    controller_manager = starter.spawn(
        "kube-controller-manager",
        [
            starter.binary("kube-controller-manager"),
            f"--kubeconfig={work / 'kubeconfig-controller-manager'}",
            *common,
            "--controllers=*,-nodeipam",  # podCIDR is set by hand in the kubelet and the CNI
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}",
            f"--cluster-signing-key-file={pki / 'ca.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--flex-volume-plugin-dir={work / 'flex-volume-plugins'}",
        ],
    )
    starter.spawn(
        "kube-scheduler",
        [
            starter.binary("kube-scheduler"),
            f"--kubeconfig={work / 'kubeconfig-scheduler'}",
            *common,
        ],
    )

    containerd_dir = layout.containerd
    containerd_dir.mkdir(parents=True, exist_ok=True)
    (containerd_dir / "config.toml").write_text(containerd_config(layout))
    (layout.cni / "net.d").mkdir(parents=True, exist_ok=True)
    (layout.cni / "net.d" / "10-clusterip-guard.conflist").write_text(
        json.dumps(cni_config(layout), indent=2) + "\n"
    )
    containerd = starter.spawn(
        "containerd", ["containerd", "--config", str(containerd_dir / "config.toml")]
    )
    starter.wait(
        "containerd",
        containerd,
        lambda: (
            layout.socket.exists()
            and run(
                ["ctr", "--address", str(layout.socket), "version"], check=False, quiet=True
            ).returncode
            == 0
        ),
    )
    t1 = time.monotonic()
    import_image(layout, build_pause(layout))
    log(f"pause image built and imported in {time.monotonic() - t1:.1f}s")

    layout.kubelet.mkdir(parents=True, exist_ok=True)
    (work / "kubelet.json").write_text(json.dumps(kubelet_config(layout), indent=2) + "\n")
    kubelet = starter.spawn(
        "kubelet",
        [
            starter.binary("kubelet"),
            f"--config={work / 'kubelet.json'}",
            f"--kubeconfig={work / 'kubeconfig-kubelet'}",
            f"--root-dir={layout.kubelet}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={NODE_IP}",
        ],
    )
    starter.spawn(
        "kube-proxy",
        [
            starter.binary("kube-proxy"),
            f"--kubeconfig={work / 'kubeconfig-kube-proxy'}",
            f"--hostname-override={NODE_NAME}",
            "--proxy-mode=iptables",
            f"--cluster-cidr={POD_CIDR}",
            f"--nodeport-addresses={NODE_IP}/32",
            "--conntrack-max-per-core=0",  # it cannot set conntrack sysctls here
            "--conntrack-tcp-timeout-established=0",
            "--conntrack-tcp-timeout-close-wait=0",
            f"--healthz-bind-address={LOOPBACK}:{PROXY_HEALTHZ_PORT}",
            f"--metrics-bind-address={LOOPBACK}:{PROXY_METRICS_PORT}",
        ],
    )
    starter.wait("kubelet", kubelet, lambda: node_ready(pki), NODE_READY_TIMEOUT)
    # Pods are refused until the controller manager has made the namespace's service account.
    starter.wait(
        "kube-controller-manager",
        controller_manager,
        lambda: exists(pki, "/api/v1/namespaces/default/serviceaccounts/default"),
    )
    log(f"node Ready {time.monotonic() - t0:.1f}s after etcd started")

    layout.bin.mkdir(parents=True, exist_ok=True)
    for tool in ("kubectl", "helm"):
        shutil.copy2((assets / tool).resolve(), layout.bin / tool)
    # Every process must still be running: a component that died is a failed start.
    for recorded in state.processes:
        if not recorded.alive():
            raise ClusterError(
                f"{recorded.name} exited:\n{tail(layout.logs / f'{recorded.name}.log')}"
            )


def exists(pki: Path, path: str) -> bool:
    try:
        api_request(pki, "GET", path)
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return True


def node_ready(pki: Path) -> bool:
    try:
        node = api_request(pki, "GET", f"/api/v1/nodes/{NODE_NAME}")
    except (urllib.error.URLError, OSError, ValueError):
        return False
    status = node.get("status")
    conditions = status.get("conditions") if isinstance(status, dict) else None
    return isinstance(conditions, list) and any(
        isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True"
        for c in conditions
    )


# --- down -------------------------------------------------------------------------------------


def _stop(state: State, names: tuple[str, ...]) -> None:
    for recorded in reversed(state.processes):
        if recorded.name in names:
            recorded.stop()


def delete_workloads(layout: Layout, state: State) -> None:
    """Delete every pod through the API so the kubelet tears its sandbox down (CNI DEL, mounts)."""
    alive = {p.name for p in state.processes if p.alive()}
    if not {"kube-apiserver", "kubelet", "containerd"} <= alive:
        return
    _stop(state, ("kube-controller-manager", "kube-scheduler"))  # nothing comes back
    try:
        pods = api_request(layout.pki, "GET", "/api/v1/pods").get("items")
        for pod in pods if isinstance(pods, list) else []:
            meta = pod.get("metadata", {}) if isinstance(pod, dict) else {}
            path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
            with contextlib.suppress(urllib.error.HTTPError):
                api_request(layout.pki, "DELETE", path, {"gracePeriodSeconds": 0})
    except (urllib.error.URLError, OSError, ValueError, KeyError) as error:
        log(f"could not delete pods through the API: {error}")
        return
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and ctr_tasks(layout):
        time.sleep(0.5)


def remove_host_files(layout: Layout, state: State) -> None:
    """Folders `up` made outside DIR; our entries in the host folders that were there before."""
    for path in state.new_paths:
        shutil.rmtree(path, ignore_errors=True)
    pod_logs = str(layout.work / "pod-logs")
    links = Path("/var/log/containers")
    for link in links.glob("*.log") if links.is_dir() else []:
        with contextlib.suppress(OSError):
            if link.is_symlink() and os.readlink(link).startswith(pod_logs):
                link.unlink()
    # libcni's cache: our network's results, and the loopback results of the same containers.
    for result in CNI_RESULTS.glob("clusterip-guard-*") if CNI_RESULTS.is_dir() else []:
        container = result.name.removeprefix("clusterip-guard-").rsplit("-", 1)[0]
        result.unlink(missing_ok=True)
        (CNI_RESULTS / f"cni-loopback-{container}-lo").unlink(missing_ok=True)


def ctr(layout: Layout, *args: str) -> subprocess.CompletedProcess[str]:
    return run(
        ["ctr", "--address", str(layout.socket), "-n", "k8s.io", *args], check=False, quiet=True
    )


def ctr_tasks(layout: Layout) -> list[str]:
    if not layout.socket.exists():
        return []
    return ctr(layout, "tasks", "ls", "-q").stdout.split()


def remove_containers(layout: Layout) -> None:
    for task in ctr_tasks(layout):
        ctr(layout, "tasks", "kill", "-a", "-s", "SIGKILL", task)
    deadline = time.monotonic() + 10
    for task in ctr_tasks(layout):
        while time.monotonic() < deadline and ctr(layout, "tasks", "delete", task).returncode:
            time.sleep(0.2)
    for container in ctr(layout, "containers", "ls", "-q").stdout.split():
        ctr(layout, "containers", "rm", container)


def shim_socket(argv: list[str]) -> Path | None:
    """The socket a containerd 1.6 shim listens on: always under /run/containerd/s, named by
    sha256(containerd address / namespace / id) (runtime/v2/shim.SocketAddress)."""

    def flag(name: str) -> str | None:
        return argv[argv.index(name) + 1] if name in argv[:-1] else None

    address, namespace, shim_id = flag("-address"), flag("-namespace"), flag("-id")
    if not (address and namespace and shim_id):
        return None
    digest = hashlib.sha256(os.path.join(address, namespace, shim_id).encode()).hexdigest()
    return SHIM_SOCKETS / digest


def ours_by_cmdline(layout: Layout) -> list[int]:
    """Shims (and anything else) started for our containerd: they name its socket or folder."""
    marks = (str(layout.socket), str(layout.containerd))
    return processes_under(lambda pid: any(mark in cmdline(pid) for mark in marks))


def down(layout: Layout) -> str:
    state = State(layout.work)
    owner = bridge_owner()
    if owner is not None and owner != str(layout.work):
        # Another checkout's cluster is live: its iptables chains, cgroups, bridge and the
        # sysctls in force are its own. Only processes recorded here (verified) are stopped.
        for recorded in reversed(state.processes):
            recorded.stop()
        state.remove()
        return f"no cluster of {layout.work} left; the one running belongs to {owner}"
    if not state.exists() and owner is None:
        return "no cluster recorded"
    delete_workloads(layout, state)
    _stop(state, ("kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"))
    assets = layout.assets() if layout.assets_file.exists() else None
    if assets is not None and (assets / "kube-proxy").exists():
        run([str(assets / "kube-proxy"), "--cleanup"], check=False, quiet=True)
    if any(p.name == "containerd" and p.alive() for p in state.processes):
        remove_containers(layout)
    _stop(state, ("containerd",))
    # Containers first, while their shims live to reap them; then the shims.
    for _ in range(25):
        kill_cgroup_processes()
        if not any(cgroup_processes()):
            break
        time.sleep(0.2)
    for pid in ours_by_cmdline(layout):  # shims whose tasks could not be deleted
        with contextlib.suppress(OSError):
            socket_file = shim_socket(cmdline(pid).split())
            os.kill(pid, signal.SIGKILL)
            if socket_file is not None:
                socket_file.unlink(missing_ok=True)  # a killed shim cannot remove it
    kill_cgroup_processes()
    _stop(state, ("kube-apiserver", "etcd"))
    for recorded in state.processes:  # anything recorded under another name
        recorded.stop()

    unmount_all(layout.work)
    remove_host_files(layout, state)
    remove_iptables()
    delete_links()
    remove_cgroups()
    for name, value in state.sysctls.items():
        if read_sysctl(name) != value:
            with contextlib.suppress(OSError):
                write_sysctl(name, value)
    # Logs stay for a post-mortem; state, data and credentials go.
    for transient in (
        "containerd", "kubelet", "cni", "etcd", "buildah", "apiserver-certs", "pki", "pod-logs",
        "flex-volume-plugins",
    ):  # fmt: skip
        shutil.rmtree(layout.work / transient, ignore_errors=True)
    for kubeconfig in layout.work.glob("kubeconfig*"):
        kubeconfig.unlink()
    state.remove()
    problems = leftovers(layout, state)
    if problems:
        raise ClusterError("cluster-down left things behind:\n  " + "\n  ".join(problems))
    return "cluster stopped; nothing left behind"


def leftovers(layout: Layout, state: State) -> list[str]:
    """What of ours is still on the host: processes, links, mounts, iptables, ports, sysctls."""
    problems = [f"process {p.name} (pid {p.pid})" for p in state.processes if p.alive()]
    problems += [f"process {pid}: {cmdline(pid)[:100]}" for pid in ours_by_cmdline(layout)]
    problems += [f"link {BRIDGE}"] if link_exists(BRIDGE) else []
    problems += [f"mount {point}" for point in mounts_under(layout.work)]
    problems += iptables_leftovers()
    problems += [f"cgroup {p}" for p in cgroup_dirs()]
    problems += [
        f"port {port} ({what})"
        for what, (host, port) in PORTS.items()
        if port_busy(LOOPBACK if host == NODE_IP else host, port)
    ]
    problems += [f"path {path}" for path in state.new_paths if path.exists()]
    problems += [f"cni result {p}" for p in CNI_RESULTS.glob("clusterip-guard-*")]
    problems += [
        f"sysctl {name} = {read_sysctl(name)}, was {value}"
        for name, value in state.sysctls.items()
        if read_sysctl(name) != value
    ]
    return problems


# --- command line -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--dir", type=Path, default=ROOT / ".dev", help="state folder")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start the cluster; returns when the node is Ready")
    commands.add_parser("down", help="stop the cluster and undo every host change")
    commands.add_parser("check", help="print why this machine cannot run a node, if it cannot")
    image = commands.add_parser("image", help="build an image from a folder and import it")
    image.add_argument("ref", help="image name, e.g. localhost/demo/server:1")
    image.add_argument("rootfs", type=Path, help="folder copied to / in the image")
    image.add_argument("--busybox", action="store_true", help="add busybox and its applets")
    image.add_argument("entrypoint", nargs="+", help="after --: the entrypoint and arguments")
    load = commands.add_parser(
        "import", help="import an image archive (oci or docker) into the node"
    )
    load.add_argument(
        "archive", type=Path, help="e.g. .dev/images/clusterip-guard.tar (make image)"
    )
    args = parser.parse_args(argv)
    layout = Layout(args.dir.resolve())
    # A Ctrl-C or a kill while starting runs `down` through the exception path in up().
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    try:
        if args.command == "up":
            print(up(layout))
        elif args.command == "down":
            print(down(layout))
        elif args.command == "check":
            problems = prerequisites()
            print("; ".join(problems) if problems else "this machine can run a node")
            return 1 if problems else 0
        elif args.command == "import":
            if not running(layout):
                raise ClusterError("no cluster running: `make cluster` first")
            if not args.archive.is_file():
                raise ClusterError(f"{args.archive}: no such image archive (`make image` makes it)")
            import_image(layout, args.archive)
            print(f"imported {args.archive}")
        else:
            if not running(layout):
                raise ClusterError("no cluster running: `make cluster` first")
            rootfs = args.rootfs
            if args.busybox:
                rootfs = busybox_rootfs(layout.work / "images" / "busybox-rootfs")
                shutil.copytree(args.rootfs, rootfs, symlinks=True, dirs_exist_ok=True)
            import_image(layout, build_image(layout, args.ref, rootfs, args.entrypoint))
            print(f"imported {args.ref}")
    except ClusterError as error:
        print(f"cluster: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cluster: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
