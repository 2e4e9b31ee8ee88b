"""Hostile clients do not starve the API server: every limit on both ports, over real TLS on
loopback, bounded in count and time. The limits are made small here (a one-second head
timeout, eight connections per client) so that each is reached quickly."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.builders import admission_review, service
from tests.support.polling import until
from tests.support.webhook_process import LOOPBACK, ServingFiles, WebhookProcess

HEAD_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
PER_CLIENT = 8
HANDSHAKE_TIMEOUT = 1.0
JSON_HEADERS = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> ServingFiles:
    return ServingFiles(tmp_path_factory.mktemp("limits"))


@pytest.fixture(scope="module")
def webhook(files: ServingFiles) -> Iterator[WebhookProcess]:
    process = WebhookProcess(
        files,
        extra_args=(
            "--header-timeout", str(HEAD_TIMEOUT),
            "--body-timeout", str(BODY_TIMEOUT),
            "--max-connections-per-client", str(PER_CLIENT),
            "--handshake-timeout", str(HANDSHAKE_TIMEOUT),
        ),
    ).start()  # fmt: skip
    yield process
    process.stop()


# Attackers connect from another loopback address than the API server's stand-in (as they
# would in a cluster): connections are capped per client address.
ATTACKER = "127.0.0.2"


def tls(webhook: WebhookProcess, files: ServingFiles, source: str = ATTACKER) -> ssl.SSLSocket:
    raw = socket.create_connection((LOOPBACK, webhook.port), timeout=10, source_address=(source, 0))
    return files.client_context().wrap_socket(raw, server_hostname=LOOPBACK)


def plain(webhook: WebhookProcess) -> socket.socket:
    return socket.create_connection((LOOPBACK, webhook.metrics_port), timeout=10)


def answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except (ConnectionResetError, ssl.SSLError):
        pass
    return b"".join(chunks)


def resident_kib(webhook: WebhookProcess) -> int:
    assert webhook.process is not None
    status = Path(f"/proc/{webhook.process.pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1])


def a_review_is_answered(webhook: WebhookProcess, files: ServingFiles) -> bool:
    body = json.dumps(admission_review(service("NodePort")))
    with httpx.Client(base_url=webhook.url, verify=files.client_context(), timeout=5) as client:
        reviewed = client.post("/validate/enforce", content=body, headers=JSON_HEADERS)
        healthy = client.get("/healthz")
    return reviewed.status_code == 200 and healthy.status_code == 200


@pytest.mark.parametrize("port", ["webhook", "metrics"])
def test_a_header_that_never_ends_is_cut_with_431(
    webhook: WebhookProcess, files: ServingFiles, port: str
) -> None:
    sock = tls(webhook, files) if port == "webhook" else plain(webhook)
    with sock:
        sock.sendall(b"POST /validate/enforce HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        try:
            for _ in range(64):  # 4 MiB offered; the server stops reading long before
                sock.sendall(b"a" * 65536)
        except OSError:
            pass  # the server hung up mid-flood: as it should
        assert answer(sock).startswith(b"HTTP/1.1 431")


def test_too_many_headers_are_refused_with_431(
    webhook: WebhookProcess, files: ServingFiles
) -> None:
    headers = b"".join(b"X-H%d: 1\r\n" % n for n in range(200))
    with tls(webhook, files) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
        assert answer(sock).startswith(b"HTTP/1.1 431")


@pytest.mark.parametrize("port", ["webhook", "metrics"])
def test_a_head_that_trickles_in_is_cut_with_408(
    webhook: WebhookProcess, files: ServingFiles, port: str
) -> None:
    sock = tls(webhook, files) if port == "webhook" else plain(webhook)
    started = time.monotonic()
    with sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        try:
            for _ in range(20):
                sock.sendall(b"X: 1\r\n")
                time.sleep(0.2)
        except OSError:
            pass
        assert answer(sock).startswith(b"HTTP/1.1 408")
    assert time.monotonic() - started < HEAD_TIMEOUT + 3


def test_a_connection_that_sends_nothing_is_closed(
    webhook: WebhookProcess, files: ServingFiles
) -> None:
    started = time.monotonic()
    with tls(webhook, files) as sock:
        answer(sock)
    assert time.monotonic() - started < HEAD_TIMEOUT + 3


def test_a_connection_that_never_says_hello_is_closed(webhook: WebhookProcess) -> None:
    started = time.monotonic()
    with socket.create_connection((LOOPBACK, webhook.port), timeout=10) as raw:
        assert raw.recv(1) == b""  # closed by the server: no TLS hello in time
    assert time.monotonic() - started < HANDSHAKE_TIMEOUT + 3


def test_blank_lines_between_requests_do_not_hold_a_connection_open(
    webhook: WebhookProcess, files: ServingFiles
) -> None:
    """Bytes that begin no request would cancel the keep-alive timer each time they come."""
    body = json.dumps(admission_review(service())).encode()
    with tls(webhook, files) as sock:
        sock.sendall(b"POST /validate/enforce HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body)  # fmt: skip
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        sock.settimeout(0.2)
        reply = b""
        while time.monotonic() - started < HEAD_TIMEOUT + 3:
            try:
                sock.sendall(b"\r\n")
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except (OSError, ssl.SSLError):
                break
            reply += chunk
            if not chunk:
                break
    assert reply.startswith(b"HTTP/1.1 408"), reply[:100]
    assert time.monotonic() - started < HEAD_TIMEOUT + 3


def test_a_body_that_trickles_in_is_cut_with_408(
    webhook: WebhookProcess, files: ServingFiles
) -> None:
    with tls(webhook, files) as sock:
        head = (b"POST /validate/enforce HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n")  # fmt: skip
        sock.sendall(head + b"{")
        reply = answer(sock)
    assert reply.startswith(b"HTTP/1.1 408"), reply[:100]
    assert b"body not received within" in reply


def test_the_api_servers_reviews_keep_answering_through_every_attack_at_once(
    webhook: WebhookProcess, files: ServingFiles
) -> None:
    resting = resident_kib(webhook)
    stop = threading.Event()

    def header_flood() -> None:
        while not stop.is_set():
            try:
                with tls(webhook, files) as sock:
                    sock.sendall(b"POST / HTTP/1.1\r\nX: " + b"a" * 65536 * 4)
                    answer(sock)
            except OSError:
                pass

    def slow_bodies() -> None:
        while not stop.is_set():
            try:
                with tls(webhook, files) as sock:
                    sock.sendall(b"POST /validate/enforce HTTP/1.1\r\nHost: x\r\n"
                                 b"Content-Type: application/json\r\n"
                                 b"Content-Length: 3000000\r\n\r\n{")  # fmt: skip
                    answer(sock)
            except OSError:
                pass

    def idle_connections() -> None:
        while not stop.is_set():
            opened = []
            for _ in range(200):  # far past this client's share: the rest are cut at once
                # (test_accept_caps.py shows the cap itself)
                try:
                    address = (LOOPBACK, webhook.port)
                    opened.append(
                        socket.create_connection(address, timeout=2, source_address=(ATTACKER, 0))
                    )
                except OSError:
                    break
            time.sleep(0.5)
            for sock in opened:
                sock.close()

    attackers = [threading.Thread(target=attack, daemon=True)
                 for attack in (header_flood, slow_bodies, idle_connections)]  # fmt: skip
    for attacker in attackers:
        attacker.start()
    try:
        deadline = time.monotonic() + 6
        answered = 0
        while time.monotonic() < deadline:
            assert a_review_is_answered(webhook, files)
            answered += 1
        assert answered > 10
    finally:
        stop.set()
        for attacker in attackers:
            attacker.join(timeout=15)
    # Back near rest: nothing was kept (the server gives a burst's memory back within seconds).
    assert until(lambda: resident_kib(webhook) < resting + 30 * 1024, timeout=20), (
        f"resident {resident_kib(webhook)} KiB, resting {resting} KiB"
    )
