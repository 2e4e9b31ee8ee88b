"""Addresses and ranges as the components that act on them read them, in one grammar for both
engines (docs/design.md, "What counts as exposed").

kube-proxy and the cloud controllers parse Service addresses loosely (Go's netutils
ParseIPSloppy / ParseCIDRSloppy): IPv4 octets and prefix lengths with leading zeros are decimal
(`192.0.2.010` is 192.0.2.10, `000.000.000.000/00` is 0.0.0.0/0), and an IPv4-mapped range
means the IPv4 range under it (`::ffff:0.0.0.0/96` is 0.0.0.0/0, as the API server's own
warning says). Objects stored before StrictIPCIDRValidation, and writes through services/status
(which do not validate the source-range annotation), still carry such values.

The grammar is written once, here, as patterns both Python's `re` and RE2 (CEL's `matches`)
read the same way; `read_ip` and `read_range` read it in Python, and `cel_ip` and `cel_range`
write the same reading as CEL for the admission policies (the native engine's and the
Service-range policy the webhook engine installs beside it). What neither can read is None in
Python and '' in CEL, and the caller counts it as exposure, never as nothing. Pure.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final

from clusterip_guard.core.cel_literals import text

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# An IPv4 address written loosely: four dotted decimal parts, leading zeros allowed, optionally
# IPv4-mapped in its dotted spelling. Any other spelling of a mapped address, and an IPv6 zone,
# is refused by CEL's ip() and cidr(), so it is unreadable in both engines.
LOOSE_IPV4: Final = r"^(::[fF]{4}:)?[0-9]{1,10}\.[0-9]{1,10}\.[0-9]{1,10}\.[0-9]{1,10}$"
MAPPED_PREFIX: Final = "::ffff:"
PREFIX_LENGTH: Final = r"^[0-9]{1,10}$"
# A mapped range's prefix counts the 96 bits of the mapping.
MAPPED_BITS: Final = 96
# How much of a value that cannot be read a message shows.
SHOWN_CHARACTERS: Final = 64

_LOOSE_IPV4 = re.compile(LOOSE_IPV4)
_PREFIX_LENGTH = re.compile(PREFIX_LENGTH)


def shown(text: str) -> str:
    """A value as messages show it: cut after SHOWN_CHARACTERS (a denial has a size limit)."""
    return text if len(text) <= SHOWN_CHARACTERS else text[:SHOWN_CHARACTERS] + "..."


def _is_mapped_dotted(text: str) -> bool:
    return bool(_LOOSE_IPV4.match(text)) and text.lower().startswith(MAPPED_PREFIX)


def read_ip(text: str) -> IPAddress | None:
    """The address `text` names, read loosely; None when it is not one we can read."""
    if _LOOSE_IPV4.match(text):
        dotted = text[len(MAPPED_PREFIX) :] if _is_mapped_dotted(text) else text
        text = ".".join(str(int(octet)) for octet in dotted.split("."))
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and (
        address.ipv4_mapped is not None or address.scope_id is not None
    ):
        return None
    return address


def read_range(text: str) -> IPNetwork | None:
    """The range `text` names (a bare address is a range of one), read loosely and masked;
    None when it is not one we can read."""
    address_text, slash, prefix_text = text.partition("/")
    if slash and not _PREFIX_LENGTH.match(prefix_text):
        return None
    address = read_ip(address_text)
    if address is None:
        return None
    mapped = _is_mapped_dotted(address_text)
    prefix = int(prefix_text) if slash else address.max_prefixlen + (MAPPED_BITS if mapped else 0)
    if mapped:
        if not MAPPED_BITS <= prefix <= MAPPED_BITS + 32:
            return None
        prefix -= MAPPED_BITS
    if prefix > address.max_prefixlen:
        return None
    return ipaddress.ip_network(f"{address}/{prefix}", strict=False)


# --- the same reading, as CEL ------------------------------------------------------------------
# `ip()` and `cidr()` read only strict text, so the loose forms are rewritten first. Each function
# takes a CEL string expression and gives one: the canonical text, or '' when it cannot be read.


def let(name: str, value: str, body: str) -> str:
    """CEL: `body` with `name` bound to `value`, computed once. Kubernetes' admission policies
    have no `cel.bind`; a map over a list of one names the value the same way."""
    return f"[{value}].map({name}, {body})[0]"


def _cel_strict_ip(value: str) -> str:
    """CEL: `value` (a bound name) with a loose IPv4 spelling rewritten; else unchanged."""
    dotted = (
        f"({value}.lowerAscii().startsWith({text(MAPPED_PREFIX)}) ? "
        f"{value}.substring({len(MAPPED_PREFIX)}) : {value})"
    )
    return (
        f"({value}.matches({text(LOOSE_IPV4)}) ? "
        f"{dotted}.split('.').map(o, string(int(o))).join('.') : {value})"
    )


def cel_ip(value: str) -> str:
    """CEL: the canonical text of the address `value` names, or ''."""
    return (
        let("s", _cel_strict_ip(value), "isIP(s) ? string(ip(s)) : ''")
        if value.isidentifier()
        else let("v", value, cel_ip("v"))
    )


def cel_range(value: str) -> str:
    """CEL: the canonical text of the range `value` names (masked), or ''."""
    if not value.isidentifier():
        return let("w", value, cel_range("w"))
    mapped = (
        f"(parts[0].matches({text(LOOSE_IPV4)}) && "
        f"parts[0].lowerAscii().startsWith({text(MAPPED_PREFIX)}))"
    )
    prefix = (
        "(size(parts) == 1 ? (ip(a).family() == 4 ? 32 : 128) + (mapped ? "
        f"{MAPPED_BITS} : 0) : int(parts[1]))"
    )
    written = (
        f"mapped ? (p >= {MAPPED_BITS} && p <= {MAPPED_BITS + 32} ? a + '/' + "
        f"string(p - {MAPPED_BITS}) : '') : a + '/' + string(p)"
    )
    masked = let("t", written, "t != '' && isCIDR(t) ? string(cidr(t).masked()) : ''")
    readable = let(
        "a", cel_ip("parts[0]"), "a == '' ? '' : " + let("mapped", mapped, let("p", prefix, masked))
    )
    return let(
        "parts",
        f"{value}.split('/')",
        f"size(parts) > 2 || (size(parts) == 2 && !parts[1].matches({text(PREFIX_LENGTH)}))"
        f" ? '' : {readable}",
    )


def cel_shown(value: str) -> str:
    """CEL: `value` as `shown` shows it."""
    return (
        f"({value}.size() <= {SHOWN_CHARACTERS} ? {value} : "
        f"{value}.substring(0, {SHOWN_CHARACTERS}) + '...')"
    )
