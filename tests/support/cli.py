"""The `clusterip-guard` command as a user runs it: a process of its own, the cluster from
$KUBECONFIG."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def clusterip_guard(
    kubeconfig: Path | None, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    return subprocess.run(
        [sys.executable, "-m", "clusterip_guard.cli.main", *args],
        env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
