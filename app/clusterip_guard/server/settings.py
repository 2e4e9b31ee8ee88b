"""Everything `serve` can be told, with each default and the reason for it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024


@dataclass(frozen=True)
class ServeSettings:
    cert_file: Path
    key_file: Path
    # Every interface: in a cluster the API server reaches the Pod by its IP.
    host: str = "0.0.0.0"
    # Unprivileged, so the server runs as a non-root user; the Service maps 443 to it.
    port: int = 8443
    policy_file: Path | None = None
    # Require the API server's client certificate, signed by this CA (None: any client).
    client_ca: Path | None = None
    # Plain HTTP for Prometheus, apart from the webhook port; 0 turns it off.
    metrics_port: int = 9090
    # Never judged, like kube-system: a broken webhook must not lock itself out.
    own_namespace: str | None = None
    # Seconds between looks at the certificate and policy files: a few stat calls each.
    reload_interval: float = 2.0
    # A per-request access log halves throughput; decisions other than "allowed" are logged.
    access_log: bool = False
    log_level: str = "info"
    # Longer than the gaps between the API server's calls, so connections are reused.
    keep_alive_seconds: int = 30
    # The largest AdmissionReview the API server can send: the object up to its 3 MiB request
    # limit and the old object up to etcd's 1.5 MiB, each written again by the API server's
    # JSON encoder, which may spell one byte as six (`<` is `\u003c`): 27 MiB, and the
    # envelope. Refusing a review it can send lets a write through an `audit` entry's Ignore
    # unseen (reviews over USUAL_REVIEW_BYTES are read one at a time: server/reviews.py).
    max_body_bytes: int = 32 * MIB
    # After SIGTERM, seconds of serving while not ready: the time kube-proxy and the API server
    # take to stop routing to a Pod whose endpoint went away (the usual preStop sleep).
    shutdown_delay_seconds: float = 5.0
    # Then, seconds for requests in flight to finish before they are cut; an admission call
    # is over in milliseconds, so this only bounds a stuck client.
    drain_timeout_seconds: int = 10
    # Open connections per port, and per client address, so one client that opens thousands
    # is cut off long before anyone else is. The total is sized for memory: an idle TLS
    # connection costs about 43 KiB, one still in its handshake about 67 KiB, so a port full
    # of them stays near 150 MiB, under the chart's 256 MiB limit (docs/security.md, "Hostile
    # clients: the limits"). The API server is one client that holds a connection per webhook
    # call in flight (HTTP/1.1), as many as the writes it runs at once (up to its 600
    # concurrency seats by default: --max-requests-inflight 400 and
    # --max-mutating-requests-inflight 200), up to 25 more idle, and those it is closing: a
    # burst of 64 writers was cut at 64 (docs/benchmarks.md, "Under a burst").
    max_connections: int = 2048
    max_connections_per_client: int = 1024
    # Of them, still in their TLS handshake: the cheapest to open from many addresses.
    max_handshaking: int = 256
    # From a connection's start (or a request's first byte) to the end of its headers: the
    # API server sends a head in microseconds, a slow or endless one is cut.
    header_timeout_seconds: float = 10.0
    # For a TLS handshake to finish: the API server needs milliseconds; a connection that never
    # says hello holds a few hundred KiB until then (asyncio's default is 60 s).
    handshake_timeout_seconds: float = 5.0
    # For a TLS close to be answered (close_notify) before the connection is dropped: a peer
    # answers in milliseconds; one cut by a limit that keeps sending would otherwise hold its
    # place for uvloop's default of 30 s.
    shutdown_timeout_seconds: float = 1.0
    # An AdmissionReview's head is well under 1 KiB.
    max_header_bytes: int = 16 * 1024
    max_headers: int = 64
    # From the end of the headers to the end of the body: 3 MiB on a healthy network is fast.
    body_timeout_seconds: float = 10.0
