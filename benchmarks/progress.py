"""A one-line progress bar on stderr for the benchmark scripts, and the load check they share."""

from __future__ import annotations

import os
import sys
import time

BAR_WIDTH = 30
BUSY_LOAD = 1.0  # 1-minute load above which a measured run waits (2 cores, shared machine)


class Progress:
    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.started = time.monotonic()

    def step(self, label: str) -> None:
        self.done += 1
        filled = BAR_WIDTH * self.done // max(self.total, 1)
        elapsed = time.monotonic() - self.started
        left = elapsed / self.done * (self.total - self.done)
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {self.done}/{self.total} "
            f"{left:4.0f}s left  {label[:60]:<60}"
        )
        if self.done == self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def wait_for_quiet(max_wait: float) -> float:
    """Wait (up to `max_wait` seconds) for the 1-minute load to fall below BUSY_LOAD; the load
    when measuring starts, for the report."""
    deadline = time.monotonic() + max_wait
    load = os.getloadavg()[0]
    while load > BUSY_LOAD and time.monotonic() < deadline:
        sys.stderr.write(f"\rload {load:.2f} > {BUSY_LOAD}: waiting before measuring ")
        sys.stderr.flush()
        time.sleep(10)
        load = os.getloadavg()[0]
    return load
