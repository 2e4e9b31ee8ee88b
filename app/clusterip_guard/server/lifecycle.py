"""Ready, then draining: what `/readyz` reports and how a SIGTERM is taken.

In a cluster the API server reaches the webhook through its Service. When a Pod is told to
stop, the endpoint that leads to it disappears from every node only after a moment; a server
that closed its listener at once would refuse the calls still routed to it, and a fail-closed
webhook turns each refusal into a failed Service write. So the first SIGTERM only turns the
server not ready and asks clients to reconnect elsewhere; it keeps serving for the shutdown
delay, and only then drains (stops accepting, finishes what is in flight) and exits.
"""

from __future__ import annotations

import logging

log = logging.getLogger("clusterip_guard.lifecycle")


class Lifecycle:
    """Whether the server should get new requests. The app starts only once the certificate
    and the policy loaded, so it is ready from its first request until draining begins."""

    def __init__(self) -> None:
        self.draining = False

    @property
    def ready(self) -> bool:
        return not self.draining

    def start_draining(self, delay: float) -> None:
        if not self.draining:
            self.draining = True
            log.info(
                "stopping: not ready; serving for %gs while endpoints catch up, then draining",
                delay,
            )
