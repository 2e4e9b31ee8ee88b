"""kubectl as a test drives it: against one kubeconfig, returning the finished process."""

from __future__ import annotations

import subprocess
from pathlib import Path


class Kubectl:
    """kubectl against one cluster; returns the finished process (`check`: fails the test on
    an error, naming the command)."""

    def __init__(self, kubeconfig: Path, binary: str = "kubectl", timeout: float = 60) -> None:
        self.kubeconfig = kubeconfig
        self.binary = binary
        self.timeout = timeout

    def __call__(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        run = subprocess.run(
            [self.binary, f"--kubeconfig={self.kubeconfig}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=self.timeout,
            check=False,
        )
        if check and run.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{run.stderr}")
        return run
