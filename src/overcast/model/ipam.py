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


# subnet pools: prefix sets, free space, allocation (Neutron's SubnetAllocator) --------
def compact(prefixes: Iterable[str]) -> tuple[str, ...]:
    """CIDRs of one family merged where they overlap or adjoin, in address order
    (what Neutron stores as a subnet pool's prefixes)."""
    nets = [ipaddress.ip_network(p) for p in prefixes]
    return tuple(str(n) for n in ipaddress.collapse_addresses(nets))  # type: ignore[type-var]


def _nets(cidrs: Iterable[str]) -> list[IPNetwork]:
    return [ipaddress.ip_network(c) for c in cidrs]


def free_blocks(prefixes: Iterable[str], used: Iterable[str]) -> list[IPNetwork]:
    """The largest blocks of ``prefixes`` that no CIDR of ``used`` touches, in address order."""
    free = _nets(compact(prefixes))
    for u in _nets(used):
        kept: list[IPNetwork] = []
        for f in free:
            if f.version != u.version or not f.overlaps(u):
                kept.append(f)
            elif f.prefixlen < u.prefixlen:
                kept.extend(f.address_exclude(u))  # type: ignore[arg-type]
        free = kept
    return [ipaddress.ip_network(c) for c in compact(str(f) for f in free)]


def allocate_any(free: list[IPNetwork], prefixlen: int) -> str | None:
    """A CIDR of ``prefixlen`` from the free blocks, as Neutron picks it: from the
    smallest block it fits in (the lowest such), at that block's start."""
    for block in sorted(free, key=lambda b: -b.prefixlen):  # stable: address order within
        if block.prefixlen <= prefixlen:
            return str(ipaddress.ip_network((block.network_address, prefixlen)))
    return None


def within_one(free: list[IPNetwork], cidr: str) -> bool:
    """Whether ``cidr`` lies wholly in one free block."""
    net = ipaddress.ip_network(cidr)
    return any(b.version == net.version and b.prefixlen <= net.prefixlen and b.overlaps(net)
               for b in free)


def overlapping(a: Iterable[str], b: Iterable[str]) -> bool:
    """Whether any CIDR of ``a`` overlaps any of ``b``."""
    bs = _nets(b)
    return any(x.version == y.version and x.overlaps(y) for x in _nets(a) for y in bs)


def covers(outer: Iterable[str], inner: Iterable[str]) -> bool:
    """Whether every address of ``inner`` is in ``outer``."""
    blocks = _nets(compact(outer))
    return all(any(b.version == n.version and b.prefixlen <= n.prefixlen and b.overlaps(n)
                   for b in blocks) for n in _nets(inner))


def remove_prefixes(prefixes: Iterable[str], removed: Iterable[str]) -> tuple[str, ...]:
    """``prefixes`` without the addresses of ``removed``, compacted."""
    return tuple(str(n) for n in free_blocks(prefixes, removed))


QUOTA_UNIT = {4: 32, 6: 64}  # a pool's default_quota counts /32s (IPv4) or /64s (IPv6)


def quota_units(cidrs: Iterable[str]) -> float:
    """The default_quota units the CIDRs take (Neutron: 2 ** (unit - prefixlen))."""
    return sum(2.0 ** (QUOTA_UNIT[n.version] - n.prefixlen) for n in _nets(cidrs))
