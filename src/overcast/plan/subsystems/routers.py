"""Routers: a network namespace per router per host, its interfaces (veth
pairs: ``qr-`` inside, the host side on the subnet's bridge), their
addresses, the permanent neighbours of every port on the router's subnets,
and the router's static routes (``docs/routers.md``).

Diff rules (the review checklist):

* A namespace is Overcast's only with its name (this host's, see
  :func:`overcast.plan.names.is_router_netns`) AND its mark (the ifalias of
  its ``lo``); only those are observed, changed or deleted.  A namespace of
  our name without a mark is adopted by its create (we crashed between
  making and marking it).
* Deleting a namespace deletes what is in it (and the host side of every
  veth pair into it): nothing inside a namespace that goes is deleted one
  by one.
* An interface whose host side is missing, or whose device is not a veth,
  is made again (with its addresses and neighbours); MAC, MTU, IPv6 and up
  change in place.
* Routes and neighbours are only ever Overcast's own: routes of protocol
  :data:`overcast.plan.names.ROUTE_PROTO`, permanent neighbours; the
  kernel's own connected routes and learned neighbours are never read.

The host side of an interface joins its bridge through the links
subsystem (an :class:`~overcast.plan.subsystems.links.Attachment`), which
comes after this one: the pair exists before it is attached.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from overcast.plan.firewall_expr import canonical, rule_text
from overcast.plan.names import (
    NFT_TABLE_PREFIX,
    ROUTER_IF_PREFIXES,
    ROUTER_PORT_PREFIX,
    is_floating_address,
    router_of_mark,
)
from overcast.plan.raw import KernelIO, KernelRows, NsRule
from overcast.plan.state import Change
from overcast.plan.subsystem import DiffContext, Subsystem

MAIN_TABLE = 254
FIP_TABLE = 16  # the floating IPs' routes, as in Neutron DVR's qrouter namespaces


@dataclass(frozen=True, slots=True, order=True)
class RouterNamespace:
    """A router's namespace on this host (IPv4 and IPv6 forwarding on)."""

    name: str
    mark: str
    forwarding: bool = True

    def render(self) -> str:
        return f"netns {self.name} mark {self.mark}{'' if self.forwarding else ' noforwarding'}"

    def devices(self) -> frozenset[str]:
        return frozenset()


@dataclass(frozen=True, slots=True, order=True)
class RouterPort:
    """One router interface on this host: ``ifname`` in namespace ``netns``
    with the interface port's MAC, the host side ``peer`` (marked ``alias``)
    on the subnet's bridge.  Observed with ``peer == ""`` when the host
    side is missing."""

    netns: str
    ifname: str
    peer: str
    mac: str
    mtu: int
    alias: str
    ipv6: bool = False  # IPv6 on the interface (only with an IPv6 subnet)
    up: bool = True

    def render(self) -> str:
        return (f"router-port {self.netns} {self.ifname} peer {self.peer or '-'} mac {self.mac}"
                f" mtu {self.mtu}{' ipv6' if self.ipv6 else ''}{'' if self.up else ' down'}"
                f" alias {self.alias}")

    def devices(self) -> frozenset[str]:
        return frozenset((self.peer,)) if self.peer else frozenset()

    def in_place(self) -> tuple[str, str, str, str]:
        """What an update cannot change (else the pair is made again)."""
        return (self.netns, self.ifname, self.peer, self.alias)


@dataclass(frozen=True, slots=True, order=True)
class RouterAddress:
    netns: str
    dev: str
    cidr: str  # the gateway IP with its subnet's prefix length

    def render(self) -> str:
        return f"router-address {self.netns} {self.dev} {self.cidr}"

    def devices(self) -> frozenset[str]:
        return frozenset()


@dataclass(frozen=True, slots=True, order=True)
class RouterNeighbour:
    """A permanent neighbour: the port at ``ip`` has ``mac`` (from the
    control plane: no ARP or ND crosses the overlay for routing)."""

    netns: str
    dev: str
    ip: str
    mac: str

    def render(self) -> str:
        return f"router-neighbour {self.netns} {self.dev} {self.ip} lladdr {self.mac}"

    def devices(self) -> frozenset[str]:
        return frozenset()


