"""Log lines are JSON, one per line, with no terminal colour codes."""

from __future__ import annotations

import json
import logging

from clusterip_guard.server.logs import JSONFormatter


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
