"""A stop loses no admission: after SIGTERM the server turns not ready, keeps answering for
the shutdown delay (asking each client to reconnect), then drains and exits 0."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.builders import admission_review, service
from tests.support.polling import until
from tests.support.webhook_process import ServingFiles, WebhookProcess

DELAY_SECONDS = 2.0
JSON_HEADERS = {"content-type": "application/json"}


@pytest.fixture
def files(tmp_path_factory: pytest.TempPathFactory) -> ServingFiles:
    return ServingFiles(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def webhook(files: ServingFiles) -> Iterator[WebhookProcess]:
    process = WebhookProcess(files, shutdown_delay=DELAY_SECONDS).start()
    yield process
    process.stop()


def review(client: httpx.Client) -> httpx.Response:
    body = json.dumps(admission_review(service("NodePort")))
    return client.post("/validate/enforce", content=body, headers=JSON_HEADERS)


def terminate(webhook: WebhookProcess) -> float:
    assert webhook.process is not None
    os.kill(webhook.process.pid, signal.SIGTERM)
    return time.monotonic()


def test_sigterm_turns_not_ready_but_keeps_answering_until_the_delay_ends(
    webhook: WebhookProcess, files: ServingFiles
) -> None:
    assert webhook.process is not None
    with httpx.Client(base_url=webhook.url, verify=files.client_context(), timeout=5) as client:
        assert review(client).status_code == 200  # a kept-alive connection, as the API server has
        signalled = terminate(webhook)
        assert until(lambda: client.get("/readyz").status_code == 503, timeout=1.5)
        answered = review(client)
        assert answered.status_code == 200
        assert answered.json()["response"]["allowed"] is False
        assert answered.headers["connection"] == "close"  # reconnect: to a replica that stays
        answered_again = review(client)  # on a new connection: the listener is still open
        assert answered_again.status_code == 200
        assert time.monotonic() - signalled < DELAY_SECONDS
    code = webhook.process.wait(timeout=DELAY_SECONDS + 10)
    assert code == 0
    assert time.monotonic() - signalled >= DELAY_SECONDS
    assert "Traceback" not in webhook.logs()


def test_a_second_signal_stops_at_once(webhook: WebhookProcess) -> None:
    assert webhook.process is not None
    terminate(webhook)
    time.sleep(0.3)
    signalled = terminate(webhook)
    webhook.process.wait(timeout=DELAY_SECONDS + 10)
    assert time.monotonic() - signalled < DELAY_SECONDS


def test_ctrl_c_stops_at_once(webhook: WebhookProcess) -> None:
    assert webhook.process is not None
    interrupted = time.monotonic()
    os.kill(webhook.process.pid, signal.SIGINT)
    webhook.process.wait(timeout=DELAY_SECONDS + 10)
    assert time.monotonic() - interrupted < DELAY_SECONDS
