"""Supervising processes: spawn, wait until ready, stop, and know that a recorded pid is still
the process we started (pid and start time, so a reused pid is never signalled).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from hostkit.errors import HostError

LOOPBACK = "127.0.0.1"
STOP_GRACE_SECONDS = 10.0
LOG_TAIL_LINES = 15


class ProcessError(HostError):
    """A process could not be started, or did not become ready; the message says why."""


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports that nothing listens on right now."""
    # All sockets stay bound until every port is chosen, so the kernel cannot hand one out twice.
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind((LOOPBACK, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def free_port() -> int:
    return free_ports(1)[0]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers signals; it is dead for us (its parent may be a PID 1 that never
    # reaps, as in some containers).
    return _proc_stat(pid)[:1] != ["Z"]


def _proc_stat(pid: int) -> list[str]:
    """/proc/PID/stat from field 3 (state) on; empty where there is no /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    # Field 2, the command name, is in parentheses and may hold spaces: split after it.
    return stat.rpartition(")")[2].split()


def started_at(pid: int) -> int | None:
    """When the process started (clock ticks since boot); None if it is gone or unknowable.

    Recorded beside each detached pid so that `down` never signals a process that merely
    reuses the number: after a reboot a stale pid may well belong to a system daemon.
    """
    fields = _proc_stat(pid)
    try:
        return int(fields[19])  # field 22, starttime
    except (IndexError, ValueError):
        return None


def is_recorded_process(pid: int, recorded_start: int | None) -> bool:
    if recorded_start is None:
        return _alive(pid)  # recorded without /proc: the best we can tell
    return started_at(pid) == recorded_start and _alive(pid)


def stop_pid(pid: int, grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; reaps the child if it is ours."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if _wait_gone(pid, grace):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if not _wait_gone(pid, grace):
        raise ProcessError(f"pid {pid} survived SIGKILL for {grace:.0f}s")


def _wait_gone(pid: int, timeout: float) -> bool:
    """Wait until the process is gone (reaping it when it is our child)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def spawn(
    command: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        try:
            # Its own session: a Ctrl-C in the terminal reaches us alone, and we stop the
            # children in order (the API server before etcd); `make up` can also leave them
            # running after we exit.
            return subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=env,
            )
        except OSError as error:
            raise ProcessError(f"cannot run {command[0]}: {error}") from error


def tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a log, or "" when there is none."""
    text = log.read_text(errors="replace").splitlines() if log.exists() else []
    return "\n".join(text[-lines:])


def _failure(summary: str, log: Path) -> ProcessError:
    """One summary line (what the CLI prints), then the end of the process's log."""
    return ProcessError(f"{summary}; last lines of {log}:\n{tail(log)}")


def wait_until(
    ready: Callable[[], bool],
    process: subprocess.Popen[bytes],
    log: Path,
    what: str,
    timeout: float,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise _failure(f"{what} exited with code {process.returncode}", log)
        if ready():
            return
        time.sleep(0.2)
    raise _failure(f"{what} not ready after {timeout:.0f}s", log)


def get_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, context=context, timeout=2) as reply:
            return bool(reply.status == 200)
    # A server still starting refuses, resets, or answers 5xx (HTTPError is a URLError, which
    # is an OSError); HTTPException covers a connection cut mid-reply.
    except (OSError, http.client.HTTPException):
        return False


class Terminated(BaseException):
    """SIGTERM, raised where the program is, so that it unwinds (and cleans up) as on Ctrl-C."""


def raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated


@dataclass(frozen=True)
class Recorded:
    """A process started earlier, perhaps by another run: its name, pid and start time."""

    name: str
    pid: int
    start_time: int | None

    @classmethod
    def of(cls, name: str, pid: int) -> Recorded:
        return cls(name, pid, started_at(pid))

    def alive(self) -> bool:
        """The same process (pid and start time) still runs, and is not a zombie."""
        return is_recorded_process(self.pid, self.start_time)

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        if self.alive():
            stop_pid(self.pid, grace)

    def as_json(self) -> dict[str, object]:
        return {"name": self.name, "pid": self.pid, "start_time": self.start_time}

    @classmethod
    def from_json(cls, value: object) -> Recorded | None:
        if not isinstance(value, dict) or not isinstance(value.get("pid"), int):
            return None
        start = value.get("start_time")
        return cls(
            str(value.get("name", "")), value["pid"], start if isinstance(start, int) else None
        )


def cmdline(pid: int) -> str:
    """The command line of a process, with spaces between its arguments; "" when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def processes_matching(predicate: Callable[[int], bool]) -> list[int]:
    """Live processes, other than this one, for which `predicate(pid)` holds."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if predicate(int(entry.name)):
                    found.append(int(entry.name))
    return found


def port_busy(host: str, port: int) -> bool:
    """Whether something holds this address and port (a fixed port another run still has)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False
