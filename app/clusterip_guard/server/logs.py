"""Structured JSON logs, one object per line, for the webhook server and the CLI.

A denial is logged on the API server's write path, so a line is made cheaply: records skip
the thread and process lookups no line shows, the time is formatted once per second, one
encoder serves every line, and the lines written during one event-loop turn leave in one
write at the end of it (at once, outside a loop; and at exit, by logging's own shutdown).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from typing import Any, TextIO

# LogRecord attributes that are not user-supplied `extra` fields; and uvicorn's copy of its
# message with terminal colours in it, which a log line never carries.
_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({})).keys()) | {
    "message",
    "asctime",
    "color_message",
}
# Terminal control sequences (colours, cursor moves), should any reach a message.
_TERMINAL_CODES = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_ENCODER = json.JSONEncoder(default=str)


def _plain(value: Any) -> Any:
    # The escape character first: a log line is on every denial's path, and almost never
    # has one.
    if isinstance(value, str) and "\x1b" in value:
        return _TERMINAL_CODES.sub("", value)
    return value


class JSONFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._second_text = ""

    def _time(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text}.{int((created - second) * 1000):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self._time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": _plain(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                entry[key] = _plain(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _ENCODER.encode(entry)


class TurnBufferedHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes the lines of one event-loop turn together at its end.

    One write and flush per turn instead of one per line: under load one turn answers
    several reviews. Outside a running loop (startup, the CLI) each line is written at once.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self._held: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._held.append(line)
            self.flush()
            return
        if not self._held:
            loop.call_soon(self.flush)
        self._held.append(line)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self._held:
                text = "".join(self._held)
                self._held.clear()
                try:
                    self.stream.write(text)
                except Exception:  # a closed or full stream must not stop the server
                    return
            super().flush()


def configure_json_logging(level: str = "info") -> None:
    # No line shows the thread or process: skip looking them up for every record (the
    # logging HOWTO's "Optimization").
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = TurnBufferedHandler()
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn installs its own handlers; send its records through ours instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
