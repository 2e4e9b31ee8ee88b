"""What the commands share: argument types checked at parse time, defaults from settings."""

from __future__ import annotations

import argparse
import dataclasses
import math
from typing import Any

MAX_PORT = 65535


class UsageError(Exception):
    """Something the user can fix in how the command was called; one line, exit 2."""


def default_of(settings: type[Any], name: str) -> Any:
    """The default a settings dataclass gives `name`: argparse shows it, it never restates it."""
    for field in dataclasses.fields(settings):
        if field.name == name:
            if field.default is not dataclasses.MISSING:
                return field.default
            if field.default_factory is not dataclasses.MISSING:
                return field.default_factory()
    raise KeyError(f"{settings.__name__} has no default for {name}")


def port(text: str) -> int:
    """A TCP port to listen on, 1-65535."""
    number = _integer(text)
    if not 1 <= number <= MAX_PORT:
        raise argparse.ArgumentTypeError(f"{text} is not a port (1-{MAX_PORT})")
    return number


def port_or_zero(text: str) -> int:
    """A TCP port, or 0 for "off"."""
    number = _integer(text)
    if not 0 <= number <= MAX_PORT:
        raise argparse.ArgumentTypeError(f"{text} is not a port (0 turns it off, or 1-{MAX_PORT})")
    return number


def positive_seconds(text: str) -> float:
    seconds = _seconds(text)
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"{text} must be more than 0 seconds")
    return seconds


def non_negative_seconds(text: str) -> float:
    seconds = _seconds(text)
    if not seconds >= 0:
        raise argparse.ArgumentTypeError(f"{text} must be 0 seconds or more")
    return seconds


def non_negative_integer(text: str) -> int:
    number = _integer(text)
    if number < 0:
        raise argparse.ArgumentTypeError(f"{text} must be 0 or more")
    return number


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(seconds):  # nan and inf parse as floats
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
    return seconds
