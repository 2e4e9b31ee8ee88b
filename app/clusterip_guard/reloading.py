"""Files that are reloaded when they change on disk (the policy, the serving certificate).

Kubernetes updates a mounted Secret or ConfigMap by swapping a symlink, so a change is seen
as a new (inode, size, mtime) of the file the path resolves to. Looking is cheap (a few stat
calls), so the server looks every couple of seconds rather than holding inotify watches that
a symlink swap would silently orphan.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, Protocol

log = logging.getLogger("clusterip_guard.reload")

Signature = tuple[tuple[int, int, int], ...]
ReloadResult = Literal["unchanged", "reloaded", "failed"]


class Reloadable(Protocol):
    name: str  # what is reloaded, for logs and metrics: "policy", "certificate"

    def reload_if_changed(self) -> ReloadResult: ...


def _signature(paths: tuple[Path, ...]) -> Signature:
    signatures: list[tuple[int, int, int]] = []
    for path in paths:
        try:
            stat = os.stat(path)
        except OSError:
            signatures.append((0, 0, 0))
        else:
            signatures.append((stat.st_ino, stat.st_size, stat.st_mtime_ns))
    return tuple(signatures)


class PolledFiles:
    """Tells whether any of a few files changed since the last look."""

    def __init__(self, *paths: Path) -> None:
        self.paths = paths
        self._seen = _signature(paths)

    def changed(self) -> bool:
        current = _signature(self.paths)
        if current == self._seen:
            return False
        self._seen = current
        return True

    @property
    def seen(self) -> Signature:
        """The files as the last look found them."""
        return self._seen


def reload_all(
    reloaders: Sequence[Reloadable], on_result: Callable[[str, ReloadResult], None]
) -> None:
    """One look at every polled file; `on_result` hears of each reload or failure."""
    for reloader in reloaders:
        try:
            result = reloader.reload_if_changed()
        except Exception:  # the poller must outlive any one bad reload
            log.exception("reload check failed", extra={"file": reloader.name})
            result = "failed"
        if result != "unchanged":
            on_result(reloader.name, result)


async def poll_for_changes(
    reloaders: Sequence[Reloadable],
    interval: float,
    on_result: Callable[[str, ReloadResult], None],
    housekeeping: Callable[[], None] = lambda: None,
) -> None:
    """Look every `interval` seconds until cancelled; `housekeeping` runs at each look too."""
    while True:
        await asyncio.sleep(interval)
        reload_all(reloaders, on_result)
        housekeeping()
