"""`down`: stops every process `up` started and undoes every change it made to the host:
workloads deleted through the API first, then processes newest first, containers and shims,
mounts, host files, iptables, the bridge, cgroups, kernel settings; it says what is left."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import time
import urllib.error
from pathlib import Path

from hostkit.processes import cmdline, port_busy, processes_matching
from localnode.api import api_request
from localnode.base import (
    BRIDGE,
    CNI_RESULTS,
    LOOPBACK,
    NODE_IP,
    PORTS,
    SHIM_SOCKETS,
    ClusterError,
    Layout,
    State,
    link_exists,
    log,
    read_sysctl,
    run,
    write_sysctl,
)
from localnode.host import (
    bridge_owner,
    cgroup_dirs,
    cgroup_processes,
    delete_links,
    iptables_leftovers,
    kill_cgroup_processes,
    mounts_under,
    remove_cgroups,
    remove_iptables,
    unmount_all,
)


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
    return processes_matching(lambda pid: any(mark in cmdline(pid) for mark in marks))


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
