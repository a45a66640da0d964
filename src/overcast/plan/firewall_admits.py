"""What a compiled ruleset admits, and which conntrack entries it no longer
does.  Pure, no I/O (``docs/firewall.md``, "What a rule change does to
existing connections").

:func:`admits` answers "does this ruleset admit this flow for this tag and
direction" the way the inet chains decide a new connection: the constant
accepts a booting guest needs (DHCP, DHCPv6, neighbour discovery), then one
lookup per rule shape in the sets of the direction and family, keyed by the
tag, the remote address, the protocol and the destination port (``th
dport``) or, for ICMP, the first 16 bits of its header (``th sport``: type
<< 8 | code).  It reads the elements of an :class:`NftRuleset` (what the
compiler wrote), never the kernel.

After a change that removes elements, :func:`swept_zones` says which
networks' conntrack zones to look at (none when nothing was removed) and
:func:`condemned` which of their entries the new ruleset no longer admits:
an entry whose original source is a local port with port security and
whose egress rules do not admit it, or whose original destination is one
whose ingress rules do not.  A side is a local port only when its address
is that port's fixed IP or host-length allowed address pair, and no other
local port's: a wider pair (0.0.0.0/0 for VRRP) covers addresses whose
frames never reach the port, so it never condemns an entry.  Everything else stays (an entry still admitted
by another rule, or by what remains of a rule's range; a port without port
security; a stateless port, whose rules meet every packet anyway).
"""

from __future__ import annotations

import functools
import ipaddress
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from overcast.plan.firewall_chains import (
    CLOSED_TIMEOUT,
    FIELDS,
    ICMP,
    KINDS,
    STATELESS,
    closed_set,
    sg_set,
)
from overcast.plan.names import FW_TABLE
from overcast.plan.subsystems.firewall_records import NftElement, NftRuleset

Span = tuple[int, int]  # inclusive
SETS = {(d, v): tuple((k, sg_set(d, v, k)) for k in KINDS) for d in ("ingress", "egress") for v in (4, 6)}
RULE_SETS = {name: kind for kinds in SETS.values() for kind, name in kinds}  # set -> shape
ADDRESS_SETS = {"ip4_host": 4, "ip6_host": 6, "ip4_ok": 4, "ip6_ok": 6}  # a port's addresses
PORT_SETS = ("tag", *ADDRESS_SETS)  # a port's tag and addresses: a removal may close access
TCP, UDP = 6, 17
# the constant accepts of the inet chains (firewall_chains._sg_rules), per direction and family:
# (protocol, source port, destination port) for UDP, ICMPv6 types
CONSTANT_UDP = {("egress", 4): (68, 67), ("egress", 6): (546, 547),
                ("ingress", 4): (67, 68), ("ingress", 6): (547, 546)}
CONSTANT_ND = {"egress": frozenset((133, 135, 136, 131, 132, 143)),
               "ingress": frozenset((130, 134, 135, 136))}


@dataclass(frozen=True, slots=True, order=True)
class Flow:
    """A conntrack entry's original direction, in zone ``zone``.  For
    ICMP/ICMPv6 ``sport`` is type << 8 | code and ``dport`` the echo id (as
    the chains read the header's first 16 bits with ``th sport``)."""

    zone: int
    version: int  # 4 | 6
    src: str
    dst: str
    proto: int
    sport: int = 0
    dport: int = 0

    def render(self) -> str:
        return f"zone {self.zone} {self.src}:{self.sport} > {self.dst}:{self.dport} proto {self.proto}"


@dataclass(frozen=True)
class Ruleset:
    """The rule elements of a ruleset indexed by (set, tag): each element as
    the spans of its fields but the tag, in the order address, protocol,
    port (whatever order the set's key has: ``firewall_chains.FIELDS``)."""

    by_set: Mapping[tuple[str, int], tuple[tuple[Span, ...], ...]]

    @classmethod
    def of(cls, ruleset: NftRuleset) -> Ruleset:
        by_set: dict[tuple[str, int], list[tuple[Span, ...]]] = {}
        for e in ruleset.elements:
            if e.set in RULE_SETS and e.family == "inet":
                named = dict(zip(FIELDS[RULE_SETS[e.set]], _fields(e), strict=True))
                tag = named.pop("tag")[0]
                by_set.setdefault((e.set, tag), []).append(
                    tuple(named[f] for f in ("addr", "proto", "port") if f in named))
        return cls({k: tuple(v) for k, v in by_set.items()})


