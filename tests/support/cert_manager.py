"""A real cert-manager beside a node: its CRDs, then its controllers and its cainjector as host
processes of hack/certmanager's command, stopped and waited for when the test is done."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.node import Node
from tests.support.polling import until
from tests.support.tools import cert_manager_command, cert_manager_crds

COMMANDS = ("controller", "cainjector")
READY_TIMEOUT = 120  # informers list everything they watch first
STOP_TIMEOUT = 30


@dataclass
class CertManagerProcess:
    command: str
    process: subprocess.Popen[bytes]
    log: Path

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def ready(self) -> bool:
        """The command's own word that every informer it needs has synced."""
        if self.process.poll() is not None:
            raise RuntimeError(f"certmanager {self.command} exited early:\n{self.logs()[-4000:]}")
        return f"certmanager {self.command}: ready" in self.logs()

    def stop(self) -> int:
        """SIGTERM, as a kubelet would, then SIGKILL if it does not exit; its exit code."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode


def install_crds(node: Node) -> list[str]:
    """cert-manager's CRDs as its release publishes them, once Established; their names."""
    names = []
    for crd in cert_manager_crds():
        # create, not apply: a CRD this large would not fit in apply's last-applied annotation.
        created = node.kubectl("create", "-f", str(crd), "-o", "name")
        names.append(created.stdout.strip())
    node.kubectl("wait", "--for=condition=Established", "--timeout=60s", *names)
    return names


def start(node: Node, command: str, logs: Path) -> CertManagerProcess:
    log = logs / f"certmanager-{command}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(cert_manager_command()), command, f"--kubeconfig={node.kubeconfig}"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopped as one
        )  # fmt: skip
    return CertManagerProcess(command, process, log)


@contextmanager
def running_cert_manager(node: Node, logs: Path) -> Iterator[list[CertManagerProcess]]:
    """cert-manager's CRDs on the node, and its controllers and cainjector running against
    it, each ready; stopped (and waited for) on the way out, whatever happened."""
    command = cert_manager_command()  # built before anything starts: a cold build takes minutes
    assert command.exists()
    install_crds(node)
    processes: list[CertManagerProcess] = []
    try:
        for name in COMMANDS:
            processes.append(start(node, name, logs))
        for process in processes:
            if not until(process.ready, timeout=READY_TIMEOUT):
                raise RuntimeError(
                    f"certmanager {process.command} not ready after {READY_TIMEOUT}s:\n"
                    f"{process.logs()[-4000:]}"
                )
        yield processes
    finally:
        for process in processes:
            process.stop()


def leftover_processes() -> list[int]:
    """Any process still running our cert-manager command, started by whoever."""
    command = os.path.realpath(cert_manager_command())
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.path.realpath(entry / "exe") == command:
                    found.append(int(entry.name))
            except OSError:
                continue  # gone meanwhile, or not ours to look at
    return found
