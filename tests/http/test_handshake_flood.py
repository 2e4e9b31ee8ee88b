"""Connections that never start TLS, from many addresses at once: the server's memory stays
bounded, the API server's kept-alive connection keeps getting answers, and every cut is
counted (docs/security.md, "Hostile clients: the limits"; catalogue entry 24).

Once, 3,000 of them from 60 loopback addresses took the server from 60 to 658 MiB (asyncio's
TLS read buffer, 256 KiB, is allocated when a connection is accepted); the per-client cap held,
the total did not. The handshake timeout is a minute here, so that only the caps act.
"""

from __future__ import annotations

import json
import resource
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.builders import admission_review, service
from tests.support.polling import until
from tests.support.webhook_process import LOOPBACK, ServingFiles, WebhookProcess

FLOOD = 3000
ADDRESSES = 60  # 127.0.1.1 - 127.0.1.60: all of 127.0.0.0/8 is loopback
HANDSHAKING = 256  # ServeSettings.max_handshaking
# What a flood may add to the resting server, far under the chart's limit (256 MiB).
BOUND_MIB = 64


def resident_mib(webhook: WebhookProcess) -> int:
    assert webhook.process is not None
    status = Path(f"/proc/{webhook.process.pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmRSS"))
    return int(line.split()[1]) // 1024


def refused(webhook: WebhookProcess, reason: str) -> float:
    text = httpx.get(f"http://{LOOPBACK}:{webhook.metrics_port}/metrics", timeout=5).text
    prefix = f'clusterip_guard_refused_connections_total{{port="webhook",reason="{reason}"}}'
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> ServingFiles:
    return ServingFiles(tmp_path_factory.mktemp("flood"))


def flood_size() -> int:
    """FLOOD, or as many connections as this machine's descriptor limit lets the test hold
    (the server closes all but its handshake places at once, so it needs few)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    size = FLOOD if hard == resource.RLIM_INFINITY else min(FLOOD, hard - 512)
    assert size > 2 * HANDSHAKING, f"a descriptor limit of {hard} is too low for this test"
    return size


@pytest.fixture
def webhook(files: ServingFiles) -> Iterator[WebhookProcess]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = FLOOD + 1024 if hard == resource.RLIM_INFINITY else min(hard, FLOOD + 1024)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    process = WebhookProcess(files, extra_args=("--handshake-timeout", "60")).start()
    yield process
    process.stop()


def test_a_flood_of_silent_connections_from_many_addresses_is_bounded(
    webhook: WebhookProcess, files: ServingFiles
) -> None:
    body = json.dumps(admission_review(service("NodePort")))
    # The API server's connection: established, and kept alive, before the flood.
    headers = {"content-type": "application/json"}
    with httpx.Client(
        base_url=webhook.url, verify=files.client_context(), timeout=5, headers=headers
    ) as apiserver:
        assert apiserver.post("/validate/enforce", content=body).status_code == 200
        at_rest = resident_mib(webhook)
        before = refused(webhook, "handshakes")
        flood = []
        size = flood_size()
        try:
            for index in range(size):
                source = f"127.0.1.{1 + index % ADDRESSES}"
                flood.append(
                    socket.create_connection(
                        (LOOPBACK, webhook.port), timeout=10, source_address=(source, 0)
                    )
                )
            # Every connection past the handshake places is closed at once, and counted.
            assert until(
                lambda: refused(webhook, "handshakes") - before >= size - HANDSHAKING,
                timeout=30,
            )
            assert resident_mib(webhook) - at_rest < BOUND_MIB
            for _ in range(20):  # the API server's reviews keep being answered meanwhile
                answered = apiserver.post("/validate/enforce", content=body)
                assert answered.status_code == 200
                assert answered.json()["response"]["allowed"] is False
            # ... and the kubelet's probes, new connections each time, on the plain-HTTP port
            # the chart's probes use: the flood on the webhook port never turns it NotReady.
            probes = f"http://{LOOPBACK}:{webhook.metrics_port}"
            for _ in range(5):
                for path in ("/healthz", "/readyz"):
                    with httpx.Client(timeout=2) as kubelet:
                        assert kubelet.get(probes + path).text == "ok"
        finally:
            for sock in flood:
                sock.close()


def test_a_handshake_cut_by_its_deadline_is_counted(files: ServingFiles) -> None:
    process = WebhookProcess(files, extra_args=("--handshake-timeout", "1")).start()
    try:
        before = refused(process, "handshake")
        silent = [socket.create_connection((LOOPBACK, process.port), timeout=10) for _ in range(5)]
        try:
            for sock in silent:  # each is closed by the server, a second after it came
                sock.settimeout(10)
                assert sock.recv(1) == b""
        finally:
            for sock in silent:
                sock.close()
        assert until(lambda: refused(process, "handshake") - before == 5)
    finally:
        process.stop()
