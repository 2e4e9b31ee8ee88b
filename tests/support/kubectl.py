"""kubectl as a test drives it: against one kubeconfig, returning the finished process."""

from __future__ import annotations

import subprocess
from pathlib import Path


class Kubectl:
    """kubectl against the local control plane; returns the finished process."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig

    def __call__(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        run = subprocess.run(
            ["kubectl", f"--kubeconfig={self.kubeconfig}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check and run.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{run.stderr}")
        return run
