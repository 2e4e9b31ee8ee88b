"""Limits a scan meets on a large cluster, each said in one line (core/sentences.py) and
counted (the reports component's `clusterip_guard_scan_limits_reached` metric):

- `throttled`: the API server answered 429 Too Many Requests (API Priority and Fairness, or
  --max-requests-inflight). The request is tried again after the pause the server asked for
  (Retry-After), or a growing one, for up to `PATIENCE_SECONDS`: nothing is skipped, no report
  is lost; past that the request fails as any refusal does.
- `list-expired`: a list's continue token expired while paging (410 Gone; etcd compacted the
  version the list was reading). It continues as client-go does (the token the 410 carries,
  at a newer version), or lists again from the start and skips what was read: no namespace is
  dropped (cluster/listing.py).
- `memory`: the process's memory passed the high-water mark (a share of its cgroup's limit)
  after a namespace: unused memory is collected; a namespace too large for the limit is what
  the sizing table in the docs is for.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal, TypeVar

from kubernetes.client.exceptions import ApiException

from clusterip_guard.cluster.errors import ClusterRefused
from clusterip_guard.core import sentences as say

T = TypeVar("T")
Limit = Literal["throttled", "list-expired", "memory"]
LIMITS: tuple[Limit, ...] = ("throttled", "list-expired", "memory")

log = logging.getLogger("clusterip_guard.limits")

HTTP_TOO_MANY_REQUESTS = 429
FIRST_PAUSE_SECONDS = 0.5
LONGEST_PAUSE_SECONDS = 30.0
PATIENCE_SECONDS = 600.0  # the longest a request waits out throttling before it fails

_counters: list[Callable[[Limit], None]] = []


def count_limits(counter: Callable[[Limit], None]) -> None:
    """Call `counter` whenever a limit is reached (the metrics of `scan --watch`)."""
    _counters.append(counter)


def reached(limit: Limit, line: str) -> None:
    """Say it in one line, and count it."""
    log.warning("%s", line)
    for counter in _counters:
        counter(limit)


def _retry_after(error: ApiException) -> float | None:
    headers = error.headers or {}
    try:
        return float(headers.get("Retry-After", ""))
    except ValueError:
        return None


def patiently(
    request: Callable[[], T],
    what: str,
    *,
    sleep: Callable[[float], None] | None = None,  # None: time.sleep
    patience: float = PATIENCE_SECONDS,
) -> T:
    """`request`, tried again while the API server answers 429; any other failure is raised
    as it came. `what` names the request in the line that says so ("list services")."""
    waited = 0.0
    attempt = 1
    while True:
        try:
            return request()
        except ApiException as error:
            if error.status != HTTP_TOO_MANY_REQUESTS:
                raise
            if waited >= patience:
                raise ClusterRefused(
                    say.STILL_THROTTLED.format(what=what, seconds=waited)
                ) from error
            backoff = min(FIRST_PAUSE_SECONDS * 2 ** (attempt - 1), LONGEST_PAUSE_SECONDS)
            pause = max(backoff, _retry_after(error) or 0.0)
            reached(
                "throttled",
                say.THROTTLED.format(what=what, seconds=pause, attempt=attempt),
            )
            (sleep or time.sleep)(pause)
            waited += pause
            attempt += 1


# --- memory --------------------------------------------------------------------------------------

CGROUP_MEMORY_LIMIT = Path("/sys/fs/cgroup/memory.max")  # cgroup v2, as in a container
HIGH_WATER_PERCENT = 80
_PAGE_BYTES = 4096
MIB = 1024 * 1024


def memory_limit(path: Path = CGROUP_MEMORY_LIMIT) -> int | None:
    """The container's memory limit in bytes; None without one (`max`, or no cgroup v2)."""
    try:
        said = path.read_text().strip()
    except OSError:
        return None
    return int(said) if said.isdigit() else None


def resident_bytes(statm: Path = Path("/proc/self/statm")) -> int | None:
    try:
        return int(statm.read_text().split()[1]) * _PAGE_BYTES
    except (OSError, IndexError, ValueError):
        return None


class MemoryWatch:
    """Checks the memory after each namespace against the high-water mark, and says so once
    per scan when it is past it."""

    def __init__(
        self,
        limit: int | None = None,
        resident: Callable[[], int | None] = resident_bytes,
    ) -> None:
        self.limit = limit if limit is not None else memory_limit()
        self.resident = resident
        self.said = False

    def check(self, namespace: str) -> None:
        if self.limit is None:
            return
        used = self.resident()
        mark = self.limit * HIGH_WATER_PERCENT // 100
        if used is None or used < mark:
            return
        gc.collect()
        if not self.said:
            self.said = True
            reached(
                "memory",
                say.MEMORY_HIGH_WATER.format(
                    used=used // MIB, namespace=namespace, mark=mark // MIB,
                    percent=HIGH_WATER_PERCENT, limit=self.limit // MIB,
                ),
            )  # fmt: skip
