"""When a test needs something the machine lacks (root, a node, a tool): a skip that says why,
shown in pytest's summary; under CI=true, where the project must bring everything it needs
itself, a failure instead."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def skip_or_fail(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)
