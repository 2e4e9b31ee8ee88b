"""Structured JSON logs, one object per line, for the webhook server and the CLI.

A denial is logged on the API server's write path, so a line is made cheaply: records skip
the thread and process lookups no line shows, the time is formatted once per second, one
encoder serves every line, and the lines written during one event-loop turn leave in one
write at the end of it (at once, outside a loop; and at exit, by logging's own shutdown).
`log_fields`, for the decision lines, builds the line itself, without a LogRecord, when the
line would go to that handler alone: the same line, at about half the cost.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Iterable
from typing import Any, TextIO

import orjson

# LogRecord attributes that are not user-supplied `extra` fields; and uvicorn's copy of its
# message with terminal colours in it, which a log line never carries.
_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({})).keys()) | {
    "message",
    "asctime",
    "color_message",
}
# Terminal control sequences (colours, cursor moves), should any reach a message.
_TERMINAL_CODES = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def _encoded(entry: dict[str, Any]) -> str:
    """One line of JSON: orjson (the decision lines are on the API server's path), or json
    for what orjson refuses (an integer past 64 bits)."""
    try:
        return orjson.dumps(entry, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(entry, default=str)


def _plain(value: Any) -> Any:
    # The escape character first: a log line is on every denial's path, and almost never
    # has one.
    if isinstance(value, str) and "\x1b" in value:
        return _TERMINAL_CODES.sub("", value)
    return value


class _Clock:
    """UTC timestamps with milliseconds, the seconds part formatted once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._second_text = ""

    def text(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text}.{int((created - second) * 1000):03d}Z"


_CLOCK = _Clock()


def _entry(
    created: float, level: str, logger: str, message: str, fields: Iterable[tuple[str, Any]]
) -> dict[str, Any]:
    """A line's object: when, how grave, whose, what, then the fields; no colour codes."""
    entry: dict[str, Any] = {
        "time": _CLOCK.text(created),
        "level": level.lower(),
        "logger": logger,
        "message": _plain(message),
    }
    for key, value in fields:
        entry[key] = _plain(value)
    return entry


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extra = (
            (key, value)
            for key, value in vars(record).items()
            if key not in _RECORD_FIELDS and not key.startswith("_")
        )
        entry = _entry(record.created, record.levelname, record.name, record.getMessage(), extra)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _encoded(entry)


class TurnBufferedHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes the lines of one event-loop turn together at its end.

    One write and flush per turn instead of one per line: under load one turn answers
    several reviews. Outside a running loop (startup, the CLI) each line is written at once.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self._held: list[str] = []
        self._flush_on: asyncio.AbstractEventLoop | None = None  # the loop a flush waits on

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.write_line(line)

    def write_line(self, line: str) -> None:
        """A line made elsewhere (`log_fields`), written as `emit` writes a record's. Under
        the handler's lock, as `emit` is, so a flush from another thread loses no line."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self.lock:  # type: ignore[union-attr]
            if loop is not None and self._flush_on is not loop:
                loop.call_soon(self.flush)
                self._flush_on = loop
            self._held.append(line + self.terminator)
        if loop is None:
            self.flush()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._flush_on = None
            if self._held:
                text = "".join(self._held)
                self._held.clear()
                try:
                    self.stream.write(text)
                except Exception:  # a closed or full stream must not stop the server
                    return
            super().flush()


def _reaches_only_the_root(logger: logging.Logger) -> bool:
    """Whether a record of `logger` meets no handler before the root's."""
    node: logging.Logger | None = logger
    while node is not None and node is not logging.root:
        if node.handlers or not node.propagate:
            return False
        node = node.parent
    return node is logging.root


def log_fields(logger: logging.Logger, level: int, message: str, fields: dict[str, Any]) -> None:
    """`logger.log(level, message, extra=fields)`, made directly into our JSON line when
    nothing but our own handler would see the record (no handler or filter of the logger's
    own, the root's handler ours and unfiltered); through logging otherwise."""
    if not logger.isEnabledFor(level):
        return
    handlers = logging.root.handlers
    handler = handlers[0] if len(handlers) == 1 else None
    if (
        not isinstance(handler, TurnBufferedHandler)
        or not isinstance(handler.formatter, JSONFormatter)
        or handler.filters
        or level < handler.level
        or logger.filters
        or not _reaches_only_the_root(logger)
    ):
        logger.log(level, message, extra=fields)
        return
    entry = _entry(time.time(), logging.getLevelName(level), logger.name, message, fields.items())
    try:
        line = _encoded(entry)
    except Exception:  # as logging does with a record it cannot format: report, go on
        logger.log(level, message, extra=fields)
        return
    handler.write_line(line)


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
