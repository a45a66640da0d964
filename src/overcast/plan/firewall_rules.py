"""Security group rules -> elements of the firewall's rule sets.

A rule has one of four shapes, each with its own set (so that elements of
different shapes never need to be disjoint): any protocol (``any``:
address . tag), a protocol without ports (``proto``: address . protocol .
tag), a protocol with a port range (``port``: address . destination port .
protocol . tag) and ICMP with a type (``icmp``: address . the first 16 bits
of the ICMP header, type << 8 | code, a range over the codes when the rule
gives none . protocol . tag); ``firewall_chains.FIELDS`` is the order.  The address is the
remote end: the source of ingress traffic, the destination of egress; a
remote group is the addresses of its members, no remote at all the whole
family.  A remote address group is its addresses of the rule's family
(``members`` holds them under ``address_group/<id>``, ``remote_of``).  Port and
ICMP boxes whose remote is the whole family go to sets of their own
without the address (``port_any``, ``icmp_any``: port . protocol . tag),
so that a lookup does not begin with a field every such element shares.  Neutron's semantics, Neutron's refusals (each a ``Problem`` naming
the rule; the rule is then left out).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import ip_network

from overcast.model.problems import Problem
from overcast.model.types import SecurityGroupRule
from overcast.plan.firewall_chains import ICMP, sg_key, sg_set
from overcast.plan.firewall_space import Network, disjoint_boxes, prefix_cover
from overcast.plan.subsystems.firewall_observe import address_span
from overcast.plan.subsystems.firewall_records import PROTOCOLS

NAMES = {**PROTOCOLS, "icmpv6": 58, "ipv6-encap": 41, "pgm": 113}
WITH_PORTS = {6, 17, 33, 132, 136}  # tcp, udp, dccp, sctp, udplite
# IPv6 protocols that no rule can admit (measured, Linux 6.18): meta l4proto is the
# protocol after the extension headers, so it is never ipv6-route, ipv6-frag or
# ipv6-opts; a packet with no next header (ipv6-nonxt) has no layer 4 for conntrack and
# is dropped as invalid before any lookup.  hopopt is 0, which Neutron takes for any
# protocol; ipv6-encap (41) follows the extension headers and is matched.
EXTENSION_HEADERS = {43: "ipv6-route", 44: "ipv6-frag", 60: "ipv6-opts"}
NO_NEXT_HEADER = 59
VERSIONS = {"IPv4": 4, "IPv6": 6}
EVERYWHERE = {4: ip_network("0.0.0.0/0"), 6: ip_network("::/0")}


@dataclass(frozen=True, slots=True)
class RuleShape:
    direction: str  # ingress | egress
    version: int  # 4 | 6
    kind: str  # any | proto | port | icmp
    proto: int = 0
    lo: int = 0
    hi: int = 0
    remotes: tuple[Network, ...] = ()


class _Refused(Exception):
    pass


def rule_shape(rule: SecurityGroupRule, members: Mapping[str, Sequence[Network]],
               problems: list[Problem]) -> RuleShape | None:
    """The shape of ``rule``, or None (and a problem) if it cannot be realized."""
    try:
        return _shape(rule, members)
    except _Refused as exc:
        problems.append(Problem(f"security_group_rule/{rule.id}", str(exc)))
        return None


def _shape(rule: SecurityGroupRule, members: Mapping[str, Sequence[Network]]) -> RuleShape:
    version = VERSIONS.get(rule.ethertype)
    if version is None or rule.direction not in ("ingress", "egress"):
        raise _Refused(f"ethertype {rule.ethertype} / direction {rule.direction} is not realizable")
    remotes = _remotes(rule, version, members)
    proto = _protocol(rule.protocol, version)
    lo, hi = rule.port_range_min, rule.port_range_max
    if version == 6 and proto in EXTENSION_HEADERS:
        raise _Refused(f"protocol {rule.protocol} is the IPv6 extension header "
                       f"{EXTENSION_HEADERS[proto]}: nftables matches the protocol after the "
                       "extension headers, so no packet would match it; the rule is not enforced")
    if version == 6 and proto == NO_NEXT_HEADER:
        raise _Refused(f"protocol {rule.protocol} is ipv6-nonxt: conntrack cannot track a packet "
                       "without a next header and the chains drop it as invalid before any "
                       "rule; the rule is not enforced")
    if proto == 0:
        if lo is not None or hi is not None:
            raise _Refused("a port range needs a protocol")
        return RuleShape(rule.direction, version, "any", remotes=remotes)
    if proto == ICMP[version]:
        return _icmp(rule.direction, version, lo, hi, remotes)
    if lo is None and hi is None:
        return RuleShape(rule.direction, version, "proto", proto, remotes=remotes)
    if proto not in WITH_PORTS:
        raise _Refused(f"protocol {rule.protocol} has no ports")
    low, high = (lo if lo is not None else hi), (hi if hi is not None else lo)
    if low is None or high is None or not 1 <= low <= high <= 65535:
        raise _Refused(f"port range {lo}..{hi} is not within 1..65535")
    return RuleShape(rule.direction, version, "port", proto, low, high, remotes)


def _icmp(direction: str, version: int, icmp_type: int | None, code: int | None,
          remotes: tuple[Network, ...]) -> RuleShape:
    """Neutron's ICMP rule: port_range_min is the type, port_range_max the code."""
    proto = ICMP[version]
    if icmp_type is None:
        if code is not None:
            raise _Refused("an ICMP code needs a type")
        return RuleShape(direction, version, "proto", proto, remotes=remotes)
    if not 0 <= icmp_type <= 255 or (code is not None and not 0 <= code <= 255):
        raise _Refused(f"ICMP type {icmp_type} / code {code} is not in 0..255")
    lo, hi = (0, 255) if code is None else (code, code)
    return RuleShape(direction, version, "icmp", proto, icmp_type << 8 | lo, icmp_type << 8 | hi,
                     remotes)


