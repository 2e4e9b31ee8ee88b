"""The README's first command: `make demo`, on a real node where the machine can run one, and
beside the local control plane where it cannot (or with DEMO=loopback)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.node import (
    on_the_terminal,
    require_a_machine_that_runs_a_node,
    stop_the_checkout_cluster,
)
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
    ports = {
        "WEBHOOK_PORT": str(free_port()),
        "METRICS_PORT": str(free_port()),
        "DEMO": "loopback",
    }
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


@pytest.mark.node
def test_make_demo_on_a_node_shows_nginx_reachable_only_inside_the_cluster(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> None:
    dev = tmp_path_factory.mktemp("demo")  # short: containerd's socket path has a limit
    require_a_machine_that_runs_a_node()
    stop_the_checkout_cluster(on_the_terminal(pytestconfig))
    try:
        demo = make("demo", dev)
        out = demo.stdout + demo.stderr
        assert demo.returncode == 0, out[-4000:]
        # installed by the commands a user types
        assert "$ helm upgrade --install clusterip-guard charts/clusterip-guard" in out
        assert "Phase:          Succeeded" in out  # helm test
        # the exercise: stored as ClusterIP, answers inside, not on the node port
        assert "converted this Service from NodePort to ClusterIP" in out
        inside, _, outside = out.partition("=== outside the cluster")
        assert "<h1>Welcome to nginx!</h1>" in inside.rpartition("=== inside the cluster")[2]
        closed, _, sandbox = outside.partition("=== the same manifest")
        assert "Failed to connect to 10.244.0.1 port 30080" in closed
        # the same manifest unlabelled: NodePort, and the node port answers
        assert "80:30080/TCP" in sandbox
        assert "<h1>Welcome to nginx!</h1>" in sandbox
        # what already exists: the unlabelled sandbox's NodePort is seen, then fixed
        exists, _, fixed = sandbox.partition("=== fix one")
        exists = exists.partition("=== what already exists")[2]
        assert re.search(r"^sandbox +off \(cluster default\) +nginx +NodePort +warn", exists, re.M)
        assert "created PolicyReport sandbox/clusterip-guard" in exists
        # pass..skip: the Deployment passes (no host port), the NodePort Service warns
        assert report_counts(exists, "sandbox") == ["1", "0", "1", "0", "0"]
        assert "updated PolicyReport sandbox/clusterip-guard" in fixed
        assert report_counts(fixed, "sandbox") == ["2", "0", "0", "0", "0"]
    finally:
        down = make("cluster-down", dev)
    assert down.returncode == 0, down.stderr


def report_counts(output: str, namespace: str) -> list[str]:
    """PASS FAIL WARN ERROR SKIP of a namespace's report in `kubectl get policyreports -A`."""
    for line in output.splitlines():
        fields = line.split()
        if fields[:2] == [namespace, "clusterip-guard"]:
            return fields[-6:-1]
    return []
