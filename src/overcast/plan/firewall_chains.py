"""The firewall's constant part: its sets and maps, and its chains with their
rules, for a kernel without bridge-family conntrack (br_netfilter path; see
``docs/firewall.md``).  Nothing here depends on ports or rules: they are
elements of these sets.  Every packet meets the same few rules, each one set
or map lookup.

Mark layout: Overcast owns ``meta mark`` on frames of its bridges.  The
bridge prerouting chain sets it to the security-group tag of the port the
frame comes from (0: not a port with port security); the bridge forward
chain sets it to the tag of the port the frame goes to.  The inet chains
read it: egress rules in prerouting after conntrack, ingress rules in
forward (br_netfilter calls the inet forward hook after the bridge forward
chains of priority below -1).  A tag is the group set's number (24 bits),
with ``STATELESS`` set for a group set of stateless groups.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from overcast.plan.firewall_expr import (
    ACCEPT,
    DROP,
    NOTRACK,
    RETURN,
    Expr,
    band,
    canonical,
    concat,
    ct,
    jump,
    lookup,
    match,
    meta,
    one_of,
    payload,
    set_ct,
    set_meta,
    vmap,
)
from overcast.plan.names import PORT_GROUP
from overcast.plan.subsystems.firewall_records import NftChain, NftSet

ADDR = {4: "ipv4_addr", 6: "ipv6_addr"}
NFPROTO = {4: "ipv4", 6: "ipv6"}
IP = {4: "ip", 6: "ip6"}
ICMP = {4: 1, 6: 58}
# the four shapes of a security group rule, and two sets more for the port and ICMP rules whose
# remote is the whole family (no remote, or a /0): keyed without an address (below)
KINDS = ("any", "proto", "port", "port_any", "icmp", "icmp_any")
# each shape's key, field by field: the remote address, the port (or ICMP type and code), the
# protocol, the group set's tag last.  The kernel's concatenated interval sets (pipapo) match a
# packet field by field, each field against the elements the fields before it left, so the first
# fields should tell elements apart: the tag is shared by every element of a group set, the
# protocol by most, the address by few -- except the whole family's address, which every rule
# without a remote shares: those rules' ports and ICMP types go into the ``*_any`` sets, keyed
# port first (10,000 ports open to everyone would otherwise all match the first field;
# docs/firewall.md, "Key order", measured)
FIELDS = {"any": ("addr", "tag"), "proto": ("addr", "proto", "tag"),
          "port": ("addr", "port", "proto", "tag"), "icmp": ("addr", "port", "proto", "tag"),
          "port_any": ("port", "proto", "tag"), "icmp_any": ("port", "proto", "tag")}
DIRECTIONS = {"ingress": "in", "egress": "eg"}
UNKNOWN = 0xFFFFFFFF  # the mark of a frame whose port has no tag (never a tag: they are 24 bits)
# the bit above the 24 of a group set's number that makes its tag a stateless group set's: the
# inet chains test it with a mask (a set lookup per packet and hook would cost more)
STATELESS = 1 << 24
# seconds a TCP flow whose conntrack entry the sweep deleted stays in closed4/closed6: longer
# than Linux's retransmission of unacknowledged data lasts (tcp_retries2=15, about 924 s), so
# a connection whose ends keep retransmitting dies (docs/firewall.md)
CLOSED_TIMEOUT = 1200


def sg_set(direction: str, version: int, kind: str) -> str:
    """The set of one shape of rule: ``in4_port``, ``eg6_any`` ..."""
    return f"{DIRECTIONS[direction]}{version}_{kind}"


def sg_key(kind: str, **values: object) -> list[object]:
    """The fields of a ``kind`` element (or lookup) in the set's order, from
    ``addr``, ``proto``, ``port`` (the destination port, or ICMP's type << 8
    | code) and ``tag``."""
    return [values[f] for f in FIELDS[kind]]


def revoked_set(name: str) -> str:
    """The set of the keys being deleted from rule set ``name``
    (``in4_port_revoked`` ...).  A lookup that matches an element of
    ``name`` accepts only when its key is not also here."""
    return f"{name}_revoked"


def staged_set(name: str) -> str:
    """The set of the elements being added to rule set ``name``
    (``in4_port_staged`` ...), accepted as ``name``'s are.

    With ``revoked_set``: both are empty but for the moment of a change to
    a large rule set.  A delete from a 10,000-element interval set costs
    the kernel tens of milliseconds (it rebuilds the set's tables), and so,
    often, does an add; the same in a small set, ~1 ms.  So a change to a
    large set is first put in force in these two, in a small batch, and the
    batch that changes the large set empties them again
    (``firewall_apply``)."""
    return f"{name}_staged"


def closed_set(version: int) -> str:
    """The set of the TCP flows the sweep closed (``closed4``/``closed6``):
    source . destination . protocol . source port . destination port, each
    element with a timeout.  Its elements are written by the sweep, never
    by the diff (observe leaves out the elements of every timeout set)."""
    return f"closed{version}"


LOG_GROUP = 7  # the nfnetlink_log group the agent reads (linux/nflog.py)
LOG_PREFIX = "overcast"  # a logged packet's prefix: "overcast <direction> <ACCEPT|DROP>"
# at most this many packets logged a second on a host per direction and event (four
# limits), and bursts of this many (Neutron's logging defaults: rate_limit 100, burst_limit 25)
LOG_RATE, LOG_BURST = 100, 25
LOG_SETS = {"ACCEPT": "log_accept", "DROP": "log_drop"}  # event -> the tags logged for it


def _limit() -> Expr:
    return {"limit": {"rate": LOG_RATE, "per": "second", "burst": LOG_BURST}}


def _log(direction: str, event: str) -> Expr:
    return {"log": {"prefix": f"{LOG_PREFIX} {direction} {event}", "group": LOG_GROUP}}


def sets() -> list[NftSet]:
    iv = ("interval",)
    out = [NftSet("bridge", "tag", ("ifname",), map="mark"),
           NftSet("bridge", "mac_ok", ("ifname", "ether_addr")),
           # the taps whose DHCP requests this host's DHCP server answers (plan/leases.py)
           NftSet("bridge", "dhcp_local", ("ifname",)),
           # a port's own addresses (host length) in hash sets, met first: most frames are
           # from them, and a hash lookup costs less than the interval set's (pipapo)
           NftSet("bridge", "ip4_host", ("ifname", "ether_addr", "ipv4_addr")),
           NftSet("bridge", "ip6_host", ("ifname", "ether_addr", "ipv6_addr")),
           NftSet("bridge", "ip4_ok", ("ifname", "ether_addr", "ipv4_addr"), iv),
           NftSet("bridge", "ip6_ok", ("ifname", "ether_addr", "ipv6_addr"), iv),
           NftSet("inet", "notrack_mac", ("ifname", "ether_addr")),
           NftSet("inet", "tracked_mac", ("ifname", "ether_addr")),
           NftSet("inet", "zone", ("ifname",), map="verdict"),
           # routers (docs/routers.md): each router interface's MAC and IPv4 address on the
           # VXLAN device of its network, and this host's own MAC for routed frames
           NftSet("bridge", "router_mac", ("ifname", "ether_addr")),
           NftSet("bridge", "router_ip4", ("ifname", "ipv4_addr")),
           NftSet("bridge", "host_mac", ("ifname",), map="ether_addr")]
    out += [NftSet("inet", closed_set(v), (ADDR[v], ADDR[v], "inet_proto", "inet_service", "inet_service"),
                   ("timeout",)) for v in (4, 6)]
    # the group set tags of ports with a packet log (docs/firewall.md, "Packet logs")
    out += [NftSet("inet", name, ("mark",)) for name in LOG_SETS.values()]
    for d in DIRECTIONS:  # security group rules: a counter per element (per-rule hits)
        for v in (4, 6):
            types = {"addr": ADDR[v], "proto": "inet_proto", "port": "inet_service", "tag": "mark"}
            out += [NftSet("inet", sg_set(d, v, k), tuple(types[f] for f in FIELDS[k]), iv,
                           counter=True) for k in KINDS]
            out += [NftSet("inet", side(sg_set(d, v, k)), tuple(types[f] for f in FIELDS[k]), iv)
                    for k in KINDS for side in (revoked_set, staged_set)]
    return out


def chain(family: str, name: str, rules: Iterable[list[Expr]], hook: str = "",
          prio: int = 0, policy: str = "accept") -> NftChain:
    texts = tuple(canonical(r) for r in rules)
    digest = hashlib.sha256(canonical([family, name, hook, prio, texts]).encode()).hexdigest()[:12]
    return NftChain(family, name, hook, prio, digest, texts, policy)


def zone_chain(zone: int) -> NftChain:
    """One per network on the host: its conntrack zone (reached through the
    ``zone`` verdict map: libnftables 1.0.6 cannot make a map whose data is
    a conntrack zone through JSON)."""
    return chain("inet", zone_chain_name(zone), [[set_ct("zone", zone)]])


def zone_chain_name(zone: int) -> str:
    return f"zone_{zone}"


def chains() -> list[NftChain]:
    return [*_bridge_chains(), _overlay_chain(), *_inet_chains()]


def _overlay_chain() -> NftChain:
    """A router interface's gateway MAC and IP exist on every host that has
    the router: they never cross the overlay (``docs/routers.md``).  At a
    VXLAN device (``router_mac`` and ``router_ip4`` are keyed by it): frames
    to a gateway MAC and the router's own ARP, broadcast and multicast are
    dropped, ARP for a gateway IP too, and routed frames leave with this
    host's MAC (``host_mac``) instead of the gateway's; the router's own
    IPv6 neighbour discovery never leaves the host either.  Frames that come
    from the overlay with a gateway MAC or asking for a gateway IP are
    dropped as well (a host whose agent is older or misconfigured).  After
    the forward chain's own rules, which jump here.  Every rule is about a
    frame from or to a VXLAN device: a frame from one workload port to
    another (``names.PORT_GROUP`` both: nearly all frames under load) is
    accepted by the forward chain before the jump, without the five set
    lookups here; any other frame meets them all, so a device whose group
    was changed fails closed.  A chain jumped to, not a base chain of its
    own: every base chain a frame passes costs it a hook's call (what that
    costs a TCP stream is measured, not settled, in docs/firewall.md, "What
    a bridged TCP stream pays")."""
    oif, iif = meta("oifname"), meta("iifname")
    smac, dmac = payload("ether", "saddr"), payload("ether", "daddr")
    target = payload("arp", "daddr ip")
    group = "01:00:00:00:00:00"
    rules = [
        [match(concat(oif, dmac), "@router_mac"), DROP],
        [match(concat(iif, smac), "@router_mac"), DROP],
        [match(payload("ether", "type"), "arp"), match(concat(oif, smac), "@router_mac"), DROP],
        [match(band(dmac, group), group), match(concat(oif, smac), "@router_mac"), DROP],
        # the router's own neighbour discovery and advertisements (its unicast answers too)
        [*_icmp6(133, 134, 135, 136, 137), match(concat(oif, smac), "@router_mac"), DROP],
        [match(concat(oif, smac), "@router_mac"),
         {"mangle": {"key": smac, "value": lookup(oif, "host_mac")}}],
        [match(payload("ether", "type"), "arp"), match(concat(oif, target), "@router_ip4"), DROP],
        [match(payload("ether", "type"), "arp"), match(concat(iif, target), "@router_ip4"), DROP],
    ]
    return chain("bridge", "overlay", rules)


def _ether(t: str) -> Expr:
    return match(payload("ether", "type"), t)


def _udp(sport: int, dport: int | None = None) -> list[Expr]:
    return [match(meta("l4proto"), 17), match(payload("udp", "sport"), sport),
            *([match(payload("udp", "dport"), dport)] if dport is not None else [])]


def _icmp6(*types: int) -> list[Expr]:
    return [match(meta("l4proto"), 58), match(payload("icmpv6", "type"), one_of(*types))]


def _identify(dev: str) -> list[list[Expr]]:
    """``mark`` := the tag of the port ``dev`` (``iif``: the input port,
    ``oif``: the output port), failing closed: a device in Overcast's port
    group (``names.PORT_GROUP``: every workload device the agent attached to
    one of its bridges) that is not in ``tag`` is a port whose rules do not
    exist (yet): its frames are dropped.  A failed map lookup ends its rule
    without a verdict, so the mark is first set to ``UNKNOWN`` and the lookup
    overwrites it for every known port.  Devices of other bridges (their
    group is not ours) keep their mark and pass."""
    taps = match(meta(f"{dev}group"), PORT_GROUP)
    name = meta(f"{dev}name")
    return [[taps, set_meta("mark", UNKNOWN)],
            [set_meta("mark", lookup(name, "tag"))],
            [taps, match(meta("mark"), UNKNOWN), DROP]]


def _bridge_chains() -> list[NftChain]:
    """Both base chains drop what no rule accepts (``policy drop``), so a
    table whose rules were flushed by hand passes no bridged frame until the
    agent refills it; every path through them therefore ends in ``accept``."""
    iif, oif = meta("iifname"), meta("oifname")
    smac, dmac = payload("ether", "saddr"), payload("ether", "daddr")
    arp_mac, arp_ip = payload("arp", "saddr ether"), payload("arp", "saddr ip")
    # a port with port security is one of Overcast's devices with a tag (not 0): compared,
    # not looked up
    prerouting = [
        *_identify("iif"),
        [match(meta("iifgroup"), PORT_GROUP), match(meta("mark"), 0, "!="), jump("from_port")],
        # a port without port security: its DHCP requests, answered here, stop here too
        [match(meta("mark"), 0), _ether("ip"), *_udp(68, 67), match(iif, "@dhcp_local"), DROP],
        [match(meta("mark"), 0), _ether("ip6"), *_udp(546, 547), match(iif, "@dhcp_local"), DROP],
        [ACCEPT],
    ]
    # first the frames nearly all are: IPv4 or IPv6 from one of the port's own
    # addresses with its MAC (the key proves the MAC too: every MAC of
    # ip4_host/ip6_host is in mac_ok), neither DHCP nor DHCPv6 (source port
    # 67/68, 546/547: a server's reply, or a client's message, which may have
    # to stop here; ``th sport`` misses for a fragment, which takes the long
    # way) nor ICMPv6 (router advertisements are checked below)
    fast = [
        [_ether("ip"), match(concat(iif, smac, payload("ip", "saddr")), "@ip4_host"),
         match(payload("th", "sport"), {"range": [67, 68]}, "!="), RETURN],
        [_ether("ip6"), match(meta("l4proto"), 58, "!="),
         match(concat(iif, smac, payload("ip6", "saddr")), "@ip6_host"),
         match(payload("th", "sport"), {"range": [546, 547]}, "!="), RETURN],
    ]
    from_port = [
        *fast,
        [match(concat(iif, smac), "@mac_ok", "!="), DROP],
        [_ether("arp"), match(arp_ip, "0.0.0.0"), match(concat(iif, arp_mac), "@mac_ok"), RETURN],
        [_ether("arp"), match(concat(iif, arp_mac, arp_ip), "@ip4_host"), RETURN],
        [_ether("arp"), match(concat(iif, arp_mac, arp_ip), "@ip4_ok", "!="), DROP],
        [_ether("arp"), RETURN],
        [_ether("ip"), *_udp(67), DROP],
        # a DHCP request this host's DHCP server answers (it read it on the tap): no further
        [_ether("ip"), *_udp(68, 67), match(iif, "@dhcp_local"), DROP],
        [_ether("ip"), match(payload("ip", "saddr"), "0.0.0.0"),
         match(payload("ip", "daddr"), "255.255.255.255"), *_udp(68, 67), RETURN],
        [_ether("ip"), match(concat(iif, smac, payload("ip", "saddr")), "@ip4_host"), RETURN],
        [_ether("ip"), match(concat(iif, smac, payload("ip", "saddr")), "@ip4_ok", "!="), DROP],
        [_ether("ip"), RETURN],
        [_ether("ip6"), *_udp(547), DROP],
        [_ether("ip6"), *_udp(546, 547), match(iif, "@dhcp_local"), DROP],  # answered here
        [_ether("ip6"), *_icmp6(134, 137), DROP],  # router advertisements, redirects
        [_ether("ip6"), match(payload("ip6", "saddr"), "::"), *_icmp6(131, 135, 143), RETURN],
        [_ether("ip6"), match(concat(iif, smac, payload("ip6", "saddr")), "@ip6_host"), RETURN],
        [_ether("ip6"), match(concat(iif, smac, payload("ip6", "saddr")), "@ip6_ok", "!="), DROP],
        [_ether("ip6"), RETURN],
        [DROP],  # no other ethertype (nor 802.1Q frames) from a port with port security
    ]
    forward = [
        [set_meta("mark", 0)],
        *_identify("oif"),
        [match(meta("oifgroup"), PORT_GROUP), match(meta("mark"), 0, "!="), jump("to_port")],
        # from one workload port to another: nothing of the overlay's to check
        [match(meta("iifgroup"), PORT_GROUP), match(meta("oifgroup"), PORT_GROUP), ACCEPT],
        [jump("overlay")],
        [ACCEPT],
    ]
    to_port = [[match(band(dmac, "01:00:00:00:00:00"), "00:00:00:00:00:00"),
                match(concat(oif, dmac), "@mac_ok", "!="), DROP]]
    return [chain("bridge", "prerouting", prerouting, "prerouting", -300, "drop"),
            chain("bridge", "from_port", from_port),
            chain("bridge", "forward", forward, "forward", -200, "drop"),
            chain("bridge", "to_port", to_port)]


def _inet_chains() -> list[NftChain]:
    """iifname is the bridge here (br_netfilter), mark the input port's tag.
    A frame is not tracked when one end is a stateless port and the other
    is not a stateful port of this host: from a stateless port to a MAC
    that is not a stateful port's on that bridge, or from something without
    a tag (the VXLAN device, a port without port security) to a stateless
    port's MAC.  Both end the chain: the zone's ``ct zone set`` would give
    an untracked frame a conntrack template again (and a ``notrack`` after
    it does nothing), measured on 6.18."""
    bridge_dmac = concat(meta("iifname"), payload("ether", "daddr"))
    raw_chain = [[match(band(meta("mark"), STATELESS), STATELESS),
                  match(bridge_dmac, "@tracked_mac", "!="), NOTRACK, ACCEPT],
                 [match(meta("mark"), 0), match(bridge_dmac, "@notrack_mac"), NOTRACK, ACCEPT],
                 [vmap(meta("iifname"), "zone")]]
    return [chain("inet", "raw", raw_chain, "prerouting", -300),
            chain("inet", "egress", _sg_rules("egress"), "prerouting", -150),
            chain("inet", "ingress", _sg_rules("ingress"), "forward", 0),
            chain("inet", "egress_logged", _logged(_lookups("egress"), "egress")),
            chain("inet", "ingress_logged", _logged(_lookups("ingress"), "ingress"))]


def _logged(lookups: list[list[Expr]], direction: str) -> list[list[Expr]]:
    """The lookups of a logged port's new connection (jumped to within the
    rate limit: a packet is looked up, and counted by its element, once):
    each that admits it logs it first; what none admits goes back to the
    chain, which drops it (told as a drop)."""
    return [[*r[:-1], _log(direction, "ACCEPT"), r[-1]] for r in lookups] + [[RETURN]]


def _closed(version: int, reply: bool) -> list[Expr]:
    """A TCP segment that conntrack takes for a new connection (a mid-stream
    pickup, nf_conntrack_tcp_loose) of a flow the sweep closed: dropped.
    The set holds each flow once, in its original orientation: ``reply``
    looks the packet up reversed (a segment of the flow's server).  Any
    other pickup (an entry deleted by hand, timed out, a zone renumbered)
    meets the rules as a new connection, as in Neutron."""
    ends = [payload(IP[version], "saddr"), payload(IP[version], "daddr")]
    ports = [payload("th", "sport"), payload("th", "dport")]
    if reply:
        ends, ports = ends[::-1], ports[::-1]
    return [match(meta("nfproto"), NFPROTO[version]), match(meta("l4proto"), 6),
            match(ct("state"), "new", "in"),
            match(band(payload("tcp", "flags"), ["fin", "syn", "rst", "ack"]), "syn", "!="),
            match(concat(*ends, meta("l4proto"), *ports), f"@{closed_set(version)}"), DROP]


def _sg_rules(direction: str) -> list[list[Expr]]:
    """Established first; a mid-stream TCP segment of a closed flow
    dropped; what a booting guest needs; a logged port's new connection to
    the logged lookups; one lookup per shape and family; drop (told first
    for a logged port)."""
    mark = meta("mark")
    nd = (133, 135, 136, 131, 132, 143) if direction == "egress" else (130, 134, 135, 136)
    rules: list[list[Expr]] = [
        [match(mark, 0), ACCEPT],
        # a stateless port's rules see every packet, also of a connection
        # that is tracked for its stateful peer
        [match(band(mark, STATELESS), 0), match(ct("state"), ["established", "related"], "in"),
         ACCEPT],
        [match(ct("state"), "invalid", "in"), DROP],
        # the sweep deleted this flow's entry: its next segment, picked up as
        # new (nf_conntrack_tcp_loose, the default), would otherwise open a
        # connection oriented from whichever side sent it (docs/firewall.md)
        *(_closed(v, reply) for v in (4, 6) for reply in (False, True)),
        [match(meta("nfproto"), "ipv4"), *(_udp(68, 67) if direction == "egress" else _udp(67, 68)),
         ACCEPT],
        [match(meta("nfproto"), "ipv6"),
         *(_udp(546, 547) if direction == "egress" else _udp(547, 546)), ACCEPT],
        [match(meta("nfproto"), "ipv6"), match(meta("l4proto"), 58),
         match(payload("icmpv6", "type"), one_of(*nd)), ACCEPT],
        # a logged port's new connection: its accept told (_logged); nothing else meets it
        [match(ct("state"), "new", "in"), match(mark, f"@{LOG_SETS['ACCEPT']}"),
         _limit(), jump(f"{direction}_logged")],
    ]
    rules += _lookups(direction)
    drop_logged = [match(mark, f"@{LOG_SETS['DROP']}"), _limit(), _log(direction, "DROP")]
    return [*rules, drop_logged, [DROP]]


def _lookups(direction: str) -> list[list[Expr]]:
    """One lookup per rule shape and family, each accepting what it admits."""
    peer = "daddr" if direction == "egress" else "saddr"
    rules: list[list[Expr]] = []
    for v in (4, 6):
        fam = match(meta("nfproto"), NFPROTO[v])
        addr = payload(IP[v], peer)
        l4 = meta("l4proto")
        for kind in KINDS:
            port = payload("th", "sport" if kind.startswith("icmp") else "dport")
            head = [fam, match(l4, ICMP[v])] if kind.startswith("icmp") else [fam]
            rules += [[*head, *r] for r in _in_force(direction, v, kind, _lookup(kind, addr, port))]
    return rules


def _in_force(direction: str, version: int, kind: str, key: Expr) -> list[list[Expr]]:
    """Accept when ``key`` is in the rule set and not in its revoked set, or
    in its staged set (``staged_set``: both empty but for a change's moment;
    the revoked set is met only by a packet the rule set admits)."""
    name = sg_set(direction, version, kind)
    return [[match(key, f"@{name}"), match(key, f"@{revoked_set(name)}", "!="), ACCEPT],
            [match(key, f"@{staged_set(name)}"), ACCEPT]]


def _lookup(kind: str, addr: Expr, port: Expr = None) -> Expr:
    """The packet's key for the sets of ``kind``, in their fields' order."""
    return concat(*sg_key(kind, addr=addr, proto=meta("l4proto"), port=port, tag=meta("mark")))