@dataclass(frozen=True, slots=True)
class RouterRoute:
    """A route of the router: its static routes (the extraroute
    extension), its default route, and in ``FIP_TABLE`` the floating IPs'
    way out (``dev``: out of that device, the gateway on its link)."""

    netns: str
    dst: str
    gateway: str
    table: int = MAIN_TABLE
    dev: str = ""

    def _key(self) -> tuple[str, bool, str, str, int, str]:
        # link routes (no gateway) first: a route via a gateway on a link needs the link's
        return (self.netns, bool(self.gateway), self.dst, self.gateway, self.table, self.dev)

    def __lt__(self, other: RouterRoute) -> bool:
        return self._key() < other._key()

    def render(self) -> str:
        table = "" if self.table == MAIN_TABLE else f" table {self.table}"
        dev = f" dev {self.dev} onlink" if self.dev else ""
        return f"router-route {self.netns} {self.dst} via {self.gateway or '-'}{dev}{table}"

    def devices(self) -> frozenset[str]:
        return frozenset()


@dataclass(frozen=True, slots=True, order=True)
class RouterRule:
    """A policy rule: traffic to the router's own subnets uses the main
    table, then traffic from a floating IP's port uses ``FIP_TABLE``."""

    netns: str
    rule: NsRule

    def render(self) -> str:
        r = self.rule
        suppress = f" suppress_prefixlength {r.suppress_prefixlength}" \
            if r.suppress_prefixlength >= 0 else ""
        to = f" to {r.dst}" if r.dst else ""
        return (f"router-rule {self.netns} prio {r.priority} from {r.src or 'all'}{to}"
                f" lookup {r.table}{suppress}")

    def devices(self) -> frozenset[str]:
        return frozenset()


@dataclass(frozen=True, slots=True, order=True)
class RouterNat:
    """The router's NAT on this host: table ``ip overcast_nat`` in its
    namespace, a prerouting (DNAT) and a postrouting (SNAT) chain, made
    whole by one batch.  Every rule's comment is ``digest`` (of all the
    rules): observed, the digest the rules share and how many there are
    (a rule deleted or changed by hand makes them differ)."""

    netns: str
    digest: str
    count: int
    # (chain, statements as JSON text): what the batch writes, not part of identity
    rules: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    # each rule's tag, written before the digest in its comment ("" for none): a port
    # forwarding's (RouterForwarding.tag)
    tags: tuple[str, ...] = field(default=(), compare=False)

    def render(self) -> str:
        lines = [f"router-nat {self.netns} {self.digest} rules {self.count}"]
        lines += [f"  {chain}: {rule_text(json.loads(text))}" for chain, text in self.rules]
        return "\n".join(lines)

    def devices(self) -> frozenset[str]:
        return frozenset()


@dataclass(frozen=True)
class Forwarding:
    """A port forwarding's DNAT rule in a :class:`RouterNat`: what arrives
    at ``ip`` over ``proto`` on ports ``low``-``high`` goes to ``to``; its
    ``tag`` leads its rule's comment.  When the NAT is made again without
    it, the conntrack entries it made are forgotten, after the batch (no new
    packet of those flows finds the rule again), so that its flows stop
    with it also while the floating IP keeps other forwardings (its
    address, and so the entries of all its flows, goes with the last one)."""

    ip: str
    proto: int
    low: int
    high: int
    to: str  # the internal address and ports, as "10.1.1.11:5000-5001"

    @property
    def tag(self) -> str:
        return f"pf {self.ip} {self.proto} {self.low}-{self.high} {self.to}"

    @classmethod
    def of_tag(cls, tag: str) -> Forwarding | None:
        words = tag.split()
        if len(words) != 5 or words[0] != "pf":
            return None
        low, _, high = words[3].partition("-")
        try:
            return cls(words[1], int(words[2]), int(low), int(high), words[4])
        except ValueError:
            return None


# a NAT rule: its chain, its statements and, for a port forwarding's or a floating IP's
# DNAT, its tag
NatRule = tuple[str, list[Any]] | tuple[str, list[Any], str]
FIP_TAG = "fip"  # a floating IP's DNAT rule's tag: "fip <address>"


NAT_TABLE = f"{NFT_TABLE_PREFIX}_nat"
NAT_CHAINS = {"prerouting": ("prerouting", -100), "postrouting": ("postrouting", 100)}


def nat(netns: str, rules: Sequence[NatRule]) -> RouterNat:
    """The NAT record of ``rules`` (chain, statements[, tag: a port
    forwarding's]), in their order."""
    texts = tuple((r[0], canonical(r[1])) for r in rules)
    marks = tuple(r[2] if len(r) == 3 else "" for r in rules)
    digest = hashlib.sha256(canonical([list(texts), list(marks)]).encode()).hexdigest()[:16]
    return RouterNat(netns, digest, len(texts), texts, marks)


