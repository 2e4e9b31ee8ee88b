"""Runs `clusterip-guard serve` as a real process on loopback, for HTTP and e2e tests."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from clusterip_guard.certs.issuing import (
    KeyPair,
    new_certificate_authority,
    new_serving_certificate,
)

LOOPBACK = "127.0.0.1"
START_TIMEOUT_SECONDS = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass
class CertificateFiles:
    """The files `serve` reads, as `clusterip-guard bootstrap --url --cert-dir` writes them."""

    folder: Path

    @property
    def cert_file(self) -> Path:
        return self.folder / "tls.crt"

    @property
    def key_file(self) -> Path:
        return self.folder / "tls.key"

    @property
    def ca_file(self) -> Path:
        return self.folder / "ca.crt"

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


@dataclass
class ServingFiles(CertificateFiles):
    """A CA of the test's own and a serving certificate for 127.0.0.1, written as files."""

    ca: KeyPair = field(init=False)

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.ca = new_certificate_authority(now=now())
        self.issue(self.ca)

    def issue(self, ca: KeyPair) -> KeyPair:
        """Write a new serving certificate signed by `ca` (and that CA) to the files."""
        serving = new_serving_certificate(
            ca, now=now(), dns_names=["localhost"], ip_addresses=[LOOPBACK]
        )
        self.key_file.write_bytes(serving.key_pem)
        self.cert_file.write_bytes(serving.cert_pem)
        self.ca_file.write_bytes(ca.cert_pem)
        return serving

    def client_context(self, *extra_cas: KeyPair) -> ssl.SSLContext:
        context = ssl.create_default_context(cadata=self.ca.cert_pem.decode())
        for ca in extra_cas:
            context.load_verify_locations(cadata=ca.cert_pem.decode())
        return context


@dataclass
class WebhookProcess:
    files: CertificateFiles
    policy_file: Path | None = None
    port: int = field(default_factory=free_port)

    metrics_port: int = field(default_factory=free_port)
    # Tests stop servers all the time: no endpoints to wait for here, unless a test says so.
    shutdown_delay: float = 0.0
    extra_args: tuple[str, ...] = ()
    log_file: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://{LOOPBACK}:{self.port}"

    def start(self) -> WebhookProcess:
        command = [
            sys.executable, "-m", "clusterip_guard.cli.main", "serve",
            "--cert-file", str(self.files.cert_file),
            "--key-file", str(self.files.key_file),
            "--host", LOOPBACK,
            "--port", str(self.port),
            "--metrics-port", str(self.metrics_port),
            "--reload-interval", "0.2",
            "--shutdown-delay", str(self.shutdown_delay),
            *self.extra_args,
        ]  # fmt: skip
        if self.policy_file is not None:
            command += ["--policy-file", str(self.policy_file)]
        self.log_file = self.log_file or self.files.folder / f"serve-{self.port}.log"
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        # The plain port: it needs no client certificate, whatever --client-ca asks.
        readyz = f"http://{LOOPBACK}:{self.metrics_port}/readyz"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"serve exited early:\n{self.logs()}")
            try:
                if httpx.get(readyz, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"serve not ready after {START_TIMEOUT_SECONDS}s:\n{self.logs()}")

    def reviews_answered(self) -> float:
        """AdmissionReviews answered so far, from the server's own metrics."""
        text = httpx.get(f"http://{LOOPBACK}:{self.metrics_port}/metrics", timeout=5).text
        return sum(
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith("clusterip_guard_review_duration_seconds_count")
        )

    def logs(self) -> str:
        return self.log_file.read_text() if self.log_file and self.log_file.exists() else ""

    def log_entries(self, after: int = 0) -> list[dict[str, Any]]:
        """The JSON log lines from character `after` of the log on, parsed."""
        entries = []
        for line in self.logs()[after:].splitlines():
            with contextlib.suppress(ValueError):
                entries.append(json.loads(line))
        return entries

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
