"""Connections are capped when they are accepted, before a TLS handshake costs anything: a
client that opens bare TCP connections and never says hello holds no more than its share,
however long the handshake timeout. A handshake timeout of a minute here, so that only the
cap can have closed them."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.support.polling import until
from tests.support.webhook_process import LOOPBACK, ServingFiles, WebhookProcess

PER_CLIENT = 6
EXTRA = 5
# The connections under test come from an address of their own, so that reading the metrics
# (from 127.0.0.1) never takes one of their places.
CLIENT = "127.0.0.3"


@pytest.fixture(scope="module")
def webhook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebhookProcess]:
    process = WebhookProcess(
        ServingFiles(tmp_path_factory.mktemp("accept")),
        extra_args=(
            "--max-connections-per-client", str(PER_CLIENT),
            "--handshake-timeout", "60",
        ),
    ).start()  # fmt: skip
    yield process
    process.stop()


def connect(port: int) -> socket.socket:
    return socket.create_connection((LOOPBACK, port), timeout=10, source_address=(CLIENT, 0))


def closed_by_server(sock: socket.socket, wait: float) -> bool:
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def refused_connections(webhook: WebhookProcess, port: str) -> float:
    try:
        text = httpx.get(f"http://{LOOPBACK}:{webhook.metrics_port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return -1
    prefix = f'clusterip_guard_refused_connections_total{{port="{port}",reason="connections"}}'
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix))


@pytest.mark.parametrize("port", ["webhook", "metrics"])
def test_connections_past_a_clients_share_are_closed_before_any_handshake(
    webhook: WebhookProcess, port: str
) -> None:
    number = webhook.port if port == "webhook" else webhook.metrics_port
    before = refused_connections(webhook, port)
    held = [connect(number) for _ in range(PER_CLIENT)]
    extra = [connect(number) for _ in range(EXTRA)]
    try:
        assert all(closed_by_server(sock, wait=10) for sock in extra)
        assert not any(closed_by_server(sock, wait=0.2) for sock in held)
    finally:
        for sock in held + extra:
            sock.close()
    # Read once the held ones are gone (the metrics port counts its own share too).
    assert until(lambda: refused_connections(webhook, port) - before == EXTRA)


def a_full_share_is_admitted(webhook: WebhookProcess) -> bool:
    held = [connect(webhook.port) for _ in range(PER_CLIENT)]
    try:
        return not any(closed_by_server(sock, wait=0.2) for sock in held)
    finally:
        for sock in held:
            sock.close()


def test_a_closed_connection_gives_its_place_back(webhook: WebhookProcess) -> None:
    # Each round closes a full share; the server sees the closes on its next turns, and the
    # next full share is admitted (a close and a new connection racing may take a retry).
    for _ in range(5):
        assert until(lambda: a_full_share_is_admitted(webhook))
