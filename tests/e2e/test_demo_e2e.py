"""The README's first command: `make demo` runs `make up` and walks through every mode."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.paths import ROOT
from tests.support.webhook_process import free_port

pytestmark = pytest.mark.e2e


def make(target: str, dev: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", target, f"DEV={dev}"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_make_demo_shows_each_mode_as_a_user_sees_it(tmp_path: Path) -> None:
    dev = tmp_path / "dev"
    ports = {"WEBHOOK_PORT": str(free_port()), "METRICS_PORT": str(free_port())}
    try:
        demo = make("demo", dev, **ports)
        assert demo.returncode == 0, demo.stdout + demo.stderr
        out = demo.stdout + demo.stderr
        # mutate: the classic nginx NodePort stored as ClusterIP, no node port allocated.
        assert "converted this Service from NodePort to ClusterIP" in out
        assert "nginx   ClusterIP" in out
        assert "<none>       NodePort" in out  # NODE-PORTS empty, CONVERTED-FROM NodePort
        # enforce: the denial, with the field and the fix.
        assert 'admission webhook "enforce.clusterip-guard.io" denied the request' in out
        # audit: kubectl's warning line, and the Service stored as sent.
        assert "Warning: audit: Service legacy-" in out
        # a second `make up` finds everything running
        again = make("up", dev, **ports)
        assert again.returncode == 0, again.stderr
        assert "already running" in again.stdout
        assert "webhook already serving" in again.stdout
    finally:
        down = make("down", dev)
    assert down.returncode == 0, down.stderr
    assert "control plane stopped" in down.stdout