def admits(rules: Ruleset, tag: int, direction: str, flow: Flow) -> bool:
    """Whether the chain of ``direction`` accepts ``flow`` as a new
    connection for the group set ``tag``: its remote end is the flow's
    destination (egress) or source (ingress)."""
    version, proto, sport, dport = flow.version, flow.proto, flow.sport, flow.dport
    remote = flow.dst if direction == "egress" else flow.src
    if proto == UDP and CONSTANT_UDP[(direction, version)] == (sport, dport):
        return True
    if version == 6 and proto == ICMP[6] and sport >> 8 in CONSTANT_ND[direction]:
        return True
    packet = {"addr": _address(remote)[1], "proto": proto}
    for kind, name in SETS[(direction, version)]:
        if kind.startswith("icmp") and proto != ICMP[version]:
            continue  # as the chain: only ICMP meets the ICMP sets
        packet["port"] = sport if kind.startswith("icmp") else dport  # icmp: type << 8 | code
        key = tuple(packet[f] for f in ("addr", "proto", "port") if f in FIELDS[kind])
        for spans in rules.by_set.get((name, tag), ()):
            if all(lo <= v <= hi for v, (lo, hi) in zip(key, spans, strict=True)):
                return True
    return False


@dataclass(frozen=True)
class LocalPort:
    tap: str
    tag: int
    prefixes: tuple[tuple[int, int, int], ...]  # its allowed source addresses: (version, first, last)


@dataclass(frozen=True)
class Ports:
    """The local ports with port security of a ruleset, by conntrack zone."""

    zones: Mapping[int, tuple[LocalPort, ...]] = field(default_factory=dict)
    tap_zone: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, ruleset: NftRuleset, masters: Mapping[str, str]) -> Ports:
        """``masters``: tap -> the bridge it is attached to (the plan's
        attachments)."""
        zone_of = {json.loads(e.key): _zone(e) for e in ruleset.elements
                   if e.family == "inet" and e.set == "zone"}
        tags: dict[str, int] = {}
        prefixes: dict[str, list[tuple[int, int, int]]] = {}
        for e in ruleset.elements:
            if e.family != "bridge":
                continue
            if e.set == "tag":
                tags[json.loads(e.key)] = int(json.loads(e.data))
            elif e.set in ADDRESS_SETS:
                lo, hi = _fields(e)[-1]
                version = ADDRESS_SETS[e.set]
                prefixes.setdefault(json.loads(e.key)["concat"][0], []).append((version, lo, hi))
        zones: dict[int, list[LocalPort]] = {}
        tap_zone = {}
        for tap, tag in sorted(tags.items()):
            zone = zone_of.get(masters.get(tap, ""))
            if zone is None:
                continue
            tap_zone[tap] = zone
            if tag:
                zones.setdefault(zone, []).append(LocalPort(tap, tag, tuple(prefixes.get(tap, ()))))
        return cls({z: tuple(p) for z, p in zones.items()}, tap_zone)

    def owner(self, zone: int, address: str) -> LocalPort | None:
        """The one local port of ``zone`` that holds ``address`` as a fixed
        IP or a host-length (/32, /128) allowed address pair; None when no
        port or several do.  A wider pair does not make its port an owner:
        which port a frame reaches is decided by its destination MAC, which
        conntrack entries do not carry, and a pair of 0.0.0.0/0 (VRRP, a
        VNF) covers remote VMs' and the internet's addresses too, whose
        frames leave through the VXLAN device and never meet that port's
        rules (docs/firewall.md, "What a rule change does to existing
        connections")."""
        v, a = _address(address)
        found = [p for p in self.zones.get(zone, ())
                 if any(ver == v and lo == a == hi for ver, lo, hi in p.prefixes)]
        return found[0] if len(found) == 1 else None


def swept_zones(old: NftRuleset | None, new: NftRuleset, masters: Mapping[str, str]) -> frozenset[int]:
    """The zones whose entries the change from ``old`` to ``new`` may have
    closed: where a rule element of a tag in use, a port's tag or one of its
    addresses was removed.  Empty (and no conntrack read) when the change
    removes none of them.  ``old`` None (the ruleset is created: a table
    deleted by hand, the firewall turned on): every zone of ``new``, as
    connections opened while there was no ruleset may be ones its rules do
    not admit."""
    if old is None:
        return all_zones(new)
    have = {(e.family, e.set, e.key, e.data) for e in new.elements}
    gone = [e for e in old.elements if (e.family, e.set, e.key, e.data) not in have
            and (e.set in RULE_SETS or (e.family == "bridge" and e.set in PORT_SETS))]
    if not gone:
        return frozenset()
    ports = Ports.of(new, masters)
    tags = {_tag(e) for e in gone if e.set in RULE_SETS}
    zones = {z for z, members in ports.zones.items() for p in members if p.tag in tags}
    for e in gone:
        if e.set in PORT_SETS:
            key = json.loads(e.key)
            tap = key["concat"][0] if isinstance(key, dict) else key
            if tap in ports.tap_zone:
                zones.add(ports.tap_zone[tap])
    return frozenset(zones)


