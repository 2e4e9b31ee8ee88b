"""Addresses and ranges read loosely, as kube-proxy and the cloud controllers read them
(core/addresses.py). The CEL half of the same grammar is held equal to this one on the real API
server (tests/e2e/test_addresses_e2e.py)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clusterip_guard.core.addresses import read_ip, read_range, shown


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("203.000.113.007", "203.0.113.7"),
        ("010.0.0.1", "10.0.0.1"),
        ("010.000.000.050", "10.0.0.50"),
        ("::ffff:192.0.2.10", "192.0.2.10"),
        ("::FFFF:192.0.2.010", "192.0.2.10"),
        ("2001:DB8::7", "2001:db8::7"),
        ("2001:db8:0:0::7", "2001:db8::7"),
        ("::ffff:c000:20a", None),  # mapped in another spelling: CEL's ip() refuses it
        ("fe80::1%eth0", None),  # a zone
        ("not-an-ip", None),
        ("1.2.3", None),
        ("256.0.0.1", None),
        ("", None),
        (" 192.0.2.1", None),
    ],
)
def test_an_address_is_read_as_kube_proxy_reads_it(text: str, address: str | None) -> None:
    parsed = read_ip(text)
    assert (str(parsed) if parsed is not None else None) == address


@pytest.mark.parametrize(
    ("text", "network"),
    [
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("0.0.0.0/00", "0.0.0.0/0"),
        ("000.000.000.000/0", "0.0.0.0/0"),
        ("010.1.2.3/008", "10.0.0.0/8"),
        ("::ffff:0.0.0.0/96", "0.0.0.0/0"),
        ("::ffff:198.51.100.0/120", "198.51.100.0/24"),
        ("::ffff:198.51.100.7", "198.51.100.7/32"),
        ("192.0.2.7", "192.0.2.7/32"),
        ("2001:db8::/032", "2001:db8::/32"),
        ("2001:db8::1", "2001:db8::1/128"),
        ("::ffff:0.0.0.0/95", None),  # a mapped range must cover the mapping
        ("::ffff:0:0/96", None),  # mapped in another spelling
        ("10.0.0.0/33", None),
        ("10.0.0.0/", None),
        ("10.0.0.0/8/8", None),
        ("10.0.0.0/-1", None),
        ("garbage", None),
    ],
)
def test_a_range_is_read_as_the_cloud_controllers_read_it(text: str, network: str | None) -> None:
    parsed = read_range(text)
    assert (str(parsed) if parsed is not None else None) == network


def _loosely(octets: list[int], zeros: list[int]) -> str:
    return ".".join("0" * pad + str(octet) for octet, pad in zip(octets, zeros, strict=True))


@given(
    octets=st.lists(st.integers(0, 255), min_size=4, max_size=4),
    zeros=st.lists(st.integers(0, 3), min_size=4, max_size=4),
    mapped=st.booleans(),
    prefix=st.integers(0, 32),
    prefix_zeros=st.integers(0, 2),
)
def test_every_loose_spelling_reads_as_the_address_it_spells(
    octets: list[int], zeros: list[int], mapped: bool, prefix: int, prefix_zeros: int
) -> None:
    text = ("::ffff:" if mapped else "") + _loosely(octets, zeros)
    address = ipaddress.IPv4Address(".".join(map(str, octets)))
    assert read_ip(text) == address
    written_prefix = "0" * prefix_zeros + str(prefix + (96 if mapped else 0))
    assert read_range(f"{text}/{written_prefix}") == ipaddress.ip_network(
        f"{address}/{prefix}", strict=False
    )


def test_a_long_value_is_shown_cut() -> None:
    assert shown("x" * 64) == "x" * 64
    assert shown("x" * 65) == "x" * 64 + "..."
