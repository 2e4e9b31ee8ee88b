"""What the commands share: argument types checked at parse time, defaults from settings."""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import math
import re
import urllib.parse
from typing import Any

from clusterip_guard.cluster.kubeconfig import PRECEDENCE_HELP
from clusterip_guard.core.names import CONFIGURATION_NAME, INSTALL_NAMESPACE
from clusterip_guard.core.types import MODES

MAX_PORT = 65535
# RFC 1123, as Kubernetes checks names: a label is at most 63 characters, a name 253.
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
MAX_DNS_NAME = 253


class UsageError(Exception):
    """Something the user can fix in how the command was called; one line, exit 2."""


def add_cluster_flags(parser: argparse.ArgumentParser) -> None:
    """--kubeconfig and --context, as every command that talks to a cluster has them."""
    parser.add_argument("--kubeconfig", help=PRECEDENCE_HELP)
    parser.add_argument("--context", help="kubeconfig context (default: its current-context)")


def add_installation_flags(parser: argparse.ArgumentParser) -> None:
    """What names and scopes an installation's admission objects, for the commands that
    render or keep them without a bootstrap record (render, sync)."""
    parser.add_argument(
        "--name",
        type=dns_name,
        default=CONFIGURATION_NAME,
        help="prefix of the admission objects' names (default: %(default)s)",
    )
    parser.add_argument(
        "--namespace",
        type=dns_label,
        default=INSTALL_NAMESPACE,
        help="the installation's namespace, never judged (default: %(default)s)",
    )
    parser.add_argument(
        "--default-mode",
        choices=list(MODES),
        default="off",
        help="mode of namespaces without the clusterip-guard.io/mode label (default: %(default)s)",
    )
    parser.add_argument(
        "--exclude-namespace",
        action="append",
        type=dns_label,
        metavar="NS",
        default=[],
        help="never judge this namespace too (repeat)",
    )


def default_of(settings: type[Any], name: str) -> Any:
    """The default a settings dataclass gives `name`: argparse shows it, it never restates it."""
    for field in dataclasses.fields(settings):
        if field.name == name:
            if field.default is not dataclasses.MISSING:
                return field.default
            if field.default_factory is not dataclasses.MISSING:
                return field.default_factory()
    raise KeyError(f"{settings.__name__} has no default for {name}")


MAX_PAGE_SIZE = 5000


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


def page_size(text: str) -> int:
    """Objects per list request: 1 to 5,000 (what the API server caps a page at, roughly)."""
    number = _integer(text)
    if not 1 <= number <= MAX_PAGE_SIZE:
        raise argparse.ArgumentTypeError(f"{text} is not a page size (1-{MAX_PAGE_SIZE})")
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


def integer_between(low: int, high: int) -> Any:
    """A whole number from `low` to `high`, as an argparse type."""

    def parse(text: str) -> int:
        number = _integer(text)
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"{text} is not from {low} to {high}")
        return number

    return parse


def dns_label(text: str) -> str:
    """A Kubernetes name that must be a DNS label (a namespace, a Service)."""
    if not _DNS_LABEL.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a valid name: lowercase letters, digits and '-', at most 63, "
            f"starting and ending with a letter or digit"
        )
    return text


def dns_name(text: str) -> str:
    """A Kubernetes object name that may hold dots (a Secret, a webhook configuration)."""
    if len(text) > MAX_DNS_NAME or not all(_DNS_LABEL.fullmatch(p) for p in text.split(".")):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a valid name: lowercase letters, digits, '-' and '.', at most "
            f"{MAX_DNS_NAME}"
        )
    return text


def host_name(text: str) -> str:
    """A DNS name for a certificate (`*.` may lead): not an IP address, which is --ip's."""
    if _is_ip(text):
        raise argparse.ArgumentTypeError(f"{text} is an IP address; give it with --ip")
    name = text.removeprefix("*.").lower()
    if len(name) > MAX_DNS_NAME or not all(_DNS_LABEL.fullmatch(p) for p in name.split(".")):
        raise argparse.ArgumentTypeError(f"{text!r} is not a valid DNS name")
    return text


def ip_address(text: str) -> str:
    if not _is_ip(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address")
    return text


def listen_address(text: str) -> str:
    """Where to listen: an IP address (0.0.0.0, ::) or a host name."""
    if _is_ip(text):
        return text
    name = text.rstrip(".").lower()
    if not name or len(name) > MAX_DNS_NAME:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address or a host name")
    if not all(_DNS_LABEL.fullmatch(p) for p in name.split(".")):
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address or a host name")
    return text


def https_url(text: str) -> str:
    """A webhook URL as the API server accepts one: https, a host, no query or fragment."""
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port  # reading it checks it
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not a URL: {error}") from None
    if parts.scheme != "https":
        raise argparse.ArgumentTypeError(f"{text!r} must be an https:// URL")
    if not parts.hostname:
        raise argparse.ArgumentTypeError(f"{text!r} names no host")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise argparse.ArgumentTypeError(
            f"{text!r}: a webhook URL holds no user, query or fragment (the API server "
            f"refuses them)"
        )
    if port == 0:
        raise argparse.ArgumentTypeError(f"{text!r}: port 0 is not a port")
    return text


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


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