def _nat_batch(obj: RouterNat) -> list[dict[str, Any]]:
    table = {"family": "ip", "name": NAT_TABLE}
    out: list[dict[str, Any]] = [{"add": {"table": table}}, {"flush": {"table": table}}]
    for name, (hook, prio) in NAT_CHAINS.items():
        out.append({"add": {"chain": {**_in(name), "type": "nat", "hook": hook, "prio": prio,
                                      "policy": "accept"}}})
    tags = obj.tags or ("",) * len(obj.rules)
    for (chain, text), tag in zip(obj.rules, tags, strict=True):
        out.append({"add": {"rule": {**_in(chain), "chain": chain, "expr": json.loads(text),
                                     "comment": f"{tag} {obj.digest}" if tag else obj.digest}}})
    return out


def _in(name: str) -> dict[str, str]:
    return {"family": "ip", "table": NAT_TABLE, "name": name}


def _observed_nat(netns: str, rows: Iterable[dict[str, Any]]) -> RouterNat | None:
    """The NAT record (None without the table), with its rules' tags."""
    rules = [r["rule"] for r in rows if "rule" in r and r["rule"].get("table") == NAT_TABLE]
    tables = [r for r in rows if r.get("table", {}).get("name") == NAT_TABLE]
    if not tables:
        return None
    digests: set[str] = set()
    tags = []
    for rule in rules:
        words = str(rule.get("comment", "")).split()
        digests.add(words[-1] if words else "")
        tags.append(" ".join(words[:-1]))
    digest = digests.pop() if len(digests) == 1 else ""
    return RouterNat(netns, digest, len(rules), tags=tuple(tags))


@dataclass(frozen=True, slots=True, order=True)
class RouterMeter:
    """The router's metering on this host (Neutron's metering labels):
    table ``inet overcast_meter`` in its namespace, a ``forward`` chain that
    jumps to a chain per label, where the label's excluded rules return
    first and each other rule counts what it matches and returns (a packet
    counts once per label).  Identified as :class:`RouterNat` is, by the
    digest every rule carries at the end of its comment; a counting rule's
    comment starts with its metering rule's id.  Observed: ``counters``,
    metering rule id -> (packets, bytes) as the kernel counted them."""

    netns: str
    digest: str
    count: int
    # (chain, statements as JSON text, metering rule id or ""): not part of identity
    rules: tuple[tuple[str, str, str], ...] = field(default=(), compare=False)
    counters: tuple[tuple[str, int, int], ...] = field(default=(), compare=False)

    def render(self) -> str:
        lines = [f"router-meter {self.netns} {self.digest} rules {self.count}"]
        lines += [f"  {chain}: {rule_text(json.loads(text))}" for chain, text, _ in self.rules]
        return "\n".join(lines)

    def devices(self) -> frozenset[str]:
        return frozenset()


METER_TABLE = f"{NFT_TABLE_PREFIX}_meter"
METER_CHAIN = "forward"


def meter(netns: str, rules: list[tuple[str, list[Any], str]]) -> RouterMeter:
    """The metering record of ``rules`` (chain, statements, metering rule id or
    "" for a jump or an exclusion), in their order; a chain other than
    ``forward`` is made as a regular chain."""
    texts = tuple((chain, canonical(stmts), rule_id) for chain, stmts, rule_id in rules)
    digest = hashlib.sha256(canonical(list(texts)).encode()).hexdigest()[:16]
    return RouterMeter(netns, digest, len(texts), texts)


def _meter_batch(obj: RouterMeter) -> list[dict[str, Any]]:
    table = {"family": "inet", "name": METER_TABLE}
    # made whole again in the one transaction (its old label chains with it: a flush
    # would keep them)
    out: list[dict[str, Any]] = [{"add": {"table": table}}, {"delete": {"table": table}},
                                 {"add": {"table": table}}]
    chains = dict.fromkeys(chain for chain, _, _ in obj.rules if chain != METER_CHAIN)
    out.append({"add": {"chain": {**_meter_in(METER_CHAIN), "type": "filter",
                                  "hook": "forward", "prio": 0, "policy": "accept"}}})
    out += [{"add": {"chain": _meter_in(name)}} for name in chains]
    for chain, text, rule_id in obj.rules:
        comment = f"{rule_id} {obj.digest}" if rule_id else obj.digest
        out.append({"add": {"rule": {**_meter_in(chain), "chain": chain,
                                     "expr": json.loads(text), "comment": comment}}})
    return out


def _meter_in(name: str) -> dict[str, str]:
    return {"family": "inet", "table": METER_TABLE, "name": name}


