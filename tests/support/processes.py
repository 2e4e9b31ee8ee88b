"""Processes the tests started, found by what their command line names (a work folder names
every process started for it), and stopped whatever a test's outcome."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from tests.support.polling import until


def processes_mentioning(text: str) -> list[int]:
    """Live processes, other than this one, whose command line contains `text`."""
    needle = text.encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:  # it exited while we looked
            continue
        if needle in command:
            found.append(int(entry.name))
    return found


def stop_processes_mentioning(text: str, grace_seconds: float = 10.0) -> list[int]:
    """SIGTERM every process naming `text`, SIGKILL what is left after the grace; returns the
    pids that were found (empty when nothing was left behind)."""
    found = processes_mentioning(text)
    for pid in found:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    if found and not until(lambda: not processes_mentioning(text), timeout=grace_seconds):
        for pid in processes_mentioning(text):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        until(lambda: not processes_mentioning(text), timeout=grace_seconds)
    return found
