"""Address arithmetic for subnets and ports: usable ranges, pools, the
lowest free address.

Pure functions; the API's ``allocation`` module takes and stores allocations.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Iterator

from overcast.model.types import AllocationPool

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_address(value: object) -> IPAddress:
    """An address as the API accepts it: a string in any standard notation, no
    IPv6 zone (``fe80::1%eth0``: an address of one host's link, meaningless in
    a subnet, and a second spelling of an address that escapes every equality
    check).  ``str()`` of the result is the canonical form.  ValueError if not."""
    if not isinstance(value, str) or "%" in value:
        raise ValueError(f"'{value}' is not a valid IP address")
    return ipaddress.ip_address(value)


def parse_network(value: object, strict: bool = True) -> IPNetwork:
    """A CIDR as the API accepts it (no zone, see ``parse_address``); with
    ``strict`` the host bits must be zero.  ValueError if not."""
    if not isinstance(value, str) or "%" in value:
        raise ValueError(f"'{value}' is not a valid IP subnet")
    return ipaddress.ip_network(value, strict=strict)


def address_at(net: IPNetwork, n: int) -> IPAddress:
    """The address ``n`` (an int) in the family of ``net``: ``::1``, not ``0.0.0.1``."""
    return ipaddress.IPv4Address(n) if net.version == 4 else ipaddress.IPv6Address(n)


def usable_range(net: IPNetwork) -> tuple[int, int]:
    """First and last assignable host address (as ints) of a network."""
    first, last = int(net.network_address), int(net.broadcast_address)
    if net.version == 4 and net.prefixlen <= 30:
        return first + 1, last - 1
    if net.version == 6 and net.prefixlen <= 126:
        return first + 1, last
    return first, last


def default_gateway(net: IPNetwork) -> str | None:
    lo, hi = usable_range(net)
    return str(address_at(net, lo)) if lo <= hi else None


def default_pools(net: IPNetwork, gateway: str | None) -> list[AllocationPool]:
    """The usable range minus the gateway, as Neutron computes it."""
    lo, hi = usable_range(net)
    ranges = [(lo, hi)]
    if gateway is not None:
        ranges = _exclude(ranges, int(ipaddress.ip_address(gateway)))
    return [AllocationPool(str(address_at(net, a)), str(address_at(net, b)))
            for a, b in ranges if a <= b]


def _exclude(ranges: list[tuple[int, int]], point: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in ranges:
        if a <= point <= b:
            out.extend(r for r in ((a, point - 1), (point + 1, b)) if r[0] <= r[1])
        else:
            out.append((a, b))
    return out


def pool_bounds(pool: AllocationPool) -> tuple[int, int]:
    return int(ipaddress.ip_address(pool.start)), int(ipaddress.ip_address(pool.end))


def ip_int(address: str) -> int:
    """An address as an integer (a fast path for the common, well-formed case)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        return int.from_bytes(socket.inet_pton(family, address), "big")
    except OSError:
        return int(ipaddress.ip_address(address))


def first_free(pools: Iterable[AllocationPool], used: set[str], version: int) -> str | None:
    """The lowest address of the pools that is not in ``used``."""
    used_ints = {ip_int(u) for u in used}
    for a, b in sorted(map(pool_bounds, pools)):
        for candidate in _ints_not_in(a, b, used_ints):
            return str(ipaddress.ip_address(candidate) if version == 4 else ipaddress.IPv6Address(candidate))
    return None


def _ints_not_in(a: int, b: int, used: set[int]) -> Iterator[int]:
    n = a
    while n <= b:
        if n not in used:
            yield n
        n += 1


def eui64_address(cidr: str, mac: str) -> str:
    """The address a host makes on a /64 from its MAC (SLAAC, RFC 4291's
    modified EUI-64): what Neutron gives a port on an automatic-address subnet."""
    b = bytes.fromhex(mac.replace(":", ""))
    iid = bytes([b[0] ^ 0x02, b[1], b[2], 0xFF, 0xFE, b[3], b[4], b[5]])
    net = ipaddress.ip_network(cidr)
    return str(ipaddress.ip_address(int(net.network_address) | int.from_bytes(iid, "big")))