def _observed_meter(netns: str, rows: Iterable[dict[str, Any]]) -> RouterMeter | None:
    rules = [r["rule"] for r in rows if "rule" in r and r["rule"].get("table") == METER_TABLE]
    if not [r for r in rows if r.get("table", {}).get("name") == METER_TABLE]:
        return None
    digests, counters = set(), []
    for rule in rules:
        words = str(rule.get("comment", "")).split()
        digests.add(words[-1] if words else "")
        counted = next((e["counter"] for e in rule.get("expr", ())
                        if isinstance(e, dict) and isinstance(e.get("counter"), dict)), None)
        if len(words) == 2 and counted is not None:
            counters.append((words[0], int(counted.get("packets", 0)),
                             int(counted.get("bytes", 0))))
    digest = digests.pop() if len(digests) == 1 else ""
    return RouterMeter(netns, digest, len(rules), counters=tuple(counters))


Inside = RouterAddress | RouterNeighbour | RouterRoute | RouterRule


# --- diff ---------------------------------------------------------------------
def diff(d: DiffContext) -> None:
    gone = _diff_namespaces(d)
    remade = _diff_ports(d, gone)
    for kind in (RouterAddress, RouterNeighbour, RouterRoute, RouterRule):
        _diff_inside(d, kind, gone, remade)
    _diff_nat(d, gone, RouterNat)
    _diff_nat(d, gone, RouterMeter)


def _diff_nat(d: DiffContext, gone: set[str], kind: type[RouterNat | RouterMeter]) -> None:
    observed = {n.netns: n for n in d.observed[kind]}
    for obj in d.desired[kind]:
        old = None if obj.netns in gone else observed.pop(obj.netns, None)
        if old != obj:
            d.put(obj, old)
    for old in observed.values():
        if old.netns not in gone:
            d.delete(old)


def _diff_namespaces(d: DiffContext) -> set[str]:
    """The namespaces that go (and everything in them)."""
    observed = {n.name: n for n in d.observed[RouterNamespace]}
    wanted = {n.name for n in d.desired[RouterNamespace]}
    for ns in d.desired[RouterNamespace]:
        old = observed.get(ns.name)
        if old != ns:
            d.put(ns, old)
    gone = {name for name in observed if name not in wanted}
    for name in sorted(gone):
        d.delete(observed[name])
    return gone | {n.name for n in d.desired[RouterNamespace] if n.name not in observed}


def _diff_ports(d: DiffContext, gone: set[str]) -> set[tuple[str, str]]:
    """The interfaces made (again) by this diff: nothing of theirs is left."""
    observed = {(p.netns, p.ifname): p for p in d.observed[RouterPort]}
    wanted = {(p.netns, p.ifname) for p in d.desired[RouterPort]}
    remade: set[tuple[str, str]] = set()
    for port in d.desired[RouterPort]:
        key = (port.netns, port.ifname)
        old = None if port.netns in gone else observed.get(key)
        if old is not None and old.in_place() != port.in_place():
            d.delete(old)
            d.gone.add(old.peer)
            old = None
        if old is None:
            remade.add(key)
        if old != port:
            d.put(port, old)
    for key, old in observed.items():
        if key not in wanted and old.netns not in gone:
            d.delete(old)
            d.gone.add(old.peer)
    return remade


def _diff_inside(d: DiffContext, kind: type[Inside], gone: set[str],
                 remade: set[tuple[str, str]]) -> None:
    observed = set(d.observed[kind])
    desired = set(d.desired[kind])
    # a remade device takes the routes through it along: every route of its namespace is
    # made again (an add replaces one that stayed)
    rerouted = {ns for ns, _ in remade} if kind is RouterRoute else set()
    for obj in sorted(desired):
        if obj not in observed or (obj.netns, _dev(obj)) in remade or obj.netns in rerouted:
            d.put(obj, None)
    for obj in sorted(observed - desired):
        if obj.netns not in gone and (obj.netns, _dev(obj)) not in remade:
            d.delete(obj)


def _dev(obj: Inside) -> str:
    return "" if isinstance(obj, RouterRule) else obj.dev


