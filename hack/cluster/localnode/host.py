"""What the node changes on the host beside its processes: the bridge, iptables chains and
rules, mounts and cgroups; each made, found and undone here."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import time
from pathlib import Path

from localnode.base import (
    BRIDGE,
    CHAIN_PREFIXES,
    IPTABLES_TABLES,
    NODE_IP,
    link_exists,
    log,
    run,
)

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
