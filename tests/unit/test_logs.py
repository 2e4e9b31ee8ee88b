"""Log lines are JSON, one per line, with no terminal colour codes."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from clusterip_guard.telemetry.logs import JSONFormatter, configure_json_logging, log_fields


def test_uvicorns_coloured_copy_and_colour_codes_are_left_out() -> None:
    record = logging.makeLogRecord({
        "name": "uvicorn.error", "levelname": "INFO", "msg": "Uvicorn running on %s",
        "args": ("\x1b[1mhttps://0.0.0.0:8443\x1b[0m",),
        "color_message": "Uvicorn running on \x1b[1m%s\x1b[0m",
    })  # fmt: skip
    line = JSONFormatter().format(record)
    assert "\x1b" not in line
    assert "\\u001b" not in line
    entry = json.loads(line)
    assert entry["message"] == "Uvicorn running on https://0.0.0.0:8443"
    assert "color_message" not in entry


class _Writes(io.StringIO):
    """A stream that remembers each write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


@pytest.fixture
def json_logging() -> Iterator[_Writes]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.logThreads, logging.logProcesses)
    configure_json_logging("info")
    stream = _Writes()
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    yield stream
    root.handlers[:], level, logging.logThreads, logging.logProcesses = saved
    root.setLevel(level)


FIELDS = {"mode": "enforce", "verdict": "denied", "service": "web", "groups": ["dev"],
          "violations": ["spec.type: type NodePort opens a port on every node; use ClusterIP"],
          "user": "eve\x1b[31m"}  # fmt: skip


def test_a_line_made_directly_is_the_line_logging_makes(json_logging: _Writes) -> None:
    logger = logging.getLogger("clusterip_guard.server")
    log_fields(logger, logging.INFO, "denied shop/web", FIELDS)
    logger.info("denied shop/web", extra=FIELDS)
    direct, through_logging = (json.loads(line) for line in json_logging.getvalue().splitlines())
    assert direct.pop("time")[:4] == through_logging.pop("time")[:4]
    assert direct == through_logging
    assert direct["user"] == "eve"  # colour codes out, either way


def test_a_handler_of_the_loggers_own_gets_the_record(json_logging: _Writes) -> None:
    logger = logging.getLogger("clusterip_guard.server.test")
    seen: list[logging.LogRecord] = []

    class Remembering(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    handler = Remembering()
    logger.addHandler(handler)
    try:
        log_fields(logger, logging.INFO, "denied shop/web", FIELDS)
    finally:
        logger.removeHandler(handler)
    assert [record.service for record in seen] == ["web"]  # type: ignore[attr-defined]
    assert json.loads(json_logging.getvalue())["service"] == "web"  # and it propagated


def test_lines_of_one_loop_turn_leave_in_one_write(json_logging: _Writes) -> None:
    logger = logging.getLogger("clusterip_guard.server")

    async def three_lines() -> int:
        for verdict in ("denied", "warned"):
            log_fields(logger, logging.INFO, verdict, FIELDS)
        logger.info("a record")
        held = len(json_logging.writes)
        await asyncio.sleep(0)  # the turn ends
        return held

    assert asyncio.run(three_lines()) == 0
    assert len(json_logging.writes) == 1
    assert len(json_logging.getvalue().splitlines()) == 3


def test_outside_a_loop_a_line_is_written_at_once(json_logging: _Writes) -> None:
    logging.getLogger("clusterip_guard.cli").info("scanned")
    assert json.loads(json_logging.getvalue())["message"] == "scanned"


def test_a_line_held_when_a_loop_ended_goes_out_with_the_next_loops_lines(
    json_logging: _Writes,
) -> None:
    logger = logging.getLogger("clusterip_guard.server")
    ended = asyncio.new_event_loop()
    ended.call_soon(log_fields, logger, logging.INFO, "denied", FIELDS)
    ended.call_soon(ended.stop)  # before the flush the line scheduled can run
    ended.run_forever()
    ended.close()
    assert json_logging.getvalue() == ""  # held

    async def one_line() -> None:
        log_fields(logger, logging.INFO, "warned", FIELDS)
        await asyncio.sleep(0)

    asyncio.run(one_line())
    messages = [json.loads(line)["message"] for line in json_logging.getvalue().splitlines()]
    assert messages == ["denied", "warned"]