def all_zones(ruleset: NftRuleset) -> frozenset[int]:
    """Every conntrack zone Overcast assigned in ``ruleset`` (its ``zone`` map)."""
    return frozenset(_zone(e) for e in ruleset.elements if e.family == "inet" and e.set == "zone")


def condemned(flows: Iterable[Flow], new: NftRuleset, masters: Mapping[str, str]) -> list[Flow]:
    """The entries of ``flows`` that ``new`` does not admit (module doc).
    A side is judged only by the one local port that holds its address as a
    fixed IP or host-length pair (:meth:`Ports.owner`): an address shared by
    several ports, or covered only by a wider pair, is not judged (the
    entry stays on that side's account)."""
    rules, ports = Ruleset.of(new), Ports.of(new, masters)
    out = []
    decided: dict[tuple[object, ...], bool] = {}  # the source port decides only UDP and ICMP

    @functools.cache
    def judged(zone: int, address: str) -> list[LocalPort]:
        p = ports.owner(zone, address)
        return [p] if p is not None and not p.tag & STATELESS else []

    for f in flows:
        key = (f.zone, f.version, f.src, f.dst, f.proto, f.dport,
               f.sport if f.proto in (UDP, ICMP[f.version]) else -1)
        keep = decided.get(key)
        if keep is None:
            src, dst = judged(f.zone, f.src), judged(f.zone, f.dst)
            keep = decided[key] = (not src or any(admits(rules, p.tag, "egress", f) for p in src)) \
                and (not dst or any(admits(rules, p.tag, "ingress", f) for p in dst))
        if not keep:
            out.append(f)
    return out


def closing(flows: Iterable[Flow], timeout: int = CLOSED_TIMEOUT) -> list[dict[str, Any]]:
    """The nft commands that put the deleted TCP ``flows`` in the ``closed4``
    / ``closed6`` sets for ``timeout`` seconds, each once in its original
    orientation (the inet chains look a packet up both ways and drop a
    mid-stream segment that conntrack would pick up as new:
    ``firewall_chains._closed``).  Empty when none is TCP."""
    by_set: dict[str, list[Any]] = {}
    for f in sorted(set(flows)):
        if f.proto == TCP:
            by_set.setdefault(closed_set(f.version), []).append(
                {"elem": {"val": {"concat": [f.src, f.dst, TCP, f.sport, f.dport]}, "timeout": timeout}})
    return [{"add": {"element": {"family": "inet", "table": FW_TABLE, "name": name, "elem": elems}}}
            for name, elems in sorted(by_set.items())]


# --- element keys as integer spans ------------------------------------------------
@functools.lru_cache(maxsize=1 << 16)
def _address(text: str) -> tuple[int, int]:
    """(version, integer) of an address (parsing is most of a sweep's cost:
    entries repeat their addresses)."""
    ip = ipaddress.ip_address(text)
    return ip.version, int(ip)


def _fields(e: NftElement) -> list[Span]:
    key = json.loads(e.key)
    values = key["concat"] if isinstance(key, dict) and "concat" in key else [key]
    return [_span(v) for v in values]


def _tag(e: NftElement) -> int:
    """The group set's tag of a rule element."""
    return dict(zip(FIELDS[RULE_SETS[e.set]], _fields(e), strict=True))["tag"][0]


def _span(value: Any) -> Span:
    if isinstance(value, dict) and "range" in value:
        return _span(value["range"][0])[0], _span(value["range"][1])[1]
    if isinstance(value, dict) and "prefix" in value:
        net = ipaddress.ip_network(f"{value['prefix']['addr']}/{value['prefix']['len']}", strict=False)
        return int(net.network_address), int(net.broadcast_address)
    if isinstance(value, str):
        try:
            n = int(ipaddress.ip_address(value))
        except ValueError:
            return -1, -1  # a name (ifname) or MAC: never compared as a number here
        return n, n
    return int(value), int(value)


def _zone(e: NftElement) -> int:
    """``jump zone_<n>`` -> n."""
    target = json.loads(e.data)["jump"]["target"]
    return int(str(target).rsplit("_", 1)[1])
