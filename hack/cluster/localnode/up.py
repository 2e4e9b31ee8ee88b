"""`up`: a real single-node cluster on this machine, Ready when it returns; what it changes on
the host is recorded as it goes (`State`), and undone by `down` if it fails."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
from collections.abc import Callable
from pathlib import Path

from hostkit.flags import apiserver_flags, etcd_flags
from hostkit.processes import Recorded, get_ok, port_busy, spawn, wait_until
from localnode.api import admin_context, api_request, write_node_kubeconfig, write_pki
from localnode.base import (
    APISERVER_PORT,
    BRIDGE,
    BUILD_SH,
    ETCD_PEER_PORT,
    ETCD_PORT,
    HOST_PATHS,
    INSTALL_DEPS,
    LOOPBACK,
    NODE_IP,
    NODE_NAME,
    NODE_READY_TIMEOUT,
    POD_CIDR,
    PORTS,
    PROXY_HEALTHZ_PORT,
    PROXY_METRICS_PORT,
    SERVICE_CIDR,
    SET_SYSCTLS,
    START_TIMEOUT,
    SYSCTLS,
    SYSTEM_PATH,
    UNIX_SOCKET_PATH_MAX,
    ClusterError,
    Layout,
    State,
    log,
    read_sysctl,
    run,
    tail,
    write_sysctl,
)
from localnode.configs import cni_config, containerd_config, kubelet_config
from localnode.down import down
from localnode.host import bridge_owner, create_bridge
from localnode.images import build_pause, import_image


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

    def log_of(self, name: str) -> Path:
        return self.layout.logs / f"{name}.log"

    def spawn(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        """Started detached (`up` returns, `down` stops it), and recorded at once."""
        environment = {**os.environ, "PATH": SYSTEM_PATH + ":" + os.environ.get("PATH", "")}
        process = spawn(command, self.log_of(name), env=environment)
        recorded = Recorded.of(name, process.pid)
        if recorded.start_time is None:
            raise ClusterError(f"{name} exited at once:\n{tail(self.log_of(name))}")
        self.state.add_process(recorded)
        return process

    def wait(
        self,
        name: str,
        process: subprocess.Popen[bytes],
        ready: Callable[[], bool],
        timeout: float = START_TIMEOUT,
    ) -> None:
        wait_until(ready, process, self.log_of(name), name, timeout)

    def binary(self, name: str) -> str:
        return str(self.assets / name)


def up(layout: Layout) -> str:
    problems = prerequisites()
    if problems:
        raise ClusterError("this machine cannot run a node: " + "; ".join(problems))
    alive = running(layout)
    if alive:
        if len(alive) == len(State(layout.work).processes) and get_ok(
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
        write_node_kubeconfig(work / f"kubeconfig-{user}", pki, user)
    write_node_kubeconfig(layout.kubeconfig, pki, "admin")

    t0 = time.monotonic()
    etcd_url = f"http://{LOOPBACK}:{ETCD_PORT}"
    etcd = starter.spawn(
        "etcd",
        [
            starter.binary("etcd"),
            *etcd_flags(work / "etcd", ETCD_PORT, ETCD_PEER_PORT),
            "--listen-metrics-urls=",
        ],
    )
    starter.wait("etcd", etcd, lambda: get_ok(f"{etcd_url}/health"))

    apiserver = starter.spawn(
        "kube-apiserver",
        [
            starter.binary("kube-apiserver"),
            *apiserver_flags(
                etcd_url=etcd_url,
                address=NODE_IP,
                port=APISERVER_PORT,
                pki=pki,
                service_cidr=SERVICE_CIDR,
                service_account_issuer="https://kubernetes.default.svc.cluster.local",
                authorization_mode="Node,RBAC",
                cert_dir=work / "apiserver-certs",
            ),
            f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
            f"--kubelet-certificate-authority={pki / 'ca.crt'}",
            "--kubelet-preferred-address-types=InternalIP",
            "--profiling=false",
        ],
    )
    context = admin_context(pki)
    api = f"https://{NODE_IP}:{APISERVER_PORT}"
    starter.wait("kube-apiserver", apiserver, lambda: get_ok(f"{api}/readyz", context))
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