# --- observe --------------------------------------------------------------------
def observe(rows: KernelRows) -> list[object]:
    host = {ln.name: ln for ln in rows.link_rows()}
    out: list[object] = []
    for ns in rows.netns_rows():
        if router_of_mark(ns.mark) is None:
            continue  # our name without our mark: not ours until its create adopts it
        out.append(RouterNamespace(ns.name, ns.mark, ns.forwarding))
        ours = {ln.name for ln in ns.links if ln.name.startswith(ROUTER_IF_PREFIXES)}
        for ln in ns.links:
            if ln.name not in ours:
                continue
            peer = ROUTER_PORT_PREFIX + ln.name[3:]  # qr-, qg-, sg-, qf-: the port's 11
            outside = host.get(peer)
            present = outside is not None and ln.kind == "veth"
            out.append(RouterPort(ns.name, ln.name, peer if present else "", ln.mac, ln.mtu,
                                  outside.alias if outside is not None else "", ln.ipv6, ln.up))
        out += [RouterAddress(ns.name, a.dev, a.cidr) for a in ns.addresses if a.dev in ours]
        out += [RouterNeighbour(ns.name, n.dev, n.ip, n.mac) for n in ns.neighbours
                if n.dev in ours]
        # the main table's routes are by their gateway, but an on-link one (no gateway:
        # a service namespace's default route) by its device
        out += [RouterRoute(ns.name, r.dst, r.gateway, r.table,
                            r.dev if r.table != MAIN_TABLE or not r.gateway else "")
                for r in ns.routes]
        out += [RouterRule(ns.name, r) for r in ns.rules]
        for found in (_observed_nat(ns.name, ns.nft), _observed_meter(ns.name, ns.nft)):
            if found is not None:
                out.append(found)
    return out


# --- apply ------------------------------------------------------------------------
def apply(io: KernelIO, change: Change) -> None:
    obj, delete = change.obj, change.op == "delete"
    if isinstance(obj, RouterNamespace):
        if delete:
            io.netns_del(obj.name)
        elif change.op == "create":
            io.netns_add(obj.name, obj.mark)
        else:
            io.netns_forwarding(obj.name)
    elif isinstance(obj, RouterPort):
        _apply_port(io, change.op, obj)
    elif isinstance(obj, RouterAddress):
        io.ns_addr("del" if delete else "add", obj.netns, obj.dev, obj.cidr)
        if delete and is_floating_address(obj.dev, obj.cidr):  # a floating IP leaves this
            io.ns_forget(obj.netns, obj.cidr.split("/")[0])  # host: no flow keeps its NAT here
    elif isinstance(obj, RouterRule):
        io.ns_rule("del" if delete else "add", obj.netns, obj.rule)
    elif isinstance(obj, RouterNat):
        io.ns_nft(obj.netns, [{"delete": {"table": {"family": "ip", "name": NAT_TABLE}}}]
                  if delete else _nat_batch(obj))
        _forget_forwardings(io, change)
    elif isinstance(obj, RouterMeter):
        io.ns_nft(obj.netns, [{"delete": {"table": {"family": "inet", "name": METER_TABLE}}}]
                  if delete else _meter_batch(obj))
    elif isinstance(obj, RouterNeighbour):
        io.ns_neigh("del" if delete else "replace", obj.netns, obj.dev, obj.ip, obj.mac)
    else:
        io.ns_route("del" if delete else "add", obj.netns, obj.dst, obj.gateway, obj.table,
                    obj.dev)


def _forget_forwardings(io: KernelIO, change: Change) -> None:
    """After a NAT batch: the flows of the port forwardings and floating IPs
    the kernel had (``change.old``, as observed) and the new NAT has not.
    (A floating IP's flows are also forgotten when its address leaves, which
    comes first: a packet in between would have made a new entry through
    the DNAT rule still there, and kept the flow going.)"""
    old = change.old if change.op != "delete" else change.obj
    if not isinstance(old, RouterNat):
        return
    kept = set(change.obj.tags) if change.op != "delete" else set()
    for tag in sorted(set(old.tags) - kept):
        pf = Forwarding.of_tag(tag)
        words = tag.split()
        if pf is not None:
            io.ns_forget(old.netns, pf.ip, pf.proto, (pf.low, pf.high))
        elif len(words) == 2 and words[0] == FIP_TAG:
            io.ns_forget(old.netns, words[1])


def _apply_port(io: KernelIO, op: str, port: RouterPort) -> None:
    if op == "delete":
        if port.peer:  # its pair goes with it; without one there is nothing left to delete
            io.link_del(port.peer)
        return
    if op == "create":
        io.veth_add(port.peer, port.alias, port.mtu, port.ifname, port.netns)
    io.ns_link_set(port.netns, port.ifname, port.mac, port.mtu, port.up, port.ipv6)


SUBSYSTEM = Subsystem("routers", (RouterNamespace, RouterPort, RouterAddress, RouterNeighbour,
                                  RouterRoute, RouterRule, RouterNat, RouterMeter), diff, observe,
                       apply)
