"""IPv6 router advertisements (RFC 4861), sans-IO: the bytes of an RA for
one router interface, and the recognition of a router solicitation.

Neutron's ``ipv6_ra_mode`` decides the flags: ``slaac`` advertises the
prefix for autonomous configuration (A flag), ``dhcpv6-stateless`` the same
plus the O flag (other configuration by DHCPv6), ``dhcpv6-stateful`` the M
flag and the prefix without the A flag (addresses by DHCPv6).  Every RA
carries the router's link-layer address and the link's MTU.
"""

from __future__ import annotations

import ipaddress
import struct

ROUTER_SOLICITATION = 133
ROUTER_ADVERTISEMENT = 134
MODES = ("slaac", "dhcpv6-stateless", "dhcpv6-stateful")
ROUTER_LIFETIME = 1800  # seconds (the RFC's default: 3 x MaxRtrAdvInterval)
VALID_LIFETIME = 86400
PREFERRED_LIFETIME = 14400
HOP_LIMIT = 64


def advertisement(mac: str, prefixes: list[str], mtu: int, mode: str,
                  lifetime: int = ROUTER_LIFETIME) -> bytes:
    """The ICMPv6 message (checksum 0: the kernel fills it in for raw
    ICMPv6 sockets) advertising ``prefixes`` (each ``net/len``)."""
    if mode not in MODES:
        raise ValueError(f"ipv6_ra_mode {mode!r} is not one of {', '.join(MODES)}")
    flags = {"slaac": 0, "dhcpv6-stateless": 0x40, "dhcpv6-stateful": 0x80}[mode]
    body = struct.pack("!BBHBBHII", ROUTER_ADVERTISEMENT, 0, 0, HOP_LIMIT, flags, lifetime, 0, 0)
    body += struct.pack("!BB", 1, 1) + bytes.fromhex(mac.replace(":", ""))  # source link-layer
    body += struct.pack("!BBHI", 5, 1, 0, mtu)  # MTU
    for text in prefixes:
        net = ipaddress.IPv6Network(text, strict=False)
        # L (on link) always; A (autonomous) unless addresses come from stateful DHCPv6
        pflags = 0x80 | (0x40 if mode != "dhcpv6-stateful" else 0)
        body += struct.pack("!BBBBIII", 3, 4, net.prefixlen, pflags, VALID_LIFETIME,
                            PREFERRED_LIFETIME, 0) + net.network_address.packed
    return body


def is_solicitation(data: bytes) -> bool:
    """True for a router solicitation (the ICMPv6 message, without the IPv6 header)."""
    return len(data) >= 8 and data[0] == ROUTER_SOLICITATION and data[1] == 0
