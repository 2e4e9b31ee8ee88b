"""Giving memory back after a burst of connections.

Each TLS connection costs the server a few hundred KiB while it lives (OpenSSL's state,
asyncio's read buffer), held in reference cycles that only Python's full garbage collection
frees, in pages that glibc keeps unless asked (`malloc_trim`). After a flood of connections
has ended, that would still count against the Pod's memory limit. So at each housekeeping
tick the server compares its resident memory with its resting level and, when it is well
above, collects and trims (tens of milliseconds, at most every few seconds); at rest it costs
one read of /proc/self/statm.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import os
import time
from collections.abc import Callable

log = logging.getLogger("clusterip_guard.memory")

MIB = 1024 * 1024
# Above the resting level by this much, memory is worth a full collection (tens of ms).
SLACK_BYTES = 32 * MIB
COLLECT_INTERVAL_SECONDS = 5.0


def _malloc_trim() -> Callable[[], None]:
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc: nothing to trim
        trim = None
    if trim is None:
        return lambda: None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int

    def release() -> None:
        trim(0)

    return release


_trim = _malloc_trim()


def resident_bytes() -> int | None:
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class MemoryKeeper:
    """Called at each housekeeping tick: collects and trims when resident memory is well above
    the lowest level seen, at most every `interval` seconds (a burst still in progress is not
    collected over and over; one that ended is given back within that time)."""

    def __init__(
        self,
        slack_bytes: int = SLACK_BYTES,
        interval: float = COLLECT_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.slack_bytes = slack_bytes
        self.interval = interval
        self.clock = clock
        self.resting: int | None = None
        self._last = -interval

    def __call__(self) -> None:
        before = resident_bytes()
        if before is None:
            return
        if self.resting is None or before < self.resting:
            self.resting = before
        if before <= self.resting + self.slack_bytes or self.clock() - self._last < self.interval:
            return
        self._last = self.clock()
        gc.collect()
        _trim()
        after = resident_bytes() or before
        if before - after >= MIB:
            log.info(
                "released %d MiB after a burst of connections",
                (before - after) // MIB,
                extra={"resident_mib": after // MIB},
            )