def _protocol(name: str | None, version: int) -> int:
    """Neutron's protocol name or number -> the number; 0 for any."""
    if name is None or name in ("", "any"):
        return 0
    number = int(name) if name.isdigit() else NAMES.get(name.lower(), -1)
    if not 0 <= number <= 255:
        raise _Refused(f"protocol {name} is unknown")
    return 58 if version == 6 and number == 1 else number  # Neutron: icmp under IPv6 is ICMPv6


ADDRESS_GROUP = "address_group/"  # the prefix of an address group's key in ``members``


def remote_of(rule: SecurityGroupRule) -> str | None:
    """The key whose addresses are the rule's remote in ``members``: its remote
    security group's id (its members' addresses) or ``address_group/<id>``
    (the group's addresses: ids of the two kinds may be equal, an admin can
    choose them); None for a prefix or no remote."""
    if rule.remote_group_id:
        return rule.remote_group_id
    return ADDRESS_GROUP + rule.remote_address_group_id if rule.remote_address_group_id else None


def _remotes(rule: SecurityGroupRule, version: int,
             members: Mapping[str, Sequence[Network]]) -> tuple[Network, ...]:
    given = [n for n in ("remote_ip_prefix", "remote_group_id", "remote_address_group_id")
             if getattr(rule, n)]
    if len(given) > 1:
        raise _Refused(f"{' and '.join(given)} together")
    if rule.remote_ip_prefix:
        net = ip_network(rule.remote_ip_prefix, strict=False)
        if net.version != version:
            raise _Refused(f"remote_ip_prefix {rule.remote_ip_prefix} is not {rule.ethertype}")
        return (net,)
    remote = remote_of(rule)
    if remote:
        # one family: ordered by the address as an int (compared in C, not by IPv4Address.__lt__)
        return tuple(sorted({n for n in members.get(remote, ()) if n.version == version},
                            key=lambda n: (int(n.network_address), n.prefixlen)))
    return (EVERYWHERE[version],)


def sg_elements(tag: int, compiled: Sequence[tuple[RuleShape, str]]) -> Iterator[tuple[str, str, object, str]]:
    """(family, set, key, source) of every element of one group set's rules
    (a key may come several times, once per source)."""
    groups: dict[tuple[str, int, str, int], list[tuple[RuleShape, str]]] = {}
    for shape, source in compiled:
        groups.setdefault((shape.direction, shape.version, shape.kind, shape.proto), []).append(
            (shape, source))
    for (direction, version, kind, proto), items in sorted(groups.items()):
        name = sg_set(direction, version, kind)
        if kind in ("any", "proto"):
            cover = prefix_cover((net, src) for shape, src in items for net in shape.remotes)
            for net, sources in cover:
                key = {"concat": sg_key(kind, addr=_span(net), proto=proto, tag=tag)}
                for src in sources:
                    yield "inet", name, key, src
            continue
        boxes = [(net, shape.lo, shape.hi, src) for shape, src in items for net in shape.remotes]
        # a whole family's remote goes to the set keyed without an address (firewall_chains.FIELDS)
        for kind_of, part in ((kind, [b for b in boxes if b[0].prefixlen]),
                              (f"{kind}_any", [b for b in boxes if not b[0].prefixlen])):
            name = sg_set(direction, version, kind_of)
            for box in disjoint_boxes(part):
                value: object = box.lo if box.lo == box.hi else {"range": [box.lo, box.hi]}
                addr = None if kind_of.endswith("_any") else _span(box.net)  # no address field
                key = {"concat": sg_key(kind_of, addr=addr, proto=proto, port=value,
                                        tag=tag)}
                for src in box.ids:
                    yield "inet", name, key, src


def _span(net: Network) -> object:
    return address_span(str(net.network_address), str(net.broadcast_address))
