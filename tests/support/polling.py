"""Waiting for something that happens a moment later (a reload, an informer, a process exit)."""

from __future__ import annotations

import time
from collections.abc import Callable

POLL_INTERVAL_SECONDS = 0.2


def until(check: Callable[[], object], timeout: float = 10.0) -> bool:
    """Call `check` until it returns something true, or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_INTERVAL_SECONDS)
    return True
